//! DDL nodes: `CREATE STREAM`, `ALTER STREAM`, `CREATE [MATERIALIZED] VIEW`.

use std::fmt;

use sqlparser::ast::{Expr, Ident, ObjectName};

use super::query::SluiceQuery;
use crate::error::{Error, Result};
use crate::settings::{StreamSetting, StreamSettings};
use crate::types::{SqlType, write_string};

/// Hidden column holding each row's event time (stored).
pub const TP_TIME: &str = "_tp_time";
/// Hidden column holding each row's sequence number in its shard (computed, never stored).
pub const TP_SN: &str = "_tp_sn";

/// `CREATE STREAM [IF NOT EXISTS] name (columns, indexes) [ORDER BY ...] [PARTITION BY ...]
/// [PRIMARY KEY ...] [TTL ...] [COMMENT '...'] [SETTINGS ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    /// Stream name, optionally `db.stream`.
    pub name: ObjectName,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// Declared columns, in order (the hidden `_tp_time` / `_tp_sn` are not listed unless declared).
    pub columns: Vec<ColumnDef>,
    /// Data-skipping index declarations (kept for SHOW CREATE; the engine may ignore them).
    pub indexes: Vec<IndexDef>,
    /// Sorting key, flattened: `ORDER BY (a, b)` is `[a, b]`; empty if absent or `tuple()`.
    pub order_by: Vec<Expr>,
    /// Partitioning key.
    pub partition_by: Option<Expr>,
    /// Primary key, flattened like `order_by`; empty if absent.
    pub primary_key: Vec<Expr>,
    /// Row TTL.
    pub ttl: Option<Ttl>,
    /// Stream comment.
    pub comment: Option<String>,
    /// Validated settings, defaults filled in.
    pub settings: StreamSettings,
}

impl CreateStream {
    /// The column called `name` (case-sensitive, like Proton's column names).
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name.value == name)
    }

    /// Checks what can be checked without a catalog: distinct column names, no reserved names,
    /// a type or default on every column, and settings that refer to columns and keys.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::bind(format!("stream `{}` needs at least one column", self.name), None));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|d| d.name.value == c.name.value) {
                return Err(Error::DuplicateColumn { name: c.name.value.clone() });
            }
            if c.name.value == TP_SN {
                return Err(Error::bind(format!("`{TP_SN}` is a reserved column computed by sluice"), None));
            }
        }
        let s = &self.settings;
        if let Some(version) = &s.version_column {
            if !s.mode.is_keyed() {
                return Err(Error::setting(
                    "version_column",
                    format!("only applies to mode 'versioned_kv' or 'changelog_kv', not '{}'", s.mode),
                ));
            }
            if version != TP_TIME && self.column(version).is_none() {
                return Err(Error::setting("version_column", format!("`{version}` is not a column of the stream")));
            }
        }
        if s.mode.is_keyed() && self.primary_key.is_empty() {
            return Err(Error::setting("mode", format!("mode '{}' needs a PRIMARY KEY", s.mode)));
        }
        Ok(())
    }
}

/// One column of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Column name.
    pub name: Ident,
    /// Declared type; `None` if it is to be inferred from the DEFAULT/ALIAS expression.
    pub data_type: Option<SqlType>,
    /// `DEFAULT expr` or `ALIAS expr`.
    pub default: Option<ColumnDefault>,
    /// `COMMENT '...'`.
    pub comment: Option<String>,
    /// `CODEC(...)`, empty if not given.
    pub codecs: Vec<Codec>,
}

/// How a column's value is computed when not given.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnDefault {
    /// `DEFAULT expr`: stored; computed on INSERT when the column is omitted.
    Default(Expr),
    /// `ALIAS expr`: not stored; computed when read; left out of `SELECT *`.
    Alias(Expr),
}

impl ColumnDefault {
    /// The expression.
    pub fn expr(&self) -> &Expr {
        match self {
            ColumnDefault::Default(e) | ColumnDefault::Alias(e) => e,
        }
    }
}

/// One compression codec of a column, as in `CODEC(Delta(4), ZSTD(3))`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    /// Canonical ClickHouse spelling: `NONE`, `LZ4`, `LZ4HC`, `ZSTD`, `Delta`, `DoubleDelta`,
    /// `Gorilla`, `T64`, `FPC`.
    pub name: &'static str,
    /// Numeric arguments (level, width).
    pub args: Vec<u64>,
}

/// Codec names sluice accepts.
pub const CODEC_NAMES: &[&str] = &["NONE", "LZ4", "LZ4HC", "ZSTD", "Delta", "DoubleDelta", "Gorilla", "T64", "FPC"];

/// `INDEX name expr TYPE type [GRANULARITY n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    /// Index name.
    pub name: Ident,
    /// Indexed expression.
    pub expr: Expr,
    /// Index type, e.g. `minmax` or `bloom_filter(0.01)`.
    pub index_type: Expr,
    /// `GRANULARITY n`.
    pub granularity: Option<u64>,
}

/// `TTL expr [DELETE] [WHERE cond]`: rows whose `expr` is in the past are deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Ttl {
    /// The expiry time of a row, e.g. `_tp_time + INTERVAL 1 DAY`.
    pub expr: Expr,
    /// Only rows matching this condition expire.
    pub where_clause: Option<Expr>,
}

/// `ALTER STREAM name action [, action ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterStream {
    /// Stream name.
    pub name: ObjectName,
    /// The actions, in order.
    pub actions: Vec<AlterAction>,
}

/// One action of [`AlterStream`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AlterAction {
    /// `ADD COLUMN [IF NOT EXISTS] column`.
    AddColumn {
        /// The new column.
        column: ColumnDef,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP COLUMN [IF EXISTS] name`.
    DropColumn {
        /// The column.
        name: Ident,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `MODIFY TTL ttl`.
    ModifyTtl(Ttl),
    /// `REMOVE TTL`.
    RemoveTtl,
    /// `MODIFY SETTING k = v, ...` (only [`StreamSetting::is_alterable`] ones).
    ModifySettings(Vec<StreamSetting>),
}

/// `CREATE [MATERIALIZED] VIEW [IF NOT EXISTS] name [INTO target] AS query`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// View name.
    pub name: ObjectName,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// A materialized view: a streaming query the engine runs in the background.
    pub materialized: bool,
    /// `INTO target`: the stream a materialized view writes to (else it gets its own).
    pub target: Option<ObjectName>,
    /// The defining query.
    pub query: SluiceQuery,
}

fn write_key(f: &mut fmt::Formatter<'_>, keyword: &str, exprs: &[Expr]) -> fmt::Result {
    match exprs {
        [] => Ok(()),
        [one] => write!(f, " {keyword} {one}"),
        many => {
            write!(f, " {keyword} (")?;
            write_list(f, many)?;
            f.write_str(")")
        }
    }
}

pub(crate) fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for CreateStream {
    /// One line; with `{:#}` one column per line (for SHOW CREATE).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pretty = f.alternate();
        let (open, sep, close) = if pretty { ("\n  ", ",\n  ", "\n)") } else { ("", ", ", ")") };
        write!(f, "CREATE STREAM {}{} ({open}", if self.if_not_exists { "IF NOT EXISTS " } else { "" }, self.name)?;
        let items = self.columns.iter().map(|c| c.to_string()).chain(self.indexes.iter().map(|i| i.to_string()));
        for (i, item) in items.enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            f.write_str(&item)?;
        }
        f.write_str(close)?;
        let nl = if pretty { "\n" } else { "" };
        if !self.order_by.is_empty() {
            f.write_str(nl)?;
            write_key(f, "ORDER BY", &self.order_by)?;
        }
        if let Some(p) = &self.partition_by {
            write!(f, "{nl} PARTITION BY {p}")?;
        }
        if !self.primary_key.is_empty() {
            f.write_str(nl)?;
            write_key(f, "PRIMARY KEY", &self.primary_key)?;
        }
        if let Some(ttl) = &self.ttl {
            write!(f, "{nl} TTL {ttl}")?;
        }
        if let Some(c) = &self.comment {
            write!(f, "{nl} COMMENT ")?;
            write_string(f, c)?;
        }
        if !self.settings.explicit.is_empty() {
            write!(f, "{nl} SETTINGS {}", self.settings)?;
        }
        Ok(())
    }
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(t) = &self.data_type {
            write!(f, " {t}")?;
        }
        match &self.default {
            Some(ColumnDefault::Default(e)) => write!(f, " DEFAULT {e}")?,
            Some(ColumnDefault::Alias(e)) => write!(f, " ALIAS {e}")?,
            None => {}
        }
        if let Some(c) = &self.comment {
            f.write_str(" COMMENT ")?;
            write_string(f, c)?;
        }
        if !self.codecs.is_empty() {
            f.write_str(" CODEC(")?;
            write_list(f, &self.codecs)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if !self.args.is_empty() {
            f.write_str("(")?;
            write_list(f, &self.args)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for IndexDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INDEX {} {} TYPE {}", self.name, self.expr, self.index_type)?;
        if let Some(g) = self.granularity {
            write!(f, " GRANULARITY {g}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if let Some(w) = &self.where_clause {
            write!(f, " WHERE {w}")?;
        }
        Ok(())
    }
}

impl fmt::Display for AlterStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ALTER STREAM {} ", self.name)?;
        write_list(f, &self.actions)
    }
}

impl fmt::Display for AlterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlterAction::AddColumn { column, if_not_exists } => {
                write!(f, "ADD COLUMN {}{column}", if *if_not_exists { "IF NOT EXISTS " } else { "" })
            }
            AlterAction::DropColumn { name, if_exists } => {
                write!(f, "DROP COLUMN {}{name}", if *if_exists { "IF EXISTS " } else { "" })
            }
            AlterAction::ModifyTtl(ttl) => write!(f, "MODIFY TTL {ttl}"),
            AlterAction::RemoveTtl => f.write_str("REMOVE TTL"),
            AlterAction::ModifySettings(settings) => {
                f.write_str("MODIFY SETTING ")?;
                write_list(f, settings)
            }
        }
    }
}

impl fmt::Display for CreateView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CREATE {}VIEW {}{}",
            if self.materialized { "MATERIALIZED " } else { "" },
            if self.if_not_exists { "IF NOT EXISTS " } else { "" },
            self.name
        )?;
        if let Some(t) = &self.target {
            write!(f, " INTO {t}")?;
        }
        write!(f, " AS {}", self.query)
    }
}
