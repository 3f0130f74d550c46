//! Who is running what: every connection's process id and secret key (for CancelRequest),
//! the cancel flag of its running statement, and the count of statements in flight (for a
//! graceful stop).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use pgwire::messages::startup::SecretKey;
use tokio::sync::Notify;

/// Every open connection by process id.
#[derive(Debug)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<i32, Arc<ConnEntry>>>,
    next_pid: AtomicI32,
    busy: AtomicUsize,
    idle: Notify,
}

/// One connection.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub pid: i32,
    secret: Bytes,
    /// A cancel arrived for the running statement.
    pub cancel_requested: AtomicBool,
    /// Woken by a cancel.
    pub notify: Notify,
    current: Mutex<Option<Arc<AtomicBool>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            conns: Mutex::new(HashMap::new()),
            next_pid: AtomicI32::new(1000),
            busy: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }
}

impl Registry {
    /// Registers a new connection with a fresh pid and random secret; unregistered when the
    /// returned guard drops.
    pub fn register(self: &Arc<Self>, long_key: bool) -> (Arc<ConnEntry>, SecretKey, ConnGuard) {
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let secret = if long_key {
            SecretKey::Bytes(Bytes::from(crate::pg::scram::random_bytes(32)))
        } else {
            let b = crate::pg::scram::random_bytes(4);
            SecretKey::I32(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let entry = Arc::new(ConnEntry {
            pid,
            secret: secret.to_bytes(),
            cancel_requested: AtomicBool::new(false),
            notify: Notify::new(),
            current: Mutex::new(None),
        });
        self.conns.lock().insert(pid, entry.clone());
        (entry, secret, ConnGuard { registry: self.clone(), pid })
    }

    /// A CancelRequest: cancels the connection's running statement if the key matches.
    pub fn cancel(&self, pid: i32, secret: &SecretKey) -> bool {
        let entry = self.conns.lock().get(&pid).cloned();
        match entry {
            Some(e) if e.secret == secret.to_bytes() => e.cancel(),
            _ => false,
        }
    }

    /// Cancels every running statement (shutdown).
    pub fn cancel_all(&self) {
        let all: Vec<Arc<ConnEntry>> = self.conns.lock().values().cloned().collect();
        for e in all {
            e.cancel();
        }
    }

    /// Marks a statement as running until the guard drops.
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard { registry: self.clone() }
    }

    /// Waits until no statement runs, at most `timeout`; true if idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.busy.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.busy.load(Ordering::Acquire) == 0;
            }
        }
    }
}

impl ConnEntry {
    /// A statement starts: earlier cancels no longer apply.
    pub fn begin(&self) {
        self.cancel_requested.store(false, Ordering::Release);
        *self.current.lock() = None;
    }

    /// The cancel flag of the running query.
    pub fn set_current(&self, flag: Arc<AtomicBool>) {
        if self.cancel_requested.load(Ordering::Acquire) {
            flag.store(true, Ordering::Release);
        }
        *self.current.lock() = Some(flag);
    }

    /// The statement ended.
    pub fn end(&self) {
        *self.current.lock() = None;
    }

    fn cancel(&self) -> bool {
        self.cancel_requested.store(true, Ordering::Release);
        if let Some(f) = &*self.current.lock() {
            f.store(true, Ordering::Release);
        }
        self.notify.notify_one();
        true
    }

    /// True if a cancel arrived since the statement began.
    pub fn cancelled(&self) -> bool {
        self.cancel_requested.load(Ordering::Acquire)
    }
}

/// Unregisters a connection.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    registry: Arc<Registry>,
    pid: i32,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(e) = self.registry.conns.lock().remove(&self.pid) {
            // A statement still streaming stops.
            e.cancel();
        }
    }
}

/// A statement in flight.
#[derive(Debug)]
pub(crate) struct BusyGuard {
    registry: Arc<Registry>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.registry.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.registry.idle.notify_waiters();
        }
    }
}
