//! [`ColumnCache`]: decoded columns of part row groups, kept in memory between scans.
//!
//! Decoding Parquet (zstd, dictionary and bit-packed runs) costs as much as running a simple
//! query over the decoded arrays. Parts are immutable, so a decoded column of a row group stays
//! valid for as long as the part lives: the cache keeps whole row-group columns as Arrow arrays,
//! keyed by the open part, the row group and the top-level column, and evicts the least
//! recently used when over its byte budget. It plays the role of ClickHouse's uncompressed
//! cache and of DuckDB's buffer pool for repeated analytical scans.
//!
//! What goes in: only columns a scan reads in full (all rows of the row group), so a point
//! lookup that decodes one page does not decode the whole row group to fill the cache. What
//! comes out: a scan whose every projected column of a row group is cached slices the arrays
//! (zero copy) instead of touching the file; page pruning still applies, as row slices.
//!
//! A part's entries are dropped when the part (its last [`crate::Part`] clone) is dropped, so
//! merged-away parts do not hold memory until evicted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef};
use parking_lot::Mutex;

/// Key of one cached column: (open part, row group, top-level column index).
pub(crate) type CacheKey = (u64, u32, u32);

/// A bounded LRU cache of decoded row-group columns, shared by every part of a database.
pub struct ColumnCache {
    capacity: usize,
    inner: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Lru {
    map: HashMap<CacheKey, Entry>,
    /// Last use -> key, oldest first.
    order: BTreeMap<u64, CacheKey>,
    bytes: usize,
    tick: u64,
}

struct Entry {
    array: ArrayRef,
    bytes: usize,
    used: u64,
}

/// Counters of a [`ColumnCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Bytes held.
    pub bytes: usize,
    /// Columns held.
    pub entries: usize,
    /// The byte budget.
    pub capacity: usize,
    /// Row-group columns served from the cache.
    pub hits: u64,
    /// Row-group columns that had to be decoded.
    pub misses: u64,
}

impl fmt::Debug for ColumnCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ColumnCache").field("stats", &self.stats()).finish()
    }
}

/// Caches compare by identity (a store's options hold one).
impl PartialEq for ColumnCache {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl ColumnCache {
    /// A cache holding at most `capacity` bytes of decoded arrays (0 disables it).
    pub fn new(capacity: usize) -> Self {
        ColumnCache { capacity, inner: Mutex::new(Lru::default()), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The byte budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Current size and hit counters.
    pub fn stats(&self) -> CacheStats {
        let l = self.inner.lock();
        CacheStats {
            bytes: l.bytes,
            entries: l.map.len(),
            capacity: self.capacity,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The cached columns among `cols` of row group `rg` of part `part` (`None` where absent).
    pub(crate) fn get_each(&self, part: u64, rg: u32, cols: &[u32]) -> Vec<Option<ArrayRef>> {
        let mut l = self.inner.lock();
        let mut out = Vec::with_capacity(cols.len());
        for c in cols {
            let key = (part, rg, *c);
            l.tick += 1;
            let tick = l.tick;
            let Lru { map, order, .. } = &mut *l;
            out.push(map.get_mut(&key).map(|e| {
                order.remove(&e.used);
                e.used = tick;
                order.insert(tick, key);
                e.array.clone()
            }));
        }
        drop(l);
        let hits = out.iter().filter(|a| a.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(cols.len() as u64 - hits, Ordering::Relaxed);
        out
    }

    /// Whether the cache is worth filling with arrays of about `bytes` (not when they alone
    /// would take more than a quarter of it).
    pub(crate) fn admits(&self, bytes: usize) -> bool {
        bytes.saturating_mul(4) <= self.capacity
    }

    /// Adds a decoded column, evicting the least recently used ones over budget.
    pub(crate) fn insert(&self, key: CacheKey, array: ArrayRef) {
        let bytes = array.get_array_memory_size();
        if !self.admits(bytes) {
            return;
        }
        let mut l = self.inner.lock();
        l.tick += 1;
        let tick = l.tick;
        if let Some(old) = l.map.insert(key, Entry { array, bytes, used: tick }) {
            l.order.remove(&old.used);
            l.bytes -= old.bytes;
        }
        l.order.insert(tick, key);
        l.bytes += bytes;
        while l.bytes > self.capacity {
            let Some((_, victim)) = l.order.pop_first() else { break };
            if let Some(e) = l.map.remove(&victim) {
                l.bytes -= e.bytes;
            }
        }
    }

    /// Drops every column of part `part` (called when the part closes).
    pub(crate) fn evict_part(&self, part: u64) {
        let mut l = self.inner.lock();
        let Lru { map, order, bytes, .. } = &mut *l;
        map.retain(|k, e| {
            if k.0 == part {
                order.remove(&e.used);
                *bytes -= e.bytes;
                false
            } else {
                true
            }
        });
    }
}

/// A process-unique id for each opened part, so that a reopened file never sees entries of an
/// earlier open.
pub(crate) fn next_part_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;

    use super::*;

    fn col(n: usize) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(0..n as i64))
    }

    #[test]
    fn evicts_least_recently_used_over_budget() {
        let one = col(1000).get_array_memory_size();
        let cache = ColumnCache::new(one * 4);
        cache.insert((1, 0, 0), col(1000));
        cache.insert((1, 0, 1), col(1000));
        cache.insert((1, 1, 0), col(1000));
        assert!(cache.get_each(1, 0, &[0])[0].is_some()); // (1,0,0) is now the most recent
        cache.insert((1, 1, 1), col(1000));
        cache.insert((2, 0, 0), col(1000)); // over budget: (1,0,1) goes
        assert!(cache.get_each(1, 0, &[1])[0].is_none());
        assert!(cache.get_each(1, 0, &[0])[0].is_some());
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (4, one * 4));
        assert_eq!((s.hits, s.misses), (2, 1));
    }

    #[test]
    fn partial_hits_and_parts_evict_whole() {
        let cache = ColumnCache::new(1 << 20);
        cache.insert((7, 0, 0), col(10));
        cache.insert((7, 0, 2), col(10));
        cache.insert((8, 0, 0), col(10));
        let got = cache.get_each(7, 0, &[0, 1, 2]);
        assert_eq!(got.iter().map(Option::is_some).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!((cache.stats().hits, cache.stats().misses), (2, 1));
        cache.evict_part(7);
        assert!(cache.get_each(7, 0, &[0])[0].is_none());
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(cache.stats().bytes, col(10).get_array_memory_size());
    }

    #[test]
    fn arrays_too_big_for_the_budget_are_not_kept() {
        let cache = ColumnCache::new(100);
        cache.insert((1, 0, 0), col(1000));
        assert_eq!(cache.stats().entries, 0);
        let off = ColumnCache::new(0);
        off.insert((1, 0, 0), col(1));
        assert_eq!(off.stats().entries, 0);
    }
}
