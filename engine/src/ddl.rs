//! From a parsed `CREATE STREAM` (sluice-sql's AST) to the engine's [`StreamDef`], and back to
//! what `DESCRIBE` and `SHOW CREATE` print.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_sql::sqlparser::ast::{BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments};
use sluice_sql::{ColumnDefault, CreateStream, IntervalLiteral, SqlType, StreamMode};

use crate::options::{StorageType, StreamSettings, Ttl};
use crate::stream_def::{ColumnDef, StreamDef, TP_TIME};
use crate::{Error, Result};

/// Key in [`StreamDef::extra`] holding the canonical `CREATE STREAM` text.
pub(crate) const CREATE_SQL: &str = "create_sql";

/// Builds the engine definition; also returns notices for the client (settings without effect
/// on one node).
pub(crate) fn stream_def(cs: &CreateStream) -> Result<(StreamDef, Vec<String>)> {
    let name = object_name(&cs.name)?;
    let s = &cs.settings;
    if !matches!(s.mode, StreamMode::Append | StreamMode::Changelog | StreamMode::VersionedKv | StreamMode::ChangelogKv)
    {
        return Err(Error::NotSupported(format!("stream mode '{}'", s.mode)));
    }
    let mut columns = Vec::with_capacity(cs.columns.len() + 1);
    let mut aliases: Vec<(String, String, Option<String>)> = Vec::new();
    for c in &cs.columns {
        if let Some(ColumnDefault::Alias(e)) = &c.default {
            // Computed at read time from the other columns, never stored.
            aliases.push((c.name.value.clone(), e.to_string(), c.data_type.as_ref().map(|t| t.to_string())));
            continue;
        }
        let ty = match &c.data_type {
            Some(t) => t.clone(),
            None => {
                return Err(Error::InvalidDefinition(format!(
                    "column '{}' needs a type (type inference from DEFAULT is not supported)",
                    c.name.value
                )));
            }
        };
        let field = with_type_metadata(ty.to_arrow_field(c.name.value.clone()), &ty);
        let mut def = ColumnDef { field, default: None, default_sql: None, comment: c.comment.clone() };
        if let Some(ColumnDefault::Default(e)) = &c.default {
            def.default_sql = Some(e.to_string());
            // A constant default is evaluated once; others (now(), expressions over other
            // columns) at every insert.
            if !is_time_dependent(e) {
                def.default = crate::sql_bridge::constant_default(e, def.field.data_type());
            }
        }
        columns.push(def);
    }
    let mut def = StreamDef::new(name, columns);
    def.sort_key = if cs.order_by.is_empty() {
        vec![TP_TIME.to_string()]
    } else {
        cs.order_by.iter().map(sort_column).collect::<Result<Vec<_>>>()?
    };
    def.ttl = cs.ttl.as_ref().map(|t| ttl(&t.expr)).transpose()?;
    def.settings = settings(s)?;
    def.settings.changelog = s.mode == StreamMode::Changelog;
    if s.mode == StreamMode::Changelog && !cs.primary_key.is_empty() {
        return Err(Error::InvalidDefinition(
            "mode 'changelog' streams have no key; use mode 'changelog_kv' for keyed changes".into(),
        ));
    }
    if matches!(s.mode, StreamMode::VersionedKv | StreamMode::ChangelogKv) {
        def.settings.changelog = s.mode == StreamMode::ChangelogKv;
        for e in &cs.primary_key {
            let items: Vec<&Expr> = match e {
                Expr::Tuple(items) => items.iter().collect(),
                Expr::Nested(inner) => vec![inner.as_ref()],
                one => vec![one],
            };
            for item in items {
                match item {
                    Expr::Identifier(id) => def.settings.primary_key.push(id.value.clone()),
                    other => {
                        return Err(Error::NotSupported(format!("PRIMARY KEY '{other}': use column names")));
                    }
                }
            }
        }
        def.settings.version_column = s.version_column.clone();
    }
    if !cs.order_by.is_empty() {
        def.extra.insert("order_by".into(), cs.order_by.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "));
    }
    if let Some(p) = &cs.partition_by {
        def.extra.insert("partition_by".into(), p.to_string());
    }
    if !cs.primary_key.is_empty() {
        def.extra
            .insert("primary_key".into(), cs.primary_key.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "));
    }
    if let Some(c) = &cs.comment {
        def.extra.insert("comment".into(), c.clone());
    }
    for (i, (name, sql, ty)) in aliases.iter().enumerate() {
        if def.column_index(name).is_some() {
            return Err(Error::InvalidDefinition(format!("column '{name}' is defined twice")));
        }
        def.extra.insert(format!("alias.{i:04}.name"), name.clone());
        def.extra.insert(format!("alias.{i:04}.sql"), sql.clone());
        if let Some(t) = ty {
            def.extra.insert(format!("alias.{i:04}.type"), t.clone());
        }
    }
    def.extra.insert(CREATE_SQL.into(), format!("{cs:#}"));
    let notices = s
        .no_op_settings
        .iter()
        .map(|n| format!("setting '{n}' is accepted for compatibility and has no effect on a single node"))
        .collect();
    Ok((def, notices))
}

/// Keeps the exact SQL type in the field metadata (several SQL types share an Arrow type).
fn with_type_metadata(field: Field, ty: &SqlType) -> Field {
    let mut md = field.metadata().clone();
    if !md.contains_key("sluice.type") {
        md.insert("sluice.type", ty.to_string());
    }
    field.with_metadata(md)
}

fn is_time_dependent(e: &Expr) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    ["now", "today", "rand", "uuid", "generate"].iter().any(|f| s.contains(f))
}

/// The engine's settings from the SQL ones.
fn settings(s: &sluice_sql::StreamSettings) -> Result<StreamSettings> {
    let mut out = StreamSettings {
        shards: s.shards,
        storage_type: match s.storage_type {
            sluice_sql::StorageType::Hybrid => StorageType::Hybrid,
            sluice_sql::StorageType::Streaming => StorageType::Streaming,
            sluice_sql::StorageType::InMemory => StorageType::InMemory,
        },
        flush_threshold_count: s.flush_threshold_count,
        flush_threshold_ms: s.flush_threshold_ms,
        flush_threshold_bytes: s.flush_threshold_bytes,
        dead_letter_stream: s.dead_letter_stream.clone(),
        ..StreamSettings::default()
    };
    out.set("logstore_codec", &s.logstore_codec.to_string())?;
    out.set("ack", &s.ack.to_string())?;
    out.set("logstore_retention_bytes", &s.logstore_retention_bytes.to_string())?;
    out.set("logstore_retention_ms", &s.logstore_retention_ms.to_string())?;
    if let Some(e) = &s.event_time_column {
        match e {
            Expr::Identifier(id) => out.event_time_column = Some(id.value.clone()),
            Expr::Value(v) => out.event_time_column = Some(v.to_string().trim_matches('\'').to_string()),
            other => {
                return Err(Error::NotSupported(format!(
                    "event_time_column '{other}': only a column name is supported so far"
                )));
            }
        }
    }
    if let Some(e) = &s.sharding_expr {
        out.sharding_columns = columns_of(e);
        if out.sharding_columns.is_empty() {
            return Err(Error::InvalidDefinition(format!("sharding_expr '{e}' uses no column")));
        }
    }
    Ok(out)
}

/// The column a sort-key expression sorts by: the column itself, or the column inside a
/// monotonic function of it (`to_start_of_hour(_tp_time)` sorts like `_tp_time`).
fn sort_column(e: &Expr) -> Result<String> {
    match columns_of(e).as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Error::NotSupported(format!("ORDER BY expression '{e}': use a column or a function of one column"))),
    }
}

/// `TTL <time column or function of it> + INTERVAL n unit`.
fn ttl(e: &Expr) -> Result<Ttl> {
    let bad = || Error::NotSupported(format!("TTL '{e}': write TTL <time column> + INTERVAL n <unit>"));
    let Expr::BinaryOp { left, op: BinaryOperator::Plus, right } = e else { return Err(bad()) };
    let column = sort_column(left).map_err(|_| bad())?;
    let iv = IntervalLiteral::from_expr(right).map_err(|_| bad())?;
    let ns = iv.as_nanos().ok_or_else(bad)?;
    if ns <= 0 {
        return Err(bad());
    }
    Ok(Ttl { column, interval_ms: (ns / 1_000_000) as u64 })
}

/// Column names used by an expression, in order of appearance, without repeats.
pub(crate) fn columns_of(e: &Expr) -> Vec<String> {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Identifier(id) if !out.contains(&id.value) => out.push(id.value.clone()),
            Expr::CompoundIdentifier(ids) => {
                if let Some(last) = ids.last()
                    && !out.contains(&last.value)
                {
                    out.push(last.value.clone());
                }
            }
            Expr::Function(Function { args: FunctionArguments::List(list), .. }) => {
                for a in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                        walk(x, out);
                    }
                }
            }
            Expr::Nested(x) | Expr::Cast { expr: x, .. } | Expr::UnaryOp { expr: x, .. } => walk(x, out),
            Expr::BinaryOp { left, right, .. } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Tuple(xs) => xs.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

/// The stream name of an object name (quotes removed, checked).
pub(crate) fn object_name(n: &sluice_sql::sqlparser::ast::ObjectName) -> Result<String> {
    let s = n.to_string();
    let s = s.trim_matches('`').trim_matches('"').to_string();
    crate::stream_def::validate_name(&s)?;
    Ok(s)
}

/// `DESCRIBE s`: name, type, default_type, default_expression, comment (ClickHouse's columns).
pub(crate) fn describe(def: &StreamDef) -> Result<RecordBatch> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut default_types = Vec::new();
    let mut defaults = Vec::new();
    let mut comments = Vec::new();
    for c in &def.columns {
        names.push(c.field.name().clone());
        types.push(type_name(&c.field));
        default_types.push(if c.default_sql.is_some() { "DEFAULT" } else { "" }.to_string());
        defaults.push(c.default_sql.clone().unwrap_or_default());
        comments.push(c.comment.clone().unwrap_or_default());
    }
    for a in def.aliases() {
        names.push(a.name.clone());
        types.push(a.type_sql.clone().unwrap_or_default());
        default_types.push("ALIAS".to_string());
        defaults.push(a.sql.clone());
        comments.push(String::new());
    }
    let schema = Arc::new(Schema::new(
        ["name", "type", "default_type", "default_expression", "comment"]
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(types)),
        Arc::new(StringArray::from(default_types)),
        Arc::new(StringArray::from(defaults)),
        Arc::new(StringArray::from(comments)),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// The SQL type name of a stored column.
pub(crate) fn type_name(f: &Field) -> String {
    if let Some(t) = f.metadata().get("sluice.type") {
        return t.clone();
    }
    SqlType::from_arrow_field(f).map(|t| t.to_string()).unwrap_or_else(|_| f.data_type().to_string())
}

/// `SHOW CREATE STREAM s`.
pub(crate) fn show_create(def: &StreamDef) -> String {
    if let Some(sql) = def.extra.get(CREATE_SQL) {
        return sql.clone();
    }
    // Streams created through the typed API: reconstruct.
    let cols: Vec<String> = def
        .columns
        .iter()
        .filter(|c| c.field.name() != TP_TIME)
        .map(|c| format!("  `{}` {}", c.field.name(), type_name(&c.field)))
        .collect();
    let mut s = format!("CREATE STREAM {}\n(\n{}\n)", def.name, cols.join(",\n"));
    s.push_str(&format!("\nORDER BY ({})", def.sort_key.join(", ")));
    let settings: Vec<String> = def.settings.to_pairs().into_iter().map(|(k, v)| format!("{k} = '{v}'")).collect();
    s.push_str(&format!("\nSETTINGS {}", settings.join(", ")));
    s
}
