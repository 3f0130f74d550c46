//! A stream's definition: columns (with the hidden `_tp_time`), sort key, TTL and settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::options::{StreamSettings, Ttl};
use crate::{Error, Result};

/// Name of the stored event-time column every stream has.
pub const TP_TIME: &str = "_tp_time";
/// `changelog_kv` streams: +1 for an upsert, -1 for a delete.
pub const TP_DELTA: &str = "_tp_delta";
/// Name of the computed sequence-number column (the shard's WAL sequence number of the row).
pub const TP_SN: &str = "_tp_sn";

/// The type of `_tp_time`: `datetime64(3, 'UTC')`.
pub fn tp_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The `_tp_sn` field.
pub fn tp_sn_field() -> Field {
    Field::new(TP_SN, DataType::Int64, false)
}

/// One column of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Name, type and nullability.
    pub field: Field,
    /// Constant default (a one-element array of the column's type) used when an append leaves
    /// the column out.
    pub default: Option<ArrayRef>,
    /// The SQL text of a `DEFAULT` expression (evaluated by the SQL layer), for display.
    pub default_sql: Option<String>,
    /// Comment.
    pub comment: Option<String>,
}

impl ColumnDef {
    /// A column without default or comment.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Self { field: Field::new(name, data_type, nullable), default: None, default_sql: None, comment: None }
    }

    /// With a constant default.
    pub fn with_default(mut self, value: ArrayRef) -> Self {
        self.default = Some(value);
        self
    }
}

/// Everything that defines a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDef {
    /// Stream name.
    pub name: String,
    /// Columns in order; `_tp_time` is added at the end when not given.
    pub columns: Vec<ColumnDef>,
    /// Columns parts are sorted by (default `_tp_time`).
    pub sort_key: Vec<String>,
    /// Row expiry.
    pub ttl: Option<Ttl>,
    /// Settings honoured by the engine.
    pub settings: StreamSettings,
    /// Definition facts the engine only stores (SQL text of ORDER BY, PARTITION BY, comments,
    /// settings that have no effect on one node, ...).
    pub extra: BTreeMap<String, String>,
}

impl StreamDef {
    /// A stream with the given columns and default settings.
    pub fn new(name: impl Into<String>, columns: Vec<ColumnDef>) -> Self {
        Self {
            name: name.into(),
            columns,
            sort_key: vec![TP_TIME.to_string()],
            ttl: None,
            settings: StreamSettings::default(),
            extra: BTreeMap::new(),
        }
    }

    /// A stream from an Arrow schema (every field a column).
    pub fn from_schema(name: impl Into<String>, schema: &Schema) -> Self {
        let cols = schema.fields().iter().map(|f| ColumnDef {
            field: f.as_ref().clone(),
            default: None,
            default_sql: None,
            comment: None,
        });
        Self::new(name, cols.collect())
    }

    /// Sets the sort key.
    pub fn sort_key(mut self, cols: &[&str]) -> Self {
        self.sort_key = cols.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Sets the settings.
    pub fn settings(mut self, settings: StreamSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets the TTL.
    pub fn ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Checks the definition and adds `_tp_time` if missing. Called by `create_stream`.
    pub(crate) fn normalize(mut self) -> Result<Self> {
        validate_name(&self.name)?;
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            let name = c.field.name();
            if name.is_empty() {
                return Err(Error::InvalidDefinition("a column has an empty name".into()));
            }
            if !seen.insert(name.clone()) {
                return Err(Error::InvalidDefinition(format!("column '{name}' is defined twice")));
            }
            if name == TP_SN {
                return Err(Error::InvalidDefinition(format!("'{TP_SN}' is computed and cannot be defined")));
            }
            if let Some(d) = &c.default
                && (d.len() != 1 || d.data_type() != c.field.data_type())
            {
                return Err(Error::InvalidDefinition(format!(
                    "default of column '{name}' must be one value of type {}",
                    c.field.data_type()
                )));
            }
        }
        match self.columns.iter().find(|c| c.field.name() == TP_TIME) {
            Some(c) if !matches!(c.field.data_type(), DataType::Timestamp(..)) => {
                return Err(Error::InvalidDefinition(format!(
                    "'{TP_TIME}' must be a datetime64 column, not {}",
                    c.field.data_type()
                )));
            }
            Some(_) => {}
            None => self.columns.push(ColumnDef::new(TP_TIME, tp_time_type(), false)),
        }
        for k in &self.sort_key {
            if !seen.contains(k) && k != TP_TIME {
                return Err(Error::InvalidDefinition(format!("sort key column '{k}' is not a column")));
            }
        }
        if let Some(ttl) = &self.ttl {
            match self.columns.iter().find(|c| c.field.name() == &ttl.column) {
                Some(c) if matches!(c.field.data_type(), DataType::Timestamp(..) | DataType::Date32) => {}
                _ => {
                    return Err(Error::InvalidDefinition(format!(
                        "TTL column '{}' must be a time column of the stream",
                        ttl.column
                    )));
                }
            }
        }
        if let Some(c) = &self.settings.event_time_column {
            match self.columns.iter().find(|col| col.field.name() == c) {
                Some(col)
                    if matches!(
                        col.field.data_type(),
                        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                    ) => {}
                _ => {
                    return Err(Error::InvalidDefinition(format!(
                        "event_time_column '{c}' must be a date or datetime column of the stream"
                    )));
                }
            }
        }
        for k in &self.settings.sharding_columns {
            if !seen.contains(k) {
                return Err(Error::InvalidDefinition(format!("sharding column '{k}' is not a column")));
            }
        }
        if self.settings.changelog {
            match self.columns.iter().find(|c| c.field.name() == TP_DELTA) {
                Some(c) if c.field.data_type() != &DataType::Int8 => {
                    return Err(Error::InvalidDefinition(format!("'{TP_DELTA}' must be an int8 column")));
                }
                Some(_) => {}
                None => {
                    let mut c = ColumnDef::new(TP_DELTA, DataType::Int8, false);
                    c.default = Some(Arc::new(arrow::array::Int8Array::from(vec![1i8])));
                    self.columns.push(c);
                    seen.insert(TP_DELTA.to_string());
                }
            }
        }
        for k in &self.settings.primary_key {
            if !seen.contains(k) {
                return Err(Error::InvalidDefinition(format!("primary key column '{k}' is not a column")));
            }
        }
        if let Some(v) = &self.settings.version_column
            && !seen.contains(v)
            && v != TP_TIME
        {
            return Err(Error::InvalidDefinition(format!("version_column '{v}' is not a column")));
        }
        // A key's rows share a shard, so arrival order decides ties.
        if self.settings.is_versioned_kv() && self.settings.sharding_columns.is_empty() && self.settings.shards > 1 {
            self.settings.sharding_columns = self.settings.primary_key.clone();
        }
        Ok(self)
    }

    /// The stored schema: the columns, `_tp_time` included.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns.iter().map(|c| c.field.clone()).collect::<Vec<_>>()))
    }

    /// The stored schema plus `_tp_sn` at the end (what scans return by default).
    pub fn schema_with_sn(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.columns.iter().map(|c| c.field.clone()).collect();
        fields.push(tp_sn_field());
        Arc::new(Schema::new(fields))
    }

    /// Index of a column of the stored schema.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.field.name() == name)
    }
}

/// A column computed at read time (`name type ALIAS expr`), never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasColumn {
    /// Column name.
    pub name: String,
    /// The SQL expression over the stored columns.
    pub sql: String,
    /// The declared SQL type, if any (otherwise the expression's type).
    pub type_sql: Option<String>,
}

impl StreamDef {
    /// The ALIAS columns, in definition order (kept in [`StreamDef::extra`]).
    pub fn aliases(&self) -> Vec<AliasColumn> {
        let mut out = Vec::new();
        for i in 0.. {
            let Some(name) = self.extra.get(&format!("alias.{i:04}.name")) else { break };
            out.push(AliasColumn {
                name: name.clone(),
                sql: self.extra.get(&format!("alias.{i:04}.sql")).cloned().unwrap_or_default(),
                type_sql: self.extra.get(&format!("alias.{i:04}.type")).cloned(),
            });
        }
        out
    }
}

/// Stream names: 1 to 255 bytes of letters, digits, `_`, `-` and `.`, not starting with `.`
/// (they become directory names).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDefinition(format!(
            "stream name '{name}' must be 1-255 letters, digits, '_', '-' or '.', not starting with '.'"
        )))
    }
}

/// The `_tp_sn` column for `rows` rows starting at `first`.
pub(crate) fn sn_column(first: u64, rows: usize) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| first as i64 + i)))
}
