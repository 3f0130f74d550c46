//! Arrow values on the wire: the Postgres type of each Arrow type, and `DataRow`s in text
//! format (sluice's own text, with Postgres spellings where clients parse them: `t`/`f`,
//! `Infinity`, `+00` offsets, `\x` bytea) or binary format.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::messages::data::DataRow;
use sluice::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use sluice::arrow::datatypes::{self as t, DataType, Field, Schema, TimeUnit};

/// Microseconds from the Unix epoch to the Postgres epoch (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to the Postgres epoch.
const PG_EPOCH_DAYS: i32 = 10_957;

/// The Postgres type a column is sent as.
pub(crate) fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::FixedSizeBinary(16) => Type::UUID,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => Type::BYTEA,
        DataType::Dictionary(_, v) => pg_type(v),
        _ => Type::TEXT,
    }
}

/// One result column: name, wire type and format.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub name: String,
    pub pg: Type,
    pub binary: bool,
}

/// The columns of a schema with the formats a Bind asked for (`None` = text, as in a simple
/// query or a statement Describe).
pub(crate) fn columns(schema: &Schema, formats: Option<&Format>) -> Arc<Vec<Col>> {
    let cols = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Col { name: f.name().clone(), pg: pg_type(f.data_type()), binary: is_binary(formats, i) })
        .collect();
    Arc::new(cols)
}

fn is_binary(formats: Option<&Format>, i: usize) -> bool {
    match formats {
        None | Some(Format::UnifiedText) => false,
        Some(Format::UnifiedBinary) => true,
        Some(Format::Individual(v)) => v.get(i).is_some_and(|&c| c == 1),
    }
}

/// The RowDescription fields of `cols`.
pub(crate) fn field_infos(cols: &[Col]) -> Vec<FieldInfo> {
    cols.iter()
        .map(|c| {
            let format = if c.binary { FieldFormat::Binary } else { FieldFormat::Text };
            FieldInfo::new(c.name.clone(), None, None, c.pg.clone(), format)
        })
        .collect()
}

/// A schema of nullable UTF-8 columns with these names (canned catalog answers).
pub(crate) fn text_schema(names: &[String]) -> Arc<Schema> {
    Arc::new(Schema::new(names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Vec<_>>()))
}

/// Encodes row `row` of `batch`.
pub(crate) fn data_row(batch: &RecordBatch, row: usize, cols: &[Col], buf: &mut BytesMut) -> DataRow {
    for (i, col) in cols.iter().enumerate() {
        let array = batch.column(i);
        if array.is_null(row) {
            buf.put_i32(-1);
            continue;
        }
        let at = buf.len();
        buf.put_i32(0);
        if col.binary {
            write_binary(array, row, &col.pg, buf);
        } else {
            write_text(array, row, &col.pg, buf);
        }
        let len = (buf.len() - at - 4) as i32;
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    DataRow::new(buf.split(), cols.len() as i16)
}

/// One value in text format, as a query sends it (COPY TO writes the same text).
pub(crate) fn write_text_value(array: &ArrayRef, row: usize, pg: &Type, buf: &mut BytesMut) {
    write_text(array, row, pg, buf)
}

fn write_text(array: &ArrayRef, row: usize, pg: &Type, buf: &mut BytesMut) {
    match array.data_type() {
        DataType::Dictionary(..) => {
            let d = array.as_any_dictionary();
            let key = d.normalized_keys()[row];
            return write_text(d.values(), key, pg, buf);
        }
        DataType::Boolean => {
            buf.put_slice(if array.as_boolean().value(row) { b"t" } else { b"f" });
            return;
        }
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) if *pg == Type::BYTEA => {
            buf.put_slice(b"\\x");
            for b in binary_value(array, row) {
                buf.put_slice(format!("{b:02x}").as_bytes());
            }
            return;
        }
        DataType::FixedSizeBinary(16) => {
            buf.put_slice(uuid_text(array.as_fixed_size_binary().value(row)).as_bytes());
            return;
        }
        _ => {}
    }
    let s = sluice::text::format_value(array, row).unwrap_or_default();
    let s = match s.as_str() {
        "inf" if matches!(*pg, Type::FLOAT4 | Type::FLOAT8) => "Infinity".to_string(),
        "-inf" if matches!(*pg, Type::FLOAT4 | Type::FLOAT8) => "-Infinity".to_string(),
        "nan" if matches!(*pg, Type::FLOAT4 | Type::FLOAT8) => "NaN".to_string(),
        _ if *pg == Type::TIMESTAMPTZ => s + "+00",
        _ => s,
    };
    buf.put_slice(s.as_bytes());
}

fn binary_value(array: &ArrayRef, row: usize) -> &[u8] {
    match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        _ => &[],
    }
}

fn uuid_text(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if h.len() != 32 {
        return h;
    }
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn write_binary(array: &ArrayRef, row: usize, pg: &Type, buf: &mut BytesMut) {
    macro_rules! prim {
        ($ty:ty) => {
            array.as_primitive::<$ty>().value(row)
        };
    }
    match array.data_type() {
        DataType::Dictionary(..) => {
            let d = array.as_any_dictionary();
            let key = d.normalized_keys()[row];
            write_binary(d.values(), key, pg, buf)
        }
        DataType::Boolean => buf.put_u8(array.as_boolean().value(row) as u8),
        DataType::Int8 => buf.put_i16(prim!(t::Int8Type) as i16),
        DataType::Int16 => buf.put_i16(prim!(t::Int16Type)),
        DataType::UInt8 => buf.put_i16(prim!(t::UInt8Type) as i16),
        DataType::Int32 => buf.put_i32(prim!(t::Int32Type)),
        DataType::UInt16 => buf.put_i32(prim!(t::UInt16Type) as i32),
        DataType::Int64 => buf.put_i64(prim!(t::Int64Type)),
        DataType::UInt32 => buf.put_i64(prim!(t::UInt32Type) as i64),
        DataType::Float32 => buf.put_f32(prim!(t::Float32Type)),
        DataType::Float16 => buf.put_f32(prim!(t::Float16Type).to_f32()),
        DataType::Float64 => buf.put_f64(prim!(t::Float64Type)),
        DataType::Date32 => buf.put_i32(prim!(t::Date32Type) - PG_EPOCH_DAYS),
        DataType::Date64 => buf.put_i32((prim!(t::Date64Type) / 86_400_000) as i32 - PG_EPOCH_DAYS),
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => prim!(t::TimestampSecondType).saturating_mul(1_000_000),
                TimeUnit::Millisecond => prim!(t::TimestampMillisecondType).saturating_mul(1_000),
                TimeUnit::Microsecond => prim!(t::TimestampMicrosecondType),
                TimeUnit::Nanosecond => prim!(t::TimestampNanosecondType).div_euclid(1_000),
            };
            buf.put_i64(micros.saturating_sub(PG_EPOCH_MICROS))
        }
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) | DataType::BinaryView => {
            buf.put_slice(binary_value(array, row))
        }
        _ if *pg == Type::NUMERIC => {
            let s = sluice::text::format_value(array, row).unwrap_or_default();
            numeric_binary(&s, buf)
        }
        // Everything else is sent as text, whose binary form is its UTF-8 bytes.
        _ => write_text(array, row, pg, buf),
    }
}

/// Postgres' binary `numeric` of a decimal string (`-123.4500`): base-10000 digits.
pub(crate) fn numeric_binary(s: &str, buf: &mut BytesMut) {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        // NaN and friends.
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(0xC000);
        buf.put_u16(0);
        return;
    }
    let int = int.trim_start_matches('0');
    let dscale = frac.len() as u16;
    let ipad = (4 - int.len() % 4) % 4;
    let fpad = (4 - frac.len() % 4) % 4;
    let digits_str: String = "0".repeat(ipad) + int + frac + &"0".repeat(fpad);
    let mut groups: Vec<i16> =
        digits_str.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |a, d| a * 10 + (d - b'0') as i16)).collect();
    let mut weight = ((ipad + int.len()) / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if neg && !groups.is_empty() { 0x4000 } else { 0 });
    buf.put_u16(dscale);
    for g in groups {
        buf.put_i16(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Vec<i16> {
        let mut b = BytesMut::new();
        numeric_binary(s, &mut b);
        b.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // ndigits, weight, sign, dscale, digits
        assert_eq!(num("12345.678"), vec![3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(num("-0.5"), vec![1, -1, 0x4000, 1, 5000]);
        assert_eq!(num("0"), vec![0, 0, 0, 0]);
        assert_eq!(num("10000"), vec![1, 1, 0, 0, 1]);
        assert_eq!(num("18446744073709551615"), vec![5, 4, 0, 0, 1844, 6744, 737, 955, 1615]);
    }

    #[test]
    fn uuid_is_dashed() {
        assert_eq!(uuid_text(&[0xab; 16]), "abababab-abab-abab-abab-abababababab");
    }
}
