//! The calls into sluice-sql's planner and executor, in one place: bounded queries, EXPLAIN,
//! `INSERT ... VALUES` rows, and `DEFAULT` expressions.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use sluice_sql::sqlparser::ast::Expr;
use sluice_sql::{ExecContext, Planned, QueryOptions, QueryPlan, SluiceQuery};

use crate::session::RowIter;
use crate::sql_catalog::EngineCatalog;
use crate::{Error, Result};

/// Plans and starts a query (bounded or streaming); the rows are produced as the iterator is
/// read.
pub(crate) fn run(q: &SluiceQuery, catalog: &EngineCatalog) -> Result<(SchemaRef, RowIter, Arc<AtomicBool>)> {
    match sluice_sql::plan(q, catalog, &QueryOptions::default())? {
        Planned::Bounded(plan) => start_bounded(plan),
        Planned::Streaming(plan) => {
            let ctx = ExecContext::default();
            let cancel = ctx.cancel.clone();
            let query = plan.start(None, &ctx)?;
            let schema = query.schema();
            // Listed in system.queries while the result is alive.
            let listed = catalog.db.inner.queries.list("query", q.to_string(), query.live_stats());
            let rows: RowIter = Box::new(query.map(move |r| {
                let _listed = &listed;
                r.map_err(Error::from)
            }));
            Ok((schema, rows, cancel))
        }
    }
}

/// Plans and starts a bounded query; a streaming query is an error.
pub(crate) fn run_bounded(q: &SluiceQuery, catalog: &EngineCatalog) -> Result<(SchemaRef, RowIter, Arc<AtomicBool>)> {
    start_bounded(sluice_sql::plan_query(q, catalog, &QueryOptions::default())?)
}

fn start_bounded(plan: QueryPlan) -> Result<(SchemaRef, RowIter, Arc<AtomicBool>)> {
    let mut ctx = ExecContext::default();
    if let Some(t) = plan.max_threads {
        ctx.threads = t;
    }
    if let Some(m) = plan.max_memory_usage {
        ctx.memory_limit_bytes = m;
    }
    let cancel = ctx.cancel.clone();
    let schema = plan.schema();
    let stream = plan.execute(&ctx)?;
    let rows: RowIter = Box::new(stream.map(|r| r.map_err(Error::from)));
    Ok((schema, rows, cancel))
}

/// The result schema of a query, from planning alone: nothing is read from a stream and no
/// streaming query or subscription starts (uncorrelated subqueries, which the planner runs to
/// fold them into constants, are the exception: they are bounded reads).
pub(crate) fn plan_schema(q: &SluiceQuery, catalog: &EngineCatalog) -> Result<SchemaRef> {
    Ok(match sluice_sql::plan(q, catalog, &QueryOptions::default())? {
        Planned::Bounded(p) => p.schema(),
        Planned::Streaming(p) => p.schema(),
    })
}

/// The plan of a query as text.
pub(crate) fn explain(q: &SluiceQuery, catalog: &EngineCatalog) -> Result<String> {
    Ok(match sluice_sql::plan(q, catalog, &QueryOptions::default())? {
        Planned::Bounded(p) => p.explain(),
        Planned::Streaming(p) => p.explain(),
    })
}

/// `INSERT ... VALUES` rows as a batch of `columns`.
pub(crate) fn values_to_batch(rows: &[Vec<Expr>], schema: &SchemaRef, columns: &[String]) -> Result<RecordBatch> {
    Ok(sluice_sql::values_to_batch(rows, schema, columns)?)
}

/// A constant `DEFAULT` expression's value as a one-element array of `data_type`; `None` when
/// the expression is not a constant (it is then evaluated at every insert).
pub(crate) fn constant_default(e: &Expr, data_type: &DataType) -> Option<ArrayRef> {
    sluice_sql::eval_constant(e).ok().and_then(|v| v.to_array_of(data_type).ok())
}

/// Evaluates a `DEFAULT` expression over the rows of `batch` (it may use their columns).
pub(crate) fn eval_default(sql: &str, batch: &RecordBatch) -> Result<ArrayRef> {
    let e = sluice_sql::parse_expr(sql)?;
    Ok(sluice_sql::eval_expr_on_batch(&e, batch)?)
}
