//! sluice-vfs: the small file-system interface that sluice's storage crates do all their I/O through.
//!
//! What it is: two traits for files ([`WriteFile`] for append-only writers, [`ReadFile`] for
//! positional readers) and one for the directory tree ([`FileSystem`]), with two implementations:
//!
//! * [`RealFs`]: `std::fs` on the local disk (what a database uses);
//! * [`SimFs`]: an in-memory file system for tests that models what a crash does to a real one:
//!   unsynced bytes can be lost or torn, directory entries not yet made durable by
//!   [`FileSystem::sync_dir`] disappear, and the Nth write, sync or metadata operation can be made
//!   to fail (or the disk to fill up).
//!
//! What it is not: a general-purpose VFS. It offers exactly what an append-only log and
//! immutable part files need, so that every durability step of the storage layer
//! (`write`, `fdatasync`, `rename`, directory `fsync`) is visible and can be broken on purpose.
//!
//! ```text
//!   sluice-wal ──┐                     ┌── RealFs  (std::fs, fdatasync, dir fsync)
//!                ├── dyn FileSystem ───┤
//!   columnstore ─┘                     └── SimFs   (memory; crash(), faults, simulated clock)
//! ```
//!
//! ```
//! use std::path::Path;
//! use sluice_vfs::{Crash, FileSystem, SimFs};
//!
//! let fs = SimFs::new(7);
//! fs.create_dir_all(Path::new("/d")).unwrap();
//! let mut f = fs.create_new(Path::new("/d/a")).unwrap();
//! f.append(b"hello").unwrap();
//! f.sync_data().unwrap();
//! // the file's data is durable, but its directory entry is not yet:
//! fs.crash(Crash::PowerLoss);
//! assert!(!fs.exists(Path::new("/d/a")));
//! ```

/// `std::fs` backed implementation.
mod real;
/// A small deterministic random number generator (tests, simulation).
mod rng;
/// In-memory simulated file system with crash and fault injection.
mod sim;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use real::RealFs;
pub use rng::Rng;
pub use sim::{Crash, SimFs};

/// A file opened for appending. Writes always go to the end of the file.
pub trait WriteFile: Send + fmt::Debug {
    /// Appends all of `buf` at the end of the file (one `write(2)` loop).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Appends all the slices, in order, as if they were one buffer (`writev(2)` where available).
    fn append_vectored(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        for b in bufs {
            self.append(b)?;
        }
        Ok(())
    }

    /// `fdatasync(2)`: the file's data and size are durable when this returns.
    fn sync_data(&mut self) -> io::Result<()>;

    /// `fsync(2)`: data and all metadata are durable when this returns.
    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    /// Cuts the file to `len` bytes; later appends continue at `len`. Not durable until synced.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Current length (including bytes not yet synced).
    fn len(&self) -> u64;

    /// True when the file holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for positional reads. Cheap to share between threads.
pub trait ReadFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Current length of the file.
    fn len(&self) -> io::Result<u64>;

    /// True when the file holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file ended before the expected bytes"));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the whole file into memory.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len()?)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large to read"))?;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}

/// The directory tree. Paths are absolute or relative to the process's working directory
/// ([`RealFs`]) or to the simulated root ([`SimFs`]).
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates a directory and all missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Names of the entries (files and directories) directly under `path`, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Creates a new, empty file; fails with `AlreadyExists` if there is one.
    /// The directory entry is durable only after [`FileSystem::sync_dir`] on its parent.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;

    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;

    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>>;

    /// Removes a file. Durable only after [`FileSystem::sync_dir`] on its parent.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Atomically renames a file, replacing `to` if it exists.
    /// Durable only after [`FileSystem::sync_dir`] on the parent(s).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// `fsync(2)` on a directory: makes the creations, removals and renames in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// True if a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// True if `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;

    /// Length of the file at `path`.
    fn file_len(&self, path: &Path) -> io::Result<u64>;

    /// Wall-clock time in milliseconds since the Unix epoch (simulated by [`SimFs`]).
    fn now_ms(&self) -> u64;
}

/// Writes `bytes` to `path` crash-safely: a temporary file, `fsync`, `rename` over `path`, then
/// `fsync` of the directory. Readers see the old or the new content, never a mix.
pub fn atomic_write(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    if fs.exists(&tmp) {
        fs.remove_file(&tmp)?;
    }
    let mut f = fs.create_new(&tmp)?;
    f.append(bytes)?;
    f.sync_all()?;
    drop(f);
    fs.rename(&tmp, path)?;
    fs.sync_dir(dir)
}
