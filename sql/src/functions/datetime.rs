//! Date and time functions (UTC and fixed-offset zones).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, PrimitiveArray, StringBuilder};
use arrow::datatypes::{ArrowPrimitiveType, DataType, TimeUnit, UInt8Type, UInt16Type, UInt32Type};

use super::cast::{timestamp_from_i64, timestamp_ticks};
use super::{BindFn, FnCtx, arg_error, arity, cast_to, const_arg, const_str, make_call, type_name, value_type};
use crate::error::{Error, Result};
use crate::expr::{BExpr, ScalarFn, Value};
use crate::interval::IntervalUnit;
use crate::scalar::ScalarValue;
use crate::temporal::{civil_from_days, days_from_civil, days_in_month, ticks_per_second, tz_offset};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("now", now),
    ("now64", now),
    ("today", now),
    ("earliest_ts", now),
    ("earliest_timestamp", now),
    ("to_start_of_second", start_of),
    ("to_start_of_minute", start_of),
    ("to_start_of_five_minutes", start_of),
    ("to_start_of_five_minute", start_of),
    ("to_start_of_ten_minutes", start_of),
    ("to_start_of_fifteen_minutes", start_of),
    ("to_start_of_hour", start_of),
    ("to_start_of_day", start_of),
    ("to_start_of_week", start_of_date),
    ("to_monday", start_of_date),
    ("to_start_of_month", start_of_date),
    ("to_start_of_quarter", start_of_date),
    ("to_start_of_year", start_of_date),
    ("to_yyyymmdd", part),
    ("to_yyyymm", part),
    ("to_year", part),
    ("to_quarter", part),
    ("to_month", part),
    ("to_day_of_month", part),
    ("to_day_of_week", part),
    ("to_day_of_year", part),
    ("to_hour", part),
    ("to_minute", part),
    ("to_second", part),
    ("to_unix_timestamp", part),
    ("date_diff", date_diff),
    ("date_trunc", date_trunc),
    ("date_add", date_add),
    ("date_sub", date_add),
    ("add_seconds", add_named),
    ("add_minutes", add_named),
    ("add_hours", add_named),
    ("add_days", add_named),
    ("add_weeks", add_named),
    ("add_months", add_named),
    ("add_years", add_named),
    ("subtract_seconds", add_named),
    ("subtract_minutes", add_named),
    ("subtract_hours", add_named),
    ("subtract_days", add_named),
    ("subtract_weeks", add_named),
    ("subtract_months", add_named),
    ("subtract_years", add_named),
    ("format_datetime", format_datetime),
];

fn now(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let utc: Option<Arc<str>> = Some("UTC".into());
    Ok(match ctx.name {
        "today" => {
            arity(ctx, &args, 0, 0)?;
            BExpr::lit(ScalarValue::Date32(ctx.now.div_euclid(86_400_000_000_000) as i32))
        }
        // Proton: the start of time, for `WHERE _tp_time > earliest_ts()` (read everything).
        "earliest_ts" | "earliest_timestamp" => {
            arity(ctx, &args, 0, 0)?;
            BExpr::lit(ScalarValue::Timestamp(0, TimeUnit::Millisecond, utc))
        }
        "now" => {
            arity(ctx, &args, 0, 1)?;
            BExpr::lit(ScalarValue::Timestamp(ctx.now.div_euclid(1_000_000_000), TimeUnit::Second, utc))
        }
        _ => {
            arity(ctx, &args, 0, 2)?;
            let p = if args.is_empty() { 3 } else { const_arg(ctx, &args, 0)?.as_i64().unwrap_or(3) };
            let (unit, div) = match p {
                0 => (TimeUnit::Second, 1_000_000_000),
                1..=3 => (TimeUnit::Millisecond, 1_000_000),
                4..=6 => (TimeUnit::Microsecond, 1_000),
                _ => (TimeUnit::Nanosecond, 1),
            };
            BExpr::lit(ScalarValue::Timestamp(ctx.now.div_euclid(div), unit, utc))
        }
    })
}

/// Casts a date argument to a timestamp; returns (expr, unit, zone offset).
fn as_timestamp(ctx: &FnCtx<'_>, e: BExpr) -> Result<(BExpr, TimeUnit, i64, Option<Arc<str>>)> {
    let t = value_type(&e.data_type()).clone();
    match t {
        DataType::Timestamp(unit, tz) => {
            let off = tz_offset(tz.as_deref())?;
            Ok((e, unit, off, tz))
        }
        DataType::Date32 | DataType::Utf8 | DataType::Null => {
            let tz: Option<Arc<str>> = Some("UTC".into());
            Ok((cast_to(e, &DataType::Timestamp(TimeUnit::Second, tz.clone()))?, TimeUnit::Second, 0, tz))
        }
        other => Err(arg_error(ctx, format!("expects a date or datetime, got {}", type_name(&other)))),
    }
}

fn one_arg(ctx: &FnCtx<'_>, args: Vec<BExpr>, max: usize) -> Result<(BExpr, Vec<BExpr>)> {
    arity(ctx, &args, 1, max)?;
    let mut it = args.into_iter();
    let a = it.next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    Ok((a, it.collect()))
}

/// Maps raw ticks row-wise.
fn map_ticks<T: ArrowPrimitiveType>(v: &Value, rows: usize, f: impl Fn(i64) -> T::Native) -> Result<PrimitiveArray<T>> {
    let a = v.clone().into_array(rows)?;
    let t = timestamp_ticks(&a)?;
    Ok(arrow::compute::kernels::arity::unary(&t, f))
}

fn start_of(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let (e, _) = one_arg(ctx, args, 2)?;
    let (e, unit, off, tz) = as_timestamp(ctx, e)?;
    let step_secs: i64 = match ctx.name {
        "to_start_of_second" => 1,
        "to_start_of_minute" => 60,
        "to_start_of_five_minutes" | "to_start_of_five_minute" => 300,
        "to_start_of_ten_minutes" => 600,
        "to_start_of_fifteen_minutes" => 900,
        "to_start_of_hour" => 3600,
        _ => 86_400,
    };
    let tps = ticks_per_second(unit);
    let step = step_secs * tps;
    let off_t = off * tps;
    let ty = DataType::Timestamp(unit, tz.clone());
    let nullable = e.nullable();
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let r: Int64Array = if off_t == 0 {
            map_ticks(&args[0], rows, |t| t - t.rem_euclid(step))?
        } else {
            map_ticks(&args[0], rows, |t| {
                let l = t + off_t;
                l - l.rem_euclid(step) - off_t
            })?
        };
        Ok(Value::Array(timestamp_from_i64(r, unit, tz.clone())))
    });
    make_call(f, vec![e], ty, nullable)
}

fn local_days(t: i64, tps: i64, off: i64) -> i64 {
    (t.div_euclid(tps) + off).div_euclid(86_400)
}

fn start_of_date(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let (e, _) = one_arg(ctx, args, 2)?;
    let (e, unit, off, _) = as_timestamp(ctx, e)?;
    let tps = ticks_per_second(unit);
    let kind = ctx.name.to_string();
    let nullable = e.nullable();
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let k = kind.as_str();
        let r: PrimitiveArray<arrow::datatypes::Date32Type> = map_ticks(&args[0], rows, |t| {
            let d = local_days(t, tps, off);
            trunc_days(d, k) as i32
        })?;
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, vec![e], DataType::Date32, nullable)
}

/// Truncates days since the epoch to the start of a week (Monday), month, quarter or year.
fn trunc_days(d: i64, kind: &str) -> i64 {
    let (y, m, _) = civil_from_days(d);
    match kind {
        "to_start_of_week" | "to_monday" | "week" => d - (d + 3).rem_euclid(7),
        "to_start_of_month" | "month" => days_from_civil(y, m, 1),
        "to_start_of_quarter" | "quarter" => days_from_civil(y, (m - 1) / 3 * 3 + 1, 1),
        "to_start_of_year" | "year" => days_from_civil(y, 1, 1),
        _ => d,
    }
}

fn part(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let (e, _) = one_arg(ctx, args, 2)?;
    let (e, unit, off, _) = as_timestamp(ctx, e)?;
    let tps = ticks_per_second(unit);
    let nullable = e.nullable();
    let kind = ctx.name.to_string();
    let ty = match ctx.name {
        "to_yyyymmdd" | "to_yyyymm" | "to_unix_timestamp" => DataType::UInt32,
        "to_year" | "to_day_of_year" => DataType::UInt16,
        _ => DataType::UInt8,
    };
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let k = kind.as_str();
        let secs = move |t: i64| t.div_euclid(tps) + off;
        let civil = move |t: i64| civil_from_days(secs(t).div_euclid(86_400));
        let out: ArrayRef = match k {
            "to_yyyymmdd" => Arc::new(map_ticks::<UInt32Type>(&args[0], rows, |t| {
                let (y, m, d) = civil(t);
                (y * 10_000 + m as i64 * 100 + d as i64) as u32
            })?),
            "to_yyyymm" => Arc::new(map_ticks::<UInt32Type>(&args[0], rows, |t| {
                let (y, m, _) = civil(t);
                (y * 100 + m as i64) as u32
            })?),
            "to_unix_timestamp" => Arc::new(map_ticks::<UInt32Type>(&args[0], rows, |t| t.div_euclid(tps) as u32)?),
            "to_year" => Arc::new(map_ticks::<UInt16Type>(&args[0], rows, |t| civil(t).0 as u16)?),
            "to_day_of_year" => Arc::new(map_ticks::<UInt16Type>(&args[0], rows, |t| {
                let d = secs(t).div_euclid(86_400);
                (d - days_from_civil(civil(t).0, 1, 1) + 1) as u16
            })?),
            _ => Arc::new(map_ticks::<UInt8Type>(&args[0], rows, |t| {
                let s = secs(t);
                match k {
                    "to_quarter" => ((civil(t).1 - 1) / 3 + 1) as u8,
                    "to_month" => civil(t).1 as u8,
                    "to_day_of_month" => civil(t).2 as u8,
                    "to_day_of_week" => ((s.div_euclid(86_400) + 3).rem_euclid(7) + 1) as u8,
                    "to_hour" => (s.rem_euclid(86_400) / 3600) as u8,
                    "to_minute" => (s.rem_euclid(3600) / 60) as u8,
                    _ => s.rem_euclid(60) as u8,
                }
            })?),
        };
        Ok(Value::Array(out))
    });
    make_call(f, vec![e], ty, nullable)
}

fn unit_of(ctx: &FnCtx<'_>, s: &str) -> Result<IntervalUnit> {
    let lower = s.trim().to_ascii_lowercase();
    let u = if lower.len() > 2 && lower.ends_with('s') { &lower[..lower.len() - 1] } else { lower.as_str() };
    Ok(match u {
        "nanosecond" | "ns" => IntervalUnit::Nanosecond,
        "microsecond" | "us" => IntervalUnit::Microsecond,
        "millisecond" | "ms" => IntervalUnit::Millisecond,
        "second" | "ss" | "s" => IntervalUnit::Second,
        "minute" | "mi" | "n" => IntervalUnit::Minute,
        "hour" | "hh" | "h" => IntervalUnit::Hour,
        "day" | "dd" | "d" => IntervalUnit::Day,
        "week" | "wk" | "ww" => IntervalUnit::Week,
        "month" | "mm" | "m" => IntervalUnit::Month,
        "quarter" | "qq" | "q" => IntervalUnit::Quarter,
        "year" | "yyyy" | "yy" => IntervalUnit::Year,
        _ => return Err(arg_error(ctx, format!("unknown unit `{s}`"))),
    })
}

fn unit_secs(u: IntervalUnit) -> Option<(i64, i64)> {
    // (numerator, denominator) seconds
    Some(match u {
        IntervalUnit::Nanosecond => (1, 1_000_000_000),
        IntervalUnit::Microsecond => (1, 1_000_000),
        IntervalUnit::Millisecond => (1, 1_000),
        IntervalUnit::Second => (1, 1),
        IntervalUnit::Minute => (60, 1),
        IntervalUnit::Hour => (3600, 1),
        IntervalUnit::Day => (86_400, 1),
        IntervalUnit::Week => (604_800, 1),
        _ => return None,
    })
}

fn months_of(u: IntervalUnit) -> i64 {
    match u {
        IntervalUnit::Quarter => 3,
        IntervalUnit::Year => 12,
        _ => 1,
    }
}

/// `date_diff('unit', a, b)`: the number of unit boundaries between a and b (b - a).
fn date_diff(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 3, 4)?;
    let unit = unit_of(ctx, &const_str(ctx, &args, 0)?)?;
    let mut it = args.into_iter().skip(1);
    let (Some(a), Some(b)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    let (a, ua, oa, _) = as_timestamp(ctx, a)?;
    let (b, ub, _, _) = as_timestamp(ctx, b)?;
    let nullable = a.nullable() || b.nullable();
    let (ta, tb) = (ticks_per_second(ua), ticks_per_second(ub));
    let f = ScalarFn::new(format!("date_diff_{unit:?}"), move |args, rows| {
        let x = timestamp_ticks(&args[0].clone().into_array(rows)?)?;
        let y = timestamp_ticks(&args[1].clone().into_array(rows)?)?;
        let ns = |t: i64, tps: i64| (t as i128) * (1_000_000_000 / tps) as i128 + oa as i128 * 1_000_000_000;
        let r: Int64Array = arrow::compute::kernels::arity::binary(&x, &y, |x, y| {
            let (nx, ny) = (ns(x, ta), ns(y, tb));
            match unit_secs(unit) {
                Some((num, den)) if unit == IntervalUnit::Week => {
                    let _ = (num, den);
                    let dx = trunc_days(nx.div_euclid(86_400_000_000_000) as i64, "week");
                    let dy = trunc_days(ny.div_euclid(86_400_000_000_000) as i64, "week");
                    (dy - dx) / 7
                }
                Some((num, den)) => {
                    let step = num as i128 * 1_000_000_000 / den as i128;
                    (ny.div_euclid(step) - nx.div_euclid(step)) as i64
                }
                None => {
                    let (y1, m1, _) = civil_from_days(nx.div_euclid(86_400_000_000_000) as i64);
                    let (y2, m2, _) = civil_from_days(ny.div_euclid(86_400_000_000_000) as i64);
                    let per = months_of(unit);
                    (y2 * 12 + m2 as i64 - 1).div_euclid(per) - (y1 * 12 + m1 as i64 - 1).div_euclid(per)
                }
            }
        })?;
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, vec![a, b], DataType::Int64, nullable)
}

/// `date_trunc('unit', t)`: a timestamp of t's type truncated to the unit.
fn date_trunc(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 3)?;
    let unit = unit_of(ctx, &const_str(ctx, &args, 0)?)?;
    let e = args.into_iter().nth(1).ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let (e, tu, off, tz) = as_timestamp(ctx, e)?;
    let tps = ticks_per_second(tu);
    let nullable = e.nullable();
    let ty = DataType::Timestamp(tu, tz.clone());
    let f = ScalarFn::new(format!("date_trunc_{unit:?}"), move |args, rows| {
        let r: Int64Array = match unit_secs(unit) {
            Some(_) if unit == IntervalUnit::Week => {
                map_ticks(&args[0], rows, |t| (trunc_days(local_days(t, tps, off), "week") * 86_400 - off) * tps)?
            }
            Some((num, den)) => {
                let step = (num * tps / den).max(1);
                let o = off * tps;
                map_ticks(&args[0], rows, |t| {
                    let l = t + o;
                    l - l.rem_euclid(step) - o
                })?
            }
            None => {
                let kind = match unit {
                    IntervalUnit::Quarter => "quarter",
                    IntervalUnit::Year => "year",
                    _ => "month",
                };
                map_ticks(&args[0], rows, |t| (trunc_days(local_days(t, tps, off), kind) * 86_400 - off) * tps)?
            }
        };
        Ok(Value::Array(timestamp_from_i64(r, tu, tz.clone())))
    });
    make_call(f, vec![e], ty, nullable)
}

/// Adds `n` (an integer expression) units to a date or timestamp.
pub fn add_interval(ctx: &FnCtx<'_>, t: BExpr, n: BExpr, unit: IntervalUnit, negate: bool) -> Result<BExpr> {
    if !super::is_integer(&n.data_type()) {
        return Err(arg_error(ctx, "the interval count must be an integer"));
    }
    let was_date = value_type(&t.data_type()) == &DataType::Date32;
    let (t, tu, off, tz) = as_timestamp(ctx, t)?;
    // Sub-second units need a finer timestamp.
    let (t, tu) = match (unit, tu) {
        (IntervalUnit::Nanosecond, u) if u != TimeUnit::Nanosecond => {
            (cast_to(t, &DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()))?, TimeUnit::Nanosecond)
        }
        (IntervalUnit::Microsecond, TimeUnit::Second | TimeUnit::Millisecond) => {
            (cast_to(t, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?, TimeUnit::Microsecond)
        }
        (IntervalUnit::Millisecond, TimeUnit::Second) => {
            (cast_to(t, &DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))?, TimeUnit::Millisecond)
        }
        (_, u) => (t, u),
    };
    let n = cast_to(n, &DataType::Int64)?;
    let nullable = t.nullable() || n.nullable();
    let tps = ticks_per_second(tu);
    let sign = if negate { -1 } else { 1 };
    let ty = DataType::Timestamp(tu, tz.clone());
    let f = ScalarFn::new(format!("add_{unit:?}"), move |args, rows| {
        let x = timestamp_ticks(&args[0].clone().into_array(rows)?)?;
        let k = args[1].clone().into_array(rows)?;
        let k = k.as_primitive::<arrow::datatypes::Int64Type>();
        let r: Int64Array = arrow::compute::kernels::arity::binary(&x, k, |t, k| {
            let k = k.wrapping_mul(sign);
            match unit_secs(unit) {
                Some((num, den)) => t.wrapping_add(k.wrapping_mul(num * tps / den)),
                None => {
                    let months = k * months_of(unit);
                    let secs = t.div_euclid(tps) + off;
                    let frac = t.rem_euclid(tps);
                    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
                    let total = y * 12 + (m as i64 - 1) + months;
                    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
                    let nd = d.min(days_in_month(ny, nm));
                    let days = days_from_civil(ny, nm, nd);
                    (days * 86_400 + secs.rem_euclid(86_400) - off) * tps + frac
                }
            }
        })?;
        Ok(Value::Array(timestamp_from_i64(r, tu, tz.clone())))
    });
    let out = make_call(f, vec![t, n], ty, nullable)?;
    if was_date && unit_secs(unit).is_none_or(|(num, _)| num >= 86_400) {
        return cast_to(out, &DataType::Date32);
    }
    Ok(out)
}

/// `date_add(unit, n, t)` / `date_sub(unit, n, t)`; also `date_add('unit', n, t)`.
fn date_add(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 3, 3)?;
    let unit = unit_of(ctx, &const_str(ctx, &args, 0)?)?;
    let mut it = args.into_iter().skip(1);
    let (Some(n), Some(t)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    add_interval(ctx, t, n, unit, ctx.name == "date_sub")
}

fn add_named(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let (neg, unit) = match ctx.name.split_once('_') {
        Some((op, u)) => (op == "subtract", unit_of(ctx, u)?),
        None => return Err(arg_error(ctx, "bad name")),
    };
    let mut it = args.into_iter();
    let (Some(t), Some(n)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    add_interval(ctx, t, n, unit, neg)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// `format_datetime(t, 'format')` with ClickHouse's `%` codes.
fn format_datetime(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 3)?;
    let fmt = const_str(ctx, &args, 1)?;
    let e = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let (e, tu, off, _) = as_timestamp(ctx, e)?;
    let tps = ticks_per_second(tu);
    let nullable = e.nullable();
    for c in fmt.split('%').skip(1) {
        if let Some(code) = c.chars().next()
            && !"YymdeHIiSsFTDjpMbaWuw%fhkl".contains(code)
        {
            return Err(arg_error(ctx, format!("unsupported format code %{code}")));
        }
    }
    let f = ScalarFn::new(format!("format_datetime({fmt:?})"), move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let t = timestamp_ticks(&a)?;
        let mut b = StringBuilder::with_capacity(rows, rows * fmt.len());
        let mut out = String::new();
        for v in t.iter() {
            let Some(v) = v else {
                b.append_null();
                continue;
            };
            out.clear();
            let secs = v.div_euclid(tps) + off;
            let frac = v.rem_euclid(tps);
            let days = secs.div_euclid(86_400);
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let (hh, mi, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
            let dow = (days + 3).rem_euclid(7);
            let mut chars = fmt.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                use std::fmt::Write;
                let _ = match chars.next() {
                    Some('Y') => write!(out, "{y:04}"),
                    Some('y') => write!(out, "{:02}", y.rem_euclid(100)),
                    Some('m') => write!(out, "{m:02}"),
                    Some('d') => write!(out, "{d:02}"),
                    Some('e') => write!(out, "{d:>2}"),
                    Some('H') | Some('k') => write!(out, "{hh:02}"),
                    Some('I') | Some('h') | Some('l') => write!(out, "{:02}", if hh % 12 == 0 { 12 } else { hh % 12 }),
                    Some('i') => write!(out, "{mi:02}"),
                    Some('S') | Some('s') => write!(out, "{ss:02}"),
                    Some('f') => write!(out, "{:0w$}", frac, w = (tps as f64).log10() as usize),
                    Some('F') => write!(out, "{y:04}-{m:02}-{d:02}"),
                    Some('T') => write!(out, "{hh:02}:{mi:02}:{ss:02}"),
                    Some('D') => write!(out, "{m:02}/{d:02}/{:02}", y.rem_euclid(100)),
                    Some('j') => write!(out, "{:03}", days - days_from_civil(y, 1, 1) + 1),
                    Some('p') => write!(out, "{}", if hh < 12 { "AM" } else { "PM" }),
                    Some('M') => write!(out, "{}", MONTHS[(m - 1) as usize]),
                    Some('b') => write!(out, "{}", &MONTHS[(m - 1) as usize][..3]),
                    Some('W') => write!(out, "{}", DAYS[dow as usize]),
                    Some('a') => write!(out, "{}", &DAYS[dow as usize][..3]),
                    Some('u') => write!(out, "{}", dow + 1),
                    Some('w') => write!(out, "{}", (dow + 1) % 7),
                    Some('%') => write!(out, "%"),
                    Some(o) => write!(out, "%{o}"),
                    None => write!(out, "%"),
                };
            }
            b.append_value(&out);
        }
        Ok(Value::Array(Arc::new(b.finish())))
    });
    make_call(f, vec![e], DataType::Utf8, nullable)
}

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// `a` and `b` (timestamps of any precision) at most `range_ms` apart: the condition of
/// `date_diff_within`. The range is the function's parameter.
pub(crate) fn within(range_ms: i64, a: BExpr, b: BExpr) -> Result<BExpr> {
    let unit = |e: &BExpr| match value_type(&e.data_type()) {
        DataType::Timestamp(u, _) => Ok(*u),
        other => Err(Error::Bind {
            message: format!("date_diff_within compares times, not {}", type_name(other)),
            span: None,
        }),
    };
    let (ua, ub) = (unit(&a)?, unit(&b)?);
    let nullable = a.nullable() || b.nullable();
    let (ta, tb) = (ticks_per_second(ua), ticks_per_second(ub));
    let f = ScalarFn::new("date_diff_within", move |args, rows| {
        let x = timestamp_ticks(&args[0].clone().into_array(rows)?)?;
        let y = timestamp_ticks(&args[1].clone().into_array(rows)?)?;
        let ms = |t: i64, tps: i64| (t as i128) * 1000 / tps as i128;
        let out: arrow::array::BooleanArray = x
            .iter()
            .zip(y.iter())
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some((ms(x, ta) - ms(y, tb)).abs() <= range_ms as i128),
                _ => None,
            })
            .collect();
        Ok(Value::Array(Arc::new(out)))
    })
    .with_params(vec![ScalarValue::Int64(range_ms)]);
    make_call(f, vec![a, b], DataType::Boolean, nullable)
}
