//! Aggregate functions: binding (names, `-If` combinators, parameters such as `quantile(0.9)(x)`,
//! result types) and the per-group accumulators that the hash aggregate drives.
//!
//! Accumulators are vectorised: `update` gets whole argument columns plus one group id per row.
//! Partial states from different threads are merged with a group-id mapping.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field};

use crate::error::{Error, Result, Span};
use crate::expr::BExpr;
use crate::functions::{is_numeric, is_string, type_name, value_type};
use crate::scalar::ScalarValue;

/// count, sum, avg, min, max.
pub mod basic;
/// count(DISTINCT), uniq, uniq_exact.
pub mod distinct;
/// any, any_last, arg_min, arg_max, group_array, min/max of other types.
pub mod generic;
/// quantile, median, quantiles and the exact variants.
pub mod quantile;
/// Accumulators that can take rows back (changing inputs).
pub mod retract;

/// Every aggregate name (without `_if` combinators).
pub const NAMES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "any",
    "any_last",
    "first_value",
    "last_value",
    "uniq",
    "uniq_exact",
    "uniq_combined",
    "uniq_hll12",
    "count_distinct",
    "quantile",
    "quantiles",
    "quantile_exact",
    "quantile_exact_inclusive",
    "quantile_exact_exclusive",
    "quantile_t_digest",
    "quantiles_exact_inclusive",
    "median",
    "median_exact",
    "group_array",
    "group_uniq_array",
    "arg_min",
    "arg_max",
    "stddev_pop",
    "stddev_samp",
    "var_pop",
    "var_samp",
    "count_if",
    "sum_if",
    "avg_if",
    "min_if",
    "max_if",
    "uniq_if",
    "any_if",
    "uniq_exact_if",
];

/// Whether `canonical` names an aggregate (including `x_if` for an aggregate `x`).
pub fn is_aggregate(canonical: &str) -> bool {
    NAMES.contains(&canonical) || canonical.strip_suffix("_if").is_some_and(|b| NAMES.contains(&b))
}

/// How a quantile is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuantileMethod {
    /// Linear interpolation at `p * (n - 1)` (R7, DuckDB's quantile_cont).
    Inclusive,
    /// Linear interpolation at `p * (n + 1) - 1` (R6).
    Exclusive,
    /// ClickHouse's quantileExact: the element at `floor(p * n)` of the sorted values.
    Nearest,
}

/// What an aggregate computes.
#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    /// `count(*)`.
    CountStar,
    /// `count(x)`: non-NULL values.
    Count,
    /// `sum(x)`.
    Sum,
    /// `avg(x)`.
    Avg,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `any(x)`: first non-NULL value.
    Any,
    /// `any_last(x)`.
    AnyLast,
    /// `count(DISTINCT x...)`, `uniq`, `uniq_exact` (exact).
    CountDistinct,
    /// Quantiles at the levels; `array` means one Array(Float64) result (`quantiles`).
    Quantile {
        /// Levels in [0, 1].
        levels: Vec<f64>,
        /// Method.
        method: QuantileMethod,
        /// Return one array instead of one value.
        array: bool,
    },
    /// `group_array([max])(x)`, `group_uniq_array`.
    GroupArray {
        /// Keep at most this many per group.
        max: Option<usize>,
        /// Distinct values only.
        distinct: bool,
    },
    /// `arg_min(arg, val)`.
    ArgMin,
    /// `arg_max(arg, val)`.
    ArgMax,
    /// Variance and standard deviation: (sample?, sqrt?).
    Variance {
        /// Divide by n - 1.
        sample: bool,
        /// Take the square root.
        stddev: bool,
    },
}

/// A bound aggregate call.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// What it computes.
    pub kind: AggKind,
    /// Arguments (over the aggregate's input).
    pub args: Vec<BExpr>,
    /// `-If` condition or `FILTER (WHERE ...)`.
    pub filter: Option<BExpr>,
    /// Result type.
    pub ty: DataType,
    /// Result may be NULL.
    pub nullable: bool,
    /// Display name.
    pub name: String,
}

impl fmt::Display for AggCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        f.write_str(")")?;
        if let Some(c) = &self.filter {
            write!(f, " FILTER (WHERE {c})")?;
        }
        Ok(())
    }
}

fn bind_err(name: &str, span: Option<Span>, m: impl fmt::Display) -> Error {
    Error::Bind { message: format!("aggregate function `{name}`: {m}"), span }
}

fn param_f64(name: &str, span: Option<Span>, p: &ScalarValue) -> Result<f64> {
    let v = p.as_f64().ok_or_else(|| bind_err(name, span, format!("level {p} must be a number")))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(bind_err(name, span, format!("level {v} is outside [0, 1]")));
    }
    Ok(v)
}

/// Binds an aggregate call. `params` are ClickHouse's parametric arguments (`quantile(0.9)`).
pub fn bind(
    canonical: &str,
    params: Vec<ScalarValue>,
    mut args: Vec<BExpr>,
    distinct: bool,
    star: bool,
    mut filter: Option<BExpr>,
    span: Option<Span>,
) -> Result<AggCall> {
    let mut name = canonical.to_string();
    if let Some(base) = canonical.strip_suffix("_if") {
        {
            let cond = args.pop().ok_or_else(|| bind_err(canonical, span, "needs a condition argument"))?;
            let cond = crate::functions::compare::to_bool(cond)?;
            filter = Some(match filter {
                Some(f) => BExpr::And(vec![f, cond]),
                None => cond,
            });
            name = base.to_string();
        }
    }
    let base = name.as_str();
    let arity = |n: usize, min: usize, max: usize| -> Result<()> {
        if n < min || n > max {
            return Err(bind_err(base, span, format!("expects {min}..{max} arguments, got {n}")));
        }
        Ok(())
    };
    let arg_type = args.first().map(|a| value_type(&a.data_type()).clone()).unwrap_or(DataType::Null);
    let any_nullable = args.iter().any(BExpr::nullable);
    let (kind, ty, nullable) = match base {
        "count" if distinct => {
            arity(args.len(), 1, usize::MAX)?;
            (AggKind::CountDistinct, DataType::UInt64, false)
        }
        "count" if star || args.is_empty() => (AggKind::CountStar, DataType::UInt64, false),
        "count" => {
            arity(args.len(), 1, 1)?;
            (AggKind::Count, DataType::UInt64, false)
        }
        "uniq" | "uniq_exact" | "uniq_combined" | "uniq_hll12" | "count_distinct" => {
            arity(args.len(), 1, usize::MAX)?;
            (AggKind::CountDistinct, DataType::UInt64, false)
        }
        "sum" => {
            arity(args.len(), 1, 1)?;
            let t = match &arg_type {
                t if t.is_unsigned_integer() || *t == DataType::Boolean => DataType::UInt64,
                t if t.is_signed_integer() => DataType::Int64,
                DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
                t if t.is_floating() || *t == DataType::Null => DataType::Float64,
                t => return Err(bind_err(base, span, format!("cannot sum {}", type_name(t)))),
            };
            (AggKind::Sum, t, any_nullable)
        }
        "avg" => {
            arity(args.len(), 1, 1)?;
            if !is_numeric(&arg_type) && arg_type != DataType::Boolean {
                return Err(bind_err(base, span, format!("cannot average {}", type_name(&arg_type))));
            }
            (AggKind::Avg, DataType::Float64, any_nullable)
        }
        "stddev_pop" | "stddev_samp" | "var_pop" | "var_samp" => {
            arity(args.len(), 1, 1)?;
            if !is_numeric(&arg_type) {
                return Err(bind_err(base, span, format!("needs a number, got {}", type_name(&arg_type))));
            }
            let kind = AggKind::Variance { sample: base.ends_with("samp"), stddev: base.starts_with("stddev") };
            (kind, DataType::Float64, true)
        }
        "min" | "max" => {
            arity(args.len(), 1, 1)?;
            (if base == "min" { AggKind::Min } else { AggKind::Max }, arg_type.clone(), any_nullable)
        }
        "any" | "first_value" => {
            arity(args.len(), 1, 1)?;
            (AggKind::Any, arg_type.clone(), any_nullable)
        }
        "any_last" | "last_value" => {
            arity(args.len(), 1, 1)?;
            (AggKind::AnyLast, arg_type.clone(), any_nullable)
        }
        "arg_min" | "arg_max" => {
            arity(args.len(), 2, 2)?;
            (if base == "arg_min" { AggKind::ArgMin } else { AggKind::ArgMax }, arg_type.clone(), true)
        }
        "group_array" | "group_uniq_array" => {
            arity(args.len(), 1, 1)?;
            let max = match params.first() {
                Some(p) => Some(
                    p.as_i64()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| bind_err(base, span, "max size must be a positive integer"))?
                        as usize,
                ),
                None => None,
            };
            let ty = DataType::List(Arc::new(Field::new("item", arg_type.clone(), true)));
            (AggKind::GroupArray { max, distinct: base == "group_uniq_array" }, ty, false)
        }
        "quantile"
        | "quantile_exact"
        | "quantile_exact_inclusive"
        | "quantile_exact_exclusive"
        | "quantile_t_digest"
        | "median"
        | "median_exact"
        | "quantiles"
        | "quantiles_exact_inclusive" => {
            let array = base.starts_with("quantiles");
            let mut levels = params.iter().map(|p| param_f64(base, span, p)).collect::<Result<Vec<_>>>()?;
            // The function-call form quantile(x, p).
            if !array && levels.is_empty() && args.len() == 2 {
                let p = args
                    .pop()
                    .and_then(|a| a.as_literal())
                    .ok_or_else(|| bind_err(base, span, "the level must be a constant"))?;
                levels.push(param_f64(base, span, &p)?);
            }
            arity(args.len(), 1, 1)?;
            if levels.is_empty() {
                if array {
                    return Err(bind_err(base, span, "needs levels, as in quantiles(0.5, 0.9)(x)"));
                }
                levels.push(0.5);
            }
            if !array && levels.len() > 1 {
                return Err(bind_err(base, span, "takes one level; use quantiles(...) for several"));
            }
            if !is_numeric(&arg_type) {
                return Err(bind_err(base, span, format!("needs a number, got {}", type_name(&arg_type))));
            }
            let method = match base {
                "quantile_exact" | "median_exact" => QuantileMethod::Nearest,
                "quantile_exact_exclusive" => QuantileMethod::Exclusive,
                _ => QuantileMethod::Inclusive,
            };
            let ty = if array {
                DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
            } else {
                DataType::Float64
            };
            (AggKind::Quantile { levels, method, array }, ty, !array)
        }
        _ => return Err(crate::functions::unknown_function(canonical, span)),
    };
    if matches!(kind, AggKind::Min | AggKind::Max | AggKind::Any | AggKind::AnyLast)
        && !(is_numeric(&arg_type)
            || is_string(&arg_type)
            || crate::functions::is_temporal(&arg_type)
            || arg_type == DataType::Boolean)
        && !matches!(arg_type, DataType::Null | DataType::List(_) | DataType::FixedSizeBinary(_))
    {
        return Err(bind_err(base, span, format!("unsupported argument type {}", type_name(&arg_type))));
    }
    Ok(AggCall { kind, args, filter, ty, nullable, name })
}

/// The per-group state of one aggregate (or of several quantile calls sharing one argument).
pub trait Accumulator: Send {
    /// Adds rows: `args` are the argument columns, `groups[i]` the group of row i; every group id
    /// is below `num_groups` (state grows to it).
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()>;
    /// Adds another partial state whose group g is this state's group `map[g]`.
    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()>;
    /// The results, one array per output (several for shared quantiles), `num_groups` rows each.
    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>>;
    /// Approximate heap bytes held.
    fn size(&self) -> usize;
    /// For downcasting in `merge`.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// A copy of the state (streaming queries emit partial results without ending the state).
    fn boxed_clone(&self) -> Box<dyn Accumulator>;
    /// The state as arrays (one row per group) for a checkpoint; `None` when this kind of
    /// state cannot be saved (the query then replays its input instead).
    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let _ = num_groups;
        None
    }
    /// Restores a state [`Accumulator::save`] produced, into a fresh accumulator.
    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let _ = state;
        Err(Error::Internal { message: "this accumulator cannot load a saved state".into() })
    }
    /// Takes rows back (an input row was deleted or replaced); only [`retract::create`]'s
    /// accumulators support it.
    fn retract(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        let _ = (args, groups, num_groups);
        Err(Error::Internal { message: "this accumulator cannot retract rows".into() })
    }
}

/// Column `i` of a saved state ([`Accumulator::save`]) as a primitive array of `T`.
pub(crate) fn saved<T: arrow::datatypes::ArrowPrimitiveType>(
    state: &[ArrayRef],
    i: usize,
) -> Result<&arrow::array::PrimitiveArray<T>> {
    use arrow::array::AsArray;
    state
        .get(i)
        .and_then(|a| a.as_primitive_opt::<T>())
        .ok_or_else(|| Error::Internal { message: format!("saved aggregate state: column {i} has the wrong type") })
}

/// Column `i` of a saved state as booleans.
pub(crate) fn saved_bools(state: &[ArrayRef], i: usize) -> Result<Vec<bool>> {
    use arrow::array::AsArray;
    state
        .get(i)
        .and_then(|a| a.as_boolean_opt())
        .map(|b| b.values().iter().collect())
        .ok_or_else(|| Error::Internal { message: format!("saved aggregate state: column {i} is not boolean") })
}

/// Column `i` of a saved state as a list array.
pub(crate) fn saved_list(state: &[ArrayRef], i: usize) -> Result<&arrow::array::ListArray> {
    use arrow::array::AsArray;
    state
        .get(i)
        .and_then(|a| a.as_list_opt::<i32>())
        .ok_or_else(|| Error::Internal { message: format!("saved aggregate state: column {i} is not a list") })
}

/// Downcasts the other side of a merge.
pub(crate) fn downcast<T: 'static>(other: Box<dyn Accumulator>) -> Result<Box<T>> {
    other
        .into_any()
        .downcast::<T>()
        .map_err(|_| Error::Internal { message: "merging accumulators of different kinds".into() })
}

/// A fresh accumulator for `calls` (several only for quantiles sharing argument and filter).
pub fn create(calls: &[&AggCall], threads: usize) -> Result<Box<dyn Accumulator>> {
    let call = calls[0];
    let arg_type = call.args.first().map(|a| value_type(&a.data_type()).clone()).unwrap_or(DataType::Null);
    Ok(match &call.kind {
        AggKind::CountStar => Box::new(basic::CountAcc::new(true)),
        AggKind::Count => Box::new(basic::CountAcc::new(false)),
        AggKind::Sum => basic::sum(&call.ty, call.nullable)?,
        AggKind::Avg => Box::new(basic::AvgAcc::new(call.nullable)),
        AggKind::Variance { sample, stddev } => Box::new(basic::VarAcc::new(*sample, *stddev)),
        AggKind::Min | AggKind::Max => basic::min_max(&arg_type, call.kind == AggKind::Min, call.nullable)?,
        AggKind::Any | AggKind::AnyLast => Box::new(generic::AnyAcc::new(call.kind == AggKind::AnyLast, arg_type)),
        AggKind::ArgMin | AggKind::ArgMax => Box::new(generic::ArgAcc::new(call.kind == AggKind::ArgMin, arg_type)),
        AggKind::GroupArray { max, distinct } => Box::new(generic::GroupArrayAcc::new(*max, *distinct, arg_type)),
        AggKind::CountDistinct => Box::new(distinct::DistinctAcc::new(&call.args)),
        AggKind::Quantile { .. } => {
            let outs = calls
                .iter()
                .map(|c| match &c.kind {
                    AggKind::Quantile { levels, method, array } => Ok((levels.clone(), *method, *array)),
                    _ => Err(Error::Internal { message: "mixed quantile group".into() }),
                })
                .collect::<Result<Vec<_>>>()?;
            Box::new(quantile::QuantileAcc::new(outs).with_threads(threads))
        }
    })
}

/// Whether two calls can share one accumulator (quantiles of the same argument and filter).
pub fn shares_state(a: &AggCall, b: &AggCall) -> bool {
    matches!(a.kind, AggKind::Quantile { .. })
        && matches!(b.kind, AggKind::Quantile { .. })
        && a.args == b.args
        && a.filter == b.filter
}

/// Grows a vector to `n` elements.
#[inline]
pub(crate) fn grow<T: Clone>(v: &mut Vec<T>, n: usize, fill: T) {
    if v.len() < n {
        v.resize(n, fill);
    }
}
