//! The one integration-test binary of the workspace.
mod crash;
mod engine_basic;
mod engine_damage;
mod engine_faults;
mod engine_interop;
mod engine_model;
mod engine_sql;
mod fixtures;
mod server_clients;
mod server_http;
mod server_pg;
mod server_pg_tools;
mod slt;
mod streaming;
mod views;
mod wal_model;
