//! What the manifest knows about a part without opening it: [`PartInfo`] and its pieces.

use std::fmt;

use crate::Stat;

/// Identifies a part within one shard. Allocated by the shard's manifest, never reused for a
/// committed part. The part's file is named [`PartId::file_name`]: 16 lower-case hex digits and
/// `.parquet`, e.g. `000000000000002a.parquet`, so that names sort like ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PartId(pub u64);

impl PartId {
    /// The file name of the finished part: `{id:016x}.parquet`.
    pub fn file_name(self) -> String {
        format!("{:016x}.parquet", self.0)
    }

    /// The name the part is written under before it is renamed: `{id:016x}.parquet.tmp`.
    pub fn tmp_file_name(self) -> String {
        format!("{:016x}.parquet.tmp", self.0)
    }

    /// Parses a finished part's file name; `None` for anything else.
    pub fn from_file_name(name: &str) -> Option<PartId> {
        let hex = name.strip_suffix(".parquet")?;
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(PartId)
    }

    /// The next id.
    pub fn next(self) -> PartId {
        PartId(self.0 + 1)
    }
}

impl fmt::Display for PartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The WAL sequence numbers whose rows a part holds: `first..=last` (inclusive; given by the
/// caller, the shard's WAL numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// First sequence number covered.
    pub first: u64,
    /// Last sequence number covered (inclusive).
    pub last: u64,
}

impl SeqRange {
    /// `first..=last`; the bounds are swapped if given backwards.
    pub fn new(first: u64, last: u64) -> Self {
        SeqRange { first: first.min(last), last: first.max(last) }
    }

    /// The smallest range covering both.
    pub fn union(self, other: SeqRange) -> SeqRange {
        SeqRange { first: self.first.min(other.first), last: self.last.max(other.last) }
    }

    /// True when `seq` lies in the range.
    pub fn contains(self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}

/// Minimum and maximum of a part's time column, in milliseconds since the Unix epoch (UTC).
/// Values of finer units are rounded down, so `min_ms..max_ms + 1` always covers every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// Smallest time, ms.
    pub min_ms: i64,
    /// Largest time, ms (rounded down).
    pub max_ms: i64,
}

impl TimeRange {
    /// The smallest range covering both.
    pub fn union(self, other: TimeRange) -> TimeRange {
        TimeRange { min_ms: self.min_ms.min(other.min_ms), max_ms: self.max_ms.max(other.max_ms) }
    }
}

/// Statistics of one top-level column of a part. `min`/`max` are bounds (strings longer than 64
/// bytes are truncated: the min to a prefix, the max to a prefix rounded up), absent when the
/// column's type has no [`Stat`] representation or every value is null.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    /// Column name.
    pub name: String,
    /// Lower bound of the non-null values.
    pub min: Option<Stat>,
    /// Upper bound of the non-null values.
    pub max: Option<Stat>,
    /// Number of nulls, when known.
    pub null_count: Option<u64>,
}

/// Everything the manifest records about one part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    /// The part's id (and so its file name).
    pub id: PartId,
    /// Merge tier: 0 for a flushed part, `max(inputs) + 1` for a merged one.
    pub level: u32,
    /// Number of rows.
    pub rows: u64,
    /// Size of the Parquet file in bytes.
    pub file_bytes: u64,
    /// Bytes before the page index and footer (the part covered by block checksums).
    pub data_bytes: u64,
    /// crc32c of the file's bytes `data_bytes..file_bytes` (page index and footer); checked
    /// before the footer is parsed when a part is opened through the manifest.
    pub tail_crc: u32,
    /// The WAL sequence numbers the part's rows came from.
    pub seq: SeqRange,
    /// Range of the time column, if the part has one and a non-null value.
    pub time: Option<TimeRange>,
    /// Per-column statistics, in schema order (top-level columns only).
    pub columns: Vec<ColumnStats>,
}

impl PartInfo {
    /// Statistics of the column `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnStats> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The part's file name.
    pub fn file_name(&self) -> String {
        self.id.file_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_names_round_trip() {
        let id = PartId(42);
        assert_eq!(id.file_name(), "000000000000002a.parquet");
        assert_eq!(PartId::from_file_name(&id.file_name()), Some(id));
        assert_eq!(PartId::from_file_name("000000000000002A.parquet"), None);
        assert_eq!(PartId::from_file_name("2a.parquet"), None);
        assert_eq!(PartId::from_file_name(&id.tmp_file_name()), None);
        assert_eq!(PartId(u64::MAX).file_name(), "ffffffffffffffff.parquet");
    }

    #[test]
    fn ranges_union() {
        assert_eq!(SeqRange::new(9, 3), SeqRange { first: 3, last: 9 });
        assert_eq!(SeqRange::new(1, 4).union(SeqRange::new(10, 12)), SeqRange::new(1, 12));
        assert!(SeqRange::new(1, 4).contains(4));
        let t = TimeRange { min_ms: 5, max_ms: 9 }.union(TimeRange { min_ms: -1, max_ms: 3 });
        assert_eq!(t, TimeRange { min_ms: -1, max_ms: 9 });
    }
}
