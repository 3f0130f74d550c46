//! Running partitions on threads: `fold_parallel` (blocking operators: one state per worker,
//! scoped threads) and `gather` (the root of a pipelined plan: named threads feeding a bounded
//! channel, joined when the stream is dropped). No thread pool: a query spawns at most
//! `ctx.threads` short-lived threads per blocking operator, which costs tens of microseconds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::record_batch::RecordBatch;

use super::{LazyPart, PartStream};
use crate::context::ExecContext;
use crate::error::{Error, Result};

fn next_part(q: &Mutex<VecDeque<LazyPart>>) -> Option<LazyPart> {
    q.lock().ok().and_then(|mut q| q.pop_front())
}

/// Runs every partition, folding its batches into one state per worker thread.
pub fn fold_parallel<S: Send>(
    ctx: &ExecContext,
    parts: Vec<LazyPart>,
    init: &(dyn Fn() -> Result<S> + Sync),
    fold: &(dyn Fn(&mut S, RecordBatch) -> Result<()> + Sync),
) -> Result<Vec<S>> {
    let workers = ctx.threads.max(1).min(parts.len().max(1));
    let queue = Mutex::new(VecDeque::from(parts));
    let failed = AtomicBool::new(false);
    let work = || -> Result<S> {
        let mut state = init()?;
        while let Some(p) = next_part(&queue) {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            for b in p()? {
                ctx.check_cancelled()?;
                fold(&mut state, b?)?;
            }
        }
        Ok(state)
    };
    if workers == 1 {
        return Ok(vec![work()?]);
    }
    let results: Vec<Result<S>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let work = &work;
                let failed = &failed;
                std::thread::Builder::new().name(format!("sluice-query-{i}")).spawn_scoped(s, move || {
                    let r = work();
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => {
                    h.join().unwrap_or_else(|_| Err(Error::Internal { message: "a query worker panicked".into() }))
                }
                Err(e) => Err(Error::ResourcesExhausted { message: format!("cannot start a query thread: {e}") }),
            })
            .collect()
    });
    // Report the first real error (not a cancellation caused by another worker's failure).
    let mut out = Vec::with_capacity(results.len());
    let mut first_err = None;
    for r in results {
        match r {
            Ok(s) => out.push(s),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Collects all batches of all partitions (in parallel; order between partitions is lost).
pub fn collect_parallel(ctx: &ExecContext, parts: Vec<LazyPart>) -> Result<Vec<RecordBatch>> {
    let states = fold_parallel(ctx, parts, &|| Ok(Vec::new()), &|s: &mut Vec<RecordBatch>, b| {
        if b.num_rows() > 0 {
            s.push(b);
        }
        Ok(())
    })?;
    Ok(states.into_iter().flatten().collect())
}

/// A stream fed by worker threads.
struct Gather {
    rx: Option<Receiver<Result<RecordBatch>>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Iterator for Gather {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Gather {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(
    queue: Arc<Mutex<VecDeque<LazyPart>>>,
    tx: SyncSender<Result<RecordBatch>>,
    stop: Arc<AtomicBool>,
    ctx: ExecContext,
) {
    while let Some(p) = next_part(&queue) {
        let stream = match p() {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for b in stream {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let b = ctx.check_cancelled().and(b);
            let failed = b.is_err();
            if tx.send(b).is_err() || failed {
                stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Merges partitions into one stream, running them on up to `ctx.threads` threads.
pub fn gather(ctx: &ExecContext, mut parts: Vec<LazyPart>) -> Result<PartStream> {
    if parts.len() <= 1 || ctx.threads <= 1 {
        if parts.len() == 1 {
            let p = parts.remove(0);
            return p();
        }
        // Sequential, lazily started.
        let mut it = parts.into_iter();
        let mut cur: Option<PartStream> = None;
        let stream = std::iter::from_fn(move || {
            loop {
                if let Some(s) = cur.as_mut() {
                    match s.next() {
                        Some(b) => return Some(b),
                        None => cur = None,
                    }
                }
                let p = it.next()?;
                match p() {
                    Ok(s) => cur = Some(s),
                    Err(e) => return Some(Err(e)),
                }
            }
        });
        return Ok(Box::new(stream));
    }
    let workers = ctx.threads.min(parts.len());
    let (tx, rx) = sync_channel(workers * 2);
    let queue = Arc::new(Mutex::new(VecDeque::from(parts)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..workers {
        let (q, tx, stop, ctx) = (queue.clone(), tx.clone(), stop.clone(), ctx.clone());
        let h = std::thread::Builder::new()
            .name(format!("sluice-gather-{i}"))
            .spawn(move || worker(q, tx, stop, ctx))
            .map_err(|e| Error::ResourcesExhausted { message: format!("cannot start a query thread: {e}") })?;
        handles.push(h);
    }
    Ok(Box::new(Gather { rx: Some(rx), handles, stop }))
}
