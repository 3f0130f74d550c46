//! [`Stat`]: one statistics value (a column's min or max, a predicate bound) and how values of
//! different numeric kinds compare.

use std::cmp::Ordering;
use std::fmt;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};

/// A statistics value: the min or max of a column, or a bound of a predicate.
///
/// Which Arrow types map to which variant:
///
/// | Arrow type | `Stat` |
/// | --- | --- |
/// | `Int8..Int64`, `Date32` (days), `Date64` (ms), `Time32/64`, `Duration(_)`, `Timestamp(unit, tz)` (in the column's own unit, UTC) | `Int` |
/// | `UInt8..UInt64` | `UInt` |
/// | `Float32`, `Float64` | `Float` |
/// | `Utf8`, `LargeUtf8`, `Utf8View`, `Dictionary(_, Utf8)` | `Str` |
/// | `Boolean` | `Bool` |
///
/// Other types (decimals, binary, nested) have no statistics here: predicates on them never prune.
/// `Int`, `UInt` and `Float` compare with each other exactly by numeric value; strings compare by
/// their UTF-8 bytes (Parquet's order); values of unrelated kinds do not compare at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    /// A signed integer (also dates, times, durations and timestamps).
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A boolean (`false < true`).
    Bool(bool),
}

impl Stat {
    /// Compares two values by their meaning: numbers across `Int`/`UInt`/`Float` exactly,
    /// strings by bytes. `None` when they do not compare (different kinds, or a NaN).
    pub fn compare(&self, other: &Stat) -> Option<Ordering> {
        use Stat::*;
        match (self, other) {
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (UInt(a), UInt(b)) => Some(a.cmp(b)),
            (Int(a), UInt(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (UInt(a), Int(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Int(a), Float(b)) => cmp_int_float(i128::from(*a), *b),
            (UInt(a), Float(b)) => cmp_int_float(i128::from(*a), *b),
            (Float(a), Int(b)) => cmp_int_float(i128::from(*b), *a).map(Ordering::reverse),
            (Float(a), UInt(b)) => cmp_int_float(i128::from(*b), *a).map(Ordering::reverse),
            (Str(a), Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// True when columns of this Arrow type have a [`Stat`] representation.
    pub fn supports(data_type: &DataType) -> bool {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Boolean
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Duration(_)
            | DataType::Timestamp(_, _) => true,
            DataType::Dictionary(_, values) => Stat::supports(values),
            _ => false,
        }
    }

    /// The value at `index` of `array`, or `None` if it is null or of an unsupported type.
    pub fn from_array(array: &dyn Array, index: usize) -> Option<Stat> {
        if index >= array.len() || array.is_null(index) {
            return None;
        }
        macro_rules! int {
            ($t:ty) => {
                Some(Stat::Int(i64::from(array.as_primitive::<$t>().value(index))))
            };
        }
        macro_rules! uint {
            ($t:ty) => {
                Some(Stat::UInt(u64::from(array.as_primitive::<$t>().value(index))))
            };
        }
        match array.data_type() {
            DataType::Int8 => int!(Int8Type),
            DataType::Int16 => int!(Int16Type),
            DataType::Int32 => int!(Int32Type),
            DataType::Int64 => int!(Int64Type),
            DataType::UInt8 => uint!(UInt8Type),
            DataType::UInt16 => uint!(UInt16Type),
            DataType::UInt32 => uint!(UInt32Type),
            DataType::UInt64 => uint!(UInt64Type),
            DataType::Float32 => Some(Stat::Float(f64::from(array.as_primitive::<Float32Type>().value(index)))),
            DataType::Float64 => Some(Stat::Float(array.as_primitive::<Float64Type>().value(index))),
            DataType::Utf8 => Some(Stat::Str(array.as_string::<i32>().value(index).to_owned())),
            DataType::LargeUtf8 => Some(Stat::Str(array.as_string::<i64>().value(index).to_owned())),
            DataType::Utf8View => Some(Stat::Str(array.as_string_view().value(index).to_owned())),
            DataType::Boolean => Some(Stat::Bool(array.as_boolean().value(index))),
            DataType::Date32 => int!(Date32Type),
            DataType::Date64 => int!(Date64Type),
            DataType::Time32(TimeUnit::Second) => int!(Time32SecondType),
            DataType::Time32(_) => int!(Time32MillisecondType),
            DataType::Time64(TimeUnit::Nanosecond) => int!(Time64NanosecondType),
            DataType::Time64(_) => int!(Time64MicrosecondType),
            DataType::Duration(TimeUnit::Second) => int!(DurationSecondType),
            DataType::Duration(TimeUnit::Millisecond) => int!(DurationMillisecondType),
            DataType::Duration(TimeUnit::Microsecond) => int!(DurationMicrosecondType),
            DataType::Duration(TimeUnit::Nanosecond) => int!(DurationNanosecondType),
            DataType::Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType),
            DataType::Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType),
            DataType::Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType),
            DataType::Dictionary(_, _) => {
                let dict = array.as_any_dictionary();
                let key = match Stat::from_array(dict.keys(), index)? {
                    Stat::Int(k) => usize::try_from(k).ok()?,
                    Stat::UInt(k) => usize::try_from(k).ok()?,
                    _ => return None,
                };
                Stat::from_array(dict.values().as_ref(), key)
            }
            _ => None,
        }
    }
}

/// Exact comparison of an integer (|v| < 2^64) with a float; `None` for NaN.
fn cmp_int_float(v: i128, f: f64) -> Option<Ordering> {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_64 {
        return Some(Ordering::Less);
    }
    if f <= -TWO_64 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // |t| < 2^64, so the conversion is exact.
    let ti = t as i128;
    match v.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Some(Ordering::Less)
            } else if frac < 0.0 {
                Some(Ordering::Greater)
            } else {
                Some(Ordering::Equal)
            }
        }
        other => Some(other),
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Int(v) => write!(f, "{v}"),
            Stat::UInt(v) => write!(f, "{v}u"),
            Stat::Float(v) => write!(f, "{v:?}"),
            Stat::Str(v) => write!(f, "{v:?}"),
            Stat::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<i64> for Stat {
    fn from(v: i64) -> Self {
        Stat::Int(v)
    }
}

impl From<i32> for Stat {
    fn from(v: i32) -> Self {
        Stat::Int(i64::from(v))
    }
}

impl From<u32> for Stat {
    fn from(v: u32) -> Self {
        Stat::UInt(u64::from(v))
    }
}

impl From<u64> for Stat {
    fn from(v: u64) -> Self {
        Stat::UInt(v)
    }
}

impl From<f64> for Stat {
    fn from(v: f64) -> Self {
        Stat::Float(v)
    }
}

impl From<&str> for Stat {
    fn from(v: &str) -> Self {
        Stat::Str(v.to_owned())
    }
}

impl From<String> for Stat {
    fn from(v: String) -> Self {
        Stat::Str(v)
    }
}

impl From<bool> for Stat {
    fn from(v: bool) -> Self {
        Stat::Bool(v)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Int32Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn numbers_compare_across_kinds_exactly() {
        use Ordering::*;
        assert_eq!(Stat::Int(-1).compare(&Stat::UInt(0)), Some(Less));
        assert_eq!(Stat::UInt(u64::MAX).compare(&Stat::Int(i64::MAX)), Some(Greater));
        assert_eq!(Stat::Int(3).compare(&Stat::Float(3.0)), Some(Equal));
        assert_eq!(Stat::Int(3).compare(&Stat::Float(3.5)), Some(Less));
        assert_eq!(Stat::Int(-3).compare(&Stat::Float(-3.5)), Some(Greater));
        assert_eq!(Stat::Float(2.5).compare(&Stat::Int(2)), Some(Greater));
        // 2^53 + 1 is not representable as f64; the comparison must still be exact.
        let big = (1i64 << 53) + 1;
        assert_eq!(Stat::Int(big).compare(&Stat::Float((1i64 << 53) as f64)), Some(Greater));
        assert_eq!(Stat::Int(i64::MAX).compare(&Stat::Float(1e30)), Some(Less));
        assert_eq!(Stat::UInt(5).compare(&Stat::Float(f64::NAN)), None);
        assert_eq!(Stat::Str("a".into()).compare(&Stat::Int(1)), None);
        assert_eq!(Stat::Str("ab".into()).compare(&Stat::Str("b".into())), Some(Less));
        assert_eq!(Stat::Bool(false).compare(&Stat::Bool(true)), Some(Less));
    }

    #[test]
    fn values_come_out_of_arrays() {
        let ts = TimestampMicrosecondArray::from(vec![Some(7), None]).with_timezone("UTC");
        assert_eq!(Stat::from_array(&ts, 0), Some(Stat::Int(7)));
        assert_eq!(Stat::from_array(&ts, 1), None);
        assert_eq!(Stat::from_array(&ts, 9), None);
        let dict = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(vec![1, 0]),
            Arc::new(StringArray::from(vec!["x", "y"])),
        )
        .expect("valid dictionary");
        assert_eq!(Stat::from_array(&dict, 0), Some(Stat::Str("y".into())));
        assert!(Stat::supports(dict.data_type()));
        assert!(!Stat::supports(&DataType::Binary));
    }
}
