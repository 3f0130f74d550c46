//! Which parts to merge next (tiered by level, bounded fan-in) and which parts a TTL expires
//! whole.
//!
//! Flushed parts are level 0; a merge of level-`L` parts produces level `L + 1`, so a level-`L`
//! part holds roughly `fan_in^L` flushes. Parts of one level are merged oldest first (by their
//! first sequence number), at least `min_fan_in` and at most `max_fan_in` at a time, never past
//! `max_level` or `max_output_bytes`. The number of live parts stays near
//! `levels * (min_fan_in - 1)`.

use std::collections::BTreeMap;

use crate::{PartId, PartInfo};

/// Parameters of [`pick_merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergePolicy {
    /// Merge a level once it has this many parts. Default 4.
    pub min_fan_in: usize,
    /// Merge at most this many parts at once. Default 8.
    pub max_fan_in: usize,
    /// Parts at this level or above are not merged again. Default 8.
    pub max_level: u32,
    /// Stop adding inputs once their files add up to this. Default 4 GiB.
    pub max_output_bytes: u64,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy { min_fan_in: 4, max_fan_in: 8, max_level: 8, max_output_bytes: 4 << 30 }
    }
}

impl MergePolicy {
    /// Sets [`MergePolicy::min_fan_in`] (at least 2).
    pub fn min_fan_in(mut self, n: usize) -> Self {
        self.min_fan_in = n.max(2);
        self
    }

    /// Sets [`MergePolicy::max_fan_in`] (at least 2).
    pub fn max_fan_in(mut self, n: usize) -> Self {
        self.max_fan_in = n.max(2);
        self
    }

    /// Sets [`MergePolicy::max_level`].
    pub fn max_level(mut self, level: u32) -> Self {
        self.max_level = level;
        self
    }

    /// Sets [`MergePolicy::max_output_bytes`].
    pub fn max_output_bytes(mut self, bytes: u64) -> Self {
        self.max_output_bytes = bytes;
        self
    }
}

/// The parts to merge next, oldest first, or `None` when no level is due.
pub fn pick_merge(parts: &[PartInfo], policy: &MergePolicy) -> Option<Vec<PartId>> {
    let min_fan_in = policy.min_fan_in.max(2);
    let max_fan_in = policy.max_fan_in.max(min_fan_in);
    // Parts merge with parts of the same level and the same columns (a stream's columns change
    // with ALTER STREAM; the merger needs one schema).
    let mut levels: BTreeMap<(u32, Vec<&str>), Vec<&PartInfo>> = BTreeMap::new();
    for p in parts.iter().filter(|p| p.level < policy.max_level) {
        let columns: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
        levels.entry((p.level, columns)).or_default().push(p);
    }
    for (_, mut group) in levels {
        if group.len() < min_fan_in {
            continue;
        }
        group.sort_by_key(|p| (p.seq.first, p.id));
        let mut picked = Vec::new();
        let mut bytes = 0u64;
        for p in group {
            if picked.len() == max_fan_in {
                break;
            }
            if !picked.is_empty() && bytes.saturating_add(p.file_bytes) > policy.max_output_bytes {
                break;
            }
            bytes = bytes.saturating_add(p.file_bytes);
            picked.push(p.id);
        }
        if picked.len() >= min_fan_in {
            return Some(picked);
        }
    }
    None
}

/// Parts whose every row is older than `cutoff_ms` (their time range ends before it): a TTL
/// drops them whole, without a merge. Parts without a time range are never expired.
pub fn expired_parts(parts: &[PartInfo], cutoff_ms: i64) -> Vec<PartId> {
    parts.iter().filter(|p| p.time.is_some_and(|t| t.max_ms < cutoff_ms)).map(|p| p.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SeqRange, TimeRange};

    fn part(id: u64, level: u32, bytes: u64) -> PartInfo {
        PartInfo {
            id: PartId(id),
            level,
            rows: 10,
            file_bytes: bytes,
            data_bytes: bytes,
            tail_crc: 0,
            seq: SeqRange::new(id * 10, id * 10 + 9),
            time: Some(TimeRange { min_ms: id as i64 * 100, max_ms: id as i64 * 100 + 99 }),
            columns: vec![],
        }
    }

    #[test]
    fn merges_the_lowest_full_level_oldest_first() {
        let p = MergePolicy::default();
        let mut parts: Vec<PartInfo> = (1..=3).map(|i| part(i, 0, 100)).collect();
        assert_eq!(pick_merge(&parts, &p), None);
        parts.push(part(9, 0, 100));
        parts.push(part(4, 0, 100));
        assert_eq!(pick_merge(&parts, &p), Some(vec![PartId(1), PartId(2), PartId(3), PartId(4), PartId(9)]));
        // bounded fan-in
        let many: Vec<PartInfo> = (1..=20).map(|i| part(i, 1, 100)).collect();
        assert_eq!(pick_merge(&many, &p).map(|v| v.len()), Some(8));
        // the cap on levels and on bytes
        assert_eq!(pick_merge(&many, &p.clone().max_level(1)), None);
        let big = p.clone().max_output_bytes(350);
        assert_eq!(pick_merge(&many, &big), None);
        let big = p.max_output_bytes(400);
        assert_eq!(pick_merge(&many, &big).map(|v| v.len()), Some(4));
    }

    #[test]
    fn only_parts_with_the_same_columns_merge() {
        let p = MergePolicy::default();
        let with = |id, cols: &[&str]| {
            let mut info = part(id, 0, 100);
            info.columns = cols
                .iter()
                .map(|c| crate::ColumnStats { name: c.to_string(), min: None, max: None, null_count: None })
                .collect();
            info
        };
        let mut parts: Vec<PartInfo> = (1..=3).map(|i| with(i, &["a", "b"])).collect();
        parts.extend((4..=6).map(|i| with(i, &["a", "c"])));
        assert_eq!(pick_merge(&parts, &p), None, "3 + 3 parts of different columns are below the fan-in");
        parts.push(with(7, &["a", "c"]));
        parts.push(with(8, &["a", "c"]));
        assert_eq!(pick_merge(&parts, &p), Some(vec![PartId(4), PartId(5), PartId(6), PartId(7), PartId(8)]));
    }

    #[test]
    fn expired_parts_end_before_the_cutoff() {
        let parts: Vec<PartInfo> = (1..=5).map(|i| part(i, 0, 1)).collect();
        assert_eq!(expired_parts(&parts, 300), vec![PartId(1), PartId(2)]);
        assert_eq!(expired_parts(&parts, 299), vec![PartId(1)]);
        let mut untimed = part(7, 0, 1);
        untimed.time = None;
        assert!(expired_parts(&[untimed], i64::MAX).is_empty());
    }
}
