//! Conditional functions: `if`, `multi_if`, `coalesce`, `if_null`, `null_if`, `is_null`, and the
//! common-type rule CASE uses too.

use arrow::compute::{is_not_null, kernels::zip::zip, nullif};
use arrow::datatypes::DataType;

use super::compare::{CmpOp, cmp_fn, coerce_pair, to_bool};
use super::{
    BindFn, FnCtx, arg_error, arity, cast_to, common_numeric, is_numeric, is_string, make_call, type_name, value_type,
};
use crate::error::Result;
use crate::expr::{BExpr, ScalarFn, Value, is_null_fn};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("if", if_fn),
    ("multi_if", if_fn),
    ("coalesce", coalesce),
    ("if_null", coalesce),
    ("null_if", null_if),
    ("assume_not_null", assume_not_null),
    ("is_null", is_null),
    ("is_not_null", is_null),
];

/// The type several branches are converted to, or None if they have none.
pub fn common_type(types: &[DataType]) -> Option<DataType> {
    let mut acc: Option<DataType> = None;
    for t in types {
        let t = value_type(t).clone();
        acc = Some(match acc {
            None => t,
            Some(a) if a == t => a,
            Some(DataType::Null) => t,
            Some(a) if t == DataType::Null => a,
            Some(a) if is_numeric(&a) && is_numeric(&t) => common_numeric(&a, &t),
            Some(a) if is_string(&a) && is_string(&t) => DataType::Utf8,
            Some(a @ DataType::Timestamp(..)) if t == DataType::Date32 => a,
            Some(DataType::Date32) if matches!(t, DataType::Timestamp(..)) => t,
            Some(DataType::Timestamp(u1, tz)) if matches!(t, DataType::Timestamp(..)) => {
                let DataType::Timestamp(u2, _) = t else { return None };
                let u = if crate::temporal::ticks_per_second(u1) >= crate::temporal::ticks_per_second(u2) {
                    u1
                } else {
                    u2
                };
                DataType::Timestamp(u, tz)
            }
            Some(a) if a == DataType::Boolean && is_numeric(&t) => t,
            Some(a) if t == DataType::Boolean && is_numeric(&a) => a,
            _ => return None,
        });
    }
    acc
}

/// Casts every expression to their common type.
pub fn unify(ctx: &FnCtx<'_>, exprs: Vec<BExpr>) -> Result<(Vec<BExpr>, DataType)> {
    let types: Vec<DataType> = exprs.iter().map(BExpr::data_type).collect();
    let t = common_type(&types).ok_or_else(|| {
        arg_error(
            ctx,
            format!("branches have no common type: {}", types.iter().map(type_name).collect::<Vec<_>>().join(", ")),
        )
    })?;
    let t = if t == DataType::Null { DataType::Utf8 } else { t };
    let out = exprs.into_iter().map(|e| cast_to(e, &t)).collect::<Result<Vec<_>>>()?;
    Ok((out, t))
}

/// `if(c, a, b)` and `multi_if(c1, v1, ..., else)` as a CASE.
fn if_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 3, usize::MAX)?;
    if args.len().is_multiple_of(2) {
        return Err(arg_error(ctx, "expects an odd number of arguments: conditions, values, and an else value"));
    }
    let mut conds = Vec::new();
    let mut values = Vec::new();
    let mut it = args.into_iter();
    let mut last = None;
    while let Some(a) = it.next() {
        match it.next() {
            Some(v) => {
                conds.push(to_bool(a).map_err(|_| arg_error(ctx, "conditions must be boolean or numeric"))?);
                values.push(v);
            }
            None => last = Some(a),
        }
    }
    let n = values.len();
    values.extend(last);
    let (mut values, ty) = unify(ctx, values)?;
    let otherwise = values.pop();
    debug_assert_eq!(values.len(), n);
    let whens = conds.into_iter().zip(values).collect();
    super::fold(BExpr::Case { whens, otherwise: otherwise.map(Box::new), ty })
}

fn coalesce(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, if ctx.name == "if_null" { 2 } else { 1 }, if ctx.name == "if_null" { 2 } else { usize::MAX })?;
    let (args, ty) = unify(ctx, args)?;
    let nullable = args.iter().all(BExpr::nullable);
    let f = ScalarFn::new("coalesce", |args, rows| {
        let mut acc = args[args.len() - 1].clone().into_array(rows)?;
        for a in args[..args.len() - 1].iter().rev() {
            let a = a.clone().into_array(rows)?;
            acc = zip(&is_not_null(&a)?, &a, &acc)?;
        }
        Ok(Value::Array(acc))
    });
    make_call(f, args, ty, nullable)
}

fn null_if(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let mut it = args.into_iter();
    let (Some(a), Some(b)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    let (a, b) = coerce_pair(ctx, a, b)?;
    let ty = value_type(&a.data_type()).clone();
    let a = cast_to(a, &ty)?;
    let b = cast_to(b, &ty)?;
    let eq = cmp_fn(CmpOp::Eq);
    let f = ScalarFn::new("null_if", move |args, rows| {
        let e = (eq.f)(args, rows)?.into_array(rows)?;
        let e = arrow::array::AsArray::as_boolean(&e).clone();
        let a = args[0].clone().into_array(rows)?;
        Ok(Value::Array(nullif(&a, &e)?))
    });
    make_call(f, vec![a, b], ty, true)
}

fn assume_not_null(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    let ty = args[0].data_type();
    let f = ScalarFn::new("assume_not_null", |args, _| Ok(args[0].clone()));
    make_call(f, args, ty, false)
}

fn is_null(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    make_call(is_null_fn(ctx.name == "is_not_null"), args, DataType::Boolean, false)
}
