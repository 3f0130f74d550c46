//! Binding FROM: streams (`s`, `table(s)`), CTE references, subqueries, `numbers(n)`, and joins
//! (equi-join keys split from the other ON conditions).

use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sqlparser::ast::{self as ast, Expr, TableFactor};

use super::expr::{span_of, with_span};
use super::{Binder, ExprCtx, Scope, ScopeCol};
use crate::error::{Error, Result};
use crate::expr::BExpr;
use crate::functions::{self, compare};
use crate::logical::{ColumnInfo, JoinKind, LogicalPlan, WindowSpec};

impl Binder<'_> {
    /// FROM: one item or several (cross joined).
    pub(crate) fn bind_from(&mut self, from: &[ast::TableWithJoins]) -> Result<(LogicalPlan, Scope)> {
        if from.is_empty() {
            let one = RecordBatch::try_new_with_options(
                Arc::new(arrow::datatypes::Schema::empty()),
                vec![],
                &RecordBatchOptions::new().with_row_count(Some(1)),
            )?;
            return Ok((LogicalPlan::Values { out: vec![], batches: vec![one] }, Scope::default()));
        }
        let mut acc: Option<(LogicalPlan, Scope)> = None;
        for twj in from {
            let mut cur = self.bind_factor(&twj.relation)?;
            for j in &twj.joins {
                let right = self.bind_factor(&j.relation)?;
                cur = self.bind_join(cur, right, &j.join_operator)?;
            }
            acc = Some(match acc {
                None => cur,
                Some(left) => self.bind_join(left, cur, &ast::JoinOperator::CrossJoin(ast::JoinConstraint::None))?,
            });
        }
        acc.ok_or_else(|| Error::Internal { message: "empty FROM".into() })
    }

    fn bind_factor(&mut self, f: &TableFactor) -> Result<(LogicalPlan, Scope)> {
        match f {
            TableFactor::Table { name, alias, args, .. } => {
                let fname = name.to_string();
                let (table_name, bounded) = match args {
                    None => (fname.clone(), false),
                    Some(a) => {
                        let lower = fname.to_ascii_lowercase();
                        match lower.as_str() {
                            "table" => {
                                let inner = match a.args.as_slice() {
                                    [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => e.to_string(),
                                    _ => {
                                        return Err(Error::Bind {
                                            message: "table() takes one stream name".into(),
                                            span: None,
                                        });
                                    }
                                };
                                (inner.trim_matches('`').trim_matches('"').to_string(), true)
                            }
                            "tumble" | "hop" | "session" => return self.window(&lower, a, alias),
                            "dedup" | "changelog" => {
                                return Err(Error::NotImplemented {
                                    feature: format!("the streaming table function {lower}()"),
                                    location: None,
                                });
                            }
                            "numbers" => return self.numbers(a, alias),
                            _ => return Err(functions::unknown_function(&fname, None)),
                        }
                    }
                };
                if args.is_none()
                    && let Some((_, q)) = self.ctes.iter().rev().find(|(n, _)| *n == table_name).cloned()
                {
                    let plan = self.bind_query(&q)?;
                    let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| table_name.clone());
                    return Ok(self.derived(plan, Some(qualifier)));
                }
                self.bind_table(&table_name, alias, bounded)
            }
            TableFactor::TableFunction { expr, alias } => {
                let name = match expr {
                    Expr::Identifier(i) => i.value.clone(),
                    Expr::CompoundIdentifier(p) => p.iter().map(|i| i.value.clone()).collect::<Vec<_>>().join("."),
                    Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        _ => {
                            return Err(Error::Bind {
                                message: "table() takes a stream name".into(),
                                span: span_of(expr),
                            });
                        }
                    },
                    _ => {
                        return Err(Error::Bind { message: "table() takes a stream name".into(), span: span_of(expr) });
                    }
                };
                self.bind_table(&name, alias, true)
            }
            TableFactor::Derived { subquery, alias, lateral, .. } => {
                if *lateral {
                    return Err(Error::NotImplemented { feature: "LATERAL".into(), location: None });
                }
                let plan = self.bind_query(subquery)?;
                Ok(self.derived(plan, alias.as_ref().map(|a| a.name.value.clone())))
            }
            TableFactor::NestedJoin { table_with_joins, alias } => {
                let (plan, scope) = self.bind_from(std::slice::from_ref(table_with_joins))?;
                let scope = match alias {
                    Some(a) => Scope {
                        cols: scope
                            .cols
                            .into_iter()
                            .map(|c| ScopeCol { qualifier: Some(a.name.value.clone()), ..c })
                            .collect(),
                        table: None,
                    },
                    None => scope,
                };
                Ok((plan, scope))
            }
            other => Err(Error::NotImplemented { feature: format!("`{other}` in FROM"), location: None }),
        }
    }

    fn bind_table(
        &mut self,
        table_name: &str,
        alias: &Option<ast::TableAlias>,
        bounded: bool,
    ) -> Result<(LogicalPlan, Scope)> {
        let table_name = table_name.to_string();
        let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| table_name.clone());
        let table = self.catalog.table(&table_name)?;
        let streaming = !bounded && !self.opts.plain_stream_is_table && !table.bounded_only();
        let schema = table.schema();
        let star = table.star_columns();
        let mut cols = Vec::new();
        let mut scope = Scope { cols: Vec::new(), table: Some(table_name.clone()) };
        for f in schema.fields() {
            let info = self.new_col(f.name().clone(), f.data_type().clone(), f.is_nullable());
            scope.cols.push(ScopeCol {
                qualifier: Some(qualifier.clone()),
                info: info.clone(),
                hidden: !star.contains(f.name()),
            });
            cols.push((info, f.name().clone()));
        }
        // SELECT * follows star_columns' order.
        scope.cols.sort_by_key(|c| star.iter().position(|s| *s == c.info.name).unwrap_or(usize::MAX));
        let plan = if streaming {
            LogicalPlan::StreamScan { table, columns: cols }
        } else {
            LogicalPlan::Scan { table, columns: cols, filters: Vec::new(), limit_hint: None }
        };
        Ok((plan, scope))
    }

    /// `tumble(s [, time_col], size)` and `hop(s [, time_col], slide, size)`: the stream (or
    /// `table(s)`) with `window_start` and `window_end` added.
    fn window(
        &mut self,
        func: &str,
        a: &ast::TableFunctionArgs,
        alias: &Option<ast::TableAlias>,
    ) -> Result<(LogicalPlan, Scope)> {
        let usage = match func {
            "tumble" => "tumble(stream [, time_column], size)",
            "session" => "session(stream [, time_column], idle [, max_length])",
            _ => "hop(stream [, time_column], slide, size)",
        };
        let bad = |m: String| Error::Bind { message: format!("{m}; usage: {usage}"), span: None };
        let args: Vec<&Expr> = a
            .args
            .iter()
            .map(|x| match x {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(bad(format!("unexpected argument `{other}`"))),
            })
            .collect::<Result<_>>()?;
        // session(s [, t], idle [, max]): the trailing intervals are counted from the end.
        let is_interval = |e: &Expr| matches!(e, Expr::Interval(_));
        let intervals = match func {
            "tumble" => 1,
            "session" => args.iter().skip(1).rev().take_while(|e| is_interval(e)).count().clamp(1, 2),
            _ => 2,
        };
        if args.len() != intervals + 1 && args.len() != intervals + 2 {
            return Err(bad(format!("{func}() takes {} or {} arguments", intervals + 1, intervals + 2)));
        }
        // The source: a stream name (streaming) or table(s) (historical).
        let (source, bounded) = match args[0] {
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("table") => {
                let inner = match &f.args {
                    ast::FunctionArguments::List(l) if l.args.len() == 1 => l.args[0].to_string(),
                    _ => return Err(bad("table() takes one stream name".into())),
                };
                (inner, true)
            }
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => (args[0].to_string(), false),
            other => return Err(bad(format!("the first argument must be a stream, not `{other}`"))),
        };
        let source = source.trim_matches('`').trim_matches('"').to_string();
        let (input, mut scope) = self.bind_table(&source, alias, bounded)?;
        let time_name = if args.len() == intervals + 2 {
            match args[1] {
                Expr::Identifier(i) => i.value.clone(),
                other => return Err(bad(format!("the time column must be a column name, not `{other}`"))),
            }
        } else {
            "_tp_time".to_string()
        };
        let time = scope.resolve(None, &time_name, None)?.ok_or_else(|| Error::UnknownColumn {
            name: time_name.clone(),
            stream: Some(source.clone()),
            span: None,
        })?;
        let unit_nanos: i128 = match &time.ty {
            DataType::Timestamp(u, _) => match u {
                arrow::datatypes::TimeUnit::Second => 1_000_000_000,
                arrow::datatypes::TimeUnit::Millisecond => 1_000_000,
                arrow::datatypes::TimeUnit::Microsecond => 1_000,
                arrow::datatypes::TimeUnit::Nanosecond => 1,
            },
            other => return Err(bad(format!("the time column `{time_name}` has type {other}, not a datetime"))),
        };
        let mut sizes = Vec::new();
        for e in &args[args.len() - intervals..] {
            let iv = crate::interval::IntervalLiteral::from_expr(e)
                .map_err(|_| bad(format!("`{e}` is not an interval (write 5s, 2m, 1h or INTERVAL 5 SECOND)")))?;
            let nanos = iv.as_nanos().ok_or_else(|| Error::NotImplemented {
                feature: format!("calendar window sizes ({iv})"),
                location: None,
            })?;
            if nanos <= 0 {
                return Err(bad(format!("window interval {iv} must be positive")));
            }
            if nanos % unit_nanos != 0 {
                return Err(bad(format!("window interval {iv} is finer than the precision of `{time_name}`")));
            }
            sizes.push(
                i64::try_from(nanos / unit_nanos).map_err(|_| bad(format!("window interval {iv} is too large")))?,
            );
        }
        let spec = match func {
            "tumble" => WindowSpec::Tumble { size: sizes[0] },
            // Proton: the longest session defaults to five idle gaps.
            "session" => {
                let max = sizes.get(1).copied().unwrap_or(sizes[0].saturating_mul(5));
                if max < sizes[0] {
                    return Err(bad("the longest session must not be shorter than the idle gap".into()));
                }
                WindowSpec::Session { idle: sizes[0], max }
            }
            _ => {
                if sizes[0] > sizes[1] {
                    return Err(bad("the hop slide must not be longer than the window size".into()));
                }
                WindowSpec::Hop { slide: sizes[0], size: sizes[1] }
            }
        };
        let ty = match &time.ty {
            DataType::Timestamp(u, tz) => DataType::Timestamp(*u, tz.clone()),
            t => t.clone(),
        };
        let start = self.new_col("window_start", ty.clone(), false);
        let end = self.new_col("window_end", ty, false);
        let qualifier = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| source.clone());
        for c in [&start, &end] {
            scope.cols.push(ScopeCol { qualifier: Some(qualifier.clone()), info: c.clone(), hidden: false });
        }
        Ok((LogicalPlan::Window { input: Box::new(input), spec, time, start, end }, scope))
    }

    fn numbers(&mut self, a: &ast::TableFunctionArgs, alias: &Option<ast::TableAlias>) -> Result<(LogicalPlan, Scope)> {
        let n = match a.args.as_slice() {
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => self.const_usize(e, "numbers(n)")?,
            _ => return Err(Error::Bind { message: "numbers() takes one count".into(), span: None }),
        };
        if n > 100_000_000 {
            return Err(Error::ResourcesExhausted { message: format!("numbers({n}) is larger than 100000000") });
        }
        let info = self.new_col("number", DataType::UInt64, false);
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![info.field()]));
        let mut batches = Vec::new();
        let mut start = 0u64;
        while (start as usize) < n {
            let end = (start + 65_536).min(n as u64);
            let arr = arrow::array::UInt64Array::from_iter_values(start..end);
            batches.push(RecordBatch::try_new(schema.clone(), vec![Arc::new(arr)])?);
            start = end;
        }
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        }
        let q = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| "numbers".into());
        let scope =
            Scope { cols: vec![ScopeCol { qualifier: Some(q), info: info.clone(), hidden: false }], table: None };
        Ok((LogicalPlan::Values { out: vec![info], batches }, scope))
    }

    /// A subquery's output as a scope named `alias`.
    fn derived(&mut self, plan: LogicalPlan, alias: Option<String>) -> (LogicalPlan, Scope) {
        let cols =
            plan.output().into_iter().map(|info| ScopeCol { qualifier: alias.clone(), info, hidden: false }).collect();
        (plan, Scope { cols, table: None })
    }

    fn bind_join(
        &mut self,
        left: (LogicalPlan, Scope),
        right: (LogicalPlan, Scope),
        op: &ast::JoinOperator,
    ) -> Result<(LogicalPlan, Scope)> {
        use ast::JoinOperator as J;
        let (kind, constraint) = match op {
            J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
            J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
            J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
            J::FullOuter(c) => (JoinKind::Full, c),
            J::CrossJoin(c) => (JoinKind::Cross, c),
            other => {
                return Err(Error::NotImplemented {
                    feature: format!("join `{other:?}`").chars().take(60).collect(),
                    location: None,
                });
            }
        };
        let (lp, ls) = left;
        let (rp, rs) = right;
        let lids: Vec<usize> = lp.output().iter().map(|c| c.id).collect();
        let mut scope = Scope { cols: ls.cols.clone(), table: None };
        scope.cols.extend(rs.cols.iter().cloned());
        let mut on = Vec::new();
        let mut rest = Vec::new();
        match constraint {
            ast::JoinConstraint::None => {}
            ast::JoinConstraint::On(e) => {
                let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: "JOIN ON" };
                // `date_diff_within(i [, left_time, right_time])`: the time bound of a join of two streams.
                let (e, within) = split_within(e);
                for w in within {
                    rest.push(self.bind_within(&w, &ls, &rs, &ctx)?);
                }
                let Some(e) = e else {
                    return self.finish_join(lp, rp, kind, on, rest, scope);
                };
                let e = &e;
                let cond = compare::to_bool(self.bind_expr(e, &ctx)?).map_err(|err| with_span(err, span_of(e)))?;
                for c in cond.conjuncts() {
                    match self.equi_key(&c, &lids)? {
                        Some(pair) => on.push(pair),
                        None => rest.push(c),
                    }
                }
            }
            ast::JoinConstraint::Using(names) => {
                for n in names {
                    let n = n.to_string();
                    let l = ls.resolve(None, &n, None)?;
                    let r = rs.resolve(None, &n, None)?;
                    let (Some(l), Some(r)) = (l, r) else {
                        return Err(Error::UnknownColumn { name: n, stream: None, span: None });
                    };
                    let f = self.fn_ctx("using", None);
                    let (le, re) = compare::coerce_pair(&f, l.expr(), r.expr())?;
                    on.push((le, re));
                    // The right-hand copy is not visible unqualified and not in SELECT *.
                    for c in scope.cols.iter_mut() {
                        if c.info.id == r.id {
                            c.hidden = true;
                        }
                    }
                }
            }
            ast::JoinConstraint::UsingAlias(..) => {
                return Err(Error::NotImplemented { feature: "JOIN USING ... AS".into(), location: None });
            }
            ast::JoinConstraint::Natural => {
                return Err(Error::NotImplemented { feature: "NATURAL JOIN".into(), location: None });
            }
        }
        self.finish_join(lp, rp, kind, on, rest, scope)
    }

    /// `date_diff_within(interval [, left_time, right_time])` as a bound condition: the two
    /// times (default: each side's `_tp_time`) at most `interval` apart. Carries the interval
    /// in milliseconds as its parameter (a streaming join bounds its buffers with it).
    fn bind_within(&mut self, call: &ast::Function, ls: &Scope, rs: &Scope, ctx: &ExprCtx<'_>) -> Result<BExpr> {
        let bad = |m: &str| Error::Bind {
            message: format!("date_diff_within(interval [, left_time, right_time]): {m}"),
            span: None,
        };
        let args: Vec<&Expr> = match &call.args {
            ast::FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                    _ => Err(bad("unexpected argument")),
                })
                .collect::<Result<_>>()?,
            _ => return Err(bad("missing arguments")),
        };
        if args.len() != 1 && args.len() != 3 {
            return Err(bad("takes one or three arguments"));
        }
        let iv = crate::interval::IntervalLiteral::from_expr(args[0])
            .map_err(|_| bad("the first argument is an interval like 10s"))?;
        let ms = iv.as_nanos().filter(|n| *n >= 0).ok_or_else(|| bad("the interval must be fixed and not negative"))?
            / 1_000_000;
        let (l, r) = if args.len() == 3 {
            (self.bind_expr(args[1], ctx)?, self.bind_expr(args[2], ctx)?)
        } else {
            let l = ls.resolve(None, "_tp_time", None)?.ok_or_else(|| bad("the left side has no _tp_time"))?;
            let r = rs.resolve(None, "_tp_time", None)?.ok_or_else(|| bad("the right side has no _tp_time"))?;
            (l.expr(), r.expr())
        };
        crate::functions::datetime::within(ms as i64, l, r)
    }

    fn finish_join(
        &mut self,
        lp: LogicalPlan,
        rp: LogicalPlan,
        kind: JoinKind,
        on: Vec<(BExpr, BExpr)>,
        mut rest: Vec<BExpr>,
        mut scope: Scope,
    ) -> Result<(LogicalPlan, Scope)> {
        let lids: Vec<usize> = lp.output().iter().map(|c| c.id).collect();
        let kind = if kind == JoinKind::Cross && !(on.is_empty() && rest.is_empty()) { JoinKind::Inner } else { kind };
        let filter = match rest.len() {
            0 => None,
            1 => rest.pop(),
            _ => Some(BExpr::And(rest)),
        };
        if on.is_empty() && kind != JoinKind::Cross && kind != JoinKind::Inner {
            return Err(Error::NotImplemented {
                feature: "outer joins without an equality condition between the two sides".into(),
                location: None,
            });
        }
        // Outer joins make the other side's columns nullable.
        let lnull = matches!(kind, JoinKind::Right | JoinKind::Full);
        let rnull = matches!(kind, JoinKind::Left | JoinKind::Full);
        let mut out = Vec::new();
        for c in lp.output() {
            out.push(ColumnInfo { nullable: c.nullable || lnull, ..c });
        }
        for c in rp.output() {
            out.push(ColumnInfo { nullable: c.nullable || rnull, ..c });
        }
        for c in scope.cols.iter_mut() {
            let is_left = lids.contains(&c.info.id);
            if (is_left && lnull) || (!is_left && rnull) {
                c.info.nullable = true;
            }
        }
        let (kind, plan) = if on.is_empty() && kind == JoinKind::Inner {
            // No equi keys: a cross join with a filter on top.
            let join = LogicalPlan::Join {
                left: Box::new(lp),
                right: Box::new(rp),
                kind: JoinKind::Cross,
                on,
                filter: None,
                out,
            };
            let plan = match filter {
                Some(f) => LogicalPlan::Filter { input: Box::new(join), predicate: f },
                None => join,
            };
            (JoinKind::Cross, plan)
        } else {
            (kind, LogicalPlan::Join { left: Box::new(lp), right: Box::new(rp), kind, on, filter, out })
        };
        let _ = kind;
        Ok((plan, scope))
    }

    /// `l = r` with one side only over the left input and the other only over the right.
    fn equi_key(&mut self, c: &BExpr, lids: &[usize]) -> Result<Option<(BExpr, BExpr)>> {
        let BExpr::Call { func, args, .. } = c else { return Ok(None) };
        if func.name.as_ref() != "equals" || args.len() != 2 {
            return Ok(None);
        }
        let side = |e: &BExpr| {
            let mut v = Vec::new();
            e.columns(&mut v);
            if v.is_empty() {
                None
            } else if v.iter().all(|id| lids.contains(id)) {
                Some(true)
            } else if v.iter().all(|id| !lids.contains(id)) {
                Some(false)
            } else {
                None
            }
        };
        Ok(match (side(&args[0]), side(&args[1])) {
            (Some(true), Some(false)) => Some((args[0].clone(), args[1].clone())),
            (Some(false), Some(true)) => Some((args[1].clone(), args[0].clone())),
            _ => None,
        })
    }
}

/// Splits the `date_diff_within(...)` conjuncts out of a JOIN ON condition.
fn split_within(e: &Expr) -> (Option<Expr>, Vec<ast::Function>) {
    fn walk(e: &Expr, rest: &mut Vec<Expr>, within: &mut Vec<ast::Function>) {
        match e {
            Expr::BinaryOp { left, op: ast::BinaryOperator::And, right } => {
                walk(left, rest, within);
                walk(right, rest, within);
            }
            Expr::Nested(inner) => walk(inner, rest, within),
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("date_diff_within") => within.push(f.clone()),
            other => rest.push(other.clone()),
        }
    }
    let (mut rest, mut within) = (Vec::new(), Vec::new());
    walk(e, &mut rest, &mut within);
    if within.is_empty() {
        return (Some(e.clone()), within);
    }
    let joined = rest.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::And,
        right: Box::new(b),
    });
    (joined, within)
}
