//! Deleting whole closed segments from the front of the log: on request
//! ([`crate::Wal::truncate_before`]) and by size and age (`retention_bytes`, `retention_ms`),
//! never at or past the pin and never the segment being written.

use std::io;

use crate::wal::Shared;
use crate::{Error, Result};

/// Removes closed segments whose records are all before `seq`.
pub(crate) fn truncate_before(shared: &Shared, seq: u64) -> Result<usize> {
    remove_prefix(shared, |meta_end, _, _| meta_end <= seq)
}

/// Applies the configured retention.
pub(crate) fn apply(shared: &Shared) -> Result<usize> {
    let (bytes, ms) = (shared.opts.retention_bytes, shared.opts.retention_ms);
    if bytes.is_none() && ms.is_none() {
        return Ok(0);
    }
    let now = shared.opts.fs.now_ms();
    remove_prefix(shared, |_, remaining_bytes, last_ms| {
        bytes.is_some_and(|b| remaining_bytes > b) || ms.is_some_and(|m| last_ms.saturating_add(m) <= now)
    })
}

/// Removes the longest prefix of closed segments for which `remove(end_seq, bytes of the log
/// including this segment and all after it, last_ms)` holds and that is below the pin.
fn remove_prefix(shared: &Shared, remove: impl Fn(u64, u64, u64) -> bool) -> Result<usize> {
    let _serial = shared.retention_lock.lock();
    let pin = *shared.pin.lock();
    let victims = {
        let mut segs = shared.segments.write();
        let mut remaining: u64 = segs.iter().map(|s| s.len()).sum();
        let mut k = 0;
        while k + 1 < segs.len() {
            let s = &segs[k];
            let end = s.end_seq();
            let allowed = s.is_sealed() && pin.is_none_or(|p| end <= p);
            if !allowed || !remove(end, remaining, s.last_ms.load(std::sync::atomic::Ordering::Acquire)) {
                break;
            }
            remaining -= s.len();
            k += 1;
        }
        let victims: Vec<_> = segs.drain(..k).collect();
        if let Some(first) = segs.first() {
            let mut p = shared.progress.lock();
            p.first_seq = first.first_seq;
            p.generation += 1;
        }
        victims
    };
    if victims.is_empty() {
        return Ok(0);
    }
    let fs = shared.opts.fs.as_ref();
    for v in &victims {
        match fs.remove_file(&v.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &v.path, e)),
        }
        tracing::debug!(file = %v.path.display(), "WAL segment removed by retention");
    }
    fs.sync_dir(&shared.dir).map_err(|e| Error::io("fsync dir", &shared.dir, e))?;
    Ok(victims.len())
}
