//! The server's error type and the one place engine errors become SQLSTATE codes and HTTP
//! statuses.

use sluice_sql::ErrorCategory;

/// What can go wrong starting or stopping the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is not acceptable.
    #[error("configuration: {0}")]
    Config(String),
    /// Binding a listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure (runtime start, reading the password file, ...).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Engine(#[from] sluice::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The SQLSTATE of an engine error: every error a client sees goes through here.
pub fn sqlstate(e: &sluice::Error) -> &'static str {
    use sluice::Error as E;
    match e {
        E::StreamNotFound { .. } | E::ViewNotFound { .. } => "42P01",
        E::StreamExists { .. } | E::ViewExists { .. } => "42P07",
        E::DependentObjects(_) => "2BP01",
        E::Timeout(_) => "57014",
        E::ColumnNotFound { .. } => "42703",
        E::InvalidDefinition(_) => "42P17",
        E::InvalidData { .. } => "22000",
        E::ResourcesExhausted(_) => "53000",
        E::NotSupported(_) => "0A000",
        E::Closed => "57P01",
        E::Corrupted { .. } => "XX001",
        E::Io { .. } | E::Wal { .. } | E::Parts { .. } => "58030",
        E::Poisoned { .. } | E::Arrow(_) => "XX000",
        E::Sql(e) => match e.category() {
            ErrorCategory::Syntax => "42601",
            ErrorCategory::UndefinedStream => "42P01",
            ErrorCategory::UndefinedColumn => "42703",
            ErrorCategory::UndefinedFunction => "42883",
            ErrorCategory::UndefinedType => "42704",
            ErrorCategory::DuplicateObject => "42P07",
            ErrorCategory::DuplicateColumn => "42701",
            ErrorCategory::InvalidParameter => "22023",
            ErrorCategory::DataException => "22000",
            ErrorCategory::Semantic | ErrorCategory::Plan => "42000",
            ErrorCategory::ResourcesExhausted => "53000",
            ErrorCategory::Cancelled => "57014",
            ErrorCategory::NotSupported => "0A000",
            ErrorCategory::Execution | ErrorCategory::Internal => "XX000",
            _ => "XX000",
        },
        _ => "XX000",
    }
}

/// What the Postgres endpoint refuses by itself, around the engine: COPY input that cannot
/// be read, cursors that do not exist, forms of COPY and FETCH sluice does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WireError {
    /// A statement the server parses itself (COPY, DECLARE, FETCH, CLOSE) is malformed.
    #[error("{0}")]
    Syntax(String),
    /// A form sluice does not support (binary COPY, server files, scrollable cursors).
    #[error("{0}")]
    NotSupported(String),
    /// A COPY value that is not valid text of its column's type.
    #[error("{0}")]
    InvalidText(String),
    /// A COPY value out of its column's range.
    #[error("{0}")]
    OutOfRange(String),
    /// COPY input that is not a row of the expected shape (missing or extra columns, a bad
    /// header, an unterminated quote).
    #[error("{0}")]
    BadCopyFormat(String),
    /// COPY input that is not UTF-8.
    #[error("{0}")]
    NotUtf8(String),
    /// A column listed twice in a COPY.
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    /// NULL given for a non-nullable column.
    #[error("{0}")]
    NotNull(String),
    /// A COPY larger than the server holds in memory to keep it all-or-nothing.
    #[error("{0}")]
    TooLarge(String),
    /// The client ended a COPY with CopyFail.
    #[error("COPY from stdin failed: {0}")]
    CopyFailed(String),
    /// FETCH, MOVE or CLOSE of a cursor that does not exist.
    #[error("cursor \"{0}\" does not exist")]
    UnknownCursor(String),
    /// DECLARE of a name already taken.
    #[error("cursor \"{0}\" already exists")]
    DuplicateCursor(String),
    /// FETCH backwards from a forward-only cursor.
    #[error("cursor can only scan forward")]
    ForwardOnly,
}

/// The SQLSTATE of an error the Postgres endpoint raises itself.
pub(crate) fn wire_sqlstate(e: &WireError) -> &'static str {
    match e {
        WireError::Syntax(_) => "42601",
        WireError::NotSupported(_) => "0A000",
        WireError::InvalidText(_) => "22P02",
        WireError::OutOfRange(_) => "22003",
        WireError::BadCopyFormat(_) => "22P04",
        WireError::NotUtf8(_) => "22021",
        WireError::DuplicateColumn(_) => "42701",
        WireError::NotNull(_) => "23502",
        WireError::TooLarge(_) => "54000",
        WireError::CopyFailed(_) => "57014",
        WireError::UnknownCursor(_) => "34000",
        WireError::DuplicateCursor(_) => "42P03",
        WireError::ForwardOnly => "55000",
    }
}

/// The HTTP status of an engine error (HTTP ingest).
pub fn http_status(e: &sluice::Error) -> u16 {
    match sqlstate(e) {
        "42P01" => 404,
        "53000" => 503,
        "57P01" => 503,
        s if s.starts_with("22") || s.starts_with("42") || s == "0A000" => 400,
        _ => 500,
    }
}
