//! The writer thread: one per log. It drains whatever is queued (group commit), writes it with
//! one `writev`, syncs once (under `Fsync`), publishes the new position and wakes every waiter.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use sluice_vfs::WriteFile;

use crate::frame::{FRAME_HEADER_LEN, FrameHeader, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::segment::{INDEX_EVERY_BYTES, SegmentMeta};
use crate::wal::{Mark, Shared};
use crate::{Codec, Durability, Error, Result};

/// Most payload bytes written in one group commit (bounds the latency of a batch).
const MAX_BATCH_BYTES: u64 = 16 << 20;

/// Longest a group commit waits for the appenders of the previous group to come back.
const MAX_LINGER: Duration = Duration::from_micros(500);

/// A record waiting to be written. Compression and the payload checksum were done by the
/// appender, in parallel with other appenders.
#[derive(Debug)]
pub(crate) struct Pending {
    pub seq: u64,
    pub count: u32,
    pub codec: Codec,
    pub raw_len: u32,
    pub payload: Vec<u8>,
    pub payload_crc: u32,
}

#[derive(Debug)]
pub(crate) enum Request {
    Append(Pending),
    Sync(Sender<Result<()>>),
    /// Close the current segment (if it holds records) and start a new one.
    Roll(Sender<Result<()>>),
    Shutdown,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    rx: Receiver<Request>,
    file: Box<dyn WriteFile>,
    meta: Arc<SegmentMeta>,
    len: u64,
    next_index_at: u64,
    /// Written but not yet synced.
    dirty: bool,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Request>,
        file: Box<dyn WriteFile>,
        meta: Arc<SegmentMeta>,
        len: u64,
    ) -> Self {
        let next_index_at = meta.index.last_offset().map_or(0, |o| o + INDEX_EVERY_BYTES);
        Self { shared, rx, file, meta, len, next_index_at, dirty: false }
    }

    pub(crate) fn run(mut self) {
        let mut appends: Vec<Pending> = Vec::new();
        let mut syncs: Vec<Sender<Result<()>>> = Vec::new();
        let mut rolls: Vec<Sender<Result<()>>> = Vec::new();
        let fsync = self.shared.opts.durability == Durability::Fsync;
        // Appenders acknowledged by the previous group commit, and how long its sync took.
        let mut last_group = 0usize;
        let mut last_sync = Duration::ZERO;
        loop {
            let Ok(first) = self.rx.recv() else { break };
            let mut shutdown = false;
            let mut bytes = 0u64;
            let mut next = Some(first);
            // Under `Fsync`, the appenders just acknowledged come back one by one as their
            // threads wake up; a batch cut at the first of them would make every other sync
            // carry a single record. So wait (briefly, bounded by a fraction of one sync) until
            // as many appends are queued as the previous group had.
            let linger_until = (fsync && last_group > 1).then(|| Instant::now() + last_sync.min(MAX_LINGER));
            while let Some(req) = next.take() {
                match req {
                    Request::Append(p) => {
                        bytes += p.payload.len() as u64;
                        appends.push(p);
                    }
                    Request::Sync(reply) => syncs.push(reply),
                    Request::Roll(reply) => rolls.push(reply),
                    Request::Shutdown => shutdown = true,
                }
                if bytes < MAX_BATCH_BYTES && !shutdown {
                    next = self.rx.try_recv().ok();
                    if next.is_none()
                        && appends.len() < last_group
                        && let Some(deadline) = linger_until
                    {
                        next = self.rx.recv_deadline(deadline).ok();
                    }
                }
            }
            last_group = appends.len();
            let sync_started = Instant::now();
            let mut rolled = self.commit(&mut appends, !syncs.is_empty() || shutdown);
            if !rolls.is_empty() {
                let result = self.roll_now();
                rolled |= result.as_ref().is_ok_and(|r| *r);
                for reply in rolls.drain(..) {
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(clone_poison));
                }
            }
            if fsync {
                last_sync = sync_started.elapsed();
            }
            self.shared.budget.release(bytes);
            let result = match &self.shared.progress.lock().error {
                Some(reason) => Err(Error::Poisoned { reason: reason.clone() }),
                None => Ok(()),
            };
            for reply in syncs.drain(..) {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(clone_poison));
            }
            if rolled && let Err(e) = crate::retention::apply(&self.shared) {
                tracing::warn!(dir = %self.shared.dir.display(), error = %e, "WAL retention failed");
            }
            if shutdown {
                break;
            }
        }
    }

    /// Writes one group of appends (and syncs if needed); returns true if a segment was closed.
    fn commit(&mut self, appends: &mut Vec<Pending>, force_sync: bool) -> bool {
        if self.shared.poisoned.load(Ordering::SeqCst) {
            appends.clear();
            return false;
        }
        let durability = self.shared.opts.durability;
        let mut rolled = false;
        let result = (|| -> Result<()> {
            if !appends.is_empty() {
                rolled = self.write_all(appends)?;
            }
            if durability == Durability::Fsync || (force_sync && self.dirty) {
                self.sync()?;
            }
            Ok(())
        })();
        appends.clear();
        if let Err(e) = result {
            self.shared.poison(e.to_string());
        }
        rolled
    }

    fn write_all(&mut self, appends: &[Pending]) -> Result<bool> {
        let now = self.shared.opts.fs.now_ms();
        let headers: Vec<[u8; FRAME_HEADER_LEN]> = appends
            .iter()
            .map(|p| {
                FrameHeader {
                    len: p.payload.len() as u32,
                    crc: 0,
                    seq: p.seq,
                    count: p.count,
                    codec: p.codec,
                    raw_len: p.raw_len,
                    timestamp_ms: now,
                }
                .encode(p.payload_crc)
            })
            .collect();
        let seg_bytes = self.shared.opts.segment_bytes;
        let mut rolled = false;
        let mut run_start = 0;
        let mut pos = self.len;
        for (i, p) in appends.iter().enumerate() {
            let flen = (FRAME_HEADER_LEN + p.payload.len()) as u64;
            if pos > SEGMENT_HEADER_LEN as u64 && pos + flen > seg_bytes {
                self.write_run(&headers[run_start..i], &appends[run_start..i], now)?;
                self.roll(p.seq, now)?;
                rolled = true;
                run_start = i;
                pos = self.len;
            }
            if pos >= self.next_index_at {
                self.meta.index.push(p.seq, pos);
                self.next_index_at = pos + INDEX_EVERY_BYTES;
            }
            pos += flen;
        }
        self.write_run(&headers[run_start..], &appends[run_start..], now)?;
        self.shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        Ok(rolled)
    }

    /// Writes frames into the current segment and publishes them as written.
    fn write_run(&mut self, headers: &[[u8; FRAME_HEADER_LEN]], appends: &[Pending], now: u64) -> Result<()> {
        let Some(last) = appends.last() else { return Ok(()) };
        let mut slices: Vec<&[u8]> = Vec::with_capacity(appends.len() * 2);
        let mut total = 0u64;
        for (h, p) in headers.iter().zip(appends) {
            slices.push(h);
            slices.push(&p.payload);
            total += (FRAME_HEADER_LEN + p.payload.len()) as u64;
        }
        self.file.append_vectored(&slices).map_err(|e| Error::io("write", &self.meta.path, e))?;
        self.len += total;
        self.dirty = true;
        self.shared.counters.bytes_written.fetch_add(total, Ordering::Relaxed);
        let end = last.seq + last.count as u64;
        self.meta.end_seq.store(end, Ordering::Release);
        self.meta.len.store(self.len, Ordering::Release);
        self.meta.last_ms.store(now, Ordering::Release);
        let mark = Mark { end_seq: end, segment: self.meta.first_seq, offset: self.len };
        let mut p = self.shared.progress.lock();
        p.written = mark;
        p.generation += 1;
        self.shared.progress_cv.notify_all();
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fdatasync", &self.meta.path, e))?;
        self.dirty = false;
        self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        let mut p = self.shared.progress.lock();
        p.durable = p.written;
        p.generation += 1;
        self.shared.progress_cv.notify_all();
        Ok(())
    }

    /// A roll asked for by [`crate::Wal::roll`]: only when the segment holds records and the
    /// log is healthy. True if a segment was closed.
    fn roll_now(&mut self) -> Result<bool> {
        if let Some(reason) = &self.shared.progress.lock().error {
            return Err(Error::Poisoned { reason: reason.clone() });
        }
        if self.len <= SEGMENT_HEADER_LEN as u64 {
            return Ok(false);
        }
        let next = self.meta.end_seq.load(Ordering::Acquire);
        let now = self.shared.opts.fs.now_ms();
        match self.roll(next, now) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.shared.poison(e.to_string());
                Err(e)
            }
        }
    }

    /// Closes the current segment and starts a new one at `first_seq`. Always synced, whatever
    /// the durability: once per segment costs nothing, and it keeps [`crate::Wal::sync`]
    /// (which syncs only the current segment) complete.
    fn roll(&mut self, first_seq: u64, now: u64) -> Result<()> {
        if self.dirty {
            self.sync()?;
        }
        let meta = Arc::new(SegmentMeta::new(&self.shared.dir, first_seq, now));
        let fs = &self.shared.opts.fs;
        let mut file = fs.create_new(&meta.path).map_err(|e| Error::io("create", &meta.path, e))?;
        file.append(&SegmentHeader { first_seq }.encode()).map_err(|e| Error::io("write", &meta.path, e))?;
        // The new file and its directory entry must be durable before any record in it is
        // acknowledged.
        file.sync_all().map_err(|e| Error::io("fsync", &meta.path, e))?;
        fs.sync_dir(&self.shared.dir).map_err(|e| Error::io("fsync dir", &self.shared.dir, e))?;
        self.meta.sealed.store(true, Ordering::Release);
        self.shared.segments.write().push(meta.clone());
        self.file = file;
        self.meta = meta;
        self.len = SEGMENT_HEADER_LEN as u64;
        self.next_index_at = 0;
        self.dirty = false;
        let mark = Mark { end_seq: first_seq, segment: first_seq, offset: self.len };
        let mut p = self.shared.progress.lock();
        p.written = mark;
        p.durable = mark;
        p.generation += 1;
        self.shared.progress_cv.notify_all();
        Ok(())
    }
}

fn clone_poison(e: &Error) -> Error {
    match e {
        Error::Poisoned { reason } => Error::Poisoned { reason: reason.clone() },
        other => Error::Poisoned { reason: other.to_string() },
    }
}
