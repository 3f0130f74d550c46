//! Arithmetic (ClickHouse semantics: `/` is float division, integer `%` and `int_div` by zero
//! are errors, float division by zero is inf/nan, integer overflow wraps) and math functions.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Float64Type};

use super::{BindFn, FnCtx, arg_error, arity, cast_to, common_numeric, make_call, type_name, value_type, want_numeric};
use crate::error::{Error, Result};
use crate::expr::{BExpr, ScalarFn, Value, binary_datum};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("plus", by_name),
    ("minus", by_name),
    ("multiply", by_name),
    ("divide", by_name),
    ("modulo", by_name),
    ("int_div", by_name),
    ("int_div_or_zero", by_name),
    ("negate", negate_fn),
    ("abs", unary_math),
    ("sqrt", unary_math),
    ("cbrt", unary_math),
    ("exp", unary_math),
    ("log", unary_math),
    ("log2", unary_math),
    ("log10", unary_math),
    ("sin", unary_math),
    ("cos", unary_math),
    ("tan", unary_math),
    ("sign", unary_math),
    ("is_nan", is_nan),
    ("is_finite", is_nan),
    ("is_infinite", is_nan),
    ("floor", rounding),
    ("ceil", rounding),
    ("round", rounding),
    ("trunc", rounding),
    ("pow", pow),
    ("greatest", extreme),
    ("least", extreme),
    ("pi", constant),
    ("e", constant),
];

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/` (always float)
    Divide,
    /// `%`
    Modulo,
    /// `int_div`
    IntDiv,
    /// `int_div_or_zero`
    IntDivOrZero,
}

fn by_name(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let op = match ctx.name {
        "plus" => ArithOp::Plus,
        "minus" => ArithOp::Minus,
        "multiply" => ArithOp::Multiply,
        "divide" => ArithOp::Divide,
        "modulo" => ArithOp::Modulo,
        "int_div" => ArithOp::IntDiv,
        _ => ArithOp::IntDivOrZero,
    };
    let mut it = args.into_iter();
    let (Some(l), Some(r)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    arith(ctx, op, l, r)
}

/// `l op r` with ClickHouse's result types (simplified: integers widen to 64 bits).
pub fn arith(ctx: &FnCtx<'_>, op: ArithOp, l: BExpr, r: BExpr) -> Result<BExpr> {
    let (lt, rt) = (l.data_type(), r.data_type());
    let num = |t: &DataType| super::is_numeric(t) || value_type(t) == &DataType::Boolean;
    if !num(&lt) || !num(&rt) {
        return Err(arg_error(ctx, format!("arithmetic needs numbers, got {} and {}", type_name(&lt), type_name(&rt))));
    }
    // A non-negative integer literal next to an unsigned operand counts as unsigned.
    let unsigned_lit = |e: &BExpr| e.as_literal().and_then(|v| v.as_i64()).is_some_and(|v| v >= 0);
    let (lt, rt) = match (value_type(&lt).is_unsigned_integer(), value_type(&rt).is_unsigned_integer()) {
        (true, false) if unsigned_lit(&r) => (lt.clone(), DataType::UInt64),
        (false, true) if unsigned_lit(&l) => (DataType::UInt64, rt.clone()),
        _ => (lt, rt),
    };
    let common = common_numeric(&lt, &rt);
    let t = match op {
        ArithOp::Divide => DataType::Float64,
        _ if matches!(common, DataType::Decimal128(..)) => DataType::Float64,
        ArithOp::Minus if common.is_integer() => DataType::Int64,
        ArithOp::IntDiv | ArithOp::IntDivOrZero if !common.is_integer() => DataType::Float64,
        _ if common.is_integer() => {
            if common.is_unsigned_integer() {
                DataType::UInt64
            } else {
                DataType::Int64
            }
        }
        _ => DataType::Float64,
    };
    let out_t = match op {
        ArithOp::IntDiv | ArithOp::IntDivOrZero if t == DataType::Float64 => DataType::Int64,
        _ => t.clone(),
    };
    let nullable = l.nullable() || r.nullable();
    let (l, r) = (cast_to(l, &t)?, cast_to(r, &t)?);
    let name = format!("{op:?}").to_ascii_lowercase();
    let f = ScalarFn::new(name, move |args, _| {
        let res = binary_datum(&args[0], &args[1], |a, b| match op {
            ArithOp::Plus => numeric::add_wrapping(a, b),
            ArithOp::Minus => numeric::sub_wrapping(a, b),
            ArithOp::Multiply => numeric::mul_wrapping(a, b),
            ArithOp::Divide => numeric::div(a, b),
            ArithOp::Modulo => numeric::rem(a, b),
            ArithOp::IntDiv | ArithOp::IntDivOrZero => numeric::div(a, b),
        });
        let res = match (op, res) {
            (ArithOp::IntDivOrZero, Err(Error::InvalidValue { message })) if message == "division by zero" => {
                return int_div_or_zero(&args[0], &args[1]);
            }
            (_, r) => r,
        }?;
        if matches!(op, ArithOp::IntDiv | ArithOp::IntDivOrZero) && res.data_type() == &DataType::Float64 {
            return map_value(res, |a| {
                let f = a.as_primitive::<Float64Type>();
                if f.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(Error::InvalidValue { message: "division by zero".into() });
                }
                let r: Int64Array = arrow::compute::kernels::arity::unary(f, |v| v.floor() as i64);
                Ok(Arc::new(r))
            });
        }
        Ok(res)
    });
    make_call(f, vec![l, r], out_t, nullable)
}

fn int_div_or_zero(a: &Value, b: &Value) -> Result<Value> {
    let rows = a.array().len().max(b.array().len());
    let a = arrow::compute::cast(&a.clone().into_array(rows)?, &DataType::Int64)?;
    let b = arrow::compute::cast(&b.clone().into_array(rows)?, &DataType::Int64)?;
    let (a, b) = (a.as_primitive::<arrow::datatypes::Int64Type>(), b.as_primitive::<arrow::datatypes::Int64Type>());
    let r: Int64Array =
        arrow::compute::kernels::arity::binary(a, b, |x, y| if y == 0 { 0 } else { x.wrapping_div(y) })?;
    let out = arrow::compute::cast(&(Arc::new(r) as ArrayRef), a.data_type())?;
    Ok(Value::Array(out))
}

fn map_value(v: Value, f: impl Fn(&ArrayRef) -> Result<ArrayRef>) -> Result<Value> {
    Ok(match v {
        Value::Array(a) => Value::Array(f(&a)?),
        Value::Scalar(a) => Value::Scalar(f(&a)?),
    })
}

fn negate_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_numeric(ctx, &args, 0)?;
    negate(args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?)
}

/// `-x` (unsigned integers become signed).
pub fn negate(e: BExpr) -> Result<BExpr> {
    let t = value_type(&e.data_type()).clone();
    let t = if t.is_unsigned_integer() || t == DataType::Boolean { DataType::Int64 } else { t };
    let e = cast_to(e, &t)?;
    let nullable = e.nullable();
    let f = ScalarFn::new("negate", |args, _| map_value(args[0].clone(), |a| Ok(numeric::neg_wrapping(a)?)));
    make_call(f, vec![e], t, nullable)
}

fn unary_f64(name: &str, e: BExpr, op: fn(f64) -> f64) -> Result<BExpr> {
    let nullable = e.nullable();
    let e = cast_to(e, &DataType::Float64)?;
    let f = ScalarFn::new(name.to_string(), move |args, _| {
        map_value(args[0].clone(), |a| {
            let r: Float64Array = arrow::compute::kernels::arity::unary(a.as_primitive::<Float64Type>(), op);
            Ok(Arc::new(r))
        })
    });
    make_call(f, vec![e], DataType::Float64, nullable)
}

fn unary_math(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_numeric(ctx, &args, 0)?;
    let e = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let t = value_type(&e.data_type()).clone();
    if ctx.name == "abs" && t.is_integer() {
        if t.is_unsigned_integer() {
            return Ok(e);
        }
        let e = cast_to(e, &DataType::Int64)?;
        let nullable = e.nullable();
        let f = ScalarFn::new("abs", |args, _| {
            map_value(args[0].clone(), |a| {
                let r: Int64Array = arrow::compute::kernels::arity::unary(
                    a.as_primitive::<arrow::datatypes::Int64Type>(),
                    i64::wrapping_abs,
                );
                Ok(Arc::new(r))
            })
        });
        return make_call(f, vec![e], DataType::Int64, nullable);
    }
    let op: fn(f64) -> f64 = match ctx.name {
        "abs" => f64::abs,
        "sqrt" => f64::sqrt,
        "cbrt" => f64::cbrt,
        "exp" => f64::exp,
        "log" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        _ => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
    };
    unary_f64(ctx.name, e, op)
}

fn rounding(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 2)?;
    want_numeric(ctx, &args, 0)?;
    let digits = match args.get(1) {
        Some(_) => {
            super::const_arg(ctx, &args, 1)?.as_i64().ok_or_else(|| arg_error(ctx, "digits must be an integer"))?
        }
        None => 0,
    };
    let e = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let t = value_type(&e.data_type()).clone();
    if t.is_integer() && digits >= 0 {
        return Ok(e);
    }
    let nullable = e.nullable();
    let e = cast_to(e, &DataType::Float64)?;
    let scale = 10f64.powi(digits as i32);
    let kind = ctx.name.to_string();
    let f = ScalarFn::new(format!("{kind}_{digits}"), move |args, _| {
        let kind = kind.clone();
        map_value(args[0].clone(), move |a| {
            let op = |v: f64| -> f64 {
                let x = v * scale;
                let r = match kind.as_str() {
                    "floor" => x.floor(),
                    "ceil" => x.ceil(),
                    "trunc" => x.trunc(),
                    // ClickHouse rounds floats half to even ("banker's rounding").
                    _ => x.round_ties_even(),
                };
                r / scale
            };
            let r: Float64Array = arrow::compute::kernels::arity::unary(a.as_primitive::<Float64Type>(), op);
            Ok(Arc::new(r))
        })
    });
    make_call(f, vec![e], DataType::Float64, nullable)
}

fn pow(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_numeric(ctx, &args, 0)?;
    want_numeric(ctx, &args, 1)?;
    let nullable = args.iter().any(BExpr::nullable);
    let args = args.into_iter().map(|a| cast_to(a, &DataType::Float64)).collect::<Result<Vec<_>>>()?;
    let f = ScalarFn::new("pow", |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let b = args[1].clone().into_array(rows)?;
        let r: Float64Array = arrow::compute::kernels::arity::binary(
            a.as_primitive::<Float64Type>(),
            b.as_primitive::<Float64Type>(),
            f64::powf,
        )?;
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, args, DataType::Float64, nullable)
}

fn extreme(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, usize::MAX)?;
    let mut t = value_type(&args[0].data_type()).clone();
    for a in &args[1..] {
        let at = a.data_type();
        t = if super::is_numeric(&t) && super::is_numeric(&at) { common_numeric(&t, &at) } else { t };
    }
    let nullable = args.iter().any(BExpr::nullable);
    let args = args.into_iter().map(|a| cast_to(a, &t)).collect::<Result<Vec<_>>>()?;
    let greatest = ctx.name == "greatest";
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let mut acc = args[0].clone().into_array(rows)?;
        for a in &args[1..] {
            let b = a.clone().into_array(rows)?;
            let pick_b = if greatest {
                arrow::compute::kernels::cmp::gt(&b, &acc)?
            } else {
                arrow::compute::kernels::cmp::lt(&b, &acc)?
            };
            acc = arrow::compute::kernels::zip::zip(&pick_b, &b, &acc)?;
        }
        Ok(Value::Array(acc))
    });
    make_call(f, args, t, nullable)
}

fn constant(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 0, 0)?;
    let v = if ctx.name == "pi" { std::f64::consts::PI } else { std::f64::consts::E };
    Ok(BExpr::lit(crate::scalar::ScalarValue::Float64(v)))
}

fn is_nan(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_numeric(ctx, &args, 0)?;
    let nullable = args[0].nullable();
    let e = cast_to(args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?, &DataType::Float64)?;
    let kind = ctx.name.to_string();
    let f = ScalarFn::new(kind.clone(), move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let test: fn(f64) -> bool = match kind.as_str() {
            "is_nan" => f64::is_nan,
            "is_finite" => f64::is_finite,
            _ => f64::is_infinite,
        };
        let r: arrow::array::BooleanArray = a.as_primitive::<Float64Type>().iter().map(|v| v.map(test)).collect();
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, vec![e], DataType::Boolean, nullable)
}
