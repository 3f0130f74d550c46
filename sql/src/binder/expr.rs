//! Binding sqlparser expressions to typed [`BExpr`]s: name resolution (columns, select aliases),
//! literals, operators, function calls (scalar and aggregate), CASE, IN, LIKE, casts.

use std::cell::RefCell;
use std::collections::HashMap;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use sqlparser::ast::{
    self as ast, BinaryOperator, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Spanned,
    UnaryOperator, Value as AstValue,
};

use super::{AggCollector, Binder, Scope};
use crate::aggregate;
use crate::error::{Error, Result, Span};
use crate::expr::{BExpr, is_null_fn, not_fn};
use crate::functions::{self, FnCtx, cast_to, compare, conditional, math};
use crate::interval::IntervalLiteral;
use crate::scalar::ScalarValue;
use crate::types::SqlType;

/// What an expression may refer to.
pub(crate) struct ExprCtx<'s> {
    /// Columns in scope.
    pub scope: &'s Scope,
    /// Select-list aliases (ClickHouse lets every clause use them).
    pub aliases: Option<&'s HashMap<String, Expr>>,
    /// Where aggregate calls go; None where aggregates are not allowed.
    pub aggs: Option<&'s RefCell<AggCollector>>,
    /// The clause, for messages (`WHERE`, `GROUP BY`, ...).
    pub clause: &'static str,
}

pub(crate) fn span_of(e: &Expr) -> Option<Span> {
    let s: Span = e.span().into();
    s.start.is_known().then_some(s)
}

fn not_supported(what: impl Into<String>, e: &Expr) -> Error {
    Error::NotImplemented { feature: what.into(), location: span_of(e).map(|s| s.start) }
}

/// Parses a numeric literal as ClickHouse types it (integers, then floats).
pub(crate) fn number_literal(s: &str) -> Option<ScalarValue> {
    let t = s.replace('_', "");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(ScalarValue::UInt64);
    }
    if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        return u64::from_str_radix(b, 2).ok().map(ScalarValue::UInt64);
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(ScalarValue::Int64(i));
    }
    if let Ok(u) = t.parse::<u64>() {
        return Some(ScalarValue::UInt64(u));
    }
    t.parse::<f64>().ok().map(ScalarValue::Float64)
}

impl Binder<'_> {
    pub(crate) fn fn_ctx<'n>(&self, name: &'n str, span: Option<Span>) -> FnCtx<'n> {
        FnCtx { name, span, now: self.opts.now }
    }

    /// Binds `e` in `ctx`.
    pub(crate) fn bind_expr(&mut self, e: &Expr, ctx: &ExprCtx<'_>) -> Result<BExpr> {
        let span = span_of(e);
        match e {
            Expr::Identifier(id) => self.bind_name(None, &id.value, e, ctx),
            Expr::CompoundIdentifier(parts) => {
                let n = parts.len();
                if n < 2 {
                    return Err(Error::Internal { message: "empty compound identifier".into() });
                }
                self.bind_name(Some(&parts[n - 2].value), &parts[n - 1].value, e, ctx)
            }
            Expr::Value(v) => literal(&v.value, e),
            Expr::Nested(inner) => self.bind_expr(inner, ctx),
            Expr::TypedString(ts) => {
                let ty = SqlType::from_data_type(&ts.data_type)?;
                let s = match &ts.value.value {
                    AstValue::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                cast_to(BExpr::lit(ScalarValue::Utf8(s)), &ty.to_arrow())
            }
            Expr::Cast { kind, expr, data_type, .. } => {
                let ty = SqlType::from_data_type(data_type)?;
                let inner = self.bind_expr(expr, ctx)?;
                let to = ty.to_arrow();
                if !functions::cast::can_cast(&inner.data_type(), &to) {
                    return Err(Error::Bind {
                        message: format!("cannot cast {} to {ty}", functions::type_name(&inner.data_type())),
                        span,
                    });
                }
                if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                    return Err(not_supported("TRY_CAST", e));
                }
                cast_to(inner, &to)
            }
            Expr::UnaryOp { op, expr } => {
                let inner = self.bind_expr(expr, ctx)?;
                match op {
                    UnaryOperator::Minus => math::negate(inner),
                    UnaryOperator::Plus => Ok(inner),
                    UnaryOperator::Not => {
                        let b = compare::to_bool(inner).map_err(|err| with_span(err, span))?;
                        let nullable = b.nullable();
                        functions::make_call(not_fn(), vec![b], DataType::Boolean, nullable)
                    }
                    other => Err(not_supported(format!("unary operator {other}"), e)),
                }
            }
            Expr::BinaryOp { left, op, right } => self.bind_binary(left, op, right, e, ctx),
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let inner = self.bind_expr(x, ctx)?;
                functions::make_call(is_null_fn(matches!(e, Expr::IsNotNull(_))), vec![inner], DataType::Boolean, false)
            }
            Expr::IsTrue(x) | Expr::IsFalse(x) | Expr::IsNotTrue(x) | Expr::IsNotFalse(x) => {
                let inner = compare::to_bool(self.bind_expr(x, ctx)?)?;
                let want = matches!(e, Expr::IsTrue(_) | Expr::IsNotFalse(_));
                let f = self.fn_ctx("equals", span);
                let eq = compare::compare(&f, compare::CmpOp::Eq, inner, BExpr::lit(ScalarValue::Boolean(want)))?;
                if matches!(e, Expr::IsNotTrue(_) | Expr::IsNotFalse(_)) {
                    // NULL IS NOT TRUE is true.
                    let nullable = false;
                    let coalesced = functions::lookup("coalesce")
                        .ok_or_else(|| Error::Internal { message: "coalesce".into() })?(
                        &self.fn_ctx("coalesce", span),
                        vec![eq, BExpr::lit(ScalarValue::Boolean(false))],
                    )?;
                    let _ = nullable;
                    return functions::make_call(not_fn(), vec![coalesced], DataType::Boolean, false);
                }
                functions::lookup("coalesce").ok_or_else(|| Error::Internal { message: "coalesce".into() })?(
                    &self.fn_ctx("coalesce", span),
                    vec![eq, BExpr::lit(ScalarValue::Boolean(false))],
                )
            }
            Expr::Between { expr, negated, low, high } => {
                let x = self.bind_expr(expr, ctx)?;
                let lo = self.bind_expr(low, ctx)?;
                let hi = self.bind_expr(high, ctx)?;
                let f = self.fn_ctx("between", span);
                if *negated {
                    let a = compare::compare(&f, compare::CmpOp::Lt, x.clone(), lo)?;
                    let b = compare::compare(&f, compare::CmpOp::Gt, x, hi)?;
                    functions::fold(BExpr::Or(vec![a, b]))
                } else {
                    let a = compare::compare(&f, compare::CmpOp::GtEq, x.clone(), lo)?;
                    let b = compare::compare(&f, compare::CmpOp::LtEq, x, hi)?;
                    functions::fold(BExpr::And(vec![a, b]))
                }
            }
            Expr::Like { negated, expr, pattern, escape_char, any, .. }
            | Expr::ILike { negated, expr, pattern, escape_char, any, .. } => {
                if escape_char.is_some() || *any {
                    return Err(not_supported("LIKE ... ESCAPE / LIKE ANY", e));
                }
                let x = self.bind_expr(expr, ctx)?;
                let p = self.bind_expr(pattern, ctx)?;
                let f = self.fn_ctx("like", span);
                for (i, a) in [&x, &p].iter().enumerate() {
                    if !functions::is_string(&a.data_type()) {
                        return Err(functions::arg_error(
                            &f,
                            format!(
                                "argument {} must be a string, got {}",
                                i + 1,
                                functions::type_name(&a.data_type())
                            ),
                        ));
                    }
                }
                compare::like(vec![x, p], *negated, matches!(e, Expr::ILike { .. }))
            }
            Expr::In { expr, target, negated, .. } => self.bind_in(expr, target, *negated, e, ctx),
            Expr::Case { operand, conditions, else_result, .. } => {
                let operand = match operand {
                    Some(o) => Some(self.bind_expr(o, ctx)?),
                    None => None,
                };
                let f = self.fn_ctx("case", span);
                let mut conds = Vec::new();
                let mut values = Vec::new();
                for w in conditions {
                    let c = self.bind_expr(&w.condition, ctx)?;
                    let c = match &operand {
                        Some(o) => compare::compare(&f, compare::CmpOp::Eq, o.clone(), c)?,
                        None => compare::to_bool(c).map_err(|err| with_span(err, span_of(&w.condition)))?,
                    };
                    conds.push(c);
                    values.push(self.bind_expr(&w.result, ctx)?);
                }
                let has_else = else_result.is_some();
                if let Some(x) = else_result {
                    values.push(self.bind_expr(x, ctx)?);
                }
                let (mut values, ty) = conditional::unify(&f, values)?;
                let otherwise = if has_else { values.pop().map(Box::new) } else { None };
                functions::fold(BExpr::Case { whens: conds.into_iter().zip(values).collect(), otherwise, ty })
            }
            Expr::Function(func) => self.bind_function(func, e, ctx),
            Expr::Array(arr) => {
                let items = arr.elem.iter().map(|x| self.bind_expr(x, ctx)).collect::<Result<Vec<_>>>()?;
                functions::array::array(&self.fn_ctx("array", span), items)
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut cur = self.bind_expr(root, ctx)?;
                for a in access_chain {
                    match a {
                        ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => {
                            let i = self.bind_expr(index, ctx)?;
                            cur = functions::array::element(&self.fn_ctx("array_element", span), cur, i)?;
                        }
                        _ => return Err(not_supported("this kind of field access", e)),
                    }
                }
                Ok(cur)
            }
            Expr::Position { expr, r#in } => {
                let needle = self.bind_expr(expr, ctx)?;
                let hay = self.bind_expr(r#in, ctx)?;
                self.call_scalar("position", vec![hay, needle], span)
            }
            Expr::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.bind_expr(expr, ctx)?];
                args.push(match substring_from {
                    Some(f) => self.bind_expr(f, ctx)?,
                    None => BExpr::lit(ScalarValue::Int64(1)),
                });
                if let Some(l) = substring_for {
                    args.push(self.bind_expr(l, ctx)?);
                }
                self.call_scalar("substring", args, span)
            }
            Expr::Trim { expr, trim_where, trim_what, trim_characters } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(not_supported("TRIM of characters other than spaces", e));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "trim_left",
                    Some(ast::TrimWhereField::Trailing) => "trim_right",
                    _ => "trim",
                };
                let x = self.bind_expr(expr, ctx)?;
                self.call_scalar(name, vec![x], span)
            }
            Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => {
                let x = self.bind_expr(expr, ctx)?;
                self.call_scalar(if matches!(e, Expr::Ceil { .. }) { "ceil" } else { "floor" }, vec![x], span)
            }
            Expr::Extract { field, expr, .. } => {
                let name = match field.to_string().to_ascii_uppercase().as_str() {
                    "YEAR" => "to_year",
                    "QUARTER" => "to_quarter",
                    "MONTH" => "to_month",
                    "DAY" => "to_day_of_month",
                    "HOUR" => "to_hour",
                    "MINUTE" => "to_minute",
                    "SECOND" => "to_second",
                    "DOW" => "to_day_of_week",
                    "DOY" => "to_day_of_year",
                    other => return Err(not_supported(format!("EXTRACT({other})"), e)),
                };
                let x = self.bind_expr(expr, ctx)?;
                self.call_scalar(name, vec![x], span)
            }
            Expr::Subquery(q) => {
                let batches = self.run_subquery(q)?;
                let col = single_column(&batches, span)?;
                match col.len() {
                    0 => Ok(BExpr::Literal(arrow::array::new_null_array(col.data_type(), 1))),
                    1 => Ok(BExpr::Literal(col)),
                    n => Err(Error::InvalidValue { message: format!("scalar subquery returned {n} rows") }),
                }
            }
            Expr::Interval(_) => Err(Error::Bind {
                message: "an interval can only be added to or subtracted from a date or datetime".into(),
                span,
            }),
            Expr::Exists { .. } => Err(not_supported("EXISTS subqueries", e)),
            Expr::Tuple(_) => Err(not_supported("tuples", e)),
            Expr::AtTimeZone { .. } => Err(not_supported("AT TIME ZONE", e)),
            other => Err(not_supported(format!("the expression `{other}`"), e)),
        }
    }

    /// Calls scalar function `name` with bound arguments.
    pub(crate) fn call_scalar(&self, name: &str, args: Vec<BExpr>, span: Option<Span>) -> Result<BExpr> {
        let f = functions::lookup(name).ok_or_else(|| functions::unknown_function(name, span))?;
        f(&self.fn_ctx(name, span), args).map_err(|e| with_span(e, span))
    }

    fn bind_name(&mut self, qual: Option<&str>, name: &str, e: &Expr, ctx: &ExprCtx<'_>) -> Result<BExpr> {
        if qual.is_none()
            && let Some(aliases) = ctx.aliases
            && let Some(target) = aliases.get(name)
            && !self.expanding.iter().any(|n| n == name)
            && !matches!(target, Expr::Identifier(i) if i.value == name)
        {
            self.expanding.push(name.to_string());
            let r = self.bind_expr(target, ctx);
            self.expanding.pop();
            return r;
        }
        match ctx.scope.resolve(qual, name, span_of(e))? {
            Some(c) => Ok(c.expr()),
            None => {
                let full = match qual {
                    Some(q) => format!("{q}.{name}"),
                    None => name.to_string(),
                };
                Err(Error::UnknownColumn { name: full, stream: ctx.scope.single_table(), span: span_of(e) })
            }
        }
    }

    fn bind_binary(
        &mut self,
        left: &Expr,
        op: &BinaryOperator,
        right: &Expr,
        e: &Expr,
        ctx: &ExprCtx<'_>,
    ) -> Result<BExpr> {
        let span = span_of(e);
        // date +/- INTERVAL n unit
        if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) {
            let (t, iv) = match (left, right) {
                (l, Expr::Interval(_)) => (Some(l), Some(right)),
                (Expr::Interval(_), r) if *op == BinaryOperator::Plus => (Some(r), Some(left)),
                _ => (None, None),
            };
            if let (Some(t), Some(Expr::Interval(iv_ast))) = (t, iv) {
                let base = self.bind_expr(t, ctx)?;
                let lit = IntervalLiteral::from_expr(&Expr::Interval(iv_ast.clone()));
                let (n, unit) = match lit {
                    Ok(l) => (BExpr::lit(ScalarValue::Int64(l.value)), l.unit),
                    Err(_) => {
                        let unit = iv_ast
                            .leading_field
                            .as_ref()
                            .and_then(crate::interval::IntervalUnit::from_field)
                            .ok_or_else(|| not_supported("this interval", e))?;
                        (self.bind_expr(&iv_ast.value, ctx)?, unit)
                    }
                };
                return functions::datetime::add_interval(
                    &self.fn_ctx("date_add", span),
                    base,
                    n,
                    unit,
                    *op == BinaryOperator::Minus,
                )
                .map_err(|err| with_span(err, span));
            }
        }
        let l = self.bind_expr(left, ctx)?;
        let r = self.bind_expr(right, ctx)?;
        let f = self.fn_ctx(binary_name(op), span);
        let cmp = |op| compare::compare(&f, op, l.clone(), r.clone());
        match op {
            BinaryOperator::Plus => math::arith(&f, math::ArithOp::Plus, l, r),
            BinaryOperator::Minus => math::arith(&f, math::ArithOp::Minus, l, r),
            BinaryOperator::Multiply => math::arith(&f, math::ArithOp::Multiply, l, r),
            BinaryOperator::Divide => math::arith(&f, math::ArithOp::Divide, l, r),
            BinaryOperator::Modulo => math::arith(&f, math::ArithOp::Modulo, l, r),
            BinaryOperator::MyIntegerDivide | BinaryOperator::DuckIntegerDivide => {
                math::arith(&f, math::ArithOp::IntDiv, l, r)
            }
            BinaryOperator::Eq => cmp(compare::CmpOp::Eq),
            BinaryOperator::NotEq => cmp(compare::CmpOp::NotEq),
            BinaryOperator::Lt => cmp(compare::CmpOp::Lt),
            BinaryOperator::LtEq => cmp(compare::CmpOp::LtEq),
            BinaryOperator::Gt => cmp(compare::CmpOp::Gt),
            BinaryOperator::GtEq => cmp(compare::CmpOp::GtEq),
            BinaryOperator::And | BinaryOperator::Or => {
                let l = compare::to_bool(l).map_err(|err| with_span(err, span_of(left)))?;
                let r = compare::to_bool(r).map_err(|err| with_span(err, span_of(right)))?;
                let mut parts = Vec::new();
                for x in [l, r] {
                    match (op, x) {
                        (BinaryOperator::And, BExpr::And(v)) | (BinaryOperator::Or, BExpr::Or(v)) => parts.extend(v),
                        (_, x) => parts.push(x),
                    }
                }
                functions::fold(if *op == BinaryOperator::And { BExpr::And(parts) } else { BExpr::Or(parts) })
            }
            BinaryOperator::StringConcat => self.call_scalar("concat", vec![l, r], span),
            other => Err(not_supported(format!("operator {other}"), e)),
        }
        .map_err(|err| with_span(err, span))
    }

    fn bind_in(
        &mut self,
        x: &Expr,
        target: &ast::InTarget,
        negated: bool,
        e: &Expr,
        ctx: &ExprCtx<'_>,
    ) -> Result<BExpr> {
        let span = span_of(e);
        let xb = self.bind_expr(x, ctx)?;
        let xt = functions::value_type(&xb.data_type()).clone();
        if xt == DataType::Null {
            return Ok(BExpr::Literal(arrow::array::new_null_array(&DataType::Boolean, 1)));
        }
        let values: ArrayRef = match target {
            ast::InTarget::List(list) => {
                let items = list.iter().map(|i| self.bind_expr(i, ctx)).collect::<Result<Vec<_>>>()?;
                if items.iter().any(|i| !matches!(i, BExpr::Literal(_))) {
                    // Non-constant list: x = a OR x = b ...
                    let f = self.fn_ctx("in", span);
                    let ors = items
                        .into_iter()
                        .map(|i| compare::compare(&f, compare::CmpOp::Eq, xb.clone(), i))
                        .collect::<Result<Vec<_>>>()?;
                    let any = functions::fold(BExpr::Or(ors))?;
                    return if negated {
                        let nullable = any.nullable();
                        functions::make_call(not_fn(), vec![any], DataType::Boolean, nullable)
                    } else {
                        Ok(any)
                    };
                }
                let mut arrays = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let BExpr::Literal(a) = item else { continue };
                    if a.is_null(0) {
                        continue;
                    }
                    let c = functions::cast::cast_array(&a, &xt).map_err(|_| Error::Bind {
                        message: format!(
                            "IN list element {} of type {} cannot be compared with {}",
                            i + 1,
                            functions::type_name(a.data_type()),
                            functions::type_name(&xt)
                        ),
                        span,
                    })?;
                    arrays.push(c);
                }
                if arrays.is_empty() {
                    arrow::array::new_empty_array(&xt)
                } else {
                    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                    arrow::compute::concat(&refs)?
                }
            }
            ast::InTarget::Subquery(q) => {
                let batches = self.run_subquery(q)?;
                let col = single_column(&batches, span)?;
                functions::cast::cast_array(&col, &xt).map_err(|err| with_span(err, span))?
            }
            _ => return Err(not_supported("this IN target", e)),
        };
        compare::in_set(xb, values, negated)
    }

    fn bind_function(&mut self, func: &ast::Function, e: &Expr, ctx: &ExprCtx<'_>) -> Result<BExpr> {
        let span = span_of(e);
        let written = func.name.to_string();
        let name = functions::canonical(&written);
        if func.over.is_some() {
            return Err(not_supported(format!("window function `{written}` (OVER)"), e));
        }
        let (args, star, distinct) = match &func.args {
            FunctionArguments::None => (Vec::new(), false, false),
            FunctionArguments::Subquery(_) => return Err(not_supported("a subquery as a function argument", e)),
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(not_supported(format!("clauses inside `{written}(...)`"), e));
                }
                let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
                let mut star = false;
                let mut exprs = Vec::new();
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => exprs.push(x),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(not_supported(
                                format!("named or qualified-wildcard arguments of `{written}`"),
                                e,
                            ));
                        }
                    }
                }
                (exprs, star, distinct)
            }
        };
        let params: Vec<&Expr> = match &func.parameters {
            FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Ok(x),
                    _ => Err(not_supported("this parameter", e)),
                })
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        if aggregate::is_aggregate(&name) {
            let Some(collector) = ctx.aggs else {
                return Err(Error::Bind {
                    message: format!("aggregate function `{written}` is not allowed in {}", ctx.clause),
                    span,
                });
            };
            let scope_copy = collector.borrow().input.clone();
            let inner =
                ExprCtx { scope: &scope_copy, aliases: ctx.aliases, aggs: None, clause: "an aggregate's arguments" };
            let bound = args.iter().map(|a| self.bind_expr(a, &inner)).collect::<Result<Vec<_>>>()?;
            let params = params
                .iter()
                .map(|p| {
                    self.bind_expr(p, &inner)?.as_literal().ok_or_else(|| Error::Bind {
                        message: format!("parameters of `{written}` must be constants"),
                        span,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let filter = match &func.filter {
                Some(f) => Some(compare::to_bool(self.bind_expr(f, &inner)?)?),
                None => None,
            };
            let call = aggregate::bind(&name, params, bound, distinct, star, filter, span)?;
            let info = collector.borrow_mut().add(call, &written, self);
            return Ok(info.expr());
        }
        if distinct || star || !params.is_empty() || func.filter.is_some() {
            if functions::lookup(&name).is_none() {
                return Err(functions::unknown_function(&written, span));
            }
            return Err(Error::Bind { message: format!("`{written}` is not an aggregate function"), span });
        }
        let bind = functions::lookup(&name).ok_or_else(|| functions::unknown_function(&written, span))?;
        let unit_first = matches!(name.as_str(), "date_add" | "date_sub" | "date_diff" | "date_trunc");
        let bound = args
            .iter()
            .enumerate()
            .map(|(i, a)| match (i, a) {
                // date_add(HOUR, 1, t): the unit may be a bare word.
                (0, Expr::Identifier(id))
                    if unit_first && ctx.scope.resolve(None, &id.value, None).ok().flatten().is_none() =>
                {
                    Ok(BExpr::lit(ScalarValue::Utf8(id.value.clone())))
                }
                _ => self.bind_expr(a, ctx),
            })
            .collect::<Result<Vec<_>>>()?;
        bind(&self.fn_ctx(&name, span), bound).map_err(|err| with_span(err, span))
    }
}

fn binary_name(op: &BinaryOperator) -> &'static str {
    match op {
        BinaryOperator::Plus => "plus",
        BinaryOperator::Minus => "minus",
        BinaryOperator::Multiply => "multiply",
        BinaryOperator::Divide => "divide",
        BinaryOperator::Modulo => "modulo",
        BinaryOperator::Eq => "equals",
        BinaryOperator::NotEq => "not_equals",
        BinaryOperator::Lt => "less",
        BinaryOperator::LtEq => "less_or_equals",
        BinaryOperator::Gt => "greater",
        BinaryOperator::GtEq => "greater_or_equals",
        BinaryOperator::And => "and",
        BinaryOperator::Or => "or",
        _ => "operator",
    }
}

/// Adds a span to a Bind error that has none.
pub(crate) fn with_span(e: Error, span: Option<Span>) -> Error {
    match e {
        Error::Bind { message, span: None } => Error::Bind { message, span },
        Error::UnknownFunction { name, suggestion, span: None } => Error::UnknownFunction { name, suggestion, span },
        e => e,
    }
}

fn literal(v: &AstValue, e: &Expr) -> Result<BExpr> {
    Ok(BExpr::lit(match v {
        AstValue::Number(s, _) => number_literal(s).ok_or_else(|| Error::Parse {
            message: format!("invalid number `{s}`"),
            location: span_of(e).map(|s| s.start).unwrap_or_default(),
        })?,
        AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) | AstValue::EscapedStringLiteral(s) => {
            ScalarValue::Utf8(s.clone())
        }
        AstValue::Boolean(b) => ScalarValue::Boolean(*b),
        AstValue::Null => ScalarValue::Null(DataType::Null),
        other => return Err(not_supported(format!("the literal {other}"), e)),
    }))
}

/// The only column of a subquery's result.
fn single_column(batches: &[arrow::record_batch::RecordBatch], span: Option<Span>) -> Result<ArrayRef> {
    let Some(first) = batches.first() else {
        return Err(Error::Internal { message: "subquery produced no schema".into() });
    };
    if first.num_columns() != 1 {
        return Err(Error::Bind {
            message: format!("subquery must return one column, got {}", first.num_columns()),
            span,
        });
    }
    let cols: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
    Ok(arrow::compute::concat(&cols)?)
}
