//! sluice's statement AST: its own nodes for the Proton-specific statements, sqlparser's AST for
//! queries and expressions. Every node's `Display` prints SQL that parses back to the same node.

use std::fmt;

use sqlparser::ast::ObjectName;

/// DDL nodes.
pub mod ddl;
/// Query and INSERT nodes.
pub mod query;

use ddl::{AlterStream, CreateStream, CreateView};
use query::{Insert, SluiceQuery};

/// What kind of object a DROP / SHOW CREATE / DESCRIBE names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// `STREAM` (also accepted: `TABLE` in SHOW CREATE / DESCRIBE).
    Stream,
    /// `VIEW`: a view or, as in Proton, a materialized view.
    View,
    /// `MATERIALIZED VIEW`.
    MaterializedView,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Stream => "STREAM",
            ObjectKind::View => "VIEW",
            ObjectKind::MaterializedView => "MATERIALIZED VIEW",
        })
    }
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Statement {
    /// A SELECT, streaming or historical.
    Query(Box<SluiceQuery>),
    /// `INSERT INTO ...`.
    Insert(Box<Insert>),
    /// `CREATE STREAM ...`.
    CreateStream(Box<CreateStream>),
    /// `CREATE [MATERIALIZED] VIEW ...`.
    CreateView(Box<CreateView>),
    /// `ALTER STREAM ...`.
    AlterStream(Box<AlterStream>),
    /// `DROP STREAM | VIEW | MATERIALIZED VIEW [IF EXISTS] name`.
    Drop {
        /// What is dropped.
        kind: ObjectKind,
        /// Its name.
        name: ObjectName,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW STREAMS [LIKE 'pattern']`.
    ShowStreams {
        /// The LIKE pattern.
        like: Option<String>,
    },
    /// `SHOW VIEWS [LIKE 'pattern']` (also `SHOW MATERIALIZED VIEWS`).
    ShowViews {
        /// The LIKE pattern.
        like: Option<String>,
    },
    /// `SHOW CREATE [STREAM | VIEW | MATERIALIZED VIEW | TABLE] name`.
    ShowCreate {
        /// The kind, if written.
        kind: Option<ObjectKind>,
        /// The name.
        name: ObjectName,
    },
    /// `DESCRIBE | DESC [STREAM | VIEW | TABLE] name`.
    Describe {
        /// The name.
        name: ObjectName,
    },
    /// `EXPLAIN [ANALYZE] statement` (a query or INSERT).
    Explain {
        /// `ANALYZE`: run it and report what happened.
        analyze: bool,
        /// The explained statement.
        statement: Box<Statement>,
    },
    /// A session, transaction, cursor or COPY statement parsed by sqlparser, passed through for the
    /// server: `SET`, `SHOW <variable>`, `BEGIN`/`START TRANSACTION`, `COMMIT`, `ROLLBACK`,
    /// `DECLARE ... CURSOR`, `FETCH`, `CLOSE`, `COPY`, `DISCARD`, `DEALLOCATE`, `USE`.
    /// Nothing else reaches this variant.
    Other(Box<sqlparser::ast::Statement>),
}

fn like(f: &mut fmt::Formatter<'_>, like: &Option<String>) -> fmt::Result {
    if let Some(p) = like {
        f.write_str(" LIKE ")?;
        crate::types::write_string(f, p)?;
    }
    Ok(())
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Query(q) => write!(f, "{q}"),
            Statement::Insert(i) => write!(f, "{i}"),
            Statement::CreateStream(c) => {
                if f.alternate() {
                    write!(f, "{c:#}")
                } else {
                    write!(f, "{c}")
                }
            }
            Statement::CreateView(v) => write!(f, "{v}"),
            Statement::AlterStream(a) => write!(f, "{a}"),
            Statement::Drop { kind, name, if_exists } => {
                write!(f, "DROP {kind} {}{name}", if *if_exists { "IF EXISTS " } else { "" })
            }
            Statement::ShowStreams { like: p } => {
                f.write_str("SHOW STREAMS")?;
                like(f, p)
            }
            Statement::ShowViews { like: p } => {
                f.write_str("SHOW VIEWS")?;
                like(f, p)
            }
            Statement::ShowCreate { kind: Some(kind), name } => write!(f, "SHOW CREATE {kind} {name}"),
            Statement::ShowCreate { kind: None, name } => write!(f, "SHOW CREATE {name}"),
            Statement::Describe { name } => write!(f, "DESCRIBE {name}"),
            Statement::Explain { analyze, statement } => {
                write!(f, "EXPLAIN {}{statement}", if *analyze { "ANALYZE " } else { "" })
            }
            Statement::Other(s) => write!(f, "{s}"),
        }
    }
}
