use std::io;
use std::path::PathBuf;

use crate::PartId;

/// Everything that can go wrong in the column store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"create"`, `"write"`, `"fsync"`, `"rename"`, `"mmap"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are not a valid part or manifest: a checksum mismatch, a truncated file,
    /// an undecodable footer, page or record. Never a panic.
    #[error("corrupted file {}{}: {reason}", file.display(), fmt_offset(*offset))]
    Corrupted {
        /// The part or manifest file.
        file: PathBuf,
        /// Byte offset of the bad bytes, when known.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// Encoding a part failed (the batches could not be written as Parquet).
    #[error("writing part {}: {source}", path.display())]
    Parquet {
        /// The part being written.
        path: PathBuf,
        /// Parquet's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow kernel failed on well-formed data (schema mismatch, overflow, ...).
    #[error("{context}: {source}")]
    Arrow {
        /// What was being done.
        context: String,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A column named in a projection, sort key or time column is not in the schema.
    #[error("unknown column '{column}'")]
    UnknownColumn {
        /// The name asked for.
        column: String,
    },
    /// A part is listed in the manifest but its file is missing (a file of the wrong size is
    /// [`Error::Corrupted`]).
    #[error("part {id} ({}) listed in the manifest is missing or damaged: {reason}", path.display())]
    MissingPart {
        /// The part.
        id: PartId,
        /// Where its file should be.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier manifest write or sync failed; the manifest refuses edits until reopened.
    #[error("manifest is poisoned by an earlier I/O failure ({reason}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the manifest.
        reason: String,
    },
    /// A bad argument or option.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn fmt_offset(offset: Option<u64>) -> String {
    match offset {
        Some(o) => format!(" at offset {o}"),
        None => String::new(),
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupted(file: impl Into<PathBuf>, offset: Option<u64>, reason: impl Into<String>) -> Self {
        Error::Corrupted { file: file.into(), offset, reason: reason.into() }
    }

    pub(crate) fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Error::Arrow { context: context.into(), source }
    }

    /// True for [`Error::Corrupted`].
    pub fn is_corrupted(&self) -> bool {
        matches!(self, Error::Corrupted { .. })
    }
}
