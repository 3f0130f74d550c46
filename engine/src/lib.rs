//! sluice: the embeddable streaming database. Catalog, streams, shards, ingest, flushers,
//! merges, retention, subscriptions and materialized views, on top of `sluice-wal`,
//! `sluice-columnstore` and `sluice-sql`.
//!
//! Status: skeleton. `Database::open`, `append`, scans and subscriptions arrive with issue B,
//! `execute`/`query` with issue C. The write-ahead log underneath is complete: see
//! [`sluice_wal`].

pub use sluice_wal as wal;
