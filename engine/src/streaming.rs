//! Streaming queries on the engine: the [`sluice_sql::StreamSource`] over a [`Subscription`],
//! and the registry of running queries behind [`Database::sync`], the deterministic test hook
//! that waits until every appended row has reached every running streaming query.
//!
//! A source reports its progress each time the query asks it for the next batch: at that
//! moment every batch delivered before has been fully processed (and its results handed on).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use parking_lot::{Condvar, Mutex};

use crate::database::{Database, Stream};
use crate::subscribe::Subscription;
use crate::{Error, Result};

/// How far one running query has processed its stream.
#[derive(Debug)]
pub(crate) struct QueryProgress {
    stream: Arc<Stream>,
    /// Next sequence number per shard not yet processed.
    processed: Mutex<Vec<u64>>,
}

/// Every running streaming query (materialized views included).
#[derive(Debug, Default)]
pub(crate) struct QueryRegistry {
    running: Mutex<Vec<Weak<QueryProgress>>>,
    changed: Condvar,
    /// What `system.queries` lists.
    listed: Mutex<Vec<Weak<RunningQuery>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A running streaming query as `system.queries` shows it; listed while the handle lives.
#[derive(Debug)]
pub(crate) struct RunningQuery {
    id: u64,
    kind: String,
    sql: String,
    started_ms: i64,
    stats: Arc<sluice_sql::LiveStats>,
}

/// What the storage did since the database opened, over every stream (see
/// [`Database::storage_totals`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageTotals {
    /// Rows acknowledged by appends.
    pub rows_appended: u64,
    /// Log records appended.
    pub wal_appends: u64,
    /// `fdatasync` calls of the logs.
    pub wal_syncs: u64,
    /// Bytes written to the logs.
    pub wal_bytes_written: u64,
    /// Bytes the logs hold on disk now.
    pub wal_bytes: u64,
    /// Flushes that wrote a part.
    pub flushes: u64,
    /// Rows those flushes moved into parts.
    pub flush_rows: u64,
    /// Time spent in those flushes.
    pub flush_seconds: f64,
    /// Merges.
    pub merges: u64,
    /// Time spent merging.
    pub merge_seconds: f64,
    /// Live parts now.
    pub parts: u64,
    /// Bytes of the live parts.
    pub part_bytes: u64,
    /// Rows in memtables now.
    pub memtable_rows: u64,
}

/// Totals over the running streaming queries and views (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamingTotals {
    /// Streaming queries running (views included).
    pub queries: u64,
    /// Of them, materialized views.
    pub views: u64,
    /// Rows read by them.
    pub rows_in: u64,
    /// Rows they emitted.
    pub rows_out: u64,
    /// Rows they dropped as late (older than their watermark).
    pub late_rows: u64,
    /// Rows they skipped for errors.
    pub skipped_rows: u64,
    /// Bytes of aggregation state they hold.
    pub state_bytes: u64,
}

impl QueryRegistry {
    fn totals(&self) -> StreamingTotals {
        let o = std::sync::atomic::Ordering::Relaxed;
        let mut t = StreamingTotals::default();
        for q in self.listed.lock().iter().filter_map(Weak::upgrade) {
            t.queries += 1;
            t.views += u64::from(q.kind.starts_with("view "));
            t.rows_in += q.stats.rows_in.load(o);
            t.rows_out += q.stats.rows_out.load(o);
            t.late_rows += q.stats.late_rows.load(o);
            t.skipped_rows += q.stats.skipped_rows.load(o);
            t.state_bytes += q.stats.state_bytes.load(o);
        }
        t
    }

    /// Lists a query until the returned handle is dropped.
    pub(crate) fn list(&self, kind: &str, sql: String, stats: Arc<sluice_sql::LiveStats>) -> Arc<RunningQuery> {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let started_ms = sluice_sql::context::now_nanos() / 1_000_000;
        let q = Arc::new(RunningQuery { id, kind: kind.to_string(), sql, started_ms, stats });
        let mut l = self.listed.lock();
        l.retain(|w| w.strong_count() > 0);
        l.push(Arc::downgrade(&q));
        q
    }

    /// `system.queries` as a batch.
    pub(crate) fn queries_batch(&self) -> Result<RecordBatch> {
        use arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray, UInt64Array};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let qs: Vec<Arc<RunningQuery>> = self.listed.lock().iter().filter_map(Weak::upgrade).collect();
        let o = std::sync::atomic::Ordering::Relaxed;
        let u = |f: &dyn Fn(&RunningQuery) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from(qs.iter().map(|q| f(q)).collect::<Vec<_>>()))
        };
        let st = |f: &dyn Fn(&RunningQuery) -> String| -> ArrayRef {
            Arc::new(StringArray::from(qs.iter().map(|q| f(q)).collect::<Vec<_>>()))
        };
        let started: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(qs.iter().map(|q| q.started_ms).collect::<Vec<_>>()).with_timezone("UTC"),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("query", DataType::Utf8, false),
            Field::new("started", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new("rows_in", DataType::UInt64, false),
            Field::new("rows_out", DataType::UInt64, false),
            Field::new("late_rows", DataType::UInt64, false),
            Field::new("skipped_rows", DataType::UInt64, false),
            Field::new("open_windows", DataType::UInt64, false),
            Field::new("state_bytes", DataType::UInt64, false),
        ]));
        Ok(RecordBatch::try_new(
            schema,
            vec![
                u(&|q| q.id),
                st(&|q| q.kind.clone()),
                st(&|q| q.sql.clone()),
                started,
                u(&|q| q.stats.rows_in.load(o)),
                u(&|q| q.stats.rows_out.load(o)),
                u(&|q| q.stats.late_rows.load(o)),
                u(&|q| q.stats.skipped_rows.load(o)),
                u(&|q| q.stats.open_windows.load(o)),
                u(&|q| q.stats.state_bytes.load(o)),
            ],
        )?)
    }
}

impl QueryRegistry {
    fn register(&self, p: &Arc<QueryProgress>) {
        let mut r = self.running.lock();
        r.retain(|w| w.strong_count() > 0);
        r.push(Arc::downgrade(p));
    }

    fn report(&self, p: &QueryProgress, positions: Vec<u64>) {
        *p.processed.lock() = positions;
        let _g = self.running.lock();
        self.changed.notify_all();
    }

    /// Whether every running query has processed every row visible now.
    fn caught_up(&self) -> bool {
        let r = self.running.lock();
        r.iter().filter_map(Weak::upgrade).all(|q| {
            if q.stream.is_gone() {
                return true;
            }
            let done = q.processed.lock();
            q.stream.shards.iter().zip(done.iter()).all(|(s, d)| *d >= s.visible())
        })
    }
}

/// The input of a streaming query: a subscription whose rows get the table's ALIAS columns.
pub(crate) struct EngineSource {
    /// Delivered before the subscription's rows (a versioned_kv stream's latest rows).
    backlog: std::collections::VecDeque<RecordBatch>,
    /// Shard of the last batch delivered.
    last_shard: Option<usize>,
    sub: Subscription,
    progress: Arc<QueryProgress>,
    registry: Arc<QueryRegistry>,
    /// Maps a delivered batch to the requested columns (ALIAS columns computed).
    finish: Box<dyn Fn(RecordBatch) -> sluice_sql::Result<RecordBatch> + Send>,
}

impl EngineSource {
    pub(crate) fn new(
        db: &Database,
        sub: Subscription,
        finish: Box<dyn Fn(RecordBatch) -> sluice_sql::Result<RecordBatch> + Send>,
    ) -> Self {
        let stream = sub.stream().clone();
        let progress = Arc::new(QueryProgress { stream, processed: Mutex::new(sub.delivered_positions()) });
        let registry = db.inner.queries.clone();
        registry.register(&progress);
        EngineSource { backlog: Default::default(), last_shard: None, sub, progress, registry, finish }
    }

    /// Batches to deliver before the subscription's rows. Until they are taken, the query
    /// counts as behind on every row (so `sync` waits for them).
    pub(crate) fn with_backlog(mut self, batches: Vec<RecordBatch>) -> Self {
        if !batches.is_empty() {
            let n = self.progress.processed.lock().len();
            *self.progress.processed.lock() = vec![0; n];
        }
        self.backlog = batches.into();
        self
    }
}

impl sluice_sql::StreamSource for EngineSource {
    fn next_timeout(&mut self, timeout: Duration) -> sluice_sql::Result<Option<RecordBatch>> {
        if let Some(b) = self.backlog.pop_front() {
            self.last_shard = None;
            return Ok(Some(b));
        }
        self.registry.report(&self.progress, self.sub.delivered_positions());
        match self.sub.next_timeout(timeout).map_err(crate::sql_catalog::to_sql_error)? {
            None => Ok(None),
            Some(b) => {
                self.last_shard = Some(b.shard as usize);
                Ok(Some((self.finish)(b.batch)?))
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.sub.is_finished()
    }

    fn positions(&self) -> Vec<u64> {
        let p = self.sub.delivered_positions();
        // The first rows of a kv stream are not delivered yet: a resume must read from the start.
        if self.backlog.is_empty() { p } else { vec![0; p.len()] }
    }

    fn batch_shard(&self) -> Option<usize> {
        self.last_shard
    }

    fn waiting_shards(&self) -> Vec<bool> {
        self.sub.waiting_shards()
    }
}

impl Drop for EngineSource {
    fn drop(&mut self) {
        // Wake `sync` callers: this query no longer holds them up.
        let _g = self.registry.running.lock();
        self.registry.changed.notify_all();
    }
}

impl Database {
    /// Size and hit counts of the decoded-column cache ([`crate::Options::cache_bytes`]; all
    /// zero when it is off).
    pub fn column_cache_stats(&self) -> crate::CacheStats {
        self.inner.reads.cache.as_ref().map(|c| c.stats()).unwrap_or_default()
    }

    /// Totals over every stream's shards since open (for `/metrics`).
    pub fn storage_totals(&self) -> StorageTotals {
        let mut t = StorageTotals::default();
        let o = std::sync::atomic::Ordering::Relaxed;
        for stream in self.inner.streams.read().values() {
            for sh in &stream.shards {
                let c = &sh.counters;
                t.rows_appended += c.rows_appended.load(o);
                t.flushes += c.flushes.load(o);
                t.flush_rows += c.flush_rows.load(o);
                t.flush_seconds += c.flush_micros.load(o) as f64 / 1e6;
                t.merges += c.merges.load(o);
                t.merge_seconds += c.merge_micros.load(o) as f64 / 1e6;
                let st = sh.state.read();
                t.parts += st.parts.len() as u64;
                t.part_bytes += st.parts.iter().map(|p| p.info().file_bytes).sum::<u64>();
                t.memtable_rows += st.mem.batches().iter().map(|b| b.batch.num_rows() as u64).sum::<u64>();
                drop(st);
                if let Some(wal) = &sh.wal {
                    let w = wal.stats();
                    t.wal_appends += w.appends;
                    t.wal_syncs += w.syncs;
                    t.wal_bytes_written += w.bytes_written;
                    t.wal_bytes += wal.disk_bytes();
                }
            }
        }
        t
    }

    /// Totals over the streaming queries and views running now.
    pub fn streaming_totals(&self) -> StreamingTotals {
        self.inner.queries.totals()
    }

    /// Waits until every row appended so far has been processed by every running streaming
    /// query and materialized view (and what views wrote in turn, by the queries reading
    /// that). For tests and tools: it never sleeps a fixed time. Fails after `timeout`.
    pub fn sync(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let reg = &self.inner.queries;
        loop {
            if reg.caught_up() {
                return Ok(());
            }
            let mut g = reg.running.lock();
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!("sync: streaming queries still behind after {timeout:?}")));
            }
            // Progress reports notify under this lock; re-check with a short bound because
            // appends do not notify the registry.
            reg.changed.wait_for(&mut g, Duration::from_millis(5));
        }
    }
}
