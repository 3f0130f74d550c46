//! The engine's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No stream of that name.
    #[error("stream '{name}' does not exist")]
    StreamNotFound {
        /// The name asked for.
        name: String,
    },
    /// A stream of that name exists already.
    #[error("stream '{name}' already exists")]
    StreamExists {
        /// The name.
        name: String,
    },
    /// A column named in a request does not exist in the stream.
    #[error("stream '{stream}' has no column '{column}'")]
    ColumnNotFound {
        /// The stream.
        stream: String,
        /// The column asked for.
        column: String,
    },
    /// A definition (stream, setting, option) is not valid.
    #[error("invalid definition: {0}")]
    InvalidDefinition(String),
    /// Data does not fit the stream: wrong type, missing required column, null in a
    /// non-nullable column. Nothing was written.
    #[error("invalid data for stream '{stream}'{}: {reason}", column.as_ref().map(|c| format!(", column '{c}'")).unwrap_or_default())]
    InvalidData {
        /// The stream.
        stream: String,
        /// The column at fault, when there is one.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A shard's write-ahead log failed.
    #[error("stream '{stream}' shard {shard}: {source}")]
    Wal {
        /// The stream.
        stream: String,
        /// The shard.
        shard: u32,
        /// The log's error.
        #[source]
        source: sluice_wal::Error,
    },
    /// Part or manifest storage failed.
    #[error("stream '{stream}' shard {shard}: {source}")]
    Parts {
        /// The stream.
        stream: String,
        /// The shard.
        shard: u32,
        /// The column store's error.
        #[source]
        source: sluice_columnstore::Error,
    },
    /// Bytes on disk are damaged (not a torn tail that recovery may cut off).
    #[error("corrupted file {} at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The file.
        file: PathBuf,
        /// Byte offset of the damage (0 when the whole file is unreadable).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier I/O failure poisoned the shard (or a worker thread panicked); it refuses
    /// writes until the database is reopened.
    #[error("stream '{stream}' shard {shard} is poisoned ({reason}); reopen the database to recover")]
    Poisoned {
        /// The stream.
        stream: String,
        /// The shard.
        shard: u32,
        /// The failure.
        reason: String,
    },
    /// A memory or queue limit was reached and waiting did not help.
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// An Arrow kernel failed (a bug or an unsupported type combination).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
    /// A SQL error (parse, bind, plan, execution), with its category.
    #[error(transparent)]
    Sql(#[from] sluice_sql::Error),
    /// Not supported (yet).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// No materialized view of that name.
    #[error("view '{name}' does not exist")]
    ViewNotFound {
        /// The name asked for.
        name: String,
    },
    /// A view (or the stream an implicit view target would take) of that name exists already.
    #[error("view '{name}' already exists")]
    ViewExists {
        /// The name.
        name: String,
    },
    /// Other objects depend on the one being dropped.
    #[error("{0}")]
    DependentObjects(String),
    /// A bug: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
    /// A wait did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn invalid_data(stream: &str, column: Option<&str>, reason: impl Into<String>) -> Self {
        Error::InvalidData { stream: stream.to_string(), column: column.map(str::to_string), reason: reason.into() }
    }
}
