//! Comparisons (with ClickHouse-style coercion of literals to the column's type), logic, LIKE,
//! and set membership (`IN`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder};
use arrow::compute::kernels::{cmp, comparison};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};

use super::{
    BindFn, FnCtx, arg_error, arity, cast_to, common_numeric, is_numeric, is_string, is_temporal, make_call, type_name,
    value_type,
};
use crate::error::{Error, Result};
use crate::expr::{BExpr, ScalarFn, Value, binary_datum, not_fn};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("equals", by_name),
    ("not_equals", by_name),
    ("less", by_name),
    ("greater", by_name),
    ("less_or_equals", by_name),
    ("greater_or_equals", by_name),
    ("and", logic),
    ("or", logic),
    ("not", logic),
    ("like", like_fn),
    ("not_like", like_fn),
    ("ilike", like_fn),
    ("not_ilike", like_fn),
];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CmpOp {
    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "equals",
            CmpOp::NotEq => "not_equals",
            CmpOp::Lt => "less",
            CmpOp::LtEq => "less_or_equals",
            CmpOp::Gt => "greater",
            CmpOp::GtEq => "greater_or_equals",
        }
    }

    /// The operator with its sides swapped (`a < b` == `b > a`).
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            o => o,
        }
    }

    /// The operator of a canonical comparison function name.
    pub fn from_name(name: &str) -> Option<CmpOp> {
        Some(match name {
            "equals" => CmpOp::Eq,
            "not_equals" => CmpOp::NotEq,
            "less" => CmpOp::Lt,
            "less_or_equals" => CmpOp::LtEq,
            "greater" => CmpOp::Gt,
            "greater_or_equals" => CmpOp::GtEq,
            _ => return None,
        })
    }
}

fn by_name(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let op = CmpOp::from_name(ctx.name).ok_or_else(|| arg_error(ctx, "unknown comparison"))?;
    let mut it = args.into_iter();
    let (Some(l), Some(r)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    compare(ctx, op, l, r)
}

/// Casts `lit` to `to` if that loses nothing (the value casts back to itself).
fn lossless_literal(lit: &BExpr, to: &DataType) -> Option<BExpr> {
    let v = lit.as_literal()?;
    let c = cast_to(lit.clone(), to).ok()?;
    let back = cast_to(c.clone(), &lit.data_type()).ok()?.as_literal()?;
    (back == v).then_some(c)
}

/// Coerces two operands to a type they can be compared in.
pub fn coerce_pair(ctx: &FnCtx<'_>, l: BExpr, r: BExpr) -> Result<(BExpr, BExpr)> {
    let (lt, rt) = (l.data_type(), r.data_type());
    let (lv, rv) = (value_type(&lt).clone(), value_type(&rt).clone());
    if lv == rv {
        return Ok((l, r));
    }
    if lv == DataType::Null {
        return Ok((cast_to(l, &rv)?, r));
    }
    if rv == DataType::Null {
        return Ok((l, cast_to(r, &lv)?));
    }
    if is_numeric(&lv) && is_numeric(&rv)
        || (lv == DataType::Boolean && is_numeric(&rv))
        || (rv == DataType::Boolean && is_numeric(&lv))
    {
        if matches!(r, BExpr::Literal(_))
            && let Some(c) = lossless_literal(&r, &lv)
        {
            return Ok((l, c));
        }
        if matches!(l, BExpr::Literal(_))
            && let Some(c) = lossless_literal(&l, &rv)
        {
            return Ok((c, r));
        }
        let t = common_numeric(&lv, &rv);
        return Ok((cast_to(l, &t)?, cast_to(r, &t)?));
    }
    if is_string(&lv) && (is_temporal(&rv) || is_numeric(&rv)) {
        return Ok((cast_to(l, &rv)?, r));
    }
    if is_string(&rv) && (is_temporal(&lv) || is_numeric(&lv)) {
        return Ok((l, cast_to(r, &lv)?));
    }
    if is_temporal(&lv) && is_temporal(&rv) {
        let t = match (&lv, &rv) {
            (DataType::Date32, t @ DataType::Timestamp(..)) | (t @ DataType::Timestamp(..), DataType::Date32) => {
                t.clone()
            }
            (DataType::Timestamp(u1, tz), DataType::Timestamp(u2, _)) => {
                let finer = if crate::temporal::ticks_per_second(*u1) >= crate::temporal::ticks_per_second(*u2) {
                    *u1
                } else {
                    *u2
                };
                DataType::Timestamp(finer, tz.clone())
            }
            _ => lv.clone(),
        };
        return Ok((cast_to(l, &t)?, cast_to(r, &t)?));
    }
    if is_string(&lv) && is_string(&rv) {
        return Ok((cast_to(l, &DataType::Utf8)?, cast_to(r, &DataType::Utf8)?));
    }
    Err(arg_error(ctx, format!("cannot compare {} with {}", type_name(&lt), type_name(&rt))))
}

/// `l op r` with coercion.
pub fn compare(ctx: &FnCtx<'_>, op: CmpOp, l: BExpr, r: BExpr) -> Result<BExpr> {
    let (l, r) = coerce_pair(ctx, l, r)?;
    let nullable = l.nullable() || r.nullable();
    make_call(cmp_fn(op), vec![l, r], DataType::Boolean, nullable)
}

/// IEEE comparison of floats (NaN is unequal to everything, as in ClickHouse), vectorised.
fn float_cmp(op: CmpOp, a: &Value, b: &Value) -> Option<Result<Value>> {
    use arrow::buffer::{BooleanBuffer, NullBuffer};
    let (DataType::Float64, DataType::Float64) = (a.data_type(), b.data_type()) else { return None };
    let f = |x: f64, y: f64| match op {
        CmpOp::Eq => x == y,
        CmpOp::NotEq => x != y,
        CmpOp::Lt => x < y,
        CmpOp::LtEq => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::GtEq => x >= y,
    };
    let x = a.array().as_primitive::<arrow::datatypes::Float64Type>();
    let y = b.array().as_primitive::<arrow::datatypes::Float64Type>();
    let (xv, yv) = (x.values(), y.values());
    let out = match (a.is_scalar(), b.is_scalar()) {
        (false, true) => {
            let c = yv[0];
            let bits = BooleanBuffer::collect_bool(xv.len(), |i| f(xv[i], c));
            BooleanArray::new(bits, x.nulls().cloned())
        }
        (true, false) => {
            let c = xv[0];
            let bits = BooleanBuffer::collect_bool(yv.len(), |i| f(c, yv[i]));
            BooleanArray::new(bits, y.nulls().cloned())
        }
        _ if xv.len() == yv.len() => {
            let bits = BooleanBuffer::collect_bool(xv.len(), |i| f(xv[i], yv[i]));
            BooleanArray::new(bits, NullBuffer::union(x.nulls(), y.nulls()))
        }
        _ => return None,
    };
    // A NULL scalar makes everything NULL.
    if (a.is_scalar() && x.is_null(0)) || (b.is_scalar() && y.is_null(0)) {
        return Some(Ok(Value::Array(arrow::array::new_null_array(&DataType::Boolean, out.len()))));
    }
    let v = Arc::new(out) as ArrayRef;
    Some(Ok(if a.is_scalar() && b.is_scalar() { Value::Scalar(v) } else { Value::Array(v) }))
}

/// The kernel of a comparison.
pub fn cmp_fn(op: CmpOp) -> ScalarFn {
    ScalarFn::new(op.name(), move |args, _| {
        if let Some(r) = float_cmp(op, &args[0], &args[1]) {
            return r;
        }
        binary_datum(&args[0], &args[1], |a, b| {
            let r = match op {
                CmpOp::Eq => cmp::eq(a, b),
                CmpOp::NotEq => cmp::neq(a, b),
                CmpOp::Lt => cmp::lt(a, b),
                CmpOp::LtEq => cmp::lt_eq(a, b),
                CmpOp::Gt => cmp::gt(a, b),
                CmpOp::GtEq => cmp::gt_eq(a, b),
            }?;
            Ok(Arc::new(r) as ArrayRef)
        })
    })
}

fn logic(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    for (i, a) in args.iter().enumerate() {
        let t = a.data_type();
        if t != DataType::Boolean && !is_numeric(&t) {
            return Err(arg_error(ctx, format!("argument {} must be boolean, got {}", i + 1, type_name(&t))));
        }
    }
    let args = args.into_iter().map(to_bool).collect::<Result<Vec<_>>>()?;
    match ctx.name {
        "not" => {
            arity(ctx, &args, 1, 1)?;
            let nullable = args[0].nullable();
            make_call(not_fn(), args, DataType::Boolean, nullable)
        }
        "and" => {
            arity(ctx, &args, 2, usize::MAX)?;
            super::fold(BExpr::And(args))
        }
        _ => {
            arity(ctx, &args, 2, usize::MAX)?;
            super::fold(BExpr::Or(args))
        }
    }
}

/// A boolean view of a condition (numbers: non-zero is true).
pub fn to_bool(e: BExpr) -> Result<BExpr> {
    let t = e.data_type();
    if t == DataType::Boolean {
        return Ok(e);
    }
    if t == DataType::Null {
        return cast_to(e, &DataType::Boolean);
    }
    if is_numeric(&t) {
        let zero = cast_to(BExpr::lit(crate::scalar::ScalarValue::Int64(0)), value_type(&t))?;
        let nullable = e.nullable();
        return make_call(cmp_fn(CmpOp::NotEq), vec![e, zero], DataType::Boolean, nullable);
    }
    Err(Error::Bind { message: format!("expected a boolean condition, got {}", type_name(&t)), span: None })
}

fn like_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    super::want_string(ctx, &args, 0)?;
    super::want_string(ctx, &args, 1)?;
    let negated = ctx.name.starts_with("not_");
    let ci = ctx.name.ends_with("ilike");
    like(args, negated, ci)
}

/// `s [NOT] [I]LIKE pattern`.
pub fn like(args: Vec<BExpr>, negated: bool, case_insensitive: bool) -> Result<BExpr> {
    let args = args.into_iter().map(|a| cast_to(a, &DataType::Utf8)).collect::<Result<Vec<_>>>()?;
    let nullable = args.iter().any(BExpr::nullable);
    let name = match (negated, case_insensitive) {
        (false, false) => "like",
        (true, false) => "not_like",
        (false, true) => "ilike",
        (true, true) => "not_ilike",
    };
    let f = ScalarFn::new(name, move |args, _| {
        binary_datum(&args[0], &args[1], |a, b| {
            let r = match (negated, case_insensitive) {
                (false, false) => comparison::like(a, b),
                (true, false) => comparison::nlike(a, b),
                (false, true) => comparison::ilike(a, b),
                (true, true) => comparison::nilike(a, b),
            }?;
            Ok(Arc::new(r) as ArrayRef)
        })
    });
    make_call(f, args, DataType::Boolean, nullable)
}

/// The set of values for `x IN (...)`, typed like the probe side.
enum ValueSet {
    Signed(HashSet<i64>),
    Unsigned(HashSet<u64>),
    Float(HashSet<u64>),
    Text(HashSet<Box<str>>),
}

/// `x [NOT] IN values` where `values` is an array of candidate values (constants or a
/// subquery's result), already of `x`'s value type.
pub fn in_set(x: BExpr, values: ArrayRef, negated: bool) -> Result<BExpr> {
    let t = value_type(&x.data_type()).clone();
    let values = super::cast::cast_array(&values, &t)?;
    let set = Arc::new(build_set(&values, &t)?);
    let params: Vec<crate::scalar::ScalarValue> = if values.len() <= 1024 {
        (0..values.len())
            .filter(|i| values.is_valid(*i))
            .map(|i| crate::scalar::ScalarValue::try_from_array(values.as_ref(), i))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let nullable = x.nullable();
    let f = ScalarFn::new(if negated { "not_in" } else { "in" }, move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let hit = probe(&set, &a)?;
        let r = if negated { arrow::compute::not(&hit)? } else { hit };
        Ok(Value::Array(Arc::new(r)))
    })
    .with_params(params);
    make_call(f, vec![x], DataType::Boolean, nullable)
}

fn key_kind(t: &DataType) -> u8 {
    match t {
        t if t.is_signed_integer() || matches!(t, DataType::Date32 | DataType::Timestamp(..)) => 0,
        t if t.is_unsigned_integer() => 1,
        t if t.is_floating() => 2,
        _ => 3,
    }
}

fn build_set(values: &ArrayRef, t: &DataType) -> Result<ValueSet> {
    let v = super::cast::cast_array(values, t)?;
    Ok(match key_kind(t) {
        0 => ValueSet::Signed(as_i64(&v)?.iter().flatten().collect()),
        1 => ValueSet::Unsigned(
            arrow::compute::cast(&v, &DataType::UInt64)?.as_primitive::<UInt64Type>().iter().flatten().collect(),
        ),
        2 => ValueSet::Float(super::cast::as_f64(&v)?.iter().flatten().map(|f| (f + 0.0).to_bits()).collect()),
        _ => {
            let s = super::cast::cast_array(&v, &DataType::Utf8)?;
            ValueSet::Text(s.as_string::<i32>().iter().flatten().map(Box::from).collect())
        }
    })
}

fn as_i64(a: &ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(match a.data_type() {
        DataType::Timestamp(..) => super::cast::timestamp_ticks(a)?,
        DataType::Date32 => arrow::compute::cast(&arrow::compute::cast(a, &DataType::Int32)?, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone(),
        _ => arrow::compute::cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
    })
}

fn probe(set: &ValueSet, a: &ArrayRef) -> Result<BooleanArray> {
    let mut b = BooleanBuilder::with_capacity(a.len());
    match set {
        ValueSet::Signed(s) => as_i64(a)?.iter().for_each(|v| b.append_option(v.map(|v| s.contains(&v)))),
        ValueSet::Unsigned(s) => arrow::compute::cast(a, &DataType::UInt64)?
            .as_primitive::<UInt64Type>()
            .iter()
            .for_each(|v| b.append_option(v.map(|v| s.contains(&v)))),
        ValueSet::Float(s) => {
            super::cast::as_f64(a)?.iter().for_each(|v| b.append_option(v.map(|v| s.contains(&(v + 0.0).to_bits()))))
        }
        ValueSet::Text(s) => {
            let t = super::cast::cast_array(a, &DataType::Utf8)?;
            t.as_string::<i32>().iter().for_each(|v| b.append_option(v.map(|v| s.contains(v))))
        }
    }
    let _ = a.null_count();
    Ok(b.finish())
}
