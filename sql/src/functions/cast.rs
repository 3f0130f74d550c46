//! `CAST`, `::`, `to_int32(x)` and friends. Temporal conversions are done here (UTC and fixed
//! offsets); everything else goes through Arrow's cast kernel with errors on bad values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, PrimitiveArray, StringArray, StringBuilder};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::util::display::FormatOptions;

use super::{BindFn, FnCtx, arg_error, arity, cast_to, const_arg, type_name};
use crate::error::{Error, Result};
use crate::expr::BExpr;
use crate::scalar::ScalarValue;
use crate::temporal::{self, ticks_per_second};
use crate::types::SqlType;

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("to_int8", to_type),
    ("to_int16", to_type),
    ("to_int32", to_type),
    ("to_int64", to_type),
    ("to_uint8", to_type),
    ("to_uint16", to_type),
    ("to_uint32", to_type),
    ("to_uint64", to_type),
    ("to_float32", to_type),
    ("to_float64", to_type),
    ("to_string", to_type),
    ("to_bool", to_type),
    ("to_date", to_type),
    ("to_datetime", to_datetime),
    ("to_datetime64", to_datetime),
    ("to_decimal32", to_decimal),
    ("to_decimal64", to_decimal),
    ("to_decimal128", to_decimal),
    ("cast", cast_fn),
    ("to_int32_or_null", to_or_null),
    ("to_int64_or_null", to_or_null),
    ("to_uint64_or_null", to_or_null),
    ("to_float64_or_null", to_or_null),
    ("to_date_or_null", to_or_null),
    ("to_datetime_or_null", to_or_null),
    ("to_int64_or_zero", to_or_null),
    ("to_float64_or_zero", to_or_null),
];

fn target_of(name: &str) -> Option<DataType> {
    let base = name.trim_end_matches("_or_null").trim_end_matches("_or_zero");
    Some(match base {
        "to_int8" => DataType::Int8,
        "to_int16" => DataType::Int16,
        "to_int32" => DataType::Int32,
        "to_int64" => DataType::Int64,
        "to_uint8" => DataType::UInt8,
        "to_uint16" => DataType::UInt16,
        "to_uint32" => DataType::UInt32,
        "to_uint64" => DataType::UInt64,
        "to_float32" => DataType::Float32,
        "to_float64" => DataType::Float64,
        "to_string" => DataType::Utf8,
        "to_bool" => DataType::Boolean,
        "to_date" => DataType::Date32,
        "to_datetime" => DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
        _ => return None,
    })
}

fn to_type(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    let to = target_of(ctx.name).ok_or_else(|| arg_error(ctx, "unknown conversion"))?;
    let arg = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    cast_to(arg, &to).map_err(|e| at(ctx, e))
}

fn at(ctx: &FnCtx<'_>, e: Error) -> Error {
    match e {
        Error::InvalidValue { message } => Error::InvalidValue { message: format!("{}: {message}", ctx.name) },
        e => e,
    }
}

/// `to_datetime(x[, 'tz'])`, `to_datetime64(x, precision[, 'tz'])`.
fn to_datetime(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let is64 = ctx.name == "to_datetime64";
    arity(ctx, &args, 1, if is64 { 3 } else { 2 })?;
    let (unit, tz_at) = if is64 {
        let p = match args.get(1) {
            Some(_) => {
                const_arg(ctx, &args, 1)?.as_i64().ok_or_else(|| arg_error(ctx, "precision must be an integer"))?
            }
            None => 3,
        };
        let unit = match p {
            0 => TimeUnit::Second,
            1..=3 => TimeUnit::Millisecond,
            4..=6 => TimeUnit::Microsecond,
            7..=9 => TimeUnit::Nanosecond,
            _ => return Err(arg_error(ctx, format!("precision {p} is out of range 0..9"))),
        };
        (unit, 2)
    } else {
        (TimeUnit::Second, 1)
    };
    let tz: Arc<str> = match args.get(tz_at) {
        Some(_) => match const_arg(ctx, &args, tz_at)? {
            ScalarValue::Utf8(s) => {
                temporal::tz_offset(Some(&s))?;
                s.into()
            }
            _ => return Err(arg_error(ctx, "time zone must be a constant string")),
        },
        None => "UTC".into(),
    };
    let arg = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    cast_to(arg, &DataType::Timestamp(unit, Some(tz))).map_err(|e| at(ctx, e))
}

fn to_decimal(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let s = const_arg(ctx, &args, 1)?.as_i64().ok_or_else(|| arg_error(ctx, "scale must be an integer"))?;
    let p = match ctx.name {
        "to_decimal32" => 9,
        "to_decimal64" => 18,
        _ => 38,
    };
    if !(0..=p as i64).contains(&s) {
        return Err(arg_error(ctx, format!("scale {s} is out of range 0..{p}")));
    }
    let arg = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    cast_to(arg, &DataType::Decimal128(p, s as i8)).map_err(|e| at(ctx, e))
}

/// `cast(x, 'type')` (ClickHouse's function form).
fn cast_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let ty: SqlType = match const_arg(ctx, &args, 1)? {
        ScalarValue::Utf8(s) => s.parse()?,
        _ => return Err(arg_error(ctx, "the type must be a constant string")),
    };
    let arg = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    cast_to(arg, &ty.to_arrow())
}

fn to_or_null(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    let to = target_of(ctx.name).ok_or_else(|| arg_error(ctx, "unknown conversion"))?;
    let zero = ctx.name.ends_with("_or_zero");
    let target = to.clone();
    let f = crate::expr::ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let opts = CastOptions { safe: true, format_options: FormatOptions::default() };
        let r = cast_with_options(&a, &target, &opts)?;
        let r = if zero && r.null_count() > 0 {
            let zero = crate::expr::repeat(&ScalarValue::Int64(0).to_array_of(&target)?, rows)?;
            arrow::compute::kernels::zip::zip(&arrow::compute::is_not_null(&r)?, &r, &zero)?
        } else {
            r
        };
        Ok(crate::expr::Value::Array(r))
    });
    super::make_call(f, args, to, !zero)
}

/// Casts an array as SQL `CAST` does: bad values are errors ([`Error::InvalidValue`]).
pub fn cast_array(a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let from = a.data_type();
    if from == to {
        return Ok(a.clone());
    }
    if let DataType::Dictionary(_, v) = from {
        let values = arrow::compute::cast(a, v)?;
        return cast_array(&values, to);
    }
    if let DataType::Dictionary(_, v) = to {
        let values = cast_array(a, v)?;
        return Ok(arrow::compute::cast(&values, to)?);
    }
    if matches!(from, DataType::Null) {
        return Ok(arrow::array::new_null_array(to, a.len()));
    }
    match (from, to) {
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, DataType::Timestamp(unit, tz)) => {
            let s = arrow::compute::cast(a, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            let offset = temporal::tz_offset(tz.as_deref())?;
            let mut out = Vec::with_capacity(s.len());
            for v in s.iter() {
                out.push(match v {
                    None => None,
                    Some(t) => Some(temporal::parse_timestamp(t, *unit, offset).ok_or_else(|| {
                        Error::InvalidValue { message: format!("cannot parse `{t}` as {}", type_name(to)) }
                    })?),
                });
            }
            Ok(timestamp_array(out, *unit, tz.clone()))
        }
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, DataType::Date32) => {
            let s = arrow::compute::cast(a, &DataType::Utf8)?;
            let out = s
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|t| {
                        temporal::parse_date(t)
                            .ok_or_else(|| Error::InvalidValue { message: format!("cannot parse `{t}` as date") })
                    })
                    .transpose()
                })
                .collect::<Result<Date32Array>>()?;
            Ok(Arc::new(out))
        }
        (DataType::Timestamp(unit, tz), DataType::Utf8) => {
            let offset = temporal::tz_offset(tz.as_deref())?;
            let v = timestamp_ticks(a)?;
            let mut b = StringBuilder::with_capacity(v.len(), v.len() * 24);
            let mut buf = String::new();
            for x in v.iter() {
                match x {
                    None => b.append_null(),
                    Some(t) => {
                        buf.clear();
                        temporal::format_timestamp(t, *unit, offset, &mut buf);
                        b.append_value(&buf);
                    }
                }
            }
            Ok(Arc::new(b.finish()))
        }
        (DataType::Date32, DataType::Utf8) => {
            let d = a.as_primitive::<Date32Type>();
            let mut b = StringBuilder::with_capacity(d.len(), d.len() * 10);
            let mut buf = String::new();
            for x in d.iter() {
                match x {
                    None => b.append_null(),
                    Some(t) => {
                        buf.clear();
                        temporal::format_date(t as i64, &mut buf);
                        b.append_value(&buf);
                    }
                }
            }
            Ok(Arc::new(b.finish()))
        }
        (DataType::Float32 | DataType::Float64, DataType::Utf8) => {
            let f = arrow::compute::cast(a, &DataType::Float64)?;
            let s: StringArray = f.as_primitive::<Float64Type>().iter().map(|v| v.map(format_float)).collect();
            Ok(Arc::new(s))
        }
        (DataType::Timestamp(u1, tz1), DataType::Timestamp(u2, tz2)) => {
            let v = timestamp_ticks(a)?;
            let (f1, f2) = (ticks_per_second(*u1), ticks_per_second(*u2));
            let _ = tz1;
            let out: Int64Array = if f2 >= f1 {
                arrow::compute::kernels::arity::try_unary(&v, |t| {
                    t.checked_mul(f2 / f1)
                        .ok_or_else(|| arrow::error::ArrowError::ComputeError("timestamp out of range".into()))
                })?
            } else {
                arrow::compute::kernels::arity::unary(&v, |t| t.div_euclid(f1 / f2))
            };
            Ok(timestamp_from_i64(out, *u2, tz2.clone()))
        }
        (DataType::Timestamp(unit, tz), DataType::Date32) => {
            let offset = temporal::tz_offset(tz.as_deref())?;
            let tps = ticks_per_second(*unit);
            let v = timestamp_ticks(a)?;
            let d: Date32Array =
                arrow::compute::kernels::arity::unary(&v, |t| (t.div_euclid(tps) + offset).div_euclid(86_400) as i32);
            Ok(Arc::new(d))
        }
        (DataType::Date32, DataType::Timestamp(unit, tz)) => {
            let offset = temporal::tz_offset(tz.as_deref())?;
            let tps = ticks_per_second(*unit);
            let d = a.as_primitive::<Date32Type>();
            let v: Int64Array = arrow::compute::kernels::arity::unary(d, |x| (x as i64 * 86_400 - offset) * tps);
            Ok(timestamp_from_i64(v, *unit, tz.clone()))
        }
        (DataType::Timestamp(unit, _), t) if t.is_numeric() => {
            let tps = ticks_per_second(*unit);
            let v = timestamp_ticks(a)?;
            let secs: Int64Array = arrow::compute::kernels::arity::unary(&v, |t| t.div_euclid(tps));
            cast_array(&(Arc::new(secs) as ArrayRef), to)
        }
        (f, DataType::Timestamp(unit, tz)) if f.is_integer() || f.is_floating() || matches!(f, DataType::Boolean) => {
            let tps = ticks_per_second(*unit);
            let secs = arrow::compute::cast(a, &DataType::Float64)?;
            let out: Int64Array = arrow::compute::kernels::arity::unary(secs.as_primitive::<Float64Type>(), |s| {
                (s * tps as f64).round() as i64
            });
            Ok(timestamp_from_i64(out, *unit, tz.clone()))
        }
        (f, DataType::Date32) if f.is_integer() => {
            let days = arrow::compute::cast(a, &DataType::Int64)?;
            let out: Date32Array =
                arrow::compute::kernels::arity::unary(days.as_primitive::<arrow::datatypes::Int64Type>(), |d| {
                    if d > 65_535 { (d / 86_400) as i32 } else { d as i32 }
                });
            Ok(Arc::new(out))
        }
        (DataType::Date32, t) if t.is_numeric() => {
            let d = arrow::compute::cast(a, &DataType::Int32)?;
            cast_array(&d, to)
        }
        _ => {
            let opts = CastOptions { safe: false, format_options: FormatOptions::default() };
            cast_with_options(a, to, &opts).map_err(|e| match e {
                arrow::error::ArrowError::CastError(m) | arrow::error::ArrowError::ParseError(m)
                    if m.contains("not supported") || m.contains("Unsupported") =>
                {
                    Error::Bind { message: format!("cannot cast {} to {}", type_name(from), type_name(to)), span: None }
                }
                other => {
                    Error::InvalidValue { message: format!("cannot cast to {}: {}", type_name(to), Error::from(other)) }
                }
            })
        }
    }
}

/// Whether a cast from `from` to `to` is supported at all.
pub fn can_cast(from: &DataType, to: &DataType) -> bool {
    let (f, t) = (super::value_type(from), super::value_type(to));
    f == t
        || matches!(f, DataType::Null)
        || (super::is_temporal(f) || super::is_string(f) || f.is_numeric() || *f == DataType::Boolean)
            && (super::is_temporal(t) || super::is_string(t) || t.is_numeric() || *t == DataType::Boolean)
        || arrow::compute::can_cast_types(f, t)
}

/// ClickHouse's float formatting: `1` for 1.0, `inf`, `nan`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}

/// The raw ticks of a timestamp array of any unit.
pub fn timestamp_ticks(a: &ArrayRef) -> Result<Int64Array> {
    let data = a.to_data();
    if !matches!(data.data_type(), DataType::Timestamp(..)) {
        return Err(Error::Internal { message: format!("expected a timestamp, got {}", a.data_type()) });
    }
    let data = data.into_builder().data_type(DataType::Int64).build()?;
    Ok(Int64Array::from(data))
}

/// A timestamp array from raw ticks.
pub fn timestamp_from_i64(v: Int64Array, unit: TimeUnit, tz: Option<Arc<str>>) -> ArrayRef {
    let (_, values, nulls) = v.into_parts();
    match unit {
        TimeUnit::Second => Arc::new(PrimitiveArray::<TimestampSecondType>::new(values, nulls).with_timezone_opt(tz)),
        TimeUnit::Millisecond => {
            Arc::new(PrimitiveArray::<TimestampMillisecondType>::new(values, nulls).with_timezone_opt(tz))
        }
        TimeUnit::Microsecond => {
            Arc::new(PrimitiveArray::<TimestampMicrosecondType>::new(values, nulls).with_timezone_opt(tz))
        }
        TimeUnit::Nanosecond => {
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::new(values, nulls).with_timezone_opt(tz))
        }
    }
}

fn timestamp_array(v: Vec<Option<i64>>, unit: TimeUnit, tz: Option<Arc<str>>) -> ArrayRef {
    timestamp_from_i64(Int64Array::from(v), unit, tz)
}

/// Reads an `f64` view of a numeric array (for math functions).
pub fn as_f64(a: &ArrayRef) -> Result<PrimitiveArray<Float64Type>> {
    Ok(arrow::compute::cast(a, &DataType::Float64)?.as_primitive::<Float64Type>().clone())
}
