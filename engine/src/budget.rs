//! The memory budget shared by all memtables of a database. Appenders take bytes from it
//! before their batch enters a memtable and wait (back-pressure) while it is exhausted;
//! flushes give bytes back.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::{Error, Result};

/// How long an appender waits for flushes to free memory before giving up.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// See the module docs.
pub(crate) struct MemBudget {
    limit: u64,
    used: Mutex<u64>,
    cv: Condvar,
    /// Called (outside the lock) when an appender has to wait: asks flushers to hurry.
    pressure: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for MemBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemBudget").field("limit", &self.limit).field("used", &*self.used.lock()).finish()
    }
}

impl MemBudget {
    pub(crate) fn new(limit: u64) -> Self {
        Self { limit: limit.max(1), used: Mutex::new(0), cv: Condvar::new(), pressure: Mutex::new(None) }
    }

    pub(crate) fn on_pressure(&self, f: Box<dyn Fn() + Send + Sync>) {
        *self.pressure.lock() = Some(f);
    }

    /// Takes `bytes`, waiting while the budget is exhausted. A batch larger than the whole
    /// budget is admitted alone (when nothing else is held).
    pub(crate) fn acquire(&self, bytes: u64) -> Result<()> {
        let deadline = Instant::now() + MAX_WAIT;
        let mut used = self.used.lock();
        let mut signalled = false;
        while *used > 0 && *used + bytes > self.limit {
            if !signalled {
                signalled = true;
                drop(used);
                if let Some(f) = &*self.pressure.lock() {
                    f();
                }
                used = self.used.lock();
                continue;
            }
            if self.cv.wait_until(&mut used, deadline).timed_out() {
                return Err(Error::ResourcesExhausted(format!(
                    "memtables hold {} of {} bytes and flushing did not free memory within {}s",
                    *used,
                    self.limit,
                    MAX_WAIT.as_secs()
                )));
            }
        }
        *used += bytes;
        Ok(())
    }

    /// Takes `bytes` without waiting (recovery).
    pub(crate) fn force(&self, bytes: u64) {
        *self.used.lock() += bytes;
    }

    /// Gives `bytes` back.
    pub(crate) fn release(&self, bytes: u64) {
        let mut used = self.used.lock();
        *used = used.saturating_sub(bytes);
        self.cv.notify_all();
    }

    /// Whether more than `fraction` of the budget is in use.
    pub(crate) fn above(&self, fraction: f64) -> bool {
        *self.used.lock() as f64 > self.limit as f64 * fraction
    }
}
