//! Refcounted live parts ([`PartHandle`]) and immutable snapshots of a shard's parts
//! ([`PartSet`]).
//!
//! A part removed from the manifest (merged away, expired) is only marked obsolete: its file is
//! deleted when the last handle to it drops, so scans of an older snapshot keep working.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use sluice_vfs::FileSystem;

use crate::{ColumnCache, Part, PartId, PartInfo, PartScan, Predicate, ReadBackend, Result, ScanOptions};

/// One live (or obsolete but still referenced) part.
pub struct PartHandle {
    info: PartInfo,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    backend: ReadBackend,
    part: Mutex<Option<Part>>,
    obsolete: AtomicBool,
    cache: Option<Arc<ColumnCache>>,
}

impl fmt::Debug for PartHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartHandle")
            .field("id", &self.info.id)
            .field("path", &self.path)
            .field("rows", &self.info.rows)
            .field("level", &self.info.level)
            .field("obsolete", &self.is_obsolete())
            .finish()
    }
}

impl PartHandle {
    /// A handle for the committed part `info` whose file is `path`; opened on first use.
    pub fn new(fs: Arc<dyn FileSystem>, path: impl Into<PathBuf>, info: PartInfo, backend: ReadBackend) -> Arc<Self> {
        Self::with_cache(fs, path, info, backend, None)
    }

    /// [`PartHandle::new`] whose part reads through `cache` when a scan asks for it.
    pub fn with_cache(
        fs: Arc<dyn FileSystem>,
        path: impl Into<PathBuf>,
        info: PartInfo,
        backend: ReadBackend,
        cache: Option<Arc<ColumnCache>>,
    ) -> Arc<Self> {
        Arc::new(PartHandle {
            info,
            path: path.into(),
            fs,
            backend,
            part: Mutex::new(None),
            obsolete: AtomicBool::new(false),
            cache,
        })
    }

    /// The manifest's record of the part.
    pub fn info(&self) -> &PartInfo {
        &self.info
    }

    /// The part's id.
    pub fn id(&self) -> PartId {
        self.info.id
    }

    /// The part's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The opened part (opened and checked against [`PartHandle::info`] on first call).
    pub fn part(&self) -> Result<Part> {
        if let Some(p) = self.part.lock().as_ref() {
            return Ok(p.clone());
        }
        // Open without holding the lock; a racing opener's result is as good as ours.
        let opened = Part::open_cached(self.fs.as_ref(), &self.path, self.backend, &self.info, self.cache.clone())?;
        Ok(self.part.lock().get_or_insert(opened).clone())
    }

    /// Scans the part; the scan keeps this handle (and so the file) alive until it is dropped.
    pub fn scan(self: &Arc<Self>, opts: &ScanOptions) -> Result<PartScan> {
        Ok(self.part()?.scan(opts)?.keep_alive(self.clone()))
    }

    /// Marks the part as removed from the manifest: its file goes when the last handle drops.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// True once removed from the manifest.
    pub fn is_obsolete(&self) -> bool {
        self.obsolete.load(Ordering::Acquire)
    }
}

impl Drop for PartHandle {
    fn drop(&mut self) {
        if !self.is_obsolete() {
            return;
        }
        // Unmap before unlinking.
        self.part.get_mut().take();
        match self.fs.remove_file(&self.path) {
            Ok(()) => tracing::debug!(part = %self.info.id, "deleted obsolete part"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                part = %self.info.id,
                path = %self.path.display(),
                error = %e,
                "could not delete an obsolete part; recovery will remove it"
            ),
        }
    }
}

/// An immutable snapshot of a shard's live parts, ordered by first sequence number.
/// Cloning is one reference-count increment.
#[derive(Debug, Clone, Default)]
pub struct PartSet {
    parts: Arc<[Arc<PartHandle>]>,
}

impl PartSet {
    /// A set of these parts (sorted by first sequence number, then id).
    pub fn new(mut parts: Vec<Arc<PartHandle>>) -> Self {
        parts.sort_by_key(|p| (p.info.seq.first, p.info.id));
        PartSet { parts: parts.into() }
    }

    /// Number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PartHandle>> {
        self.parts.iter()
    }

    /// The parts as a slice.
    pub fn as_slice(&self) -> &[Arc<PartHandle>] {
        &self.parts
    }

    /// The part with this id.
    pub fn get(&self, id: PartId) -> Option<&Arc<PartHandle>> {
        self.parts.iter().find(|p| p.id() == id)
    }

    /// The manifest records of all parts.
    pub fn infos(&self) -> Vec<PartInfo> {
        self.parts.iter().map(|p| p.info.clone()).collect()
    }

    /// Rows in all parts.
    pub fn total_rows(&self) -> u64 {
        self.parts.iter().map(|p| p.info.rows).sum()
    }

    /// The parts that may hold rows matching `predicate`, judged by their statistics alone.
    pub fn prune(&self, predicate: &Predicate) -> Vec<Arc<PartHandle>> {
        self.parts.iter().filter(|p| predicate.may_match_part(&p.info)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use sluice_vfs::Rng;

    use super::*;
    use crate::testutil::{Env, events};
    use crate::{NewPart, SeqRange, WriterOptions, write_part};

    #[test]
    fn an_obsolete_part_goes_with_its_last_handle() {
        let env = Env::sim(1);
        let mut rng = Rng::new(1);
        let batch = events(&mut rng, 500, 0, 0);
        let new = NewPart { id: PartId(1), seq: SeqRange::new(0, 9), level: 0 };
        let info = write_part(env.fs.clone(), &env.dir, new, batch.schema(), &[batch], &WriterOptions::default())
            .expect("write");
        let path = env.dir.join(info.file_name());
        let handle = PartHandle::new(env.fs.clone(), &path, info, env.backend);
        let set = PartSet::new(vec![handle.clone()]);
        let snapshot = set.clone();
        let scan = handle.scan(&ScanOptions::default().batch_size(100)).expect("scan");
        // Not obsolete: dropping every handle keeps the file.
        drop(set);
        handle.mark_obsolete();
        drop(handle);
        assert!(env.fs.exists(&path));
        drop(snapshot);
        assert!(env.fs.exists(&path), "the running scan holds the part");
        assert_eq!(scan.map(|b| b.expect("batch").num_rows()).sum::<usize>(), 500);
        assert!(!env.fs.exists(&path), "deleted with the last handle");
    }

    #[test]
    fn live_parts_survive_their_handles() {
        let env = Env::real(ReadBackend::Mmap);
        let mut rng = Rng::new(2);
        let batch = events(&mut rng, 100, 0, 0);
        let new = NewPart { id: PartId(2), seq: SeqRange::new(0, 9), level: 0 };
        let info = write_part(env.fs.clone(), &env.dir, new, batch.schema(), &[batch], &WriterOptions::default())
            .expect("write");
        let path = env.dir.join(info.file_name());
        let handle = PartHandle::new(env.fs.clone(), &path, info.clone(), env.backend);
        assert_eq!(handle.part().expect("open").info(), &info);
        assert!(!handle.is_obsolete());
        drop(handle);
        assert!(env.fs.exists(&path));
        // A handle whose file does not match the manifest's record fails to open.
        let mut wrong = info;
        wrong.tail_crc ^= 1;
        let handle = PartHandle::new(env.fs.clone(), &path, wrong, env.backend);
        assert!(handle.part().is_err_and(|e| e.is_corrupted()));
    }
}
