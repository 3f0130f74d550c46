//! Background threads: flushers (`sluice-flush-N`) that move memtables into parts when a
//! threshold is reached, and the merger (`sluice-merge`) that merges parts and applies TTL.
//! A panicking job poisons its shard instead of killing the thread silently; every thread is
//! joined on close.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use sluice_columnstore::MergePolicy;

use crate::database::{DbInner, Stream};
use crate::options::Options;
use crate::shard::Shard;
use crate::stream_def::StreamDef;
use crate::{Error, Result};

/// Longest a flusher sleeps between looks at the time thresholds.
const MAX_TICK: Duration = Duration::from_millis(250);
/// How often the merger looks at every shard without being asked.
const MERGE_TICK: Duration = Duration::from_secs(2);

enum Job {
    Flush(Weak<Stream>, usize),
    /// Memory is short: look at every shard now.
    Wake,
}

/// The running background threads.
pub(crate) struct Workers {
    flush_tx: Sender<Job>,
    merge_tx: Option<Sender<()>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub(crate) fn start(inner: &Arc<DbInner>) -> Result<Workers> {
        let (flush_tx, flush_rx) = bounded::<Job>(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (merge_tx, merge_rx) = if inner.opts.merge {
            let (t, r) = bounded::<()>(1);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        for i in 0..inner.opts.flush_threads.max(1) {
            let db = Arc::downgrade(inner);
            let rx = flush_rx.clone();
            let stop = stop.clone();
            let merge = merge_tx.clone();
            let h = std::thread::Builder::new()
                .name(format!("sluice-flush-{i}"))
                .spawn(move || flush_loop(db, rx, stop, merge))
                .map_err(|e| Error::io("spawn", "sluice-flush", e))?;
            threads.push(h);
        }
        if let Some(rx) = merge_rx {
            let db = Arc::downgrade(inner);
            let stop = stop.clone();
            let h = std::thread::Builder::new()
                .name("sluice-merge".into())
                .spawn(move || merge_loop(db, rx, stop))
                .map_err(|e| Error::io("spawn", "sluice-merge", e))?;
            threads.push(h);
        }
        let tx = flush_tx.clone();
        inner.budget.on_pressure(Box::new(move || {
            let _ = tx.try_send(Job::Wake);
        }));
        Ok(Workers { flush_tx, merge_tx, stop, threads })
    }

    /// Asks a flusher to flush `shard` of `stream` (once, however often it is asked before
    /// the flush runs).
    pub(crate) fn request_flush(&self, stream: &Arc<Stream>, shard: usize) {
        if stream.shards[shard].flush_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        match self.flush_tx.try_send(Job::Flush(Arc::downgrade(stream), shard)) {
            Ok(()) => {}
            // A full queue: the periodic look at every shard picks it up.
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                stream.shards[shard].flush_queued.store(false, Ordering::Release)
            }
        }
    }

    /// Stops and joins every thread (except the calling one, if it is a worker dropping the
    /// last database handle).
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        // Wake every flusher now (the memory budget keeps a sender, so the channel stays open).
        for _ in 0..self.threads.len() {
            let _ = self.flush_tx.try_send(Job::Wake);
        }
        drop(self.flush_tx);
        drop(self.merge_tx);
        let me = std::thread::current().id();
        for h in self.threads {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

fn flush_loop(db: Weak<DbInner>, rx: Receiver<Job>, stop: Arc<AtomicBool>, merge: Option<Sender<()>>) {
    let mut tick = MAX_TICK;
    loop {
        let job = rx.recv_timeout(tick);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(db) = db.upgrade() else { return };
        let mut flushed = false;
        match job {
            Ok(Job::Flush(stream, shard)) => {
                if let Some(stream) = stream.upgrade() {
                    stream.shards[shard].flush_queued.store(false, Ordering::Release);
                    flushed |= run_flush(&stream, shard);
                }
            }
            Ok(Job::Wake) => {}
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Time thresholds and memory pressure, on every wake-up.
        let now = db.opts.fs.now_ms();
        let streams: Vec<Arc<Stream>> = db.streams.read().values().cloned().collect();
        let pressure = db.budget.above(0.75);
        let mut next_deadline = now + MAX_TICK.as_millis() as u64;
        for s in &streams {
            let def = s.def();
            for (i, sh) in s.shards.iter().enumerate() {
                if sh.needs_flush(&def, now) || (pressure && sh.state.read().mem.rows() > 0) {
                    flushed |= run_flush(s, i);
                }
                if let Some(d) = sh.flush_deadline(&def) {
                    next_deadline = next_deadline.min(d);
                }
            }
        }
        tick = Duration::from_millis(next_deadline.saturating_sub(now).clamp(1, MAX_TICK.as_millis() as u64));
        if flushed && let Some(m) = &merge {
            let _ = m.try_send(());
        }
    }
}

/// Flushes one shard, turning a panic into poison. True if rows moved.
fn run_flush(stream: &Arc<Stream>, shard: usize) -> bool {
    let sh: &Arc<Shard> = &stream.shards[shard];
    if sh.is_closed() || sh.check_poison().is_err() {
        return false;
    }
    let def = stream.def();
    match catch_unwind(AssertUnwindSafe(|| sh.flush(&def, &def.schema_with_sn(), false))) {
        Ok(Ok(rows)) => rows > 0,
        Ok(Err(e)) => {
            tracing::error!(stream = %sh.stream, shard = sh.id, error = %e, "flush failed");
            false
        }
        Err(panic) => {
            sh.set_poison(format!("flush panicked: {}", panic_message(&panic)));
            false
        }
    }
}

fn merge_loop(db: Weak<DbInner>, rx: Receiver<()>, stop: Arc<AtomicBool>) {
    loop {
        let r = rx.recv_timeout(MERGE_TICK);
        if stop.load(Ordering::Acquire) || matches!(r, Err(RecvTimeoutError::Disconnected)) {
            return;
        }
        let Some(db) = db.upgrade() else { return };
        let policy = merge_policy(&db.opts);
        let now = db.opts.fs.now_ms();
        let streams: Vec<Arc<Stream>> = db.streams.read().values().cloned().collect();
        for s in &streams {
            let def = s.def();
            for sh in &s.shards {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                if sh.is_closed() || sh.check_poison().is_err() {
                    continue;
                }
                match catch_unwind(AssertUnwindSafe(|| {
                    sh.merge(&policy, ttl_cutoff(&def, now), crate::kv::merge_dedup(&def))
                })) {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(stream = %sh.stream, shard = sh.id, error = %e, "merge failed"),
                    Err(panic) => sh.set_poison(format!("merge panicked: {}", panic_message(&panic))),
                }
            }
        }
    }
}

/// The merge policy of a database.
pub(crate) fn merge_policy(opts: &Options) -> MergePolicy {
    MergePolicy::default().max_fan_in(opts.merge_fan_in.max(2))
}

/// Rows whose TTL column is older than this (ms) have expired, if the stream has a TTL: the
/// cutoff and the column.
pub(crate) fn ttl_cutoff(def: &StreamDef, now_ms: u64) -> Option<(i64, String)> {
    def.ttl.as_ref().map(|t| (now_ms as i64 - t.interval_ms as i64, t.column.clone()))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
