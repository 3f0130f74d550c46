//! SQL behaviour tests over a small fixed data set (the same one tests/slt/README.md describes).

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::ast::Statement;
use crate::catalog::Table;
use crate::context::{ExecContext, QueryOptions};
use crate::error::{Error, Result};
use crate::functions::cast::{cast_array, format_float};
use crate::memtable::{MemCatalog, MemTable};
use crate::types::SqlType;
use crate::{parse_statement, plan_query, values_to_batch};

/// Function library tests.
mod functions;
/// The 10M-row benchmark (ignored by default).
mod perf;
/// Query and error tests.
mod queries;
/// Checks tests/slt/historical/*.slt.
mod slt;

/// A stream definition: name, columns (name, type), rows as SQL VALUES text.
pub(crate) fn table(name: &str, cols: &[(&str, &str)], values: &str, partitions: usize) -> Arc<MemTable> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, t)| t.parse::<SqlType>().unwrap_or_else(|e| panic!("{t}: {e}")).to_arrow_field(*n))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let names: Vec<String> = cols.iter().map(|(n, _)| n.to_string()).collect();
    let sql = format!("INSERT INTO {name} ({}) VALUES {values}", names.join(", "));
    let Statement::Insert(ins) = parse_statement(&sql).unwrap_or_else(|e| panic!("{sql}: {e}")) else {
        panic!("insert")
    };
    let crate::ast::query::InsertSource::Values(rows) = &ins.source else { panic!("values") };
    let batch = values_to_batch(rows, &schema, &names).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Split into `partitions` slices so parallel paths are exercised.
    let n = batch.num_rows();
    let per = n.div_ceil(partitions.max(1)).max(1);
    let parts: Vec<Vec<RecordBatch>> = (0..n).step_by(per).map(|s| vec![batch.slice(s, per.min(n - s))]).collect();
    let t = MemTable::new(name, schema, parts).expect("table");
    let star: Vec<String> = names.iter().filter(|n| !n.starts_with("_tp_")).cloned().collect();
    Arc::new(t.with_star_columns(star))
}

/// The fixed test data set.
pub(crate) fn catalog() -> MemCatalog {
    let c = MemCatalog::new();
    c.register(table(
        "events",
        &[
            ("id", "uint64"),
            ("ts", "datetime64(3)"),
            ("user_id", "uint64"),
            ("event_type", "low_cardinality(string)"),
            ("url", "nullable(string)"),
            ("value", "nullable(float64)"),
            ("_tp_time", "datetime64(3)"),
        ],
        "(1, '2024-01-01 00:00:00.000', 10, 'view', '/home', 1.5, '2024-01-01 00:00:01'),
         (2, '2024-01-01 00:00:30.500', 10, 'click', '/home', 2.5, '2024-01-01 00:00:31'),
         (3, '2024-01-01 00:01:10.000', 20, 'view', '/cart', 10, '2024-01-01 00:01:11'),
         (4, '2024-01-01 00:02:00.000', 20, 'purchase', '/cart', 99.99, '2024-01-01 00:02:01'),
         (5, '2024-01-01 01:00:00.000', 30, 'view', NULL, NULL, '2024-01-01 01:00:01'),
         (6, '2024-01-02 12:00:00.000', 30, 'click', '/search?q=a', 0.5, '2024-01-02 12:00:01'),
         (7, '2024-01-02 12:30:00.000', 40, 'view', '/home', 3, '2024-01-02 12:30:01'),
         (8, '2024-01-03 23:59:59.999', 10, 'purchase', '/cart', 20, '2024-01-03 23:59:59.999')",
        3,
    ));
    c.register(table(
        "users",
        &[("user_id", "uint64"), ("name", "string"), ("country", "nullable(string)"), ("attrs", "string")],
        "(10, 'ann', 'DE', '{\"age\": 31, \"vip\": true, \"tags\": [\"a\", \"b\"], \"score\": 1.5}'),
         (20, 'bob', 'US', '{\"age\": 45, \"vip\": false}'),
         (30, 'cy', NULL, '{}'),
         (50, 'dee', 'FR', 'not json')",
        2,
    ));
    c
}

/// Runs `sql` on the test catalog.
pub(crate) fn run_sql(sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    run_on(&catalog(), sql, 2)
}

pub(crate) fn run_on(c: &MemCatalog, sql: &str, threads: usize) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let Statement::Query(q) = parse_statement(sql)? else { panic!("not a query: {sql}") };
    let opts = QueryOptions { plain_stream_is_table: true, now: 1_704_067_200_000_000_000, ..Default::default() };
    let plan = plan_query(&q, c, &opts)?;
    let ctx = ExecContext { now: opts.now, ..ExecContext::with_threads(threads) };
    let batches = plan.execute(&ctx)?.collect::<Result<Vec<_>>>()?;
    Ok((plan.schema(), batches))
}

/// Formats one value as the .slt files show it.
pub(crate) fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "NULL".into();
    }
    match a.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let f = crate::functions::cast::as_f64(&a.slice(i, 1)).expect("float");
            let v = f.value(0);
            if v.fract() != 0.0 && v.is_finite() { format!("{}", (v * 1e6).round() / 1e6) } else { format_float(v) }
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            let items: Vec<String> = (0..l.len()).map(|j| cell(l.as_ref(), j)).collect();
            format!("[{}]", items.join(","))
        }
        DataType::Boolean => (if a.as_boolean().value(i) { "true" } else { "false" }).into(),
        _ => {
            let s = cast_array(&a.slice(i, 1), &DataType::Utf8).expect("to string");
            let s = s.as_string::<i32>().value(0).to_string();
            if s.is_empty() { "(empty)".into() } else { s }
        }
    }
}

/// Rows as strings joined by spaces.
pub(crate) fn rows(sql: &str) -> Vec<String> {
    let (_, batches) = run_sql(sql).unwrap_or_else(|e| panic!("{sql}\n  -> {e}"));
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b.columns().iter().map(|c| cell(c.as_ref(), i)).collect();
            out.push(cells.join(" "));
        }
    }
    out
}

/// The single value of a one-row, one-column query.
pub(crate) fn one(sql: &str) -> String {
    let r = rows(sql);
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r[0].clone()
}

/// The error of a query that must fail.
pub(crate) fn err(sql: &str) -> Error {
    match run_sql(sql) {
        Ok((_, b)) => panic!("{sql} should fail, got {} batches", b.len()),
        Err(e) => e,
    }
}

#[test]
fn smoke() {
    assert_eq!(one("SELECT 1 + 2"), "3");
    assert_eq!(one("SELECT count(*) FROM table(events)"), "8");
    assert_eq!(rows("SELECT id FROM events WHERE id < 3 ORDER BY id"), vec!["1", "2"]);
    let _ = Table::name(&*table("t", &[("a", "int32")], "(1)", 1));
}
