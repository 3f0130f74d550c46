//! `SETTINGS k = v` values, and the typed, validated settings of `CREATE STREAM`.
//!
//! Every stream setting of Timeplus' append-stream DDL is known here with its type, range and
//! default. Unknown names and bad values are [`Error::InvalidSetting`] naming the setting.
//! Settings that only mean something on a cluster (replication, placement, shared disks) are
//! accepted and validated, and listed in [`StreamSettings::no_op_settings`] so the engine can tell
//! the user they have no effect on one node.

use std::fmt;

use sqlparser::ast::Expr;

use crate::error::{Error, Result};
use crate::types::write_string;

/// Literal values and setting lists.
mod value;

pub use value::{SettingList, SettingValue};

macro_rules! setting_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value as written in SQL.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            fn parse(setting: &str, value: &SettingValue) -> Result<Self> {
                let text = value.as_string();
                $name::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text.trim())).ok_or_else(|| {
                    let allowed: Vec<String> = $name::ALL.iter().map(|v| format!("'{}'", v.as_str())).collect();
                    Error::setting(setting, format!("expected one of {}, found {value}", allowed.join(", ")))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

setting_enum! {
    /// `mode`: how the historical store treats rows with the same primary key.
    StreamMode {
        /// Rows are appended (the default).
        Append = "append",
        /// Rows carry a `_tp_delta` (+1/-1) changelog column.
        Changelog = "changelog",
        /// Rows are a changelog keyed by the primary key, compacted on merge.
        ChangelogKv = "changelog_kv",
        /// The row with the greatest `version_column` per primary key wins.
        VersionedKv = "versioned_kv",
    }
}

impl StreamMode {
    /// Whether rows are keyed by the primary key (`changelog_kv`, `versioned_kv`).
    pub fn is_keyed(self) -> bool {
        matches!(self, StreamMode::ChangelogKv | StreamMode::VersionedKv)
    }
}

setting_enum! {
    /// `storage_type`: which stores a stream keeps.
    StorageType {
        /// WAL and columnar historical store (the default).
        Hybrid = "hybrid",
        /// WAL only, no historical store.
        Streaming = "streaming",
        /// WAL in memory only, no historical store.
        InMemory = "inmemory",
    }
}

setting_enum! {
    /// `logstore_codec`: compression of WAL records.
    LogstoreCodec {
        /// No compression (the default).
        None = "none",
        /// LZ4.
        Lz4 = "lz4",
        /// Zstandard.
        Zstd = "zstd",
    }
}

setting_enum! {
    /// `ingest_mode`: whether an INSERT waits for its acknowledgement.
    IngestMode {
        /// The system decides (the default, written `''`).
        Auto = "",
        /// The INSERT waits.
        Sync = "sync",
        /// The INSERT returns before the acknowledgement.
        Async = "async",
    }
}

setting_enum! {
    /// `ack`: when an INSERT is acknowledged. On one node `quorum` means the local commit.
    AckMode {
        /// After a quorum of replicas committed (the default).
        Quorum = "quorum",
        /// After the local commit.
        Local = "local",
        /// At once, before the write (fire and forget).
        None = "none",
    }
}

/// A WAL retention limit: a positive amount, or unlimited (written `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retention {
    /// Keep everything.
    Unlimited,
    /// Keep at most this much (bytes or milliseconds).
    Limit(u64),
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Unlimited => f.write_str("-1"),
            Retention::Limit(n) => write!(f, "{n}"),
        }
    }
}

/// One validated stream setting, as in `SETTINGS shards = 3` or `MODIFY SETTING ...`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamSetting {
    /// `shards`: number of shards, 1..=[`MAX_SHARDS`].
    Shards(u32),
    /// `replication_factor` (cluster only): replicas per shard.
    ReplicationFactor(u32),
    /// `mode`.
    Mode(StreamMode),
    /// `version_column`: the column deciding which row of a key wins in kv modes.
    VersionColumn(String),
    /// `storage_type`.
    StorageType(StorageType),
    /// `logstore_codec`.
    LogstoreCodec(LogstoreCodec),
    /// `logstore_retention_bytes`.
    LogstoreRetentionBytes(Retention),
    /// `logstore_retention_ms`.
    LogstoreRetentionMs(Retention),
    /// `placement_policies` (cluster only).
    PlacementPolicies(String),
    /// `shared_disk` (cluster / shared storage only).
    SharedDisk(String),
    /// `ingest_mode`.
    IngestMode(IngestMode),
    /// `ack`.
    Ack(AckMode),
    /// `ingest_batch_max_bytes` (shared disk only).
    IngestBatchMaxBytes(u64),
    /// `ingest_batch_timeout_ms` (shared disk only).
    IngestBatchTimeoutMs(u64),
    /// `fetch_threads` (shared disk only).
    FetchThreads(u32),
    /// `flush_threshold_count`: rows that trigger a flush to a part.
    FlushThresholdCount(u64),
    /// `flush_threshold_ms`: age that triggers a flush.
    FlushThresholdMs(u64),
    /// `flush_threshold_bytes`: size that triggers a flush.
    FlushThresholdBytes(u64),
    /// `merge_with_ttl_timeout`: minimum seconds between TTL merges.
    MergeWithTtlTimeout(u64),
    /// `sharding_expr` (Proton): the expression choosing a row's shard, e.g. `'weak_hash32(id)'`.
    ShardingExpr(Expr),
    /// `event_time_column` (Proton): the expression that fills `_tp_time`, e.g. `'ts'`.
    EventTimeColumn(Expr),
    /// `dead_letter_stream` (sluice): the stream that receives the records of rejected HTTP
    /// ingest requests, in Moose's dead-letter record shape.
    DeadLetterStream(String),
}

/// Most shards a stream may have.
pub const MAX_SHARDS: u32 = 1024;

/// Every stream setting name sluice knows, in documentation order.
pub const STREAM_SETTING_NAMES: &[&str] = &[
    "shards",
    "replication_factor",
    "mode",
    "version_column",
    "storage_type",
    "logstore_codec",
    "logstore_retention_bytes",
    "logstore_retention_ms",
    "placement_policies",
    "shared_disk",
    "ingest_mode",
    "ack",
    "ingest_batch_max_bytes",
    "ingest_batch_timeout_ms",
    "fetch_threads",
    "flush_threshold_count",
    "flush_threshold_ms",
    "flush_threshold_bytes",
    "merge_with_ttl_timeout",
    "sharding_expr",
    "event_time_column",
    "dead_letter_stream",
];

/// Settings accepted for compatibility that have no effect on a single node.
pub const CLUSTER_ONLY_SETTINGS: &[&str] = &[
    "replication_factor",
    "placement_policies",
    "shared_disk",
    "ingest_batch_max_bytes",
    "ingest_batch_timeout_ms",
    "fetch_threads",
];

/// Settings `ALTER STREAM ... MODIFY SETTING` may change (the others fix the layout).
pub const ALTERABLE_SETTINGS: &[&str] = &[
    "logstore_codec",
    "logstore_retention_bytes",
    "logstore_retention_ms",
    "ingest_mode",
    "ack",
    "flush_threshold_count",
    "flush_threshold_ms",
    "flush_threshold_bytes",
    "merge_with_ttl_timeout",
    "replication_factor",
    "placement_policies",
    "ingest_batch_max_bytes",
    "ingest_batch_timeout_ms",
    "fetch_threads",
    "dead_letter_stream",
];

impl StreamSetting {
    /// Validates `name = value`. `parse_expr` parses the expression settings (`sharding_expr`).
    pub fn parse(name: &str, value: &SettingValue, parse_expr: impl Fn(&str) -> Result<Expr>) -> Result<Self> {
        let key = name.to_ascii_lowercase();
        let int = |min: i64, max: i64| -> Result<i64> {
            match value.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(i),
                Some(i) => Err(Error::setting(name, format!("must be between {min} and {max}, not {i}"))),
                None => Err(Error::setting(name, format!("expected a whole number, found {value}"))),
            }
        };
        let positive = || int(1, i64::MAX).map(|i| i as u64);
        let retention = || match int(-1, i64::MAX)? {
            -1 => Ok(Retention::Unlimited),
            0 => Err(Error::setting(name, "must be positive, or -1 for unlimited")),
            n => Ok(Retention::Limit(n as u64)),
        };
        let string = || match value {
            SettingValue::String(s) => Ok(s.clone()),
            other => Err(Error::setting(name, format!("expected a string, found {other}"))),
        };
        let expr = || {
            let text = string()?;
            parse_expr(&text).map_err(|e| Error::setting(name, format!("`{text}` is not an expression: {e}")))
        };
        Ok(match key.as_str() {
            "shards" => StreamSetting::Shards(int(1, i64::from(MAX_SHARDS))? as u32),
            "replication_factor" => StreamSetting::ReplicationFactor(int(1, 255)? as u32),
            "mode" => StreamSetting::Mode(StreamMode::parse(name, value)?),
            "version_column" => {
                let column = string()?;
                if column.trim().is_empty() {
                    return Err(Error::setting(name, "must name a column"));
                }
                StreamSetting::VersionColumn(column)
            }
            "storage_type" => StreamSetting::StorageType(StorageType::parse(name, value)?),
            "logstore_codec" => StreamSetting::LogstoreCodec(LogstoreCodec::parse(name, value)?),
            "logstore_retention_bytes" => StreamSetting::LogstoreRetentionBytes(retention()?),
            "logstore_retention_ms" => StreamSetting::LogstoreRetentionMs(retention()?),
            "placement_policies" => StreamSetting::PlacementPolicies(string()?),
            "shared_disk" => StreamSetting::SharedDisk(string()?),
            "ingest_mode" => StreamSetting::IngestMode(IngestMode::parse(name, value)?),
            "ack" => StreamSetting::Ack(AckMode::parse(name, value)?),
            "ingest_batch_max_bytes" => StreamSetting::IngestBatchMaxBytes(positive()?),
            "ingest_batch_timeout_ms" => StreamSetting::IngestBatchTimeoutMs(positive()?),
            "fetch_threads" => StreamSetting::FetchThreads(int(1, 1024)? as u32),
            "flush_threshold_count" => StreamSetting::FlushThresholdCount(positive()?),
            "flush_threshold_ms" => StreamSetting::FlushThresholdMs(positive()?),
            "flush_threshold_bytes" => StreamSetting::FlushThresholdBytes(positive()?),
            "merge_with_ttl_timeout" => StreamSetting::MergeWithTtlTimeout(int(0, i64::MAX)? as u64),
            "sharding_expr" => StreamSetting::ShardingExpr(expr()?),
            "event_time_column" => StreamSetting::EventTimeColumn(expr()?),
            "dead_letter_stream" => {
                let stream = string()?;
                if !is_stream_name(&stream) {
                    return Err(Error::setting(
                        name,
                        format!(
                            "'{stream}' is not a stream name (1-255 letters, digits, '_', '-' or '.', not starting with '.')"
                        ),
                    ));
                }
                StreamSetting::DeadLetterStream(stream)
            }
            _ => return Err(Error::setting(name, unknown_reason(&key))),
        })
    }

    /// The setting's name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamSetting::Shards(_) => "shards",
            StreamSetting::ReplicationFactor(_) => "replication_factor",
            StreamSetting::Mode(_) => "mode",
            StreamSetting::VersionColumn(_) => "version_column",
            StreamSetting::StorageType(_) => "storage_type",
            StreamSetting::LogstoreCodec(_) => "logstore_codec",
            StreamSetting::LogstoreRetentionBytes(_) => "logstore_retention_bytes",
            StreamSetting::LogstoreRetentionMs(_) => "logstore_retention_ms",
            StreamSetting::PlacementPolicies(_) => "placement_policies",
            StreamSetting::SharedDisk(_) => "shared_disk",
            StreamSetting::IngestMode(_) => "ingest_mode",
            StreamSetting::Ack(_) => "ack",
            StreamSetting::IngestBatchMaxBytes(_) => "ingest_batch_max_bytes",
            StreamSetting::IngestBatchTimeoutMs(_) => "ingest_batch_timeout_ms",
            StreamSetting::FetchThreads(_) => "fetch_threads",
            StreamSetting::FlushThresholdCount(_) => "flush_threshold_count",
            StreamSetting::FlushThresholdMs(_) => "flush_threshold_ms",
            StreamSetting::FlushThresholdBytes(_) => "flush_threshold_bytes",
            StreamSetting::MergeWithTtlTimeout(_) => "merge_with_ttl_timeout",
            StreamSetting::ShardingExpr(_) => "sharding_expr",
            StreamSetting::EventTimeColumn(_) => "event_time_column",
            StreamSetting::DeadLetterStream(_) => "dead_letter_stream",
        }
    }

    /// Whether this setting has no effect on a single node.
    pub fn is_cluster_only(&self) -> bool {
        CLUSTER_ONLY_SETTINGS.contains(&self.name())
    }

    /// Whether `ALTER STREAM ... MODIFY SETTING` may change it.
    pub fn is_alterable(&self) -> bool {
        ALTERABLE_SETTINGS.contains(&self.name())
    }
}

/// A stream name as the engine accepts it: 1-255 ASCII letters, digits, `_`, `-` or `.`, not
/// starting with `.`.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn unknown_reason(name: &str) -> String {
    let closest =
        STREAM_SETTING_NAMES.iter().map(|known| (edit_distance(name, known), *known)).min().filter(|(d, _)| *d <= 3);
    match closest {
        Some((_, known)) => format!("unknown stream setting (did you mean `{known}`?)"),
        None => format!("unknown stream setting (known: {})", STREAM_SETTING_NAMES.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl fmt::Display for StreamSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = ", self.name())?;
        match self {
            StreamSetting::Shards(n) | StreamSetting::ReplicationFactor(n) | StreamSetting::FetchThreads(n) => {
                write!(f, "{n}")
            }
            StreamSetting::Mode(m) => write_string(f, m.as_str()),
            StreamSetting::StorageType(t) => write_string(f, t.as_str()),
            StreamSetting::LogstoreCodec(c) => write_string(f, c.as_str()),
            StreamSetting::IngestMode(m) => write_string(f, m.as_str()),
            StreamSetting::Ack(a) => write_string(f, a.as_str()),
            StreamSetting::VersionColumn(s)
            | StreamSetting::PlacementPolicies(s)
            | StreamSetting::SharedDisk(s)
            | StreamSetting::DeadLetterStream(s) => write_string(f, s),
            StreamSetting::LogstoreRetentionBytes(r) | StreamSetting::LogstoreRetentionMs(r) => write!(f, "{r}"),
            StreamSetting::IngestBatchMaxBytes(n)
            | StreamSetting::IngestBatchTimeoutMs(n)
            | StreamSetting::FlushThresholdCount(n)
            | StreamSetting::FlushThresholdMs(n)
            | StreamSetting::FlushThresholdBytes(n)
            | StreamSetting::MergeWithTtlTimeout(n) => write!(f, "{n}"),
            StreamSetting::ShardingExpr(e) | StreamSetting::EventTimeColumn(e) => write_string(f, &e.to_string()),
        }
    }
}

/// The settings of one stream, every field resolved to its value (default if not given).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    /// `shards`, default 1.
    pub shards: u32,
    /// `replication_factor`, default 1 (no effect on one node).
    pub replication_factor: u32,
    /// `mode`, default `append`.
    pub mode: StreamMode,
    /// `version_column`; `None` means `_tp_time`.
    pub version_column: Option<String>,
    /// `storage_type`, default `hybrid`.
    pub storage_type: StorageType,
    /// `logstore_codec`, default `none`.
    pub logstore_codec: LogstoreCodec,
    /// `logstore_retention_bytes`, default 1 (delete flushed segments as soon as possible).
    pub logstore_retention_bytes: Retention,
    /// `logstore_retention_ms`, default 86 400 000 (one day).
    pub logstore_retention_ms: Retention,
    /// `placement_policies`, default empty (no effect on one node).
    pub placement_policies: String,
    /// `shared_disk`, default none (no effect on one node).
    pub shared_disk: Option<String>,
    /// `ingest_mode`, default automatic.
    pub ingest_mode: IngestMode,
    /// `ack`, default `quorum` (the local commit on one node).
    pub ack: AckMode,
    /// `ingest_batch_max_bytes`, default 64 MiB (no effect on one node).
    pub ingest_batch_max_bytes: u64,
    /// `ingest_batch_timeout_ms`, default 500 (no effect on one node).
    pub ingest_batch_timeout_ms: u64,
    /// `fetch_threads`, default 1 (no effect on one node).
    pub fetch_threads: u32,
    /// `flush_threshold_count`, default 100 000 rows.
    pub flush_threshold_count: u64,
    /// `flush_threshold_ms`, default 2 000.
    pub flush_threshold_ms: u64,
    /// `flush_threshold_bytes`, default 16 MiB.
    pub flush_threshold_bytes: u64,
    /// `merge_with_ttl_timeout` in seconds, default 14 400.
    pub merge_with_ttl_timeout: u64,
    /// `sharding_expr`; `None` spreads rows round-robin (kv modes hash the primary key).
    pub sharding_expr: Option<Expr>,
    /// `event_time_column`; `None` means `_tp_time` is the ingest time unless given.
    pub event_time_column: Option<Expr>,
    /// `dead_letter_stream`; `None`: rejected ingest requests are only answered, not kept.
    pub dead_letter_stream: Option<String>,
    /// The settings as given, in order, each name once (the last value wins); for SHOW CREATE.
    pub explicit: Vec<StreamSetting>,
    /// Names of given settings that have no effect on a single node, in order.
    pub no_op_settings: Vec<String>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            shards: 1,
            replication_factor: 1,
            mode: StreamMode::Append,
            version_column: None,
            storage_type: StorageType::Hybrid,
            logstore_codec: LogstoreCodec::None,
            logstore_retention_bytes: Retention::Limit(1),
            logstore_retention_ms: Retention::Limit(86_400_000),
            placement_policies: String::new(),
            shared_disk: None,
            ingest_mode: IngestMode::Auto,
            ack: AckMode::Quorum,
            ingest_batch_max_bytes: 64 << 20,
            ingest_batch_timeout_ms: 500,
            fetch_threads: 1,
            flush_threshold_count: 100_000,
            flush_threshold_ms: 2_000,
            flush_threshold_bytes: 16 << 20,
            merge_with_ttl_timeout: 14_400,
            sharding_expr: None,
            event_time_column: None,
            dead_letter_stream: None,
            explicit: Vec::new(),
            no_op_settings: Vec::new(),
        }
    }
}

impl StreamSettings {
    /// Applies one setting: updates its field, records it in `explicit` (replacing an earlier
    /// value of the same name) and, if cluster-only, in `no_op_settings`.
    pub fn apply(&mut self, setting: StreamSetting) {
        match &setting {
            StreamSetting::Shards(n) => self.shards = *n,
            StreamSetting::ReplicationFactor(n) => self.replication_factor = *n,
            StreamSetting::Mode(m) => self.mode = *m,
            StreamSetting::VersionColumn(c) => self.version_column = Some(c.clone()),
            StreamSetting::StorageType(t) => self.storage_type = *t,
            StreamSetting::LogstoreCodec(c) => self.logstore_codec = *c,
            StreamSetting::LogstoreRetentionBytes(r) => self.logstore_retention_bytes = *r,
            StreamSetting::LogstoreRetentionMs(r) => self.logstore_retention_ms = *r,
            StreamSetting::PlacementPolicies(p) => self.placement_policies = p.clone(),
            StreamSetting::SharedDisk(d) => self.shared_disk = Some(d.clone()),
            StreamSetting::IngestMode(m) => self.ingest_mode = *m,
            StreamSetting::Ack(a) => self.ack = *a,
            StreamSetting::IngestBatchMaxBytes(n) => self.ingest_batch_max_bytes = *n,
            StreamSetting::IngestBatchTimeoutMs(n) => self.ingest_batch_timeout_ms = *n,
            StreamSetting::FetchThreads(n) => self.fetch_threads = *n,
            StreamSetting::FlushThresholdCount(n) => self.flush_threshold_count = *n,
            StreamSetting::FlushThresholdMs(n) => self.flush_threshold_ms = *n,
            StreamSetting::FlushThresholdBytes(n) => self.flush_threshold_bytes = *n,
            StreamSetting::MergeWithTtlTimeout(n) => self.merge_with_ttl_timeout = *n,
            StreamSetting::ShardingExpr(e) => self.sharding_expr = Some(e.clone()),
            StreamSetting::EventTimeColumn(e) => self.event_time_column = Some(e.clone()),
            StreamSetting::DeadLetterStream(s) => self.dead_letter_stream = Some(s.clone()),
        }
        let name = setting.name();
        if setting.is_cluster_only() && !self.no_op_settings.iter().any(|n| n == name) {
            self.no_op_settings.push(name.to_string());
        }
        match self.explicit.iter_mut().find(|s| s.name() == name) {
            Some(slot) => *slot = setting,
            None => self.explicit.push(setting),
        }
    }
}

impl fmt::Display for StreamSettings {
    /// The explicitly given settings, `name = value, ...` (empty if none were given).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.explicit.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: SettingValue) -> Result<StreamSetting> {
        StreamSetting::parse(name, &value, crate::parse_expr)
    }

    fn s(v: &str) -> SettingValue {
        SettingValue::String(v.into())
    }

    #[test]
    fn every_known_setting_accepts_a_valid_value_and_names_itself() -> Result<()> {
        let valid: &[(&str, SettingValue)] = &[
            ("shards", SettingValue::Int(3)),
            ("replication_factor", SettingValue::Int(3)),
            ("mode", s("versioned_kv")),
            ("version_column", s("ts")),
            ("storage_type", s("streaming")),
            ("logstore_codec", s("zstd")),
            ("logstore_retention_bytes", SettingValue::Int(-1)),
            ("logstore_retention_ms", SettingValue::Int(3_600_000)),
            ("placement_policies", s("rack=a")),
            ("shared_disk", s("s3_disk")),
            ("ingest_mode", s("async")),
            ("ack", s("local")),
            ("ingest_batch_max_bytes", SettingValue::Int(1 << 20)),
            ("ingest_batch_timeout_ms", SettingValue::Int(200)),
            ("fetch_threads", SettingValue::Int(2)),
            ("flush_threshold_count", SettingValue::Int(10)),
            ("flush_threshold_ms", SettingValue::Int(100)),
            ("flush_threshold_bytes", s("1048576")),
            ("merge_with_ttl_timeout", SettingValue::Int(0)),
            ("sharding_expr", s("weak_hash32(id)")),
            ("event_time_column", s("to_datetime64(ts, 3)")),
            ("dead_letter_stream", s("events_dlq")),
        ];
        assert_eq!(valid.len(), STREAM_SETTING_NAMES.len());
        let mut all = StreamSettings::default();
        for (name, value) in valid {
            let setting = set(name, value.clone())?;
            assert_eq!(setting.name(), *name);
            // Display -> parse round trip of the value.
            let shown = setting.to_string();
            let (shown_name, shown_value) = shown.split_once(" = ").expect("name = value");
            assert_eq!(shown_name, *name);
            let expr = crate::parse_expr(shown_value)?;
            assert_eq!(set(name, SettingValue::from_expr(name, &expr)?)?, setting, "{shown}");
            all.apply(setting);
        }
        assert_eq!(all.no_op_settings, CLUSTER_ONLY_SETTINGS);
        assert_eq!((all.shards, all.mode, all.logstore_codec), (3, StreamMode::VersionedKv, LogstoreCodec::Zstd));
        assert_eq!(all.logstore_retention_bytes, Retention::Unlimited);
        assert_eq!(all.flush_threshold_bytes, 1 << 20);
        Ok(())
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value, needle) in [
            ("shards", SettingValue::Int(0), "between 1 and 1024"),
            ("shards", s("many"), "whole number"),
            ("shards", SettingValue::Float(1.5), "whole number"),
            ("mode", s("chanelog_kv"), "expected one of 'append', 'changelog', 'changelog_kv', 'versioned_kv'"),
            ("storage_type", s("disk"), "'hybrid'"),
            ("logstore_codec", s("gzip"), "'lz4'"),
            ("logstore_retention_ms", SettingValue::Int(0), "-1 for unlimited"),
            ("logstore_retention_bytes", SettingValue::Int(-2), "between -1"),
            ("ack", s("all"), "'quorum'"),
            ("ingest_mode", s("later"), "'sync'"),
            ("flush_threshold_count", SettingValue::Int(-5), "between 1"),
            ("version_column", SettingValue::Int(1), "expected a string"),
            ("sharding_expr", s("weak_hash32(("), "not an expression"),
            ("dead_letter_stream", s("bad name"), "not a stream name"),
            ("dead_letter_stream", SettingValue::Int(3), "expected a string"),
            ("shardz", SettingValue::Int(1), "did you mean `shards`"),
            ("compression", SettingValue::Int(1), "unknown stream setting"),
        ] {
            let err = set(name, value).expect_err(name);
            assert!(matches!(&err, Error::InvalidSetting { name: n, .. } if n == name), "{err:?}");
            assert!(err.to_string().contains(needle), "{name}: {err}");
        }
    }

    #[test]
    fn later_values_replace_earlier_ones() -> Result<()> {
        let mut settings = StreamSettings::default();
        settings.apply(set("shards", SettingValue::Int(2))?);
        settings.apply(set("replication_factor", SettingValue::Int(3))?);
        settings.apply(set("SHARDS", SettingValue::Int(4))?);
        settings.apply(set("replication_factor", SettingValue::Int(1))?);
        assert_eq!(settings.shards, 4);
        assert_eq!(settings.to_string(), "shards = 4, replication_factor = 1");
        assert_eq!(settings.no_op_settings, ["replication_factor"]);
        Ok(())
    }
}
