use std::io;
use std::path::PathBuf;

use crate::SeqNo;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"write"`, `"fdatasync"`, `"open"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are not a valid log: damage that is not a torn tail.
    #[error("corrupted WAL file {} at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the first bad byte (or of the bad frame).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or sync failed; the log refuses writes until it is reopened.
    #[error("WAL is poisoned by an earlier I/O failure ({reason}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the log.
        reason: String,
    },
    /// The log was closed.
    #[error("WAL is closed")]
    Closed,
    /// A reader asked for records that retention has already removed.
    #[error("WAL records before {first_available} were removed by retention (asked for {requested})")]
    Truncated {
        /// The sequence number asked for.
        requested: SeqNo,
        /// The first sequence number still in the log.
        first_available: SeqNo,
    },
    /// A payload larger than [`crate::MAX_PAYLOAD`].
    #[error("WAL payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A bad argument or option.
    #[error("invalid WAL argument: {0}")]
    InvalidArgument(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupted(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupted { file: file.into(), offset, reason: reason.into() }
    }
}
