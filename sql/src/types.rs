//! Column types: [`SqlType`], its parser (Proton snake_case and ClickHouse CamelCase spellings,
//! case-insensitive) and its canonical display. The Arrow mapping lives in [`arrow`]; the
//! table of both is in `sql/TYPES.md`.

use std::fmt;
use std::str::FromStr;

use sqlparser::ast::DataType;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::error::{Error, Result};
use crate::lexer;

/// Arrow mapping of [`SqlType`].
pub mod arrow;
/// Parsing type names.
mod parse;

pub(crate) use parse::{TypeName, parse_sql_type};

/// Deepest type nesting accepted (`array(array(...))`), so hostile input cannot exhaust the stack.
pub const MAX_TYPE_DEPTH: usize = 32;

/// Longest `fixed_string(n)` (ClickHouse's limit, 16 MiB - 1).
pub const MAX_FIXED_STRING: u32 = 0xFF_FFFF;

/// Largest decimal precision (ClickHouse's `Decimal256`).
pub const MAX_DECIMAL_PRECISION: u8 = 76;

/// A column type of sluice's dialect.
///
/// `Display` gives the canonical Proton spelling (`uint64`, `datetime64(3, 'UTC')`,
/// `low_cardinality(nullable(string))`) and `FromStr` reads it back, together with the
/// ClickHouse spellings (`UInt64`, `DateTime64(3, 'UTC')`, `LowCardinality(Nullable(String))`)
/// and the usual SQL aliases (`int`, `bigint`, `varchar(n)`, `double precision`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlType {
    /// `int8`: signed 8-bit integer.
    Int8,
    /// `int16`.
    Int16,
    /// `int32` (alias `int`, `integer`).
    Int32,
    /// `int64` (alias `bigint`).
    Int64,
    /// `uint8`.
    UInt8,
    /// `uint16`.
    UInt16,
    /// `uint32`.
    UInt32,
    /// `uint64`.
    UInt64,
    /// `float32` (alias `float`, `real`).
    Float32,
    /// `float64` (alias `double`).
    Float64,
    /// `decimal(precision, scale)`, precision 1..=76, scale 0..=precision.
    Decimal {
        /// Total significant digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `bool` (alias `boolean`).
    Bool,
    /// `string` (alias `text`, `varchar`): UTF-8 text of any length.
    String,
    /// `fixed_string(n)`: exactly `n` bytes, 1 <= n <= [`MAX_FIXED_STRING`].
    FixedString(u32),
    /// `date`: a day.
    Date,
    /// `date32`: a day, extended range.
    Date32,
    /// `datetime[('tz')]`: seconds since the epoch; UTC unless a zone is given.
    DateTime {
        /// Time zone name, if given.
        tz: Option<String>,
    },
    /// `datetime64(precision[, 'tz'])`: 10^-precision seconds since the epoch, precision 0..=9.
    DateTime64 {
        /// Digits of sub-second precision.
        precision: u8,
        /// Time zone name, if given.
        tz: Option<String>,
    },
    /// `uuid`.
    Uuid,
    /// `nullable(T)`: `T` or NULL. `T` must be a scalar.
    Nullable(Box<SqlType>),
    /// `low_cardinality(T)`: dictionary-encoded `T` (a scalar or `nullable(scalar)`).
    LowCardinality(Box<SqlType>),
    /// `array(T)`.
    Array(Box<SqlType>),
    /// `map(K, V)`: `K` a non-nullable key type.
    Map(Box<SqlType>, Box<SqlType>),
    /// `tuple(T1, T2, ...)` or `tuple(a T1, b T2, ...)`.
    Tuple(Vec<TupleField>),
}

/// One element of a [`SqlType::Tuple`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TupleField {
    /// Its name, if the tuple is named.
    pub name: Option<String>,
    /// Its type.
    pub ty: SqlType,
}

impl SqlType {
    /// `nullable(inner)`, checking that `inner` may be nullable.
    pub fn nullable(inner: SqlType) -> Result<Self, String> {
        if !inner.is_scalar() {
            return Err(format!("`{inner}` cannot be inside nullable(...): only scalar types can be NULL"));
        }
        Ok(SqlType::Nullable(Box::new(inner)))
    }

    /// `low_cardinality(inner)`, checking that `inner` is a scalar or `nullable(scalar)`.
    pub fn low_cardinality(inner: SqlType) -> Result<Self, String> {
        if !(inner.is_scalar() || matches!(&inner, SqlType::Nullable(_))) {
            return Err(format!("low_cardinality(...) needs a scalar or nullable scalar type, not `{inner}`"));
        }
        Ok(SqlType::LowCardinality(Box::new(inner)))
    }

    /// `map(key, value)`, checking that `key` can be a map key.
    pub fn map(key: SqlType, value: SqlType) -> Result<Self, String> {
        let key_ok = match &key {
            SqlType::LowCardinality(inner) => matches!(**inner, SqlType::String | SqlType::FixedString(_)),
            k => {
                k.is_integer()
                    || matches!(
                        k,
                        SqlType::Bool
                            | SqlType::String
                            | SqlType::FixedString(_)
                            | SqlType::Uuid
                            | SqlType::Date
                            | SqlType::Date32
                            | SqlType::DateTime { .. }
                            | SqlType::DateTime64 { .. }
                    )
            }
        };
        if !key_ok {
            return Err(format!(
                "`{key}` cannot be a map key: use an integer, string, fixed_string, uuid, date or datetime type"
            ));
        }
        Ok(SqlType::Map(Box::new(key), Box::new(value)))
    }

    /// Whether this is a single value (not nullable, low_cardinality, array, map or tuple).
    pub fn is_scalar(&self) -> bool {
        !matches!(
            self,
            SqlType::Nullable(_)
                | SqlType::LowCardinality(_)
                | SqlType::Array(_)
                | SqlType::Map(..)
                | SqlType::Tuple(_)
        )
    }

    /// Whether this is one of the signed or unsigned integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            SqlType::Int8
                | SqlType::Int16
                | SqlType::Int32
                | SqlType::Int64
                | SqlType::UInt8
                | SqlType::UInt16
                | SqlType::UInt32
                | SqlType::UInt64
        )
    }

    /// Whether values of this type may be NULL (`nullable(T)` or `low_cardinality(nullable(T))`).
    pub fn is_nullable(&self) -> bool {
        match self {
            SqlType::Nullable(_) => true,
            SqlType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        }
    }

    /// The type without an outer `nullable(...)`.
    pub fn strip_nullable(&self) -> &SqlType {
        match self {
            SqlType::Nullable(inner) => inner,
            other => other,
        }
    }

    /// The type of a sqlparser `DataType` from a cast or typed literal. Casts parsed by sluice
    /// carry a `DataType::Custom` with the canonical spelling; other data types are read through
    /// their SQL text, so `INT`, `VARCHAR(10)` or `DOUBLE PRECISION` work too.
    pub fn from_data_type(data_type: &DataType) -> Result<Self> {
        data_type.to_string().parse()
    }
}

impl FromStr for SqlType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let tokens = lexer::tokenize(s)?;
        let dialect = crate::dialect::SluiceDialect::new();
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let ty = parse_sql_type(&mut parser)?;
        let next = parser.next_token();
        if next.token != Token::EOF {
            return Err(Error::parse(format!("unexpected `{}` after type `{ty}`", next.token), next.span.start));
        }
        Ok(ty)
    }
}

/// Writes `name` as an identifier, in backticks if it is not a plain one.
pub(crate) fn write_ident(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { f.write_str(name) } else { write!(f, "`{}`", name.replace('`', "``")) }
}

/// Writes `s` as a single-quoted string literal.
pub(crate) fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Int8 => f.write_str("int8"),
            SqlType::Int16 => f.write_str("int16"),
            SqlType::Int32 => f.write_str("int32"),
            SqlType::Int64 => f.write_str("int64"),
            SqlType::UInt8 => f.write_str("uint8"),
            SqlType::UInt16 => f.write_str("uint16"),
            SqlType::UInt32 => f.write_str("uint32"),
            SqlType::UInt64 => f.write_str("uint64"),
            SqlType::Float32 => f.write_str("float32"),
            SqlType::Float64 => f.write_str("float64"),
            SqlType::Decimal { precision, scale } => write!(f, "decimal({precision}, {scale})"),
            SqlType::Bool => f.write_str("bool"),
            SqlType::String => f.write_str("string"),
            SqlType::FixedString(n) => write!(f, "fixed_string({n})"),
            SqlType::Date => f.write_str("date"),
            SqlType::Date32 => f.write_str("date32"),
            SqlType::DateTime { tz: None } => f.write_str("datetime"),
            SqlType::DateTime { tz: Some(tz) } => {
                f.write_str("datetime(")?;
                write_string(f, tz)?;
                f.write_str(")")
            }
            SqlType::DateTime64 { precision, tz } => {
                write!(f, "datetime64({precision}")?;
                if let Some(tz) = tz {
                    f.write_str(", ")?;
                    write_string(f, tz)?;
                }
                f.write_str(")")
            }
            SqlType::Uuid => f.write_str("uuid"),
            SqlType::Nullable(t) => write!(f, "nullable({t})"),
            SqlType::LowCardinality(t) => write!(f, "low_cardinality({t})"),
            SqlType::Array(t) => write!(f, "array({t})"),
            SqlType::Map(k, v) => write!(f, "map({k}, {v})"),
            SqlType::Tuple(fields) => {
                f.write_str("tuple(")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(name) = &field.name {
                        write_ident(f, name)?;
                        f.write_str(" ")?;
                    }
                    write!(f, "{}", field.ty)?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    fn ty(s: &str) -> SqlType {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// (spelling, canonical display)
    const SPELLINGS: &[(&str, &str)] = &[
        ("int8", "int8"),
        ("Int8", "int8"),
        ("TINYINT", "int8"),
        ("int16", "int16"),
        ("SMALLINT", "int16"),
        ("int2", "int16"),
        ("int32", "int32"),
        ("Int32", "int32"),
        ("int", "int32"),
        ("INTEGER", "int32"),
        ("INT4", "int32"),
        ("int64", "int64"),
        ("BIGINT", "int64"),
        ("uint8", "uint8"),
        ("UInt8", "uint8"),
        ("uint16", "uint16"),
        ("UInt16", "uint16"),
        ("uint32", "uint32"),
        ("UINT32", "uint32"),
        ("uint64", "uint64"),
        ("UInt64", "uint64"),
        ("float32", "float32"),
        ("Float32", "float32"),
        ("float", "float32"),
        ("REAL", "float32"),
        ("float4", "float32"),
        ("float64", "float64"),
        ("Float64", "float64"),
        ("double", "float64"),
        ("DOUBLE PRECISION", "float64"),
        ("FLOAT8", "float64"),
        ("decimal(10, 2)", "decimal(10, 2)"),
        ("Decimal(38,10)", "decimal(38, 10)"),
        ("decimal", "decimal(10, 0)"),
        ("numeric(5)", "decimal(5, 0)"),
        ("Decimal32(4)", "decimal(9, 4)"),
        ("decimal64(2)", "decimal(18, 2)"),
        ("Decimal128(0)", "decimal(38, 0)"),
        ("decimal256(70)", "decimal(76, 70)"),
        ("bool", "bool"),
        ("Bool", "bool"),
        ("BOOLEAN", "bool"),
        ("string", "string"),
        ("String", "string"),
        ("TEXT", "string"),
        ("varchar", "string"),
        ("VARCHAR(255)", "string"),
        ("fixed_string(16)", "fixed_string(16)"),
        ("FixedString(3)", "fixed_string(3)"),
        ("date", "date"),
        ("Date", "date"),
        ("date32", "date32"),
        ("Date32", "date32"),
        ("datetime", "datetime"),
        ("DateTime", "datetime"),
        ("TIMESTAMP", "datetime"),
        ("datetime('Asia/Tokyo')", "datetime('Asia/Tokyo')"),
        ("DateTime('UTC')", "datetime('UTC')"),
        ("datetime64(3)", "datetime64(3)"),
        ("DateTime64(3, 'UTC')", "datetime64(3, 'UTC')"),
        ("datetime64(9,'America/New_York')", "datetime64(9, 'America/New_York')"),
        ("datetime64", "datetime64(3)"),
        ("uuid", "uuid"),
        ("UUID", "uuid"),
        ("nullable(int32)", "nullable(int32)"),
        ("Nullable(String)", "nullable(string)"),
        ("low_cardinality(string)", "low_cardinality(string)"),
        ("LowCardinality(Nullable(String))", "low_cardinality(nullable(string))"),
        ("array(int32)", "array(int32)"),
        ("Array(Nullable(Float64))", "array(nullable(float64))"),
        ("array(array(string))", "array(array(string))"),
        ("map(string, int64)", "map(string, int64)"),
        ("Map(LowCardinality(String), Array(UInt8))", "map(low_cardinality(string), array(uint8))"),
        ("tuple(int32, string)", "tuple(int32, string)"),
        ("Tuple(a Int32, `b c` Nullable(String))", "tuple(a int32, `b c` nullable(string))"),
    ];

    #[test]
    fn every_spelling_parses_to_its_canonical_form_and_round_trips() {
        for (spelling, canonical) in SPELLINGS {
            let parsed = ty(spelling);
            assert_eq!(parsed.to_string(), *canonical, "{spelling}");
            assert_eq!(ty(canonical), parsed, "{canonical} does not parse back");
        }
    }

    #[test]
    fn invalid_types_are_rejected_with_a_reason() {
        for (s, needle) in [
            ("decimal(0, 0)", "precision"),
            ("decimal(77, 2)", "precision"),
            ("decimal(5, 6)", "scale"),
            ("datetime64(10)", "precision"),
            ("fixed_string(0)", "length"),
            ("fixed_string", "needs arguments"),
            ("nullable(array(int32))", "nullable"),
            ("nullable(nullable(int32))", "nullable"),
            ("low_cardinality(array(string))", "low_cardinality"),
            ("map(float64, string)", "map key"),
            ("map(nullable(string), string)", "map key"),
            ("map(string)", "key and a value"),
            ("tuple(a int32, string)", "all named"),
            ("tuple(a int32, a string)", "twice"),
            ("array(int32", "expected `)`"),
            ("int32 int32", "unexpected"),
            ("datetime('')", "time zone"),
            ("'int32'", "type name"),
        ] {
            let err = s.parse::<SqlType>().expect_err(s);
            assert!(err.to_string().contains(needle), "{s}: {err}");
        }
    }

    #[test]
    fn unknown_and_unsupported_types_have_their_own_errors() {
        let err = "int33".parse::<SqlType>().expect_err("unknown");
        assert!(matches!(err, Error::UnknownType { ref name, .. } if name == "int33"), "{err:?}");
        let err = "array(foo)".parse::<SqlType>().expect_err("unknown");
        assert_eq!(err.location(), Some(Location::new(1, 7)));
        let err = "Int128".parse::<SqlType>().expect_err("unsupported");
        assert!(matches!(err, Error::NotImplemented { .. }), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}int32{}", "array(".repeat(1000), ")".repeat(1000));
        assert!(deep.parse::<SqlType>().is_err());
        let ok = format!("{}int32{}", "array(".repeat(MAX_TYPE_DEPTH), ")".repeat(MAX_TYPE_DEPTH));
        assert!(ok.parse::<SqlType>().is_ok());
    }

    #[test]
    fn time_zones_with_quotes_round_trip() {
        let t = SqlType::DateTime64 { precision: 3, tz: Some("a'b\\c".into()) };
        assert_eq!(ty(&t.to_string()), t);
    }

    #[test]
    fn nullability_helpers() {
        assert!(ty("nullable(int8)").is_nullable());
        assert!(ty("low_cardinality(nullable(string))").is_nullable());
        assert!(!ty("array(nullable(int8))").is_nullable());
        assert_eq!(ty("nullable(int8)").strip_nullable(), &SqlType::Int8);
    }
}
