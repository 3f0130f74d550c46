//! JSON extraction, Proton names over ClickHouse's `JSONExtract*` semantics: the path is a list of
//! keys (strings) or 1-based indices (integers, negative from the end); a missing value gives the
//! type's default (`''`, `0`, `false`). `json_value`/`json_query` take a JSON path (`$.a.b[0]`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use serde_json::Value as Json;

use super::{BindFn, FnCtx, arg_error, arity, make_call, want_string};
use crate::error::Result;
use crate::expr::{BExpr, ScalarFn, Value};
use crate::scalar::ScalarValue;

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("json_extract_string", extract),
    ("json_extract_int", extract),
    ("json_extract_uint", extract),
    ("json_extract_float", extract),
    ("json_extract_bool", extract),
    ("json_extract_raw", extract),
    ("json_has", extract),
    ("json_length", extract),
    ("json_value", path_fn),
    ("json_query", path_fn),
    ("is_valid_json", valid),
];

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(i64),
}

fn walk<'a>(mut v: &'a Json, path: &[Step]) -> Option<&'a Json> {
    for s in path {
        v = match (s, v) {
            (Step::Key(k), Json::Object(m)) => m.get(k)?,
            (Step::Index(i), Json::Array(a)) => {
                let idx = if *i > 0 { *i - 1 } else { a.len() as i64 + *i };
                a.get(usize::try_from(idx).ok()?)?
            }
            (Step::Index(i), Json::Object(m)) => {
                let idx = if *i > 0 { *i - 1 } else { m.len() as i64 + *i };
                m.values().nth(usize::try_from(idx).ok()?)?
            }
            _ => return None,
        };
    }
    Some(v)
}

fn extract(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, usize::MAX)?;
    want_string(ctx, &args, 0)?;
    let mut path = Vec::new();
    for i in 1..args.len() {
        path.push(match super::const_arg(ctx, &args, i)? {
            ScalarValue::Utf8(k) => Step::Key(k),
            v => Step::Index(v.as_i64().ok_or_else(|| arg_error(ctx, "path elements must be strings or integers"))?),
        });
    }
    let nullable = args[0].nullable();
    let kind = ctx.name.to_string();
    let ty = match ctx.name {
        "json_extract_string" | "json_extract_raw" => DataType::Utf8,
        "json_extract_int" => DataType::Int64,
        "json_extract_uint" | "json_length" => DataType::UInt64,
        "json_extract_float" => DataType::Float64,
        _ => DataType::Boolean,
    };
    let doc = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let f = ScalarFn::new(format!("{kind}({path:?})"), move |args, rows| {
        let a = super::cast::cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        let get = |i: usize| -> Option<Json> {
            if a.is_null(i) {
                return None;
            }
            let doc: Json = serde_json::from_str(a.value(i)).ok()?;
            walk(&doc, &path).cloned()
        };
        let out: ArrayRef = match kind.as_str() {
            "json_extract_string" => Arc::new(
                (0..a.len())
                    .map(|i| {
                        a.is_valid(i).then(|| match get(i) {
                            Some(Json::String(s)) => s,
                            _ => String::new(),
                        })
                    })
                    .collect::<StringArray>(),
            ),
            "json_extract_raw" => Arc::new(
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| get(i).map(|v| v.to_string()).unwrap_or_default()))
                    .collect::<StringArray>(),
            ),
            "json_extract_int" | "json_extract_uint" | "json_length" => {
                let vals: Vec<Option<i64>> = (0..a.len())
                    .map(|i| {
                        a.is_valid(i).then(|| match (kind.as_str(), get(i)) {
                            ("json_length", Some(Json::Array(v))) => v.len() as i64,
                            ("json_length", Some(Json::Object(m))) => m.len() as i64,
                            ("json_length", _) => 0,
                            (_, Some(Json::Number(n))) => {
                                n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0)
                            }
                            (_, Some(Json::Bool(b))) => b as i64,
                            _ => 0,
                        })
                    })
                    .collect();
                let arr: ArrayRef = Arc::new(Int64Array::from(vals));
                if kind == "json_extract_int" { arr } else { arrow::compute::cast(&arr, &DataType::UInt64)? }
            }
            "json_extract_float" => Arc::new(
                (0..a.len())
                    .map(|i| {
                        a.is_valid(i).then(|| match get(i) {
                            Some(Json::Number(n)) => n.as_f64().unwrap_or(0.0),
                            _ => 0.0,
                        })
                    })
                    .collect::<Float64Array>(),
            ),
            "json_has" => {
                Arc::new((0..a.len()).map(|i| a.is_valid(i).then(|| get(i).is_some())).collect::<BooleanArray>())
            }
            _ => Arc::new(
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| matches!(get(i), Some(Json::Bool(true)))))
                    .collect::<BooleanArray>(),
            ),
        };
        Ok(Value::Array(out))
    });
    make_call(f, vec![doc], ty, nullable)
}

/// Parses `$.a.b[0]["c d"]` into steps (0-based JSON path indices become 1-based steps).
fn parse_path(p: &str) -> Option<Vec<Step>> {
    let p = p.trim();
    let mut rest = p.strip_prefix('$')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            out.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                out.push(Step::Key(q.to_string()));
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                out.push(Step::Key(q.to_string()));
            } else {
                out.push(Step::Index(inner.parse::<i64>().ok()? + 1));
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

fn path_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    want_string(ctx, &args, 0)?;
    let text = super::const_str(ctx, &args, 1)?;
    let path = parse_path(&text).ok_or_else(|| arg_error(ctx, format!("invalid JSON path `{text}`")))?;
    let query = ctx.name == "json_query";
    let nullable = args[0].nullable();
    let doc = args.into_iter().next().ok_or_else(|| arg_error(ctx, "missing argument"))?;
    let f =
        ScalarFn::new(format!("{}({text:?})", if query { "json_query" } else { "json_value" }), move |args, rows| {
            let a = super::cast::cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
            let a = a.as_string::<i32>();
            let out: StringArray = a
                .iter()
                .map(|v| {
                    v.map(|s| {
                        let doc: Option<Json> = serde_json::from_str(s).ok();
                        let hit = doc.as_ref().and_then(|d| walk(d, &path));
                        match (query, hit) {
                            (true, Some(v)) => format!("[{v}]"),
                            (false, Some(Json::String(s))) => s.clone(),
                            (false, Some(v @ (Json::Number(_) | Json::Bool(_)))) => v.to_string(),
                            _ => String::new(),
                        }
                    })
                })
                .collect();
            Ok(Value::Array(Arc::new(out)))
        });
    make_call(f, vec![doc], DataType::Utf8, nullable)
}

fn valid(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_string(ctx, &args, 0)?;
    let nullable = args[0].nullable();
    let f = ScalarFn::new("is_valid_json", |args, rows| {
        let a = super::cast::cast_array(&args[0].clone().into_array(rows)?, &DataType::Utf8)?;
        let out: BooleanArray =
            a.as_string::<i32>().iter().map(|v| v.map(|s| serde_json::from_str::<Json>(s).is_ok())).collect();
        Ok(Value::Array(Arc::new(out)))
    });
    make_call(f, args, DataType::Boolean, nullable)
}
