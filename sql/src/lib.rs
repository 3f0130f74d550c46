//! sluice-sql: sluice's SQL layer. This release holds its front end: the parser for Timeplus
//! Proton's dialect (ClickHouse's SQL with snake_case names and streaming clauses), the statement
//! AST, the column type system with its Arrow mapping, and the error type. The binder, planner and
//! vectorised executor (bounded and unbounded operators over Arrow) come next and build on it.
//!
//! What it is not: it knows nothing of files, catalogs or threads. Names are not resolved here
//! (an unknown stream is the binder's business); what this crate checks is what the SQL text alone
//! decides: syntax, type names, stream settings, clause combinations.
//!
//! ```text
//!   SQL text
//!      │  lexer: sqlparser tokenizer (ClickHouse rules) + `5s` -> INTERVAL 5 SECOND
//!      ▼
//!   tokens ── split at `;` ──► one statement's tokens
//!      │  parser: first words decide
//!      ├─ CREATE STREAM / ALTER / DROP / SHOW / DESCRIBE ─► own grammar ─┐ (types.rs, settings.rs)
//!      ├─ SELECT / WITH / INSERT ─► lift EMIT, PARTITION BY ─► sqlparser ┤
//!      └─ SET / BEGIN / COPY / ... ─► sqlparser, allow-list ─────────────┤
//!                                                                        ▼
//!                                               Statement (ast.rs) ─► binder (next)
//! ```
//!
//! ```
//! use sluice_sql::{parse, Emit, IntervalLiteral, IntervalUnit, SqlType, Statement};
//!
//! let statements = parse(
//!     "CREATE STREAM clicks (user string, url string, ts datetime64(3))
//!        ORDER BY ts SETTINGS shards = 2, replication_factor = 3;
//!      SELECT window_start, count() FROM tumble(clicks, ts, 5s)
//!        GROUP BY window_start EMIT AFTER WATERMARK WITH DELAY 2s",
//! )?;
//! let Statement::CreateStream(create) = &statements[0] else { unreachable!() };
//! assert_eq!(create.columns[2].data_type, Some(SqlType::DateTime64 { precision: 3, tz: None }));
//! assert_eq!(create.settings.shards, 2);
//! assert_eq!(create.settings.no_op_settings, ["replication_factor"]);
//!
//! let Statement::Query(query) = &statements[1] else { unreachable!() };
//! let emit: &Emit = query.emit.as_ref().expect("has EMIT");
//! assert!(emit.after_watermark);
//! assert_eq!(emit.delay, Some(IntervalLiteral::new(2, IntervalUnit::Second)));
//!
//! // `5s` is an interval, never `5 AS s`; a column alias needs AS.
//! assert!(parse("SELECT 5 s").is_err());
//! # Ok::<(), sluice_sql::Error>(())
//! ```

/// Errors and their categories.
mod error;

/// The sqlparser dialect (ClickHouse plus Proton's differences).
mod dialect;

/// Tokenizing and the `5s` rewrite.
mod lexer;

/// Tokens to statements.
mod parser;

/// The statement AST.
pub mod ast;

/// Column types and their Arrow mapping.
pub mod types;

/// Setting values and validated stream settings.
mod settings;

/// Interval literals (`5s`, `INTERVAL 5 SECOND`).
mod interval;

pub use ast::ddl::{
    AlterAction, AlterStream, CODEC_NAMES, Codec, ColumnDef, ColumnDefault, CreateStream, CreateView, IndexDef, TP_SN,
    TP_TIME, Ttl,
};
pub use ast::query::{Emit, EmitMode, Insert, InsertSource, SluiceQuery};
pub use ast::{ObjectKind, Statement};
pub use dialect::SluiceDialect;
pub use error::{Error, ErrorCategory, Location, Result, Span};
pub use interval::{IntervalLiteral, IntervalUnit};
pub use parser::{RECURSION_LIMIT, parse, parse_expr, parse_statement};
pub use settings::{
    ALTERABLE_SETTINGS, AckMode, CLUSTER_ONLY_SETTINGS, IngestMode, LogstoreCodec, MAX_SHARDS, Retention,
    STREAM_SETTING_NAMES, SettingList, SettingValue, StorageType, StreamMode, StreamSetting, StreamSettings,
};
pub use types::{SqlType, TupleField};

/// The sqlparser crate whose AST queries and expressions use, re-exported so callers match the
/// same version.
pub use sqlparser;
