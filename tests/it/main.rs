//! The one integration-test binary of the workspace.
mod engine_basic;
mod engine_faults;
mod engine_model;
mod wal_model;
