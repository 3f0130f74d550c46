//! One shard of a stream: its write-ahead log, its memtable and its parts, and the three
//! things that change them: append, flush and merge. Recovery (`Shard::open`) rebuilds the
//! memtable by replaying the log from the manifest's flushed mark.
//!
//! Ordering invariant: an append takes the shard's append lock, puts its batch in the memtable
//! at the log's next sequence number and submits the log record, both under that lock; so the
//! memtable is always contiguous and in sequence order. A batch becomes *visible* (to scans and
//! subscribers) only once the log acknowledged it per the stream's durability: `visible` is the
//! end of the acknowledged prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use parking_lot::{Mutex, RwLock};
use sluice_columnstore::{
    ColumnCache, Edit, MergeOptions, MergePolicy, PartSet, PartStore, ReadBackend, SeqRange, StoreOptions,
    WriterOptions,
};
use sluice_vfs::FileSystem;
use sluice_wal::{Durability, SeqNo, Wal, WalOptions};

use crate::batch_codec;
use crate::budget::MemBudget;
use crate::ingest;
use crate::memtable::{MemBatch, Memtable};
use crate::options::StorageType;
use crate::stream_def::{StreamDef, TP_TIME};
use crate::{Error, Result};

/// A flush that empties the memtable closes the active log segment when the log is bigger.
const ROLL_AFTER_FLUSH_BYTES: u64 = 4 << 20;

/// How much an in-memory stream keeps when `logstore_retention_bytes` is not set.
pub(crate) const INMEMORY_DEFAULT_BYTES: u64 = 256 << 20;

/// What scans and subscribers see of a shard at one moment.
#[derive(Debug, Clone)]
pub struct ShardState {
    /// The memtable (may hold batches not yet visible: filter by `visible`).
    pub mem: Memtable,
    /// Live parts.
    pub parts: PartSet,
    /// Every sequence number below this is in a part (hybrid), in the log only (streaming) or
    /// gone (in-memory); the memtable starts here.
    pub flushed: u64,
}

/// A shard (see the module docs).
pub(crate) struct Shard {
    pub(crate) stream: Arc<str>,
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) storage: StorageType,
    fs: Arc<dyn FileSystem>,
    pub(crate) wal: Option<Wal>,
    durability: Durability,
    /// Serialises appends; holds the next sequence number of a log-less shard.
    append_lock: Mutex<u64>,
    pub(crate) state: RwLock<ShardState>,
    pub(crate) store: Option<PartStore>,
    visible: AtomicU64,
    poison: Mutex<Option<String>>,
    /// One flush or merge at a time.
    pub(crate) maintenance: Mutex<()>,
    budget: Arc<MemBudget>,
    /// Set while a flush request for this shard is queued.
    pub(crate) flush_queued: AtomicBool,
    closed: AtomicBool,
    /// What this shard did since open (for `/metrics`).
    pub(crate) counters: ShardCounters,
}

/// Monotonic counters of a shard's work.
#[derive(Debug, Default)]
pub(crate) struct ShardCounters {
    pub(crate) rows_appended: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_rows: AtomicU64,
    pub(crate) flush_micros: AtomicU64,
    pub(crate) merges: AtomicU64,
    pub(crate) merge_micros: AtomicU64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("stream", &self.stream).field("id", &self.id).finish_non_exhaustive()
    }
}

/// Before recovery cuts a torn manifest tail: refuses when the cut would lose rows. A record
/// torn by a crash was never acknowledged, so the log still holds every row its flush covered;
/// if the log no longer does, the "torn" record was committed and later damaged (its part file
/// holds those rows), and cutting it (and deleting that part as an orphan) would lose them
/// silently. Then the open fails with `Corrupted` naming the manifest and the record's offset,
/// before anything is changed.
fn refuse_lossy_manifest_cut(fs: &dyn sluice_vfs::FileSystem, dir: &Path, stream: &str, shard: u32) -> Result<()> {
    let parts_err = |source| Error::Parts { stream: stream.to_string(), shard, source };
    let Some(m) = sluice_columnstore::read_manifest(fs, dir).map_err(parts_err)? else { return Ok(()) };
    if m.good_len == m.file_len {
        return Ok(());
    }
    let flushed = m.state.flushed_mark.unwrap_or(0);
    let log = sluice_wal::check(fs, &dir.join("wal")).map_err(|source| Error::Wal {
        stream: stream.to_string(),
        shard,
        source,
    })?;
    match (log.first_seq, log.next_seq) {
        (Some(first), Some(next)) if first > flushed && next > flushed => Err(Error::Corrupted {
            file: dir.join(sluice_columnstore::MANIFEST_FILE),
            offset: m.good_len,
            reason: format!(
                "the last record is damaged; it cannot be a torn write, because cutting it would lose rows \
                 {flushed}..{first} that the log no longer holds"
            ),
        }),
        _ => Ok(()),
    }
}

/// Where a shard's files live: `<stream dir>/<shard>/`.
pub(crate) fn shard_dir(stream_dir: &Path, shard: u32) -> PathBuf {
    stream_dir.join(shard.to_string())
}

/// How a database reads its parts.
#[derive(Debug, Clone)]
pub(crate) struct PartReads {
    pub(crate) backend: ReadBackend,
    /// Decoded row-group columns shared by every part (`None`: `Options::cache_bytes` is 0).
    pub(crate) cache: Option<Arc<ColumnCache>>,
}

impl Shard {
    /// Opens (or creates) a shard and recovers it: manifest, then the log replayed from the
    /// flushed mark into the memtable.
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        def: &StreamDef,
        schema: &SchemaRef,
        stream_dir: &Path,
        id: u32,
        budget: Arc<MemBudget>,
        reads: &PartReads,
    ) -> Result<Shard> {
        let dir = shard_dir(stream_dir, id);
        let storage = def.settings.storage_type;
        let stream: Arc<str> = def.name.as_str().into();
        let parts_err = |source| Error::Parts { stream: def.name.clone(), shard: id, source };
        let wal_err = |source| Error::Wal { stream: def.name.clone(), shard: id, source };
        let (store, parts, flushed) = if storage == StorageType::Hybrid {
            refuse_lossy_manifest_cut(fs.as_ref(), &dir, &def.name, id)?;
            let opts =
                StoreOptions::default().backend(reads.backend).cache(reads.cache.clone()).writer(writer_options(def));
            let (store, report) = PartStore::open(fs.clone(), &dir, opts).map_err(parts_err)?;
            if !report.removed_files.is_empty() {
                tracing::info!(stream = %def.name, shard = id, files = ?report.removed_files, "removed orphan part files");
            }
            let parts = store.snapshot();
            let flushed = store.flushed_mark().unwrap_or(0);
            (Some(store), parts, flushed)
        } else {
            (None, PartSet::new(Vec::new()), 0)
        };
        let wal = if storage == StorageType::InMemory {
            None
        } else {
            let opts = WalOptions::default()
                .fs(fs.clone())
                .durability(def.settings.durability)
                .codec(def.settings.logstore_codec)
                .segment_bytes(def.settings.logstore_segment_bytes)
                .thread_name(format!("sluice-wal-{}-{id}", def.name));
            let mut opts = opts.pin((storage == StorageType::Hybrid).then_some(flushed));
            opts.retention_bytes = def.settings.logstore_retention_bytes;
            opts.retention_ms = def.settings.logstore_retention_ms;
            let wal = Wal::open(dir.join("wal"), opts).map_err(wal_err)?;
            if storage == StorageType::Hybrid {
                wal.set_pin(Some(SeqNo(flushed)));
            }
            Some(wal)
        };
        let mut mem = Memtable::default();
        let mut flushed = flushed;
        let mut next_seq = 0;
        if let Some(wal) = &wal {
            next_seq = wal.next_seq().0;
            match storage {
                StorageType::Hybrid => {
                    let first = wal.first_seq().0;
                    if first > flushed && next_seq > flushed {
                        return Err(Error::Corrupted {
                            file: dir.join("wal"),
                            offset: 0,
                            reason: format!(
                                "the log starts at sequence {first} but rows from {flushed} on are not in any part"
                            ),
                        });
                    }
                    if flushed > next_seq {
                        return Err(Error::Corrupted {
                            file: dir.join("MANIFEST"),
                            offset: 0,
                            reason: format!("flushed mark {flushed} is beyond the end of the log ({next_seq})"),
                        });
                    }
                    let now = fs.now_ms();
                    for rec in wal.reader(SeqNo(flushed)).map_err(wal_err)? {
                        let rec = rec.map_err(wal_err)?;
                        let seg = dir.join("wal");
                        let batch = batch_codec::decode(&rec.payload, || (seg.clone(), rec.seq.0))?;
                        let batch = ingest::conform_stored(def, schema, &batch)?;
                        let (mut first_seq, mut batch) = (rec.seq.0, batch);
                        if first_seq < flushed {
                            // A record straddling the mark (not produced by flushes, which end on
                            // record boundaries, but harmless to handle).
                            let skip = (flushed - first_seq) as usize;
                            batch = batch.slice(skip, batch.num_rows() - skip);
                            first_seq = flushed;
                        }
                        let bytes = batch_bytes(&batch);
                        budget.force(bytes);
                        mem.push(Arc::new(MemBatch { first_seq, batch, appended_ms: now, bytes }));
                    }
                }
                // The log is the history: the memtable starts empty at the log's end.
                _ => flushed = next_seq,
            }
        }
        let shard = Shard {
            stream,
            id,
            dir,
            storage,
            fs,
            wal,
            durability: def.settings.durability,
            append_lock: Mutex::new(next_seq),
            state: RwLock::new(ShardState { mem, parts, flushed }),
            store,
            visible: AtomicU64::new(next_seq),
            poison: Mutex::new(None),
            maintenance: Mutex::new(()),
            budget,
            flush_queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            counters: ShardCounters::default(),
        };
        Ok(shard)
    }

    /// Appends one conformed batch; returns `(first sequence number, rows)` once it is
    /// acknowledged per the stream's durability.
    pub(crate) fn append(&self, batch: RecordBatch) -> Result<u64> {
        self.check_poison()?;
        let rows = batch.num_rows() as u64;
        // A small slice of a big batch would keep the whole batch's buffers alive in the
        // memtable: keep a compact copy instead.
        let batch = compact(batch)?;
        let bytes = batch_bytes(&batch);
        let payload = match &self.wal {
            Some(_) => Some(batch_codec::encode(&batch)?),
            None => None,
        };
        self.budget.acquire(bytes)?;
        let now = self.fs.now_ms();
        let (seq, ticket) = {
            let mut next = self.append_lock.lock();
            if self.closed.load(Ordering::Acquire) {
                self.budget.release(bytes);
                return Err(Error::Closed);
            }
            let seq = match &self.wal {
                Some(wal) => wal.next_seq().0,
                None => *next,
            };
            let mb = Arc::new(MemBatch { first_seq: seq, batch, appended_ms: now, bytes });
            self.state.write().mem.push(mb);
            let ticket = match (&self.wal, payload) {
                (Some(wal), Some(payload)) => match wal.submit(payload, rows.max(1) as u32) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        self.state.write().mem.pop();
                        self.budget.release(bytes);
                        return Err(self.wal_error(e));
                    }
                },
                _ => None,
            };
            *next = seq + rows;
            if ticket.is_none() || self.durability == Durability::None {
                self.advance_visible(seq + rows);
            }
            (seq, ticket)
        };
        if let Some(t) = ticket {
            t.wait().map_err(|e| self.wal_error(e))?;
            if let Some(wal) = &self.wal {
                self.advance_visible(wal.committed_seq().0.max(seq + rows));
            }
        }
        self.counters.rows_appended.fetch_add(rows, Ordering::Relaxed);
        Ok(seq)
    }

    fn advance_visible(&self, end: u64) {
        self.visible.fetch_max(end, Ordering::AcqRel);
    }

    /// End (exclusive) of the visible sequence numbers.
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// A consistent view: the state plus the visible end.
    pub(crate) fn snapshot(&self) -> (ShardState, u64) {
        let st = self.state.read().clone();
        let visible = self.visible();
        (st, visible)
    }

    fn wal_error(&self, e: sluice_wal::Error) -> Error {
        if let sluice_wal::Error::Poisoned { reason } = &e {
            self.set_poison(reason.clone());
        }
        Error::Wal { stream: self.stream.to_string(), shard: self.id, source: e }
    }

    pub(crate) fn set_poison(&self, reason: String) {
        let mut p = self.poison.lock();
        if p.is_none() {
            tracing::error!(stream = %self.stream, shard = self.id, %reason, "shard poisoned");
            *p = Some(reason);
        }
    }

    pub(crate) fn check_poison(&self) -> Result<()> {
        match &*self.poison.lock() {
            Some(reason) => {
                Err(Error::Poisoned { stream: self.stream.to_string(), shard: self.id, reason: reason.clone() })
            }
            None => Ok(()),
        }
    }

    /// Whether the memtable has reached a flush threshold (`now_ms` for the time threshold).
    pub(crate) fn needs_flush(&self, def: &StreamDef, now_ms: u64) -> bool {
        let st = self.state.read();
        let s = &def.settings;
        if self.storage == StorageType::InMemory {
            let limit = s.logstore_retention_bytes.unwrap_or(INMEMORY_DEFAULT_BYTES);
            return st.mem.bytes() > limit
                || s.logstore_retention_ms
                    .is_some_and(|ms| st.mem.oldest_ms().is_some_and(|t| now_ms.saturating_sub(t) > ms));
        }
        st.mem.rows() >= s.flush_threshold_count
            || st.mem.bytes() >= s.flush_threshold_bytes
            || st.mem.oldest_ms().is_some_and(|t| now_ms.saturating_sub(t) >= s.flush_threshold_ms)
    }

    /// When the oldest memtable row reaches the time threshold (ms), if there is one.
    pub(crate) fn flush_deadline(&self, def: &StreamDef) -> Option<u64> {
        if self.storage == StorageType::InMemory {
            return None;
        }
        self.state.read().mem.oldest_ms().map(|t| t + def.settings.flush_threshold_ms)
    }

    /// Moves the visible memtable rows out: into a part (hybrid), or just out of memory
    /// (streaming: they stay in the log; in-memory: rows beyond the retention are dropped).
    /// Returns the rows moved.
    /// `roll_log`: also close the active log segment when the flush covers all of it, so that
    /// retention frees it now (an explicit [`crate::Database::flush`]). Background flushes do
    /// not: closing a segment syncs it on the log's writer thread, which would stall appends.
    pub(crate) fn flush(&self, def: &StreamDef, schema_with_sn: &SchemaRef, roll_log: bool) -> Result<u64> {
        let _m = self.maintenance.lock();
        self.check_poison()?;
        let visible = self.visible();
        let batches: Vec<Arc<MemBatch>> =
            self.state.read().mem.batches().iter().take_while(|b| b.end_seq() <= visible).cloned().collect();
        let Some(last) = batches.last() else {
            // Nothing new (a background flush got there first): still free the log.
            if roll_log && self.storage == StorageType::Hybrid {
                self.free_flushed_log(self.state.read().flushed, true);
            }
            return Ok(0);
        };
        let end = last.end_seq();
        let first = batches[0].first_seq;
        let rows = end - first;
        match self.storage {
            StorageType::Hybrid => {
                let started = std::time::Instant::now();
                let store = self.store()?;
                let sorted = sort_for_part(def, schema_with_sn, &batches)?;
                let info = store
                    .write_part(schema_with_sn.clone(), &sorted, SeqRange::new(first, end - 1))
                    .map_err(|e| self.parts_error(e))?;
                let parts = self.commit(store, Edit { add: vec![info], remove: vec![], flushed_mark: Some(end) })?;
                let freed = {
                    let mut st = self.state.write();
                    st.parts = parts;
                    st.flushed = end;
                    st.mem.drop_before(end)
                };
                self.budget.release(freed);
                if let Some(wal) = &self.wal {
                    wal.set_pin(Some(SeqNo(end)));
                }
                self.free_flushed_log(end, roll_log);
                let c = &self.counters;
                c.flushes.fetch_add(1, Ordering::Relaxed);
                c.flush_rows.fetch_add(rows, Ordering::Relaxed);
                c.flush_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            StorageType::Streaming => {
                let freed = {
                    let mut st = self.state.write();
                    st.flushed = end;
                    st.mem.drop_before(end)
                };
                self.budget.release(freed);
            }
            StorageType::InMemory => {
                // Nothing to move to: evict the oldest rows beyond the retention limits.
                let limit_bytes = def.settings.logstore_retention_bytes.unwrap_or(INMEMORY_DEFAULT_BYTES);
                let min_ms = def.settings.logstore_retention_ms.map(|ms| self.fs.now_ms().saturating_sub(ms));
                let freed = {
                    let mut st = self.state.write();
                    let mut keep_bytes = st.mem.bytes();
                    let mut cut = st.flushed;
                    for b in st.mem.batches().iter().take_while(|b| b.end_seq() <= visible) {
                        let too_old = min_ms.is_some_and(|m| b.appended_ms < m);
                        if keep_bytes <= limit_bytes && !too_old {
                            break;
                        }
                        keep_bytes -= b.bytes;
                        cut = b.end_seq();
                    }
                    st.flushed = cut;
                    st.mem.drop_before(cut)
                };
                self.budget.release(freed);
                return Ok(0);
            }
        }
        Ok(rows)
    }

    /// Applies retention after a flush up to `flushed`; with `roll`, first closes a big active
    /// segment when everything logged is in parts, so that retention can delete it too.
    fn free_flushed_log(&self, flushed: u64, roll: bool) {
        let Some(wal) = &self.wal else { return };
        if roll
            && wal.next_seq().0 == flushed
            && wal.disk_bytes() > ROLL_AFTER_FLUSH_BYTES
            && let Err(e) = wal.roll()
        {
            tracing::warn!(stream = %self.stream, shard = self.id, error = %e, "WAL roll failed");
        }
        if let Err(e) = wal.apply_retention() {
            tracing::warn!(stream = %self.stream, shard = self.id, error = %e, "WAL retention failed");
        }
    }

    fn store(&self) -> Result<&PartStore> {
        self.store.as_ref().ok_or_else(|| Error::NotSupported(format!("stream '{}' keeps no parts", self.stream)))
    }

    /// Commits an edit to the manifest (poisoning the shard if that fails).
    fn commit(&self, store: &PartStore, edit: Edit) -> Result<PartSet> {
        store.commit(&edit).map_err(|e| {
            self.set_poison(format!("manifest commit failed: {e}"));
            self.parts_error(e)
        })
    }

    /// Runs one merge if the policy finds one, and expires parts past the TTL cutoff. Returns
    /// true when the part set changed.
    pub(crate) fn merge(
        &self,
        policy: &MergePolicy,
        ttl: Option<(i64, String)>,
        dedup: Option<sluice_columnstore::Dedup>,
    ) -> Result<bool> {
        let Some(store) = &self.store else { return Ok(false) };
        let _m = self.maintenance.lock();
        self.check_poison()?;
        let mut changed = false;
        // The TTL's column: rows expire by it in merges, whole parts by its largest value. For
        // the parts' own time column (`_tp_time`) the manifest's time ranges answer without
        // opening any part.
        let cutoff = ttl.as_ref().map(|t| t.0);
        let column = ttl.map(|t| t.1).filter(|c| c != TP_TIME);
        if let Some(cutoff) = cutoff {
            changed |= !store.expire_on(cutoff, column.as_deref()).map_err(|e| self.parts_error(e))?.is_empty();
        }
        let opts = MergeOptions::default().ttl_cutoff_ms(cutoff).ttl_column(column).dedup(dedup);
        let started = std::time::Instant::now();
        if store.maybe_merge(policy, &opts).map_err(|e| self.parts_error(e))?.is_some() {
            changed = true;
            self.counters.merges.fetch_add(1, Ordering::Relaxed);
            self.counters.merge_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        if changed {
            self.state.write().parts = store.snapshot();
        }
        Ok(changed)
    }

    pub(crate) fn parts_error(&self, e: sluice_columnstore::Error) -> Error {
        Error::Parts { stream: self.stream.to_string(), shard: self.id, source: e }
    }

    /// Stops appends and wakes subscribers; closes the log (flushing what it queued).
    pub(crate) fn close(&self) -> Result<()> {
        {
            let _g = self.append_lock.lock();
            self.closed.store(true, Ordering::Release);
        }
        if let Some(wal) = &self.wal {
            wal.sync()
                .or_else(|e| match e {
                    sluice_wal::Error::Closed | sluice_wal::Error::Poisoned { .. } => Ok(()),
                    e => Err(e),
                })
                .map_err(|e| Error::Wal { stream: self.stream.to_string(), shard: self.id, source: e })?;
        }
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Options of every part written for `def`: zstd, sort key and time column recorded.
pub(crate) fn writer_options(def: &StreamDef) -> WriterOptions {
    WriterOptions::default().time_column(TP_TIME).sort_key(def.sort_key.iter().cloned())
}

/// Memory the rows of `batch` take (its slice of the buffers, not the whole buffers).
pub(crate) fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64).sum()
}

/// `batch`, copied into buffers of its own size when it is a small view of larger buffers.
fn compact(batch: RecordBatch) -> Result<RecordBatch> {
    let held = batch.get_array_memory_size() as u64;
    let used = batch_bytes(&batch);
    if held <= 2 * used + (64 << 10) {
        return Ok(batch);
    }
    let idx = arrow::array::UInt32Array::from_iter_values(0..batch.num_rows() as u32);
    Ok(take_record_batch(&batch, &idx)?)
}

/// The memtable batches as one batch with `_tp_sn`, sorted by the sort key (stable, so rows
/// with equal keys stay in sequence order).
pub(crate) fn sort_for_part(
    def: &StreamDef,
    schema: &SchemaRef,
    batches: &[Arc<MemBatch>],
) -> Result<Vec<RecordBatch>> {
    let with_sn: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            // By name: batches appended before an ALTER STREAM have other columns.
            crate::scan::complete(def, schema, &crate::scan::with_sn(&b.batch, b.first_seq)?)
        })
        .collect::<Result<_>>()?;
    let all = concat_batches(schema, &with_sn)?;
    let keys: Vec<SortColumn> = def
        .sort_key
        .iter()
        .filter_map(|k| all.column_by_name(k).map(|c| SortColumn { values: c.clone(), options: None }))
        .collect();
    if keys.is_empty() || is_sorted(&keys)? {
        return Ok(vec![all]);
    }
    // Ties keep sequence order.
    let mut keys = keys;
    let sn = all.column(all.num_columns() - 1).clone();
    keys.push(SortColumn { values: sn, options: None });
    let idx = lexsort_to_indices(&keys, None)?;
    Ok(vec![take_record_batch(&all, &idx)?])
}

/// Whether the rows are already in key order (common: `_tp_time` of appends is increasing).
fn is_sorted(keys: &[SortColumn]) -> Result<bool> {
    let fields: Vec<arrow::row::SortField> =
        keys.iter().map(|k| arrow::row::SortField::new(k.values.data_type().clone())).collect();
    let conv = arrow::row::RowConverter::new(fields)?;
    let rows = conv.convert_columns(&keys.iter().map(|k| k.values.clone()).collect::<Vec<_>>())?;
    Ok((1..rows.num_rows()).all(|i| rows.row(i - 1) <= rows.row(i)))
}
