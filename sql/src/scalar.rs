//! [`ScalarValue`]: one typed value (constants, filter bounds, `eval_constant` results), with
//! conversion to and from 1-element Arrow arrays.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, LargeStringArray, StringArray, StringViewArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array, new_null_array,
};
use arrow::datatypes::{DataType, TimeUnit};

use crate::error::{Error, Result};

/// One value of a SQL type. Integers narrower than 64 bits are widened when read from arrays
/// (their Arrow type is kept by [`ScalarValue::to_array_of`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScalarValue {
    /// NULL of the given type (`DataType::Null` if unknown).
    Null(DataType),
    /// `bool`.
    Boolean(bool),
    /// Any signed integer.
    Int64(i64),
    /// Any unsigned integer.
    UInt64(u64),
    /// `float32` / `float64`.
    Float64(f64),
    /// `string`.
    Utf8(String),
    /// A timestamp: value in `unit` since the epoch, with its zone (`None` is UTC).
    Timestamp(i64, TimeUnit, Option<Arc<str>>),
    /// Days since the epoch.
    Date32(i32),
    /// `decimal(p, s)`: unscaled value, precision, scale.
    Decimal128(i128, u8, i8),
}

impl ScalarValue {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, ScalarValue::Null(_))
    }

    /// The Arrow type of this value's natural 1-element array.
    pub fn data_type(&self) -> DataType {
        match self {
            ScalarValue::Null(t) => t.clone(),
            ScalarValue::Boolean(_) => DataType::Boolean,
            ScalarValue::Int64(_) => DataType::Int64,
            ScalarValue::UInt64(_) => DataType::UInt64,
            ScalarValue::Float64(_) => DataType::Float64,
            ScalarValue::Utf8(_) => DataType::Utf8,
            ScalarValue::Timestamp(_, u, tz) => DataType::Timestamp(*u, tz.clone()),
            ScalarValue::Date32(_) => DataType::Date32,
            ScalarValue::Decimal128(_, p, s) => DataType::Decimal128(*p, *s),
        }
    }

    /// A 1-element array of this value's natural type.
    pub fn to_array(&self) -> ArrayRef {
        match self {
            ScalarValue::Null(t) => new_null_array(t, 1),
            ScalarValue::Boolean(b) => Arc::new(BooleanArray::from(vec![*b])),
            ScalarValue::Int64(v) => Arc::new(Int64Array::from(vec![*v])),
            ScalarValue::UInt64(v) => Arc::new(UInt64Array::from(vec![*v])),
            ScalarValue::Float64(v) => Arc::new(Float64Array::from(vec![*v])),
            ScalarValue::Utf8(s) => Arc::new(StringArray::from(vec![s.as_str()])),
            ScalarValue::Timestamp(v, unit, tz) => {
                let a: ArrayRef = match unit {
                    TimeUnit::Second => Arc::new(TimestampSecondArray::from(vec![*v]).with_timezone_opt(tz.clone())),
                    TimeUnit::Millisecond => {
                        Arc::new(TimestampMillisecondArray::from(vec![*v]).with_timezone_opt(tz.clone()))
                    }
                    TimeUnit::Microsecond => {
                        Arc::new(TimestampMicrosecondArray::from(vec![*v]).with_timezone_opt(tz.clone()))
                    }
                    TimeUnit::Nanosecond => {
                        Arc::new(TimestampNanosecondArray::from(vec![*v]).with_timezone_opt(tz.clone()))
                    }
                };
                a
            }
            ScalarValue::Date32(d) => Arc::new(Date32Array::from(vec![*d])),
            ScalarValue::Decimal128(v, p, s) => Arc::new(
                Decimal128Array::from(vec![*v])
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_else(|_| Decimal128Array::from(vec![*v])),
            ),
        }
    }

    /// A 1-element array of type `target` (casting as SQL `CAST` does).
    pub fn to_array_of(&self, target: &DataType) -> Result<ArrayRef> {
        let a = self.to_array();
        if a.data_type() == target {
            return Ok(a);
        }
        crate::functions::cast::cast_array(&a, target)
    }

    /// The value at `row` of `array` (dictionary arrays are looked through).
    pub fn try_from_array(array: &dyn Array, row: usize) -> Result<ScalarValue> {
        if row >= array.len() {
            return Err(Error::Internal { message: format!("row {row} out of bounds of {}", array.len()) });
        }
        if array.is_null(row) {
            let t = match array.data_type() {
                DataType::Dictionary(_, v) => (**v).clone(),
                t => t.clone(),
            };
            return Ok(ScalarValue::Null(t));
        }
        macro_rules! get {
            ($t:ty) => {
                array.as_any().downcast_ref::<$t>().map(|a| a.value(row))
            };
        }
        let internal = || Error::Internal { message: format!("unexpected array type {}", array.data_type()) };
        Ok(match array.data_type() {
            DataType::Boolean => ScalarValue::Boolean(get!(BooleanArray).ok_or_else(internal)?),
            DataType::Int8 => ScalarValue::Int64(get!(Int8Array).ok_or_else(internal)? as i64),
            DataType::Int16 => ScalarValue::Int64(get!(Int16Array).ok_or_else(internal)? as i64),
            DataType::Int32 => ScalarValue::Int64(get!(Int32Array).ok_or_else(internal)? as i64),
            DataType::Int64 => ScalarValue::Int64(get!(Int64Array).ok_or_else(internal)?),
            DataType::UInt8 => ScalarValue::UInt64(get!(UInt8Array).ok_or_else(internal)? as u64),
            DataType::UInt16 => ScalarValue::UInt64(get!(UInt16Array).ok_or_else(internal)? as u64),
            DataType::UInt32 => ScalarValue::UInt64(get!(UInt32Array).ok_or_else(internal)? as u64),
            DataType::UInt64 => ScalarValue::UInt64(get!(UInt64Array).ok_or_else(internal)?),
            DataType::Float32 => ScalarValue::Float64(get!(Float32Array).ok_or_else(internal)? as f64),
            DataType::Float64 => ScalarValue::Float64(get!(Float64Array).ok_or_else(internal)?),
            DataType::Utf8 => ScalarValue::Utf8(get!(StringArray).ok_or_else(internal)?.to_string()),
            DataType::LargeUtf8 => ScalarValue::Utf8(get!(LargeStringArray).ok_or_else(internal)?.to_string()),
            DataType::Utf8View => ScalarValue::Utf8(get!(StringViewArray).ok_or_else(internal)?.to_string()),
            DataType::Date32 => ScalarValue::Date32(get!(Date32Array).ok_or_else(internal)?),
            DataType::Timestamp(unit, tz) => {
                let v = match unit {
                    TimeUnit::Second => get!(TimestampSecondArray),
                    TimeUnit::Millisecond => get!(TimestampMillisecondArray),
                    TimeUnit::Microsecond => get!(TimestampMicrosecondArray),
                    TimeUnit::Nanosecond => get!(TimestampNanosecondArray),
                }
                .ok_or_else(internal)?;
                ScalarValue::Timestamp(v, *unit, tz.clone())
            }
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(get!(Decimal128Array).ok_or_else(internal)?, *p, *s),
            DataType::Dictionary(_, _) => {
                let dict = arrow::array::AsArray::as_any_dictionary(array);
                let key = dict.normalized_keys()[row];
                return ScalarValue::try_from_array(dict.values().as_ref(), key);
            }
            other => {
                // Anything else: go through its string form.
                let s = crate::functions::cast::cast_array(&array.slice(row, 1), &DataType::Utf8).map_err(|_| {
                    Error::NotImplemented { feature: format!("scalar values of type {other}"), location: None }
                })?;
                return ScalarValue::try_from_array(s.as_ref(), 0);
            }
        })
    }

    /// The value as `f64`, if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ScalarValue::Int64(v) => Some(*v as f64),
            ScalarValue::UInt64(v) => Some(*v as f64),
            ScalarValue::Float64(v) => Some(*v),
            ScalarValue::Decimal128(v, _, s) => Some(*v as f64 / 10f64.powi(*s as i32)),
            ScalarValue::Boolean(b) => Some(*b as u8 as f64),
            _ => None,
        }
    }

    /// The value as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ScalarValue::Int64(v) => Some(*v),
            ScalarValue::UInt64(v) => i64::try_from(*v).ok(),
            ScalarValue::Boolean(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ScalarValue::Utf8(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarValue::Null(_) => f.write_str("NULL"),
            ScalarValue::Boolean(b) => write!(f, "{b}"),
            ScalarValue::Int64(v) => write!(f, "{v}"),
            ScalarValue::UInt64(v) => write!(f, "{v}"),
            ScalarValue::Float64(v) => write!(f, "{v}"),
            ScalarValue::Utf8(s) => write!(f, "'{}'", s.replace('\'', "\\'")),
            other => {
                let a = other.to_array();
                match crate::functions::cast::cast_array(&a, &DataType::Utf8) {
                    Ok(s) => match ScalarValue::try_from_array(s.as_ref(), 0) {
                        Ok(ScalarValue::Utf8(s)) => write!(f, "'{s}'"),
                        _ => write!(f, "{other:?}"),
                    },
                    Err(_) => write!(f, "{other:?}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_arrays() {
        for v in [
            ScalarValue::Boolean(true),
            ScalarValue::Int64(-5),
            ScalarValue::UInt64(u64::MAX),
            ScalarValue::Float64(1.5),
            ScalarValue::Utf8("x".into()),
            ScalarValue::Timestamp(1_000, TimeUnit::Millisecond, Some("UTC".into())),
            ScalarValue::Date32(19_000),
            ScalarValue::Decimal128(12_345, 10, 2),
            ScalarValue::Null(DataType::Int32),
        ] {
            let a = v.to_array();
            assert_eq!(ScalarValue::try_from_array(a.as_ref(), 0).expect("back"), v);
        }
    }
}
