//! sluice-server: the network face of the sluice engine. A Postgres wire endpoint (simple and
//! extended protocol, streamed results, cancel, SCRAM), an HTTP endpoint (JSON ingest, health,
//! Prometheus metrics) and the pieces of the `sluice` command line. tokio lives here and only
//! here: every query and every append runs on a blocking thread and hands its batches to the
//! connection task through a bounded channel, so a slow client slows its own query down and
//! nothing else.
//!
//! What it is not: a SQL engine (that is `sluice-sql`) or storage (`sluice`).
//!
//! ```text
//!  psql / drivers ──TCP──► pg::serve ── per connection: pgwire codec ─► pg::handler
//!                                          │ Parse/Bind: pg::params (typed literals)
//!                                          ▼
//!                          pg::runner (spawn_blocking: Database::execute_statement)
//!                                          │ bounded channel of RecordBatch
//!                                          ▼
//!                          pg::encode ─► DataRow (text or binary) ─► client, flushed when idle
//!  curl ──HTTP──► http::router ─► http::ingest (JSON → RecordBatch, all-or-nothing) ─► Database::append
//!                                  http::metrics ◄── metrics::Metrics (atomics)
//! ```
//!
//! ```
//! use sluice_server::{Config, Server};
//!
//! let config = Config::ephemeral();
//! let server = Server::start_with(config, sluice::Database::in_memory()).unwrap();
//! assert!(server.pg_addr().port() != 0);
//! server.shutdown().unwrap();
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// Server settings.
mod config;
/// Errors of the server and the one SQLSTATE mapping.
mod error;
/// The HTTP endpoint: ingest, health, metrics.
mod http;
/// Starting and stopping everything.
mod lifecycle;
/// Counters behind `/metrics`.
mod metrics;
/// The Postgres wire endpoint.
mod pg;
/// Result tables as text (the `sluice sql` command).
pub mod table;

pub use config::Config;
pub use error::{Error, Result, http_status, sqlstate};
pub use http::ingest::{ErrorKind as IngestErrorKind, IngestError, RejectedRecord, json_to_batch, rejected_records};
pub use lifecycle::{Server, ServerHandle};
pub use metrics::Metrics;
#[doc(hidden)]
pub use pg::fuzzing as pg_fuzzing;
