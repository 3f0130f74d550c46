//! [`PartStore`]: one shard's parts, tying the manifest, the live [`PartSet`], the writer and
//! the merger together. This is what the engine's flusher and merger threads call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parking_lot::Mutex;
use sluice_vfs::FileSystem;

use crate::manifest::PARTS_DIR;
use crate::merger::merge_parts;
use crate::policy::{expired_parts, pick_merge};
use crate::{
    ColumnCache, Edit, Error, Manifest, ManifestOptions, MergeOptions, MergePolicy, NewPart, PartHandle, PartId,
    PartInfo, PartSet, PartWriter, ReadBackend, RecoveryReport, Result, SeqRange, WriterOptions,
};

/// Options of a [`PartStore`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// How parts are read.
    pub backend: ReadBackend,
    /// How parts are written (flushes and merges).
    pub writer: WriterOptions,
    /// Manifest options.
    pub manifest: ManifestOptions,
    /// Decoded columns shared by the parts' cached scans (`None`: no cache).
    pub cache: Option<Arc<ColumnCache>>,
}

impl StoreOptions {
    /// Sets [`StoreOptions::backend`].
    pub fn backend(mut self, backend: ReadBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`StoreOptions::writer`].
    pub fn writer(mut self, writer: WriterOptions) -> Self {
        self.writer = writer;
        self
    }

    /// Sets [`StoreOptions::cache`].
    pub fn cache(mut self, cache: Option<Arc<ColumnCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`StoreOptions::manifest`].
    pub fn manifest(mut self, manifest: ManifestOptions) -> Self {
        self.manifest = manifest;
        self
    }
}

/// The committed parts of one shard.
#[derive(Debug)]
pub struct PartStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    parts_dir: PathBuf,
    opts: StoreOptions,
    /// The single writer of the manifest; held across the manifest's append + sync.
    manifest: Mutex<Manifest>,
    /// The current snapshot; its lock is held only to clone or swap it.
    current: Mutex<(PartSet, Option<u64>)>,
    next_id: AtomicU64,
}

impl PartStore {
    /// Opens (or creates) the shard directory `dir`: recovers the manifest (see
    /// [`Manifest::open`]) and builds handles for the live parts (opened lazily).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        opts: StoreOptions,
    ) -> Result<(PartStore, RecoveryReport)> {
        let dir = dir.as_ref().to_path_buf();
        let (manifest, report) = Manifest::open(fs.clone(), &dir, opts.manifest.clone())?;
        let parts_dir = dir.join(PARTS_DIR);
        let state = manifest.state();
        let handles = state
            .parts
            .values()
            .map(|info| {
                PartHandle::with_cache(
                    fs.clone(),
                    parts_dir.join(info.file_name()),
                    info.clone(),
                    opts.backend,
                    opts.cache.clone(),
                )
            })
            .collect();
        let set = PartSet::new(handles);
        let store = PartStore {
            next_id: AtomicU64::new(state.next_part_id.0),
            current: Mutex::new((set, state.flushed_mark)),
            fs,
            dir,
            parts_dir,
            opts,
            manifest: Mutex::new(manifest),
        };
        Ok((store, report))
    }

    /// The shard directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the part files.
    pub fn parts_dir(&self) -> &Path {
        &self.parts_dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// A fresh part id (not durable until a part with it is committed).
    pub fn allocate_id(&self) -> PartId {
        PartId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The current live parts: a cheap, immutable snapshot.
    pub fn snapshot(&self) -> PartSet {
        self.current.lock().0.clone()
    }

    /// The committed flushed WAL mark.
    pub fn flushed_mark(&self) -> Option<u64> {
        self.current.lock().1
    }

    /// Starts writing a new part with the store's writer options.
    pub fn writer(&self, schema: SchemaRef, seq: SeqRange, level: u32) -> Result<PartWriter> {
        let part = NewPart { id: self.allocate_id(), seq, level };
        PartWriter::create(self.fs.clone(), &self.parts_dir, part, schema, &self.opts.writer)
    }

    /// Writes sorted `batches` as a new level-0 part (not yet committed).
    pub fn write_part(&self, schema: SchemaRef, batches: &[RecordBatch], seq: SeqRange) -> Result<PartInfo> {
        let mut w = self.writer(schema, seq, 0)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()
    }

    /// Durably applies `edit` and publishes the new part set. Removed parts are deleted from
    /// disk when the last snapshot holding them is dropped.
    pub fn commit(&self, edit: &Edit) -> Result<PartSet> {
        let mut manifest = self.manifest.lock();
        manifest.commit(edit)?;
        let mut cur = self.current.lock();
        let mut parts: Vec<Arc<PartHandle>> = Vec::with_capacity(cur.0.len() + edit.add.len());
        for h in cur.0.iter() {
            if edit.remove.contains(&h.id()) {
                h.mark_obsolete();
            } else {
                parts.push(h.clone());
            }
        }
        for info in &edit.add {
            let path = self.parts_dir.join(info.file_name());
            parts.push(PartHandle::with_cache(
                self.fs.clone(),
                path,
                info.clone(),
                self.opts.backend,
                self.opts.cache.clone(),
            ));
        }
        let set = PartSet::new(parts);
        *cur = (set.clone(), manifest.state().flushed_mark);
        Ok(set)
    }

    /// Merges the live parts `ids` into one and commits the swap atomically. Returns the new
    /// part, or `None` when the TTL cutoff left no row (the inputs are then just removed).
    pub fn merge(&self, ids: &[PartId], opts: &MergeOptions) -> Result<Option<PartInfo>> {
        let snapshot = self.snapshot();
        let mut parts = Vec::with_capacity(ids.len());
        for id in ids {
            let h = snapshot.get(*id).ok_or_else(|| Error::InvalidArgument(format!("part {id} is not live")))?;
            parts.push(h.part()?);
        }
        parts.sort_by_key(|p| (p.info().seq.first, p.info().id));
        let out = merge_parts(self.fs.clone(), &self.parts_dir, self.allocate_id(), &parts, &self.opts.writer, opts)?;
        let edit = Edit { add: out.iter().cloned().collect(), remove: ids.to_vec(), flushed_mark: None };
        if let Err(e) = self.commit(&edit) {
            // Refused before anything was written (inputs merged away meanwhile, or poisoned):
            // the new file is an orphan, remove it now. After an I/O failure the edit may have
            // become durable, so the file stays and recovery decides.
            let refused = matches!(e, Error::InvalidArgument(_) | Error::Poisoned { .. });
            if let (true, Some(info)) = (refused, &out) {
                let _ = self.fs.remove_file(&self.parts_dir.join(info.file_name()));
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Runs one merge if `policy` picks one; returns the ids merged.
    pub fn maybe_merge(&self, policy: &MergePolicy, opts: &MergeOptions) -> Result<Option<Vec<PartId>>> {
        let Some(ids) = pick_merge(&self.snapshot().infos(), policy) else { return Ok(None) };
        self.merge(&ids, opts)?;
        Ok(Some(ids))
    }

    /// Removes, in one edit, every part whose rows are all older than `cutoff_ms`.
    pub fn expire(&self, cutoff_ms: i64) -> Result<Vec<PartId>> {
        self.expire_on(cutoff_ms, None)
    }

    /// [`PartStore::expire`] by `column` (`None`: the parts' time column): a part goes when
    /// the column's largest value in it is before the cutoff (parts without statistics for it
    /// stay; their rows expire in merges).
    pub fn expire_on(&self, cutoff_ms: i64, column: Option<&str>) -> Result<Vec<PartId>> {
        let snapshot = self.snapshot();
        let ids = match column {
            None => expired_parts(&snapshot.infos(), cutoff_ms),
            Some(col) => {
                let mut ids = Vec::new();
                for h in snapshot.iter() {
                    let part = h.part()?;
                    let range = crate::stats::time_range(&part.schema(), &h.info().columns, Some(col));
                    if range.is_some_and(|r| r.max_ms < cutoff_ms) {
                        ids.push(h.id());
                    }
                }
                ids
            }
        };
        if !ids.is_empty() {
            self.commit(&Edit { add: vec![], remove: ids.clone(), flushed_mark: None })?;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arrow::array::AsArray;
    use arrow::datatypes::UInt64Type;
    use sluice_vfs::{Crash, Rng};

    use super::*;
    use crate::testutil::{Env, event_schema, events};
    use crate::{ColumnRange, Predicate, Projection, ScanOptions};

    fn opts(env: &Env) -> StoreOptions {
        StoreOptions::default()
            .backend(env.backend)
            .writer(WriterOptions::default().sort_key(["_tp_time"]).time_column("_tp_time").row_group_rows(1000))
    }

    fn shard_dir(env: &Env) -> PathBuf {
        env.dir.parent().expect("parts dir has a parent").to_path_buf()
    }

    fn ids(set: &PartSet, pred: &Predicate) -> BTreeSet<u64> {
        let scan_opts = ScanOptions::default().predicate(pred.clone()).projection(Projection::names(["row_id"]));
        let mut out = BTreeSet::new();
        for h in set.prune(pred) {
            for b in h.scan(&scan_opts).expect("scan") {
                out.extend(b.expect("batch").column(0).as_primitive::<UInt64Type>().values().iter().copied());
            }
        }
        out
    }

    #[test]
    fn flush_merge_expire_and_reopen() {
        for env in [Env::sim(1), Env::real(ReadBackend::Mmap)] {
            let (store, _) = PartStore::open(env.fs.clone(), shard_dir(&env), opts(&env)).expect("open");
            let mut rng = Rng::new(1);
            for i in 0..5u64 {
                let b = events(&mut rng, 400, i as i64 * 10_000, i * 400);
                let info = store.write_part(event_schema(), &[b], SeqRange::new(i * 10, i * 10 + 9)).expect("write");
                store
                    .commit(&Edit { add: vec![info], remove: vec![], flushed_mark: Some(i * 10 + 9) })
                    .expect("commit");
            }
            assert_eq!(store.snapshot().len(), 5);
            let all = Predicate::all();
            assert_eq!(ids(&store.snapshot(), &all), (0..2000).collect());
            let before = store.snapshot();
            let merged = store.maybe_merge(&MergePolicy::default(), &MergeOptions::default()).expect("merge");
            assert_eq!(merged.map(|v| v.len()), Some(5));
            let after = store.snapshot();
            assert_eq!(after.len(), 1);
            assert_eq!(after.as_slice()[0].info().level, 1);
            assert_eq!(after.as_slice()[0].info().seq, SeqRange::new(0, 49));
            // The old snapshot still reads the merged-away parts; they go when it is dropped.
            assert_eq!(ids(&before, &all).len(), 2000);
            let old_files: Vec<PathBuf> = before.iter().map(|h| h.path().to_path_buf()).collect();
            drop(before);
            assert!(old_files.iter().all(|p| !env.fs.exists(p)));
            assert_eq!(ids(&after, &all), (0..2000).collect());
            // Time pruning on the merged part.
            let recent = Predicate::all().and(ColumnRange::new("_tp_time").ge(40_000i64));
            assert!(ids(&after, &recent).iter().all(|&id| id >= 1000));
            // Expire everything before 20 s: nothing is whole-part expired in one merged part ...
            assert!(store.expire(20_000).expect("expire").is_empty());
            // ... but a TTL merge drops the rows.
            let id = after.as_slice()[0].id();
            drop(after);
            let out = store.merge(&[id], &MergeOptions::default().ttl_cutoff_ms(Some(20_000))).expect("ttl merge");
            let info = out.expect("rows left");
            assert!(info.time.is_some_and(|t| t.min_ms >= 20_000));
            assert_eq!(store.flushed_mark(), Some(49));
            drop(store);
            let (store, report) = PartStore::open(env.fs.clone(), shard_dir(&env), opts(&env)).expect("reopen");
            assert!(report.removed_files.is_empty(), "{:?}", report.removed_files);
            assert_eq!(store.snapshot().infos(), vec![info.clone()]);
            assert_eq!(store.expire(i64::MAX).expect("expire"), vec![info.id]);
            assert!(store.snapshot().is_empty());
            assert!(env.fs.list_dir(store.parts_dir()).expect("ls").is_empty());
            assert!(store.allocate_id() > info.id);
        }
    }

    /// Random flushes, merges and crashes against a model of the committed rows.
    #[test]
    fn model_flush_merge_crash() {
        for seed in 0..6 {
            let env = Env::sim(seed);
            let sim = env.sim.clone().expect("simulated");
            let mut rng = Rng::new(seed);
            let (mut store, _) = PartStore::open(env.fs.clone(), shard_dir(&env), opts(&env)).expect("open");
            let mut model: BTreeSet<u64> = BTreeSet::new();
            let mut next_row = 0u64;
            for step in 0..25 {
                match rng.below(4) {
                    0 | 1 => {
                        let n = rng.range(1, 300) as usize;
                        let b = events(&mut rng, n, step * 1000, next_row);
                        let seq = SeqRange::new(next_row, next_row + n as u64 - 1);
                        let info = store.write_part(event_schema(), &[b], seq).expect("write");
                        store
                            .commit(&Edit { add: vec![info], remove: vec![], flushed_mark: Some(seq.last) })
                            .expect("commit");
                        model.extend(next_row..next_row + n as u64);
                        next_row += n as u64;
                    }
                    2 => {
                        let policy = MergePolicy::default().min_fan_in(2).max_fan_in(3);
                        store.maybe_merge(&policy, &MergeOptions::default().read_batch_rows(64)).expect("merge");
                    }
                    _ => {
                        // Crash with a part written but not committed: it must vanish.
                        let b = events(&mut rng, 10, 0, 1 << 40);
                        store.write_part(event_schema(), &[b], SeqRange::new(0, 0)).expect("write");
                        drop(store);
                        sim.crash(if rng.chance(0.5) { Crash::PowerLoss } else { Crash::PowerLossTorn });
                        let (s, _) = PartStore::open(env.fs.clone(), shard_dir(&env), opts(&env)).expect("reopen");
                        store = s;
                    }
                }
                let got = ids(&store.snapshot(), &Predicate::all());
                assert_eq!(got, model, "seed {seed} step {step}");
                let live = store.snapshot().len();
                assert_eq!(env.fs.list_dir(store.parts_dir()).expect("ls").len(), live, "seed {seed} step {step}");
            }
        }
    }
}

/// Throughput report, not a pass/fail test: run with
/// `cargo test -p sluice-columnstore --release -- --ignored perf_report --nocapture`
/// (`ROWS` sets the row count, default 2 Mi).
#[cfg(test)]
mod perf {
    use std::time::Instant;

    use super::*;
    use crate::testutil::{Env, bench_events};
    use crate::{ColumnRange, Part, Predicate, Projection, ScanOptions};

    #[test]
    #[ignore]
    fn perf_report() {
        let rows: usize = std::env::var("ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(2 << 20);
        let batch = bench_events(rows, 42);
        let env = Env::real(ReadBackend::Mmap);
        let opts = StoreOptions::default().writer(WriterOptions::default().sort_key(["ts"]).time_column("ts"));
        let (store, _) = PartStore::open(env.fs.clone(), env.dir.parent().expect("shard"), opts).expect("open");
        let t = Instant::now();
        let mut w = store.writer(batch.schema(), SeqRange::new(0, rows as u64), 0).expect("writer");
        for i in (0..rows).step_by(65536) {
            w.write(&batch.slice(i, 65536.min(rows - i))).expect("write");
        }
        let info = w.finish().expect("finish");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "write: {rows} rows in {secs:.3}s ({:.1} Mrows/s), {:.2} bytes/row",
            rows as f64 / secs / 1e6,
            info.file_bytes as f64 / rows as f64
        );
        let path = store.parts_dir().join(info.file_name());
        for backend in [ReadBackend::Mmap, ReadBackend::Pread] {
            let part = Part::open_expecting(env.fs.as_ref(), &path, backend, &info).expect("open");
            let cases = [
                ("all columns", ScanOptions::default()),
                ("value only", ScanOptions::default().projection(Projection::names(["value"]))),
                (
                    "1% time window",
                    ScanOptions::default().projection(Projection::names(["value"])).predicate(
                        Predicate::all().and(
                            ColumnRange::new("ts")
                                .ge(1_704_067_200_000i64 + 43_200_000)
                                .lt(1_704_067_200_000i64 + 44_064_000),
                        ),
                    ),
                ),
            ];
            for (name, o) in cases {
                for run in 0..2 {
                    let t = Instant::now();
                    let mut n = 0;
                    for b in part.scan(&o.clone().batch_size(65536)).expect("scan") {
                        n += b.expect("batch").num_rows();
                    }
                    let secs = t.elapsed().as_secs_f64();
                    if run == 1 {
                        println!("{backend:5} {name:16}: {n} rows in {:.1} ms", secs * 1e3);
                    }
                }
            }
        }
        let t = Instant::now();
        let other = store.write_part(batch.schema(), &[batch.slice(0, rows / 2)], SeqRange::new(0, 1)).expect("write");
        store.commit(&Edit { add: vec![info, other], remove: vec![], flushed_mark: None }).expect("commit");
        let ids: Vec<PartId> = store.snapshot().iter().map(|h| h.id()).collect();
        let t2 = Instant::now();
        store.merge(&ids, &MergeOptions::default()).expect("merge");
        println!(
            "merge of {} rows: {:.3}s (setup {:.3}s)",
            rows + rows / 2,
            t2.elapsed().as_secs_f64(),
            (t2 - t).as_secs_f64()
        );
        let _ = env.fs.list_dir(store.parts_dir());
    }
}
