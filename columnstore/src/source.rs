//! [`PartSource`]: the bytes of one part, as parquet's `ChunkReader`, over either backend, with
//! block checksums checked on first touch.
//!
//! parquet reports our failures only as strings, so the first I/O error or checksum mismatch is
//! also kept here; the reader turns it into a precise [`crate::Error`] afterwards.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use sluice_vfs::ReadFile;

use crate::checksum::BlockTable;
use crate::{Error, ReadBackend};

/// Bytes read per step by [`SourceReader`].
const READ_CHUNK: u64 = 64 * 1024;

/// Where the bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Backing {
    /// The whole file in memory (a mapping).
    Mem(Bytes),
    /// Positional reads.
    File(Arc<dyn ReadFile>),
}

/// The first failure seen below parquet.
#[derive(Debug)]
pub(crate) enum SourceError {
    Io(io::Error),
    Corrupted { offset: u64, reason: String },
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    len: u64,
    backing: Backing,
    error: Mutex<Option<SourceError>>,
}

/// The bytes of a part. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct PartSource {
    shared: Arc<Shared>,
    table: Option<Arc<BlockTable>>,
}

impl PartSource {
    /// Opens the part at `path` with `backend` (no checksums yet).
    pub(crate) fn open(fs: &dyn sluice_vfs::FileSystem, path: &Path, backend: ReadBackend) -> crate::Result<Self> {
        let (backing, len) = match backend {
            ReadBackend::Mmap => {
                let bytes = crate::mmap::map_part(path).map_err(|e| Error::io("mmap", path, e))?;
                let len = bytes.len() as u64;
                (Backing::Mem(bytes), len)
            }
            ReadBackend::Pread => {
                let file = fs.open_read(path).map_err(|e| Error::io("open", path, e))?;
                let len = file.len().map_err(|e| Error::io("stat", path, e))?;
                (Backing::File(file), len)
            }
        };
        Ok(PartSource {
            shared: Arc::new(Shared { path: path.to_path_buf(), len, backing, error: Mutex::new(None) }),
            table: None,
        })
    }

    /// The same bytes, with every read of the data region checked against `table`.
    pub(crate) fn with_table(&self, table: BlockTable) -> Self {
        PartSource { shared: self.shared.clone(), table: Some(Arc::new(table)) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.shared.path
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.shared.len
    }

    /// Takes the failure recorded below parquet, if any.
    pub(crate) fn take_error(&self) -> Option<SourceError> {
        self.shared.error.lock().take()
    }

    fn record(&self, e: SourceError) -> ParquetError {
        let msg = match &e {
            SourceError::Io(io) => format!("I/O error reading part: {io}"),
            SourceError::Corrupted { offset, reason } => {
                format!("corrupted part at offset {offset}: {reason}")
            }
        };
        let mut slot = self.shared.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
        ParquetError::General(msg)
    }

    /// Reads `start..end` without any checksum check.
    pub(crate) fn read_raw(&self, start: u64, end: u64) -> Result<Bytes, ParquetError> {
        if start > end || end > self.shared.len {
            return Err(ParquetError::EOF(format!(
                "read of bytes {start}..{end} past the end of a {}-byte part",
                self.shared.len
            )));
        }
        match &self.shared.backing {
            Backing::Mem(b) => Ok(b.slice(start as usize..end as usize)),
            Backing::File(f) => {
                let mut buf = vec![0u8; (end - start) as usize];
                f.read_exact_at(&mut buf, start).map_err(|e| self.record(SourceError::Io(e)))?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Reads and checks every block of the data region (a few MiB at a time); an unchecked
    /// source (no block table) has nothing to check.
    pub(crate) fn verify_all(&self) -> Result<(), ParquetError> {
        let Some(table) = &self.table else { return Ok(()) };
        let blocks = table.blocks_overlapping(0, u64::MAX);
        let mut i = blocks.start;
        while i < blocks.end {
            let j = (i + 64).min(blocks.end);
            self.read_checked(table.block_range(i).start, table.block_range(j - 1).end)?;
            i = j;
        }
        Ok(())
    }

    /// Reads `start..end`, checking every block of the data region it touches that was not
    /// checked before.
    fn read_checked(&self, start: u64, end: u64) -> Result<Bytes, ParquetError> {
        let Some(table) = &self.table else { return self.read_raw(start, end) };
        let blocks = table.blocks_overlapping(start, end);
        let pending: Vec<usize> = blocks.filter(|&i| !table.is_verified(i)).collect();
        let (Some(&first), Some(&last)) = (pending.first(), pending.last()) else {
            return self.read_raw(start, end);
        };
        // Read whole blocks so they can be checked from the same bytes.
        let lo = start.min(table.block_range(first).start);
        let hi = end.max(table.block_range(last).end);
        let bytes = self.read_raw(lo, hi)?;
        for i in pending {
            let r = table.block_range(i);
            let block = &bytes[(r.start - lo) as usize..(r.end - lo) as usize];
            if let Err(reason) = table.verify(i, block) {
                return Err(self.record(SourceError::Corrupted { offset: r.start, reason }));
            }
        }
        Ok(bytes.slice((start - lo) as usize..(end - lo) as usize))
    }
}

impl Length for PartSource {
    fn len(&self) -> u64 {
        self.shared.len
    }
}

impl ChunkReader for PartSource {
    type T = SourceReader;

    fn get_read(&self, start: u64) -> Result<SourceReader, ParquetError> {
        if start > self.shared.len {
            return Err(ParquetError::EOF(format!("read at {start} past the end of the part")));
        }
        Ok(SourceReader { source: self.clone(), pos: start, chunk: Bytes::new() })
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        let end = start
            .checked_add(length as u64)
            .ok_or_else(|| ParquetError::EOF(format!("read of {length} bytes at {start} overflows")))?;
        self.read_checked(start, end)
    }
}

/// A `Read` from an offset of a [`PartSource`] to its end, fetched in checked chunks.
#[derive(Debug)]
pub(crate) struct SourceReader {
    source: PartSource,
    pos: u64,
    chunk: Bytes,
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.chunk.is_empty() {
            let len = self.source.shared.len;
            if self.pos >= len {
                return Ok(0);
            }
            let end = (self.pos + READ_CHUNK).min(len);
            self.chunk = self.source.read_checked(self.pos, end).map_err(io::Error::other)?;
            self.pos = end;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use sluice_vfs::{FileSystem, SimFs};

    use super::*;
    use crate::checksum::{ChecksumBuilder, encode_hex};

    fn setup(data: &[u8]) -> (SimFs, PartSource, BlockTable) {
        let fs = SimFs::new(1);
        let mut f = fs.create_new(Path::new("/p")).expect("create");
        f.append(data).expect("append");
        let src = PartSource::open(&fs, Path::new("/p"), ReadBackend::Pread).expect("open");
        let mut b = ChecksumBuilder::new(100);
        b.update(&data[..950]);
        let (end, crcs) = b.finish_data();
        let table = BlockTable::decode(100, end, &encode_hex(&crcs)).expect("table");
        (fs, src, table)
    }

    #[test]
    fn checked_reads_return_the_bytes_asked_for() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
        let (_fs, src, table) = setup(&data);
        let src = src.with_table(table);
        assert_eq!(src.get_bytes(150, 20).expect("read")[..], data[150..170]);
        assert_eq!(src.get_bytes(940, 60).expect("read")[..], data[940..1000]);
        let mut all = Vec::new();
        src.get_read(3).expect("reader").read_to_end(&mut all).expect("read all");
        assert_eq!(all[..], data[3..]);
        assert!(src.get_bytes(990, 20).is_err());
        assert!(src.take_error().is_none());
    }

    #[test]
    fn a_flipped_byte_is_reported_with_its_block() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
        let (fs, src, table) = setup(&data);
        fs.corrupt(Path::new("/p"), 333, &[0xff]).expect("corrupt");
        let src = src.with_table(table);
        assert!(src.get_bytes(0, 100).is_ok());
        assert!(src.get_bytes(320, 5).is_err());
        match src.take_error() {
            Some(SourceError::Corrupted { offset, .. }) => assert_eq!(offset, 300),
            other => panic!("expected a corruption, got {other:?}"),
        }
        // bytes after the data region are not covered
        fs.corrupt(Path::new("/p"), 960, &[0xff]).expect("corrupt");
        assert!(src.get_bytes(955, 10).is_ok());
    }
}
