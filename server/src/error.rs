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
