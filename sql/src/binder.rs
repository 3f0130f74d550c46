//! The binder: sqlparser's query AST -> [`LogicalPlan`] with typed expressions. Resolves names
//! against the catalog, CTEs, subqueries and select aliases; checks types; collects aggregates.

use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sqlparser::ast::{self as ast, Expr, Query, SetExpr, SetOperator, SetQuantifier};

use crate::aggregate::AggCall;
use crate::catalog::Catalog;
use crate::context::{ExecContext, QueryOptions};
use crate::error::{Error, Result, Span};
use crate::expr::BExpr;
use crate::functions::{self, cast_to};
use crate::logical::{ColumnInfo, LogicalPlan};

/// Binding of expressions.
mod expr;
/// Binding of FROM: tables, subqueries, table functions, joins.
mod from;
/// Binding of SELECT: projection, aggregation, ORDER BY.
mod select;

pub(crate) use expr::ExprCtx;
use expr::span_of;

/// A column visible by name.
#[derive(Debug, Clone)]
pub(crate) struct ScopeCol {
    /// Table name or alias.
    pub qualifier: Option<String>,
    /// The column.
    pub info: ColumnInfo,
    /// Left out of `SELECT *` (`_tp_time`, `_tp_sn`, the right side of USING).
    pub hidden: bool,
}

/// The columns an expression can see.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub cols: Vec<ScopeCol>,
    /// The table name when the scope is one table (for messages).
    pub table: Option<String>,
}

impl Scope {
    /// Finds a column; ambiguity is an error.
    pub fn resolve(&self, qual: Option<&str>, name: &str, span: Option<Span>) -> Result<Option<ColumnInfo>> {
        let mut found: Option<&ScopeCol> = None;
        for c in &self.cols {
            let name_ok = c.info.name == name;
            let qual_ok = qual.is_none_or(|q| c.qualifier.as_deref() == Some(q));
            if name_ok && qual_ok {
                if qual.is_none() && c.hidden && found.is_some() {
                    continue;
                }
                if let Some(prev) = found
                    && prev.info.id != c.info.id
                {
                    if qual.is_none() && (prev.hidden || c.hidden) {
                        if prev.hidden {
                            found = Some(c);
                        }
                        continue;
                    }
                    return Err(Error::Bind {
                        message: format!("column `{name}` is ambiguous; qualify it with a table name"),
                        span,
                    });
                }
                found = Some(c);
            }
        }
        Ok(found.map(|c| c.info.clone()))
    }

    /// The single table's name, if any.
    pub fn single_table(&self) -> Option<String> {
        self.table.clone()
    }
}

/// Aggregate calls found while binding a SELECT.
#[derive(Debug, Default)]
pub(crate) struct AggCollector {
    /// The scope aggregate arguments are bound in (the FROM clause).
    pub input: Scope,
    /// Calls and their output columns.
    pub calls: Vec<(AggCall, ColumnInfo)>,
}

impl AggCollector {
    /// Adds a call (reusing an equal one) and returns its output column.
    pub fn add(&mut self, call: AggCall, written: &str, b: &mut Binder<'_>) -> ColumnInfo {
        if let Some((_, c)) = self.calls.iter().find(|(c, _)| *c == call) {
            return c.clone();
        }
        let info = b.new_col(format!("{written}(...)"), call.ty.clone(), call.nullable);
        let info = ColumnInfo { name: call.to_string(), ..info };
        self.calls.push((call, info.clone()));
        info
    }
}

/// Binds one statement's queries.
pub(crate) struct Binder<'a> {
    pub catalog: &'a dyn Catalog,
    pub opts: &'a QueryOptions,
    next_id: usize,
    ctes: Vec<(String, Query)>,
    pub(crate) expanding: Vec<String>,
}

impl<'a> Binder<'a> {
    pub fn new(catalog: &'a dyn Catalog, opts: &'a QueryOptions) -> Self {
        Binder { catalog, opts, next_id: 0, ctes: Vec::new(), expanding: Vec::new() }
    }

    /// A fresh column id.
    pub fn new_col(&mut self, name: impl Into<String>, ty: DataType, nullable: bool) -> ColumnInfo {
        self.next_id += 1;
        ColumnInfo { id: self.next_id, name: name.into(), ty, nullable }
    }

    /// Binds a query (WITH, set operations, ORDER BY, LIMIT).
    pub fn bind_query(&mut self, q: &Query) -> Result<LogicalPlan> {
        let pushed = match &q.with {
            Some(with) => {
                if with.recursive {
                    return Err(Error::NotImplemented { feature: "WITH RECURSIVE".into(), location: None });
                }
                for cte in &with.cte_tables {
                    self.ctes.push((cte.alias.name.value.clone(), (*cte.query).clone()));
                }
                with.cte_tables.len()
            }
            None => 0,
        };
        let r = self.bind_query_body(q);
        self.ctes.truncate(self.ctes.len() - pushed);
        r
    }

    fn bind_query_body(&mut self, q: &Query) -> Result<LogicalPlan> {
        if q.fetch.is_some() {
            return Err(Error::NotImplemented { feature: "FETCH FIRST; use LIMIT".into(), location: None });
        }
        let (skip, fetch) = self.limits(q)?;
        match q.body.as_ref() {
            SetExpr::Select(s) => self.bind_select(s, q.order_by.as_ref(), skip, fetch),
            body => {
                let plan = self.bind_set_expr(body)?;
                let plan = match &q.order_by {
                    Some(ob) => self.order_by_output(plan, ob, skip, fetch)?,
                    None => plan,
                };
                Ok(if skip > 0 || fetch.is_some() {
                    LogicalPlan::Limit { input: Box::new(plan), skip, fetch }
                } else {
                    plan
                })
            }
        }
    }

    fn const_usize(&mut self, e: &Expr, what: &'static str) -> Result<usize> {
        let scope = Scope::default();
        let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: what };
        let v = self.bind_expr(e, &ctx)?.as_literal().and_then(|v| v.as_i64());
        match v {
            Some(n) if n >= 0 => Ok(n as usize),
            _ => Err(Error::Bind {
                message: format!("{what} must be a non-negative integer constant"),
                span: span_of(e),
            }),
        }
    }

    fn limits(&mut self, q: &Query) -> Result<(usize, Option<usize>)> {
        Ok(match &q.limit_clause {
            None => (0, None),
            Some(ast::LimitClause::LimitOffset { limit, offset, limit_by }) => {
                if !limit_by.is_empty() {
                    return Err(Error::NotImplemented { feature: "LIMIT BY".into(), location: None });
                }
                let fetch = match limit {
                    Some(l) => Some(self.const_usize(l, "LIMIT")?),
                    None => None,
                };
                let skip = match offset {
                    Some(o) => self.const_usize(&o.value, "OFFSET")?,
                    None => 0,
                };
                (skip, fetch)
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (self.const_usize(offset, "OFFSET")?, Some(self.const_usize(limit, "LIMIT")?))
            }
        })
    }

    /// ORDER BY over a set operation: output names or positions only.
    fn order_by_output(
        &mut self,
        plan: LogicalPlan,
        ob: &ast::OrderBy,
        skip: usize,
        fetch: Option<usize>,
    ) -> Result<LogicalPlan> {
        let out = plan.output();
        let scope = Scope {
            cols: out.iter().map(|c| ScopeCol { qualifier: None, info: c.clone(), hidden: false }).collect(),
            table: None,
        };
        let items = match &ob.kind {
            ast::OrderByKind::Expressions(v) => v,
            ast::OrderByKind::All(_) => {
                return Err(Error::NotImplemented { feature: "ORDER BY ALL".into(), location: None });
            }
        };
        let mut keys = Vec::new();
        for item in items {
            let expr = match select::position(&item.expr) {
                Some(k) if k >= 1 && k <= out.len() => out[k - 1].expr(),
                Some(k) => {
                    return Err(Error::Bind {
                        message: format!("ORDER BY position {k} is out of range"),
                        span: span_of(&item.expr),
                    });
                }
                None => {
                    let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: "ORDER BY" };
                    self.bind_expr(&item.expr, &ctx)?
                }
            };
            keys.push(select::sort_key(expr, item)?);
        }
        Ok(LogicalPlan::Sort { input: Box::new(plan), keys, fetch: fetch.map(|f| f + skip) })
    }

    fn bind_set_expr(&mut self, body: &SetExpr) -> Result<LogicalPlan> {
        match body {
            SetExpr::Select(s) => self.bind_select(s, None, 0, None),
            SetExpr::Query(q) => self.bind_query(q),
            SetExpr::SetOperation { left, op: SetOperator::Union, set_quantifier, right } => {
                let l = self.bind_set_expr(left)?;
                let r = self.bind_set_expr(right)?;
                let plan = self.union(vec![l, r])?;
                match set_quantifier {
                    SetQuantifier::All => Ok(plan),
                    SetQuantifier::Distinct | SetQuantifier::None => Ok(self.distinct(plan)),
                    other => Err(Error::NotImplemented { feature: format!("UNION {other}"), location: None }),
                }
            }
            SetExpr::SetOperation { op, .. } => Err(Error::NotImplemented { feature: format!("{op}"), location: None }),
            SetExpr::Values(v) => {
                let rows: Vec<Vec<Expr>> = v.rows.iter().map(|r| r.content.clone()).collect();
                self.bind_values(&rows)
            }
            other => Err(Error::NotImplemented { feature: format!("`{other}` as a query"), location: None }),
        }
    }

    /// GROUP BY every output column.
    pub(crate) fn distinct(&mut self, plan: LogicalPlan) -> LogicalPlan {
        let out = plan.output();
        let groups = out.iter().map(|c| (c.expr(), self.new_col(c.name.clone(), c.ty.clone(), c.nullable))).collect();
        LogicalPlan::Aggregate { input: Box::new(plan), groups, aggs: Vec::new() }
    }

    fn union(&mut self, inputs: Vec<LogicalPlan>) -> Result<LogicalPlan> {
        let outs: Vec<Vec<ColumnInfo>> = inputs.iter().map(LogicalPlan::output).collect();
        let n = outs[0].len();
        if let Some(bad) = outs.iter().find(|o| o.len() != n) {
            return Err(Error::Bind {
                message: format!("UNION branches have different numbers of columns: {n} and {}", bad.len()),
                span: None,
            });
        }
        let mut types = Vec::new();
        for i in 0..n {
            let t: Vec<DataType> = outs.iter().map(|o| o[i].ty.clone()).collect();
            let ty = functions::conditional::common_type(&t).ok_or_else(|| Error::Bind {
                message: format!(
                    "UNION column {} has incompatible types: {}",
                    i + 1,
                    t.iter().map(functions::type_name).collect::<Vec<_>>().join(", ")
                ),
                span: None,
            })?;
            let ty = if ty == DataType::Null { DataType::Utf8 } else { ty };
            types.push(ty);
        }
        let mut plans = Vec::new();
        for (p, o) in inputs.into_iter().zip(&outs) {
            if o.iter().zip(&types).all(|(c, t)| &c.ty == t) {
                plans.push(p);
                continue;
            }
            let exprs = o
                .iter()
                .zip(&types)
                .map(|(c, t)| Ok((cast_to(c.expr(), t)?, self.new_col(c.name.clone(), t.clone(), c.nullable))))
                .collect::<Result<Vec<_>>>()?;
            plans.push(LogicalPlan::Project { input: Box::new(p), exprs });
        }
        let out = (0..n)
            .map(|i| self.new_col(outs[0][i].name.clone(), types[i].clone(), outs.iter().any(|o| o[i].nullable)))
            .collect();
        Ok(LogicalPlan::Union { inputs: plans, out })
    }

    fn bind_values(&mut self, rows: &[Vec<Expr>]) -> Result<LogicalPlan> {
        let scope = Scope::default();
        let mut bound: Vec<Vec<BExpr>> = Vec::new();
        for row in rows {
            let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: "VALUES" };
            bound.push(row.iter().map(|e| self.bind_expr(e, &ctx)).collect::<Result<_>>()?);
        }
        let n = bound.first().map_or(0, Vec::len);
        if bound.iter().any(|r| r.len() != n) {
            return Err(Error::Bind { message: "VALUES rows have different lengths".into(), span: None });
        }
        let mut cols = Vec::new();
        let mut out = Vec::new();
        for i in 0..n {
            let col: Vec<BExpr> = bound.iter().map(|r| r[i].clone()).collect();
            let (col, ty) = functions::conditional::unify(&self.fn_ctx("values", None), col)?;
            let arrays = col
                .iter()
                .map(|e| match e {
                    BExpr::Literal(a) => Ok(a.clone()),
                    _ => Err(Error::Bind { message: "VALUES must be constants".into(), span: None }),
                })
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let arr = arrow::compute::concat(&refs)?;
            out.push(self.new_col(format!("c{}", i + 1), ty, arr.null_count() > 0));
            cols.push(arr);
        }
        let schema = Arc::new(arrow::datatypes::Schema::new(out.iter().map(ColumnInfo::field).collect::<Vec<_>>()));
        let batch = RecordBatch::try_new_with_options(
            schema,
            cols,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?;
        Ok(LogicalPlan::Values { out, batches: vec![batch] })
    }

    /// Plans and runs an uncorrelated subquery now (IN (SELECT ...), scalar subqueries).
    pub(crate) fn run_subquery(&mut self, q: &Query) -> Result<Vec<RecordBatch>> {
        let plan = self.bind_query(q)?;
        let schema = plan.schema();
        let exec = crate::plan::physical_plan(plan)?;
        let ctx = ExecContext {
            threads: self.opts.threads,
            memory_limit_bytes: self.opts.memory_limit_bytes,
            now: self.opts.now,
            ..ExecContext::default()
        };
        let mut out = vec![RecordBatch::new_empty(schema)];
        for b in crate::plan::run(exec, &ctx)? {
            out.push(b?);
        }
        Ok(out)
    }
}
