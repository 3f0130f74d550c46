//! Options of a database and of a stream.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sluice_vfs::{FileSystem, RealFs};
use sluice_wal::{Codec, Durability};

use crate::{Error, Result};

/// How a stream stores its rows (Proton's `storage_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StorageType {
    /// Write-ahead log, then sorted Parquet parts. The default.
    #[default]
    Hybrid,
    /// Write-ahead log only; history is what the log's retention keeps.
    Streaming,
    /// Nothing on disk: rows live in memory until the memory limit evicts the oldest.
    InMemory,
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageType::Hybrid => "hybrid",
            StorageType::Streaming => "streaming",
            StorageType::InMemory => "inmemory",
        })
    }
}

impl FromStr for StorageType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "hybrid" => Ok(StorageType::Hybrid),
            "streaming" => Ok(StorageType::Streaming),
            "inmemory" | "in_memory" | "memory" => Ok(StorageType::InMemory),
            other => Err(Error::InvalidDefinition(format!(
                "storage_type '{other}' is not one of hybrid, streaming, inmemory"
            ))),
        }
    }
}

/// Time to live: rows whose `column` is older than `interval_ms` before now are dropped by
/// merges (whole parts at once when all their rows expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    /// A time column (`_tp_time` unless the definition names another).
    pub column: String,
    /// Age after which a row expires, ms.
    pub interval_ms: u64,
}

/// The per-stream settings that the engine honours. Unknown settings are refused where the
/// definition is parsed (the SQL layer); settings kept only for display go into
/// [`StreamDef::extra`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Number of shards (each with its own log, memtable and parts). Default 1.
    pub shards: u32,
    /// Storage of the stream.
    pub storage_type: StorageType,
    /// When an append is acknowledged.
    pub durability: Durability,
    /// Compression of log records (`logstore_codec`).
    pub logstore_codec: Codec,
    /// Keep at most this many log bytes per shard (`logstore_retention_bytes`; `None` =
    /// unlimited, written `-1`). Closed segments beyond it are deleted, but never rows not yet
    /// in parts. Default 1: drop segments as soon as their rows are in parts (Proton's default).
    pub logstore_retention_bytes: Option<u64>,
    /// Keep closed log segments at most this long (`logstore_retention_ms`; `None` =
    /// unlimited). Default one day.
    pub logstore_retention_ms: Option<u64>,
    /// Flush the memtable into a part at this many rows.
    pub flush_threshold_count: u64,
    /// ... or when its oldest row is this old (ms).
    pub flush_threshold_ms: u64,
    /// ... or at this many bytes.
    pub flush_threshold_bytes: u64,
    /// Log segment size.
    pub logstore_segment_bytes: u64,
    /// Columns whose hash picks the shard of a row; empty = round robin by batch.
    pub sharding_columns: Vec<String>,
    /// A column whose value becomes `_tp_time` when an append does not give `_tp_time`
    /// (Proton's `event_time_column`); `None` = the ingest time.
    pub event_time_column: Option<String>,
    /// `versioned_kv`: the primary key columns (empty for append streams). Reads keep the
    /// latest row per key: the greatest `version_column`, on a tie the later arrival.
    pub primary_key: Vec<String>,
    /// `versioned_kv`: the column deciding which row of a key wins (`None`: `_tp_time`).
    pub version_column: Option<String>,
    /// `changelog_kv`: rows carry `_tp_delta` (+1 upsert, -1 delete); the latest row of a key
    /// (by arrival) is its state, a key whose latest row is a delete is gone.
    pub changelog: bool,
    /// The stream that receives the records of rejected HTTP ingest requests
    /// (`dead_letter_stream`; see [`crate::dead_letter`]); `None`: they are only answered.
    pub dead_letter_stream: Option<String>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            shards: 1,
            storage_type: StorageType::Hybrid,
            durability: Durability::Fsync,
            logstore_codec: Codec::None,
            logstore_retention_bytes: Some(1),
            logstore_retention_ms: Some(86_400_000),
            flush_threshold_count: 100_000,
            flush_threshold_ms: 2_000,
            flush_threshold_bytes: 16 << 20,
            logstore_segment_bytes: 64 << 20,
            sharding_columns: Vec::new(),
            event_time_column: None,
            primary_key: Vec::new(),
            version_column: None,
            changelog: false,
            dead_letter_stream: None,
        }
    }
}

impl StreamSettings {
    /// The settings as `name = value` pairs (what the catalog stores).
    pub fn to_pairs(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("shards".into(), self.shards.to_string());
        m.insert("storage_type".into(), self.storage_type.to_string());
        m.insert("durability".into(), self.durability.to_string());
        m.insert("logstore_codec".into(), self.logstore_codec.to_string());
        let retention = |r: Option<u64>| r.map_or_else(|| "-1".to_string(), |v| v.to_string());
        m.insert("logstore_retention_bytes".into(), retention(self.logstore_retention_bytes));
        m.insert("logstore_retention_ms".into(), retention(self.logstore_retention_ms));
        m.insert("flush_threshold_count".into(), self.flush_threshold_count.to_string());
        m.insert("flush_threshold_ms".into(), self.flush_threshold_ms.to_string());
        m.insert("flush_threshold_bytes".into(), self.flush_threshold_bytes.to_string());
        m.insert("logstore_segment_bytes".into(), self.logstore_segment_bytes.to_string());
        if !self.sharding_columns.is_empty() {
            m.insert("sharding_columns".into(), self.sharding_columns.join(","));
        }
        if let Some(c) = &self.event_time_column {
            m.insert("event_time_column".into(), c.clone());
        }
        if self.changelog && self.primary_key.is_empty() {
            m.insert("mode".into(), "changelog".into());
        }
        if !self.primary_key.is_empty() {
            m.insert("mode".into(), if self.changelog { "changelog_kv" } else { "versioned_kv" }.into());
            m.insert("primary_key".into(), self.primary_key.join(","));
        }
        if let Some(c) = &self.version_column {
            m.insert("version_column".into(), c.clone());
        }
        if let Some(d) = &self.dead_letter_stream {
            m.insert("dead_letter_stream".into(), d.clone());
        }
        m
    }

    /// Whether reads keep only the latest row per primary key (`mode = 'versioned_kv'` or
    /// `'changelog_kv'`).
    pub fn is_versioned_kv(&self) -> bool {
        !self.primary_key.is_empty()
    }

    /// The column that orders the versions of a key (`changelog_kv`: arrival).
    pub fn version_column(&self) -> &str {
        match (&self.version_column, self.changelog) {
            (Some(c), _) => c,
            (None, true) => crate::stream_def::TP_SN,
            (None, false) => crate::stream_def::TP_TIME,
        }
    }

    /// Applies one `name = value` setting; an unknown name or a bad value is an error naming it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let bad = |why: &str| Error::InvalidDefinition(format!("setting {name} = '{value}': {why}"));
        let int = || value.trim().parse::<u64>().map_err(|_| bad("expected a non-negative integer"));
        match name {
            "shards" => {
                let n = int()?;
                if n == 0 || n > 256 {
                    return Err(bad("expected 1 to 256"));
                }
                self.shards = n as u32;
            }
            "storage_type" => self.storage_type = value.parse()?,
            "durability" => self.durability = value.parse().map_err(|_| bad("expected fsync, os or none"))?,
            // Proton's ack modes on one node: quorum = durable on this node's disk; local =
            // written to the OS (survives a process crash); none = acknowledged at once.
            "ack" => {
                self.durability = match value.trim().to_ascii_lowercase().as_str() {
                    "quorum" => Durability::Fsync,
                    "local" => Durability::Os,
                    "none" => Durability::None,
                    _ => return Err(bad("expected quorum, local or none")),
                }
            }
            "logstore_codec" => self.logstore_codec = value.parse().map_err(|_| bad("expected none, lz4 or zstd"))?,
            "logstore_retention_bytes" => {
                self.logstore_retention_bytes =
                    retention(value).ok_or_else(|| bad("expected a positive integer or -1"))?
            }
            "logstore_retention_ms" => {
                self.logstore_retention_ms = retention(value).ok_or_else(|| bad("expected a positive integer or -1"))?
            }
            "flush_threshold_count" => {
                self.flush_threshold_count = nonzero(int()?).ok_or_else(|| bad("must be > 0"))?
            }
            "flush_threshold_ms" => self.flush_threshold_ms = nonzero(int()?).ok_or_else(|| bad("must be > 0"))?,
            "flush_threshold_bytes" => {
                self.flush_threshold_bytes = nonzero(int()?).ok_or_else(|| bad("must be > 0"))?
            }
            "logstore_segment_bytes" => {
                let n = int()?;
                if n < 4096 {
                    return Err(bad("must be at least 4096"));
                }
                self.logstore_segment_bytes = n;
            }
            "sharding_columns" => {
                self.sharding_columns =
                    value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
            "event_time_column" => {
                let v = value.trim();
                self.event_time_column = (!v.is_empty()).then(|| v.to_string());
            }
            "mode" => match value.trim() {
                "append" => {
                    self.primary_key.clear();
                    self.changelog = false;
                }
                // The key itself comes with `primary_key`.
                "versioned_kv" => self.changelog = false,
                "changelog_kv" => self.changelog = true,
                "changelog" => {
                    self.primary_key.clear();
                    self.changelog = true;
                }
                _ => return Err(bad("expected append, changelog, versioned_kv or changelog_kv")),
            },
            "primary_key" => {
                self.primary_key = value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
            "version_column" => {
                let v = value.trim();
                self.version_column = (!v.is_empty()).then(|| v.to_string());
            }
            "dead_letter_stream" => {
                let v = value.trim();
                if !v.is_empty() {
                    crate::stream_def::validate_name(v)?;
                }
                self.dead_letter_stream = (!v.is_empty()).then(|| v.to_string());
            }
            _ => return Err(Error::InvalidDefinition(format!("unknown stream setting '{name}'"))),
        }
        Ok(())
    }

    /// Rebuilds settings from stored pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut s = StreamSettings::default();
        for (k, v) in pairs {
            s.set(k, v)?;
        }
        Ok(s)
    }
}

/// `-1` = unlimited (`Some(None)`), a positive integer = a limit, anything else = invalid.
fn retention(value: &str) -> Option<Option<u64>> {
    match value.trim() {
        "-1" => Some(None),
        v => v.parse::<u64>().ok().filter(|n| *n > 0).map(Some),
    }
}

fn nonzero(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

/// Options of a [`crate::Database`].
#[derive(Clone)]
pub struct Options {
    /// The file system everything goes through (`RealFs`; `SimFs` in tests).
    pub fs: Arc<dyn FileSystem>,
    /// Background threads that flush memtables into parts. Default 1.
    pub flush_threads: usize,
    /// Merge parts in the background. Default true.
    pub merge: bool,
    /// Largest number of parts merged at once.
    pub merge_fan_in: usize,
    /// Memory all memtables of the database may hold before appenders wait for flushes.
    pub memtable_limit_bytes: u64,
    /// Read parts through `mmap` (real file system only) instead of `pread`.
    pub mmap_parts: bool,
    /// Memory for decoded columns of parts kept between historical queries (an LRU of whole
    /// row-group columns; 0 turns it off). Default 1 GiB.
    pub cache_bytes: usize,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("flush_threads", &self.flush_threads)
            .field("merge", &self.merge)
            .field("merge_fan_in", &self.merge_fan_in)
            .field("memtable_limit_bytes", &self.memtable_limit_bytes)
            .field("mmap_parts", &self.mmap_parts)
            .field("cache_bytes", &self.cache_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fs: RealFs::shared(),
            flush_threads: 1,
            merge: true,
            merge_fan_in: 8,
            memtable_limit_bytes: 1 << 30,
            mmap_parts: true,
            cache_bytes: 1 << 30,
        }
    }
}

impl Options {
    /// Uses `fs` for all I/O (and `pread` for parts, since only real files can be mapped).
    pub fn fs(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self.mmap_parts = false;
        self
    }
}
