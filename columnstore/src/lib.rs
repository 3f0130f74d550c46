//! sluice-columnstore: immutable, sorted, columnar parts (Parquet) of one shard, the manifest
//! that says which parts are live, the readers that prune and scan them, and the merger.
//!
//! What it is: the history half of a shard. The engine's flusher hands [`PartWriter`] Arrow
//! batches already sorted by the stream's sort key; the writer produces one Parquet file (zstd,
//! dictionaries, delta-encoded sorted integers, row-group and page statistics, page index) and
//! returns its [`PartInfo`]. [`Manifest::commit`] makes an [`Edit`] (parts added and removed,
//! flushed WAL mark) durable in one checksummed record. Readers open parts through `mmap` or
//! `pread`, check them (block checksums, footer checksum from the manifest) and scan with a
//! projection and a pruning [`Predicate`]. The merger k-way merges parts into bigger ones,
//! optionally dropping rows past a TTL. [`PartStore`] ties these together for one shard.
//!
//! What it is not: it knows nothing of the WAL, SQL or streams; sequence numbers are opaque
//! `u64`s handed in by the caller, and pruning is conservative (callers filter exactly). All
//! I/O goes through [`sluice_vfs::FileSystem`] (except mapping finished parts), so tests run on
//! a simulated disk that crashes and tears writes.
//!
//! ```text
//!  sorted batches ─► PartWriter ─► parts/<id>.parquet.tmp ─fsync─► rename ─► fsync dir
//!                       │ PartInfo: rows, seq range, time range, column min/max, sizes, crc
//!                       ▼
//!  Manifest  MANIFEST = header | snapshot | edit | edit ...   (crc32c, fdatasync per commit,
//!                       │                                      rewritten atomically when big)
//!                       ▼ live parts + flushed WAL mark
//!  PartStore ─► PartSet (snapshot: Arc<[Arc<PartHandle>]>) ─► Part (mmap | pread, checked)
//!     │             obsolete part deleted when its            │ prune: part stats → row groups
//!     │             last handle drops                         ▼        → pages (page index)
//!     │                                                    PartScan ─► projected RecordBatches
//!     └─► pick_merge (tiers) ─► merge_parts (k-way on arrow::row keys, TTL) ─► PartWriter
//!              └─► Edit { add: [merged], remove: inputs }: one atomic commit
//! ```
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
//! use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
//! use arrow::record_batch::RecordBatch;
//! use sluice_columnstore::{
//!     ColumnRange, Edit, PartStore, Predicate, ReadBackend, ScanOptions, SeqRange, StoreOptions,
//!     WriterOptions,
//! };
//! use sluice_vfs::SimFs;
//!
//! let fs = SimFs::new(1);
//! let opts = StoreOptions::default()
//!     .backend(ReadBackend::Pread)
//!     .writer(WriterOptions::default().time_column("_tp_time").sort_key(["_tp_time"]));
//! let (store, _report) = PartStore::open(fs.shared(), "/data/s/0", opts.clone())?;
//!
//! let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("_tp_time", ts, false),
//!     Field::new("device", DataType::Utf8, false),
//!     Field::new("value", DataType::Int64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_000, 3_000]).with_timezone("UTC")),
//!     Arc::new(StringArray::from(vec!["a", "b", "a"])),
//!     Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
//! ])?;
//! let info = store.write_part(schema, &[batch], SeqRange::new(0, 2))?;
//! store.commit(&Edit { add: vec![info], remove: vec![], flushed_mark: Some(2) })?;
//! drop(store);
//!
//! // After a reopen the part is live and the flushed mark is known.
//! let (store, _) = PartStore::open(fs.shared(), "/data/s/0", opts)?;
//! assert_eq!(store.flushed_mark(), Some(2));
//! let pred = Predicate::all().and(ColumnRange::new("_tp_time").ge(2_000i64));
//! let mut rows = 0;
//! for part in store.snapshot().prune(&pred) {
//!     for batch in part.scan(&ScanOptions::default().predicate(pred.clone()))? {
//!         rows += batch?.num_rows();
//!     }
//! }
//! assert!(rows >= 2); // conservative: may include the first row, never drops a match
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The decoded-column cache.
mod cache;
/// Checking a shard directory without changing it.
mod check;
/// Block checksums of part files.
mod checksum;
/// Errors of the crate.
mod error;
/// The manifest codec as a fuzz entry point (not an API).
#[doc(hidden)]
pub mod fuzzing;
/// Refcounted part handles and part-set snapshots.
mod handle;
/// The manifest: edits, recovery, compaction.
mod manifest;
/// The k-way merger.
mod merger;
/// Mapping finished part files (the only `unsafe`).
mod mmap;
/// Writer and scan options.
mod options;
/// Part ids, sequence and time ranges, [`PartInfo`].
mod part_info;
/// The `sluice.part` footer metadata.
mod part_meta;
/// Merge and TTL policy.
mod policy;
/// Pruning predicates.
mod predicate;
/// Row-group and page pruning.
mod prune;
/// The part reader and scans.
mod reader;
/// Part bytes as parquet's `ChunkReader`, checked.
mod source;
/// Statistics values and how they compare.
mod stat;
/// Part statistics from Parquet metadata.
mod stats;
/// One shard's parts: manifest + part set + writer + merger.
mod store;
/// The part writer.
mod writer;

#[cfg(test)]
mod interop_test;
#[cfg(test)]
mod testutil;

pub use cache::{CacheStats, ColumnCache};
pub use check::{Finding, ManifestRead, ShardCheck, check_shard, read_manifest};
pub use error::{Error, Result};
pub use handle::{PartHandle, PartSet};
pub use manifest::{Edit, MANIFEST_FILE, Manifest, ManifestOptions, ManifestState, PARTS_DIR, RecoveryReport};
pub use merger::{Dedup, MergeOptions, merge_parts};
pub use options::{Compression, Projection, ReadBackend, ScanOptions, WriterOptions};
pub use part_info::{ColumnStats, PartId, PartInfo, SeqRange, TimeRange};
pub use policy::{MergePolicy, expired_parts, pick_merge};
pub use predicate::{Bound, ColumnPredicate, ColumnRange, Predicate};
pub use prune::ScanPlan;
pub use reader::{Part, PartScan};
pub use stat::Stat;
pub use store::{PartStore, StoreOptions};
pub use writer::{NewPart, PartWriter, write_part};
