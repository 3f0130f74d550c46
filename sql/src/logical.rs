//! The logical plan the binder produces, and the rewrites done on it before physical planning:
//! column pruning (only read what is used) and extraction of storage filters from WHERE.
//!
//! Expressions reference columns by id ([`ColumnInfo::id`], unique per query).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::aggregate::AggCall;
use crate::catalog::{ColumnFilter, FilterOp, Table};
use crate::expr::BExpr;
use crate::functions::compare::CmpOp;

/// One output column of a plan node.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Unique id within the query.
    pub id: usize,
    /// Output name.
    pub name: String,
    /// Type.
    pub ty: DataType,
    /// May hold NULL.
    pub nullable: bool,
}

impl ColumnInfo {
    /// A column reference expression.
    pub fn expr(&self) -> BExpr {
        BExpr::Column { id: self.id, name: self.name.as_str().into(), ty: self.ty.clone(), nullable: self.nullable }
    }

    /// An Arrow field.
    pub fn field(&self) -> Field {
        Field::new(&self.name, self.ty.clone(), self.nullable)
    }
}

/// An ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The key.
    pub expr: BExpr,
    /// Descending.
    pub desc: bool,
    /// NULLs first.
    pub nulls_first: bool,
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER.
    Inner,
    /// LEFT OUTER.
    Left,
    /// RIGHT OUTER.
    Right,
    /// FULL OUTER.
    Full,
    /// CROSS.
    Cross,
}

/// Window sizes in ticks of the time column's unit (a second column counts seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// `tumble`: back-to-back windows of `size`, aligned to the epoch.
    Tumble {
        /// Window length.
        size: i64,
    },
    /// `hop`: windows of `size` starting every `slide`, aligned to the epoch.
    Hop {
        /// Distance between window starts.
        slide: i64,
        /// Window length.
        size: i64,
    },
    /// `session`: per group key, rows less than `idle` apart form one window, at most `max`
    /// long. Its bounds are known only when it closes (rows carry their own time until then).
    Session {
        /// Inactivity gap that closes a session.
        idle: i64,
        /// Longest session.
        max: i64,
    },
}

impl WindowSpec {
    /// The window length.
    pub fn size(&self) -> i64 {
        match self {
            WindowSpec::Tumble { size } | WindowSpec::Hop { size, .. } => *size,
            WindowSpec::Session { max, .. } => *max,
        }
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowSpec::Tumble { size } => write!(f, "tumble size={size}"),
            WindowSpec::Hop { slide, size } => write!(f, "hop slide={slide} size={size}"),
            WindowSpec::Session { idle, max } => write!(f, "session idle={idle} max={max}"),
        }
    }
}

/// A logical plan node.
#[derive(Debug, Clone)]
pub enum LogicalPlan {
    /// A bounded table scan.
    Scan {
        /// The table.
        table: Arc<dyn Table>,
        /// Columns read: (output column, table column name).
        columns: Vec<(ColumnInfo, String)>,
        /// Conjuncts the storage may use.
        filters: Vec<ColumnFilter>,
        /// At most this many rows needed.
        limit_hint: Option<usize>,
    },
    /// An unbounded read of a stream (`FROM s` without `table()`): a streaming query.
    StreamScan {
        /// The stream.
        table: Arc<dyn Table>,
        /// Columns read: (output column, table column name).
        columns: Vec<(ColumnInfo, String)>,
    },
    /// `tumble(s, ...)` / `hop(s, ...)`: adds `window_start` and `window_end` to every row (a
    /// hop window repeats a row once per window holding it).
    Window {
        /// Input.
        input: Box<LogicalPlan>,
        /// Window sizes.
        spec: WindowSpec,
        /// The event-time column (a timestamp column of the input).
        time: ColumnInfo,
        /// `window_start`.
        start: ColumnInfo,
        /// `window_end`.
        end: ColumnInfo,
    },
    /// Constant batches (one empty row for `SELECT 1`, VALUES lists, folded results).
    Values {
        /// Output columns.
        out: Vec<ColumnInfo>,
        /// The rows.
        batches: Vec<RecordBatch>,
    },
    /// WHERE / HAVING.
    Filter {
        /// Input.
        input: Box<LogicalPlan>,
        /// Condition.
        predicate: BExpr,
    },
    /// Computes expressions.
    Project {
        /// Input.
        input: Box<LogicalPlan>,
        /// Expressions and their output columns.
        exprs: Vec<(BExpr, ColumnInfo)>,
    },
    /// GROUP BY / aggregates / DISTINCT.
    Aggregate {
        /// Input.
        input: Box<LogicalPlan>,
        /// Group keys.
        groups: Vec<(BExpr, ColumnInfo)>,
        /// Aggregate calls.
        aggs: Vec<(AggCall, ColumnInfo)>,
    },
    /// ORDER BY [LIMIT].
    Sort {
        /// Input.
        input: Box<LogicalPlan>,
        /// Keys.
        keys: Vec<SortKey>,
        /// Only the first `fetch` rows are needed (top-k).
        fetch: Option<usize>,
    },
    /// LIMIT / OFFSET.
    Limit {
        /// Input.
        input: Box<LogicalPlan>,
        /// Rows skipped.
        skip: usize,
        /// Rows returned after skipping.
        fetch: Option<usize>,
    },
    /// A join.
    Join {
        /// Left input.
        left: Box<LogicalPlan>,
        /// Right input (the build side).
        right: Box<LogicalPlan>,
        /// Kind.
        kind: JoinKind,
        /// Equi-join keys (left expr, right expr).
        on: Vec<(BExpr, BExpr)>,
        /// Other conditions, over both sides.
        filter: Option<BExpr>,
        /// Output columns (left then right, nullability adjusted).
        out: Vec<ColumnInfo>,
    },
    /// UNION ALL: inputs with the same column types, positionally.
    Union {
        /// Inputs.
        inputs: Vec<LogicalPlan>,
        /// Output columns.
        out: Vec<ColumnInfo>,
    },
}

impl LogicalPlan {
    /// Whether the plan reads a stream without `table()`: a streaming query.
    pub fn is_streaming(&self) -> bool {
        self.streaming_source().is_some()
    }

    /// The first stream the plan reads without `table()`.
    pub fn streaming_source(&self) -> Option<String> {
        match self {
            LogicalPlan::StreamScan { table, .. } => Some(table.name().to_string()),
            LogicalPlan::Scan { .. } | LogicalPlan::Values { .. } => None,
            LogicalPlan::Window { input, .. }
            | LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. } => input.streaming_source(),
            LogicalPlan::Join { left, right, .. } => left.streaming_source().or_else(|| right.streaming_source()),
            LogicalPlan::Union { inputs, .. } => inputs.iter().find_map(LogicalPlan::streaming_source),
        }
    }

    /// The output columns.
    pub fn output(&self) -> Vec<ColumnInfo> {
        match self {
            LogicalPlan::Scan { columns, .. } | LogicalPlan::StreamScan { columns, .. } => {
                columns.iter().map(|(c, _)| c.clone()).collect()
            }
            LogicalPlan::Window { input, start, end, .. } => {
                let mut out = input.output();
                out.push(start.clone());
                out.push(end.clone());
                out
            }
            LogicalPlan::Values { out, .. } | LogicalPlan::Join { out, .. } | LogicalPlan::Union { out, .. } => {
                out.clone()
            }
            LogicalPlan::Filter { input, .. } | LogicalPlan::Sort { input, .. } | LogicalPlan::Limit { input, .. } => {
                input.output()
            }
            LogicalPlan::Project { exprs, .. } => exprs.iter().map(|(_, c)| c.clone()).collect(),
            LogicalPlan::Aggregate { groups, aggs, .. } => {
                groups.iter().map(|(_, c)| c.clone()).chain(aggs.iter().map(|(_, c)| c.clone())).collect()
            }
        }
    }

    /// The output as an Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.output().iter().map(ColumnInfo::field).collect::<Vec<_>>()))
    }
}

fn cols(e: &BExpr, out: &mut HashSet<usize>) {
    let mut v = Vec::new();
    e.columns(&mut v);
    out.extend(v);
}

/// Drops columns nobody reads; `required` are the ids needed from `plan`'s output.
pub fn prune(plan: LogicalPlan, required: &HashSet<usize>) -> LogicalPlan {
    match plan {
        LogicalPlan::Scan { table, columns, filters, limit_hint } => {
            let columns = columns.into_iter().filter(|(c, _)| required.contains(&c.id)).collect();
            LogicalPlan::Scan { table, columns, filters, limit_hint }
        }
        LogicalPlan::StreamScan { table, columns } => {
            let columns = columns.into_iter().filter(|(c, _)| required.contains(&c.id)).collect();
            LogicalPlan::StreamScan { table, columns }
        }
        LogicalPlan::Window { input, spec, time, start, end } => {
            let mut req = required.clone();
            req.insert(time.id);
            LogicalPlan::Window { input: Box::new(prune(*input, &req)), spec, time, start, end }
        }
        v @ LogicalPlan::Values { .. } => v,
        LogicalPlan::Filter { input, predicate } => {
            let mut req = required.clone();
            cols(&predicate, &mut req);
            LogicalPlan::Filter { input: Box::new(prune(*input, &req)), predicate }
        }
        LogicalPlan::Project { input, exprs } => {
            let exprs: Vec<_> = exprs.into_iter().filter(|(_, c)| required.contains(&c.id)).collect();
            let mut req = HashSet::new();
            exprs.iter().for_each(|(e, _)| cols(e, &mut req));
            LogicalPlan::Project { input: Box::new(prune(*input, &req)), exprs }
        }
        LogicalPlan::Aggregate { input, groups, aggs } => {
            let mut req = HashSet::new();
            groups.iter().for_each(|(e, _)| cols(e, &mut req));
            for (a, _) in &aggs {
                a.args.iter().for_each(|e| cols(e, &mut req));
                if let Some(f) = &a.filter {
                    cols(f, &mut req);
                }
            }
            LogicalPlan::Aggregate { input: Box::new(prune(*input, &req)), groups, aggs }
        }
        LogicalPlan::Sort { input, keys, fetch } => {
            let mut req = required.clone();
            keys.iter().for_each(|k| cols(&k.expr, &mut req));
            LogicalPlan::Sort { input: Box::new(prune(*input, &req)), keys, fetch }
        }
        LogicalPlan::Limit { input, skip, fetch } => {
            LogicalPlan::Limit { input: Box::new(prune(*input, required)), skip, fetch }
        }
        LogicalPlan::Join { left, right, kind, on, filter, out } => {
            let mut req = required.clone();
            for (l, r) in &on {
                cols(l, &mut req);
                cols(r, &mut req);
            }
            if let Some(f) = &filter {
                cols(f, &mut req);
            }
            let left = prune(*left, &req);
            let right = prune(*right, &req);
            let keep: HashSet<usize> = left.output().iter().chain(right.output().iter()).map(|c| c.id).collect();
            let out = out.into_iter().filter(|c| keep.contains(&c.id)).collect();
            LogicalPlan::Join { left: Box::new(left), right: Box::new(right), kind, on, filter, out }
        }
        LogicalPlan::Union { inputs, out } => {
            let inputs = inputs
                .into_iter()
                .map(|i| {
                    let all: HashSet<usize> = i.output().iter().map(|c| c.id).collect();
                    prune(i, &all)
                })
                .collect();
            LogicalPlan::Union { inputs, out }
        }
    }
}

/// Moves `col op literal` conjuncts of filters directly above scans into the scan's request
/// (the filter stays: storage may return extra rows). Recurses through the whole plan.
pub fn push_filters(plan: LogicalPlan) -> LogicalPlan {
    match plan {
        LogicalPlan::Filter { input, predicate } => {
            let input = push_filters(*input);
            let input = match input {
                LogicalPlan::Scan { table, columns, mut filters, limit_hint } => {
                    for c in predicate.clone().conjuncts() {
                        if let Some(f) = column_filter(&c, &columns) {
                            filters.push(f);
                        }
                    }
                    LogicalPlan::Scan { table, columns, filters, limit_hint }
                }
                other => other,
            };
            LogicalPlan::Filter { input: Box::new(input), predicate }
        }
        LogicalPlan::Project { input, exprs } => LogicalPlan::Project { input: Box::new(push_filters(*input)), exprs },
        LogicalPlan::Aggregate { input, groups, aggs } => {
            LogicalPlan::Aggregate { input: Box::new(push_filters(*input)), groups, aggs }
        }
        LogicalPlan::Sort { input, keys, fetch } => {
            LogicalPlan::Sort { input: Box::new(push_filters(*input)), keys, fetch }
        }
        LogicalPlan::Limit { input, skip, fetch } => {
            let input = push_filters(*input);
            // A bare scan under a LIMIT only needs so many rows.
            let input = match (input, fetch) {
                (LogicalPlan::Scan { table, columns, filters, limit_hint: None }, Some(n)) if filters.is_empty() => {
                    LogicalPlan::Scan { table, columns, filters, limit_hint: Some(n + skip) }
                }
                (LogicalPlan::Project { input: inner, exprs }, Some(n)) => match *inner {
                    LogicalPlan::Scan { table, columns, filters, limit_hint: None } if filters.is_empty() => {
                        LogicalPlan::Project {
                            input: Box::new(LogicalPlan::Scan { table, columns, filters, limit_hint: Some(n + skip) }),
                            exprs,
                        }
                    }
                    other => LogicalPlan::Project { input: Box::new(other), exprs },
                },
                (i, _) => i,
            };
            LogicalPlan::Limit { input: Box::new(input), skip, fetch }
        }
        LogicalPlan::Join { left, right, kind, on, filter, out } => LogicalPlan::Join {
            left: Box::new(push_filters(*left)),
            right: Box::new(push_filters(*right)),
            kind,
            on,
            filter,
            out,
        },
        LogicalPlan::Union { inputs, out } => {
            LogicalPlan::Union { inputs: inputs.into_iter().map(push_filters).collect(), out }
        }
        LogicalPlan::Window { input, spec, time, start, end } => {
            LogicalPlan::Window { input: Box::new(push_filters(*input)), spec, time, start, end }
        }
        other => other,
    }
}

fn column_filter(c: &BExpr, columns: &[(ColumnInfo, String)]) -> Option<ColumnFilter> {
    let BExpr::Call { func, args, .. } = c else { return None };
    let col_name = |e: &BExpr| match e {
        BExpr::Column { id, .. } => columns.iter().find(|(c, _)| c.id == *id).map(|(_, n)| n.clone()),
        _ => None,
    };
    if (func.name.as_ref() == "in") && args.len() == 1 && !func.params.is_empty() {
        let column = col_name(&args[0])?;
        let values: Vec<_> = func.params.to_vec();
        return Some(ColumnFilter { column, op: FilterOp::In(values.clone()), value: values[0].clone() });
    }
    let op = CmpOp::from_name(&func.name)?;
    if args.len() != 2 {
        return None;
    }
    let (column, value, op) = match (col_name(&args[0]), args[1].as_literal(), col_name(&args[1]), args[0].as_literal())
    {
        (Some(c), Some(v), _, _) => (c, v, op),
        (_, _, Some(c), Some(v)) => (c, v, op.flip()),
        _ => return None,
    };
    if value.is_null() {
        return None;
    }
    let op = match op {
        CmpOp::Eq => FilterOp::Eq,
        CmpOp::Lt => FilterOp::Lt,
        CmpOp::LtEq => FilterOp::LtEq,
        CmpOp::Gt => FilterOp::Gt,
        CmpOp::GtEq => FilterOp::GtEq,
        CmpOp::NotEq => return None,
    };
    Some(ColumnFilter { column, op, value })
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.expr,
            if self.desc { " DESC" } else { "" },
            if self.nulls_first { " NULLS FIRST" } else { "" }
        )
    }
}
