//! Per-query execution context (threads, cancellation, memory limit, query time) and planning
//! options.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How a query runs.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// Worker threads for one query (default 2).
    pub threads: usize,
    /// Set to true to cancel: the query stops between batches with [`Error::Cancelled`].
    pub cancel: Arc<AtomicBool>,
    /// Limit on the state of hash aggregates, sorts and join build sides (bytes, summed per query).
    pub memory_limit_bytes: usize,
    /// The query's start time, nanoseconds since the epoch (UTC): what `now()` returns.
    pub now: i64,
    /// Bytes currently accounted to this query.
    pub(crate) memory_used: Arc<AtomicUsize>,
}

impl Default for ExecContext {
    fn default() -> Self {
        ExecContext {
            threads: 2,
            cancel: Arc::new(AtomicBool::new(false)),
            memory_limit_bytes: 8 << 30,
            now: now_nanos(),
            memory_used: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The wall clock as nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl ExecContext {
    /// A context with `threads` workers and otherwise defaults.
    pub fn with_threads(threads: usize) -> Self {
        ExecContext { threads: threads.max(1), ..Default::default() }
    }

    /// Err(Cancelled) if the query was cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) { Err(Error::Cancelled) } else { Ok(()) }
    }

    /// A reservation of memory for one operator's state, released on drop.
    pub(crate) fn reservation(&self, what: &'static str) -> MemoryReservation {
        MemoryReservation { used: self.memory_used.clone(), limit: self.memory_limit_bytes, held: 0, what }
    }
}

/// Memory held by one operator; [`MemoryReservation::resize`] fails past the query's limit.
#[derive(Debug)]
pub(crate) struct MemoryReservation {
    used: Arc<AtomicUsize>,
    limit: usize,
    held: usize,
    what: &'static str,
}

impl MemoryReservation {
    /// Sets this reservation to `bytes`, failing with ResourcesExhausted over the limit.
    pub(crate) fn resize(&mut self, bytes: usize) -> Result<()> {
        if bytes > self.held {
            let add = bytes - self.held;
            let total = self.used.fetch_add(add, Ordering::Relaxed) + add;
            self.held = bytes;
            if total > self.limit {
                return Err(Error::ResourcesExhausted {
                    message: format!(
                        "{} needs more than the query memory limit of {} bytes (max_memory_usage)",
                        self.what, self.limit
                    ),
                });
            }
        } else {
            self.used.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
        }
        Ok(())
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// How a query is planned.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// When false (default), `FROM s` without `table()` is a streaming query and fails with
    /// NotImplemented; when true it reads `s` as a bounded table (benchmarks, tests).
    pub plain_stream_is_table: bool,
    /// Threads and memory used to run uncorrelated subqueries (`IN (SELECT ...)`) at plan time.
    pub threads: usize,
    /// Memory limit for plan-time subqueries.
    pub memory_limit_bytes: usize,
    /// `now()` for plan-time constant folding, nanoseconds since the epoch.
    pub now: i64,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions { plain_stream_is_table: false, threads: 2, memory_limit_bytes: 8 << 30, now: now_nanos() }
    }
}
