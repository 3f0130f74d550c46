//! COPY data in Postgres' text and CSV formats.
//!
//! In: [`CopyIn`] takes CopyData messages as they come, cuts them into records (a CSV record
//! may span lines inside quotes), splits records into fields, and appends each value to an
//! Arrow builder of its column's type, so a bad value is reported with its line number at
//! once and the input itself is never held: only the typed columns are. Nothing is written
//! until the client's CopyDone, and then in one append: a COPY is all-or-nothing like an
//! INSERT. The price is a size limit (`Config::copy_max_bytes`, about the in-memory size of
//! the parsed rows): a larger COPY fails with SQLSTATE 54000 and writes nothing.
//!
//! Out: [`encode_row`] writes one result row as a line of text or CSV.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use sluice::StreamDef;
use sluice::arrow::array::{Array, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder};
use sluice::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, LargeStringBuilder, PrimitiveBuilder,
    RecordBatch, RecordBatchOptions, StringBuilder, StringDictionaryBuilder,
};
use sluice::arrow::compute::{CastOptions, cast_with_options};
use sluice::arrow::datatypes::{self as t, DataType, Field, Schema, TimeUnit};
use sluice::arrow::util::display::FormatOptions;

use crate::error::WireError;
use crate::pg::command::{CopyFormat, Header};
use crate::pg::encode::{self, Col};

/// A COPY FROM STDIN in progress.
#[derive(Debug)]
pub(crate) struct CopyIn {
    stream: String,
    format: CopyFormat,
    fields: Vec<Field>,
    builders: Vec<ColBuilder>,
    /// Input not yet part of a complete record.
    buf: Vec<u8>,
    /// How far `buf` has been scanned for the end of the record.
    scan: usize,
    /// Scanning state at `scan`: inside CSV quotes.
    in_quotes: bool,
    /// Records read (the header included): the line number of errors.
    line: u64,
    rows: usize,
    /// About the memory the parsed rows take.
    bytes: usize,
    limit: usize,
    /// `\.` was read: the rest of the input is ignored.
    ended: bool,
    /// The first error: the rest of the input is read and dropped, then this is reported.
    error: Option<WireError>,
    values: Vec<Option<String>>,
}

impl CopyIn {
    /// A COPY into `def`'s columns `columns` (all but `_tp_time` if `None`), holding at most
    /// about `limit` bytes of parsed rows.
    pub fn new(
        def: &StreamDef,
        columns: Option<Vec<String>>,
        format: CopyFormat,
        limit: usize,
    ) -> Result<Self, CopyStartError> {
        let names: Vec<String> = match columns {
            Some(c) => c,
            None => def.columns.iter().map(|c| c.field.name().clone()).filter(|n| n != sluice::TP_TIME).collect(),
        };
        let mut fields = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(CopyStartError::Wire(WireError::DuplicateColumn(n.clone())));
            }
            let Some(idx) = def.column_index(n) else {
                return Err(CopyStartError::Engine(sluice::Error::ColumnNotFound {
                    stream: def.name.clone(),
                    column: n.clone(),
                }));
            };
            fields.push(def.columns[idx].field.clone());
        }
        let builders = fields.iter().map(|f| ColBuilder::new(f.data_type())).collect();
        Ok(CopyIn {
            stream: def.name.clone(),
            format,
            fields,
            builders,
            buf: vec![],
            scan: 0,
            in_quotes: false,
            line: 0,
            rows: 0,
            bytes: 0,
            limit,
            ended: false,
            error: None,
            values: vec![],
        })
    }

    /// The number of columns the input has.
    pub fn columns(&self) -> usize {
        self.fields.len()
    }

    /// The stream written to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Takes one CopyData message. Errors are kept for [`CopyIn::finish`] (the client sends
    /// all its data before it reads the answer).
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() || self.ended {
            return;
        }
        self.buf.extend_from_slice(data);
        let (csv, quote, escape) = (self.format.csv, self.format.quote, self.format.escape);
        let mut start = 0;
        let mut i = self.scan;
        let buf = std::mem::take(&mut self.buf);
        while i < buf.len() {
            let b = buf[i];
            if csv {
                if self.in_quotes {
                    if b == escape && escape != quote {
                        if i + 1 >= buf.len() {
                            break;
                        }
                        i += 2;
                        continue;
                    }
                    if b == quote {
                        self.in_quotes = false;
                    }
                } else if b == quote {
                    self.in_quotes = true;
                } else if b == b'\n' {
                    self.record(&buf[start..i]);
                    start = i + 1;
                }
            } else if b == b'\\' {
                if i + 1 >= buf.len() {
                    break;
                }
                // An escaped byte (a newline too) is data.
                i += 2;
                continue;
            } else if b == b'\n' {
                self.record(&buf[start..i]);
                start = i + 1;
            }
            if self.error.is_some() || self.ended {
                break;
            }
            i += 1;
        }
        if self.error.is_some() || self.ended {
            return;
        }
        self.buf = buf;
        self.buf.drain(..start);
        self.scan = i - start;
        if self.buf.len() > self.limit {
            self.error = Some(self.too_large());
        }
    }

    fn too_large(&self) -> WireError {
        WireError::TooLarge(format!(
            "COPY into {} is larger than the {} bytes a COPY may hold in memory (a COPY is \
             all-or-nothing, so it is kept until it ends): split the input into several COPYs, \
             or raise the server's copy_max_bytes",
            self.stream, self.limit
        ))
    }

    /// One record (without its newline).
    fn record(&mut self, rec: &[u8]) {
        let rec = rec.strip_suffix(b"\r").unwrap_or(rec);
        self.line += 1;
        if rec == b"\\." {
            self.ended = true;
            return;
        }
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        let split = if self.format.csv {
            csv_fields(rec, &self.format, &mut values)
        } else {
            text_fields(rec, &self.format, &mut values)
        };
        if let Err(e) = split.and_then(|_| self.row(&values)) {
            self.error = Some(e);
        }
        self.values = values;
    }

    fn at(&self, column: Option<&str>) -> String {
        match column {
            Some(c) => format!("COPY {}, line {}, column {c}", self.stream, self.line),
            None => format!("COPY {}, line {}", self.stream, self.line),
        }
    }

    fn row(&mut self, values: &[Option<String>]) -> Result<(), WireError> {
        if self.line == 1 && self.format.header != Header::No {
            if self.format.header == Header::Match {
                let names: Vec<&str> = self.fields.iter().map(|f| f.name().as_str()).collect();
                let given: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or_default()).collect();
                if names != given {
                    return Err(WireError::BadCopyFormat(format!(
                        "the header {given:?} does not match the columns {names:?} ({})",
                        self.at(None)
                    )));
                }
            }
            return Ok(());
        }
        if values.len() < self.fields.len() {
            let missing = self.fields[values.len()].name();
            return Err(WireError::BadCopyFormat(format!(
                "missing data for column \"{missing}\" ({})",
                self.at(Some(missing))
            )));
        }
        if values.len() > self.fields.len() {
            return Err(WireError::BadCopyFormat(format!("extra data after last expected column ({})", self.at(None))));
        }
        for (i, v) in values.iter().enumerate() {
            let f = &self.fields[i];
            match v {
                None if !f.is_nullable() => {
                    return Err(WireError::NotNull(format!(
                        "null value in column \"{}\" of stream \"{}\" violates not-null constraint ({})",
                        f.name(),
                        self.stream,
                        self.at(Some(f.name()))
                    )));
                }
                None => self.builders[i].push_null(),
                Some(s) => {
                    self.bytes += s.len();
                    if let Err(e) = self.builders[i].push(s) {
                        let at = self.at(Some(f.name()));
                        return Err(match e {
                            Bad::Syntax => WireError::InvalidText(format!(
                                "invalid input syntax for type {}: \"{s}\" ({at})",
                                sluice_sql::functions::type_name(f.data_type())
                            )),
                            Bad::Range => WireError::OutOfRange(format!(
                                "value \"{s}\" is out of range for type {} ({at})",
                                sluice_sql::functions::type_name(f.data_type())
                            )),
                        });
                    }
                }
            }
        }
        self.rows += 1;
        // Fixed-width values and offsets, plus `_tp_time`.
        self.bytes += 8 * (self.fields.len() + 1);
        if self.bytes > self.limit {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// Reads what is left (a last line without a newline) and builds the batch to append;
    /// `None` when there are no rows.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, WireError> {
        if self.error.is_none() && !self.ended && !self.buf.is_empty() {
            if self.format.csv && self.in_quotes {
                self.line += 1;
                return Err(WireError::BadCopyFormat(format!("unterminated CSV quoted field ({})", self.at(None))));
            }
            let rest = std::mem::take(&mut self.buf);
            self.record(&rest);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.rows == 0 {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(self.builders.len());
        for (b, f) in self.builders.into_iter().zip(&self.fields) {
            columns.push(b.finish(f, &self.stream)?);
        }
        let fields: Vec<Field> =
            self.fields.iter().map(|f| Field::new(f.name(), f.data_type().clone(), true)).collect();
        RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )
        .map(Some)
        .map_err(|e| WireError::InvalidText(format!("COPY {}: {e}", self.stream)))
    }
}

/// Why a COPY cannot start.
#[derive(Debug)]
pub(crate) enum CopyStartError {
    /// The stream or a column does not exist.
    Engine(sluice::Error),
    /// A column is listed twice.
    Wire(WireError),
}

fn utf8(v: Vec<u8>) -> Result<String, WireError> {
    String::from_utf8(v).map_err(|e| WireError::NotUtf8(format!("invalid byte sequence for encoding \"UTF8\": {e}")))
}

/// The fields of a text-format record: split at the delimiter, backslash escapes decoded,
/// the NULL spelling (compared before decoding, as Postgres does) as `None`.
fn text_fields(rec: &[u8], f: &CopyFormat, out: &mut Vec<Option<String>>) -> Result<(), WireError> {
    let null = f.null.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        let mut v = Vec::new();
        while i < rec.len() && rec[i] != f.delimiter {
            let b = rec[i];
            i += 1;
            if b != b'\\' || i >= rec.len() {
                v.push(b);
                continue;
            }
            let e = rec[i];
            i += 1;
            match e {
                b'b' => v.push(8),
                b'f' => v.push(12),
                b'n' => v.push(b'\n'),
                b'r' => v.push(b'\r'),
                b't' => v.push(b'\t'),
                b'v' => v.push(11),
                b'0'..=b'7' => {
                    let mut n = (e - b'0') as u32;
                    for _ in 0..2 {
                        match rec.get(i) {
                            Some(d @ b'0'..=b'7') => {
                                n = n * 8 + (d - b'0') as u32;
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    v.push(n as u8);
                }
                b'x' if rec.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                    let mut n = 0u32;
                    for _ in 0..2 {
                        match rec.get(i).and_then(|d| (*d as char).to_digit(16)) {
                            Some(d) => {
                                n = n * 16 + d;
                                i += 1;
                            }
                            None => break,
                        }
                    }
                    v.push(n as u8);
                }
                other => v.push(other),
            }
        }
        if &rec[start..i] == null {
            out.push(None);
        } else {
            out.push(Some(utf8(v)?));
        }
        if i >= rec.len() {
            return Ok(());
        }
        i += 1;
    }
}

/// The fields of a CSV record: quotes (doubled or escaped inside), an unquoted field equal to
/// the NULL spelling (empty by default) as `None`.
fn csv_fields(rec: &[u8], f: &CopyFormat, out: &mut Vec<Option<String>>) -> Result<(), WireError> {
    let null = f.null.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        let mut v = Vec::new();
        let mut quoted = false;
        let mut in_q = false;
        while i < rec.len() {
            let b = rec[i];
            if in_q {
                if b == f.escape
                    && rec.get(i + 1).is_some_and(|&n| n == f.quote || (n == f.escape && f.escape != f.quote))
                {
                    v.push(rec[i + 1]);
                    i += 2;
                    continue;
                }
                if b == f.quote {
                    in_q = false;
                } else {
                    v.push(b);
                }
            } else if b == f.delimiter {
                break;
            } else if b == f.quote {
                in_q = true;
                quoted = true;
            } else {
                v.push(b);
            }
            i += 1;
        }
        if in_q {
            return Err(WireError::BadCopyFormat("unterminated CSV quoted field".into()));
        }
        if !quoted && &rec[start..i] == null {
            out.push(None);
        } else {
            out.push(Some(utf8(v)?));
        }
        if i >= rec.len() {
            return Ok(());
        }
        i += 1;
    }
}

/// Why a value was refused.
#[derive(Debug)]
enum Bad {
    Syntax,
    Range,
}

/// An Arrow builder for one column, reading Postgres text spellings.
enum ColBuilder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    LargeStr(LargeStringBuilder),
    Dict(StringDictionaryBuilder<t::Int32Type>),
    Binary(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimeUnit, Option<Arc<str>>, PrimitiveBuilder<t::Int64Type>),
    Decimal(u8, i8, Decimal128Builder),
    /// Any other type: strings, cast when the COPY ends.
    Other(StringBuilder),
}

impl std::fmt::Debug for ColBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ColBuilder")
    }
}

fn int(s: &str) -> Result<i128, Bad> {
    s.trim().parse::<i128>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => Bad::Range,
        _ => Bad::Syntax,
    })
}

fn float(s: &str) -> Result<f64, Bad> {
    match s.trim().to_ascii_lowercase().as_str() {
        "nan" => Ok(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        t => t.parse().map_err(|_| Bad::Syntax),
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl ColBuilder {
    fn new(dt: &DataType) -> Self {
        match dt {
            DataType::Boolean => ColBuilder::Bool(BooleanBuilder::new()),
            DataType::Int8 => ColBuilder::I8(Int8Builder::new()),
            DataType::Int16 => ColBuilder::I16(Int16Builder::new()),
            DataType::Int32 => ColBuilder::I32(Int32Builder::new()),
            DataType::Int64 => ColBuilder::I64(Int64Builder::new()),
            DataType::UInt8 => ColBuilder::U8(UInt8Builder::new()),
            DataType::UInt16 => ColBuilder::U16(UInt16Builder::new()),
            DataType::UInt32 => ColBuilder::U32(UInt32Builder::new()),
            DataType::UInt64 => ColBuilder::U64(UInt64Builder::new()),
            DataType::Float32 => ColBuilder::F32(Float32Builder::new()),
            DataType::Float64 => ColBuilder::F64(Float64Builder::new()),
            DataType::Utf8 => ColBuilder::Str(StringBuilder::new()),
            DataType::LargeUtf8 => ColBuilder::LargeStr(LargeStringBuilder::new()),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                ColBuilder::Dict(StringDictionaryBuilder::new())
            }
            DataType::Binary => ColBuilder::Binary(BinaryBuilder::new()),
            DataType::FixedSizeBinary(16) => ColBuilder::Uuid(FixedSizeBinaryBuilder::new(16)),
            DataType::Date32 => ColBuilder::Date(Date32Builder::new()),
            DataType::Timestamp(unit, tz) => ColBuilder::Timestamp(*unit, tz.clone(), PrimitiveBuilder::new()),
            DataType::Decimal128(p, s) => ColBuilder::Decimal(*p, *s, Decimal128Builder::new()),
            _ => ColBuilder::Other(StringBuilder::new()),
        }
    }

    fn push_null(&mut self) {
        match self {
            ColBuilder::Bool(b) => b.append_null(),
            ColBuilder::I8(b) => b.append_null(),
            ColBuilder::I16(b) => b.append_null(),
            ColBuilder::I32(b) => b.append_null(),
            ColBuilder::I64(b) => b.append_null(),
            ColBuilder::U8(b) => b.append_null(),
            ColBuilder::U16(b) => b.append_null(),
            ColBuilder::U32(b) => b.append_null(),
            ColBuilder::U64(b) => b.append_null(),
            ColBuilder::F32(b) => b.append_null(),
            ColBuilder::F64(b) => b.append_null(),
            ColBuilder::Str(b) | ColBuilder::Other(b) => b.append_null(),
            ColBuilder::LargeStr(b) => b.append_null(),
            ColBuilder::Dict(b) => b.append_null(),
            ColBuilder::Binary(b) => b.append_null(),
            ColBuilder::Uuid(b) => b.append_null(),
            ColBuilder::Date(b) => b.append_null(),
            ColBuilder::Timestamp(_, _, b) => b.append_null(),
            ColBuilder::Decimal(_, _, b) => b.append_null(),
        }
    }

    fn push(&mut self, s: &str) -> Result<(), Bad> {
        macro_rules! ints {
            ($b:expr, $ty:ty) => {
                $b.append_value(<$ty>::try_from(int(s)?).map_err(|_| Bad::Range)?)
            };
        }
        match self {
            ColBuilder::Bool(b) => b.append_value(match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "1" | "on" | "yes" | "y" => true,
                "f" | "false" | "0" | "off" | "no" | "n" => false,
                _ => return Err(Bad::Syntax),
            }),
            ColBuilder::I8(b) => ints!(b, i8),
            ColBuilder::I16(b) => ints!(b, i16),
            ColBuilder::I32(b) => ints!(b, i32),
            ColBuilder::I64(b) => ints!(b, i64),
            ColBuilder::U8(b) => ints!(b, u8),
            ColBuilder::U16(b) => ints!(b, u16),
            ColBuilder::U32(b) => ints!(b, u32),
            ColBuilder::U64(b) => ints!(b, u64),
            ColBuilder::F32(b) => b.append_value(float(s)? as f32),
            ColBuilder::F64(b) => b.append_value(float(s)?),
            ColBuilder::Str(b) | ColBuilder::Other(b) => b.append_value(s),
            ColBuilder::LargeStr(b) => b.append_value(s),
            ColBuilder::Dict(b) => {
                b.append(s).map_err(|_| Bad::Range)?;
            }
            ColBuilder::Binary(b) => match s.strip_prefix("\\x") {
                Some(h) => b.append_value(hex(h).ok_or(Bad::Syntax)?),
                None => b.append_value(s.as_bytes()),
            },
            ColBuilder::Uuid(b) => {
                let h: String = s.trim().trim_start_matches('{').trim_end_matches('}').replace('-', "");
                let bytes = if h.len() == 32 { hex(&h) } else { None };
                b.append_value(bytes.ok_or(Bad::Syntax)?).map_err(|_| Bad::Syntax)?
            }
            ColBuilder::Date(b) => b.append_value(sluice_sql::temporal::parse_date(s).ok_or(Bad::Syntax)?),
            ColBuilder::Timestamp(unit, _, b) => {
                b.append_value(sluice_sql::temporal::parse_timestamp(s, *unit, 0).ok_or(Bad::Syntax)?)
            }
            ColBuilder::Decimal(p, sc, b) => {
                let d =
                    sluice::arrow::compute::kernels::cast_utils::parse_decimal::<t::Decimal128Type>(s.trim(), *p, *sc)
                        .map_err(|_| if s.trim().parse::<f64>().is_ok() { Bad::Range } else { Bad::Syntax })?;
                b.append_value(d)
            }
        }
        Ok(())
    }

    fn finish(self, f: &Field, stream: &str) -> Result<ArrayRef, WireError> {
        Ok(match self {
            ColBuilder::Bool(mut b) => Arc::new(b.finish()),
            ColBuilder::I8(mut b) => Arc::new(b.finish()),
            ColBuilder::I16(mut b) => Arc::new(b.finish()),
            ColBuilder::I32(mut b) => Arc::new(b.finish()),
            ColBuilder::I64(mut b) => Arc::new(b.finish()),
            ColBuilder::U8(mut b) => Arc::new(b.finish()),
            ColBuilder::U16(mut b) => Arc::new(b.finish()),
            ColBuilder::U32(mut b) => Arc::new(b.finish()),
            ColBuilder::U64(mut b) => Arc::new(b.finish()),
            ColBuilder::F32(mut b) => Arc::new(b.finish()),
            ColBuilder::F64(mut b) => Arc::new(b.finish()),
            ColBuilder::Str(mut b) => Arc::new(b.finish()),
            ColBuilder::LargeStr(mut b) => Arc::new(b.finish()),
            ColBuilder::Dict(mut b) => Arc::new(b.finish()),
            ColBuilder::Binary(mut b) => Arc::new(b.finish()),
            ColBuilder::Uuid(mut b) => Arc::new(b.finish()),
            ColBuilder::Date(mut b) => Arc::new(b.finish()),
            ColBuilder::Timestamp(unit, tz, mut b) => {
                let a = b.finish();
                let plain: ArrayRef = match unit {
                    TimeUnit::Second => Arc::new(a.reinterpret_cast::<t::TimestampSecondType>().with_timezone_opt(tz)),
                    TimeUnit::Millisecond => {
                        Arc::new(a.reinterpret_cast::<t::TimestampMillisecondType>().with_timezone_opt(tz))
                    }
                    TimeUnit::Microsecond => {
                        Arc::new(a.reinterpret_cast::<t::TimestampMicrosecondType>().with_timezone_opt(tz))
                    }
                    TimeUnit::Nanosecond => {
                        Arc::new(a.reinterpret_cast::<t::TimestampNanosecondType>().with_timezone_opt(tz))
                    }
                };
                plain
            }
            ColBuilder::Decimal(p, s, mut b) => Arc::new(
                b.finish()
                    .with_precision_and_scale(p, s)
                    .map_err(|e| WireError::OutOfRange(format!("COPY {stream}, column {}: {e}", f.name())))?,
            ),
            ColBuilder::Other(mut b) => {
                let strings: ArrayRef = Arc::new(b.finish());
                let opts = CastOptions { safe: false, format_options: FormatOptions::default() };
                cast_with_options(&strings, f.data_type(), &opts).map_err(|e| {
                    // The first value that does not convert, for the message.
                    let safe = CastOptions { safe: true, format_options: FormatOptions::default() };
                    let row = cast_with_options(&strings, f.data_type(), &safe)
                        .ok()
                        .and_then(|c| (0..strings.len()).find(|&i| strings.is_valid(i) && c.is_null(i)));
                    let at = row.map(|r| format!(", data row {}", r + 1)).unwrap_or_default();
                    WireError::InvalidText(format!(
                        "invalid input for type {} (COPY {stream}, column {}{at}): {e}",
                        sluice_sql::functions::type_name(f.data_type()),
                        f.name()
                    ))
                })?
            }
        })
    }
}

/// The header line of a COPY TO (CSV or text with HEADER).
pub(crate) fn encode_header(cols: &[Col], f: &CopyFormat, out: &mut BytesMut) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.put_u8(f.delimiter);
        }
        write_field(c.name.as_bytes(), f, out);
    }
    out.put_u8(b'\n');
}

/// Row `row` of `batch` as one line of COPY TO output, in `f`'s format.
pub(crate) fn encode_row(batch: &RecordBatch, row: usize, cols: &[Col], f: &CopyFormat, out: &mut BytesMut) {
    let mut value = BytesMut::new();
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.put_u8(f.delimiter);
        }
        let a = batch.column(i);
        if a.is_null(row) {
            out.put_slice(f.null.as_bytes());
            continue;
        }
        value.clear();
        encode::write_text_value(a, row, &c.pg, &mut value);
        write_field(&value, f, out);
    }
    out.put_u8(b'\n');
}

fn write_field(v: &[u8], f: &CopyFormat, out: &mut BytesMut) {
    if f.csv {
        let needs_quotes = v.is_empty()
            || v == f.null.as_bytes()
            || v.starts_with(b"\\.")
            || v.iter().any(|&b| b == f.delimiter || b == f.quote || b == b'\n' || b == b'\r');
        if !needs_quotes {
            out.put_slice(v);
            return;
        }
        out.put_u8(f.quote);
        for &b in v {
            if b == f.quote || b == f.escape {
                out.put_u8(f.escape);
            }
            out.put_u8(b);
        }
        out.put_u8(f.quote);
    } else {
        for &b in v {
            match b {
                b'\\' => out.put_slice(b"\\\\"),
                b'\n' => out.put_slice(b"\\n"),
                b'\r' => out.put_slice(b"\\r"),
                b'\t' if f.delimiter == b'\t' => out.put_slice(b"\\t"),
                b if b == f.delimiter => {
                    out.put_u8(b'\\');
                    out.put_u8(b)
                }
                b => out.put_u8(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::ColumnDef;
    use sluice::arrow::array::{AsArray, Int64Array, StringArray};

    fn def() -> StreamDef {
        StreamDef::new(
            "s",
            vec![
                ColumnDef::new("id", DataType::Int64, false),
                ColumnDef::new("name", DataType::Utf8, true),
                ColumnDef::new("ok", DataType::Boolean, true),
            ],
        )
    }

    fn format(sql_opts: &str) -> CopyFormat {
        match crate::pg::command::parse(&format!("COPY s FROM STDIN {sql_opts}")) {
            Some(Ok(crate::pg::command::Command::CopyFrom { format, .. })) => format,
            other => panic!("{other:?}"),
        }
    }

    fn run(opts: &str, chunks: &[&[u8]]) -> Result<Option<RecordBatch>, WireError> {
        let mut c = CopyIn::new(&def(), None, format(opts), 1 << 20).expect("starts");
        for ch in chunks {
            c.feed(ch);
        }
        c.finish()
    }

    #[test]
    fn text_format_escapes_nulls_and_split_messages() {
        let b = run("", &[b"1\ta\\tb\\\\c\tt\n2\t\\N\tf\n", b"3\tx\\", b"ny\\101\t\\N"]).unwrap().unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.column(0).as_ref(), &Int64Array::from(vec![1, 2, 3]) as &dyn Array);
        let names = b.column(1).as_string::<i32>();
        assert_eq!(names, &StringArray::from(vec![Some("a\tb\\c"), None, Some("x\nyA")]));
        assert_eq!(b.column(2).null_count(), 1);
    }

    #[test]
    fn csv_quotes_headers_and_end_marker() {
        let data: &[u8] = b"id,name,ok\r\n1,\"a,\"\"b\"\"\nc\",true\r\n2,,\n3,\"\",no\n\\.\nignored";
        let b = run("WITH (FORMAT csv, HEADER)", &[&data[..10], &data[10..25], &data[25..]]).unwrap().unwrap();
        assert_eq!(b.num_rows(), 3);
        let names = b.column(1).as_string::<i32>();
        assert_eq!(names, &StringArray::from(vec![Some("a,\"b\"\nc"), None, Some("")]));
        assert!(!b.column(2).as_boolean().value(2));
    }

    #[test]
    fn bad_rows_name_the_line_and_column() {
        let e = run("CSV", &[b"1,a,t\n2,b,t\nx,c,t\n"]).unwrap_err();
        assert!(
            matches!(&e, WireError::InvalidText(m) if m.contains("line 3, column id") && m.contains("\"x\"")),
            "{e}"
        );
        let e = run("", &[b"1\ta\n"]).unwrap_err();
        assert!(matches!(&e, WireError::BadCopyFormat(m) if m.contains("missing data for column \"ok\"")), "{e}");
        let e = run("", &[b"1\ta\tt\textra\n"]).unwrap_err();
        assert!(matches!(e, WireError::BadCopyFormat(_)));
        let e = run("", &[b"\\N\ta\tt\n"]).unwrap_err();
        assert!(matches!(e, WireError::NotNull(_)));
        let e = run("", &[b"99999999999999999999\ta\tt\n"]).unwrap_err();
        assert!(matches!(e, WireError::OutOfRange(_)));
        let e = run("CSV", &[b"1,\"open\n"]).unwrap_err();
        assert!(matches!(e, WireError::BadCopyFormat(_)));
        let e = run("WITH (FORMAT csv, HEADER match)", &[b"id,nom,ok\n"]).unwrap_err();
        assert!(matches!(e, WireError::BadCopyFormat(_)));
        assert!(run("", &[]).unwrap().is_none());
    }

    #[test]
    fn too_large_is_refused() {
        let mut c = CopyIn::new(&def(), None, format(""), 100).unwrap();
        for _ in 0..10 {
            c.feed(b"1\ta\tt\n");
        }
        assert!(matches!(c.finish(), Err(WireError::TooLarge(_))));
        let c = CopyIn::new(&def(), Some(vec!["id".into(), "id".into()]), format(""), 100);
        assert!(matches!(c, Err(CopyStartError::Wire(WireError::DuplicateColumn(_)))));
        let c = CopyIn::new(&def(), Some(vec!["nope".into()]), format(""), 100);
        assert!(matches!(c, Err(CopyStartError::Engine(sluice::Error::ColumnNotFound { .. }))));
    }

    #[test]
    fn rows_out_round_trip() {
        let b = run("", &[b"1\ta\\tb\\\\c\tt\n2\t\\N\tf\n"]).unwrap().unwrap();
        let cols = encode::columns(&b.schema(), None);
        let mut out = BytesMut::new();
        for r in 0..b.num_rows() {
            encode_row(&b, r, &cols, &format(""), &mut out);
        }
        assert_eq!(&out[..], b"1\ta\\tb\\\\c\tt\n2\t\\N\tf\n");
        let mut csv = BytesMut::new();
        encode_header(&cols, &format("CSV"), &mut csv);
        for r in 0..b.num_rows() {
            encode_row(&b, r, &cols, &format("CSV"), &mut csv);
        }
        assert_eq!(&csv[..], b"id,name,ok\n1,a\tb\\c,t\n2,,f\n");
    }
}
