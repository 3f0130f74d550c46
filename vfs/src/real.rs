use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{FileSystem, ReadFile, WriteFile};

/// The local file system through `std::fs`. `sync_data` is `fdatasync(2)`, `sync_dir` opens the
/// directory and calls `fsync(2)` on it.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl RealFs {
    /// A handle to the local file system.
    pub fn new() -> Self {
        Self
    }

    /// The shared instance, as a trait object.
    pub fn shared() -> Arc<dyn FileSystem> {
        Arc::new(Self)
    }
}

#[derive(Debug)]
struct RealWriteFile {
    file: File,
    len: u64,
}

impl WriteFile for RealWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn append_vectored(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut slices = &mut slices[..];
        // writev takes at most IOV_MAX (1024) slices; write_vectored handles partial writes.
        while !slices.is_empty() {
            let n = slices.len().min(1024);
            match self.file.write_vectored(&slices[..n]) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "writev wrote nothing"));
                }
                Ok(written) => IoSlice::advance_slices(&mut slices, written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.len += total as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct RealReadFile {
    file: File,
}

impl ReadFile for RealReadFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Box::new(RealWriteFile { file, len: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Box::new(RealWriteFile { file, len }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let file = File::open(path)?;
        Ok(Arc::new(RealReadFile { file }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_truncate_round_trip() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("sluice-vfs-real-{}", std::process::id()));
        let fs = RealFs::new();
        fs.create_dir_all(&dir)?;
        let p = dir.join("f");
        let mut w = fs.create_new(&p)?;
        w.append(b"abc")?;
        w.append_vectored(&[b"de", b"", b"fgh"])?;
        w.sync_data()?;
        assert_eq!(w.len(), 8);
        let r = fs.open_read(&p)?;
        assert_eq!(r.read_all()?, b"abcdefgh");
        w.truncate(2)?;
        w.append(b"Z")?;
        assert_eq!(r.read_all()?, b"abZ");
        assert!(fs.create_new(&p).is_err());
        let mut w2 = fs.open_append(&p)?;
        assert_eq!(w2.len(), 3);
        w2.append(b"!")?;
        assert_eq!(fs.file_len(&p)?, 4);
        assert_eq!(fs.list_dir(&dir)?, vec!["f".to_string()]);
        fs.sync_dir(&dir)?;
        fs.remove_dir_all(&dir)?;
        Ok(())
    }
}
