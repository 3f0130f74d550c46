//! `ALTER STREAM`: add and drop columns, change the TTL and the settings that may change.
//!
//! The stream's `CREATE STREAM` statement (kept in the catalog, or rebuilt for streams made
//! through the typed API) is edited and turned into a definition again, so an altered stream
//! is checked exactly like a new one and `SHOW CREATE` shows the result. Nothing is rewritten:
//!
//! * rows stored before `ADD COLUMN` read the column's DEFAULT (or NULL) — scans, flushes and
//!   log replay conform every batch to the current definition by column name;
//! * parts written before a `DROP COLUMN` keep the dropped values until they are merged with
//!   parts of the same columns (merges only combine parts of equal columns); scans never read
//!   them. A dropped name cannot be added again (its old values would come back).
//!
//! Log settings (`ack`, `logstore_codec`, `logstore_retention_*`) are stored at once and used
//! by the log when the stream is next opened; the flush thresholds apply at once.

use std::sync::Arc;

use sluice_sql::{AlterAction, AlterStream, CreateStream, Statement};

use crate::database::Database;
use crate::ddl::{self, CREATE_SQL};
use crate::stream_def::{StreamDef, TP_TIME};
use crate::{Error, Result, catalog};

/// Key in [`StreamDef::extra`]: names of dropped columns, comma separated.
pub(crate) const DROPPED_COLUMNS: &str = "dropped_columns";

/// Settings of the stream's log, read when the log opens.
const LOG_SETTINGS: &[&str] = &["ack", "logstore_codec", "logstore_retention_bytes", "logstore_retention_ms"];

impl Database {
    /// Runs `ALTER STREAM`; returns notices for the client.
    pub(crate) fn alter_stream(&self, alter: &AlterStream) -> Result<Vec<String>> {
        let (notices, dead_letter) = self.alter_locked(alter)?;
        // A new dead-letter stream is created like at CREATE (outside the DDL lock: it is a
        // CREATE STREAM of its own).
        if let Some(dlq) = dead_letter {
            self.ensure_dead_letter_stream(&dlq)?;
        }
        Ok(notices)
    }

    fn alter_locked(&self, alter: &AlterStream) -> Result<(Vec<String>, Option<String>)> {
        self.check_open()?;
        let name = ddl::object_name(&alter.name)?;
        let _ddl = self.inner.ddl.lock();
        let stream = self.stream(&name)?;
        let old = stream.def();
        let mut cs = create_statement(&old)?;
        let mut dropped = dropped_columns(&old);
        let mut notices = Vec::new();
        for action in &alter.actions {
            match action {
                AlterAction::AddColumn { column, if_not_exists } => {
                    let col = column.name.value.as_str();
                    if cs.column(col).is_some() || col == TP_TIME {
                        if *if_not_exists {
                            continue;
                        }
                        return Err(Error::InvalidDefinition(format!("column '{col}' already exists in '{name}'")));
                    }
                    if dropped.iter().any(|d| d == col) {
                        return Err(Error::NotSupported(format!(
                            "column '{col}' was dropped from '{name}' and its old values are still stored; \
                             add the new column under another name"
                        )));
                    }
                    cs.columns.push(column.clone());
                }
                AlterAction::DropColumn { name: col, if_exists } => {
                    let col = col.value.as_str();
                    if col == TP_TIME {
                        return Err(Error::InvalidDefinition(format!(
                            "cannot drop column '{col}' of '{name}': it is the event time"
                        )));
                    }
                    let Some(pos) = cs.columns.iter().position(|c| c.name.value == col) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(Error::ColumnNotFound { stream: name.clone(), column: col.to_string() });
                    };
                    check_droppable(self, &old, &cs, &name, col)?;
                    cs.columns.remove(pos);
                    if old.column_index(col).is_some() {
                        dropped.push(col.to_string());
                    }
                }
                AlterAction::ModifyTtl(ttl) => cs.ttl = Some(ttl.clone()),
                AlterAction::RemoveTtl => cs.ttl = None,
                AlterAction::ModifySettings(settings) => {
                    for s in settings {
                        if LOG_SETTINGS.contains(&s.name()) {
                            notices.push(format!(
                                "setting '{}' is stored and takes effect when the stream's log is next opened \
                                 (at the next start)",
                                s.name()
                            ));
                        }
                        cs.settings.apply(s.clone());
                    }
                }
                other => return Err(Error::NotSupported(format!("ALTER STREAM ... {other}"))),
            }
        }
        let (mut def, more) = ddl::stream_def(&cs)?;
        notices.extend(more);
        if !dropped.is_empty() {
            def.extra.insert(DROPPED_COLUMNS.into(), dropped.join(","));
        }
        let def = Arc::new(def.normalize()?);
        check_unchanged(&old, &def)?;
        self.check_dead_letter_setting(&def)?;
        let dead_letter =
            def.settings.dead_letter_stream.clone().filter(|d| old.settings.dead_letter_stream.as_ref() != Some(d));
        let all: Vec<Arc<StreamDef>> = self
            .inner
            .streams
            .read()
            .values()
            .map(|s| if s.def().name == name { def.clone() } else { s.def() })
            .collect();
        catalog::store(self.fs().as_ref(), &self.inner.dir.join("catalog"), &all)?;
        stream.set_def(def);
        stream.progress.notify();
        Ok((notices, dead_letter))
    }
}

/// The statement the stream was created with (rebuilt from the definition for streams created
/// through the typed API).
fn create_statement(def: &StreamDef) -> Result<CreateStream> {
    let sql = def.extra.get(CREATE_SQL).cloned().unwrap_or_else(|| ddl::show_create(def));
    let bad = |why: String| Error::NotSupported(format!("ALTER STREAM of '{}': its definition {why}", def.name));
    match sluice_sql::parse_statement(&sql) {
        Ok(Statement::CreateStream(cs)) => Ok(*cs),
        Ok(other) => Err(bad(format!("is not a CREATE STREAM ({other})"))),
        Err(e) => Err(bad(format!("does not parse again ({e})"))),
    }
}

fn dropped_columns(def: &StreamDef) -> Vec<String> {
    def.extra
        .get(DROPPED_COLUMNS)
        .map(|s| s.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A column may be dropped unless the stream's keys, time, TTL, defaults or aliases use it,
/// or a materialized view reads or writes the stream.
fn check_droppable(db: &Database, def: &StreamDef, cs: &CreateStream, stream: &str, col: &str) -> Result<()> {
    let refuse = |why: &str| Err(Error::InvalidDefinition(format!("cannot drop column '{col}' of '{stream}': {why}")));
    if col == TP_TIME {
        return refuse("it is the event time");
    }
    if def.sort_key.iter().any(|k| k == col) {
        return refuse("it is in the sort key (ORDER BY)");
    }
    let s = &def.settings;
    if s.primary_key.iter().any(|k| k == col) || s.version_column.as_deref() == Some(col) {
        return refuse("it is in the primary key or the version column");
    }
    if s.sharding_columns.iter().any(|k| k == col) || s.event_time_column.as_deref() == Some(col) {
        return refuse("sharding_expr or event_time_column uses it");
    }
    if def.ttl.as_ref().is_some_and(|t| t.column == col) {
        return refuse("the TTL uses it");
    }
    if let Some(p) = &cs.partition_by
        && ddl::columns_of(p).iter().any(|c| c == col)
    {
        return refuse("PARTITION BY uses it");
    }
    for c in &cs.columns {
        if c.name.value != col
            && let Some(sluice_sql::ColumnDefault::Default(e) | sluice_sql::ColumnDefault::Alias(e)) = &c.default
            && ddl::columns_of(e).iter().any(|u| u == col)
        {
            return refuse(&format!("column '{}' is computed from it", c.name.value));
        }
    }
    let views = db.views_using(stream);
    if !views.is_empty() {
        return Err(Error::DependentObjects(format!(
            "cannot drop column '{col}' of '{stream}': materialized view(s) {} use the stream; drop them first",
            views.join(", ")
        )));
    }
    Ok(())
}

/// What ALTER cannot change (the parser refuses most; this catches the rest).
fn check_unchanged(old: &StreamDef, new: &StreamDef) -> Result<()> {
    let (a, b) = (&old.settings, &new.settings);
    let same = a.shards == b.shards
        && a.storage_type == b.storage_type
        && a.changelog == b.changelog
        && a.primary_key == b.primary_key
        && a.version_column == b.version_column
        && a.sharding_columns == b.sharding_columns
        && a.event_time_column == b.event_time_column
        && old.sort_key == new.sort_key;
    if !same {
        return Err(Error::NotSupported(
            "ALTER STREAM cannot change shards, storage, mode, keys, sharding or the event time".into(),
        ));
    }
    Ok(())
}
