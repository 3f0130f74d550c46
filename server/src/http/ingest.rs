//! JSON rows (a JSON array of objects, or JSON lines) to one Arrow batch of a stream's columns,
//! checking every value before anything is written. Columns a request leaves out entirely are
//! left out of the batch (the engine fills their DEFAULT); a column given in some rows but not
//! others takes its constant DEFAULT, or NULL, in the others.
//!
//! Accepted values: integers as JSON numbers (or strings of digits, for 64-bit values that
//! JavaScript cannot hold), floats as numbers, `true`/`false`, strings, timestamps as RFC 3339
//! or `YYYY-MM-DD HH:MM:SS[.fff]` strings (UTC unless an offset is given) or numbers of seconds
//! since the epoch, dates as `YYYY-MM-DD` or days since the epoch, decimals as numbers or
//! strings, UUIDs as strings.
//!
//! A rejected request can be split into its records, each with its own error
//! ([`rejected_records`]), for the stream's dead-letter stream.

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice::StreamDef;
use sluice::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, LargeStringBuilder, RecordBatch,
    RecordBatchOptions, StringBuilder, StringDictionaryBuilder, UInt8Builder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use sluice::arrow::compute::interleave;
use sluice::arrow::datatypes::{self as t, DataType, Field, Schema, TimeUnit};

/// Why a request was refused; `row` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestError {
    /// The row at fault (1-based), if one is.
    pub row: Option<usize>,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What kind of fault (the dead-letter record's `error_type`).
    pub kind: ErrorKind,
    /// What is wrong.
    pub reason: String,
}

/// The category of an [`IngestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body or a line is not JSON (or not UTF-8).
    MalformedJson,
    /// A row is JSON but not an object.
    NotAnObject,
    /// A key that is not a column of the stream.
    UnknownColumn,
    /// A required column left out, or null in a non-nullable column.
    MissingValue,
    /// A value of the wrong type or out of range.
    InvalidValue,
    /// A column type JSON ingest cannot fill, or a failure building the batch.
    Unsupported,
    /// A valid record of a request refused for another record (nothing of a request is
    /// written when one record is bad).
    RequestRejected,
}

impl ErrorKind {
    /// The name written to dead-letter records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MalformedJson => "malformed_json",
            ErrorKind::NotAnObject => "not_an_object",
            ErrorKind::UnknownColumn => "unknown_column",
            ErrorKind::MissingValue => "missing_value",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::RequestRejected => "request_rejected",
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.row {
            write!(f, "row {r}: ")?;
        }
        if let Some(c) = &self.column {
            write!(f, "column '{c}': ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for IngestError {}

fn err(kind: ErrorKind, row: Option<usize>, column: Option<&str>, reason: impl Into<String>) -> IngestError {
    IngestError { row, column: column.map(str::to_string), kind, reason: reason.into() }
}

/// The JSON objects of a body: a JSON array, or one object per line.
fn parse_rows(body: &[u8]) -> Result<Vec<Map<String, Value>>, IngestError> {
    let malformed = ErrorKind::MalformedJson;
    let text =
        std::str::from_utf8(body).map_err(|e| err(malformed, None, None, format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    let values: Vec<(usize, Value)> = if trimmed.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| err(malformed, None, None, format!("malformed JSON array: {e}")))?;
        v.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect()
    } else {
        let mut out = vec![];
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let row = out.len() + 1;
            let v: Value = serde_json::from_str(line)
                .map_err(|e| err(malformed, Some(row), None, format!("malformed JSON: {e}")))?;
            out.push((row, v));
        }
        out
    };
    values
        .into_iter()
        .map(|(row, v)| match v {
            Value::Object(m) => Ok(m),
            other => Err(not_an_object(row, &other)),
        })
        .collect()
}

fn not_an_object(row: usize, v: &Value) -> IngestError {
    err(ErrorKind::NotAnObject, Some(row), None, format!("expected a JSON object, got {}", kind(v)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Converts a request body to a batch of `def`'s columns (see the module docs).
pub fn json_to_batch(def: &StreamDef, body: &[u8]) -> Result<RecordBatch, IngestError> {
    rows_to_batch(def, &parse_rows(body)?)
}

/// One record of a rejected request: its JSON text and its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The record as sent: the line of a JSON-lines body, the element of a JSON array
    /// (re-serialized), or the whole body when it cannot be split.
    pub original: String,
    /// Why the record was refused; for a valid record, [`ErrorKind::RequestRejected`] with
    /// the request's error.
    pub error: IngestError,
}

/// Splits a request refused with `rejected` into its records, each checked on its own: bad
/// records get their own error, valid ones a [`ErrorKind::RequestRejected`] error naming the
/// request's first bad row. A body that cannot be split (not UTF-8, a malformed array) is one
/// record.
pub fn rejected_records(def: &StreamDef, body: &[u8], rejected: &IngestError) -> Vec<RejectedRecord> {
    let whole =
        || vec![RejectedRecord { original: String::from_utf8_lossy(body).into_owned(), error: rejected.clone() }];
    let Ok(text) = std::str::from_utf8(body) else { return whole() };
    let trimmed = text.trim_start();
    let mut records: Vec<(String, Result<Value, IngestError>)> = Vec::new();
    if trimmed.starts_with('[') {
        let Ok(values) = serde_json::from_str::<Vec<Value>>(trimmed) else { return whole() };
        records.extend(values.into_iter().map(|v| (v.to_string(), Ok(v))));
    } else {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let row = records.len() + 1;
            let parsed = serde_json::from_str::<Value>(line)
                .map_err(|e| err(ErrorKind::MalformedJson, Some(row), None, format!("malformed JSON: {e}")));
            records.push((line.to_string(), parsed));
        }
    }
    if records.is_empty() {
        return whole();
    }
    let valid_reason = format!("not written: the request was refused as a whole ({rejected})");
    records
        .into_iter()
        .enumerate()
        .map(|(i, (original, parsed))| {
            let row = i + 1;
            let own = match parsed {
                Err(e) => Some(e),
                Ok(Value::Object(m)) => rows_to_batch(def, &[m]).err().map(|e| IngestError { row: Some(row), ..e }),
                Ok(other) => Some(not_an_object(row, &other)),
            };
            let error = own.unwrap_or_else(|| err(ErrorKind::RequestRejected, Some(row), None, valid_reason.clone()));
            RejectedRecord { original, error }
        })
        .collect()
}

/// Converts parsed rows to a batch of `def`'s columns.
fn rows_to_batch(def: &StreamDef, rows: &[Map<String, Value>]) -> Result<RecordBatch, IngestError> {
    for (i, r) in rows.iter().enumerate() {
        for k in r.keys() {
            if def.column_index(k).is_none() {
                return Err(err(
                    ErrorKind::UnknownColumn,
                    Some(i + 1),
                    Some(k),
                    format!("stream '{}' has no such column", def.name),
                ));
            }
        }
    }
    let mut fields = vec![];
    let mut columns = vec![];
    for c in &def.columns {
        let name = c.field.name();
        if !rows.iter().any(|r| r.contains_key(name)) {
            let engine_fills = c.field.is_nullable()
                || c.default.is_some()
                || c.default_sql.is_some()
                || name == sluice::TP_TIME
                || rows.is_empty();
            if !engine_fills {
                return Err(err(
                    ErrorKind::MissingValue,
                    Some(1),
                    Some(name),
                    "missing, and the column has no default and is not nullable",
                ));
            }
            continue;
        }
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(name)).collect();
        let mut array = build(c.field.data_type(), &values, name).map_err(|(row, why)| {
            let kind = if why.contains("does not support") { ErrorKind::Unsupported } else { ErrorKind::InvalidValue };
            err(kind, Some(row + 1), Some(name), why)
        })?;
        for (i, v) in values.iter().enumerate() {
            let null = matches!(v, None | Some(Value::Null));
            if null && !c.field.is_nullable() && !(v.is_none() && c.default.is_some()) {
                let why = if v.is_none() {
                    "missing, and the column has no default and is not nullable"
                } else {
                    "null in a non-nullable column"
                };
                return Err(err(ErrorKind::MissingValue, Some(i + 1), Some(name), why));
            }
        }
        if let Some(default) = &c.default
            && values.iter().any(Option::is_none)
        {
            let idx: Vec<(usize, usize)> =
                values.iter().enumerate().map(|(i, v)| if v.is_some() { (0, i) } else { (1, 0) }).collect();
            array = interleave(&[array.as_ref(), default.as_ref()], &idx)
                .map_err(|e| err(ErrorKind::Unsupported, None, Some(name), format!("filling the default: {e}")))?;
        }
        fields.push(Field::new(name, c.field.data_type().clone(), true));
        columns.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| err(ErrorKind::Unsupported, None, None, e.to_string()))
}

type Built = Result<ArrayRef, (usize, String)>;

fn wrong(row: usize, v: &Value, want: &str) -> (usize, String) {
    (row, format!("expected {want}, got {} ({v})", kind(v)))
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e38).map(|f| f as i128)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        },
        _ => None,
    }
}

/// One column from JSON values (`None` = left out, built as null).
fn build(dt: &DataType, values: &[Option<&Value>], name: &str) -> Built {
    macro_rules! ints {
        ($builder:ty, $native:ty, $what:expr) => {{
            let mut b = <$builder>::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => {
                        let n = int_of(v).ok_or_else(|| wrong(i, v, $what))?;
                        let n =
                            <$native>::try_from(n).map_err(|_| (i, format!("{n} is out of range for {}", $what)))?;
                        b.append_value(n)
                    }
                }
            }
            Ok(Arc::new(b.finish()) as ArrayRef)
        }};
    }
    macro_rules! each {
        ($b:ident, |$i:ident, $v:ident| $body:expr) => {{
            for ($i, $v) in values.iter().enumerate() {
                match $v {
                    None | Some(Value::Null) => $b.append_null(),
                    Some($v) => $body,
                }
            }
            Ok(Arc::new($b.finish()) as ArrayRef)
        }};
    }
    match dt {
        DataType::Int8 => ints!(Int8Builder, i8, "an int8"),
        DataType::Int16 => ints!(Int16Builder, i16, "an int16"),
        DataType::Int32 => ints!(Int32Builder, i32, "an int32"),
        DataType::Int64 => ints!(Int64Builder, i64, "an int64"),
        DataType::UInt8 => ints!(UInt8Builder, u8, "a uint8"),
        DataType::UInt16 => ints!(UInt16Builder, u16, "a uint16"),
        DataType::UInt32 => ints!(UInt32Builder, u32, "a uint32"),
        DataType::UInt64 => ints!(UInt64Builder, u64, "a uint64"),
        DataType::Float32 => {
            let mut b = Float32Builder::with_capacity(values.len());
            each!(b, |i, v| b.append_value(float_of(v).ok_or_else(|| wrong(i, v, "a number"))? as f32))
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            each!(b, |i, v| b.append_value(float_of(v).ok_or_else(|| wrong(i, v, "a number"))?))
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            each!(b, |i, v| b.append_value(v.as_bool().ok_or_else(|| wrong(i, v, "true or false"))?))
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::new();
            each!(b, |i, v| b.append_value(v.as_str().ok_or_else(|| wrong(i, v, "a string"))?))
        }
        DataType::LargeUtf8 => {
            let mut b = LargeStringBuilder::new();
            each!(b, |i, v| b.append_value(v.as_str().ok_or_else(|| wrong(i, v, "a string"))?))
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let mut b = StringDictionaryBuilder::<t::Int32Type>::new();
            each!(b, |i, v| b.append_value(v.as_str().ok_or_else(|| wrong(i, v, "a string"))?))
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::new();
            each!(b, |i, v| b.append_value(v.as_str().ok_or_else(|| wrong(i, v, "a string"))?))
        }
        DataType::FixedSizeBinary(16) => {
            let mut b = FixedSizeBinaryBuilder::new(16);
            each!(b, |i, v| {
                let s = v.as_str().ok_or_else(|| wrong(i, v, "a UUID string"))?;
                let bytes = parse_uuid(s).ok_or_else(|| (i, format!("'{s}' is not a UUID")))?;
                b.append_value(bytes).map_err(|e| (i, e.to_string()))?
            })
        }
        DataType::Date32 => {
            let mut b = Date32Builder::with_capacity(values.len());
            each!(b, |i, v| {
                let d = match v {
                    Value::String(s) => sluice_sql::temporal::parse_date(s),
                    Value::Number(_) => int_of(v).and_then(|n| i32::try_from(n).ok()),
                    _ => None,
                };
                b.append_value(d.ok_or_else(|| wrong(i, v, "a date 'YYYY-MM-DD'"))?)
            })
        }
        DataType::Timestamp(unit, tz) => {
            let mut out: Vec<Option<i64>> = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                out.push(match v {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(timestamp(v, *unit).ok_or_else(|| {
                        wrong(i, v, "a timestamp (RFC 3339, 'YYYY-MM-DD HH:MM:SS[.fff]' or seconds since the epoch)")
                    })?),
                });
            }
            use sluice::arrow::array::{
                TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
            };
            Ok(match unit {
                TimeUnit::Second => Arc::new(TimestampSecondArray::from(out).with_timezone_opt(tz.clone())),
                TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(out).with_timezone_opt(tz.clone())),
                TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(out).with_timezone_opt(tz.clone())),
                TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(out).with_timezone_opt(tz.clone())),
            })
        }
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => {
                        let text = match v {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => s.trim().to_string(),
                            _ => return Err(wrong(i, v, "a decimal number")),
                        };
                        let d = sluice::arrow::compute::kernels::cast_utils::parse_decimal::<t::Decimal128Type>(
                            &text, *p, *s,
                        )
                        .map_err(|e| (i, format!("'{text}' is not a decimal({p}, {s}): {e}")))?;
                        b.append_value(d)
                    }
                }
            }
            let a = b.finish().with_precision_and_scale(*p, *s).map_err(|e| (0, e.to_string()))?;
            Ok(Arc::new(a))
        }
        other => Err((0, format!("column '{name}' has type {other}, which JSON ingest does not support yet"))),
    }
}

fn timestamp(v: &Value, unit: TimeUnit) -> Option<i64> {
    let per_sec = match unit {
        TimeUnit::Second => 1i64,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    match v {
        Value::String(s) => sluice_sql::temporal::parse_timestamp(s, unit, 0),
        Value::Number(n) => match n.as_i64() {
            Some(secs) => secs.checked_mul(per_sec),
            None => n.as_f64().filter(|f| f.is_finite()).map(|f| (f * per_sec as f64).round() as i64),
        },
        _ => None,
    }
}

fn parse_uuid(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    (0..32).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::ColumnDef;
    use sluice::arrow::array::{Array, AsArray};

    fn def() -> StreamDef {
        StreamDef::new(
            "s",
            vec![
                ColumnDef::new("id", DataType::Int64, false),
                ColumnDef::new("name", DataType::Utf8, true),
                ColumnDef::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
                ColumnDef::new("tag", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
                ColumnDef::new("n", DataType::UInt8, true)
                    .with_default(Arc::new(sluice::arrow::array::UInt8Array::from(vec![7]))),
            ],
        )
    }

    #[test]
    fn json_lines_and_arrays() {
        let body = br#"{"id": 1, "name": "a", "ts": "2024-01-01 00:00:00.5", "tag": "x"}
{"id": "2", "ts": 1704067200, "n": 3}"#;
        let b = json_to_batch(&def(), body).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema().fields().len(), 5);
        let ts = b.column_by_name("ts").unwrap().as_primitive::<t::TimestampMillisecondType>();
        assert_eq!(ts.value(0), 1_704_067_200_500);
        assert_eq!(ts.value(1), 1_704_067_200_000);
        let n = b.column_by_name("n").unwrap().as_primitive::<t::UInt8Type>();
        assert_eq!((n.value(0), n.value(1)), (7, 3), "the default fills the row that left n out");
        let b = json_to_batch(&def(), br#"[{"id": 5}]"#).unwrap();
        assert_eq!(b.num_columns(), 1, "columns no row gives are left to the engine");
    }

    #[test]
    fn errors_name_row_and_column() {
        let e = json_to_batch(&def(), b"{\"id\": 1}\n{\"id\": \"x\"}").unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (Some(2), Some("id")));
        let e = json_to_batch(&def(), br#"[{"id": 1, "n": 300}]"#).unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
        let e = json_to_batch(&def(), br#"[{"id": 1, "nope": 1}]"#).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("nope"));
        let e = json_to_batch(&def(), br#"[{"id": null}]"#).unwrap_err();
        assert!(e.reason.contains("null"), "{e}");
        let e = json_to_batch(&def(), br#"[{"name": "a"}]"#).unwrap_err();
        assert!(e.to_string().contains("row 1: column 'id'"), "{e}");
        let e = json_to_batch(&def(), b"{\"id\": 1}\n{oops").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(json_to_batch(&def(), br#"[{"id": 1}, 3]"#).is_err());
        let b = json_to_batch(&def(), br#"[{"id": 1, "name": null}]"#).unwrap();
        assert!(b.column_by_name("name").unwrap().is_null(0));
    }

    #[test]
    fn rejected_requests_split_into_records_with_their_own_errors() {
        let body = b"{\"id\": 1}\n{\"id\": \"x\"}\n\n{oops\n[1]\n{\"id\": 5, \"nope\": 1}\n{\"name\": \"a\"}";
        let first = json_to_batch(&def(), body).unwrap_err();
        let recs = rejected_records(&def(), body, &first);
        let kinds: Vec<(&str, Option<usize>)> = recs.iter().map(|r| (r.error.kind.as_str(), r.error.row)).collect();
        assert_eq!(
            kinds,
            [
                ("request_rejected", Some(1)),
                ("invalid_value", Some(2)),
                ("malformed_json", Some(3)),
                ("not_an_object", Some(4)),
                ("unknown_column", Some(5)),
                ("missing_value", Some(6)),
            ]
        );
        assert_eq!(recs[0].original, "{\"id\": 1}", "lines are kept as sent");
        assert_eq!(recs[2].original, "{oops");
        assert!(recs[0].error.reason.contains("row 3: malformed JSON"), "{}", recs[0].error);
        let body = br#"[{"id": 1}, {"id": null}]"#;
        let recs = rejected_records(&def(), body, &json_to_batch(&def(), body).unwrap_err());
        assert_eq!(recs.iter().map(|r| r.original.as_str()).collect::<Vec<_>>(), [r#"{"id":1}"#, r#"{"id":null}"#]);
        let body = br#"[{"id": 1}, {"id": "#;
        let recs = rejected_records(&def(), body, &json_to_batch(&def(), body).unwrap_err());
        assert_eq!((recs.len(), recs[0].error.kind), (1, ErrorKind::MalformedJson), "the whole body");
    }
}
