//! The shard's part manifest: an append-only, checksummed log of [`Edit`]s (`<shard>/MANIFEST`)
//! that says which parts are live and up to which WAL sequence number rows are flushed.
//!
//! Every manifest file starts with a header and one snapshot record (the full state), followed
//! by edit records. [`Manifest::commit`] appends one record and `fdatasync`s it before
//! returning: that is the commit point. When the file grows past
//! [`ManifestOptions::compact_bytes`] it is rewritten as a single snapshot into
//! `MANIFEST.tmp`, synced, renamed over `MANIFEST`, and the directory synced.
//!
//! Shard directory layout:
//! ```text
//! <shard>/MANIFEST                      this log
//! <shard>/MANIFEST.tmp                  a compaction or creation in progress (deleted on open)
//! <shard>/parts/<id:016x>.parquet       part files
//! <shard>/parts/<id:016x>.parquet.tmp   a part being written (deleted on open)
//! ```

/// Byte layout of headers and records.
pub(crate) mod codec;
/// Replay, torn tails, orphan part files.
pub(crate) mod recovery;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_vfs::{FileSystem, WriteFile};

use crate::{Error, PartId, PartInfo, Result};

/// File name of the manifest inside a shard directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the parts directory inside a shard directory.
pub const PARTS_DIR: &str = "parts";

/// One atomic change of the part set: parts added, parts removed, and optionally the new flushed
/// WAL mark. A flush adds one part and moves the mark; a merge adds the merged part and removes
/// its inputs in the same edit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    /// Parts that become live.
    pub add: Vec<PartInfo>,
    /// Parts that stop being live.
    pub remove: Vec<PartId>,
    /// Every WAL record with a sequence number `<=` this is in a live part. Never moves back:
    /// a smaller value than the current one is ignored.
    pub flushed_mark: Option<u64>,
}

/// The state a manifest describes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestState {
    /// Live parts by id.
    pub parts: BTreeMap<PartId, PartInfo>,
    /// Highest WAL sequence number whose rows are all in live parts, if any.
    pub flushed_mark: Option<u64>,
    /// The smallest id never used by a committed part.
    pub next_part_id: PartId,
}

impl ManifestState {
    fn from_snapshot(parts: Vec<PartInfo>, flushed_mark: Option<u64>, next: PartId) -> Self {
        let mut s = ManifestState { parts: BTreeMap::new(), flushed_mark, next_part_id: next };
        for p in parts {
            s.next_part_id = s.next_part_id.max(p.id.next());
            s.parts.insert(p.id, p);
        }
        s
    }

    /// Applies an edit; `Err` when it does not fit the state (removing a part that is not
    /// live, adding one twice).
    pub(crate) fn apply(&mut self, edit: &Edit) -> Result<(), String> {
        self.check(edit)?;
        for id in &edit.remove {
            self.parts.remove(id);
        }
        for p in &edit.add {
            self.next_part_id = self.next_part_id.max(p.id.next());
            self.parts.insert(p.id, p.clone());
        }
        if let Some(m) = edit.flushed_mark {
            self.flushed_mark = Some(self.flushed_mark.map_or(m, |old| old.max(m)));
        }
        Ok(())
    }

    fn check(&self, edit: &Edit) -> Result<(), String> {
        for (i, id) in edit.remove.iter().enumerate() {
            if !self.parts.contains_key(id) || edit.remove[..i].contains(id) {
                return Err(format!("edit removes part {id}, which is not live"));
            }
        }
        for (i, p) in edit.add.iter().enumerate() {
            let twice = edit.add[..i].iter().any(|q| q.id == p.id);
            let live = self.parts.contains_key(&p.id) && !edit.remove.contains(&p.id);
            if twice || live {
                return Err(format!("edit adds part {}, which is already live", p.id));
            }
        }
        Ok(())
    }
}

/// Options of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestOptions {
    /// Rewrite the manifest as one snapshot once it is larger than this and more than twice
    /// its size after the last rewrite. Default 1 MiB.
    pub compact_bytes: u64,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions { compact_bytes: 1 << 20 }
    }
}

impl ManifestOptions {
    /// Sets [`ManifestOptions::compact_bytes`].
    pub fn compact_bytes(mut self, bytes: u64) -> Self {
        self.compact_bytes = bytes;
        self
    }
}

/// What opening a manifest found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// True when there was no manifest and an empty one was created.
    pub created: bool,
    /// Records replayed.
    pub records: usize,
    /// Bytes of torn tail cut off the manifest.
    pub truncated_bytes: u64,
    /// Files deleted from the parts directory (orphans and temporary files).
    pub removed_files: Vec<String>,
}

/// An open manifest: the single writer of one shard's `MANIFEST`.
#[derive(Debug)]
pub struct Manifest {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    path: PathBuf,
    file: Box<dyn WriteFile>,
    len: u64,
    len_after_snapshot: u64,
    state: ManifestState,
    opts: ManifestOptions,
    poisoned: Option<String>,
}

impl Manifest {
    /// Opens (or creates) the manifest of the shard directory `dir`: replays it, cuts a torn
    /// tail, checks every live part file exists with its recorded size, and deletes orphan and
    /// temporary part files. Opening twice in a row finds the same state.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        opts: ManifestOptions,
    ) -> Result<(Manifest, RecoveryReport)> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let parts_dir = dir.join(PARTS_DIR);
        fs.create_dir_all(&parts_dir).map_err(|e| Error::io("mkdir", &parts_dir, e))?;
        let mut report = RecoveryReport::default();
        if fs.exists(&tmp) {
            // An interrupted creation or compaction: MANIFEST (if any) is still authoritative.
            fs.remove_file(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
        }
        let (file, len, state) = if fs.exists(&path) {
            let bytes = fs.open_read(&path).and_then(|f| f.read_all()).map_err(|e| Error::io("read", &path, e))?;
            let replayed = recovery::replay(&path, &bytes)?;
            report.records = replayed.records;
            let mut file = fs.open_append(&path).map_err(|e| Error::io("open", &path, e))?;
            if replayed.good_len < bytes.len() as u64 {
                report.truncated_bytes = bytes.len() as u64 - replayed.good_len;
                tracing::warn!(
                    file = %path.display(),
                    offset = replayed.good_len,
                    bytes = report.truncated_bytes,
                    "cutting a torn manifest tail"
                );
                file.truncate(replayed.good_len).map_err(|e| Error::io("truncate", &path, e))?;
            }
            // What was read may have been in the page cache only (a process crash after a
            // failed sync): make it durable before anything builds on it.
            file.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
            fs.sync_dir(&dir).map_err(|e| Error::io("fsync dir", &dir, e))?;
            (file, replayed.good_len, replayed.state)
        } else {
            report.created = true;
            let state = ManifestState { next_part_id: PartId(1), ..ManifestState::default() };
            let (file, len) = write_snapshot(fs.as_ref(), &dir, &state)?;
            (file, len, state)
        };
        recovery::check_live_parts(fs.as_ref(), &parts_dir, &state)?;
        report.removed_files = recovery::remove_orphans(fs.as_ref(), &parts_dir, &state)?;
        let m = Manifest { fs, dir, path, file, len, len_after_snapshot: len, state, opts, poisoned: None };
        Ok((m, report))
    }

    /// The committed state.
    pub fn state(&self) -> &ManifestState {
        &self.state
    }

    /// The shard directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current size of the manifest file.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Durably commits `edit`: when this returns `Ok`, the edit survives any crash. On an I/O
    /// failure the edit may or may not have become durable and the manifest is poisoned
    /// (reopen it to learn the outcome).
    pub fn commit(&mut self, edit: &Edit) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(Error::Poisoned { reason: reason.clone() });
        }
        self.state.check(edit).map_err(Error::InvalidArgument)?;
        let record = codec::encode_edit(edit);
        if let Err(e) = self.file.append(&record).and_then(|()| self.file.sync_data()) {
            self.poisoned = Some(format!("manifest append: {e}"));
            return Err(Error::io("append", &self.path, e));
        }
        self.len += record.len() as u64;
        self.state.apply(edit).map_err(Error::InvalidArgument)?;
        if self.len > self.opts.compact_bytes && self.len > 2 * self.len_after_snapshot {
            // The edit is durable already; a failed rewrite leaves the old file in charge.
            if let Err(e) = self.compact() {
                tracing::warn!(file = %self.path.display(), error = %e, "manifest compaction failed");
            }
        }
        Ok(())
    }

    /// Rewrites the manifest as a single snapshot of the current state (atomic: temporary
    /// file, sync, rename, directory sync).
    pub fn compact(&mut self) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(Error::Poisoned { reason: reason.clone() });
        }
        let tmp = self.dir.join(format!("{MANIFEST_FILE}.tmp"));
        let (file, len) = match write_tmp(self.fs.as_ref(), &tmp, &self.state) {
            Ok(x) => x,
            Err(e) => {
                let _ = self.fs.remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.fs.rename(&tmp, &self.path) {
            let _ = self.fs.remove_file(&tmp);
            return Err(Error::io("rename", &self.path, e));
        }
        // From here on the old file is unlinked: later edits must go to the new one, and they
        // are only safe once the rename is durable.
        self.file = file;
        self.len = len;
        self.len_after_snapshot = len;
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            self.poisoned = Some(format!("directory sync after manifest rewrite: {e}"));
            return Err(Error::io("fsync dir", &self.dir, e));
        }
        Ok(())
    }
}

/// Writes header + snapshot of `state` to `tmp` and syncs it; returns the open file and length.
fn write_tmp(fs: &dyn FileSystem, tmp: &Path, state: &ManifestState) -> Result<(Box<dyn WriteFile>, u64)> {
    let header = codec::encode_header();
    let snap = codec::encode_snapshot(state.parts.values(), state.flushed_mark, state.next_part_id);
    let mut f = fs.create_new(tmp).map_err(|e| Error::io("create", tmp, e))?;
    f.append_vectored(&[&header, &snap]).map_err(|e| Error::io("write", tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
    Ok((f, (header.len() + snap.len()) as u64))
}

/// Creates `dir/MANIFEST` holding a snapshot of `state`, atomically.
fn write_snapshot(fs: &dyn FileSystem, dir: &Path, state: &ManifestState) -> Result<(Box<dyn WriteFile>, u64)> {
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    let path = dir.join(MANIFEST_FILE);
    let (file, len) = write_tmp(fs, &tmp, state)?;
    fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
    fs.sync_dir(dir).map_err(|e| Error::io("fsync dir", dir, e))?;
    Ok((file, len))
}

#[cfg(test)]
mod tests {
    use std::io;

    use sluice_vfs::{Crash, Rng, SimFs};

    use super::*;
    use crate::{ColumnStats, SeqRange, Stat, TimeRange};

    const DIR: &str = "/s/0";

    fn info(id: u64, file_bytes: u64) -> PartInfo {
        PartInfo {
            id: PartId(id),
            level: (id % 3) as u32,
            rows: id * 100,
            file_bytes,
            data_bytes: file_bytes / 2,
            tail_crc: id as u32,
            seq: SeqRange::new(id * 10, id * 10 + 9),
            time: Some(TimeRange { min_ms: id as i64, max_ms: id as i64 + 5 }),
            columns: vec![ColumnStats {
                name: "c".into(),
                min: Some(Stat::Str(format!("m{id}"))),
                max: Some(Stat::Int(id as i64)),
                null_count: Some(id),
            }],
        }
    }

    /// Writes a stand-in part file durably and returns its record.
    fn fake_part(fs: &dyn FileSystem, id: u64) -> io::Result<PartInfo> {
        let parts = Path::new(DIR).join(PARTS_DIR);
        let path = parts.join(PartId(id).file_name());
        let len = 10 + id % 50;
        let mut f = fs.create_new(&path)?;
        f.append(&vec![7u8; len as usize])?;
        f.sync_all()?;
        fs.sync_dir(&parts)?;
        Ok(info(id, len))
    }

    fn open(fs: &SimFs) -> Result<(Manifest, RecoveryReport)> {
        Manifest::open(fs.shared(), DIR, ManifestOptions::default())
    }

    fn parts_on_disk(fs: &SimFs) -> Vec<String> {
        fs.list_dir(&Path::new(DIR).join(PARTS_DIR)).expect("ls")
    }

    #[test]
    fn commits_survive_reopen_and_reopen_is_idempotent() {
        let fs = SimFs::new(1);
        let (mut m, report) = open(&fs).expect("create");
        assert!(report.created);
        assert_eq!(m.state().next_part_id, PartId(1));
        let p1 = fake_part(&fs, 1).expect("part");
        let p2 = fake_part(&fs, 2).expect("part");
        m.commit(&Edit { add: vec![p1.clone(), p2.clone()], remove: vec![], flushed_mark: Some(19) }).expect("commit");
        let p3 = fake_part(&fs, 3).expect("part");
        m.commit(&Edit { add: vec![p3.clone()], remove: vec![PartId(1), PartId(2)], flushed_mark: Some(5) })
            .expect("commit");
        let state = m.state().clone();
        assert_eq!(state.parts.keys().copied().collect::<Vec<_>>(), vec![PartId(3)]);
        assert_eq!(state.flushed_mark, Some(19), "the mark never moves back");
        assert_eq!(state.next_part_id, PartId(4));
        // Bad edits are refused before anything is written.
        let len = m.file_len();
        assert!(m.commit(&Edit { remove: vec![PartId(1)], ..Edit::default() }).is_err());
        assert!(m.commit(&Edit { add: vec![p3.clone()], ..Edit::default() }).is_err());
        assert_eq!(m.file_len(), len);
        drop(m);
        fs.crash(Crash::PowerLoss);
        for _ in 0..2 {
            let (m, report) = open(&fs).expect("reopen");
            assert_eq!(m.state(), &state);
            assert_eq!(report.records, 3);
            assert!(!report.created);
            // parts 1 and 2 were removed from the manifest: their files are orphans now
            assert_eq!(parts_on_disk(&fs), vec![PartId(3).file_name()]);
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_writing_goes_on() {
        let fs = SimFs::new(2);
        let (mut m, _) = open(&fs).expect("create");
        for id in 1..=3 {
            let p = fake_part(&fs, id).expect("part");
            m.commit(&Edit { add: vec![p], remove: vec![], flushed_mark: Some(id) }).expect("commit");
        }
        let state = m.state().clone();
        let good_len = m.file_len();
        drop(m);
        let path = Path::new(DIR).join(MANIFEST_FILE);
        let next = codec::encode_edit(&Edit { add: vec![info(9, 1)], ..Edit::default() });
        for tail in [next[..5].to_vec(), next[..next.len() - 1].to_vec(), vec![0u8; 30], b"garbage!".to_vec()] {
            let mut f = fs.open_append(&path).expect("open");
            f.append(&tail).expect("append");
            f.sync_data().expect("sync");
            drop(f);
            let (m, report) = open(&fs).expect("reopen");
            assert_eq!(m.state(), &state);
            assert_eq!(report.truncated_bytes, tail.len() as u64);
            assert_eq!(fs.file_len(&path).expect("len"), good_len);
        }
        let (mut m, _) = open(&fs).expect("reopen");
        let p = fake_part(&fs, 4).expect("part");
        m.commit(&Edit { add: vec![p], remove: vec![PartId(1)], flushed_mark: None }).expect("commit");
        let state = m.state().clone();
        drop(m);
        assert_eq!(open(&fs).expect("reopen").0.state(), &state);
    }

    #[test]
    fn damage_before_valid_records_is_an_error() {
        let fs = SimFs::new(3);
        let (mut m, _) = open(&fs).expect("create");
        for id in 1..=3 {
            let p = fake_part(&fs, id).expect("part");
            m.commit(&Edit { add: vec![p], remove: vec![], flushed_mark: None }).expect("commit");
        }
        let len = m.file_len();
        drop(m);
        let path = Path::new(DIR).join(MANIFEST_FILE);
        let bytes = fs.open_read(&path).expect("open").read_all().expect("read");
        // Flip one byte anywhere before the last record: an error naming the offset.
        let last_start = len as usize - codec::encode_edit(&Edit { add: vec![info(3, 13)], ..Edit::default() }).len();
        for off in (0..last_start).step_by(7) {
            fs.corrupt(&path, off as u64, &[bytes[off] ^ 0x40]).expect("corrupt");
            match open(&fs) {
                Err(Error::Corrupted { offset: Some(_), .. }) => {}
                other => panic!("flip at {off}: {other:?}"),
            }
            fs.corrupt(&path, off as u64, &[bytes[off]]).expect("restore");
        }
        // A flip inside the last record is a torn tail: that record is dropped.
        fs.corrupt(&path, len - 3, &[bytes[len as usize - 3] ^ 1]).expect("corrupt");
        let (m, report) = open(&fs).expect("reopen");
        assert_eq!(m.state().parts.len(), 2);
        assert!(report.truncated_bytes > 0);
    }

    #[test]
    fn orphans_and_temporary_files_are_removed_missing_parts_are_errors() {
        let fs = SimFs::new(4);
        let (mut m, _) = open(&fs).expect("create");
        let p = fake_part(&fs, 1).expect("part");
        m.commit(&Edit { add: vec![p], ..Edit::default() }).expect("commit");
        drop(m);
        fake_part(&fs, 2).expect("orphan");
        let parts = Path::new(DIR).join(PARTS_DIR);
        for name in ["0000000000000003.parquet.tmp", "notes.txt"] {
            fs.create_new(&parts.join(name)).expect("create");
        }
        fs.create_new(&Path::new(DIR).join("MANIFEST.tmp")).expect("create");
        let (_, report) = open(&fs).expect("reopen");
        let mut removed = report.removed_files.clone();
        removed.sort();
        assert_eq!(removed, vec![PartId(2).file_name(), "0000000000000003.parquet.tmp".to_owned()]);
        assert_eq!(parts_on_disk(&fs), vec![PartId(1).file_name(), "notes.txt".to_owned()]);
        assert!(!fs.exists(&Path::new(DIR).join("MANIFEST.tmp")));
        fs.remove_file(&parts.join(PartId(1).file_name())).expect("rm");
        assert!(matches!(open(&fs), Err(Error::MissingPart { .. })));
    }

    #[test]
    fn compaction_rewrites_atomically() {
        let fs = SimFs::new(5);
        let opts = ManifestOptions::default().compact_bytes(600);
        let (mut m, _) = Manifest::open(fs.shared(), DIR, opts.clone()).expect("create");
        for id in 1..=30 {
            let p = fake_part(&fs, id).expect("part");
            let remove = if id > 2 { vec![PartId(id - 2)] } else { vec![] };
            m.commit(&Edit { add: vec![p], remove, flushed_mark: Some(id) }).expect("commit");
            assert!(m.file_len() < 1200, "compaction keeps the file small: {}", m.file_len());
        }
        let state = m.state().clone();
        drop(m);
        fs.crash(Crash::PowerLoss);
        let (m, report) = Manifest::open(fs.shared(), DIR, opts).expect("reopen");
        assert_eq!(m.state(), &state);
        assert!(report.records < 10, "replayed {} records", report.records);
        assert_eq!(state.next_part_id, PartId(31));
    }

    /// Random commits (with compactions) under injected write, sync and metadata failures and
    /// random crashes: after every reopen the state is the last acknowledged one, or the one the
    /// failed commit would have made; orphans are gone.
    #[test]
    fn crashes_and_faults_keep_every_acknowledged_commit() {
        let seeds: u64 = std::env::var("SLUICE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
        for seed in 0..seeds {
            let fs = SimFs::new(seed);
            let mut rng = Rng::new(seed);
            let opts = ManifestOptions::default().compact_bytes(rng.range(200, 2000));
            let reopen = |fs: &SimFs| Manifest::open(fs.shared(), DIR, opts.clone());
            let (mut m, _) = reopen(&fs).expect("create");
            let mut acked = m.state().clone();
            let mut pending: Option<ManifestState> = None;
            let mut next_id = 1;
            for step in 0..40 {
                if rng.chance(0.25) {
                    match rng.below(3) {
                        0 => fs.fail_write_after(rng.below(4)),
                        1 => fs.fail_sync_after(rng.below(4)),
                        _ => fs.fail_metadata_after(rng.below(6)),
                    }
                }
                let id = next_id;
                next_id += 1;
                let outcome = fake_part(&fs, id).map_err(|e| Error::io("fake part", DIR, e)).and_then(|p| {
                    let live: Vec<PartId> = acked.parts.keys().copied().collect();
                    let remove = live.into_iter().filter(|_| rng.chance(0.3)).collect();
                    let edit = Edit { add: vec![p], remove, flushed_mark: Some(id * 10) };
                    let mut want = acked.clone();
                    want.apply(&edit).expect("valid edit");
                    pending = Some(want);
                    m.commit(&edit)
                });
                if outcome.is_ok() {
                    acked = m.state().clone();
                    pending = None;
                }
                let crash = outcome_forces_crash(&m) || rng.chance(0.2);
                if crash {
                    let kind = [Crash::Process, Crash::PowerLoss, Crash::PowerLossTorn][rng.below(3) as usize];
                    fs.crash(kind);
                    fs.clear_faults();
                    let (m2, _) = reopen(&fs).unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                    let got = m2.state().clone();
                    assert!(
                        got == acked || Some(&got) == pending.as_ref(),
                        "seed {seed} step {step}: state {got:?}\nacked {acked:?}\npending {pending:?}"
                    );
                    let live: Vec<String> = got.parts.keys().map(|id| id.file_name()).collect();
                    assert_eq!(parts_on_disk(&fs), live, "seed {seed} step {step}");
                    acked = got;
                    pending = None;
                    m = m2;
                    // ids of lost parts may be reused: start after what the manifest knows
                    next_id = next_id.max(acked.next_part_id.0);
                }
            }
        }
    }

    fn outcome_forces_crash(m: &Manifest) -> bool {
        m.poisoned.is_some()
    }
}
