//! Query nodes: a sqlparser [`Query`](sqlparser::ast::Query) plus Proton's streaming clauses, and INSERT.

use std::fmt;

use sqlparser::ast::{Expr, Ident, ObjectName, Query};

use super::ddl::write_list;
use crate::interval::IntervalLiteral;
use crate::settings::{SettingList, SettingValue};

/// A SELECT (or set operation, or VALUES) with sluice's extras.
///
/// `query` is sqlparser's AST for everything standard (WITH, joins, subqueries, UNION ALL,
/// ORDER BY, LIMIT, window functions, `table(s)`, `tumble(s, 5s)` in FROM). The clauses sqlparser
/// does not know are lifted out of the outermost query:
///
/// ```text
/// SELECT ... FROM ... [WHERE ...] [PARTITION BY ...] [GROUP BY ...] [HAVING ...]
///        [EMIT ...] [ORDER BY ...] [LIMIT ...] [EMIT ...] [SETTINGS ...]
/// ```
///
/// `PARTITION BY` is accepted after WHERE (Proton's place) or after GROUP BY/HAVING; `EMIT` before
/// ORDER BY/LIMIT (sluice's documented order) or after LIMIT (Proton's); at most one of each.
/// `Display` prints Proton's order with PARTITION BY after HAVING. The outermost
/// `SETTINGS` are moved into [`SluiceQuery::settings`] (`query.settings` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct SluiceQuery {
    /// The standard part.
    pub query: Box<Query>,
    /// `PARTITION BY a, b`: run the query once per substream of equal keys.
    pub partition_by: Vec<Expr>,
    /// The EMIT policy, if written.
    pub emit: Option<Emit>,
    /// `SETTINGS k = v, ...` of the outermost query (`seek_to`, `query_mode`, ...).
    pub settings: SettingList,
}

impl SluiceQuery {
    /// A query without extras.
    pub fn new(query: Box<Query>) -> Self {
        SluiceQuery { query, partition_by: Vec::new(), emit: None, settings: SettingList::default() }
    }

    /// The value of query setting `name`, if given.
    pub fn setting(&self, name: &str) -> Option<&SettingValue> {
        self.settings.get(name)
    }
}

impl fmt::Display for SluiceQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = (*self.query).clone();
        let order_by = head.order_by.take();
        let limit = head.limit_clause.take();
        let fetch = head.fetch.take();
        head.settings = None;
        write!(f, "{head}")?;
        if !self.partition_by.is_empty() {
            f.write_str(" PARTITION BY ")?;
            write_list(f, &self.partition_by)?;
        }
        if let Some(order_by) = order_by {
            write!(f, " {order_by}")?;
        }
        if let Some(limit) = limit {
            // sqlparser's LimitClause prints its own leading space.
            write!(f, "{limit}")?;
        }
        if let Some(fetch) = fetch {
            write!(f, " {fetch}")?;
        }
        if let Some(emit) = &self.emit {
            write!(f, " {emit}")?;
        }
        if !self.settings.is_empty() {
            write!(f, " SETTINGS {}", self.settings)?;
        }
        Ok(())
    }
}

/// Whether a streaming query emits rows or a changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EmitMode {
    /// `EMIT STREAM` (the default): emitted rows are appended results.
    #[default]
    Stream,
    /// `EMIT CHANGELOG`: emitted rows carry a `_tp_delta` of +1 / -1.
    Changelog,
}

/// An EMIT clause:
///
/// ```text
/// EMIT [STREAM | CHANGELOG]
///      [AFTER WATERMARK [WITH DELAY i]] [PERIODIC i [REPEAT]] [ON UPDATE]
///      { [AND] TIMEOUT i | [AND] LAST i [ON PROCTIME] | [AND] PERIODIC i | [AND] DELAY i } ...
/// ```
///
/// `AFTER WATERMARK AND DELAY i` (older Proton) equals `AFTER WATERMARK WITH DELAY i`.
/// Each part appears at most once; intervals are positive constants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Emit {
    /// `STREAM` or `CHANGELOG`.
    pub mode: EmitMode,
    /// `AFTER WATERMARK`: emit a window when the watermark passes its end.
    pub after_watermark: bool,
    /// `WITH DELAY i`: the watermark trails the greatest event time by `i`.
    pub delay: Option<IntervalLiteral>,
    /// `PERIODIC i`: emit every `i` of processing time.
    pub periodic: Option<IntervalLiteral>,
    /// `REPEAT` after `PERIODIC`: emit even if nothing changed.
    pub repeat: bool,
    /// `ON UPDATE`: emit whenever a result changes.
    pub on_update: bool,
    /// `TIMEOUT i`: emit a window anyway after `i` without new events.
    pub timeout: Option<IntervalLiteral>,
    /// `LAST i`: only the last `i` of data.
    pub last: Option<IntervalLiteral>,
    /// `ON PROCTIME` after `LAST`: `last` counts processing time, not event time.
    pub on_proctime: bool,
}

impl fmt::Display for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.mode {
            EmitMode::Stream => "EMIT STREAM",
            EmitMode::Changelog => "EMIT CHANGELOG",
        })?;
        let mut parts: Vec<String> = Vec::new();
        if self.after_watermark {
            parts.push(match self.delay {
                Some(d) => format!("AFTER WATERMARK WITH DELAY {d}"),
                None => "AFTER WATERMARK".to_string(),
            });
        }
        if let Some(p) = self.periodic {
            parts.push(format!("PERIODIC {p}{}", if self.repeat { " REPEAT" } else { "" }));
        }
        if self.on_update {
            parts.push("ON UPDATE".to_string());
        }
        if let Some(t) = self.timeout {
            parts.push(format!("TIMEOUT {t}"));
        }
        if let Some(l) = self.last {
            parts.push(format!("LAST {l}{}", if self.on_proctime { " ON PROCTIME" } else { "" }));
        }
        if !parts.is_empty() {
            write!(f, " {}", parts.join(" AND "))?;
        }
        Ok(())
    }
}

/// `INSERT INTO stream [(columns)] [SETTINGS ...] VALUES (...), ... | query`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// Target stream.
    pub stream: ObjectName,
    /// Listed columns; empty means all non-ALIAS columns in order.
    pub columns: Vec<Ident>,
    /// The rows.
    pub source: InsertSource,
    /// `SETTINGS k = v` between the column list and the rows.
    pub settings: SettingList,
}

/// Where the rows of an [`Insert`] come from.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertSource {
    /// `VALUES (..), (..)`: one expression list per row.
    Values(Vec<Vec<Expr>>),
    /// `SELECT ...`.
    Query(Box<SluiceQuery>),
}

impl fmt::Display for Insert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {}", self.stream)?;
        if !self.columns.is_empty() {
            f.write_str(" (")?;
            write_list(f, &self.columns)?;
            f.write_str(")")?;
        }
        if !self.settings.is_empty() {
            write!(f, " SETTINGS {}", self.settings)?;
        }
        match &self.source {
            InsertSource::Values(rows) => {
                f.write_str(" VALUES ")?;
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str("(")?;
                    write_list(f, row)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            InsertSource::Query(q) => write!(f, " {q}"),
        }
    }
}
