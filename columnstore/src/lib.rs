//! sluice-columnstore: immutable, sorted, columnar parts (Parquet) of one shard, the manifest
//! that says which parts are live, the readers that prune and scan them, and the merger.
//!
//! Status: skeleton. The part writer, reader, manifest and merger arrive with issue B; this crate
//! will depend only on `sluice-vfs`, arrow and parquet, never on `sluice-wal` or `sluice-sql`.
