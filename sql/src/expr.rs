//! Bound, typed expressions and their vectorised evaluation over record batches.
//!
//! A [`BExpr`] is produced by the binder. In a logical plan its `Column` ids are column ids (unique
//! per query); the physical planner rewrites them into positions of the input batch.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, new_null_array};
use arrow::compute::kernels::cmp;
use arrow::compute::{and_kleene, cast, is_not_null, is_null, not, or_kleene, take};
use arrow::datatypes::{DataType, Int32Type};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::scalar::ScalarValue;

/// The result of evaluating an expression on a batch: a column, or one value for every row.
#[derive(Debug, Clone)]
pub enum Value {
    /// One value per row.
    Array(ArrayRef),
    /// The same value for every row (a 1-element array).
    Scalar(ArrayRef),
}

impl Value {
    /// As an array of `rows` rows.
    pub fn into_array(self, rows: usize) -> Result<ArrayRef> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(s) => repeat(&s, rows),
        }
    }

    /// The Arrow type.
    pub fn data_type(&self) -> &DataType {
        match self {
            Value::Array(a) | Value::Scalar(a) => a.data_type(),
        }
    }

    /// The array inside (1 element for a scalar).
    pub fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(a) | Value::Scalar(a) => a,
        }
    }

    /// Whether this is a scalar.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }
}

/// Repeats a 1-element array `rows` times.
pub fn repeat(s: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    if s.len() == rows {
        return Ok(s.clone());
    }
    if s.is_null(0) {
        return Ok(new_null_array(s.data_type(), rows));
    }
    let idx = arrow::array::UInt32Array::from(vec![0u32; rows]);
    Ok(take(s.as_ref(), &idx, None)?)
}

/// Evaluates a binary kernel on two values, keeping scalars scalar.
pub fn binary_datum(
    a: &Value,
    b: &Value,
    f: impl Fn(
        &dyn arrow::array::Datum,
        &dyn arrow::array::Datum,
    ) -> std::result::Result<ArrayRef, arrow::error::ArrowError>,
) -> Result<Value> {
    use arrow::array::Scalar;
    Ok(match (a, b) {
        (Value::Array(x), Value::Array(y)) => Value::Array(f(x, y)?),
        (Value::Array(x), Value::Scalar(y)) => Value::Array(f(x, &Scalar::new(y.clone()))?),
        (Value::Scalar(x), Value::Array(y)) => Value::Array(f(&Scalar::new(x.clone()), y)?),
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(f(x, y)?),
    })
}

/// Signature of a scalar function's implementation: argument values and the batch's row count.
pub type FnImpl = dyn Fn(&[Value], usize) -> Result<Value> + Send + Sync;

/// A bound scalar function.
#[derive(Clone)]
pub struct ScalarFn {
    /// Its canonical name (for EXPLAIN and expression matching).
    pub name: Arc<str>,
    /// The implementation.
    pub f: Arc<FnImpl>,
    /// Row-wise and deterministic: on a dictionary column it may run on the dictionary's values.
    pub elementwise: bool,
    /// Constant parameters worth knowing to the planner (the value list of `IN`).
    pub params: Arc<[crate::scalar::ScalarValue]>,
}

impl fmt::Debug for ScalarFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl ScalarFn {
    /// A row-wise deterministic function.
    pub fn new(
        name: impl Into<Arc<str>>,
        f: impl Fn(&[Value], usize) -> Result<Value> + Send + Sync + 'static,
    ) -> Self {
        ScalarFn { name: name.into(), f: Arc::new(f), elementwise: true, params: Arc::from(Vec::new()) }
    }

    /// The same function carrying planner-visible parameters.
    pub fn with_params(self, params: Vec<crate::scalar::ScalarValue>) -> Self {
        ScalarFn { params: Arc::from(params), ..self }
    }

    /// A function that is not row-wise deterministic (`rand`, `now`).
    pub fn volatile(self) -> Self {
        ScalarFn { elementwise: false, ..self }
    }
}

/// A bound expression.
#[derive(Debug, Clone)]
pub enum BExpr {
    /// A column: id (logical) or index (physical).
    Column {
        /// Column id or index.
        id: usize,
        /// Name for display.
        name: Arc<str>,
        /// Type.
        ty: DataType,
        /// May hold NULL.
        nullable: bool,
    },
    /// A constant (1-element array of its type).
    Literal(ArrayRef),
    /// A scalar function call.
    Call {
        /// The function.
        func: ScalarFn,
        /// Arguments.
        args: Vec<BExpr>,
        /// Result type.
        ty: DataType,
        /// May return NULL.
        nullable: bool,
    },
    /// `CASE WHEN c THEN v ... ELSE e END` (also `if`, `multi_if`).
    Case {
        /// Conditions and results.
        whens: Vec<(BExpr, BExpr)>,
        /// The ELSE result (NULL if absent).
        otherwise: Option<Box<BExpr>>,
        /// Result type.
        ty: DataType,
    },
    /// `AND` of several conjuncts (Kleene logic).
    And(Vec<BExpr>),
    /// `OR` of several disjuncts (Kleene logic).
    Or(Vec<BExpr>),
}

impl PartialEq for BExpr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BExpr::Column { id: a, .. }, BExpr::Column { id: b, .. }) => a == b,
            (BExpr::Literal(a), BExpr::Literal(b)) => a.to_data() == b.to_data(),
            (BExpr::Call { func: f1, args: a1, ty: t1, .. }, BExpr::Call { func: f2, args: a2, ty: t2, .. }) => {
                f1.name == f2.name && a1 == a2 && t1 == t2
            }
            (BExpr::Case { whens: w1, otherwise: o1, ty: t1 }, BExpr::Case { whens: w2, otherwise: o2, ty: t2 }) => {
                w1 == w2 && o1 == o2 && t1 == t2
            }
            (BExpr::And(a), BExpr::And(b)) | (BExpr::Or(a), BExpr::Or(b)) => a == b,
            _ => false,
        }
    }
}

impl BExpr {
    /// A literal of a scalar value (its natural type).
    pub fn lit(v: ScalarValue) -> BExpr {
        BExpr::Literal(v.to_array())
    }

    /// The result type.
    pub fn data_type(&self) -> DataType {
        match self {
            BExpr::Column { ty, .. } | BExpr::Call { ty, .. } | BExpr::Case { ty, .. } => ty.clone(),
            BExpr::Literal(a) => a.data_type().clone(),
            BExpr::And(_) | BExpr::Or(_) => DataType::Boolean,
        }
    }

    /// Whether the result may be NULL.
    pub fn nullable(&self) -> bool {
        match self {
            BExpr::Column { nullable, .. } | BExpr::Call { nullable, .. } => *nullable,
            BExpr::Literal(a) => a.is_null(0),
            BExpr::Case { whens, otherwise, .. } => {
                otherwise.as_ref().is_none_or(|o| o.nullable()) || whens.iter().any(|(_, v)| v.nullable())
            }
            BExpr::And(v) | BExpr::Or(v) => v.iter().any(BExpr::nullable),
        }
    }

    /// The constant value, if this is a literal.
    pub fn as_literal(&self) -> Option<ScalarValue> {
        match self {
            BExpr::Literal(a) => ScalarValue::try_from_array(a.as_ref(), 0).ok(),
            _ => None,
        }
    }

    /// Whether no column occurs in it.
    pub fn is_constant(&self) -> bool {
        let mut cols = Vec::new();
        self.columns(&mut cols);
        cols.is_empty() && self.is_deterministic()
    }

    fn is_deterministic(&self) -> bool {
        match self {
            BExpr::Call { func, args, .. } => func.elementwise && args.iter().all(BExpr::is_deterministic),
            BExpr::Case { whens, otherwise, .. } => {
                whens.iter().all(|(c, v)| c.is_deterministic() && v.is_deterministic())
                    && otherwise.as_ref().is_none_or(|o| o.is_deterministic())
            }
            BExpr::And(v) | BExpr::Or(v) => v.iter().all(BExpr::is_deterministic),
            _ => true,
        }
    }

    /// Appends every column id/index it reads.
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            BExpr::Column { id, .. } => out.push(*id),
            BExpr::Literal(_) => {}
            BExpr::Call { args, .. } | BExpr::And(args) | BExpr::Or(args) => args.iter().for_each(|a| a.columns(out)),
            BExpr::Case { whens, otherwise, .. } => {
                for (c, v) in whens {
                    c.columns(out);
                    v.columns(out);
                }
                if let Some(o) = otherwise {
                    o.columns(out);
                }
            }
        }
    }

    /// Rewrites column ids/indices with `f`.
    pub fn map_columns(&self, f: &mut dyn FnMut(usize) -> Result<usize>) -> Result<BExpr> {
        Ok(match self {
            BExpr::Column { id, name, ty, nullable } => {
                BExpr::Column { id: f(*id)?, name: name.clone(), ty: ty.clone(), nullable: *nullable }
            }
            BExpr::Literal(a) => BExpr::Literal(a.clone()),
            BExpr::Call { func, args, ty, nullable } => BExpr::Call {
                func: func.clone(),
                args: args.iter().map(|a| a.map_columns(f)).collect::<Result<_>>()?,
                ty: ty.clone(),
                nullable: *nullable,
            },
            BExpr::Case { whens, otherwise, ty } => BExpr::Case {
                whens: whens.iter().map(|(c, v)| Ok((c.map_columns(f)?, v.map_columns(f)?))).collect::<Result<_>>()?,
                otherwise: match otherwise {
                    Some(o) => Some(Box::new(o.map_columns(f)?)),
                    None => None,
                },
                ty: ty.clone(),
            },
            BExpr::And(v) => BExpr::And(v.iter().map(|a| a.map_columns(f)).collect::<Result<_>>()?),
            BExpr::Or(v) => BExpr::Or(v.iter().map(|a| a.map_columns(f)).collect::<Result<_>>()?),
        })
    }

    /// Rewrites top-down: where `f` returns Some, the subtree is replaced (and not visited).
    pub fn rewrite(&self, f: &mut dyn FnMut(&BExpr) -> Result<Option<BExpr>>) -> Result<BExpr> {
        if let Some(r) = f(self)? {
            return Ok(r);
        }
        Ok(match self {
            BExpr::Column { .. } | BExpr::Literal(_) => self.clone(),
            BExpr::Call { func, args, ty, nullable } => BExpr::Call {
                func: func.clone(),
                args: args.iter().map(|a| a.rewrite(f)).collect::<Result<_>>()?,
                ty: ty.clone(),
                nullable: *nullable,
            },
            BExpr::Case { whens, otherwise, ty } => BExpr::Case {
                whens: whens.iter().map(|(c, v)| Ok((c.rewrite(f)?, v.rewrite(f)?))).collect::<Result<_>>()?,
                otherwise: match otherwise {
                    Some(o) => Some(Box::new(o.rewrite(f)?)),
                    None => None,
                },
                ty: ty.clone(),
            },
            BExpr::And(v) => BExpr::And(v.iter().map(|a| a.rewrite(f)).collect::<Result<_>>()?),
            BExpr::Or(v) => BExpr::Or(v.iter().map(|a| a.rewrite(f)).collect::<Result<_>>()?),
        })
    }

    /// Splits an AND into its conjuncts.
    pub fn conjuncts(self) -> Vec<BExpr> {
        match self {
            BExpr::And(v) => v.into_iter().flat_map(BExpr::conjuncts).collect(),
            e => vec![e],
        }
    }

    /// Evaluates on a batch (physical column indices).
    pub fn eval(&self, batch: &RecordBatch) -> Result<Value> {
        let rows = batch.num_rows();
        match self {
            BExpr::Column { id, .. } => batch
                .columns()
                .get(*id)
                .cloned()
                .map(Value::Array)
                .ok_or_else(|| Error::Internal { message: format!("column {id} out of range") }),
            BExpr::Literal(a) => Ok(Value::Scalar(a.clone())),
            BExpr::Call { func, args, ty, .. } => {
                let vals = args.iter().map(|a| a.eval(batch)).collect::<Result<Vec<_>>>()?;
                call(func, vals, rows, ty)
            }
            BExpr::And(parts) | BExpr::Or(parts) => {
                let is_and = matches!(self, BExpr::And(_));
                let mut acc: Option<BooleanArray> = None;
                for p in parts {
                    let v = p.eval(batch)?.into_array(rows)?;
                    let v = v.as_boolean_opt().ok_or_else(|| internal("AND/OR of non-boolean"))?.clone();
                    acc = Some(match acc {
                        None => v,
                        Some(a) if is_and => and_kleene(&a, &v)?,
                        Some(a) => or_kleene(&a, &v)?,
                    });
                }
                Ok(Value::Array(Arc::new(acc.unwrap_or_else(|| BooleanArray::from(vec![is_and; rows])))))
            }
            BExpr::Case { whens, otherwise, ty } => eval_case(whens, otherwise.as_deref(), ty, batch),
        }
    }

    /// Evaluates on a batch into an array.
    pub fn eval_array(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        self.eval(batch)?.into_array(batch.num_rows())
    }
}

fn internal(m: &str) -> Error {
    Error::Internal { message: m.to_string() }
}

/// Calls `func` on `vals`; on a single dictionary argument with constant others it runs on the
/// dictionary's values and maps the result through the keys.
fn call(func: &ScalarFn, mut vals: Vec<Value>, rows: usize, ty: &DataType) -> Result<Value> {
    let dict_args: Vec<usize> = vals
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v.data_type(), DataType::Dictionary(..)))
        .map(|(i, _)| i)
        .collect();
    if func.elementwise
        && dict_args.len() == 1
        && vals.iter().enumerate().all(|(i, v)| i == dict_args[0] || v.is_scalar())
        && !vals[dict_args[0]].is_scalar()
    {
        let i = dict_args[0];
        if let Some(dict) = vals[i].array().as_dictionary_opt::<Int32Type>() {
            let dict = dict.clone();
            vals[i] = Value::Array(dict.values().clone());
            let r = (func.f)(&vals, dict.values().len())?.into_array(dict.values().len())?;
            return Ok(Value::Array(through_keys(&r, dict.keys())?));
        }
    }
    for i in dict_args {
        let DataType::Dictionary(_, v) = vals[i].data_type().clone() else { continue };
        vals[i] = match &vals[i] {
            Value::Array(a) => Value::Array(cast(a, &v)?),
            Value::Scalar(a) => Value::Scalar(cast(a, &v)?),
        };
    }
    let out = (func.f)(&vals, rows)?;
    if out.data_type() != ty && !matches!(ty, DataType::Null) {
        return Err(Error::Internal {
            message: format!("function {} returned {} instead of {ty}", func.name, out.data_type()),
        });
    }
    Ok(out)
}

/// `values[keys]`; boolean results matching exactly one key use a vectorised key comparison.
fn through_keys(values: &ArrayRef, keys: &arrow::array::Int32Array) -> Result<ArrayRef> {
    if let Some(b) = values.as_boolean_opt()
        && b.null_count() == 0
    {
        let trues = b.true_count();
        if trues == 0 || trues == b.len() {
            let all = BooleanArray::new(
                if trues == 0 {
                    arrow::buffer::BooleanBuffer::new_unset(keys.len())
                } else {
                    arrow::buffer::BooleanBuffer::new_set(keys.len())
                },
                keys.nulls().cloned(),
            );
            return Ok(Arc::new(all));
        }
        if trues == 1 {
            let k = b.values().set_indices().next().unwrap_or(0) as i32;
            let r = cmp::eq(keys, &arrow::array::Int32Array::new_scalar(k))?;
            return Ok(Arc::new(r));
        }
    }
    Ok(take(values.as_ref(), keys, None)?)
}

fn eval_case(whens: &[(BExpr, BExpr)], otherwise: Option<&BExpr>, ty: &DataType, batch: &RecordBatch) -> Result<Value> {
    let rows = batch.num_rows();
    // Evaluate from the last branch backwards: result = if c_i then v_i else result.
    let mut result: ArrayRef = match otherwise {
        Some(o) => o.eval(batch)?.into_array(rows)?,
        None => new_null_array(ty, rows),
    };
    for (c, v) in whens.iter().rev() {
        let c = c.eval(batch)?.into_array(rows)?;
        let c = c.as_boolean_opt().ok_or_else(|| internal("CASE condition is not boolean"))?;
        // NULL conditions count as false.
        let c = if c.null_count() > 0 { arrow::compute::prep_null_mask_filter(c) } else { c.clone() };
        if c.true_count() == 0 {
            continue;
        }
        let v = v.eval(batch)?;
        let v = v.into_array(rows)?;
        result = arrow::compute::kernels::zip::zip(&c, &v, &result)?;
    }
    Ok(Value::Array(result))
}

/// `IS [NOT] NULL` as a function.
pub fn is_null_fn(negated: bool) -> ScalarFn {
    ScalarFn::new(if negated { "is_not_null" } else { "is_null" }, move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let r = if negated { is_not_null(&a)? } else { is_null(&a)? };
        Ok(Value::Array(Arc::new(r)))
    })
}

/// `NOT x`.
pub fn not_fn() -> ScalarFn {
    ScalarFn::new("not", |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let b = a.as_boolean_opt().ok_or_else(|| internal("NOT of non-boolean"))?;
        Ok(Value::Array(Arc::new(not(b)?)))
    })
}

impl fmt::Display for BExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BExpr::Column { name, .. } => f.write_str(name),
            BExpr::Literal(a) => match ScalarValue::try_from_array(a.as_ref(), 0) {
                Ok(v) => write!(f, "{v}"),
                Err(_) => f.write_str("?"),
            },
            BExpr::Call { func, args, .. } => {
                write!(f, "{}(", func.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            BExpr::Case { whens, otherwise, .. } => {
                f.write_str("CASE")?;
                for (c, v) in whens {
                    write!(f, " WHEN {c} THEN {v}")?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {o}")?;
                }
                f.write_str(" END")
            }
            BExpr::And(v) | BExpr::Or(v) => {
                let sep = if matches!(self, BExpr::And(_)) { " AND " } else { " OR " };
                f.write_str("(")?;
                for (i, a) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        use arrow::error::ArrowError as A;
        match e {
            A::DivideByZero => Error::InvalidValue { message: "division by zero".into() },
            A::ArithmeticOverflow(m) => Error::InvalidValue { message: format!("arithmetic overflow: {m}") },
            A::CastError(m) | A::ParseError(m) | A::InvalidArgumentError(m) | A::ComputeError(m) => {
                Error::InvalidValue { message: m }
            }
            A::MemoryError(m) => Error::ResourcesExhausted { message: m },
            other => Error::Execution { message: other.to_string() },
        }
    }
}
