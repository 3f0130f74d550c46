use std::fmt;

/// A position in the SQL text: 1-based line and column (columns count characters, not bytes).
///
/// Line 0 means "unknown" (for example an error about a statement as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    /// Line, starting at 1.
    pub line: u64,
    /// Column, starting at 1, counted in characters.
    pub column: u64,
}

impl Location {
    /// A location at `line`, `column` (both 1-based).
    pub const fn new(line: u64, column: u64) -> Self {
        Location { line, column }
    }

    /// Whether this location is known (line 0 is "unknown").
    pub fn is_known(&self) -> bool {
        self.line > 0
    }

    /// The 0-based character offset of this location in `sql`, or `None` if it is unknown or
    /// outside the text. Postgres' `ErrorResponse` position field is this plus one.
    pub fn char_offset(&self, sql: &str) -> Option<usize> {
        if !self.is_known() {
            return None;
        }
        let mut line = 1;
        let mut column = 1;
        for (offset, ch) in sql.chars().enumerate() {
            if line == self.line && column == self.column {
                return Some(offset);
            }
            if ch == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        (line == self.line && column == self.column).then(|| sql.chars().count())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "line {}, column {}", self.line, self.column)
        } else {
            f.write_str("unknown position")
        }
    }
}

impl From<sqlparser::tokenizer::Location> for Location {
    fn from(l: sqlparser::tokenizer::Location) -> Self {
        Location { line: l.line, column: l.column }
    }
}

/// A range of SQL text, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First character.
    pub start: Location,
    /// One past the last character.
    pub end: Location,
}

impl From<sqlparser::tokenizer::Span> for Span {
    fn from(s: sqlparser::tokenizer::Span) -> Self {
        Span { start: s.start.into(), end: s.end.into() }
    }
}

/// The coarse kind of an [`Error`]. The server maps each category to a SQLSTATE in one place;
/// the comment on each variant says which code it is meant to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// Malformed SQL (`42601`).
    Syntax,
    /// A stream or view that does not exist (`42P01`).
    UndefinedStream,
    /// A column that does not exist (`42703`).
    UndefinedColumn,
    /// A function that does not exist (`42883`).
    UndefinedFunction,
    /// A type name that does not exist (`42704`).
    UndefinedType,
    /// Creating something that already exists (`42P07`).
    DuplicateObject,
    /// Declaring the same column twice (`42701`).
    DuplicateColumn,
    /// A bad DDL or query setting (`22023`).
    InvalidParameter,
    /// A value that cannot be converted or is out of range (`22xxx`, default `22000`).
    DataException,
    /// Other semantic errors found while binding names and types (`42xxx`, default `42000`).
    Semantic,
    /// The planner could not build a plan (`42000`, or `XX000` if it is a bug).
    Plan,
    /// A runtime failure while executing (`XX000` unless more specific).
    Execution,
    /// A memory, queue or size limit was hit (`53xxx`, default `53000`).
    ResourcesExhausted,
    /// The query was cancelled (`57014`).
    Cancelled,
    /// Valid SQL that sluice does not support (`0A000`).
    NotSupported,
    /// A bug (`XX000`).
    Internal,
}

/// Everything that can go wrong in the SQL layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid SQL in sluice's dialect.
    #[error("syntax error at {location}: {message}")]
    Parse {
        /// What is wrong, with a hint where one helps.
        message: String,
        /// Where it was detected.
        location: Location,
    },
    /// The SQL parses but does not make sense (names, types, clause combinations).
    #[error("{message}")]
    Bind {
        /// What is wrong.
        message: String,
        /// The SQL it is about, when known.
        span: Option<Span>,
    },
    /// The planner could not turn a bound statement into a plan.
    #[error("planning failed: {message}")]
    Plan {
        /// What is wrong.
        message: String,
    },
    /// A runtime failure while executing a plan.
    #[error("execution failed: {message}")]
    Execution {
        /// What is wrong.
        message: String,
    },
    /// A memory, queue or size limit was hit.
    #[error("resources exhausted: {message}")]
    ResourcesExhausted {
        /// Which limit, and its value.
        message: String,
    },
    /// The statement was cancelled.
    #[error("query cancelled")]
    Cancelled,
    /// Valid SQL that sluice does not support (yet).
    #[error("not supported: {feature}")]
    NotImplemented {
        /// What is not supported, phrased so it can follow "not supported: ".
        feature: String,
        /// Where it appears in the SQL, when known.
        location: Option<Location>,
    },
    /// A bug: an invariant of the SQL layer does not hold.
    #[error("internal error: {message}")]
    Internal {
        /// The broken invariant.
        message: String,
    },
    /// A stream or view name that does not exist.
    #[error("stream or view `{name}` does not exist")]
    UnknownStream {
        /// The name as written.
        name: String,
    },
    /// A column name that does not exist.
    #[error("unknown column `{name}`{}", in_stream(stream))]
    UnknownColumn {
        /// The name as written.
        name: String,
        /// The stream searched, if there was exactly one.
        stream: Option<String>,
        /// Where the column is referenced.
        span: Option<Span>,
    },
    /// A function name that does not exist.
    #[error("unknown function `{name}`{}", suggestion.as_ref().map(|s| format!(", did you mean `{s}`?")).unwrap_or_default())]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The closest known function name, if any is close.
        suggestion: Option<String>,
        /// Where the call is.
        span: Option<Span>,
    },
    /// A type name that does not exist.
    #[error("unknown type `{name}` at {location}")]
    UnknownType {
        /// The name as written.
        name: String,
        /// Where it is.
        location: Location,
    },
    /// Creating an object that already exists.
    #[error("{kind} `{name}` already exists")]
    AlreadyExists {
        /// `"stream"`, `"view"`, `"materialized view"`, `"column"`, ...
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The same column declared twice in one statement.
    #[error("column `{name}` is declared more than once")]
    DuplicateColumn {
        /// The column.
        name: String,
    },
    /// A stream or query setting that is unknown or has a bad value.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidSetting {
        /// The setting as written.
        name: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A value that cannot be converted to the type it must have, or is out of range.
    #[error("invalid value: {message}")]
    InvalidValue {
        /// The value and the reason.
        message: String,
    },
}

fn in_stream(stream: &Option<String>) -> String {
    stream.as_ref().map(|s| format!(" in `{s}`")).unwrap_or_default()
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The coarse kind of this error, for mapping to SQLSTATE and HTTP codes.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Parse { .. } => ErrorCategory::Syntax,
            Error::Bind { .. } => ErrorCategory::Semantic,
            Error::Plan { .. } => ErrorCategory::Plan,
            Error::Execution { .. } => ErrorCategory::Execution,
            Error::ResourcesExhausted { .. } => ErrorCategory::ResourcesExhausted,
            Error::Cancelled => ErrorCategory::Cancelled,
            Error::NotImplemented { .. } => ErrorCategory::NotSupported,
            Error::Internal { .. } => ErrorCategory::Internal,
            Error::UnknownStream { .. } => ErrorCategory::UndefinedStream,
            Error::UnknownColumn { .. } => ErrorCategory::UndefinedColumn,
            Error::UnknownFunction { .. } => ErrorCategory::UndefinedFunction,
            Error::UnknownType { .. } => ErrorCategory::UndefinedType,
            Error::AlreadyExists { .. } => ErrorCategory::DuplicateObject,
            Error::DuplicateColumn { .. } => ErrorCategory::DuplicateColumn,
            Error::InvalidSetting { .. } => ErrorCategory::InvalidParameter,
            Error::InvalidValue { .. } => ErrorCategory::DataException,
        }
    }

    /// Where in the SQL text the error was found, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            Error::Parse { location, .. } | Error::UnknownType { location, .. } => Some(*location),
            Error::NotImplemented { location, .. } => *location,
            Error::Bind { span, .. } | Error::UnknownColumn { span, .. } | Error::UnknownFunction { span, .. } => {
                span.map(|s| s.start)
            }
            _ => None,
        }
        .filter(Location::is_known)
    }

    pub(crate) fn parse(message: impl Into<String>, location: impl Into<Location>) -> Self {
        Error::Parse { message: message.into(), location: location.into() }
    }

    pub(crate) fn not_implemented(feature: impl Into<String>, location: impl Into<Location>) -> Self {
        Error::NotImplemented { feature: feature.into(), location: Some(location.into()) }
    }

    pub(crate) fn setting(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSetting { name: name.into(), reason: reason.into() }
    }

    pub(crate) fn bind(message: impl Into<String>, span: Option<Span>) -> Self {
        Error::Bind { message: message.into(), span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offset_counts_characters_across_lines() {
        let sql = "SELECT 1;\nSELECT ä, x";
        assert_eq!(Location::new(1, 1).char_offset(sql), Some(0));
        assert_eq!(Location::new(2, 1).char_offset(sql), Some(10));
        assert_eq!(Location::new(2, 11).char_offset(sql), Some(20));
        assert_eq!(Location::new(2, 12).char_offset(sql), Some(21));
        assert_eq!(Location::new(3, 1).char_offset(sql), None);
        assert_eq!(Location::default().char_offset(sql), None);
    }

    #[test]
    fn categories_and_messages() {
        let e = Error::parse("Expected: x", Location::new(1, 8));
        assert_eq!(e.category(), ErrorCategory::Syntax);
        assert_eq!(e.to_string(), "syntax error at line 1, column 8: Expected: x");
        assert_eq!(e.location(), Some(Location::new(1, 8)));
        let e = Error::setting("shards", "must be at least 1");
        assert_eq!(e.category(), ErrorCategory::InvalidParameter);
        assert_eq!(e.to_string(), "invalid setting `shards`: must be at least 1");
        assert_eq!(e.location(), None);
        let e = Error::UnknownColumn { name: "x".into(), stream: Some("s".into()), span: None };
        assert_eq!(e.to_string(), "unknown column `x` in `s`");
        assert_eq!(Error::Cancelled.category(), ErrorCategory::Cancelled);
    }
}
