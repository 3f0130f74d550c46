//! Physical planning (logical plan -> operators, choosing top-k, pushing projections into
//! filters, answering `count(*)` from metadata) and the public [`QueryPlan`] / [`BatchStream`].

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::UInt64Array;
use arrow::compute::SortOptions;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::aggregate::AggKind;
use crate::ast::query::SluiceQuery;
use crate::binder::Binder;
use crate::catalog::{Catalog, ScanRequest};
use crate::context::{ExecContext, QueryOptions};
use crate::error::{Error, Result};
use crate::exec::filter::FilterExec;
use crate::exec::hash_agg::HashAggExec;
use crate::exec::hash_join::HashJoinExec;
use crate::exec::limit::LimitExec;
use crate::exec::parallel::gather;
use crate::exec::project::ProjectExec;
use crate::exec::scan::ScanExec;
use crate::exec::sort::{PhysSortKey, SortExec};
use crate::exec::top_k::TopKExec;
use crate::exec::union::UnionExec;
use crate::exec::values::ValuesExec;
use crate::exec::window::WindowExec;
use crate::exec::{ExecNode, PartStream, explain};
use crate::expr::BExpr;
use crate::logical::{self, ColumnInfo, LogicalPlan};

/// A planned bounded query.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    root: Arc<dyn ExecNode>,
    schema: SchemaRef,
    /// `SETTINGS max_threads = n` of the query, if given.
    pub max_threads: Option<usize>,
    /// `SETTINGS max_memory_usage = n` of the query, if given.
    pub max_memory_usage: Option<usize>,
}

/// A planned query: historical (bounded) or streaming.
#[derive(Debug, Clone)]
pub enum Planned {
    /// Reads `table(s)` snapshots and ends.
    Bounded(QueryPlan),
    /// Reads a stream without end (`FROM s`).
    Streaming(Box<crate::stream::StreamPlan>),
}

/// The settings a query may carry (`SELECT ... SETTINGS name = value`).
pub const QUERY_SETTINGS: &[&str] =
    &["max_threads", "max_memory_usage", "seek_to", "checkpoint_interval", "recovery_policy"];

/// Query settings the planner reads.
struct QuerySettings {
    max_threads: Option<usize>,
    max_memory_usage: Option<usize>,
}

fn query_settings(q: &SluiceQuery) -> Result<QuerySettings> {
    let mut out = QuerySettings { max_threads: None, max_memory_usage: None };
    for (name, value) in q.settings.iter() {
        let as_n = || {
            value.as_i64().filter(|v| *v >= 0).map(|v| v as usize).ok_or_else(|| Error::InvalidSetting {
                name: name.clone(),
                reason: format!("expected a non-negative integer, got {}", value.as_string()),
            })
        };
        match name.as_str() {
            "max_threads" => out.max_threads = Some(as_n()?.max(1)),
            "max_memory_usage" => out.max_memory_usage = Some(as_n()?),
            "seek_to" => {
                crate::stream::parse_seek_to(&value.as_string())?;
            }
            // Read where a materialized view is created (`engine/src/views.rs`).
            "checkpoint_interval" | "recovery_policy" => {}
            _ => {
                return Err(Error::InvalidSetting {
                    name: name.clone(),
                    reason: format!("unknown query setting (known: {})", QUERY_SETTINGS.join(", ")),
                });
            }
        }
    }
    Ok(out)
}

/// Plans a query: streaming when it reads a stream without `table()`.
pub fn plan(q: &SluiceQuery, catalog: &dyn Catalog, opts: &QueryOptions) -> Result<Planned> {
    let settings = query_settings(q)?;
    let mut binder = Binder::new(catalog, opts);
    let logical = binder.bind_query(&q.query)?;
    if logical.is_streaming() {
        return Ok(Planned::Streaming(Box::new(crate::stream::plan(q, logical, settings.max_memory_usage)?)));
    }
    bounded(q, logical, settings).map(Planned::Bounded)
}

/// Plans a historical (bounded) query; a streaming query is an error.
pub fn plan_query(q: &SluiceQuery, catalog: &dyn Catalog, opts: &QueryOptions) -> Result<QueryPlan> {
    let settings = query_settings(q)?;
    let mut binder = Binder::new(catalog, opts);
    let logical = binder.bind_query(&q.query)?;
    if let Some(name) = logical.streaming_source() {
        return Err(Error::NotImplemented {
            feature: format!(
                "a streaming read here (FROM {name} reads the stream without end; table({name}) reads the rows stored now)"
            ),
            location: None,
        });
    }
    bounded(q, logical, settings)
}

fn bounded(q: &SluiceQuery, logical: LogicalPlan, settings: QuerySettings) -> Result<QueryPlan> {
    if q.emit.is_some() {
        return Err(Error::Bind {
            message: "EMIT applies to streaming queries (FROM s), not to historical ones (FROM table(s))".into(),
            span: None,
        });
    }
    if !q.partition_by.is_empty() {
        return Err(Error::NotImplemented { feature: "PARTITION BY substreams (streaming)".into(), location: None });
    }
    let schema = logical.schema();
    let root = physical_plan(logical)?;
    Ok(QueryPlan { root, schema, max_threads: settings.max_threads, max_memory_usage: settings.max_memory_usage })
}

impl QueryPlan {
    /// The result schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Runs the plan. The stream checks `ctx.cancel` between batches.
    pub fn execute(&self, ctx: &ExecContext) -> Result<BatchStream> {
        let mut ctx = ctx.clone();
        if let Some(t) = self.max_threads {
            ctx.threads = t;
        }
        if let Some(m) = self.max_memory_usage.filter(|m| *m > 0) {
            ctx.memory_limit_bytes = m;
        }
        ctx.check_cancelled()?;
        let inner = run(self.root.clone(), &ctx)?;
        Ok(BatchStream { inner, cancel: ctx.cancel.clone(), schema: self.schema.clone(), done: false })
    }

    /// The operator tree, indented, one operator per line.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        explain(&self.root, 0, &mut s);
        s
    }
}

/// Starts a physical plan as one stream.
pub(crate) fn run(root: Arc<dyn ExecNode>, ctx: &ExecContext) -> Result<PartStream> {
    let parts = root.execute(ctx)?;
    gather(ctx, parts)
}

/// The result of a query: record batches of [`BatchStream::schema`].
pub struct BatchStream {
    inner: PartStream,
    cancel: Arc<AtomicBool>,
    schema: SchemaRef,
    done: bool,
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").field("schema", &self.schema).field("done", &self.done).finish()
    }
}

impl BatchStream {
    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for BatchStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.cancel.load(Ordering::Relaxed) {
            self.done = true;
            return Some(Err(Error::Cancelled));
        }
        match self.inner.next() {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Some(Ok(b)) => Some(relabel(b, &self.schema)),
        }
    }
}

pub(crate) fn relabel(b: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if b.schema().fields() == schema.fields() {
        return Ok(b);
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), b.columns().to_vec(), &opts).or_else(|_| {
        let relaxed = crate::exec::hash_agg::relax(schema, b.columns());
        Ok(RecordBatch::try_new_with_options(relaxed, b.columns().to_vec(), &opts)?)
    })
}

/// Optimises a logical plan and builds its operators.
pub(crate) fn physical_plan(plan: LogicalPlan) -> Result<Arc<dyn ExecNode>> {
    let out = plan.output();
    let required: HashSet<usize> = out.iter().map(|c| c.id).collect();
    let plan = logical::push_filters(plan);
    let plan = logical::prune(plan, &required);
    let (node, cols) = create(&plan, None)?;
    // The root must produce exactly the query's columns.
    if cols.iter().map(|c| c.id).collect::<Vec<_>>() != out.iter().map(|c| c.id).collect::<Vec<_>>() {
        let exprs = out.iter().map(|c| to_phys(&c.expr(), &cols)).collect::<Result<Vec<_>>>()?;
        return Ok(Arc::new(ProjectExec { input: node, exprs, schema: schema_of(&out) }));
    }
    Ok(node)
}

pub(crate) fn schema_of(cols: &[ColumnInfo]) -> SchemaRef {
    Arc::new(Schema::new(cols.iter().map(ColumnInfo::field).collect::<Vec<_>>()))
}

/// ORDER BY keys over the positions of `input`.
pub(crate) fn sort_keys_to_phys(keys: &[crate::logical::SortKey], input: &[ColumnInfo]) -> Result<Vec<PhysSortKey>> {
    keys.iter()
        .map(|k| {
            Ok(PhysSortKey {
                expr: to_phys(&k.expr, input)?,
                options: SortOptions { descending: k.desc, nulls_first: k.nulls_first },
            })
        })
        .collect()
}

/// The columns of a join's output: the left's then the right's, with the nullability the
/// join gives them (`out`).
pub(crate) fn joined_columns(left: &[ColumnInfo], right: &[ColumnInfo], out: &[ColumnInfo]) -> Vec<ColumnInfo> {
    left.iter()
        .chain(right.iter())
        .map(|c| out.iter().find(|o| o.id == c.id).cloned().unwrap_or_else(|| c.clone()))
        .collect()
}

/// Aggregate calls with their arguments and filters over the positions of `input`.
pub(crate) fn calls_to_phys(
    aggs: &[(crate::aggregate::AggCall, ColumnInfo)],
    input: &[ColumnInfo],
) -> Result<Vec<crate::aggregate::AggCall>> {
    aggs.iter()
        .map(|(a, _)| {
            let mut a = a.clone();
            a.args = a.args.iter().map(|e| to_phys(e, input)).collect::<Result<_>>()?;
            a.filter = a.filter.as_ref().map(|f| to_phys(f, input)).transpose()?;
            Ok(a)
        })
        .collect()
}

/// Rewrites column ids into positions of `input`.
pub(crate) fn to_phys(e: &BExpr, input: &[ColumnInfo]) -> Result<BExpr> {
    e.map_columns(&mut |id| {
        input
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| Error::Internal { message: format!("column #{id} is not produced by the input") })
    })
}

fn ids(e: &BExpr, out: &mut HashSet<usize>) {
    let mut v = Vec::new();
    e.columns(&mut v);
    out.extend(v);
}

type Built = (Arc<dyn ExecNode>, Vec<ColumnInfo>);

/// Builds the operator for `plan`; `needed`: the parent only reads these column ids.
fn create(plan: &LogicalPlan, needed: Option<&HashSet<usize>>) -> Result<Built> {
    Ok(match plan {
        LogicalPlan::Scan { table, columns, filters, limit_hint } => {
            let out: Vec<ColumnInfo> = columns.iter().map(|(c, _)| c.clone()).collect();
            let request = ScanRequest {
                columns: columns.iter().map(|(_, n)| n.clone()).collect(),
                filters: filters.clone(),
                limit_hint: *limit_hint,
            };
            (Arc::new(ScanExec { table: table.clone(), request, schema: schema_of(&out) }), out)
        }
        LogicalPlan::StreamScan { table, .. } => {
            return Err(Error::NotImplemented {
                feature: format!("a streaming read of `{0}` here (a historical query reads table({0}))", table.name()),
                location: None,
            });
        }
        LogicalPlan::Window { input, spec, time, start, end } => {
            if matches!(spec, crate::logical::WindowSpec::Session { .. }) {
                return Err(Error::NotImplemented {
                    feature: "session windows over table(s) (sessions are a streaming window)".into(),
                    location: None,
                });
            }
            let (child, mut cols) = create(input, None)?;
            let t = cols
                .iter()
                .position(|c| c.id == time.id)
                .ok_or_else(|| Error::Internal { message: "window time column not produced by the input".into() })?;
            cols.push(start.clone());
            cols.push(end.clone());
            (Arc::new(WindowExec { input: child, spec: *spec, time: t, schema: schema_of(&cols) }), cols)
        }
        LogicalPlan::Values { out, batches } => (
            Arc::new(ValuesExec { batches: batches.clone(), schema: schema_of(out), label: "Values".into() }),
            out.clone(),
        ),
        LogicalPlan::Filter { input, predicate } => {
            let (child, cols) = create(input, None)?;
            let predicate = to_phys(predicate, &cols)?;
            let keep: Vec<usize> =
                (0..cols.len()).filter(|i| needed.is_none_or(|n| n.contains(&cols[*i].id))).collect();
            let out: Vec<ColumnInfo> = keep.iter().map(|i| cols[*i].clone()).collect();
            (Arc::new(FilterExec { input: child, predicate, projection: keep, schema: schema_of(&out) }), out)
        }
        LogicalPlan::Project { input, exprs } => {
            let mut need = HashSet::new();
            exprs.iter().for_each(|(e, _)| ids(e, &mut need));
            let (child, cols) = create(input, Some(&need))?;
            let out: Vec<ColumnInfo> = exprs.iter().map(|(_, c)| c.clone()).collect();
            // A projection that only renames/reorders nothing is skipped.
            let identity = exprs.len() == cols.len()
                && exprs
                    .iter()
                    .zip(&cols)
                    .all(|((e, o), c)| matches!(e, BExpr::Column { id, .. } if *id == c.id) && o.id == c.id);
            if identity {
                return Ok((child, cols));
            }
            let exprs = exprs.iter().map(|(e, _)| to_phys(e, &cols)).collect::<Result<Vec<_>>>()?;
            (Arc::new(ProjectExec { input: child, exprs, schema: schema_of(&out) }), out)
        }
        LogicalPlan::Aggregate { input, groups, aggs } => {
            let out: Vec<ColumnInfo> =
                groups.iter().map(|(_, c)| c.clone()).chain(aggs.iter().map(|(_, c)| c.clone())).collect();
            // count(*) of a whole table: from metadata when the table knows it.
            if groups.is_empty()
                && !aggs.is_empty()
                && aggs.iter().all(|(a, _)| a.kind == AggKind::CountStar && a.filter.is_none())
                && let LogicalPlan::Scan { table, filters, .. } = input.as_ref()
                && filters.is_empty()
                && let Some(n) = table.row_count()
            {
                let schema = schema_of(&out);
                let cols = out.iter().map(|_| Arc::new(UInt64Array::from(vec![n])) as _).collect();
                let batch = RecordBatch::try_new(schema.clone(), cols)?;
                let label = format!("RowCountFromMetadata {}", table.name());
                return Ok((Arc::new(ValuesExec { batches: vec![batch], schema, label }), out));
            }
            let mut need = HashSet::new();
            groups.iter().for_each(|(e, _)| ids(e, &mut need));
            for (a, _) in aggs {
                a.args.iter().for_each(|e| ids(e, &mut need));
                if let Some(f) = &a.filter {
                    ids(f, &mut need);
                }
            }
            let (child, cols) = create(input, Some(&need))?;
            let groups = groups.iter().map(|(e, _)| to_phys(e, &cols)).collect::<Result<Vec<_>>>()?;
            let aggs = calls_to_phys(aggs, &cols)?;
            (Arc::new(HashAggExec { input: child, groups, aggs, schema: schema_of(&out) }), out)
        }
        LogicalPlan::Sort { input, keys, fetch } => {
            let (child, cols) = create(input, None)?;
            let keys = sort_keys_to_phys(keys, &cols)?;
            let node: Arc<dyn ExecNode> = match fetch {
                Some(k) => Arc::new(TopKExec { input: child, keys, fetch: *k }),
                None => Arc::new(SortExec { input: child, keys }),
            };
            (node, cols)
        }
        LogicalPlan::Limit { input, skip, fetch } => {
            let (child, cols) = create(input, None)?;
            (Arc::new(LimitExec { input: child, skip: *skip, fetch: *fetch }), cols)
        }
        LogicalPlan::Join { left, right, kind, on, filter, out } => {
            let (l, lcols) = create(left, None)?;
            let (r, rcols) = create(right, None)?;
            let left_keys = on.iter().map(|(a, _)| to_phys(a, &lcols)).collect::<Result<Vec<_>>>()?;
            let right_keys = on.iter().map(|(_, b)| to_phys(b, &rcols)).collect::<Result<Vec<_>>>()?;
            let all = joined_columns(&lcols, &rcols, out);
            let filter = filter.as_ref().map(|f| to_phys(f, &all)).transpose()?;
            let node =
                HashJoinExec { left: l, right: r, kind: *kind, left_keys, right_keys, filter, schema: schema_of(&all) };
            (Arc::new(node), all)
        }
        LogicalPlan::Union { inputs, out } => {
            let mut nodes = Vec::new();
            for i in inputs {
                let (n, cols) = create(i, None)?;
                let want = i.output();
                // Inputs must produce their columns in their declared order.
                let n: Arc<dyn ExecNode> = if cols.iter().map(|c| c.id).eq(want.iter().map(|c| c.id)) {
                    n
                } else {
                    let exprs = want.iter().map(|c| to_phys(&c.expr(), &cols)).collect::<Result<Vec<_>>>()?;
                    Arc::new(ProjectExec { input: n, exprs, schema: schema_of(&want) })
                };
                nodes.push(n);
            }
            (Arc::new(UnionExec { inputs: nodes, schema: schema_of(out) }), out.clone())
        }
    })
}
