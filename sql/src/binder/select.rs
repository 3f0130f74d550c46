//! Binding one SELECT: FROM, WHERE, GROUP BY (expressions, positions, aliases), aggregates,
//! HAVING, the select list, DISTINCT, ORDER BY (aliases, positions, expressions not selected),
//! LIMIT/OFFSET.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use sqlparser::ast::{self as ast, Expr, GroupByExpr, SelectItem};

use super::expr::{span_of, with_span};
use super::{AggCollector, Binder, ExprCtx, Scope};
use crate::error::{Error, Result};
use crate::expr::BExpr;
use crate::functions::compare;
use crate::logical::{ColumnInfo, LogicalPlan, SortKey};

/// `ORDER BY 2` / `GROUP BY 1`: the 1-based position, if `e` is an integer literal.
pub(crate) fn position(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A sort key with ClickHouse's default of NULLs last.
pub(crate) fn sort_key(expr: BExpr, item: &ast::OrderByExpr) -> Result<SortKey> {
    if item.with_fill.is_some() {
        return Err(Error::NotImplemented { feature: "ORDER BY ... WITH FILL".into(), location: None });
    }
    let desc = matches!(item.options.sort, Some(ast::OrderBySort::Desc));
    if matches!(item.options.sort, Some(ast::OrderBySort::Using(_))) {
        return Err(Error::NotImplemented { feature: "ORDER BY ... USING".into(), location: None });
    }
    Ok(SortKey { expr, desc, nulls_first: item.options.nulls_first.unwrap_or(false) })
}

/// The output name of an unaliased select item.
fn display_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()).unwrap_or_default(),
        other => other.to_string(),
    }
}

impl Binder<'_> {
    pub(crate) fn bind_select(
        &mut self,
        s: &ast::Select,
        order_by: Option<&ast::OrderBy>,
        skip: usize,
        fetch: Option<usize>,
    ) -> Result<LogicalPlan> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.qualify.is_some()
            || !s.named_window.is_empty()
        {
            return Err(Error::NotImplemented {
                feature: "TOP, INTO, LATERAL VIEW, QUALIFY or WINDOW".into(),
                location: None,
            });
        }
        if !s.cluster_by.is_empty() || !s.distribute_by.is_empty() || !s.sort_by.is_empty() || !s.connect_by.is_empty()
        {
            return Err(Error::NotImplemented {
                feature: "CLUSTER/DISTRIBUTE/SORT BY, CONNECT BY".into(),
                location: None,
            });
        }
        let (mut plan, scope) = self.bind_from(&s.from)?;
        // Select aliases, usable in every clause (ClickHouse).
        let mut aliases: HashMap<String, Expr> = HashMap::new();
        for item in &s.projection {
            if let SelectItem::ExprWithAlias { expr, alias } = item {
                aliases.insert(alias.value.clone(), expr.clone());
            }
        }
        // WHERE (and PREWHERE, same meaning here).
        for (clause, cond) in [("PREWHERE", &s.prewhere), ("WHERE", &s.selection)] {
            if let Some(w) = cond {
                let ctx = ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: None, clause };
                let p = self.bind_expr(w, &ctx)?;
                let p = compare::to_bool(p).map_err(|e| with_span(e, span_of(w)))?;
                plan = LogicalPlan::Filter { input: Box::new(plan), predicate: p };
            }
        }
        let collector = RefCell::new(AggCollector { input: scope.clone(), calls: Vec::new() });
        // The select list.
        let mut items: Vec<(BExpr, String, Option<Expr>)> = Vec::new();
        for item in &s.projection {
            match item {
                SelectItem::Wildcard(opts) => {
                    if opts.opt_exclude.is_some()
                        || opts.opt_except.is_some()
                        || opts.opt_replace.is_some()
                        || opts.opt_rename.is_some()
                    {
                        return Err(Error::NotImplemented {
                            feature: "SELECT * EXCEPT/REPLACE/RENAME".into(),
                            location: None,
                        });
                    }
                    let n = items.len();
                    for c in scope.cols.iter().filter(|c| !c.hidden) {
                        items.push((c.info.expr(), c.info.name.clone(), None));
                    }
                    if items.len() == n && !scope.cols.is_empty() {
                        return Err(Error::Bind { message: "SELECT * has no columns".into(), span: None });
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => n.to_string(),
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let cols: Vec<_> =
                        scope.cols.iter().filter(|c| !c.hidden && c.qualifier.as_deref() == Some(q.as_str())).collect();
                    if cols.is_empty() {
                        return Err(Error::UnknownStream { name: q });
                    }
                    for c in cols {
                        items.push((c.info.expr(), c.info.name.clone(), None));
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let ctx =
                        ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: Some(&collector), clause: "SELECT" };
                    items.push((self.bind_expr(e, &ctx)?, display_name(e), Some(e.clone())));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let ctx =
                        ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: Some(&collector), clause: "SELECT" };
                    self.expanding.push(alias.value.clone());
                    let b = self.bind_expr(expr, &ctx);
                    self.expanding.pop();
                    items.push((b?, alias.value.clone(), Some(expr.clone())));
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(Error::NotImplemented { feature: "multiple aliases".into(), location: None });
                }
            }
        }
        // GROUP BY.
        let mut groups: Vec<BExpr> = Vec::new();
        let mut group_all = false;
        match &s.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(Error::NotImplemented {
                        feature: "GROUP BY ... WITH ROLLUP/CUBE/TOTALS".into(),
                        location: None,
                    });
                }
                for g in exprs {
                    let b = match position(g) {
                        Some(k) => match items.get(k.wrapping_sub(1)) {
                            Some((e, _, _)) => e.clone(),
                            None => {
                                return Err(Error::Bind {
                                    message: format!("GROUP BY position {k} is out of range"),
                                    span: span_of(g),
                                });
                            }
                        },
                        None => {
                            let ctx =
                                ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: None, clause: "GROUP BY" };
                            self.bind_expr(g, &ctx)?
                        }
                    };
                    if !groups.contains(&b) {
                        groups.push(b);
                    }
                }
            }
            GroupByExpr::All(_) => group_all = true,
        }
        let agg_ids: HashSet<usize> = collector.borrow().calls.iter().map(|(_, c)| c.id).collect();
        if group_all {
            for (e, _, _) in &items {
                let mut cols = Vec::new();
                e.columns(&mut cols);
                if !cols.iter().any(|c| agg_ids.contains(c)) && !groups.contains(e) {
                    groups.push(e.clone());
                }
            }
        }
        // HAVING.
        let having = match &s.having {
            Some(h) => {
                let ctx = ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: Some(&collector), clause: "HAVING" };
                Some(compare::to_bool(self.bind_expr(h, &ctx)?).map_err(|e| with_span(e, span_of(h)))?)
            }
            None => None,
        };
        // ORDER BY: output columns by alias/name/position, else an expression.
        enum Key {
            Item(usize),
            Expr(BExpr),
        }
        let mut order: Vec<(Key, &ast::OrderByExpr)> = Vec::new();
        if let Some(ob) = order_by {
            let list = match &ob.kind {
                ast::OrderByKind::Expressions(v) => v,
                ast::OrderByKind::All(_) => {
                    return Err(Error::NotImplemented { feature: "ORDER BY ALL".into(), location: None });
                }
            };
            for o in list {
                if let Some(k) = position(&o.expr) {
                    if k == 0 || k > items.len() {
                        return Err(Error::Bind {
                            message: format!("ORDER BY position {k} is out of range"),
                            span: span_of(&o.expr),
                        });
                    }
                    order.push((Key::Item(k - 1), o));
                    continue;
                }
                if let Expr::Identifier(id) = &o.expr
                    && let Some(i) = items.iter().position(|(_, n, src)| *n == id.value && src.is_some())
                {
                    order.push((Key::Item(i), o));
                    continue;
                }
                let ctx =
                    ExprCtx { scope: &scope, aliases: Some(&aliases), aggs: Some(&collector), clause: "ORDER BY" };
                let b = self.bind_expr(&o.expr, &ctx)?;
                match items.iter().position(|(e, _, _)| *e == b) {
                    Some(i) => order.push((Key::Item(i), o)),
                    None => order.push((Key::Expr(b), o)),
                }
            }
        }
        let collector = collector.into_inner();
        let aggregate = !groups.is_empty() || !collector.calls.is_empty() || having.is_some();
        let mut items: Vec<(BExpr, String)> = items.into_iter().map(|(e, n, _)| (e, n)).collect();
        let mut order: Vec<(Key, &ast::OrderByExpr)> = order;
        let mut having = having;
        if aggregate {
            let group_cols: Vec<(BExpr, ColumnInfo)> = groups
                .iter()
                .map(|g| {
                    let name =
                        items.iter().find(|(e, _)| e == g).map(|(_, n)| n.clone()).unwrap_or_else(|| g.to_string());
                    (g.clone(), self.new_col(name, g.data_type(), g.nullable()))
                })
                .collect();
            let agg_ids: HashSet<usize> = collector.calls.iter().map(|(_, c)| c.id).collect();
            let rewrite = |e: &BExpr| -> Result<BExpr> {
                e.rewrite(&mut |x| {
                    if let Some((_, c)) = group_cols.iter().find(|(g, _)| g == x) {
                        return Ok(Some(c.expr()));
                    }
                    if let BExpr::Column { id, name, .. } = x
                        && !agg_ids.contains(id)
                    {
                        return Err(Error::Bind {
                            message: format!(
                                "column `{name}` must appear in GROUP BY or be used in an aggregate function"
                            ),
                            span: None,
                        });
                    }
                    Ok(None)
                })
            };
            for (e, _) in items.iter_mut() {
                *e = rewrite(e)?;
            }
            if let Some(h) = having.as_mut() {
                *h = rewrite(h)?;
            }
            for (k, _) in order.iter_mut() {
                if let Key::Expr(e) = k {
                    *e = rewrite(e)?;
                }
            }
            plan = LogicalPlan::Aggregate { input: Box::new(plan), groups: group_cols, aggs: collector.calls };
            if let Some(h) = having {
                plan = LogicalPlan::Filter { input: Box::new(plan), predicate: h };
            }
        }
        // Projection: the select list plus hidden ORDER BY expressions.
        let mut exprs: Vec<(BExpr, ColumnInfo)> = Vec::new();
        for (e, n) in &items {
            let c = self.new_col(n.clone(), e.data_type(), e.nullable());
            exprs.push((e.clone(), c));
        }
        let visible = exprs.len();
        let mut keys = Vec::new();
        for (k, o) in order {
            let col = match k {
                Key::Item(i) => exprs[i].1.clone(),
                Key::Expr(e) => {
                    let c = self.new_col(format!("__order_{}", exprs.len()), e.data_type(), e.nullable());
                    exprs.push((e, c.clone()));
                    c
                }
            };
            keys.push(sort_key(col.expr(), o)?);
        }
        let hidden = exprs.len() > visible;
        let out: Vec<ColumnInfo> = exprs[..visible].iter().map(|(_, c)| c.clone()).collect();
        plan = LogicalPlan::Project { input: Box::new(plan), exprs };
        match &s.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                if hidden {
                    return Err(Error::Bind {
                        message: "with SELECT DISTINCT, ORDER BY expressions must appear in the select list".into(),
                        span: None,
                    });
                }
                // Keep the projection's column ids so ORDER BY keys still resolve.
                let groups = out.iter().map(|c| (c.expr(), c.clone())).collect();
                let inner_exprs = match plan {
                    LogicalPlan::Project { input, exprs } => {
                        let renamed: Vec<(BExpr, ColumnInfo)> = exprs
                            .into_iter()
                            .map(|(e, c)| {
                                let fresh = self.new_col(c.name.clone(), c.ty.clone(), c.nullable);
                                (e, fresh)
                            })
                            .collect();
                        let groups: Vec<(BExpr, ColumnInfo)> =
                            renamed.iter().zip(out.iter()).map(|((_, fresh), c)| (fresh.expr(), c.clone())).collect();
                        let _ = &groups;
                        (LogicalPlan::Project { input, exprs: renamed }, groups)
                    }
                    other => (other, groups),
                };
                plan =
                    LogicalPlan::Aggregate { input: Box::new(inner_exprs.0), groups: inner_exprs.1, aggs: Vec::new() };
            }
            Some(ast::Distinct::On(_)) => {
                return Err(Error::NotImplemented { feature: "DISTINCT ON".into(), location: None });
            }
        }
        if !keys.is_empty() {
            plan = LogicalPlan::Sort { input: Box::new(plan), keys, fetch: fetch.map(|f| f + skip) };
        }
        if skip > 0 || fetch.is_some() {
            plan = LogicalPlan::Limit { input: Box::new(plan), skip, fetch };
        }
        if hidden {
            let exprs =
                out.iter().map(|c| (c.expr(), self.new_col(c.name.clone(), c.ty.clone(), c.nullable))).collect();
            plan = LogicalPlan::Project { input: Box::new(plan), exprs };
        }
        let _ = Scope::default();
        Ok(plan)
    }
}
