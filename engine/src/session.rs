//! SQL on a [`Database`]: `execute` runs statements (DDL, INSERT, SHOW, DESCRIBE, SELECT) and
//! `query` runs one SELECT, returning Arrow batches. Parsing, planning and execution are
//! `sluice-sql`'s; this module maps statements onto the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_sql::{InsertSource, ObjectKind, SluiceQuery, Statement};

use crate::database::Database;
use crate::ddl;
use crate::sql_catalog::EngineCatalog;
use crate::stream_def::TP_TIME;
use crate::{Error, Result};

/// Batches of a query result.
pub type RowIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// The rows a statement returned.
pub struct QueryResult {
    schema: SchemaRef,
    rows: RowIter,
    cancel: Arc<AtomicBool>,
    cancelled_reported: bool,
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl QueryResult {
    fn from_batch(batch: RecordBatch) -> Self {
        Self {
            schema: batch.schema(),
            rows: Box::new(std::iter::once(Ok(batch))),
            cancel: Arc::new(AtomicBool::new(false)),
            cancelled_reported: false,
        }
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// A flag that cancels the query (from any thread) when set.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Reads every batch.
    pub fn collect(self) -> Result<Vec<RecordBatch>> {
        Iterator::collect(self)
    }

    /// Reads everything into one batch.
    pub fn concat(self) -> Result<RecordBatch> {
        let schema = self.schema.clone();
        let batches = self.collect()?;
        Ok(concat_batches(&schema, &batches)?)
    }
}

impl Iterator for QueryResult {
    type Item = Result<RecordBatch>;
    /// The next batch; after a cancel, one `Err(Cancelled)` and then the end.
    fn next(&mut self) -> Option<Self::Item> {
        if self.cancel.load(Ordering::Acquire) {
            if self.cancelled_reported {
                return None;
            }
            self.cancelled_reported = true;
            return Some(Err(Error::Sql(sluice_sql::Error::Cancelled)));
        }
        self.rows.next()
    }
}

/// What one statement did.
#[derive(Debug)]
pub enum Output {
    /// A statement without rows: its command tag (`CREATE STREAM`, `INSERT 0 3`, ...) and
    /// notices for the client.
    Command {
        /// The tag.
        tag: String,
        /// Notices (settings without effect, ...).
        notices: Vec<String>,
    },
    /// Rows.
    Rows(QueryResult),
}

impl Database {
    /// Runs every statement of `sql` in order; stops at the first error.
    pub fn execute(&self, sql: &str) -> Result<Vec<Output>> {
        let statements = sluice_sql::parse(sql)?;
        statements.into_iter().map(|s| self.execute_statement(s)).collect()
    }

    /// Runs one query that returns rows (SELECT, SHOW, DESCRIBE, EXPLAIN).
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        let mut statements = sluice_sql::parse(sql)?;
        if statements.len() != 1 {
            return Err(Error::InvalidDefinition(format!("query() takes one statement, got {}", statements.len())));
        }
        match self.execute_statement(statements.remove(0))? {
            Output::Rows(r) => Ok(r),
            Output::Command { tag, .. } => Err(Error::InvalidDefinition(format!("'{tag}' returns no rows"))),
        }
    }

    /// The columns one statement would return, without running it: `None` for statements that
    /// return no rows (DDL, INSERT: nothing is created or written). A query is only planned, so
    /// describing a streaming query starts nothing; SHOW, DESCRIBE and EXPLAIN read the catalog.
    /// This is what a Postgres client's Describe of a prepared statement needs.
    pub fn describe(&self, sql: &str) -> Result<Option<SchemaRef>> {
        let mut statements = sluice_sql::parse(sql)?;
        if statements.len() != 1 {
            return Err(Error::InvalidDefinition(format!("describe() takes one statement, got {}", statements.len())));
        }
        self.describe_statement(statements.remove(0))
    }

    /// [`Database::describe`] of a parsed statement.
    pub fn describe_statement(&self, stmt: Statement) -> Result<Option<SchemaRef>> {
        match stmt {
            Statement::Query(q) => crate::sql_bridge::plan_schema(&q, &EngineCatalog { db: self.clone() }).map(Some),
            Statement::ShowStreams { .. }
            | Statement::Describe { .. }
            | Statement::ShowCreate { .. }
            | Statement::Explain { .. } => match self.execute_statement(stmt)? {
                Output::Rows(r) => Ok(Some(r.schema().clone())),
                Output::Command { .. } => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// Runs one parsed statement.
    pub fn execute_statement(&self, stmt: Statement) -> Result<Output> {
        let done = |tag: &str| Ok(Output::Command { tag: tag.to_string(), notices: vec![] });
        match stmt {
            Statement::CreateStream(cs) => {
                let (def, notices) = ddl::stream_def(&cs)?;
                if cs.if_not_exists {
                    self.create_stream_if_not_exists(def)?;
                } else {
                    self.create_stream(def)?;
                }
                Ok(Output::Command { tag: "CREATE STREAM".into(), notices })
            }
            Statement::Drop { kind, name, if_exists } => {
                let name = ddl::object_name(&name)?;
                match kind {
                    ObjectKind::Stream => {
                        if if_exists {
                            self.drop_stream_if_exists(&name)?;
                        } else {
                            self.drop_stream(&name)?;
                        }
                        done("DROP STREAM")
                    }
                    ObjectKind::View | ObjectKind::MaterializedView => {
                        self.drop_view(&name, if_exists)?;
                        done("DROP VIEW")
                    }
                }
            }
            Statement::ShowStreams { like } => {
                let names: Vec<String> = self
                    .streams()
                    .iter()
                    .map(|d| d.name.clone())
                    .filter(|n| like.as_deref().is_none_or(|p| like_match(p, n)))
                    .collect();
                let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, false)]));
                let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(names)) as ArrayRef])?;
                Ok(Output::Rows(QueryResult::from_batch(batch)))
            }
            Statement::Describe { name } => {
                let def = self.stream_def(&ddl::object_name(&name)?)?;
                Ok(Output::Rows(QueryResult::from_batch(ddl::describe(&def)?)))
            }
            Statement::ShowCreate { name, .. } => {
                let def = self.stream_def(&ddl::object_name(&name)?)?;
                let schema = Arc::new(Schema::new(vec![Field::new("statement", DataType::Utf8, false)]));
                let text = ddl::show_create(&def);
                let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text])) as ArrayRef])?;
                Ok(Output::Rows(QueryResult::from_batch(batch)))
            }
            Statement::Insert(ins) => {
                let stream = ddl::object_name(&ins.stream)?;
                let def = self.stream_def(&stream)?;
                let columns: Vec<String> = if ins.columns.is_empty() {
                    def.columns.iter().map(|c| c.field.name().clone()).filter(|n| n != TP_TIME).collect()
                } else {
                    ins.columns.iter().map(|c| c.value.clone()).collect()
                };
                let schema = def.schema();
                let batch = match &ins.source {
                    InsertSource::Values(rows) => crate::sql_bridge::values_to_batch(rows, &schema, &columns)?,
                    InsertSource::Query(q) => {
                        let result = self.run_bounded(q)?;
                        let out = result.concat()?;
                        if out.num_columns() != columns.len() {
                            return Err(Error::InvalidData {
                                stream: stream.clone(),
                                column: None,
                                reason: format!(
                                    "the query returns {} columns for {} target columns",
                                    out.num_columns(),
                                    columns.len()
                                ),
                            });
                        }
                        let fields: Vec<Field> = columns
                            .iter()
                            .zip(out.schema().fields())
                            .map(|(n, f)| Field::new(n, f.data_type().clone(), true))
                            .collect();
                        RecordBatch::try_new(Arc::new(Schema::new(fields)), out.columns().to_vec())?
                    }
                };
                let r = self.append(&stream, &batch)?;
                done(&format!("INSERT 0 {}", r.rows))
            }
            Statement::Query(q) => Ok(Output::Rows(self.run_query(&q)?)),
            Statement::Explain { statement, .. } => match *statement {
                Statement::Query(q) => {
                    let text = self.explain(&q)?;
                    let schema = Arc::new(Schema::new(vec![Field::new("explain", DataType::Utf8, false)]));
                    let lines: Vec<String> = text.lines().map(str::to_string).collect();
                    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(lines)) as ArrayRef])?;
                    Ok(Output::Rows(QueryResult::from_batch(batch)))
                }
                _ => Err(Error::NotSupported("EXPLAIN of a statement other than SELECT".into())),
            },
            Statement::CreateView(cv) => {
                self.create_view(&cv)?;
                done("CREATE MATERIALIZED VIEW")
            }
            Statement::AlterStream(a) => {
                let notices = self.alter_stream(&a)?;
                Ok(Output::Command { tag: "ALTER STREAM".into(), notices })
            }
            other => Err(Error::NotSupported(format!("statement '{other}'"))),
        }
    }

    fn explain(&self, q: &SluiceQuery) -> Result<String> {
        crate::sql_bridge::explain(q, &EngineCatalog { db: self.clone() })
    }

    /// Runs a query: historical queries read snapshots and end, streaming queries (`FROM s`)
    /// follow the stream until LIMIT or cancel.
    fn run_query(&self, q: &SluiceQuery) -> Result<QueryResult> {
        let (schema, rows, cancel) = crate::sql_bridge::run(q, &EngineCatalog { db: self.clone() })?;
        Ok(QueryResult { schema, rows, cancel, cancelled_reported: false })
    }

    /// Runs a query that must end (the source of `INSERT ... SELECT`).
    fn run_bounded(&self, q: &SluiceQuery) -> Result<QueryResult> {
        let (schema, rows, cancel) = crate::sql_bridge::run_bounded(q, &EngineCatalog { db: self.clone() })?;
        Ok(QueryResult { schema, rows, cancel, cancelled_reported: false })
    }
}

/// SQL LIKE with `%` and `_` (case-sensitive).
fn like_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('%'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('_'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(db: &Database, sql: &str) -> Vec<Vec<String>> {
        let batch = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).concat().expect("rows");
        (0..batch.num_rows())
            .map(|r| {
                batch
                    .columns()
                    .iter()
                    .map(|c| crate::text::format_value(c, r).unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn insert_values_then_select_from_table() {
        let db = Database::in_memory();
        db.execute(
            "CREATE STREAM s (id uint64, kind string DEFAULT 'none', v float64, at datetime64(3) DEFAULT now64())",
        )
        .expect("create");
        let out = db
            .execute(
                "INSERT INTO s (id, kind, v) VALUES (1, 'a', 1.5), (2, 'b', 2.5); INSERT INTO s (id, v) VALUES (3, 4)",
            )
            .expect("insert");
        assert!(matches!(&out[0], Output::Command { tag, .. } if tag == "INSERT 0 2"), "{out:?}");
        assert_eq!(
            text(&db, "SELECT id, kind, v FROM table(s) ORDER BY id"),
            vec![vec!["1", "a", "1.5"], vec!["2", "b", "2.5"], vec!["3", "none", "4"]]
        );
        assert_eq!(text(&db, "SELECT count(*), sum(v) FROM table(s) WHERE kind != 'b'"), vec![vec!["2", "5.5"]]);
        db.flush("s").expect("flush");
        assert_eq!(text(&db, "SELECT kind, count(*) FROM table(s) GROUP BY kind ORDER BY kind").len(), 3);
        assert_eq!(text(&db, "SELECT count(*) FROM table(s) WHERE at IS NOT NULL"), vec![vec!["3"]]);
        let e = db.query("SELECT nope FROM table(s)").expect_err("unknown column");
        assert!(e.to_string().contains("nope"), "{e}");
        db.execute("INSERT INTO s (id, v) SELECT id + 10, v * 2 FROM table(s)").expect("insert select");
        assert_eq!(text(&db, "SELECT count(*) FROM table(s)"), vec![vec!["6"]]);
    }

    #[test]
    fn describe_plans_without_running() {
        let db = Database::in_memory();
        db.execute("CREATE STREAM s (id uint64, name string)").expect("create");
        let names = |sql: &str| -> Vec<String> {
            let schema = db.describe(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).expect("rows");
            schema.fields().iter().map(|f| f.name().clone()).collect()
        };
        assert_eq!(names("SELECT id, upper(name) AS n FROM s WHERE id > 3"), ["id", "n"]);
        assert_eq!(names("SELECT count(*) AS c FROM table(s)"), ["c"]);
        assert_eq!(
            names("SELECT window_start, count() AS c FROM tumble(s, 1s) GROUP BY window_start"),
            ["window_start", "c"]
        );
        assert_eq!(names("DESCRIBE s")[0], "name");
        assert_eq!(db.streaming_totals().queries, 0, "describing a streaming query starts nothing");
        assert!(db.describe("CREATE STREAM t (x int64)").expect("ddl").is_none());
        assert!(db.stream_def("t").is_err(), "describe does not run DDL");
        assert!(db.describe("INSERT INTO s (id, name) VALUES (1, 'a')").expect("insert").is_none());
        assert_eq!(text(&db, "SELECT count(*) FROM table(s)"), vec![vec!["0"]], "nor INSERT");
        let e = db.describe("SELECT nope FROM s").expect_err("unknown column");
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
