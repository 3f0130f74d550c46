//! [`SqlType`] <-> Arrow. The table is in `sql/TYPES.md`.
//!
//! Nullability is a property of an Arrow [`Field`](::arrow::datatypes::Field), not of a
//! [`DataType`](::arrow::datatypes::DataType): `nullable(T)` maps to the data type of `T` in a
//! nullable field. Where two sluice types share one Arrow type (`date`/`date32`,
//! `datetime64(2)`/`datetime64(3)`, an explicit `'UTC'`), the field carries the exact type in its
//! metadata under [`TYPE_METADATA_KEY`](crate::types::arrow::TYPE_METADATA_KEY), so a schema
//! written to Parquet and read back gives the same stream definition. `uuid` uses Arrow's
//! canonical `arrow.uuid` extension name instead. Fields whose type maps back unambiguously carry
//! no metadata.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::{SqlType, TupleField};
use crate::error::{Error, Result};

/// Field metadata key holding the exact sluice type where the Arrow type alone is ambiguous.
pub const TYPE_METADATA_KEY: &str = "sluice.type";
/// Arrow's field metadata key for extension type names.
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// The canonical extension name of UUID columns.
pub const UUID_EXTENSION_NAME: &str = "arrow.uuid";
/// Name of the element field of a list (`array(T)`).
pub const LIST_ITEM_NAME: &str = "item";
/// Name of the entries struct field of a map.
pub const MAP_ENTRIES_NAME: &str = "entries";
/// Name of the key field inside map entries.
pub const MAP_KEY_NAME: &str = "key";
/// Name of the value field inside map entries.
pub const MAP_VALUE_NAME: &str = "value";
/// Time zone of `datetime`/`datetime64` columns declared without one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

fn unsupported(data_type: &DataType) -> Error {
    Error::NotImplemented { feature: format!("Arrow type {data_type} as a column type"), location: None }
}

impl SqlType {
    /// The Arrow data type of this type's values. `nullable(T)` gives the data type of `T`;
    /// use [`SqlType::to_arrow_field`] to keep the nullability.
    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::Int8 => DataType::Int8,
            SqlType::Int16 => DataType::Int16,
            SqlType::Int32 => DataType::Int32,
            SqlType::Int64 => DataType::Int64,
            SqlType::UInt8 => DataType::UInt8,
            SqlType::UInt16 => DataType::UInt16,
            SqlType::UInt32 => DataType::UInt32,
            SqlType::UInt64 => DataType::UInt64,
            SqlType::Float32 => DataType::Float32,
            SqlType::Float64 => DataType::Float64,
            SqlType::Decimal { precision, scale } if *precision <= 38 => DataType::Decimal128(*precision, *scale as i8),
            SqlType::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale as i8),
            SqlType::Bool => DataType::Boolean,
            SqlType::String => DataType::Utf8,
            SqlType::FixedString(n) => DataType::FixedSizeBinary(i32::try_from(*n).unwrap_or(i32::MAX)),
            SqlType::Date | SqlType::Date32 => DataType::Date32,
            SqlType::DateTime { tz } => DataType::Timestamp(TimeUnit::Second, Some(zone(tz))),
            SqlType::DateTime64 { precision, tz } => DataType::Timestamp(time_unit(*precision), Some(zone(tz))),
            SqlType::Uuid => DataType::FixedSizeBinary(16),
            SqlType::Nullable(inner) => inner.to_arrow(),
            SqlType::LowCardinality(inner) => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(inner.strip_nullable().to_arrow()))
            }
            SqlType::Array(inner) => DataType::List(Arc::new(inner.to_arrow_field(LIST_ITEM_NAME))),
            SqlType::Map(key, value) => {
                let entries =
                    Fields::from(vec![key.to_arrow_field(MAP_KEY_NAME), value.to_arrow_field(MAP_VALUE_NAME)]);
                DataType::Map(Arc::new(Field::new(MAP_ENTRIES_NAME, DataType::Struct(entries), false)), false)
            }
            SqlType::Tuple(fields) => DataType::Struct(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.ty.to_arrow_field(f.name.clone().unwrap_or_else(|| (i + 1).to_string())))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        }
    }

    /// An Arrow field named `name` holding this type: nullable iff [`SqlType::is_nullable`], with
    /// type metadata where the Arrow type alone would map back to a different sluice type.
    pub fn to_arrow_field(&self, name: impl Into<String>) -> Field {
        let core = self.non_null_core();
        let field = Field::new(name, self.to_arrow(), self.is_nullable());
        if core == SqlType::Uuid {
            return field.with_metadata([(EXTENSION_NAME_KEY, UUID_EXTENSION_NAME)]);
        }
        match SqlType::from_arrow(field.data_type()) {
            Ok(back) if back == core => field,
            _ => field.with_metadata([(TYPE_METADATA_KEY.to_string(), core.to_string())]),
        }
    }

    /// The sluice type of an Arrow data type, without any field metadata: the most common sluice
    /// type with that representation (`Date32` is `date`, `Timestamp(ms)` is `datetime64(3)`).
    /// Types sluice has no column type for are [`Error::NotImplemented`].
    pub fn from_arrow(data_type: &DataType) -> Result<SqlType> {
        Ok(match data_type {
            DataType::Boolean => SqlType::Bool,
            DataType::Int8 => SqlType::Int8,
            DataType::Int16 => SqlType::Int16,
            DataType::Int32 => SqlType::Int32,
            DataType::Int64 => SqlType::Int64,
            DataType::UInt8 => SqlType::UInt8,
            DataType::UInt16 => SqlType::UInt16,
            DataType::UInt32 => SqlType::UInt32,
            DataType::UInt64 => SqlType::UInt64,
            DataType::Float32 => SqlType::Float32,
            DataType::Float64 => SqlType::Float64,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
            DataType::FixedSizeBinary(n) if *n >= 1 => SqlType::FixedString(*n as u32),
            DataType::Date32 => SqlType::Date,
            DataType::Timestamp(unit, tz) => {
                let tz = tz.as_deref().filter(|z| *z != DEFAULT_TIME_ZONE).map(str::to_string);
                match unit {
                    TimeUnit::Second => SqlType::DateTime { tz },
                    TimeUnit::Millisecond => SqlType::DateTime64 { precision: 3, tz },
                    TimeUnit::Microsecond => SqlType::DateTime64 { precision: 6, tz },
                    TimeUnit::Nanosecond => SqlType::DateTime64 { precision: 9, tz },
                }
            }
            DataType::Decimal32(p, s)
            | DataType::Decimal64(p, s)
            | DataType::Decimal128(p, s)
            | DataType::Decimal256(p, s)
                if *s >= 0 && (1..=super::MAX_DECIMAL_PRECISION).contains(p) && (*s as u8) <= *p =>
            {
                SqlType::Decimal { precision: *p, scale: *s as u8 }
            }
            DataType::Dictionary(key, value) if key.is_dictionary_key_type() => {
                SqlType::low_cardinality(SqlType::from_arrow(value)?).map_err(|_| unsupported(data_type))?
            }
            DataType::List(item) | DataType::LargeList(item) => {
                SqlType::Array(Box::new(SqlType::from_arrow_field(item)?))
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    let key = SqlType::from_arrow_field(&kv[0])?;
                    let value = SqlType::from_arrow_field(&kv[1])?;
                    SqlType::map(key, value).map_err(|_| unsupported(data_type))?
                }
                _ => return Err(unsupported(data_type)),
            },
            DataType::Struct(fields) if !fields.is_empty() => {
                let unnamed = fields.iter().enumerate().all(|(i, f)| *f.name() == (i + 1).to_string());
                SqlType::Tuple(
                    fields
                        .iter()
                        .map(|f| {
                            Ok(TupleField {
                                name: (!unnamed).then(|| f.name().clone()),
                                ty: SqlType::from_arrow_field(f)?,
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
            other => return Err(unsupported(other)),
        })
    }

    /// The sluice type of an Arrow field: its metadata if it has any, else
    /// [`SqlType::from_arrow`] of its data type, made nullable if the field is nullable.
    ///
    /// ClickHouse has no nullable arrays, maps or tuples, so a nullable field of those types maps
    /// to the non-nullable sluice type (the engine decides what a NULL there becomes).
    pub fn from_arrow_field(field: &Field) -> Result<SqlType> {
        let metadata = field.metadata();
        let core = if metadata.get(EXTENSION_NAME_KEY).map(String::as_str) == Some(UUID_EXTENSION_NAME)
            && field.data_type() == &DataType::FixedSizeBinary(16)
        {
            SqlType::Uuid
        } else if let Some(declared) = metadata.get(TYPE_METADATA_KEY) {
            let ty: SqlType = declared.parse().map_err(|e| Error::InvalidValue {
                message: format!("field `{}` has invalid {TYPE_METADATA_KEY} metadata `{declared}`: {e}", field.name()),
            })?;
            if &ty.to_arrow() != field.data_type() {
                return Err(Error::InvalidValue {
                    message: format!(
                        "field `{}` is declared as `{ty}` in its metadata but holds Arrow type {}",
                        field.name(),
                        field.data_type()
                    ),
                });
            }
            ty.non_null_core()
        } else {
            SqlType::from_arrow(field.data_type())?
        };
        Ok(core.with_nullability(field.is_nullable()))
    }

    /// This type without nullability: `nullable(T)` is `T`, `low_cardinality(nullable(T))` is
    /// `low_cardinality(T)`.
    fn non_null_core(&self) -> SqlType {
        match self {
            SqlType::Nullable(inner) => (**inner).clone(),
            SqlType::LowCardinality(inner) => SqlType::LowCardinality(Box::new(inner.strip_nullable().clone())),
            other => other.clone(),
        }
    }

    /// The inverse of [`SqlType::non_null_core`].
    fn with_nullability(self, nullable: bool) -> SqlType {
        if !nullable {
            return self;
        }
        match self {
            SqlType::LowCardinality(inner) if inner.is_scalar() => {
                SqlType::LowCardinality(Box::new(SqlType::Nullable(inner)))
            }
            scalar if scalar.is_scalar() => SqlType::Nullable(Box::new(scalar)),
            other => other,
        }
    }
}

fn zone(tz: &Option<String>) -> Arc<str> {
    Arc::from(tz.as_deref().unwrap_or(DEFAULT_TIME_ZONE))
}

fn time_unit(precision: u8) -> TimeUnit {
    match precision {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> SqlType {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn mapping_matches_the_table() {
        let utc = Some(Arc::from("UTC"));
        for (sql, arrow) in [
            ("int8", DataType::Int8),
            ("uint64", DataType::UInt64),
            ("float32", DataType::Float32),
            ("bool", DataType::Boolean),
            ("string", DataType::Utf8),
            ("fixed_string(4)", DataType::FixedSizeBinary(4)),
            ("uuid", DataType::FixedSizeBinary(16)),
            ("date", DataType::Date32),
            ("date32", DataType::Date32),
            ("datetime", DataType::Timestamp(TimeUnit::Second, utc.clone())),
            ("datetime64(3)", DataType::Timestamp(TimeUnit::Millisecond, utc.clone())),
            ("datetime64(6)", DataType::Timestamp(TimeUnit::Microsecond, utc.clone())),
            ("datetime64(9, 'Asia/Tokyo')", DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("Asia/Tokyo")))),
            ("decimal(38, 4)", DataType::Decimal128(38, 4)),
            ("decimal(40, 4)", DataType::Decimal256(40, 4)),
            ("nullable(int32)", DataType::Int32),
            ("low_cardinality(string)", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))),
            (
                "low_cardinality(nullable(string))",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            ),
        ] {
            assert_eq!(ty(sql).to_arrow(), arrow, "{sql}");
        }
    }

    #[test]
    fn composite_layouts() {
        let DataType::List(item) = ty("array(nullable(int32))").to_arrow() else { panic!("list") };
        assert_eq!((item.name().as_str(), item.is_nullable()), ("item", true));
        let DataType::Map(entries, sorted) = ty("map(string, float64)").to_arrow() else { panic!("map") };
        assert!(!sorted && !entries.is_nullable());
        let DataType::Struct(kv) = entries.data_type() else { panic!("entries") };
        assert_eq!((kv[0].name().as_str(), kv[0].is_nullable()), ("key", false));
        assert_eq!((kv[1].name().as_str(), kv[1].data_type()), ("value", &DataType::Float64));
        let DataType::Struct(fields) = ty("tuple(int8, string)").to_arrow() else { panic!("struct") };
        assert_eq!(fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn fields_carry_nullability_and_only_needed_metadata() {
        let f = ty("nullable(string)").to_arrow_field("s");
        assert!(f.is_nullable() && f.metadata().is_empty());
        let f = ty("int64").to_arrow_field("n");
        assert!(!f.is_nullable() && f.metadata().is_empty());
        let f = ty("date32").to_arrow_field("d");
        assert_eq!(f.metadata().get(TYPE_METADATA_KEY).map(String::as_str), Some("date32"));
        let f = ty("nullable(datetime64(2, 'UTC'))").to_arrow_field("t");
        assert!(f.is_nullable());
        assert_eq!(f.metadata().get(TYPE_METADATA_KEY).map(String::as_str), Some("datetime64(2, 'UTC')"));
        let f = ty("uuid").to_arrow_field("u");
        assert_eq!(f.metadata().get(EXTENSION_NAME_KEY).map(String::as_str), Some("arrow.uuid"));
    }

    #[test]
    fn every_type_round_trips_through_an_arrow_field() {
        for sql in [
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float32",
            "float64",
            "decimal(9, 2)",
            "decimal(76, 10)",
            "bool",
            "string",
            "fixed_string(16)",
            "date",
            "date32",
            "datetime",
            "datetime('UTC')",
            "datetime('Europe/Berlin')",
            "datetime64(0)",
            "datetime64(2)",
            "datetime64(3)",
            "datetime64(3, 'UTC')",
            "datetime64(5, 'Asia/Tokyo')",
            "datetime64(9)",
            "uuid",
            "nullable(uuid)",
            "nullable(int32)",
            "nullable(date32)",
            "low_cardinality(string)",
            "low_cardinality(nullable(string))",
            "low_cardinality(date32)",
            "array(int32)",
            "array(nullable(date32))",
            "array(array(uuid))",
            "map(string, nullable(int64))",
            "map(uuid, array(string))",
            "map(low_cardinality(string), date32)",
            "tuple(int8, nullable(string))",
            "tuple(a date32, b map(string, uuid))",
        ] {
            let t = ty(sql);
            let field = t.to_arrow_field("c");
            assert_eq!(SqlType::from_arrow_field(&field).expect(sql), t, "{sql} via {field:?}");
        }
    }

    #[test]
    fn foreign_arrow_types() {
        let from = |dt: DataType| SqlType::from_arrow(&dt).map(|t| t.to_string());
        assert_eq!(from(DataType::LargeUtf8).ok().as_deref(), Some("string"));
        assert_eq!(from(DataType::Timestamp(TimeUnit::Microsecond, None)).ok().as_deref(), Some("datetime64(6)"));
        assert_eq!(from(DataType::Decimal64(18, 3)).ok().as_deref(), Some("decimal(18, 3)"));
        for dt in [
            DataType::Null,
            DataType::Float16,
            DataType::Binary,
            DataType::Date64,
            DataType::Decimal128(10, -2),
            DataType::Time32(TimeUnit::Second),
        ] {
            assert!(matches!(SqlType::from_arrow(&dt), Err(Error::NotImplemented { .. })), "{dt}");
        }
        let lying = Field::new("x", DataType::Int32, false).with_metadata([(TYPE_METADATA_KEY, "string")]);
        assert!(matches!(SqlType::from_arrow_field(&lying), Err(Error::InvalidValue { .. })));
    }
}
