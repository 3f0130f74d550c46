//! Reading the log: a [`WalReader`] walks records from any sequence number across segments up
//! to the committed position; a [`Subscription`] then waits for the writer to publish more.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::SEGMENT_HEADER_LEN;
use crate::segment::{FrameCursor, SegmentMeta};
use crate::wal::{Mark, Shared};
use crate::{Error, Result, SeqNo};

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// First sequence number of the record.
    pub seq: SeqNo,
    /// Number of sequence numbers it covers.
    pub count: u32,
    /// When the writer wrote it (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The payload as appended (decompressed).
    pub payload: Vec<u8>,
}

impl Record {
    /// Sequence number after this record.
    pub fn end_seq(&self) -> SeqNo {
        SeqNo(self.seq.0 + self.count as u64)
    }
}

struct Position {
    meta: Arc<SegmentMeta>,
    cursor: FrameCursor,
    offset: u64,
}

/// Reads records in sequence order. Ends (returns `None`) at the committed position as of each
/// call; call again later to continue, or use a [`Subscription`] to wait.
pub struct WalReader {
    shared: Arc<Shared>,
    next: u64,
    pos: Option<Position>,
}

impl fmt::Debug for WalReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalReader").field("next", &self.next).finish_non_exhaustive()
    }
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>, from: u64) -> Result<Self> {
        let first = shared.progress.lock().first_seq;
        if from < first {
            return Err(Error::Truncated { requested: SeqNo(from), first_available: SeqNo(first) });
        }
        Ok(Self { shared, next: from, pos: None })
    }

    /// The sequence number the reader will return next (or the record containing it).
    pub fn position(&self) -> SeqNo {
        SeqNo(self.next)
    }

    fn visible(&self) -> (Mark, u64, bool) {
        let p = self.shared.progress.lock();
        (self.shared.visible(&p), p.first_seq, p.closed)
    }

    /// Opens the segment that holds `self.next`, positioned near it by the sparse index.
    fn locate(&mut self, first_seq: u64) -> Result<Position> {
        let truncated = || Error::Truncated { requested: SeqNo(self.next), first_available: SeqNo(first_seq) };
        if self.next < first_seq {
            return Err(truncated());
        }
        let meta = {
            let segs = self.shared.segments.read();
            let i = segs.partition_point(|s| s.first_seq <= self.next);
            if i == 0 {
                return Err(truncated());
            }
            segs[i - 1].clone()
        };
        let cursor = match FrameCursor::open(self.shared.opts.fs.as_ref(), &meta.path) {
            Ok(c) => c,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let first = self.shared.progress.lock().first_seq;
                return Err(Error::Truncated { requested: SeqNo(self.next), first_available: SeqNo(first) });
            }
            Err(e) => return Err(e),
        };
        let offset = meta.index.seek(self.next).unwrap_or(SEGMENT_HEADER_LEN as u64);
        Ok(Position { meta, cursor, offset })
    }

    /// The next record, or `None` when the reader has caught up with the committed position.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        let (vis, first_seq, _) = self.visible();
        if self.next >= vis.end_seq {
            return Ok(None);
        }
        loop {
            if self.pos.is_none() {
                self.pos = Some(self.locate(first_seq)?);
            }
            let pos = self.pos.as_mut().expect("set above");
            let limit = if pos.meta.first_seq == vis.segment {
                vis.offset
            } else if pos.meta.first_seq < vis.segment {
                pos.meta.len()
            } else {
                SEGMENT_HEADER_LEN as u64
            };
            if pos.offset >= limit {
                if pos.meta.first_seq < vis.segment && pos.meta.is_sealed() {
                    // finished a closed segment: on to the one that starts at `self.next`
                    if self.next < pos.meta.end_seq() {
                        return Err(Error::corrupted(
                            &pos.meta.path,
                            pos.offset,
                            format!("segment ends before sequence number {}", self.next),
                        ));
                    }
                    self.pos = None;
                    continue;
                }
                return Ok(None);
            }
            let frame = match pos.cursor.frame(pos.offset, limit, true)? {
                Ok(f) => f,
                Err(e) => {
                    return Err(Error::corrupted(&pos.cursor.path, pos.offset, format!("{e:?}")));
                }
            };
            pos.offset += frame.header.frame_len();
            let h = frame.header;
            if h.end_seq() <= self.next {
                continue; // before the start position
            }
            let payload = h
                .decode_payload(&frame.stored)
                .map_err(|e| Error::corrupted(&pos.cursor.path, frame.offset, format!("{e:?}")))?;
            self.next = h.end_seq();
            return Ok(Some(Record { seq: SeqNo(h.seq), count: h.count, timestamp_ms: h.timestamp_ms, payload }));
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// A reader that waits for new records. Woken by the writer when the committed position
/// advances (no polling). Ends with `None` when the log is closed and everything is read.
#[derive(Debug)]
pub struct Subscription {
    reader: WalReader,
}

impl Subscription {
    pub(crate) fn new(reader: WalReader) -> Self {
        Self { reader }
    }

    /// The sequence number the subscription will return next.
    pub fn position(&self) -> SeqNo {
        self.reader.position()
    }

    /// Waits for the next record. `None` when the log was closed.
    pub fn recv(&mut self) -> Result<Option<Record>> {
        self.wait(None)
    }

    /// Waits at most `timeout` for the next record. `None` on timeout or when the log was closed.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Record>> {
        self.wait(Some(Instant::now() + timeout))
    }

    /// The next record if one is committed now, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Record>> {
        self.reader.next_record()
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<Option<Record>> {
        let shared = self.reader.shared.clone();
        loop {
            let generation = shared.progress.lock().generation;
            if let Some(r) = self.reader.next_record()? {
                return Ok(Some(r));
            }
            let mut p = shared.progress.lock();
            while p.generation == generation {
                if p.closed {
                    return Ok(None);
                }
                if let Some(reason) = &p.error {
                    return Err(Error::Poisoned { reason: reason.clone() });
                }
                match deadline {
                    None => shared.progress_cv.wait(&mut p),
                    Some(d) => {
                        if shared.progress_cv.wait_until(&mut p, d).timed_out() {
                            return Ok(None);
                        }
                    }
                }
            }
            if p.closed && self.reader.next >= shared.visible(&p).end_seq {
                return Ok(None);
            }
        }
    }
}
