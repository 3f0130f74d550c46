//! Checking and completing appended batches before anything is written: columns matched by
//! name, types cast where lossless, defaults and `_tp_time` filled in, nulls refused where the
//! column is not nullable. Either the whole batch conforms or nothing is written.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{
    Array, ArrayRef, RecordBatch, RecordBatchOptions, TimestampMillisecondArray, UInt32Array, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options, take};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::util::display::FormatOptions;

use crate::stream_def::{ColumnDef, StreamDef, TP_TIME};
use crate::{Error, Result};

/// Makes `batch` a batch of the stream's stored schema (see the module docs). `now_ms` fills a
/// missing `_tp_time`.
pub(crate) fn conform(def: &StreamDef, schema: &SchemaRef, batch: &RecordBatch, now_ms: i64) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let stream = def.name.as_str();
    for f in batch.schema().fields() {
        if def.column_index(f.name()).is_none() {
            return Err(Error::ColumnNotFound { stream: stream.to_string(), column: f.name().clone() });
        }
    }
    let mut precast = parallel_casts(def, batch);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(def.columns.len());
    for (i, c) in def.columns.iter().enumerate() {
        let name = c.field.name();
        let target = c.field.data_type();
        let col = match batch.column_by_name(name) {
            Some(a) if a.data_type() == target => a.clone(),
            Some(a) => match precast[i].take() {
                Some(done) => done?,
                None => cast_column(stream, name, a, target)?,
            },
            None if name == TP_TIME && def.settings.event_time_column.is_some() => {
                let src = def.settings.event_time_column.as_deref().unwrap_or_default();
                let given = batch.column_by_name(src).cloned();
                match given {
                    Some(a) => cast_column(stream, name, &a, target)?,
                    // The event-time column itself was left out: its default, then the ingest time.
                    None => {
                        let now = Arc::new(
                            TimestampMillisecondArray::from_value(now_ms, rows).with_timezone_opt(tz_of(target)),
                        );
                        cast_column(stream, name, &(now as ArrayRef), target)?
                    }
                }
            }
            None if name == TP_TIME => {
                let now =
                    Arc::new(TimestampMillisecondArray::from_value(now_ms, rows).with_timezone_opt(tz_of(target)));
                if now.data_type() == target { now } else { cast_column(stream, name, &(now as ArrayRef), target)? }
            }
            None => fill_missing(stream, c, batch, rows)?,
        };
        if !c.field.is_nullable() && col.null_count() > 0 {
            let row = (0..rows).find(|&i| col.is_null(i)).unwrap_or(0);
            return Err(Error::invalid_data(
                stream,
                Some(name),
                format!("null in a non-nullable column (row {})", row + 1),
            ));
        }
        columns.push(col);
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// The values of column `c` for `rows` rows of `batch`, which lacks it (left out of an INSERT,
/// or stored before `ALTER STREAM ADD COLUMN`): its DEFAULT (a constant, or an expression over
/// the batch's columns), else NULL when nullable, else its type's zero value, as ClickHouse.
pub(crate) fn fill_missing(stream: &str, c: &ColumnDef, batch: &RecordBatch, rows: usize) -> Result<ArrayRef> {
    let name = c.field.name();
    let target = c.field.data_type();
    Ok(match &c.default {
        Some(d) => take(d.as_ref(), &UInt32Array::from_value(0, rows), None)?,
        // A DEFAULT that is not a constant (`now()`, an expression over other columns).
        None if c.default_sql.is_some() => {
            let sql = c.default_sql.as_deref().unwrap_or_default();
            let v = crate::sql_bridge::eval_default(sql, batch)
                .map_err(|e| Error::invalid_data(stream, Some(name), format!("DEFAULT {sql} failed: {e}")))?;
            if v.len() != rows {
                return Err(Error::invalid_data(
                    stream,
                    Some(name),
                    format!("DEFAULT {sql} gave {} values for {rows} rows", v.len()),
                ));
            }
            if v.data_type() == target { v } else { cast_column(stream, name, &v, target)? }
        }
        None if c.field.is_nullable() => new_null_array(target, rows),
        // As in ClickHouse/Proton: a column without DEFAULT takes its type's zero value
        // (0, '', false, 1970-01-01).
        None => match zero_value(target) {
            Some(z) => take(z.as_ref(), &UInt32Array::from_value(0, rows), None)?,
            None => {
                return Err(Error::invalid_data(
                    stream,
                    Some(name),
                    "the column has no default and its type has no zero value, so it must be given",
                ));
            }
        },
    })
}

/// [`conform`] for batches read back from the log: columns dropped since they were written
/// are left out instead of being an error.
pub(crate) fn conform_stored(def: &StreamDef, schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.schema().fields().iter().all(|f| def.column_index(f.name()).is_some()) {
        return conform(def, schema, batch, 0);
    }
    let keep: Vec<usize> =
        (0..batch.num_columns()).filter(|&i| def.column_index(batch.schema().field(i).name()).is_some()).collect();
    conform(def, schema, &batch.project(&keep)?, 0)
}

/// Rows from which the casts of a batch's columns run on two threads.
const PARALLEL_CAST_ROWS: usize = 64 * 1024;

/// For a big batch with several columns to convert (strings to dictionaries, mostly), the
/// conversions run on two threads; `None` where a column needs none (or the batch is small).
fn parallel_casts(def: &StreamDef, batch: &RecordBatch) -> Vec<Option<Result<ArrayRef>>> {
    let mut out: Vec<Option<Result<ArrayRef>>> = (0..def.columns.len()).map(|_| None).collect();
    if batch.num_rows() < PARALLEL_CAST_ROWS {
        return out;
    }
    let todo: Vec<(usize, &ArrayRef)> = def
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let a = batch.column_by_name(c.field.name())?;
            (a.data_type() != c.field.data_type() && !matches!(a.data_type(), DataType::Timestamp(..)))
                .then_some((i, a))
        })
        .collect();
    if todo.len() < 2 {
        return out;
    }
    let cast = |&(i, a): &(usize, &ArrayRef)| {
        let c = &def.columns[i];
        (i, cast_column(&def.name, c.field.name(), a, c.field.data_type()))
    };
    let (mine, theirs): (Vec<_>, Vec<_>) = todo.iter().enumerate().partition(|(k, _)| k % 2 == 0);
    let done = std::thread::scope(|scope| {
        let other = scope.spawn(|| theirs.iter().map(|(_, t)| cast(t)).collect::<Vec<_>>());
        let mut done: Vec<(usize, Result<ArrayRef>)> = mine.iter().map(|(_, t)| cast(t)).collect();
        match other.join() {
            Ok(v) => done.extend(v),
            // A panic in a cast kernel: redo those casts here, where it surfaces as without threads.
            Err(_) => done.extend(theirs.iter().map(|(_, t)| cast(t))),
        }
        done
    });
    for (i, r) in done {
        out[i] = Some(r);
    }
    out
}

/// The same instants with another zone label.
fn relabel_timestamp(a: &ArrayRef, tz: Option<Arc<str>>) -> ArrayRef {
    use arrow::datatypes::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    };
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            Arc::new(a.as_primitive::<TimestampSecondType>().clone().with_timezone_opt(tz))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Arc::new(a.as_primitive::<TimestampMillisecondType>().clone().with_timezone_opt(tz))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Arc::new(a.as_primitive::<TimestampMicrosecondType>().clone().with_timezone_opt(tz))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Arc::new(a.as_primitive::<TimestampNanosecondType>().clone().with_timezone_opt(tz))
        }
        _ => a.clone(),
    }
}

/// The zero value of a type as a one-element array, where it has one.
fn zero_value(t: &DataType) -> Option<ArrayRef> {
    let from: ArrayRef = match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            Arc::new(arrow::array::StringArray::from(vec![""]))
        }
        DataType::Binary | DataType::LargeBinary => Arc::new(arrow::array::BinaryArray::from(vec![&b""[..]])),
        DataType::Boolean => Arc::new(arrow::array::BooleanArray::from(vec![false])),
        t if t.is_numeric() || matches!(t, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64) => {
            Arc::new(arrow::array::Int64Array::from(vec![0]))
        }
        _ => return None,
    };
    if let DataType::Timestamp(unit, tz) = t {
        let a = arrow::compute::cast(&from, &DataType::Timestamp(*unit, None)).ok()?;
        return Some(relabel_timestamp(&a, tz.clone()));
    }
    arrow::compute::cast(&from, t).ok()
}

fn tz_of(t: &DataType) -> Option<Arc<str>> {
    match t {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    }
}

/// Casts a column to the stream's type, refusing anything that would lose or invent values
/// silently (overflow, unparsable strings: the row and value are named).
fn cast_column(stream: &str, name: &str, a: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    // Timestamps are instants in UTC whatever the zone attached: changing the zone is only a
    // relabelling (and needs no time-zone database); changing the unit is a cast.
    if let (DataType::Timestamp(from_unit, from_tz), DataType::Timestamp(to_unit, to_tz)) = (a.data_type(), target) {
        let a = if from_unit == to_unit {
            a.clone()
        } else {
            let opts = CastOptions { safe: false, format_options: FormatOptions::default() };
            cast_with_options(a, &DataType::Timestamp(*to_unit, from_tz.clone()), &opts).map_err(|e| {
                Error::invalid_data(stream, Some(name), format!("cannot convert {} to {target}: {e}", a.data_type()))
            })?
        };
        return Ok(relabel_timestamp(&a, to_tz.clone()));
    }
    if !castable(a.data_type(), target) {
        return Err(Error::invalid_data(
            stream,
            Some(name),
            format!("type {} cannot be stored in a column of type {target}", a.data_type()),
        ));
    }
    let opts = CastOptions { safe: false, format_options: FormatOptions::default() };
    cast_with_options(a, target, &opts).map_err(|e| {
        // Find the first value that fails for a precise message.
        let safe = CastOptions { safe: true, format_options: FormatOptions::default() };
        let row = cast_with_options(a, target, &safe)
            .ok()
            .and_then(|c| (0..a.len()).find(|&i| a.is_valid(i) && c.is_null(i)));
        let at = row.map(|r| format!(" at row {}", r + 1)).unwrap_or_default();
        Error::invalid_data(stream, Some(name), format!("cannot convert {} to {target}{at}: {e}", a.data_type()))
    })
}

/// Casts the engine accepts on append: numbers to numbers, strings to anything arrow can parse,
/// timestamps between units and zones, dictionary <-> plain. Not: numbers to strings of other
/// columns by accident, booleans to numbers, and so on.
pub(crate) fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let numeric = |t: &DataType| t.is_numeric();
    match (from, to) {
        (Null, _) => true,
        (a, b) if numeric(a) && numeric(b) => true,
        (Utf8 | LargeUtf8 | Utf8View, _) => arrow::compute::can_cast_types(from, to),
        (Timestamp(..), Timestamp(..)) | (Date32, Timestamp(..)) | (Timestamp(..), Date32) | (Date64, _) => true,
        (Dictionary(_, v), t) => v.as_ref() == t || castable(v, t),
        (f, Dictionary(_, v)) => f == v.as_ref() || castable(f, v),
        (Binary | LargeBinary, Binary | LargeBinary | FixedSizeBinary(_)) => true,
        (List(_) | LargeList(_), List(_) | LargeList(_)) => arrow::compute::can_cast_types(from, to),
        (Map(..), Map(..)) | (Struct(_), Struct(_)) => arrow::compute::can_cast_types(from, to),
        _ => from == to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};

    use crate::stream_def::ColumnDef;

    fn def() -> (StreamDef, SchemaRef) {
        let d = StreamDef::new(
            "s",
            vec![
                ColumnDef::new("id", DataType::UInt64, false),
                ColumnDef::new("n", DataType::Int32, false).with_default(Arc::new(Int32Array::from(vec![5]))),
                ColumnDef::new("s", DataType::Utf8, true),
            ],
        )
        .normalize()
        .expect("valid");
        let schema = d.schema();
        (d, schema)
    }

    fn batch(fields: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let schema = Arc::new(Schema::new(
            fields.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema, fields.into_iter().map(|(_, a)| a).collect()).expect("batch")
    }

    #[test]
    fn fills_defaults_nulls_and_time() {
        let (d, schema) = def();
        let b = batch(vec![("id", Arc::new(UInt64Array::from(vec![1, 2])))]);
        let out = conform(&d, &schema, &b, 1234).expect("conform");
        assert_eq!(out.schema(), schema);
        assert_eq!(out.column(1).as_ref(), &Int32Array::from(vec![5, 5]) as &dyn Array);
        assert_eq!(out.column(2).null_count(), 2);
        let t = out.column(3).as_any().downcast_ref::<TimestampMillisecondArray>().expect("ts");
        assert_eq!(t.values().as_ref(), &[1234, 1234]);
    }

    #[test]
    fn refuses_bad_data_naming_the_column() {
        let (d, schema) = def();
        // A column without DEFAULT that is left out takes its type's zero value.
        let missing = batch(vec![("n", Arc::new(Int32Array::from(vec![1])))]);
        let out = conform(&d, &schema, &missing, 0).expect("zero value");
        assert_eq!(out.column(0).as_ref(), &UInt64Array::from(vec![0]) as &dyn Array);
        let unknown =
            batch(vec![("id", Arc::new(UInt64Array::from(vec![1]))), ("zz", Arc::new(Int32Array::from(vec![1])))]);
        assert!(matches!(conform(&d, &schema, &unknown, 0), Err(Error::ColumnNotFound { .. })));
        let overflow = batch(vec![("id", Arc::new(Int64Array::from(vec![1, -1])))]);
        let e = conform(&d, &schema, &overflow, 0).expect_err("negative id");
        assert!(e.to_string().contains("row 2"), "{e}");
        let text = batch(vec![("id", Arc::new(StringArray::from(vec!["1", "x"])))]);
        assert!(conform(&d, &schema, &text, 0).is_err());
        let null_id = batch(vec![("id", Arc::new(UInt64Array::from(vec![Some(1), None])))]);
        let e = conform(&d, &schema, &null_id, 0).expect_err("null id");
        assert!(e.to_string().contains("row 2"), "{e}");
    }

    #[test]
    fn big_batches_convert_columns_on_two_threads_with_the_same_results() {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let d = StreamDef::new(
            "s",
            vec![
                ColumnDef::new("a", dict.clone(), false),
                ColumnDef::new("b", dict, false),
                ColumnDef::new("n", DataType::Int64, false),
            ],
        )
        .normalize()
        .expect("valid");
        let schema = d.schema();
        let rows = PARALLEL_CAST_ROWS + 5;
        let words = |k: usize| StringArray::from_iter_values((0..rows).map(|i| format!("w{}", i % k)));
        let big = batch(vec![
            ("a", Arc::new(words(7))),
            ("b", Arc::new(words(1000))),
            ("n", Arc::new(Int32Array::from_iter_values(0..rows as i32))),
        ]);
        let out = conform(&d, &schema, &big, 0).expect("conform");
        for (name, k) in [("a", 7), ("b", 1000)] {
            let col = out.column_by_name(name).expect("column").as_dictionary::<arrow::datatypes::Int32Type>();
            let values = col.values().as_string::<i32>();
            assert_eq!(values.len(), k);
            for i in [0, 1, rows / 2, rows - 1] {
                assert_eq!(values.value(col.keys().value(i) as usize), format!("w{}", i % k));
            }
        }
        // The first bad column in column order is the one reported, whichever thread cast it.
        let bad = batch(vec![
            ("a", Arc::new(StringArray::from_iter((0..rows).map(|i| (i != 9).then(|| "x".to_string()))))),
            ("b", Arc::new(words(3))),
            (
                "n",
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| if i == 5 { "q".into() } else { i.to_string() }),
                )),
            ),
        ]);
        let e = conform(&d, &schema, &bad, 0).expect_err("bad");
        assert!(e.to_string().contains("'a'") || e.to_string().contains("`a`") || e.to_string().contains(" a"), "{e}");
    }
}
