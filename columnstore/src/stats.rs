//! Part statistics from Parquet row-group metadata: per-column [`ColumnStats`] and the time
//! range, computed the same way by the writer (from the row groups it flushed) and by the
//! reader (from the footer), so a part's [`crate::PartInfo`] can always be rebuilt from its file.

use std::cmp::Ordering;

use arrow::array::Array;
use arrow::datatypes::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::RowGroupMetaData;
use parquet::schema::types::SchemaDescriptor;

use crate::{ColumnStats, Stat, TimeRange};

/// Statistics of every top-level column of `schema` over the row groups `rgs`.
pub(crate) fn column_stats(schema: &Schema, descr: &SchemaDescriptor, rgs: &[RowGroupMetaData]) -> Vec<ColumnStats> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().clone();
            let mut out = ColumnStats { name, min: None, max: None, null_count: None };
            if Stat::supports(field.data_type()) {
                fold_column(schema, descr, rgs, &mut out);
            }
            out
        })
        .collect()
}

fn fold_column(schema: &Schema, descr: &SchemaDescriptor, rgs: &[RowGroupMetaData], out: &mut ColumnStats) {
    let Ok(conv) = StatisticsConverter::try_new(&out.name, schema, descr) else { return };
    let conv = conv.with_missing_null_counts_as_zero(false);
    let (Ok(mins), Ok(maxes), Ok(nulls)) =
        (conv.row_group_mins(rgs.iter()), conv.row_group_maxes(rgs.iter()), conv.row_group_null_counts(rgs.iter()))
    else {
        return;
    };
    let mut min: Option<Stat> = None;
    let mut max: Option<Stat> = None;
    let mut min_known = true;
    let mut max_known = true;
    let mut null_total = Some(0u64);
    for (i, rg) in rgs.iter().enumerate() {
        let rows = u64::try_from(rg.num_rows()).unwrap_or(0);
        let nulls_i = (!nulls.is_null(i)).then(|| nulls.value(i));
        null_total = null_total.zip(nulls_i).map(|(a, b)| a + b);
        if nulls_i == Some(rows) {
            continue; // only nulls: no bound needed
        }
        match Stat::from_array(mins.as_ref(), i) {
            Some(v) => {
                if min.as_ref().is_none_or(|m| v.compare(m) == Some(Ordering::Less)) {
                    min = Some(v);
                }
            }
            None => min_known = false,
        }
        match Stat::from_array(maxes.as_ref(), i) {
            Some(v) => {
                if max.as_ref().is_none_or(|m| v.compare(m) == Some(Ordering::Greater)) {
                    max = Some(v);
                }
            }
            None => max_known = false,
        }
    }
    out.min = min.filter(|_| min_known);
    out.max = max.filter(|_| max_known);
    out.null_count = null_total;
}

/// Converts a value of a time column to milliseconds (rounded down).
pub(crate) fn to_ms(v: i64, dt: &DataType) -> i64 {
    match dt {
        DataType::Timestamp(TimeUnit::Second, _) => v.saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => v.div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => v.div_euclid(1_000_000),
        DataType::Date32 => v.saturating_mul(86_400_000),
        _ => v,
    }
}

/// Converts milliseconds to the smallest value of a time column at or after that instant.
pub(crate) fn from_ms(ms: i64, dt: &DataType) -> i64 {
    match dt {
        DataType::Timestamp(TimeUnit::Second, _) => ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0),
        DataType::Timestamp(TimeUnit::Microsecond, _) => ms.saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => ms.saturating_mul(1_000_000),
        DataType::Date32 => ms.div_euclid(86_400_000) + i64::from(ms.rem_euclid(86_400_000) != 0),
        _ => ms,
    }
}

/// True for the types a time column may have.
pub(crate) fn is_time_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(_, _)
            | DataType::Int64
            | DataType::Int32
            | DataType::UInt32
            | DataType::Date32
            | DataType::Date64
    )
}

/// The time range of a part from its column statistics.
pub(crate) fn time_range(schema: &Schema, columns: &[ColumnStats], time_column: Option<&str>) -> Option<TimeRange> {
    let name = time_column?;
    let field = schema.field_with_name(name).ok()?;
    let stats = columns.iter().find(|c| c.name == name)?;
    let as_i64 = |s: &Stat| match s {
        Stat::Int(v) => Some(*v),
        Stat::UInt(v) => i64::try_from(*v).ok(),
        _ => None,
    };
    let min = as_i64(stats.min.as_ref()?)?;
    let max = as_i64(stats.max.as_ref()?)?;
    Some(TimeRange { min_ms: to_ms(min, field.data_type()), max_ms: to_ms(max, field.data_type()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_convert_conservatively() {
        let us = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(to_ms(-1, &us), -1);
        assert_eq!(to_ms(1999, &us), 1);
        assert_eq!(from_ms(2, &us), 2000);
        let s = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
        assert_eq!(to_ms(3, &s), 3000);
        assert_eq!(from_ms(3001, &s), 4);
        assert_eq!(from_ms(3000, &s), 3);
        assert_eq!(from_ms(-1, &s), 0);
        assert_eq!(to_ms(5, &DataType::Int64), 5);
        assert_eq!(from_ms(1, &DataType::Date32), 1);
        assert!(is_time_type(&DataType::Int64));
        assert!(!is_time_type(&DataType::Utf8));
    }
}
