//! The public log handle: appending, syncing, readers, retention controls, close.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::frame::{MAX_PAYLOAD, compress};
use crate::reader::{Subscription, WalReader};
use crate::recovery::recover;
use crate::segment::SegmentMeta;
use crate::writer::{Pending, Request, Writer};
use crate::{Codec, Durability, Error, Result, WalOptions};

/// A sequence number in one log. Each record covers one or more consecutive sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqNo(pub u64);

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A position in the log: all records before `end_seq` lie in segments up to `segment`, and
/// in that segment before byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub end_seq: u64,
    pub segment: u64,
    pub offset: u64,
}

/// What the writer has made visible; guarded by `Shared::progress`.
#[derive(Debug)]
pub(crate) struct Progress {
    pub written: Mark,
    pub durable: Mark,
    pub first_seq: u64,
    pub error: Option<String>,
    pub closed: bool,
    /// Bumped on every change, so that waiters can tell that something happened.
    pub generation: u64,
}

/// Bytes of payload waiting in the writer's queue; appenders wait above the limit.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    used: Mutex<u64>,
    cv: Condvar,
    limit: u64,
}

impl ByteBudget {
    fn new(limit: u64) -> Self {
        Self { used: Mutex::new(0), cv: Condvar::new(), limit }
    }

    fn acquire(&self, n: u64) {
        let mut used = self.used.lock();
        // A record larger than the whole budget may go alone into an empty queue.
        while *used > 0 && *used + n > self.limit {
            self.cv.wait(&mut used);
        }
        *used += n;
    }

    pub(crate) fn release(&self, n: u64) {
        let mut used = self.used.lock();
        *used = used.saturating_sub(n);
        self.cv.notify_all();
    }
}

#[derive(Debug)]
pub(crate) struct SubmitState {
    pub next_seq: u64,
    pub tx: Option<Sender<Request>>,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub batches: AtomicU64,
    pub syncs: AtomicU64,
    pub bytes_written: AtomicU64,
}

/// State shared by the handle, the writer thread and readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub opts: WalOptions,
    pub submit: Mutex<SubmitState>,
    pub poisoned: AtomicBool,
    pub budget: ByteBudget,
    pub progress: Mutex<Progress>,
    pub progress_cv: Condvar,
    /// Live segments, ascending by first sequence number; the last one is being written.
    pub segments: RwLock<Vec<Arc<SegmentMeta>>>,
    /// Records at or after the pin are never removed by retention.
    pub pin: Mutex<Option<u64>>,
    /// Serialises retention runs.
    pub retention_lock: Mutex<()>,
    pub counters: Counters,
}

impl Shared {
    /// The position readers may read up to: durable records under `Fsync`, written ones otherwise.
    pub(crate) fn visible(&self, p: &Progress) -> Mark {
        match self.opts.durability {
            Durability::Fsync => p.durable,
            Durability::Os | Durability::None => p.written,
        }
    }

    pub(crate) fn poison(&self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "WAL poisoned");
        self.poisoned.store(true, Ordering::SeqCst);
        let mut p = self.progress.lock();
        if p.error.is_none() {
            p.error = Some(reason);
        }
        p.generation += 1;
        self.progress_cv.notify_all();
    }
}

/// An append that has been queued; [`AppendTicket::wait`] returns when it is acknowledged
/// according to the log's [`Durability`].
#[derive(Debug)]
#[must_use = "an append is only acknowledged once its ticket is waited for"]
pub struct AppendTicket {
    shared: Arc<Shared>,
    seq: u64,
    end: u64,
}

impl AppendTicket {
    /// The record's (first) sequence number.
    pub fn seq(&self) -> SeqNo {
        SeqNo(self.seq)
    }

    /// Waits until the record is acknowledged; returns its sequence number.
    pub fn wait(self) -> Result<SeqNo> {
        let durability = self.shared.opts.durability;
        if durability == Durability::None {
            return Ok(SeqNo(self.seq));
        }
        let mut p = self.shared.progress.lock();
        loop {
            let done = match durability {
                Durability::Fsync => p.durable.end_seq,
                _ => p.written.end_seq,
            };
            if done >= self.end {
                return Ok(SeqNo(self.seq));
            }
            if let Some(reason) = &p.error {
                return Err(Error::Poisoned { reason: reason.clone() });
            }
            if p.closed {
                return Err(Error::Closed);
            }
            self.shared.progress_cv.wait(&mut p);
        }
    }
}

/// A snapshot of a log's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalStats {
    /// First sequence number still in the log.
    pub first_seq: SeqNo,
    /// Sequence number the next append gets.
    pub next_seq: SeqNo,
    /// Records before this are written (visible to the OS).
    pub written_seq: SeqNo,
    /// Records before this are fsynced.
    pub durable_seq: SeqNo,
    /// Live segment files.
    pub segments: usize,
    /// Records appended since open.
    pub appends: u64,
    /// Group-commit batches written since open (appends / batches = average group size).
    pub batches: u64,
    /// `fdatasync` calls since open.
    pub syncs: u64,
    /// Bytes written since open.
    pub bytes_written: u64,
    /// Set when the log is poisoned.
    pub poisoned: Option<String>,
}

/// A segmented, append-only write-ahead log of opaque payloads, with one writer thread and
/// group commit. See the crate docs for an example.
pub struct Wal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering it: a torn tail in the last segment is
    /// cut off at the last good record; damage anywhere else is [`Error::Corrupted`].
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let rec = recover(&dir, &opts)?;
        let active = rec.segments.last().cloned().expect("recovery always leaves an active segment");
        let mark = Mark { end_seq: rec.next_seq, segment: active.first_seq, offset: rec.active_len };
        let (tx, rx) = bounded(opts.queue_records);
        let shared = Arc::new(Shared {
            budget: ByteBudget::new(opts.queue_bytes),
            submit: Mutex::new(SubmitState { next_seq: rec.next_seq, tx: Some(tx) }),
            poisoned: AtomicBool::new(false),
            progress: Mutex::new(Progress {
                written: mark,
                durable: mark,
                first_seq: rec.segments.first().map_or(rec.next_seq, |s| s.first_seq),
                error: None,
                closed: false,
                generation: 0,
            }),
            progress_cv: Condvar::new(),
            segments: RwLock::new(rec.segments),
            pin: Mutex::new(opts.pin),
            retention_lock: Mutex::new(()),
            counters: Counters::default(),
            dir,
            opts,
        });
        let writer = Writer::new(shared.clone(), rx, rec.active_file, active, rec.active_len);
        let handle = std::thread::Builder::new()
            .name(shared.opts.thread_name.clone())
            .spawn(move || writer.run())
            .map_err(|e| Error::io("spawn writer thread", &shared.dir, e))?;
        let wal = Wal { shared, writer: Some(handle) };
        wal.apply_retention()?;
        Ok(wal)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.shared.opts
    }

    /// Appends one record covering one sequence number and waits for its acknowledgement.
    pub fn append(&self, payload: impl Into<Vec<u8>>) -> Result<SeqNo> {
        self.submit(payload.into(), 1)?.wait()
    }

    /// Appends one record covering `count` consecutive sequence numbers (for example one per
    /// row of a batch) and waits for it; returns the first.
    pub fn append_n(&self, payload: impl Into<Vec<u8>>, count: u32) -> Result<SeqNo> {
        self.submit(payload.into(), count)?.wait()
    }

    /// Queues a record without waiting: the returned ticket's sequence number is final, and
    /// [`AppendTicket::wait`] returns once it is acknowledged. Blocks only for back-pressure.
    pub fn submit(&self, payload: Vec<u8>, count: u32) -> Result<AppendTicket> {
        if count == 0 {
            return Err(Error::InvalidArgument("a record must cover at least one sequence number".into()));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::PayloadTooLarge { len: payload.len(), max: MAX_PAYLOAD });
        }
        let raw_len = payload.len() as u32;
        let (codec, stored) = compress(self.shared.opts.codec, self.shared.opts.zstd_level, payload);
        let payload_crc = crc32c::crc32c(&stored);
        let bytes = stored.len() as u64;
        self.shared.budget.acquire(bytes);
        let submitted = self.enqueue(stored, payload_crc, codec, raw_len, count);
        if submitted.is_err() {
            self.shared.budget.release(bytes);
        }
        let (seq, end) = submitted?;
        Ok(AppendTicket { shared: self.shared.clone(), seq, end })
    }

    fn enqueue(
        &self,
        payload: Vec<u8>,
        payload_crc: u32,
        codec: Codec,
        raw_len: u32,
        count: u32,
    ) -> Result<(u64, u64)> {
        let mut sub = self.shared.submit.lock();
        if self.shared.poisoned.load(Ordering::SeqCst) {
            let reason = self.shared.progress.lock().error.clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        let seq = sub.next_seq;
        let end =
            seq.checked_add(count as u64).ok_or_else(|| Error::InvalidArgument("sequence numbers exhausted".into()))?;
        let tx = sub.tx.as_ref().ok_or(Error::Closed)?;
        // The writer never takes `submit`, so blocking here on a full queue cannot deadlock;
        // holding the lock keeps queue order equal to sequence order.
        tx.send(Request::Append(Pending { seq, count, codec, raw_len, payload, payload_crc }))
            .map_err(|_| Error::Closed)?;
        sub.next_seq = end;
        self.shared.counters.appends.fetch_add(1, Ordering::Relaxed);
        Ok((seq, end))
    }

    /// Makes every record appended so far durable (`fdatasync`), whatever the durability mode.
    pub fn sync(&self) -> Result<()> {
        let (reply_tx, reply_rx) = bounded(1);
        {
            let sub = self.shared.submit.lock();
            let tx = sub.tx.as_ref().ok_or(Error::Closed)?;
            tx.send(Request::Sync(reply_tx)).map_err(|_| Error::Closed)?;
        }
        reply_rx.recv().map_err(|_| Error::Closed)?
    }

    /// Closes the segment being written (after everything queued before this call) and starts
    /// a new one, so that retention may delete the old one; then applies retention. Does nothing
    /// when the current segment holds no record.
    pub fn roll(&self) -> Result<()> {
        let (reply_tx, reply_rx) = bounded(1);
        {
            let sub = self.shared.submit.lock();
            let tx = sub.tx.as_ref().ok_or(Error::Closed)?;
            tx.send(Request::Roll(reply_tx)).map_err(|_| Error::Closed)?;
        }
        reply_rx.recv().map_err(|_| Error::Closed)?
    }

    /// Sequence number the next append will get.
    pub fn next_seq(&self) -> SeqNo {
        SeqNo(self.shared.submit.lock().next_seq)
    }

    /// First sequence number still in the log (earlier ones were removed by retention).
    pub fn first_seq(&self) -> SeqNo {
        SeqNo(self.shared.progress.lock().first_seq)
    }

    /// Records before this sequence number are acknowledged and readable.
    pub fn committed_seq(&self) -> SeqNo {
        let p = self.shared.progress.lock();
        SeqNo(self.shared.visible(&p).end_seq)
    }

    /// A reader of the records from `from` up to the committed position (the first record
    /// returned is the one that contains `from`).
    pub fn reader(&self, from: SeqNo) -> Result<WalReader> {
        WalReader::new(self.shared.clone(), from.0)
    }

    /// Like [`Wal::reader`], but waits for new records instead of ending at the committed
    /// position. Woken by the writer, never by polling.
    pub fn subscribe(&self, from: SeqNo) -> Result<Subscription> {
        Ok(Subscription::new(self.reader(from)?))
    }

    /// Records at or after `pin` are never removed by retention (the engine pins what is not
    /// yet flushed into parts). `None` removes the pin.
    pub fn set_pin(&self, pin: Option<SeqNo>) {
        *self.shared.pin.lock() = pin.map(|s| s.0);
    }

    /// Deletes whole closed segments all of whose records are before `seq` (and before the pin).
    /// Returns the number of segments removed.
    pub fn truncate_before(&self, seq: SeqNo) -> Result<usize> {
        crate::retention::truncate_before(&self.shared, seq.0)
    }

    /// Applies retention by bytes and by age (`retention_bytes`, `retention_ms`), never past the
    /// pin. Runs automatically when a segment is closed; call it to run it now.
    pub fn apply_retention(&self) -> Result<usize> {
        crate::retention::apply(&self.shared)
    }

    /// Current state and counters.
    pub fn stats(&self) -> WalStats {
        let next_seq = SeqNo(self.shared.submit.lock().next_seq);
        let p = self.shared.progress.lock();
        let c = &self.shared.counters;
        WalStats {
            first_seq: SeqNo(p.first_seq),
            next_seq,
            written_seq: SeqNo(p.written.end_seq),
            durable_seq: SeqNo(p.durable.end_seq),
            segments: self.shared.segments.read().len(),
            appends: c.appends.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            poisoned: p.error.clone(),
        }
    }

    /// Total bytes of the live segment files.
    pub fn disk_bytes(&self) -> u64 {
        let segs = self.shared.segments.read().clone();
        segs.iter().map(|s| self.shared.opts.fs.file_len(&s.path).unwrap_or(0)).sum::<u64>()
    }

    /// Stops the writer after it has written (and synced) everything queued. Returns the error
    /// that poisoned the log, if any.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(handle) = self.writer.take() else { return Ok(()) };
        if let Some(tx) = self.shared.submit.lock().tx.take() {
            let _ = tx.send(Request::Shutdown);
        }
        if handle.join().is_err() {
            self.shared.poison("WAL writer thread panicked".into());
        }
        let mut p = self.shared.progress.lock();
        p.closed = true;
        p.generation += 1;
        self.shared.progress_cv.notify_all();
        match &p.error {
            Some(reason) => Err(Error::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(dir = %self.shared.dir.display(), error = %e, "WAL closed with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use sluice_vfs::{Crash, FileSystem, SimFs};

    use super::*;
    use crate::segment::segment_name;

    const DIR: &str = "/w";

    fn opts(fs: &SimFs) -> WalOptions {
        WalOptions::default().fs(fs.shared()).segment_bytes(4096)
    }

    fn read_all(wal: &Wal, from: u64) -> Vec<(u64, Vec<u8>)> {
        wal.reader(SeqNo(from))
            .expect("reader")
            .map(|r| r.map(|r| (r.seq.0, r.payload)))
            .collect::<Result<_>>()
            .expect("read")
    }

    #[test]
    fn append_read_reopen_across_segments() -> Result<()> {
        let fs = SimFs::new(1);
        let wal = Wal::open(DIR, opts(&fs))?;
        for i in 0..100u64 {
            assert_eq!(wal.append(vec![i as u8; 100 + i as usize])?, SeqNo(i));
        }
        assert!(wal.stats().segments > 2, "4 KiB segments must roll");
        let all = read_all(&wal, 0);
        assert_eq!(all.len(), 100);
        assert_eq!(read_all(&wal, 57)[0].0, 57);
        drop(wal);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(wal.next_seq(), SeqNo(100));
        assert_eq!(read_all(&wal, 0), all);
        assert_eq!(wal.append(b"more".to_vec())?, SeqNo(100));
        Ok(())
    }

    #[test]
    fn multi_count_records_and_mid_record_start() -> Result<()> {
        let fs = SimFs::new(2);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(wal.append_n(b"a".to_vec(), 10)?, SeqNo(0));
        assert_eq!(wal.append_n(b"b".to_vec(), 5)?, SeqNo(10));
        let got = read_all(&wal, 12);
        assert_eq!(got, vec![(10, b"b".to_vec())], "reading from inside a record returns it");
        assert!(wal.append_n(b"x".to_vec(), 0).is_err());
        Ok(())
    }

    #[test]
    fn torn_tail_is_cut_and_reopen_is_idempotent() -> Result<()> {
        let fs = SimFs::new(3);
        let wal = Wal::open(DIR, opts(&fs))?;
        for i in 0..5u8 {
            wal.append(vec![i; 50])?;
        }
        drop(wal);
        let path = Path::new(DIR).join(segment_name(0));
        let len = fs.file_len(&path).expect("len");
        // garbage after the last record (a torn write)
        fs.corrupt(&path, len, &[0xAB; 20]).expect("corrupt");
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(read_all(&wal, 0).len(), 5);
        assert_eq!(fs.file_len(&path).expect("len"), len, "tail cut at the last good record");
        drop(wal);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(read_all(&wal, 0).len(), 5);
        assert_eq!(fs.file_len(&path).expect("len"), len);
        Ok(())
    }

    #[test]
    fn damage_before_the_tail_is_an_error_naming_file_and_offset() -> Result<()> {
        let fs = SimFs::new(4);
        let wal = Wal::open(DIR, opts(&fs))?;
        for i in 0..200u8 {
            wal.append(vec![i; 60])?;
        }
        drop(wal);
        // a flipped byte in the payload of the second record of the first (closed) segment
        let first = Path::new(DIR).join(segment_name(0));
        fs.corrupt(&first, 32 + 96 + 36 + 5, &[0xFF]).expect("corrupt");
        match Wal::open(DIR, opts(&fs)) {
            Err(Error::Corrupted { file, offset, .. }) => {
                assert_eq!(file, first);
                assert_eq!(offset, 32 + 96);
            }
            other => panic!("expected Corrupted, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn damage_in_the_middle_of_the_last_segment_is_not_a_torn_tail() -> Result<()> {
        let fs = SimFs::new(5);
        let wal = Wal::open(DIR, WalOptions::default().fs(fs.shared()))?;
        for i in 0..10u8 {
            wal.append(vec![i; 40])?;
        }
        drop(wal);
        let path = Path::new(DIR).join(segment_name(0));
        fs.corrupt(&path, 32 + 76 * 3 + 40, &[0x00, 0x01]).expect("corrupt");
        assert!(matches!(
            Wal::open(DIR, WalOptions::default().fs(fs.shared())),
            Err(Error::Corrupted { offset, .. }) if offset == 32 + 76 * 3
        ));
        Ok(())
    }

    #[test]
    fn failed_write_poisons_until_reopen() -> Result<()> {
        let fs = SimFs::new(6);
        let wal = Wal::open(DIR, opts(&fs))?;
        wal.append(b"ok".to_vec())?;
        fs.fail_write_after(0);
        assert!(matches!(wal.append(b"fails".to_vec()), Err(Error::Poisoned { .. })));
        assert!(matches!(wal.append(b"refused".to_vec()), Err(Error::Poisoned { .. })));
        assert!(wal.stats().poisoned.is_some());
        assert!(wal.close().is_err());
        let wal = Wal::open(DIR, opts(&fs))?;
        let got = read_all(&wal, 0);
        assert_eq!(got[0], (0, b"ok".to_vec()));
        assert!(got.len() <= 2);
        wal.append(b"after".to_vec())?;
        Ok(())
    }

    #[test]
    fn failed_sync_poisons() -> Result<()> {
        let fs = SimFs::new(7);
        let wal = Wal::open(DIR, opts(&fs))?;
        fs.fail_sync_after(0);
        assert!(matches!(wal.append(b"x".to_vec()), Err(Error::Poisoned { .. })));
        assert!(wal.append(b"y".to_vec()).is_err());
        Ok(())
    }

    #[test]
    fn retention_respects_pin_bytes_and_age() -> Result<()> {
        let fs = SimFs::new(8);
        let mut o = opts(&fs);
        o.retention_bytes = Some(8192);
        let wal = Wal::open(DIR, o.clone())?;
        wal.set_pin(Some(SeqNo(0)));
        for i in 0..200u8 {
            wal.append(vec![i; 100])?;
        }
        assert_eq!(wal.first_seq(), SeqNo(0), "pin holds everything");
        wal.set_pin(Some(SeqNo(150)));
        wal.apply_retention()?;
        let first = wal.first_seq().0;
        assert!(first > 0 && first <= 150, "first {first}");
        assert!(matches!(wal.reader(SeqNo(0)), Err(Error::Truncated { .. })));
        assert_eq!(read_all(&wal, first).len() as u64, 200 - first);
        // bytes: without a pin, retention keeps about retention_bytes
        wal.set_pin(None);
        wal.apply_retention()?;
        assert!(wal.disk_bytes() <= 8192 + 4096, "{}", wal.disk_bytes());
        // explicit truncation never removes the active segment
        wal.truncate_before(SeqNo(u64::MAX))?;
        assert_eq!(wal.stats().segments, 1);
        drop(wal);
        // age
        let mut o2 = opts(&fs);
        o2.retention_ms = Some(1000);
        let wal = Wal::open(DIR, o2)?;
        for i in 0..100u8 {
            wal.append(vec![i; 100])?;
        }
        let before = wal.stats().segments;
        fs.advance_ms(2000);
        wal.append(vec![0; 100])?;
        wal.apply_retention()?;
        assert!(wal.stats().segments < before);
        assert_eq!(wal.stats().segments, 1);
        Ok(())
    }

    #[test]
    fn subscription_wakes_on_append_and_ends_on_close() -> Result<()> {
        let fs = SimFs::new(9);
        let wal = Arc::new(Wal::open(DIR, opts(&fs))?);
        let mut sub = wal.subscribe(SeqNo(0))?;
        assert_eq!(sub.recv_timeout(Duration::from_millis(10))?, None);
        let w = wal.clone();
        let t = std::thread::spawn(move || -> Result<()> {
            for i in 0..50u8 {
                w.append(vec![i; 10])?;
            }
            Ok(())
        });
        for i in 0..50u64 {
            let r = sub.recv_timeout(Duration::from_secs(10))?.expect("record");
            assert_eq!(r.seq, SeqNo(i));
        }
        t.join().expect("thread")?;
        let wal = Arc::try_unwrap(wal).expect("only owner");
        wal.close()?;
        assert_eq!(sub.recv()?, None);
        Ok(())
    }

    #[test]
    fn crash_loses_only_unacknowledged_records() -> Result<()> {
        for durability in [Durability::Fsync, Durability::Os] {
            let fs = SimFs::new(10);
            let wal = Wal::open(DIR, opts(&fs).durability(durability))?;
            for i in 0..120u8 {
                wal.append(vec![i; 70])?;
            }
            let crash = if durability == Durability::Fsync { Crash::PowerLossTorn } else { Crash::Process };
            fs.crash(crash);
            drop(wal);
            let wal = Wal::open(DIR, opts(&fs).durability(durability))?;
            assert_eq!(read_all(&wal, 0).len(), 120, "{durability}");
            fs.crash(Crash::PowerLoss);
        }
        Ok(())
    }

    #[test]
    fn sync_makes_os_mode_durable() -> Result<()> {
        let fs = SimFs::new(11);
        let wal = Wal::open(DIR, opts(&fs).durability(Durability::Os))?;
        for i in 0..120u8 {
            wal.append(vec![i; 70])?;
        }
        wal.sync()?;
        fs.crash(Crash::PowerLoss);
        drop(wal);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(read_all(&wal, 0).len(), 120);
        Ok(())
    }

    #[test]
    fn roll_closes_the_segment_so_retention_can_drop_it() -> Result<()> {
        let fs = SimFs::new(21);
        let wal = Wal::open(DIR, opts(&fs))?;
        wal.roll()?; // nothing written yet: no new segment
        assert_eq!(wal.stats().segments, 1);
        for i in 0..3u8 {
            wal.append(vec![i; 10])?;
        }
        wal.roll()?;
        assert_eq!(wal.stats().segments, 2);
        wal.append(vec![9; 10])?;
        assert_eq!(wal.truncate_before(SeqNo(3))?, 1);
        assert_eq!(wal.first_seq(), SeqNo(3));
        fs.crash(Crash::PowerLoss);
        drop(wal);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(read_all(&wal, 3), vec![(3, vec![9; 10])]);
        Ok(())
    }

    #[test]
    fn codecs_round_trip_through_the_log() -> Result<()> {
        for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
            let fs = SimFs::new(12);
            let wal = Wal::open(DIR, opts(&fs).codec(codec))?;
            let payload: Vec<u8> = (0..3000u32).map(|i| (i % 13) as u8).collect();
            wal.append(payload.clone())?;
            drop(wal);
            let wal = Wal::open(DIR, opts(&fs))?;
            assert_eq!(read_all(&wal, 0), vec![(0, payload)], "{codec}");
        }
        Ok(())
    }

    #[test]
    fn torn_segment_header_is_recreated() -> Result<()> {
        let fs = SimFs::new(13);
        fs.create_dir_all(Path::new(DIR)).expect("mkdir");
        let p = Path::new(DIR).join(segment_name(500));
        let mut f = fs.create_new(&p).expect("create");
        f.append(b"SLUI").expect("write");
        let wal = Wal::open(DIR, opts(&fs))?;
        assert_eq!(wal.next_seq(), SeqNo(500));
        assert_eq!(wal.append(b"x".to_vec())?, SeqNo(500));
        Ok(())
    }

    #[test]
    fn oversized_payload_is_refused() -> Result<()> {
        let fs = SimFs::new(14);
        let wal = Wal::open(DIR, opts(&fs))?;
        assert!(matches!(wal.append(vec![0u8; MAX_PAYLOAD + 1]), Err(Error::PayloadTooLarge { .. })));
        Ok(())
    }
}
