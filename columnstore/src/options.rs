//! Options of the part writer and of scans.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Predicate, Result};

/// Compression of a part's data pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as encoded.
    None,
    /// LZ4 (Parquet's `LZ4_RAW` codec): fastest to write and read.
    Lz4,
    /// Zstandard at the given level (1..=22). The default, at level 1.
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(1)
    }
}

impl Compression {
    pub(crate) fn to_parquet(self) -> Result<parquet::basic::Compression> {
        use parquet::basic::{Compression as C, ZstdLevel};
        Ok(match self {
            Compression::None => C::UNCOMPRESSED,
            Compression::Lz4 => C::LZ4_RAW,
            Compression::Zstd(level) => {
                if !(1..=22).contains(&level) {
                    return Err(Error::InvalidArgument(format!("zstd level {level} outside 1..=22")));
                }
                C::ZSTD(
                    ZstdLevel::try_new(level)
                        .map_err(|e| Error::InvalidArgument(format!("zstd level {level}: {e}")))?,
                )
            }
        })
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Zstd(level) => write!(f, "zstd({level})"),
        }
    }
}

impl FromStr for Compression {
    type Err = Error;
    /// `none`, `lz4`, `zstd` (level 3) or `zstd(N)` / `zstd:N`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "none" | "uncompressed" => return Ok(Compression::None),
            "lz4" => return Ok(Compression::Lz4),
            "zstd" => return Ok(Compression::Zstd(3)),
            _ => {}
        }
        let level = s
            .strip_prefix("zstd(")
            .and_then(|r| r.strip_suffix(')'))
            .or_else(|| s.strip_prefix("zstd:"))
            .and_then(|n| n.trim().parse::<i32>().ok());
        match level {
            Some(level) if (1..=22).contains(&level) => Ok(Compression::Zstd(level)),
            _ => Err(Error::InvalidArgument(format!(
                "unknown compression '{s}' (expected none, lz4, zstd or zstd(1..22))"
            ))),
        }
    }
}

/// How the part writer lays out a part.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Page compression. Default zstd level 1 (levels 3 and 6 gave the same size on the
    /// benchmark's event table, and write slower).
    pub compression: Compression,
    /// Rows per row group: the unit of row-group pruning (pages prune inside it). Larger groups
    /// amortize dictionaries: on the benchmark's event table 1 Mi rows store 6.1 bytes a row,
    /// 128 Ki rows 6.8. Default 1 Mi.
    pub row_group_rows: usize,
    /// Rows per data page at most: the granularity of page-index pruning. Default 8 Ki.
    pub page_rows: usize,
    /// Dictionary encoding (Parquet falls back to plain per column chunk when a dictionary
    /// grows past 1 MiB). Default on.
    pub dictionary: bool,
    /// `DELTA_BINARY_PACKED` (no dictionary) for integer, date and timestamp columns that are
    /// sorted or nearly so: the sort key, the time column, and any column whose values in the
    /// first batch never decrease (or never increase), like ids and sequence numbers. On the
    /// benchmark's event table this halves the size (12.1 -> 6.1 bytes a row). Default on.
    pub delta_sorted_ints: bool,
    /// The column whose min/max become [`crate::PartInfo::time`] (`_tp_time` in sluice). An
    /// integer or timestamp column; integers are taken as milliseconds.
    pub time_column: Option<String>,
    /// The sort key the caller sorted the batches by (recorded in the part; used by the merger).
    pub sort_key: Vec<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::default(),
            row_group_rows: 1024 * 1024,
            page_rows: 8 * 1024,
            dictionary: true,
            delta_sorted_ints: true,
            time_column: None,
            sort_key: Vec::new(),
        }
    }
}

impl WriterOptions {
    /// Sets [`WriterOptions::compression`].
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Sets [`WriterOptions::row_group_rows`].
    pub fn row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows;
        self
    }

    /// Sets [`WriterOptions::page_rows`].
    pub fn page_rows(mut self, rows: usize) -> Self {
        self.page_rows = rows;
        self
    }

    /// Sets [`WriterOptions::dictionary`].
    pub fn dictionary(mut self, on: bool) -> Self {
        self.dictionary = on;
        self
    }

    /// Sets [`WriterOptions::delta_sorted_ints`].
    pub fn delta_sorted_ints(mut self, on: bool) -> Self {
        self.delta_sorted_ints = on;
        self
    }

    /// Sets [`WriterOptions::time_column`].
    pub fn time_column(mut self, name: impl Into<String>) -> Self {
        self.time_column = Some(name.into());
        self
    }

    /// Sets [`WriterOptions::sort_key`].
    pub fn sort_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.sort_key = columns.into_iter().map(Into::into).collect();
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.row_group_rows == 0 || self.page_rows == 0 {
            return Err(Error::InvalidArgument("row_group_rows and page_rows must be at least 1".into()));
        }
        self.compression.to_parquet().map(|_| ())
    }
}

/// How a part's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadBackend {
    /// `mmap(2)` of the finished part file (zero-copy). Reads the real file at the part's path
    /// directly, bypassing the [`sluice_vfs::FileSystem`]; so it needs a real file system.
    #[default]
    Mmap,
    /// Positional reads through [`sluice_vfs::ReadFile`]: works on every file system, including
    /// the simulated one.
    Pread,
}

impl fmt::Display for ReadBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadBackend::Mmap => "mmap",
            ReadBackend::Pread => "pread",
        })
    }
}

/// Which columns a scan returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Projection {
    /// Every column.
    #[default]
    All,
    /// The named top-level columns, returned in schema order.
    Names(Vec<String>),
    /// The top-level columns at these indices, returned in schema order.
    Indices(Vec<usize>),
}

impl Projection {
    /// The named columns.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Projection::Names(names.into_iter().map(Into::into).collect())
    }
}

/// What a scan reads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Columns to decode; the others are never read.
    pub projection: Projection,
    /// Prunes row groups and pages. Conservative: rows that do not match may still be returned
    /// (the caller filters again), rows that match are never dropped.
    pub predicate: Predicate,
    /// Rows per returned batch at most. Default 8 Ki.
    pub batch_size: usize,
    /// Use the page index to skip pages inside the selected row groups. Default on.
    pub page_pruning: bool,
    /// Read only these row groups (for splitting one part over several threads); `None` = all.
    pub row_groups: Option<Vec<usize>>,
    /// Read through the part's [`crate::ColumnCache`] if it has one (queries: yes; merges and
    /// subscriptions, which read each row once, no). Default off.
    pub use_cache: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            projection: Projection::All,
            predicate: Predicate::default(),
            batch_size: 8 * 1024,
            page_pruning: true,
            row_groups: None,
            use_cache: false,
        }
    }
}

impl ScanOptions {
    /// Sets [`ScanOptions::projection`].
    pub fn projection(mut self, p: Projection) -> Self {
        self.projection = p;
        self
    }

    /// Sets [`ScanOptions::predicate`].
    pub fn predicate(mut self, p: Predicate) -> Self {
        self.predicate = p;
        self
    }

    /// Sets [`ScanOptions::batch_size`].
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Sets [`ScanOptions::use_cache`].
    pub fn use_cache(mut self, on: bool) -> Self {
        self.use_cache = on;
        self
    }

    /// Sets [`ScanOptions::row_groups`].
    pub fn row_groups(mut self, groups: Option<Vec<usize>>) -> Self {
        self.row_groups = groups;
        self
    }

    /// Sets [`ScanOptions::page_pruning`].
    pub fn page_pruning(mut self, on: bool) -> Self {
        self.page_pruning = on;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_parses() {
        assert_eq!("zstd".parse::<Compression>().ok(), Some(Compression::Zstd(3)));
        assert_eq!("ZSTD(7)".parse::<Compression>().ok(), Some(Compression::Zstd(7)));
        assert_eq!("zstd:1".parse::<Compression>().ok(), Some(Compression::Zstd(1)));
        assert_eq!("lz4".parse::<Compression>().ok(), Some(Compression::Lz4));
        assert_eq!("none".parse::<Compression>().ok(), Some(Compression::None));
        assert!("zstd(99)".parse::<Compression>().is_err());
        assert!("snappy".parse::<Compression>().is_err());
        for c in [Compression::None, Compression::Lz4, Compression::Zstd(9)] {
            assert_eq!(c.to_string().parse::<Compression>().ok(), Some(c));
        }
    }

    #[test]
    fn writer_options_validate() {
        assert!(WriterOptions::default().validate().is_ok());
        assert!(WriterOptions::default().page_rows(0).validate().is_err());
        assert!(WriterOptions::default().compression(Compression::Zstd(0)).validate().is_err());
    }
}
