//! sluice-sql: sluice's SQL layer. The front end parses Timeplus Proton's dialect (ClickHouse's
//! SQL with snake_case names and streaming clauses) into statements; the back end binds queries to
//! a logical plan, plans physical operators and runs them vectorised over Arrow record batches
//! with Arrow's compute kernels, in parallel over storage partitions on plain std threads.
//! This release executes bounded (historical) queries; streaming operators come next (issue 6).
//!
//! What it is not: it knows nothing of files, shards or the WAL. Storage is reached only through
//! the [`Catalog`] and [`Table`] traits, which the engine implements ([`MemTable`] is an in-memory
//! implementation for tests and benchmarks). No tokio, no rayon.
//!
//! ```text
//!   SQL text
//!      │  lexer + parser (sqlparser, ClickHouse rules, Proton extras)
//!      ▼
//!   Statement ── Query ──► binder (names, types, aggregates, aliases) ──► LogicalPlan
//!      │                      │ push filters into scans, prune columns
//!      │                      ▼
//!      │               physical plan: Scan → Filter → Project → HashAggregate / TopK / Sort /
//!      │               HashJoin / Union / Limit (EXECUTION.md)
//!      │                      │ QueryPlan::execute(ctx): partitions on ctx.threads threads
//!      │                      ▼
//!      │               BatchStream (Arrow RecordBatches, cancellable)
//!      └─ Insert VALUES ──► values_to_batch (constant folding, casts)
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
//!
//! Running a historical query against an in-memory table:
//!
//! ```
//! use std::sync::Arc;
//! use sluice_sql::arrow::array::{Array, AsArray, UInt64Array};
//! use sluice_sql::arrow::datatypes::{DataType, Field, Schema, UInt64Type};
//! use sluice_sql::arrow::record_batch::RecordBatch;
//! use sluice_sql::{ExecContext, MemCatalog, MemTable, QueryOptions, Statement, parse_statement, plan_query};
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(UInt64Array::from(vec![1, 2, 3, 4]))])?;
//! let catalog = MemCatalog::new();
//! catalog.register(Arc::new(MemTable::from_batches("s", schema, vec![batch], 2)?));
//!
//! let Statement::Query(q) = parse_statement("SELECT sum(n) AS total FROM table(s) WHERE n > 1")? else { unreachable!() };
//! let plan = plan_query(&q, &catalog, &QueryOptions::default())?;
//! let batches = plan.execute(&ExecContext::default())?.collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(batches[0].column(0).as_primitive::<UInt64Type>().value(0), 9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
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

/// Aggregate functions and accumulators.
pub mod aggregate;
/// SQL AST -> logical plan.
mod binder;
/// INSERT VALUES, DEFAULT expressions, constants.
mod constant;
/// Physical operators and their parallel driver.
pub mod exec;
/// The logical plan and its rewrites.
pub mod logical;
/// Physical planning and the query API.
mod plan;
/// Streaming queries: unbounded reads, windows, watermarks, emission.
pub mod stream;

/// The storage interface: catalog, tables, bounded scans.
pub mod catalog;
/// Execution context and planning options.
pub mod context;
/// Bound expressions and their vectorised evaluation.
pub mod expr;
/// The scalar function library.
pub mod functions;
/// In-memory tables for tests and benchmarks.
pub mod memtable;
/// Typed constants.
pub mod scalar;
/// Calendar arithmetic, timestamp parsing and formatting.
pub mod temporal;
#[cfg(test)]
mod tests;

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

pub use catalog::{
    Catalog, ColumnFilter, FilterOp, Partition, ScanRequest, SeekTo, StreamSource, SubscribeRequest, Table,
};
pub use constant::{eval_constant, eval_expr_on_batch, values_to_batch};
pub use context::{ExecContext, QueryOptions};
pub use memtable::{MemCatalog, MemTable};
pub use plan::{BatchStream, Planned, QueryPlan, plan, plan_query};
pub use scalar::ScalarValue;
pub use stream::{Checkpoint, LiveStats, StreamPlan, StreamStats, StreamingQuery};

/// The sqlparser crate whose AST queries and expressions use, re-exported so callers match the
/// same version.
pub use sqlparser;

/// The arrow crate whose batches and types the executor uses, re-exported for callers.
pub use arrow;
