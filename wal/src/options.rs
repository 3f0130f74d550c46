use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sluice_vfs::{FileSystem, RealFs};

use crate::{Error, Result};

/// When an append is acknowledged. Printed with every benchmark result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Acknowledge after `fdatasync(2)`: survives power loss. The default.
    #[default]
    Fsync,
    /// Acknowledge after `write(2)`: survives a process crash (`kill -9`), not power loss.
    Os,
    /// Acknowledge when the record is queued: fastest; a crash may lose recent records.
    None,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Fsync => "fsync",
            Durability::Os => "os",
            Durability::None => "none",
        })
    }
}

impl FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fsync" | "sync" => Ok(Durability::Fsync),
            "os" | "write" => Ok(Durability::Os),
            "none" | "async" => Ok(Durability::None),
            other => Err(Error::InvalidArgument(format!("unknown durability '{other}' (expected fsync, os or none)"))),
        }
    }
}

/// Per-record compression of payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// Stored as given. The default (Proton's `logstore_codec` default too).
    #[default]
    None,
    /// LZ4 block compression (lz4_flex).
    Lz4,
    /// Zstandard at [`WalOptions::zstd_level`].
    Zstd,
}

impl Codec {
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Lz4 => 1,
            Codec::Zstd => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Lz4),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::None => "none",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        })
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Codec::None),
            "lz4" => Ok(Codec::Lz4),
            "zstd" => Ok(Codec::Zstd),
            other => Err(Error::InvalidArgument(format!("unknown codec '{other}' (expected none, lz4 or zstd)"))),
        }
    }
}

/// How much of the log is checked when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Every frame's checksum in every segment (damage anywhere is found at open). The default.
    #[default]
    Full,
    /// Frame structure everywhere, checksums only in the last segment (faster open of a long
    /// log; damage in older segments is reported when a reader reaches it).
    Tail,
}

/// Options of one log. `WalOptions::default()` is a durable (`Fsync`), uncompressed log with
/// 64 MiB segments and no retention on the local file system.
#[derive(Clone)]
pub struct WalOptions {
    /// When appends are acknowledged.
    pub durability: Durability,
    /// Compression of each record's payload.
    pub codec: Codec,
    /// zstd level for [`Codec::Zstd`] (1 = fastest).
    pub zstd_level: i32,
    /// A segment is closed and a new one started when the next write would pass this size.
    pub segment_bytes: u64,
    /// Capacity of the writer's request queue, in records. Appenders block when it is full.
    pub queue_records: usize,
    /// Bytes of payload that may wait in the queue. Appenders block above it (back-pressure).
    pub queue_bytes: u64,
    /// Retention by size: closed segments beyond this many bytes of log may be deleted.
    pub retention_bytes: Option<u64>,
    /// Retention by age: closed segments whose last record is older than this may be deleted.
    pub retention_ms: Option<u64>,
    /// How much to check at open.
    pub verify: Verify,
    /// Sequence number of the first record of a new, empty log.
    pub initial_seq: u64,
    /// The pin in force from the moment the log opens (retention runs at open too): records
    /// at or after it are never removed. See [`crate::Wal::set_pin`].
    pub pin: Option<u64>,
    /// Name of the writer thread (`sluice-wal-<stream>-<shard>` in the engine).
    pub thread_name: String,
    /// The file system (real, or simulated in tests).
    pub fs: Arc<dyn FileSystem>,
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("durability", &self.durability)
            .field("codec", &self.codec)
            .field("zstd_level", &self.zstd_level)
            .field("segment_bytes", &self.segment_bytes)
            .field("queue_records", &self.queue_records)
            .field("queue_bytes", &self.queue_bytes)
            .field("retention_bytes", &self.retention_bytes)
            .field("retention_ms", &self.retention_ms)
            .field("verify", &self.verify)
            .field("initial_seq", &self.initial_seq)
            .field("pin", &self.pin)
            .field("thread_name", &self.thread_name)
            .finish_non_exhaustive()
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            codec: Codec::None,
            zstd_level: 1,
            segment_bytes: 64 << 20,
            queue_records: 4096,
            queue_bytes: 64 << 20,
            retention_bytes: None,
            retention_ms: None,
            verify: Verify::Full,
            initial_seq: 0,
            pin: None,
            thread_name: "sluice-wal".to_string(),
            fs: Arc::new(RealFs::new()),
        }
    }
}

impl WalOptions {
    /// Sets the durability.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Sets the codec.
    pub fn codec(mut self, c: Codec) -> Self {
        self.codec = c;
        self
    }

    /// Sets the segment size.
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n;
        self
    }

    /// Uses another file system.
    pub fn fs(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }

    /// Sets the pin in force from the open on (see [`WalOptions::pin`]).
    pub fn pin(mut self, pin: Option<u64>) -> Self {
        self.pin = pin;
        self
    }

    /// Names the writer thread.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_bytes < 4096 {
            return Err(Error::InvalidArgument(format!(
                "segment_bytes must be at least 4096, got {}",
                self.segment_bytes
            )));
        }
        if self.queue_records == 0 || self.queue_bytes == 0 {
            return Err(Error::InvalidArgument("queue limits must be positive".into()));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(Error::InvalidArgument(format!("zstd_level must be in 1..=22, got {}", self.zstd_level)));
        }
        Ok(())
    }
}
