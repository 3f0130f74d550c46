//! Values as text, the way sluice prints them everywhere (CLI tables, SQL logic tests, the
//! Postgres text protocol): ClickHouse/Proton style. Timestamps `YYYY-MM-DD HH:MM:SS[.fff]` in
//! UTC with as many fraction digits as the type has, dates `YYYY-MM-DD`, booleans
//! `true`/`false`, floats in their shortest round-trip form, NULL as `None`.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The text of `array[row]`, `None` for NULL.
pub fn format_value(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Float64 => return Some(float(array.as_primitive::<arrow::datatypes::Float64Type>().value(row))),
        DataType::Float32 => {
            return Some(float(array.as_primitive::<arrow::datatypes::Float32Type>().value(row) as f64));
        }
        DataType::Dictionary(..) => {
            let d = array.as_any_dictionary();
            let key = d.normalized_keys()[row];
            return format_value(d.values(), key);
        }
        _ => {}
    }
    if let DataType::Timestamp(unit, _) = array.data_type() {
        // Shown in UTC (named zones would need a time-zone database; sluice's contract is UTC).
        use arrow::datatypes as t;
        use arrow::temporal_conversions as tc;
        let (dt, fmt) = match unit {
            TimeUnit::Second => (
                tc::timestamp_s_to_datetime(array.as_primitive::<t::TimestampSecondType>().value(row)),
                "%Y-%m-%d %H:%M:%S",
            ),
            TimeUnit::Millisecond => (
                tc::timestamp_ms_to_datetime(array.as_primitive::<t::TimestampMillisecondType>().value(row)),
                "%Y-%m-%d %H:%M:%S%.3f",
            ),
            TimeUnit::Microsecond => (
                tc::timestamp_us_to_datetime(array.as_primitive::<t::TimestampMicrosecondType>().value(row)),
                "%Y-%m-%d %H:%M:%S%.6f",
            ),
            TimeUnit::Nanosecond => (
                tc::timestamp_ns_to_datetime(array.as_primitive::<t::TimestampNanosecondType>().value(row)),
                "%Y-%m-%d %H:%M:%S%.9f",
            ),
        };
        return dt.map(|d| d.format(fmt).to_string());
    }
    ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).ok().map(|f| f.value(row).to_string())
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Float64Array, StringArray, TimestampMillisecondArray};

    #[test]
    fn formats_like_proton() {
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_704_067_200_123]).with_timezone("UTC"));
        assert_eq!(format_value(&ts, 0).as_deref(), Some("2024-01-01 00:00:00.123"));
        let f: ArrayRef = Arc::new(Float64Array::from(vec![Some(2.0), Some(0.1), None]));
        assert_eq!(format_value(&f, 0).as_deref(), Some("2"));
        assert_eq!(format_value(&f, 1).as_deref(), Some("0.1"));
        assert_eq!(format_value(&f, 2), None);
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a b"]));
        assert_eq!(format_value(&s, 0).as_deref(), Some("a b"));
    }
}
