//! An in-memory file system that behaves like a real one under crashes.
//!
//! Each file is an inode holding two byte strings: `data` (what a reader sees now, the page
//! cache) and `durable` (what is on the platter). `sync_data` copies `data` to `durable`.
//! The directory tree is held twice as well: `names` (now) and `durable_names` (after the last
//! `sync_dir` of each directory). A [`Crash`] throws away what was not made durable, invalidates
//! every open handle, and may tear the unsynced tail of a file instead of dropping it whole.
//!
//! Faults: the Nth write, sync or metadata operation from now can be made to fail once
//! ([`SimFs::fail_write_after`], ...), and a capacity makes writes past it fail with
//! `StorageFull` after writing what fits (a partial write, as a full disk gives).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{FileSystem, ReadFile, Rng, WriteFile};

/// What a simulated crash does to data that was not made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process dies, the kernel survives: every byte written so far is kept
    /// (what `kill -9` does). Open handles become invalid.
    Process,
    /// Power is lost: unsynced bytes and unsynced directory changes are gone.
    PowerLoss,
    /// Power is lost in the middle of writing: for each file, a random prefix of its unsynced
    /// appended bytes survives, sometimes followed by a few bytes of garbage.
    PowerLossTorn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// True when bytes below `durable.len()` changed since the last sync (a truncation), so the
    /// next sync must copy everything instead of extending.
    rewritten: bool,
    mtime_ms: u64,
}

#[derive(Debug, Default)]
struct Faults {
    write_in: Option<u64>,
    sync_in: Option<u64>,
    meta_in: Option<u64>,
    capacity: Option<u64>,
}

#[derive(Debug)]
struct State {
    generation: u64,
    next_ino: u64,
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, Entry>,
    durable_names: BTreeMap<PathBuf, Entry>,
    faults: Faults,
    writes: u64,
    syncs: u64,
    clock_ms: u64,
    /// `now_ms` follows the real clock (an in-memory database for users, not a test).
    wall_clock: bool,
    rng: Rng,
}

/// The simulated file system. Cloning gives another handle to the same tree.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("simulated {what} failure"))
}

fn stale() -> io::Error {
    io::Error::other("stale file handle: the simulated machine crashed")
}

impl State {
    fn parent_is_dir(&self, p: &Path) -> bool {
        match p.parent() {
            None => true,
            Some(parent) if parent == Path::new("/") => true,
            Some(parent) => matches!(self.names.get(parent), Some(Entry::Dir)),
        }
    }

    /// Counts down a one-shot fault; true when this operation must fail.
    fn trip(slot: &mut Option<u64>) -> bool {
        match slot {
            Some(0) => {
                *slot = None;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    fn meta_op(&mut self) -> io::Result<()> {
        if Self::trip(&mut self.faults.meta_in) {
            return Err(injected("metadata operation"));
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    fn inode(&mut self, ino: u64, generation: u64) -> io::Result<&mut Inode> {
        if generation != self.generation {
            return Err(stale());
        }
        self.inodes.get_mut(&ino).ok_or_else(stale)
    }

    fn write(&mut self, ino: u64, generation: u64, bufs: &[&[u8]]) -> io::Result<()> {
        if generation != self.generation {
            return Err(stale());
        }
        self.writes += 1;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut allowed = total;
        let mut error = None;
        if Self::trip(&mut self.faults.write_in) {
            // A failed write may still have written a prefix.
            allowed = self.rng.below(total as u64 + 1) as usize;
            error = Some(injected("write"));
        }
        if let Some(cap) = self.faults.capacity {
            let room = cap.saturating_sub(self.used_bytes()) as usize;
            if room < allowed {
                allowed = room;
                error = Some(io::Error::new(io::ErrorKind::StorageFull, "simulated disk full"));
            }
        }
        let now = self.clock_ms;
        let inode = self.inodes.get_mut(&ino).ok_or_else(stale)?;
        let mut left = allowed;
        for b in bufs {
            let n = b.len().min(left);
            inode.data.extend_from_slice(&b[..n]);
            left -= n;
        }
        inode.mtime_ms = now;
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn sync(&mut self, ino: u64, generation: u64) -> io::Result<()> {
        if generation != self.generation {
            return Err(stale());
        }
        self.syncs += 1;
        if Self::trip(&mut self.faults.sync_in) {
            return Err(injected("fsync"));
        }
        let inode = self.inodes.get_mut(&ino).ok_or_else(stale)?;
        if inode.rewritten || inode.durable.len() > inode.data.len() {
            inode.durable = inode.data.clone();
        } else {
            let from = inode.durable.len();
            inode.durable.extend_from_slice(&inode.data[from..]);
        }
        inode.rewritten = false;
        Ok(())
    }
}

impl SimFs {
    /// An empty file system; `seed` drives torn writes and partial failed writes.
    pub fn new(seed: u64) -> Self {
        let mut names = BTreeMap::new();
        names.insert(PathBuf::from("/"), Entry::Dir);
        Self {
            state: Arc::new(Mutex::new(State {
                generation: 0,
                next_ino: 1,
                inodes: HashMap::new(),
                durable_names: names.clone(),
                names,
                faults: Faults::default(),
                writes: 0,
                syncs: 0,
                clock_ms: 1_700_000_000_000,
                wall_clock: false,
                rng: Rng::new(seed),
            })),
        }
    }

    /// This file system as a shareable trait object.
    pub fn shared(&self) -> Arc<dyn FileSystem> {
        Arc::new(self.clone())
    }

    /// Simulates a crash. Every handle opened before it fails from now on.
    pub fn crash(&self, kind: Crash) {
        let mut st = self.state.lock();
        st.generation += 1;
        if kind == Crash::Process {
            return;
        }
        st.names = st.durable_names.clone();
        let live: Vec<u64> = st
            .names
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        st.inodes.retain(|ino, _| live.contains(ino));
        let mut inos: Vec<u64> = st.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let mut keep_tail = 0usize;
            let mut garbage = Vec::new();
            {
                let inode = &st.inodes[&ino];
                let appended_only = !inode.rewritten && inode.data.len() > inode.durable.len();
                if kind == Crash::PowerLossTorn && appended_only {
                    keep_tail = inode.data.len() - inode.durable.len();
                }
            }
            if keep_tail > 0 {
                keep_tail = st.rng.below(keep_tail as u64 + 1) as usize;
                if st.rng.chance(0.5) {
                    let n = st.rng.range(1, 64) as usize;
                    garbage = st.rng.bytes(n);
                }
            }
            let inode = st.inodes.get_mut(&ino).expect("inode listed above");
            let durable_len = inode.durable.len();
            let mut data = inode.durable.clone();
            data.extend_from_slice(&inode.data[durable_len..durable_len + keep_tail]);
            data.extend_from_slice(&garbage);
            inode.data = data.clone();
            inode.durable = data;
            inode.rewritten = false;
        }
    }

    /// The `n`th write from now (0 = the next one) fails once, after writing a random prefix.
    pub fn fail_write_after(&self, n: u64) {
        self.state.lock().faults.write_in = Some(n);
    }

    /// The `n`th file sync from now (0 = the next one) fails once.
    pub fn fail_sync_after(&self, n: u64) {
        self.state.lock().faults.sync_in = Some(n);
    }

    /// The `n`th metadata operation (create, rename, remove, directory sync) from now fails once.
    pub fn fail_metadata_after(&self, n: u64) {
        self.state.lock().faults.meta_in = Some(n);
    }

    /// Limits the total bytes held by all files; `None` removes the limit.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().faults.capacity = bytes;
    }

    /// Clears every pending fault and the capacity limit.
    pub fn clear_faults(&self) {
        self.state.lock().faults = Faults::default();
    }

    /// Number of writes so far.
    pub fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// Number of file syncs so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Makes `now_ms` the real wall clock (for `Database::in_memory`: ingest times are real).
    pub fn with_wall_clock(self) -> Self {
        self.state.lock().wall_clock = true;
        self
    }

    /// Moves the simulated clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.state.lock().clock_ms += ms;
    }

    /// Overwrites bytes of an existing file in place (durably), for corruption tests.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let p = normalize(path);
        let mut st = self.state.lock();
        let ino = match st.names.get(&p) {
            Some(Entry::File(ino)) => *ino,
            _ => return Err(not_found(path)),
        };
        let inode = st.inodes.get_mut(&ino).ok_or_else(|| not_found(path))?;
        let start = offset as usize;
        if start + bytes.len() > inode.data.len() {
            inode.data.resize(start + bytes.len(), 0);
        }
        inode.data[start..start + bytes.len()].copy_from_slice(bytes);
        inode.durable = inode.data.clone();
        inode.rewritten = false;
        Ok(())
    }

    fn open_ino(&self, path: &Path) -> io::Result<(u64, u64)> {
        let p = normalize(path);
        let st = self.state.lock();
        match st.names.get(&p) {
            Some(Entry::File(ino)) => Ok((*ino, st.generation)),
            Some(Entry::Dir) => {
                Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}: is a directory", path.display())))
            }
            None => Err(not_found(path)),
        }
    }
}

#[derive(Debug)]
struct SimWriteFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    generation: u64,
    len: u64,
}

impl WriteFile for SimWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.append_vectored(&[buf])
    }

    fn append_vectored(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let mut st = self.state.lock();
        let r = st.write(self.ino, self.generation, bufs);
        if let Ok(inode) = st.inode(self.ino, self.generation) {
            self.len = inode.data.len() as u64;
        }
        r
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.state.lock().sync(self.ino, self.generation)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        let inode = st.inode(self.ino, self.generation)?;
        let len = len as usize;
        if len < inode.data.len() {
            inode.data.truncate(len);
            if len < inode.durable.len() {
                inode.rewritten = true;
            }
        } else {
            inode.data.resize(len, 0);
        }
        self.len = len as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct SimReadFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    generation: u64,
}

impl ReadFile for SimReadFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.state.lock();
        let inode = st.inode(self.ino, self.generation)?;
        let start = (offset as usize).min(inode.data.len());
        let n = buf.len().min(inode.data.len() - start);
        buf[..n].copy_from_slice(&inode.data[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.state.lock();
        Ok(st.inode(self.ino, self.generation)?.data.len() as u64)
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let p = normalize(path);
        let mut st = self.state.lock();
        let mut cur = PathBuf::from("/");
        for c in p.components().skip(1) {
            cur.push(c);
            match st.names.get(&cur) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: a file is in the way", cur.display()),
                    ));
                }
                None => {
                    // Simplification: new directories are durable at once.
                    st.names.insert(cur.clone(), Entry::Dir);
                    st.durable_names.insert(cur.clone(), Entry::Dir);
                }
            }
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let p = normalize(path);
        let st = self.state.lock();
        if !matches!(st.names.get(&p), Some(Entry::Dir)) {
            return Err(not_found(path));
        }
        let mut out: Vec<String> = st
            .names
            .keys()
            .filter(|k| k.parent() == Some(p.as_path()))
            .filter_map(|k| k.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        out.sort();
        Ok(out)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let p = normalize(path);
        let mut st = self.state.lock();
        st.meta_op()?;
        if st.names.contains_key(&p) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}: already exists", path.display())));
        }
        if !st.parent_is_dir(&p) {
            return Err(not_found(path));
        }
        let ino = st.next_ino;
        st.next_ino += 1;
        let now = st.clock_ms;
        st.inodes.insert(ino, Inode { mtime_ms: now, ..Inode::default() });
        st.names.insert(p, Entry::File(ino));
        Ok(Box::new(SimWriteFile { state: self.state.clone(), ino, generation: st.generation, len: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let (ino, generation) = self.open_ino(path)?;
        let len = self.state.lock().inode(ino, generation)?.data.len() as u64;
        Ok(Box::new(SimWriteFile { state: self.state.clone(), ino, generation, len }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let (ino, generation) = self.open_ino(path)?;
        Ok(Arc::new(SimReadFile { state: self.state.clone(), ino, generation }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let p = normalize(path);
        let mut st = self.state.lock();
        st.meta_op()?;
        match st.names.get(&p) {
            Some(Entry::File(_)) => {
                st.names.remove(&p);
                Ok(())
            }
            Some(Entry::Dir) => {
                Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}: is a directory", path.display())))
            }
            None => Err(not_found(path)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let p = normalize(path);
        let mut st = self.state.lock();
        st.meta_op()?;
        if !st.names.contains_key(&p) {
            return Err(not_found(path));
        }
        // Simplification: removing a tree is durable at once.
        st.names.retain(|k, _| !k.starts_with(&p));
        st.durable_names.retain(|k, _| !k.starts_with(&p));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (f, t) = (normalize(from), normalize(to));
        let mut st = self.state.lock();
        st.meta_op()?;
        let entry = match st.names.get(&f) {
            Some(Entry::File(ino)) => Entry::File(*ino),
            Some(Entry::Dir) => {
                return Err(io::Error::other("renaming directories is not simulated"));
            }
            None => return Err(not_found(from)),
        };
        if !st.parent_is_dir(&t) {
            return Err(not_found(to));
        }
        st.names.remove(&f);
        st.names.insert(t, entry);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let p = normalize(path);
        let mut st = self.state.lock();
        st.meta_op()?;
        if !matches!(st.names.get(&p), Some(Entry::Dir)) {
            return Err(not_found(path));
        }
        let children = |names: &BTreeMap<PathBuf, Entry>| -> Vec<(PathBuf, Entry)> {
            names.iter().filter(|(k, _)| k.parent() == Some(p.as_path())).map(|(k, v)| (k.clone(), *v)).collect()
        };
        let now = children(&st.names);
        let before = children(&st.durable_names);
        for (k, v) in before {
            if matches!(v, Entry::File(_)) {
                st.durable_names.remove(&k);
            }
        }
        for (k, v) in now {
            st.durable_names.insert(k, v);
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.state.lock().names.contains_key(&normalize(path))
    }

    fn is_dir(&self, path: &Path) -> bool {
        matches!(self.state.lock().names.get(&normalize(path)), Some(Entry::Dir))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let (ino, generation) = self.open_ino(path)?;
        Ok(self.state.lock().inode(ino, generation)?.data.len() as u64)
    }

    fn now_ms(&self) -> u64 {
        let st = self.state.lock();
        if st.wall_clock {
            return std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(st.clock_ms, |d| d.as_millis() as u64);
        }
        st.clock_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn power_loss_drops_unsynced_bytes_and_entries() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        let mut f = fs.create_new(p("/d/a"))?;
        f.append(b"synced")?;
        f.sync_data()?;
        fs.sync_dir(p("/d"))?;
        f.append(b"-lost")?;
        let mut g = fs.create_new(p("/d/b"))?;
        g.append(b"x")?;
        g.sync_data()?;
        fs.crash(Crash::PowerLoss);
        assert_eq!(fs.open_read(p("/d/a"))?.read_all()?, b"synced");
        assert!(!fs.exists(p("/d/b")), "entry of /d/b was never made durable");
        assert!(f.append(b"?").is_err(), "handles die with the crash");
        Ok(())
    }

    #[test]
    fn process_crash_keeps_written_bytes() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        let mut f = fs.create_new(p("/d/a"))?;
        f.append(b"unsynced")?;
        fs.crash(Crash::Process);
        assert_eq!(fs.open_read(p("/d/a"))?.read_all()?, b"unsynced");
        Ok(())
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_the_unsynced_tail() -> io::Result<()> {
        for seed in 0..50 {
            let fs = SimFs::new(seed);
            fs.create_dir_all(p("/d"))?;
            let mut f = fs.create_new(p("/d/a"))?;
            f.append(b"durable|")?;
            f.sync_data()?;
            fs.sync_dir(p("/d"))?;
            f.append(b"0123456789")?;
            fs.crash(Crash::PowerLossTorn);
            let got = fs.open_read(p("/d/a"))?.read_all()?;
            assert!(got.starts_with(b"durable|"));
            let tail = &got[8..];
            let kept = tail.iter().zip(b"0123456789").take_while(|(a, b)| a == b).count();
            assert!(kept <= 10);
        }
        Ok(())
    }

    #[test]
    fn removed_file_reappears_if_directory_not_synced() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        let mut f = fs.create_new(p("/d/a"))?;
        f.append(b"1")?;
        f.sync_data()?;
        fs.sync_dir(p("/d"))?;
        fs.remove_file(p("/d/a"))?;
        fs.crash(Crash::PowerLoss);
        assert!(fs.exists(p("/d/a")));
        fs.remove_file(p("/d/a"))?;
        fs.sync_dir(p("/d"))?;
        fs.crash(Crash::PowerLoss);
        assert!(!fs.exists(p("/d/a")));
        Ok(())
    }

    #[test]
    fn injected_faults_fire_once() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        let mut f = fs.create_new(p("/d/a"))?;
        fs.fail_write_after(1);
        f.append(b"ok")?;
        assert!(f.append(b"fails").is_err());
        f.append(b"ok again")?;
        fs.fail_sync_after(0);
        assert!(f.sync_data().is_err());
        f.sync_data()?;
        fs.fail_metadata_after(0);
        assert!(fs.create_new(p("/d/b")).is_err());
        fs.set_capacity(Some(fs.file_len(p("/d/a"))? + 3));
        let e = f.append(b"too long").expect_err("disk is full");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        Ok(())
    }

    #[test]
    fn open_handles_survive_unlink() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        let mut f = fs.create_new(p("/d/a"))?;
        f.append(b"abc")?;
        let r = fs.open_read(p("/d/a"))?;
        fs.remove_file(p("/d/a"))?;
        assert_eq!(r.read_all()?, b"abc");
        Ok(())
    }

    #[test]
    fn atomic_write_replaces_whole_file() -> io::Result<()> {
        let fs = SimFs::new(1);
        fs.create_dir_all(p("/d"))?;
        crate::atomic_write(&fs, p("/d/cat"), b"v1")?;
        crate::atomic_write(&fs, p("/d/cat"), b"v2-longer")?;
        fs.crash(Crash::PowerLoss);
        assert_eq!(fs.open_read(p("/d/cat"))?.read_all()?, b"v2-longer");
        assert_eq!(fs.list_dir(p("/d"))?, vec!["cat".to_string()]);
        Ok(())
    }
}
