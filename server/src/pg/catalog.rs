//! What Postgres clients ask a server that is not sluice SQL: `SET`/`SHOW` of session
//! settings, transaction statements (accepted as no-ops: every sluice statement commits on
//! its own), `SELECT version()` and friends; queries over `pg_catalog`/`information_schema`
//! are sent to [`pg_catalog`](super::pg_catalog), which runs them over tables built from the
//! real catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sluice::arrow::array::{ArrayRef, RecordBatch, StringArray};
use sluice_sql::sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr, Value};
use sluice_sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_sql::sqlparser::parser::Parser;

use crate::pg::encode::text_schema;

/// The Postgres version sluice reports (clients gate features on it).
pub(crate) const PG_VERSION: &str = "16.0";

/// A statement answered by the server itself.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A command tag only (`BEGIN`, `SET`, ...).
    Command(String),
    /// `SET name = value`: applied when executed, not when described.
    Set { name: String, value: String },
    /// Rows of text.
    Rows(RecordBatch),
    /// A query over `pg_catalog` / `information_schema`, run over the in-memory catalog
    /// tables (see [`pg_catalog`](super::pg_catalog)); if sluice cannot run it, no rows with
    /// the columns `names`.
    Catalog { sql: String, names: Vec<String> },
}

/// Per-connection session state.
#[derive(Debug)]
pub(crate) struct Session {
    pub user: String,
    pub database: String,
    pub pid: Mutex<i32>,
    settings: Mutex<BTreeMap<String, String>>,
}

fn defaults() -> BTreeMap<String, String> {
    [
        ("server_version", PG_VERSION),
        ("server_version_num", "160000"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("intervalstyle", "postgres"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("transaction_isolation", "read committed"),
        ("default_transaction_isolation", "read committed"),
        ("transaction_read_only", "off"),
        ("default_transaction_read_only", "off"),
        ("search_path", "public"),
        ("application_name", ""),
        ("extra_float_digits", "1"),
        ("max_identifier_length", "63"),
        ("is_superuser", "on"),
        ("lc_collate", "C"),
        ("lc_ctype", "C"),
        ("statement_timeout", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Session {
    /// A session for `user` on `database` with startup parameters applied.
    pub fn new(user: String, database: String, params: &BTreeMap<String, String>) -> Self {
        let mut settings = defaults();
        for (k, v) in params {
            if !matches!(k.as_str(), "user" | "database" | "options" | "replication") {
                settings.insert(k.to_ascii_lowercase(), v.clone());
            }
        }
        Session { user, database, pid: Mutex::new(0), settings: Mutex::new(settings) }
    }

    /// The ParameterStatus values sent at login.
    pub fn startup_parameters(&self) -> Vec<(String, String)> {
        let s = self.settings.lock();
        let names = [
            ("server_version", "server_version"),
            ("server_encoding", "server_encoding"),
            ("client_encoding", "client_encoding"),
            ("DateStyle", "datestyle"),
            ("TimeZone", "timezone"),
            ("IntervalStyle", "intervalstyle"),
            ("standard_conforming_strings", "standard_conforming_strings"),
            ("integer_datetimes", "integer_datetimes"),
            ("is_superuser", "is_superuser"),
            ("default_transaction_read_only", "default_transaction_read_only"),
            ("in_hot_standby", ""),
            ("application_name", "application_name"),
        ];
        let mut out: Vec<(String, String)> = names
            .iter()
            .map(|(wire, key)| (wire.to_string(), s.get(*key).cloned().unwrap_or_else(|| "off".into())))
            .collect();
        out.push(("session_authorization".into(), self.user.clone()));
        out
    }

    /// Applies `SET name = value`.
    pub fn set(&self, name: &str, value: &str) {
        self.settings.lock().insert(name.to_ascii_lowercase(), value.to_string());
    }

    /// A copy for a catalog query on another thread.
    pub fn clone_for_catalog(&self) -> Self {
        Session {
            user: self.user.clone(),
            database: self.database.clone(),
            pid: Mutex::new(*self.pid.lock()),
            settings: Mutex::new(self.settings.lock().clone()),
        }
    }

    /// Every setting, by name (`pg_settings`).
    pub fn settings(&self) -> Vec<(String, String)> {
        self.settings.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn show(&self, name: &str) -> Option<String> {
        let n = name.to_ascii_lowercase();
        let n = match n.as_str() {
            "transaction isolation level" => "transaction_isolation",
            "time zone" => "timezone",
            other => other,
        };
        self.settings.lock().get(n).cloned()
    }
}

fn one_row(names: &[String], values: Vec<Option<String>>) -> RecordBatch {
    let schema = text_schema(names);
    let cols: Vec<ArrayRef> = values.into_iter().map(|v| Arc::new(StringArray::from(vec![v])) as ArrayRef).collect();
    RecordBatch::try_new(schema, cols).expect("one text column per name")
}

fn normalize(sql: &str) -> String {
    let s = sql.trim().trim_end_matches(';').trim();
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).unwrap_or(v);
    let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
    v.to_string()
}

/// Answers `sql` if it is one of the statements the server handles itself; `None` sends it to
/// the engine.
pub(crate) fn intercept(sql: &str, session: &Session) -> Option<Answer> {
    let n = normalize(sql);
    if n.contains(';') {
        return None;
    }
    let word = n.split(' ').next().unwrap_or_default();
    match word {
        "begin" | "start" => return Some(Answer::Command("BEGIN".into())),
        "commit" | "end" => return Some(Answer::Command("COMMIT".into())),
        "rollback" | "abort" => return Some(Answer::Command("ROLLBACK".into())),
        "discard" => return Some(Answer::Command(n.to_ascii_uppercase())),
        "deallocate" => return Some(Answer::Command("DEALLOCATE".into())),
        "listen" | "unlisten" => return Some(Answer::Command(word.to_ascii_uppercase())),
        "reset" => return Some(Answer::Command("RESET".into())),
        "set" => {
            let rest = n.strip_prefix("set ").unwrap_or_default();
            let rest = rest.strip_prefix("session ").or_else(|| rest.strip_prefix("local ")).unwrap_or(rest);
            if let Some(tz) = rest.strip_prefix("time zone ") {
                return Some(Answer::Set { name: "timezone".into(), value: unquote(tz) });
            }
            if rest.starts_with("transaction") || rest.starts_with("characteristics") {
                return Some(Answer::Command("SET".into()));
            }
            let (name, value) = match rest.split_once(" to ").or_else(|| rest.split_once('=')) {
                Some((a, b)) => (a.trim(), b.trim()),
                None => return None,
            };
            // Keep the original spelling of the value.
            let original = sql.trim().trim_end_matches(';');
            let value = original
                .rfind(value)
                .map(|_| value.to_string())
                .or_else(|| original.split_once('=').map(|(_, v)| v.trim().to_string()))
                .unwrap_or_else(|| value.to_string());
            return Some(Answer::Set { name: name.to_string(), value: unquote(&value) });
        }
        "show" => {
            let name = n.strip_prefix("show ").unwrap_or_default().trim().to_string();
            if matches!(name.as_str(), "streams" | "views" | "materialized views")
                || name.starts_with("streams ")
                || name.starts_with("create ")
                || name.starts_with("views ")
            {
                return None;
            }
            let value = session.show(&name)?;
            let col = name.replace(' ', "_");
            return Some(Answer::Rows(one_row(&[col], vec![Some(value)])));
        }
        "select" | "with" => {}
        _ => return None,
    }
    select_answer(sql, &n, session)
}

fn select_answer(sql: &str, normalized: &str, session: &Session) -> Option<Answer> {
    let catalog = super::pg_catalog::reads_catalog(normalized);
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let [sluice_sql::sqlparser::ast::Statement::Query(q)] = stmts.as_slice() else { return None };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return catalog.then(|| Answer::Catalog { sql: sql.to_string(), names: vec!["?column?".to_string()] });
    };
    let mut names = vec![];
    let mut values = vec![];
    for item in &select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            _ => {
                names.push("?column?".to_string());
                values.push(None);
                continue;
            }
        };
        let (name, value) = match known_function(expr, session) {
            Some(v) => v,
            None if catalog => (expr_name(expr), None),
            None => return None,
        };
        names.push(alias.unwrap_or(name));
        values.push(value);
    }
    if catalog && !select.from.is_empty() {
        return Some(Answer::Catalog { sql: sql.to_string(), names });
    }
    if !select.from.is_empty() {
        return None;
    }
    Some(Answer::Rows(one_row(&names, values.into_iter().map(|v| v.flatten()).collect())))
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Function(f) => f.name.0.last().map(|p| p.to_string()).unwrap_or_default(),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_name(expr),
        _ => "?column?".into(),
    }
}

/// `(column name, value)` of a function call the server answers (`Some(None)` = NULL).
fn known_function(e: &Expr, session: &Session) -> Option<(String, Option<Option<String>>)> {
    let (name, args) = match e {
        Expr::Function(f) => {
            let args: Vec<String> = match &f.args {
                FunctionArguments::List(l) => l
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
                            Value::SingleQuotedString(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        },
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            (f.name.0.last()?.to_string().to_ascii_lowercase(), args)
        }
        Expr::Identifier(i) => (i.value.to_ascii_lowercase(), vec![]),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => return known_function(expr, session),
        _ => return None,
    };
    let value = match name.as_str() {
        "version" => format!("PostgreSQL {PG_VERSION} (sluice {})", env!("CARGO_PKG_VERSION")),
        "current_database" => session.database.clone(),
        "current_schema" => "public".into(),
        "current_user" | "session_user" | "user" | "current_role" => session.user.clone(),
        "pg_backend_pid" => session.pid.lock().to_string(),
        "current_setting" => return Some((name, Some(session.show(args.first()?)))),
        "inet_server_addr" | "inet_client_addr" => return Some((name, Some(None))),
        _ => return None,
    };
    Some((name, Some(Some(value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new("sluice".into(), "sluice".into(), &BTreeMap::new())
    }

    #[test]
    fn answers_what_drivers_ask() {
        let s = session();
        assert!(matches!(intercept("BEGIN", &s), Some(Answer::Command(t)) if t == "BEGIN"));
        assert!(
            matches!(intercept("SET extra_float_digits = 3", &s), Some(Answer::Set { name, value }) if name == "extra_float_digits" && value == "3")
        );
        let Some(Answer::Rows(b)) = intercept("SHOW transaction isolation level", &s) else { panic!() };
        assert_eq!(sluice::text::format_value(b.column(0), 0).as_deref(), Some("read committed"));
        let Some(Answer::Rows(b)) = intercept("select pg_catalog.version()", &s) else { panic!() };
        assert!(sluice::text::format_value(b.column(0), 0).unwrap().starts_with("PostgreSQL 16"));
        let Some(Answer::Catalog { names, .. }) =
            intercept("SELECT typname, oid FROM pg_catalog.pg_type WHERE oid = 25", &s)
        else {
            panic!()
        };
        assert_eq!(names, vec!["typname".to_string(), "oid".to_string()]);
        assert!(intercept("SELECT 1", &s).is_none());
        assert!(intercept("SHOW STREAMS", &s).is_none());
        assert!(intercept("SELECT * FROM table(s)", &s).is_none());
    }
}
