//! sluice: the embeddable streaming database. Streams of rows, split into shards; every
//! append goes first to the shard's write-ahead log (`sluice-wal`), then into an in-memory
//! memtable; background flushers turn memtables into sorted Parquet parts
//! (`sluice-columnstore`) and a merger merges them. Bounded scans read a consistent snapshot
//! of parts + memtable; subscriptions backfill from parts, log and memtable and then follow
//! new appends. The SQL layer (`execute`/`query`) arrives with issue C.
//!
//! ```text
//!  append(batch) ─► ingest::conform ─► split by shard ─► Shard::append
//!                                                        │  WAL record (Arrow IPC) + memtable
//!                                                        ▼
//!               workers: sluice-flush-N ──► part (Parquet, sorted) + MANIFEST edit
//!                        sluice-merge   ──► merged parts, TTL
//!  scan(req)      ─► Snapshot { parts, log range, memtable } ─► ScanUnit::read
//!  subscribe(at)  ─► Subscription: per-shard cursor, parts → log → memtable → live
//! ```
//!
//! What it is not: a SQL engine (that is `sluice-sql`) or a server (`sluice-server`).
//!
//! SQL (Proton's dialect; `table(s)` reads a stream's history):
//!
//! ```
//! let db = sluice::Database::in_memory();
//! db.execute("CREATE STREAM clicks (user string, url string, at datetime64(3)) \
//!             SETTINGS event_time_column = 'at'").unwrap();
//! db.execute("INSERT INTO clicks VALUES ('ann', '/a', '2024-01-01 10:00:00'), ('bob', '/b', now64())").unwrap();
//! let rows = db.query("SELECT user, count(*) FROM table(clicks) GROUP BY user ORDER BY user").unwrap()
//!     .concat().unwrap();
//! assert_eq!(rows.num_rows(), 2);
//! ```
//!
//! The typed API, without SQL:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sluice::arrow::array::{Int64Array, RecordBatch};
//! use sluice::arrow::datatypes::{DataType, Field, Schema};
//! use sluice::{Database, StartAt, StreamDef};
//!
//! let db = Database::in_memory();
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
//! db.create_stream(StreamDef::from_schema("numbers", &schema)).unwrap();
//! let mut sub = db.subscribe("numbers", StartAt::Earliest, Some(vec!["n".into()])).unwrap();
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
//! db.append("numbers", &batch).unwrap();
//! let got = sub.next_timeout(Duration::from_secs(5)).unwrap().expect("rows");
//! assert_eq!(got.batch.num_rows(), 3);
//! ```

/// `ALTER STREAM`.
mod alter;
/// Batches as WAL records.
mod batch_codec;
/// The memory budget of all memtables.
mod budget;
/// The persisted catalog of stream definitions.
mod catalog;
/// Verifying a data directory without changing it (`sluice check`).
mod check;
/// The database and its typed API.
mod database;
/// `CREATE STREAM` and friends, from the SQL AST to stream definitions.
mod ddl;
/// Dead-letter streams: the records of rejected ingest requests.
pub mod dead_letter;
/// Errors.
mod error;
/// Checking and completing appended batches.
mod ingest;
/// `versioned_kv` streams: the latest row per primary key.
mod kv;
/// In-memory batches not yet in parts.
mod memtable;
/// Database and stream options.
mod options;
/// Snapshots and bounded scans.
mod scan;
/// SQL statements on a database: `execute`, `query`.
mod session;
/// A shard: log, memtable, parts; append, flush, merge, recovery.
mod shard;
/// Calls into the SQL planner and executor.
mod sql_bridge;
/// The engine as the SQL layer's catalog.
mod sql_catalog;
/// Stream definitions and the hidden columns.
mod stream_def;
/// Streaming queries on the engine: sources and the `sync` registry.
mod streaming;
/// Unbounded reads: subscriptions.
mod subscribe;
/// Values as text (CLI, SQL logic tests, Postgres text format).
pub mod text;
/// Materialized views: background streaming queries writing into streams.
mod views;
/// Flusher and merger threads.
mod workers;

pub use arrow;
pub use sluice_columnstore as columnstore;
pub use sluice_columnstore::{CacheStats, ColumnRange, Predicate, Stat};
pub use sluice_vfs as vfs;
pub use sluice_wal as wal;
pub use sluice_wal::{Codec, Durability};

pub use check::{CheckReport, Finding, Severity, check};
pub use database::{AppendResult, Database};
pub use dead_letter::DeadLetter;
pub use error::{Error, Result};
pub use memtable::MemBatch;
pub use options::{Options, StorageType, StreamSettings, Ttl};
pub use scan::{BatchIter, ScanRequest, ScanUnit, Snapshot};
pub use session::{Output, QueryResult, RowIter};
pub use stream_def::{AliasColumn, ColumnDef, StreamDef, TP_SN, TP_TIME, tp_time_type};
pub use streaming::{StorageTotals, StreamingTotals};
pub use subscribe::{CancelHandle, ShardBatch, StartAt, Subscription};
pub use views::{RecoveryPolicy, ViewInfo};
