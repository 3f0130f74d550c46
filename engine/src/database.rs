//! [`Database`]: the catalog of streams, their shards, and the typed API (create, append,
//! scan, subscribe, flush, drop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::row::{RowConverter, SortField};
use parking_lot::{Condvar, Mutex, RwLock};
use sluice_columnstore::{ColumnCache, ReadBackend};
use sluice_vfs::{FileSystem, SimFs};

use crate::budget::MemBudget;
use crate::catalog;
use crate::ingest;
use crate::options::{Options, StorageType};
use crate::scan::{BatchIter, ScanRequest, ShardSnapshot, Snapshot};
use crate::shard::{PartReads, Shard};
use crate::stream_def::StreamDef;
use crate::subscribe::{StartAt, Subscription};
use crate::workers::Workers;
use crate::{Error, Result};

/// A generation counter and condvar: bumped whenever any shard of a stream makes rows
/// visible, so subscribers of several shards wait on one thing (no polling).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    generation: Mutex<u64>,
    cv: Condvar,
}

impl Progress {
    pub(crate) fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    pub(crate) fn notify(&self) {
        let mut g = self.generation.lock();
        *g += 1;
        self.cv.notify_all();
    }

    /// Waits until the generation differs from `seen` or `deadline`; false on timeout.
    pub(crate) fn wait(&self, seen: u64, deadline: Instant) -> bool {
        let mut g = self.generation.lock();
        while *g == seen {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                return *g != seen;
            }
        }
        true
    }
}

/// One open stream.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The definition; `ALTER STREAM` replaces it (stored batches are conformed by name).
    def: RwLock<Arc<StreamDef>>,
    pub(crate) dir: PathBuf,
    pub(crate) shards: Vec<Arc<Shard>>,
    round_robin: AtomicU64,
    pub(crate) progress: Arc<Progress>,
    dropped: AtomicBool,
}

impl Stream {
    pub(crate) fn def(&self) -> Arc<StreamDef> {
        self.def.read().clone()
    }

    pub(crate) fn set_def(&self, def: Arc<StreamDef>) {
        *self.def.write() = def;
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.dropped.load(Ordering::Acquire) || self.shards.iter().all(|s| s.is_closed())
    }
}

/// Counts of what an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Rows appended.
    pub rows: u64,
    /// `(shard, first _tp_sn)` of every piece written.
    pub pieces: Vec<(u32, u64)>,
}

pub(crate) struct DbInner {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Serialises catalog changes.
    pub(crate) ddl: Mutex<()>,
    pub(crate) budget: Arc<MemBudget>,
    /// How parts are read: backend and the decoded-column cache shared by all streams.
    pub(crate) reads: PartReads,
    workers: Mutex<Option<Workers>>,
    /// Running streaming queries (see [`Database::sync`]).
    pub(crate) queries: Arc<crate::streaming::QueryRegistry>,
    /// Running materialized views.
    pub(crate) views: crate::views::Views,
    /// Serialises view DDL.
    pub(crate) views_ddl: Mutex<()>,
    closed: AtomicBool,
    _lock: Option<std::fs::File>,
}

/// An embedded sluice database. Cheap to clone (shared handle); threads are joined when the
/// last handle is dropped or [`Database::close`] is called.
///
/// ```
/// use std::sync::Arc;
/// use sluice::arrow::array::{Int64Array, RecordBatch};
/// use sluice::arrow::datatypes::{DataType, Field, Schema};
/// use sluice::{Database, ScanRequest, StreamDef};
///
/// let db = Database::in_memory();
/// let schema = Schema::new(vec![Field::new("n", DataType::Int64, false)]);
/// db.create_stream(StreamDef::from_schema("numbers", &schema)).unwrap();
/// let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
/// db.append("numbers", &batch).unwrap();
/// let rows: usize = db.scan("numbers", &ScanRequest::all().columns(["n"])).unwrap().map(|b| b.unwrap().num_rows()).sum();
/// assert_eq!(rows, 3);
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

/// A handle that does not keep the database open (held by what the database itself owns:
/// tables inside running queries, view threads).
#[derive(Clone)]
pub(crate) struct WeakDb(std::sync::Weak<DbInner>);

impl WeakDb {
    pub(crate) fn upgrade(&self) -> Option<Database> {
        self.0.upgrade().map(|inner| Database { inner })
    }
}

impl std::fmt::Debug for WeakDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakDb")
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (or creates) the database in `dir` and recovers every stream.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Database> {
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        fs.create_dir_all(&dir.join("catalog")).map_err(|e| Error::io("create", dir.join("catalog"), e))?;
        fs.create_dir_all(&dir.join("streams")).map_err(|e| Error::io("create", dir.join("streams"), e))?;
        let lock = if opts.mmap_parts { Some(lock_dir(&dir)?) } else { None };
        let budget = Arc::new(MemBudget::new(opts.memtable_limit_bytes));
        let reads = PartReads {
            backend: if opts.mmap_parts { ReadBackend::Mmap } else { ReadBackend::Pread },
            cache: (opts.cache_bytes > 0).then(|| Arc::new(ColumnCache::new(opts.cache_bytes))),
        };
        let defs = catalog::load(fs.as_ref(), &dir.join("catalog"))?;
        let mut streams = BTreeMap::new();
        for def in defs {
            let s = open_stream(&fs, &dir, Arc::new(def), budget.clone(), &reads)?;
            streams.insert(s.def().name.clone(), s);
        }
        remove_unknown_stream_dirs(fs.as_ref(), &dir, &streams);
        let inner = Arc::new(DbInner {
            dir,
            opts,
            streams: RwLock::new(streams),
            reads,
            ddl: Mutex::new(()),
            budget,
            workers: Mutex::new(None),
            queries: Arc::default(),
            views: Default::default(),
            views_ddl: Mutex::new(()),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        let workers = Workers::start(&inner)?;
        *inner.workers.lock() = Some(workers);
        let db = Database { inner };
        db.start_views()?;
        Ok(db)
    }

    /// A database on a simulated in-memory file system: for tests and examples. Nothing
    /// survives the process.
    pub fn in_memory() -> Database {
        let fs = SimFs::new(0).with_wall_clock();
        Database::open("/sluice", Options::default().fs(fs.shared())).expect("an in-memory database always opens")
    }

    pub(crate) fn downgrade(&self) -> WeakDb {
        WeakDb(Arc::downgrade(&self.inner))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.inner.opts.fs
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) { Err(Error::Closed) } else { Ok(()) }
    }

    /// Creates a stream. Fails with [`Error::StreamExists`] if the name is taken. A
    /// `dead_letter_stream` setting is checked first and its stream created after (see
    /// [`crate::dead_letter`]).
    pub fn create_stream(&self, def: StreamDef) -> Result<()> {
        self.create_stream_if(def, false).map(|_| ())
    }

    /// Creates a stream unless one of that name exists; true if it was created.
    pub fn create_stream_if_not_exists(&self, def: StreamDef) -> Result<bool> {
        self.create_stream_if(def, true)
    }

    fn create_stream_if(&self, def: StreamDef, if_not_exists: bool) -> Result<bool> {
        self.check_dead_letter_setting(&def)?;
        let dlq = def.settings.dead_letter_stream.clone();
        let created = self.create(def, if_not_exists)?;
        if created && let Some(dlq) = dlq {
            self.ensure_dead_letter_stream(&dlq)?;
        }
        Ok(created)
    }

    fn create(&self, def: StreamDef, if_not_exists: bool) -> Result<bool> {
        self.check_open()?;
        let def = Arc::new(def.normalize()?);
        let _ddl = self.inner.ddl.lock();
        if self.inner.streams.read().contains_key(&def.name) {
            return if if_not_exists { Ok(false) } else { Err(Error::StreamExists { name: def.name.clone() }) };
        }
        // Leftovers of an interrupted drop of the same name.
        let sdir = stream_dir(&self.inner.dir, &def.name);
        if self.fs().exists(&sdir) {
            self.fs().remove_dir_all(&sdir).map_err(|e| Error::io("remove", &sdir, e))?;
        }
        let stream =
            open_stream(self.fs(), &self.inner.dir, def.clone(), self.inner.budget.clone(), &self.inner.reads)?;
        let mut all: Vec<Arc<StreamDef>> = self.inner.streams.read().values().map(|s| s.def()).collect();
        all.push(def.clone());
        if let Err(e) = catalog::store(self.fs().as_ref(), &self.inner.dir.join("catalog"), &all) {
            close_stream(&stream);
            let _ = self.fs().remove_dir_all(&sdir);
            return Err(e);
        }
        self.inner.streams.write().insert(def.name.clone(), stream);
        Ok(true)
    }

    /// Drops a stream and deletes its data. Fails with [`Error::StreamNotFound`] if absent.
    pub fn drop_stream(&self, name: &str) -> Result<()> {
        if self.drop_inner(name)? { Ok(()) } else { Err(Error::StreamNotFound { name: name.to_string() }) }
    }

    /// Drops a stream if it exists; true if it did.
    pub fn drop_stream_if_exists(&self, name: &str) -> Result<bool> {
        self.drop_inner(name)
    }

    fn drop_inner(&self, name: &str) -> Result<bool> {
        self.check_open()?;
        let users = self.views_using(name);
        if !users.is_empty() {
            return Err(Error::DependentObjects(format!(
                "stream '{name}' is used by materialized view(s) {}; drop them first (DROP VIEW)",
                users.join(", ")
            )));
        }
        let _ddl = self.inner.ddl.lock();
        let Some(stream) = self.inner.streams.read().get(name).cloned() else { return Ok(false) };
        let rest: Vec<Arc<StreamDef>> =
            self.inner.streams.read().values().filter(|s| s.def().name != name).map(|s| s.def()).collect();
        catalog::store(self.fs().as_ref(), &self.inner.dir.join("catalog"), &rest)?;
        self.inner.streams.write().remove(name);
        stream.dropped.store(true, Ordering::Release);
        close_stream(&stream);
        stream.progress.notify();
        if let Err(e) = self.fs().remove_dir_all(&stream.dir) {
            // The catalog no longer has it: the next open removes the directory.
            tracing::warn!(stream = name, error = %e, "could not remove the dropped stream's files");
        }
        Ok(true)
    }

    /// The definition of a stream.
    pub fn stream_def(&self, name: &str) -> Result<Arc<StreamDef>> {
        Ok(self.stream(name)?.def())
    }

    /// Every stream's definition, by name.
    pub fn streams(&self) -> Vec<Arc<StreamDef>> {
        self.inner.streams.read().values().map(|s| s.def()).collect()
    }

    pub(crate) fn stream(&self, name: &str) -> Result<Arc<Stream>> {
        self.inner.streams.read().get(name).cloned().ok_or_else(|| Error::StreamNotFound { name: name.to_string() })
    }

    /// Appends a batch: checked and completed against the schema first (nothing is written if
    /// any row is bad), then split across shards and logged. Returns when the rows are durable
    /// per the stream's durability setting; they are visible to scans and subscribers then.
    pub fn append(&self, name: &str, batch: &RecordBatch) -> Result<AppendResult> {
        self.check_open()?;
        let stream = self.stream(name)?;
        let def = stream.def();
        if batch.num_rows() == 0 {
            return Ok(AppendResult { rows: 0, pieces: vec![] });
        }
        let now = self.fs().now_ms() as i64;
        let batch = ingest::conform(&def, &def.schema(), batch, now)?;
        let pieces = split_for_shards(&stream, &def, batch)?;
        let mut result = AppendResult { rows: 0, pieces: Vec::with_capacity(pieces.len()) };
        for (shard, piece) in pieces {
            let rows = piece.num_rows() as u64;
            let seq = stream.shards[shard].append(piece)?;
            result.rows += rows;
            result.pieces.push((shard as u32, seq));
            self.after_append(&stream, shard);
        }
        stream.progress.notify();
        Ok(result)
    }

    fn after_append(&self, stream: &Arc<Stream>, shard: usize) {
        let s = &stream.shards[shard];
        if s.needs_flush(&stream.def(), self.fs().now_ms())
            && let Some(w) = &*self.inner.workers.lock()
        {
            w.request_flush(stream, shard);
        }
    }

    /// Flushes every shard's visible memtable rows of a stream now (into parts for hybrid
    /// storage). Returns the rows flushed.
    pub fn flush(&self, name: &str) -> Result<u64> {
        self.check_open()?;
        let stream = self.stream(name)?;
        let def = stream.def();
        let mut rows = 0;
        for s in &stream.shards {
            rows += s.flush(&def, &def.schema_with_sn(), true)?;
        }
        Ok(rows)
    }

    /// Runs merges (and TTL expiry) on every shard of a stream until the policy finds nothing
    /// more to do. Returns the number of merge rounds that changed something.
    pub fn compact(&self, name: &str) -> Result<u64> {
        self.check_open()?;
        let stream = self.stream(name)?;
        let def = stream.def();
        let policy = crate::workers::merge_policy(&self.inner.opts);
        let mut rounds = 0;
        for s in &stream.shards {
            while s.merge(
                &policy,
                crate::workers::ttl_cutoff(&def, self.fs().now_ms()),
                crate::kv::merge_dedup(&def),
            )? {
                rounds += 1;
            }
        }
        Ok(rounds)
    }

    /// A consistent snapshot of a stream for bounded scans.
    pub fn snapshot(&self, name: &str) -> Result<Snapshot> {
        let stream = self.stream(name)?;
        Ok(Snapshot { def: stream.def(), shards: stream.shards.iter().map(ShardSnapshot::take).collect() })
    }

    /// Scans a snapshot of a stream (see [`Snapshot::scan`]).
    pub fn scan(&self, name: &str, req: &ScanRequest) -> Result<BatchIter> {
        self.snapshot(name)?.scan(req)
    }

    /// Follows a stream from `start` (see [`Subscription`]); `projection` = stored columns to
    /// deliver (`_tp_sn` allowed), `None` for all.
    pub fn subscribe(&self, name: &str, start: StartAt, projection: Option<Vec<String>>) -> Result<Subscription> {
        self.check_open()?;
        Subscription::new(self.stream(name)?, start, projection)
    }

    /// Stops background work, flushes nothing (the logs hold every acknowledged row), closes
    /// every log and joins every thread. Later calls fail with [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Views first: each writes a last checkpoint while the streams are open.
        let views: Vec<_> = self.inner.views.running.lock().values().cloned().collect();
        for v in views {
            v.stop();
        }
        if let Some(w) = self.inner.workers.lock().take() {
            w.stop();
        }
        let mut first_err = None;
        for s in self.inner.streams.read().values() {
            for sh in &s.shards {
                if let Err(e) = sh.close() {
                    first_err.get_or_insert(e);
                }
            }
            s.progress.notify();
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        // View threads hold no strong handle between batches; they stop within a poll slice.
        for v in self.views.running.lock().values() {
            v.signal_stop();
        }
        if let Some(w) = self.workers.lock().take() {
            w.stop();
        }
        for s in self.streams.read().values() {
            close_stream(s);
        }
    }
}

fn close_stream(s: &Stream) {
    for sh in &s.shards {
        if let Err(e) = sh.close() {
            tracing::warn!(stream = %sh.stream, shard = sh.id, error = %e, "closing shard");
        }
    }
}

pub(crate) fn stream_dir(root: &Path, name: &str) -> PathBuf {
    root.join("streams").join(name)
}

fn open_stream(
    fs: &Arc<dyn FileSystem>,
    root: &Path,
    def: Arc<StreamDef>,
    budget: Arc<MemBudget>,
    reads: &PartReads,
) -> Result<Arc<Stream>> {
    let dir = stream_dir(root, &def.name);
    if def.settings.storage_type != StorageType::InMemory {
        fs.create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    }
    let schema = def.schema();
    let mut shards = Vec::with_capacity(def.settings.shards as usize);
    for i in 0..def.settings.shards {
        shards.push(Arc::new(Shard::open(fs.clone(), &def, &schema, &dir, i, budget.clone(), reads)?));
    }
    Ok(Arc::new(Stream {
        def: RwLock::new(def),
        dir,
        shards,
        round_robin: AtomicU64::new(0),
        progress: Arc::new(Progress::default()),
        dropped: AtomicBool::new(false),
    }))
}

/// Stream directories the catalog does not know (an interrupted create or drop) are removed.
fn remove_unknown_stream_dirs(fs: &dyn FileSystem, root: &Path, streams: &BTreeMap<String, Arc<Stream>>) {
    let dir = root.join("streams");
    let Ok(names) = fs.list_dir(&dir) else { return };
    for name in names {
        if !streams.contains_key(&name) {
            let p = dir.join(&name);
            tracing::info!(dir = %p.display(), "removing the files of a stream not in the catalog");
            if let Err(e) = fs.remove_dir_all(&p) {
                tracing::warn!(dir = %p.display(), error = %e, "could not remove");
            }
        }
    }
}

/// Splits a conformed batch into per-shard pieces: round robin by batch, or by a hash of the
/// sharding columns.
fn split_for_shards(stream: &Stream, def: &StreamDef, batch: RecordBatch) -> Result<Vec<(usize, RecordBatch)>> {
    let n = stream.shards.len();
    if n == 1 {
        return Ok(vec![(0, batch)]);
    }
    if def.settings.sharding_columns.is_empty() {
        let shard = (stream.round_robin.fetch_add(1, Ordering::Relaxed) % n as u64) as usize;
        return Ok(vec![(shard, batch)]);
    }
    let cols: Vec<_> = def
        .settings
        .sharding_columns
        .iter()
        .map(|c| batch.column_by_name(c).cloned().expect("sharding columns are checked at create"))
        .collect();
    let conv = RowConverter::new(cols.iter().map(|c| SortField::new(c.data_type().clone())).collect())?;
    let rows = conv.convert_columns(&cols)?;
    let mut idx: Vec<Vec<u32>> = vec![Vec::new(); n];
    for i in 0..rows.num_rows() {
        let h = fnv1a(rows.row(i).as_ref());
        idx[(h % n as u64) as usize].push(i as u32);
    }
    let mut out = Vec::new();
    for (shard, ix) in idx.into_iter().enumerate() {
        if !ix.is_empty() {
            out.push((shard, take_record_batch(&batch, &UInt32Array::from(ix))?));
        }
    }
    Ok(out)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Takes an exclusive lock on `<dir>/LOCK` so that two processes never open one directory.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
            "lock",
            &path,
            std::io::Error::new(std::io::ErrorKind::WouldBlock, "the data directory is in use by another process"),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}
