//! The scalar function library: name lookup (snake_case, ClickHouse camelCase aliases), argument
//! checking and coercion, constant folding. Each family lives in its own file.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Schema};

use crate::error::{Error, Result, Span};
use crate::expr::{BExpr, ScalarFn, Value};
use crate::scalar::ScalarValue;

/// Arrays: literal, length, has, index access.
pub mod array;
/// CAST and the to_<type> conversions.
pub mod cast;
/// Comparison, logic, LIKE, IN.
pub mod compare;
/// if, multi_if, coalesce, if_null, null_if.
pub mod conditional;
/// Date and time functions.
pub mod datetime;
/// city_hash64, weak_hash32, xx_hash64.
pub mod hash;
/// JSON extraction.
pub mod json;
/// Arithmetic and math.
pub mod math;
/// to_type_name, format_readable_size and other odds.
pub mod misc;
/// String functions.
pub mod string;

/// What a function's binder gets besides its arguments.
#[derive(Debug, Clone)]
pub struct FnCtx<'a> {
    /// The canonical (snake_case) name.
    pub name: &'a str,
    /// Where the call is written.
    pub span: Option<Span>,
    /// The query's `now()`, nanoseconds since the epoch.
    pub now: i64,
}

/// Binds a call: checks and coerces the arguments, returns the bound expression.
pub type BindFn = fn(&FnCtx<'_>, Vec<BExpr>) -> Result<BExpr>;

const FAMILIES: &[&[(&str, BindFn)]] = &[
    math::FUNCTIONS,
    compare::FUNCTIONS,
    string::FUNCTIONS,
    datetime::FUNCTIONS,
    conditional::FUNCTIONS,
    cast::FUNCTIONS,
    hash::FUNCTIONS,
    json::FUNCTIONS,
    array::FUNCTIONS,
    misc::FUNCTIONS,
];

/// Names whose camelCase spelling does not map to the snake_case one mechanically.
const ALIASES: &[(&str, &str)] = &[
    ("to_date_time", "to_datetime"),
    ("to_date_time64", "to_datetime64"),
    ("format_date_time", "format_datetime"),
    ("to_u_int8", "to_uint8"),
    ("to_u_int16", "to_uint16"),
    ("to_u_int32", "to_uint32"),
    ("to_u_int64", "to_uint64"),
    ("replace_regexp_all", "replace_regex"),
    ("replace_regexp_one", "replace_regex_one"),
    ("substr", "substring"),
    ("mid", "substring"),
    ("lcase", "lower"),
    ("ucase", "upper"),
    ("char_length", "length"),
    ("character_length", "length"),
    ("locate", "position"),
    ("ltrim", "trim_left"),
    ("rtrim", "trim_right"),
    ("trim_both", "trim"),
    ("split", "split_by_string"),
    ("date_diff", "date_diff"),
    ("datediff", "date_diff"),
    ("timestamp_diff", "date_diff"),
    ("date_trunc", "date_trunc"),
    ("datetrunc", "date_trunc"),
    ("to_yyyymmdd", "to_yyyymmdd"),
    ("to_y_y_y_y_m_m_d_d", "to_yyyymmdd"),
    ("to_yyyymm", "to_yyyymm"),
    ("ifnull", "if_null"),
    ("nullif", "null_if"),
    ("ceiling", "ceil"),
    ("power", "pow"),
    ("ln", "log"),
    ("mod", "modulo"),
    ("int_div", "int_div"),
    ("visit_param_extract_string", "json_extract_string"),
    ("j_s_o_n_extract_string", "json_extract_string"),
    ("add_seconds", "add_seconds"),
    ("today", "today"),
];

/// ClickHouse camelCase to snake_case: `toStartOfMinute` -> `to_start_of_minute`,
/// `JSONExtractString` -> `json_extract_string`, `cityHash64` -> `city_hash64`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if (prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower))
                && !out.ends_with('_')
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The canonical name for `name` as written (any case, camelCase or snake_case).
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let candidates = [lower.clone(), snake_case(name)];
    for c in &candidates {
        if let Some((_, to)) = ALIASES.iter().find(|(from, _)| from == c) {
            return to.to_string();
        }
        if is_known(c) {
            return c.clone();
        }
    }
    snake_case(name)
}

fn is_known(name: &str) -> bool {
    FAMILIES.iter().any(|f| f.iter().any(|(n, _)| *n == name)) || crate::aggregate::is_aggregate(name)
}

/// The binder of scalar function `canonical`.
pub fn lookup(canonical: &str) -> Option<BindFn> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|(n, _)| *n == canonical).map(|(_, f)| *f)
}

/// Every function name (scalar and aggregate), for suggestions and docs.
pub fn all_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FAMILIES.iter().flat_map(|f| f.iter().map(|(n, _)| *n)).collect();
    v.extend(crate::aggregate::NAMES.iter().copied());
    v.sort_unstable();
    v.dedup();
    v
}

/// The closest known name to `name` (edit distance <= 3), for "did you mean".
pub fn suggest(name: &str) -> Option<&'static str> {
    let target = canonical(name);
    all_names()
        .into_iter()
        .map(|n| (edit_distance(&target, n), n))
        .filter(|(d, _)| *d <= 3.max(target.len() / 4))
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The error for an unknown function, with a suggestion when a known name is close.
pub fn unknown_function(name: &str, span: Option<Span>) -> Error {
    Error::UnknownFunction { name: name.to_string(), suggestion: suggest(name).map(str::to_string), span }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the families.

/// A bind error about the call in `ctx`.
pub fn arg_error(ctx: &FnCtx<'_>, message: impl std::fmt::Display) -> Error {
    Error::Bind { message: format!("function `{}`: {message}", ctx.name), span: ctx.span }
}

/// Checks the argument count.
pub fn arity(ctx: &FnCtx<'_>, args: &[BExpr], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(arg_error(ctx, format!("expects {want} argument(s), got {}", args.len())));
    }
    Ok(())
}

/// The type a dictionary holds (other types unchanged).
pub fn value_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, v) => v,
        t => t,
    }
}

/// Integer types.
pub fn is_integer(t: &DataType) -> bool {
    value_type(t).is_integer()
}

/// Integer, float or decimal.
pub fn is_numeric(t: &DataType) -> bool {
    let t = value_type(t);
    t.is_numeric() || matches!(t, DataType::Null)
}

/// String types.
pub fn is_string(t: &DataType) -> bool {
    matches!(value_type(t), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
}

/// Date or timestamp.
pub fn is_temporal(t: &DataType) -> bool {
    matches!(value_type(t), DataType::Date32 | DataType::Timestamp(..))
}

/// Requires a string argument at `i`.
pub fn want_string(ctx: &FnCtx<'_>, args: &[BExpr], i: usize) -> Result<()> {
    let t = args[i].data_type();
    if is_string(&t) {
        Ok(())
    } else {
        Err(arg_error(ctx, format!("argument {} must be a string, got {}", i + 1, type_name(&t))))
    }
}

/// Requires a numeric argument at `i`.
pub fn want_numeric(ctx: &FnCtx<'_>, args: &[BExpr], i: usize) -> Result<()> {
    let t = args[i].data_type();
    if is_numeric(&t) || t == DataType::Boolean {
        Ok(())
    } else {
        Err(arg_error(ctx, format!("argument {} must be a number, got {}", i + 1, type_name(&t))))
    }
}

/// A constant argument's value.
pub fn const_arg(ctx: &FnCtx<'_>, args: &[BExpr], i: usize) -> Result<ScalarValue> {
    args.get(i)
        .and_then(BExpr::as_literal)
        .ok_or_else(|| arg_error(ctx, format!("argument {} must be a constant", i + 1)))
}

/// A constant string argument.
pub fn const_str(ctx: &FnCtx<'_>, args: &[BExpr], i: usize) -> Result<String> {
    match const_arg(ctx, args, i)? {
        ScalarValue::Utf8(s) => Ok(s),
        other => Err(arg_error(ctx, format!("argument {} must be a constant string, got {other}", i + 1))),
    }
}

/// The sluice type name of an Arrow type, for messages.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "nothing".into(),
        _ => crate::types::SqlType::from_arrow(t).map(|s| s.to_string()).unwrap_or_else(|_| t.to_string()),
    }
}

/// A call expression, folded to a literal when every argument is constant.
pub fn make_call(func: ScalarFn, args: Vec<BExpr>, ty: DataType, nullable: bool) -> Result<BExpr> {
    let call = BExpr::Call { func, args, ty, nullable };
    fold(call)
}

/// Evaluates a constant expression to a literal; other expressions are returned as they are.
pub fn fold(e: BExpr) -> Result<BExpr> {
    if matches!(e, BExpr::Literal(_)) || !e.is_constant() {
        return Ok(e);
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let v = e.eval(&batch)?;
    let a: ArrayRef = match v {
        Value::Scalar(a) | Value::Array(a) => a,
    };
    if a.len() != 1 {
        return Err(Error::Internal { message: format!("constant folding gave {} values", a.len()) });
    }
    Ok(BExpr::Literal(a))
}

/// Casts an expression to `to` (folding constants; a no-op if it already has that type).
pub fn cast_to(e: BExpr, to: &DataType) -> Result<BExpr> {
    if &e.data_type() == to {
        return Ok(e);
    }
    let nullable = e.nullable();
    let target = to.clone();
    let f = ScalarFn::new(format!("cast_{}", type_name(to)), move |args, rows| {
        let a = args[0].clone();
        match a {
            Value::Scalar(s) => Ok(Value::Scalar(cast::cast_array(&s, &target)?)),
            Value::Array(a) => {
                let _ = rows;
                Ok(Value::Array(cast::cast_array(&a, &target)?))
            }
        }
    });
    make_call(f, vec![e], to.clone(), nullable)
}

/// The common type of two numeric types for arithmetic and comparison.
pub fn common_numeric(a: &DataType, b: &DataType) -> DataType {
    let (a, b) = (value_type(a), value_type(b));
    use DataType::*;
    if a == b && (a.is_numeric()) {
        return a.clone();
    }
    match (a, b) {
        (Null, t) | (t, Null) => t.clone(),
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            let s = (*s1).max(*s2);
            let int = (*p1 as i16 - *s1 as i16).max(*p2 as i16 - *s2 as i16);
            Decimal128(((int + s as i16).min(38)) as u8, s)
        }
        (Decimal128(p, s), t) | (t, Decimal128(p, s)) if t.is_integer() => Decimal128((*p).clamp(20, 38), *s),
        _ if a.is_floating() || b.is_floating() || matches!(a, Decimal128(..)) || matches!(b, Decimal128(..)) => {
            Float64
        }
        (Boolean, t) | (t, Boolean) if t.is_integer() => t.clone(),
        (Boolean, Boolean) => UInt8,
        _ if a.is_unsigned_integer() && b.is_unsigned_integer() => UInt64,
        _ => Int64,
    }
}
