//! Segment files: naming, buffered frame reading, and the scan that checks one segment at open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use sluice_vfs::{FileSystem, ReadFile};

use crate::frame::{FRAME_HEADER_LEN, FrameError, FrameHeader, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::{Error, Result};

/// Every this many bytes of a segment, one (seq, offset) entry goes into its sparse index.
pub(crate) const INDEX_EVERY_BYTES: u64 = 256 << 10;
/// Bytes read at a time by [`FrameCursor`].
const READ_CHUNK: usize = 256 << 10;

/// File name of the segment whose first record is `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Parses a segment file name; `None` for anything else.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Sparse index of a segment: (seq, byte offset) of some frames, ascending.
#[derive(Debug, Default)]
pub(crate) struct SparseIndex {
    entries: RwLock<Vec<(u64, u64)>>,
}

impl SparseIndex {
    pub(crate) fn push(&self, seq: u64, offset: u64) {
        self.entries.write().push((seq, offset));
    }

    /// Offset of the last indexed frame.
    pub(crate) fn last_offset(&self) -> Option<u64> {
        self.entries.read().last().map(|e| e.1)
    }

    /// Offset of the last indexed frame starting at or before `seq`.
    pub(crate) fn seek(&self, seq: u64) -> Option<u64> {
        let e = self.entries.read();
        let i = e.partition_point(|(s, _)| *s <= seq);
        if i == 0 { None } else { Some(e[i - 1].1) }
    }
}

/// What the log knows of one segment. The counters are final once `sealed` is set (the
/// segment is closed); for the segment being written they trail the writer.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub first_seq: u64,
    pub path: PathBuf,
    pub index: SparseIndex,
    /// Sequence number after the segment's last record.
    pub end_seq: AtomicU64,
    /// Bytes in the file (header included).
    pub len: AtomicU64,
    /// Write time of the last record (ms since the epoch; creation time while empty).
    pub last_ms: AtomicU64,
    pub sealed: AtomicBool,
}

impl SegmentMeta {
    pub(crate) fn new(dir: &Path, first_seq: u64, now_ms: u64) -> Self {
        Self {
            first_seq,
            path: dir.join(segment_name(first_seq)),
            index: SparseIndex::default(),
            end_seq: AtomicU64::new(first_seq),
            len: AtomicU64::new(SEGMENT_HEADER_LEN as u64),
            last_ms: AtomicU64::new(now_ms),
            sealed: AtomicBool::new(false),
        }
    }

    pub(crate) fn end_seq(&self) -> u64 {
        self.end_seq.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }
}

/// Reads frames from a segment file through a buffer.
#[derive(Debug)]
pub(crate) struct FrameCursor {
    file: Arc<dyn ReadFile>,
    pub(crate) path: PathBuf,
    buf: Vec<u8>,
    buf_start: u64,
}

/// A frame read by [`FrameCursor::frame`].
#[derive(Debug)]
pub(crate) struct RawFrame {
    pub header: FrameHeader,
    pub offset: u64,
    /// Stored (possibly compressed) payload.
    pub stored: Vec<u8>,
}

impl FrameCursor {
    pub(crate) fn open(fs: &dyn FileSystem, path: &Path) -> Result<Self> {
        let file = fs.open_read(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Self { file, path: path.to_path_buf(), buf: Vec::new(), buf_start: 0 })
    }

    pub(crate) fn file_len(&self) -> Result<u64> {
        self.file.len().map_err(|e| Error::io("stat", &self.path, e))
    }

    /// `len` bytes at `offset`, or `None` when they would pass `limit`.
    fn bytes(&mut self, offset: u64, len: usize, limit: u64) -> Result<Option<&[u8]>> {
        if offset.saturating_add(len as u64) > limit {
            return Ok(None);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || offset + len as u64 > buf_end {
            let want = len.max(READ_CHUNK).min((limit - offset) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, offset).map_err(|e| Error::io("read", &self.path, e))?;
            self.buf_start = offset;
        }
        let at = (offset - self.buf_start) as usize;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Reads the segment header.
    pub(crate) fn header(&mut self, limit: u64) -> Result<Result<SegmentHeader, FrameError>> {
        match self.bytes(0, SEGMENT_HEADER_LEN, limit)? {
            None => Ok(Err(FrameError::Incomplete)),
            Some(b) => Ok(SegmentHeader::decode(b)),
        }
    }

    /// Reads the frame at `offset`, which must end at or before `limit`. With `verify`, the
    /// checksum is checked. `Ok(Err(_))` describes a bad or incomplete frame.
    pub(crate) fn frame(&mut self, offset: u64, limit: u64, verify: bool) -> Result<Result<RawFrame, FrameError>> {
        let header = match self.bytes(offset, FRAME_HEADER_LEN, limit)? {
            None => return Ok(Err(FrameError::Incomplete)),
            Some(hb) => match FrameHeader::decode(hb) {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            },
        };
        let total = FRAME_HEADER_LEN + header.len as usize;
        let Some(all) = self.bytes(offset, total, limit)? else {
            return Ok(Err(FrameError::Incomplete));
        };
        let (hb, stored) = all.split_at(FRAME_HEADER_LEN);
        if verify && !header.verify(hb, stored) {
            return Ok(Err(FrameError::Invalid("frame checksum mismatch".into())));
        }
        Ok(Ok(RawFrame { header, offset, stored: stored.to_vec() }))
    }

    /// Only the header of the frame at `offset` (to skip over frames cheaply).
    pub(crate) fn frame_header(&mut self, offset: u64, limit: u64) -> Result<Result<FrameHeader, FrameError>> {
        match self.bytes(offset, FRAME_HEADER_LEN, limit)? {
            None => Ok(Err(FrameError::Incomplete)),
            Some(hb) => Ok(FrameHeader::decode(hb)),
        }
    }
}

/// Result of checking one segment at open.
#[derive(Debug)]
pub(crate) struct ScannedSegment {
    /// Sequence number after the last good record.
    pub end_seq: u64,
    /// Byte length of the good prefix.
    pub good_len: u64,
    /// Length of the file as found.
    pub file_len: u64,
    /// Timestamp of the last record (0 if none).
    pub last_ms: u64,
    pub index: Vec<(u64, u64)>,
    /// Set when the good prefix ends before the file does: why.
    pub bad_tail: Option<(u64, String)>,
    /// Good records in the prefix.
    pub records: u64,
}

/// Scans one segment whose header is valid: walks every frame, checks sequence continuity and
/// (with `verify`) checksums. Stops at the first bad frame and reports it in `bad_tail`.
pub(crate) fn scan_segment(fs: &dyn FileSystem, path: &Path, first_seq: u64, verify: bool) -> Result<ScannedSegment> {
    let mut cur = FrameCursor::open(fs, path)?;
    let file_len = cur.file_len()?;
    let mut s = ScannedSegment {
        end_seq: first_seq,
        good_len: SEGMENT_HEADER_LEN as u64,
        file_len,
        last_ms: 0,
        index: Vec::new(),
        bad_tail: None,
        records: 0,
    };
    let mut offset = SEGMENT_HEADER_LEN as u64;
    let mut next_index_at = 0u64;
    while offset < file_len {
        let h = if verify {
            cur.frame(offset, file_len, true)?.map(|f| f.header)
        } else {
            cur.frame_header(offset, file_len)?
                .and_then(|h| if offset + h.frame_len() > file_len { Err(FrameError::Incomplete) } else { Ok(h) })
        };
        let h = match h {
            Ok(h) if h.seq == s.end_seq => h,
            Ok(h) => {
                s.bad_tail =
                    Some((offset, format!("frame has sequence number {} where {} was expected", h.seq, s.end_seq)));
                break;
            }
            Err(FrameError::Incomplete) => {
                s.bad_tail = Some((offset, "incomplete frame at end of file".into()));
                break;
            }
            Err(FrameError::Invalid(r)) => {
                s.bad_tail = Some((offset, r));
                break;
            }
        };
        if offset >= next_index_at {
            s.index.push((h.seq, offset));
            next_index_at = offset + INDEX_EVERY_BYTES;
        }
        s.end_seq = h.end_seq();
        s.last_ms = h.timestamp_ms;
        s.records += 1;
        offset += h.frame_len();
        s.good_len = offset;
    }
    Ok(s)
}

/// After a bad frame at `bad_offset` in the last segment: is there any valid frame, with a
/// sequence number at or after `min_seq`, later in the file? If so the damage is not a torn
/// tail but corruption in the middle of acknowledged data.
pub(crate) fn valid_frame_after(
    fs: &dyn FileSystem,
    path: &Path,
    bad_offset: u64,
    min_seq: u64,
) -> Result<Option<u64>> {
    let file = fs.open_read(path).map_err(|e| Error::io("open", path, e))?;
    let data = file.read_all().map_err(|e| Error::io("read", path, e))?;
    let start = bad_offset as usize + 1;
    if data.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    for at in start..=data.len().saturating_sub(FRAME_HEADER_LEN) {
        let Ok(h) = FrameHeader::decode(&data[at..]) else { continue };
        // cheap filters before the checksum
        if h.seq < min_seq || h.seq - min_seq > (1 << 40) {
            continue;
        }
        let end = at + FRAME_HEADER_LEN + h.len as usize;
        if end > data.len() {
            continue;
        }
        if h.verify(&data[at..at + FRAME_HEADER_LEN], &data[at + FRAME_HEADER_LEN..end]) {
            return Ok(Some(at as u64));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in ["42.wal", "0000000000000000004x.wal", "00000000000000000042.wal.tmp", "MANIFEST"] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sparse_index_seeks() {
        let ix = SparseIndex::default();
        assert_eq!(ix.seek(5), None);
        ix.push(0, 32);
        ix.push(10, 1000);
        ix.push(20, 2000);
        assert_eq!(ix.seek(0), Some(32));
        assert_eq!(ix.seek(9), Some(32));
        assert_eq!(ix.seek(10), Some(1000));
        assert_eq!(ix.seek(99), Some(2000));
    }
}
