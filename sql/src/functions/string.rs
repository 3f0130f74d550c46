//! String functions. Positions are 1-based as in ClickHouse; `length` counts bytes (ClickHouse),
//! `length_utf8`/`char_length` count characters; `substring` counts characters so that it never
//! splits a UTF-8 sequence.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericListBuilder, ListArray, StringArray, StringBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field};
use regex::Regex;

use super::{BindFn, FnCtx, arg_error, arity, cast_to, const_str, make_call, want_string};
use crate::error::{Error, Result};
use crate::expr::{BExpr, ScalarFn, Value};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("length", length),
    ("length_utf8", length),
    ("lower", case),
    ("upper", case),
    ("lower_utf8", case),
    ("upper_utf8", case),
    ("reverse", case),
    ("trim", case),
    ("trim_left", case),
    ("trim_right", case),
    ("quote_ident", case),
    ("concat", concat),
    ("substring", substring),
    ("substring_utf8", substring),
    ("left", left_right),
    ("right", left_right),
    ("replace_all", replace),
    ("replace", replace),
    ("replace_one", replace),
    ("replace_regex", replace),
    ("replace_regex_one", replace),
    ("position", position),
    ("position_case_insensitive", position),
    ("starts_with", affix),
    ("ends_with", affix),
    ("match", affix),
    ("empty", empty),
    ("not_empty", empty),
    ("split_by_string", split),
    ("split_by_char", split),
    ("repeat", repeat),
];

fn strings(v: &Value, rows: usize) -> Result<ArrayRef> {
    super::cast::cast_array(&v.clone().into_array(rows)?, &DataType::Utf8)
}

/// Applies `f` row-wise to string argument 0 (NULL in, NULL out).
fn map_str(args: &[Value], rows: usize, f: impl Fn(&str, &mut String)) -> Result<Value> {
    let a = strings(&args[0], rows)?;
    let a = a.as_string::<i32>();
    let mut b = StringBuilder::with_capacity(a.len(), a.value_data().len());
    let mut buf = String::new();
    for v in a.iter() {
        match v {
            None => b.append_null(),
            Some(s) => {
                buf.clear();
                f(s, &mut buf);
                b.append_value(&buf);
            }
        }
    }
    Ok(Value::Array(Arc::new(b.finish())))
}

fn first(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<(BExpr, Vec<BExpr>)> {
    let mut it = args.into_iter();
    let a = it.next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    Ok((a, it.collect()))
}

fn length(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    if matches!(args[0].data_type(), DataType::List(_)) {
        return super::array::array_length(args);
    }
    want_string(ctx, &args, 0)?;
    let chars = ctx.name == "length_utf8";
    let nullable = args[0].nullable();
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let a = strings(&args[0], rows)?;
        let a = a.as_string::<i32>();
        let r: UInt64Array =
            a.iter().map(|v| v.map(|s| if chars { s.chars().count() } else { s.len() } as u64)).collect();
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, args, DataType::UInt64, nullable)
}

fn case(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_string(ctx, &args, 0)?;
    let nullable = args[0].nullable();
    let kind = ctx.name.trim_end_matches("_utf8").to_string();
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        map_str(args, rows, |s, out| match kind.as_str() {
            "lower" => out.push_str(&s.to_lowercase()),
            "upper" => out.push_str(&s.to_uppercase()),
            "reverse" => out.extend(s.chars().rev()),
            "trim" => out.push_str(s.trim()),
            "trim_left" => out.push_str(s.trim_start()),
            "quote_ident" => quote_ident(s, out),
            _ => out.push_str(s.trim_end()),
        })
    });
    make_call(f, args, DataType::Utf8, nullable)
}

/// Postgres' `quote_ident` (for tools' catalog queries): the name as is when it is a plain
/// lower-case identifier, else in double quotes with inner quotes doubled.
fn quote_ident(s: &str, out: &mut String) {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        out.push_str(s);
    } else {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    }
}

fn concat(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, usize::MAX)?;
    let nullable = args.iter().any(BExpr::nullable);
    let args = args.into_iter().map(|a| cast_to(a, &DataType::Utf8)).collect::<Result<Vec<_>>>()?;
    let f = ScalarFn::new("concat", |args, rows| {
        let cols = args.iter().map(|a| strings(a, rows)).collect::<Result<Vec<_>>>()?;
        let cols: Vec<&StringArray> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let mut b = StringBuilder::with_capacity(rows, rows * 16);
        let mut buf = String::new();
        for i in 0..rows {
            if cols.iter().any(|c| c.is_null(i)) {
                b.append_null();
                continue;
            }
            buf.clear();
            cols.iter().for_each(|c| buf.push_str(c.value(i)));
            b.append_value(&buf);
        }
        Ok(Value::Array(Arc::new(b.finish())))
    });
    make_call(f, args, DataType::Utf8, nullable)
}

/// `substring(s, offset[, length])`: 1-based character offset; negative counts from the end.
fn substring(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 3)?;
    want_string(ctx, &args, 0)?;
    let nullable = args.iter().any(BExpr::nullable);
    let (s, rest) = first(ctx, args)?;
    let mut args = vec![s];
    for a in rest {
        if !super::is_integer(&a.data_type()) {
            return Err(arg_error(ctx, "offset and length must be integers"));
        }
        args.push(cast_to(a, &DataType::Int64)?);
    }
    let f = ScalarFn::new("substring", |args, rows| {
        let s = strings(&args[0], rows)?;
        let s = s.as_string::<i32>();
        let off = args[1].clone().into_array(rows)?;
        let off = off.as_primitive::<arrow::datatypes::Int64Type>();
        let len = match args.get(2) {
            Some(l) => Some(l.clone().into_array(rows)?),
            None => None,
        };
        let len = len.as_ref().map(|l| l.as_primitive::<arrow::datatypes::Int64Type>());
        let mut b = StringBuilder::with_capacity(rows, s.value_data().len());
        for i in 0..rows {
            if s.is_null(i) || off.is_null(i) || len.is_some_and(|l| l.is_null(i)) {
                b.append_null();
                continue;
            }
            let v = s.value(i);
            let n = v.chars().count() as i64;
            let o = off.value(i);
            let start = if o > 0 {
                o - 1
            } else if o < 0 {
                (n + o).max(0)
            } else {
                n
            };
            let count = match len {
                Some(l) => {
                    let l = l.value(i);
                    if l < 0 { (n - start + l).max(0) } else { l }
                }
                None => n,
            };
            let out: String = v.chars().skip(start.max(0) as usize).take(count.max(0) as usize).collect();
            b.append_value(out);
        }
        Ok(Value::Array(Arc::new(b.finish())))
    });
    make_call(f, args, DataType::Utf8, nullable)
}

fn left_right(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 0)?;
    let n = super::const_arg(ctx, &args, 1)?.as_i64().ok_or_else(|| arg_error(ctx, "length must be an integer"))?;
    let nullable = args[0].nullable();
    let left = ctx.name == "left";
    let (s, _) = first(ctx, args)?;
    let f = ScalarFn::new(format!("{}_{n}", if left { "left" } else { "right" }), move |args, rows| {
        map_str(args, rows, |s, out| {
            let total = s.chars().count() as i64;
            let k = if n >= 0 { n.min(total) } else { (total + n).max(0) };
            if left {
                out.extend(s.chars().take(k as usize));
            } else {
                out.extend(s.chars().skip((total - k) as usize));
            }
        })
    });
    make_call(f, vec![s], DataType::Utf8, nullable)
}

/// Converts ClickHouse's `\1` back-references to the regex crate's `${1}`.
fn regex_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let d = chars.next().unwrap_or('0');
                out.push_str(&format!("${{{d}}}"));
            }
            '\\' if chars.peek() == Some(&'\\') => {
                chars.next();
                out.push('\\');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

fn compile(ctx: &FnCtx<'_>, pattern: &str) -> Result<Regex> {
    Regex::new(pattern)
        .map_err(|e| Error::InvalidValue { message: format!("{}: invalid regular expression: {e}", ctx.name) })
}

fn replace(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 3, 3)?;
    want_string(ctx, &args, 0)?;
    let pattern = const_str(ctx, &args, 1)?;
    let with = const_str(ctx, &args, 2)?;
    let nullable = args[0].nullable();
    let (s, _) = first(ctx, args)?;
    let name = ctx.name.to_string();
    let f = match ctx.name {
        "replace_regex" | "replace_regex_one" => {
            let re = compile(ctx, &pattern)?;
            let rep = regex_replacement(&with);
            let all = ctx.name == "replace_regex";
            ScalarFn::new(format!("{name}({pattern:?}, {with:?})"), move |args, rows| {
                map_str(args, rows, |s, out| {
                    if all {
                        out.push_str(&re.replace_all(s, rep.as_str()));
                    } else {
                        out.push_str(&re.replace(s, rep.as_str()));
                    }
                })
            })
        }
        _ => {
            let all = ctx.name != "replace_one";
            ScalarFn::new(format!("{name}({pattern:?}, {with:?})"), move |args, rows| {
                map_str(args, rows, |s, out| {
                    if pattern.is_empty() {
                        out.push_str(s)
                    } else if all {
                        out.push_str(&s.replace(&pattern, &with))
                    } else {
                        out.push_str(&s.replacen(&pattern, &with, 1))
                    }
                })
            })
        }
    };
    make_call(f, vec![s], DataType::Utf8, nullable)
}

fn position(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 0)?;
    want_string(ctx, &args, 1)?;
    let nullable = args.iter().any(BExpr::nullable);
    let ci = ctx.name == "position_case_insensitive";
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let h = strings(&args[0], rows)?;
        let n = strings(&args[1], rows)?;
        let (h, n) = (h.as_string::<i32>(), n.as_string::<i32>());
        let r: UInt64Array = (0..rows)
            .map(|i| {
                let hi = if h.len() == 1 { 0 } else { i };
                let ni = if n.len() == 1 { 0 } else { i };
                if h.is_null(hi) || n.is_null(ni) {
                    return None;
                }
                let (hs, ns) = (h.value(hi), n.value(ni));
                let found = if ci { hs.to_lowercase().find(&ns.to_lowercase()) } else { hs.find(ns) };
                Some(found.map(|p| p as u64 + 1).unwrap_or(0))
            })
            .collect();
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, args, DataType::UInt64, nullable)
}

fn affix(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 0)?;
    let needle = const_str(ctx, &args, 1)?;
    let nullable = args[0].nullable();
    let (s, _) = first(ctx, args)?;
    let kind = ctx.name.to_string();
    let re = if kind == "match" { Some(compile(ctx, &needle)?) } else { None };
    let f = ScalarFn::new(format!("{kind}({needle:?})"), move |args, rows| {
        let a = strings(&args[0], rows)?;
        let a = a.as_string::<i32>();
        let r: BooleanArray = a
            .iter()
            .map(|v| {
                v.map(|s| match (&re, kind.as_str()) {
                    (Some(re), _) => re.is_match(s),
                    (None, "starts_with") => s.starts_with(needle.as_str()),
                    _ => s.ends_with(needle.as_str()),
                })
            })
            .collect();
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, vec![s], DataType::Boolean, nullable)
}

fn empty(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    if matches!(args[0].data_type(), DataType::List(_)) {
        let len = super::array::array_length(args)?;
        let zero = BExpr::lit(crate::scalar::ScalarValue::UInt64(0));
        let op = if ctx.name == "empty" { super::compare::CmpOp::Eq } else { super::compare::CmpOp::NotEq };
        return super::compare::compare(ctx, op, len, zero);
    }
    want_string(ctx, &args, 0)?;
    let nullable = args[0].nullable();
    let want_empty = ctx.name == "empty";
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let a = strings(&args[0], rows)?;
        let r: BooleanArray = a.as_string::<i32>().iter().map(|v| v.map(|s| s.is_empty() == want_empty)).collect();
        Ok(Value::Array(Arc::new(r)))
    });
    make_call(f, args, DataType::Boolean, nullable)
}

/// `split_by_string(separator, s)` (ClickHouse's argument order).
fn split(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 1)?;
    let sep = const_str(ctx, &args, 0)?;
    let nullable = args[1].nullable();
    let s = args.into_iter().nth(1).ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let ty = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let f = ScalarFn::new(format!("split_by_string({sep:?})"), move |args, rows| {
        let a = strings(&args[0], rows)?;
        let a = a.as_string::<i32>();
        let mut b = GenericListBuilder::<i32, _>::new(StringBuilder::new());
        for v in a.iter() {
            match v {
                None => b.append_null(),
                Some(s) => {
                    if sep.is_empty() {
                        s.chars().for_each(|c| b.values().append_value(c.to_string()));
                    } else {
                        s.split(sep.as_str()).for_each(|p| b.values().append_value(p));
                    }
                    b.append(true);
                }
            }
        }
        let l: ListArray = b.finish();
        Ok(Value::Array(Arc::new(l)))
    });
    make_call(f, vec![s], ty, nullable)
}

fn repeat(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 0)?;
    let n = super::const_arg(ctx, &args, 1)?.as_i64().ok_or_else(|| arg_error(ctx, "count must be an integer"))?;
    if !(0..=1_000_000).contains(&n) {
        return Err(arg_error(ctx, format!("count {n} is out of range 0..1000000")));
    }
    let nullable = args[0].nullable();
    let (s, _) = first(ctx, args)?;
    let f = ScalarFn::new(format!("repeat_{n}"), move |args, rows| {
        map_str(args, rows, |s, out| out.push_str(&s.repeat(n as usize)))
    });
    make_call(f, vec![s], DataType::Utf8, nullable)
}

#[cfg(test)]
mod tests {
    #[test]
    fn replacement_syntax() {
        assert_eq!(super::regex_replacement(r"\1-\2$"), "${1}-${2}$$");
    }
}
