//! A small `pg_catalog` and `information_schema` built from the real catalog, for tools:
//! psql's `\d`, `\dt`, `\d name`, `\l`, drivers' type and table lookups, GUI clients.
//!
//! The tables (`pg_class`, `pg_namespace`, `pg_attribute`, `pg_type`, `pg_database`,
//! `pg_settings`, `pg_roles`, `information_schema.tables`/`columns`/`schemata`, and empty ones
//! such as `pg_index` or `pg_constraint`) are built in memory for each catalog query and
//! queried by sluice's own SQL engine. Postgres-only syntax is rewritten first, on the parsed
//! query: `OPERATOR(pg_catalog.~)` and `~`/`!~` become `match()`, `COLLATE` and casts to
//! `regclass`/`oid`/`name`/`regtype` go (a quoted name cast to `regclass` becomes its oid),
//! `pg_table_is_visible()` is true, `pg_get_userbyid()` the user, `format_type()` the type's
//! name (for a column: its sluice type), and a scalar subquery, `EXISTS` or `IN` over tables
//! sluice keeps empty is NULL / false. A query the engine still cannot run is answered with no
//! rows and the columns it asked for (every table it reads is then usually empty anyway).
//!
//! Oids: 11 `pg_catalog`, 2200 `public`, 13000 `information_schema`; streams and views get
//! 16384 + their position in name order, so an oid is stable while the catalog does not change.

use std::sync::Arc;

use pgwire::api::Type;
use sluice::Database;
use sluice::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder};
use sluice::arrow::datatypes::{DataType, Field, Schema};
use sluice_sql::sqlparser::ast::{
    self as ast, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Select, SelectItem, SetExpr,
    TableFactor, TableWithJoins, Value,
};
use sluice_sql::{MemCatalog, MemTable};

use super::catalog::Session;
use super::encode::pg_type;

/// Oid of `pg_catalog`.
const NS_PG_CATALOG: i64 = 11;
/// Oid of `public`.
const NS_PUBLIC: i64 = 2200;
/// Oid of `information_schema`.
const NS_INFORMATION_SCHEMA: i64 = 13000;
/// The first oid of a stream or view.
const FIRST_OID: i64 = 16384;
/// The one role.
const ROLE_OID: i64 = 10;

/// A value of a catalog row.
#[derive(Debug, Clone)]
enum V {
    I(i64),
    S(String),
    B(bool),
    F(f64),
    Null,
}

fn s(v: impl Into<String>) -> V {
    V::S(v.into())
}

/// Column kinds of catalog tables.
#[derive(Debug, Clone, Copy)]
enum K {
    Int,
    Text,
    Bool,
    Float,
}

fn table(cols: &[(&str, K)], rows: Vec<Vec<V>>) -> Option<RecordBatch> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, k)| {
            let dt = match k {
                K::Int => DataType::Int64,
                K::Text => DataType::Utf8,
                K::Bool => DataType::Boolean,
                K::Float => DataType::Float64,
            };
            Field::new(*n, dt, true)
        })
        .collect();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for (i, (_, k)) in cols.iter().enumerate() {
        let cell = |r: &Vec<V>| r.get(i).cloned().unwrap_or(V::Null);
        arrays.push(match k {
            K::Int => {
                let mut b = Int64Builder::new();
                rows.iter().for_each(|r| b.append_option(if let V::I(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            K::Text => {
                let mut b = StringBuilder::new();
                rows.iter().for_each(|r| b.append_option(if let V::S(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            K::Bool => {
                let mut b = BooleanBuilder::new();
                rows.iter().for_each(|r| b.append_option(if let V::B(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            K::Float => {
                let mut b = Float64Builder::new();
                rows.iter().for_each(|r| b.append_option(if let V::F(v) = cell(r) { Some(v) } else { None }));
                Arc::new(b.finish())
            }
        });
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).ok()
}

/// The types `pg_type` lists: what sluice sends, plus what drivers look up by name.
fn types() -> Vec<Type> {
    vec![
        Type::BOOL,
        Type::BYTEA,
        Type::CHAR,
        Type::NAME,
        Type::INT8,
        Type::INT2,
        Type::INT4,
        Type::TEXT,
        Type::OID,
        Type::JSON,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::INTERVAL,
        Type::NUMERIC,
        Type::UUID,
        Type::JSONB,
        Type::BOOL_ARRAY,
        Type::INT2_ARRAY,
        Type::INT4_ARRAY,
        Type::INT8_ARRAY,
        Type::TEXT_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::VARCHAR_ARRAY,
        Type::NUMERIC_ARRAY,
        Type::UUID_ARRAY,
        Type::DATE_ARRAY,
        Type::TIMESTAMP_ARRAY,
        Type::TIMESTAMPTZ_ARRAY,
    ]
}

/// Tables that are always empty in sluice (no indexes, constraints, comments, ...), with the
/// columns tools ask for.
const EMPTY: &[(&str, &[&str])] = &[
    ("pg_index", &["indexrelid", "indrelid", "indisprimary", "indisunique", "indisclustered", "indisvalid", "indkey"]),
    ("pg_constraint", &["oid", "conname", "conrelid", "contype", "conkey", "confrelid", "connamespace"]),
    ("pg_description", &["objoid", "classoid", "objsubid", "description"]),
    ("pg_shdescription", &["objoid", "classoid", "description"]),
    ("pg_attrdef", &["oid", "adrelid", "adnum", "adbin"]),
    ("pg_inherits", &["inhrelid", "inhparent", "inhseqno"]),
    ("pg_trigger", &["oid", "tgrelid", "tgname", "tgenabled", "tgisinternal"]),
    ("pg_rewrite", &["oid", "ev_class", "rulename"]),
    ("pg_policy", &["oid", "polname", "polrelid", "polcmd", "polpermissive", "polroles", "polqual", "polwithcheck"]),
    ("pg_statistic_ext", &["oid", "stxrelid", "stxname", "stxnamespace", "stxkeys", "stxkind"]),
    ("pg_publication", &["oid", "pubname", "puballtables"]),
    ("pg_publication_rel", &["oid", "prpubid", "prrelid"]),
    ("pg_publication_namespace", &["oid", "pnpubid", "pnnspid"]),
    ("pg_collation", &["oid", "collname", "collnamespace"]),
    ("pg_foreign_table", &["ftrelid", "ftserver"]),
    ("pg_partitioned_table", &["partrelid", "partstrat"]),
    ("pg_sequence", &["seqrelid"]),
    ("pg_depend", &["classid", "objid", "objsubid", "refclassid", "refobjid", "refobjsubid", "deptype"]),
    ("pg_proc", &["oid", "proname", "pronamespace", "prorettype", "proargtypes", "prokind"]),
    ("pg_enum", &["oid", "enumtypid", "enumsortorder", "enumlabel"]),
    ("pg_range", &["rngtypid", "rngsubtype"]),
    ("pg_extension", &["oid", "extname", "extversion", "extnamespace"]),
    ("pg_event_trigger", &["oid", "evtname"]),
    ("pg_tablespace", &["oid", "spcname"]),
    ("pg_matviews", &["schemaname", "matviewname", "definition"]),
    ("pg_indexes", &["schemaname", "tablename", "indexname", "indexdef"]),
    ("pg_stat_activity", &["datid", "datname", "pid", "usename", "application_name", "state", "query"]),
];

fn is_empty_table(name: &str) -> bool {
    let bare = name.trim_start_matches("pg_catalog.");
    EMPTY.iter().any(|(n, _)| *n == bare)
}

/// A relation listed in `pg_class`.
struct Rel {
    oid: i64,
    name: String,
    kind: &'static str,
    columns: Vec<(String, Type, String, bool)>,
}

fn relations(db: &Database) -> Vec<Rel> {
    let mut rels: Vec<Rel> = db
        .streams()
        .iter()
        .map(|d| Rel {
            oid: 0,
            name: d.name.clone(),
            kind: "r",
            columns: d
                .columns
                .iter()
                .map(|c| {
                    let f = &c.field;
                    let sluice_type = sluice_sql::SqlType::from_arrow_field(f)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|_| f.data_type().to_string());
                    (f.name().clone(), pg_type(f.data_type()), sluice_type, !f.is_nullable())
                })
                .collect(),
        })
        .collect();
    for v in db.views() {
        rels.push(Rel { oid: 0, name: v.name.clone(), kind: "v", columns: vec![] });
    }
    rels.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, r) in rels.iter_mut().enumerate() {
        r.oid = FIRST_OID + i as i64;
    }
    rels
}

/// The catalog tables over `db` as `session` sees them.
pub(crate) fn catalog(db: &Database, session: &Session) -> MemCatalog {
    let cat = MemCatalog::new();
    let rels = relations(db);
    let add = |name: &str, t: Option<RecordBatch>| {
        let Some(batch) = t else { return };
        // `pg_catalog.pg_class` and `pg_class` are the same table.
        let qualified = format!("pg_catalog.{name}");
        let names = if name.contains('.') { vec![name] } else { vec![name, qualified.as_str()] };
        for n in names {
            if let Ok(t) = MemTable::new(n, batch.schema(), vec![vec![batch.clone()]]) {
                cat.register(Arc::new(t.bounded_only()));
            }
        }
    };
    use K::*;
    add(
        "pg_namespace",
        table(
            &[("oid", Int), ("nspname", Text), ("nspowner", Int), ("nspacl", Text)],
            vec![
                vec![V::I(NS_PG_CATALOG), s("pg_catalog"), V::I(ROLE_OID)],
                vec![V::I(NS_PUBLIC), s("public"), V::I(ROLE_OID)],
                vec![V::I(NS_INFORMATION_SCHEMA), s("information_schema"), V::I(ROLE_OID)],
            ],
        ),
    );
    let class_cols: &[(&str, K)] = &[
        ("oid", Int),
        ("relname", Text),
        ("relnamespace", Int),
        ("reltype", Int),
        ("reloftype", Int),
        ("relowner", Int),
        ("relam", Int),
        ("relkind", Text),
        ("relpersistence", Text),
        ("reltuples", Float),
        ("relnatts", Int),
        ("relchecks", Int),
        ("relhasindex", Bool),
        ("relhasrules", Bool),
        ("relhastriggers", Bool),
        ("relhassubclass", Bool),
        ("relrowsecurity", Bool),
        ("relforcerowsecurity", Bool),
        ("relispartition", Bool),
        ("relreplident", Text),
        ("reltablespace", Int),
        ("reltoastrelid", Int),
        ("relacl", Text),
        ("reloptions", Text),
        ("relpartbound", Text),
    ];
    let class_rows = rels
        .iter()
        .map(|r| {
            vec![
                V::I(r.oid),
                s(&r.name),
                V::I(NS_PUBLIC),
                V::I(0),
                V::I(0),
                V::I(ROLE_OID),
                V::I(if r.kind == "r" { 2 } else { 0 }),
                s(r.kind),
                s("p"),
                V::F(-1.0),
                V::I(r.columns.len() as i64),
                V::I(0),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                s("d"),
                V::I(0),
                V::I(0),
            ]
        })
        .collect();
    add("pg_class", table(class_cols, class_rows));
    let mut attrs = vec![];
    for r in &rels {
        for (i, (name, ty, sluice_type, not_null)) in r.columns.iter().enumerate() {
            attrs.push(vec![
                V::I(r.oid),
                s(name),
                V::I(ty.oid() as i64),
                V::I(i as i64 + 1),
                V::I(-1),
                V::B(*not_null),
                V::B(false),
                V::B(false),
                s(""),
                s(""),
                V::I(0),
                V::I(0),
                s(sluice_type),
                s("p"),
                s(""),
                V::I(-1),
            ]);
        }
    }
    add(
        "pg_attribute",
        table(
            &[
                ("attrelid", Int),
                ("attname", Text),
                ("atttypid", Int),
                ("attnum", Int),
                ("atttypmod", Int),
                ("attnotnull", Bool),
                ("attisdropped", Bool),
                ("atthasdef", Bool),
                ("attidentity", Text),
                ("attgenerated", Text),
                ("attcollation", Int),
                ("attndims", Int),
                ("sluice_type", Text),
                ("attstorage", Text),
                ("attcompression", Text),
                ("attstattarget", Int),
            ],
            attrs,
        ),
    );
    let all = types();
    let type_rows = all
        .iter()
        .map(|t| {
            // An array type is named `_` + its element's name.
            let elem = t
                .name()
                .strip_prefix('_')
                .and_then(|e| all.iter().find(|x| x.name() == e))
                .map(|e| e.oid() as i64)
                .unwrap_or(0);
            vec![
                V::I(t.oid() as i64),
                s(t.name()),
                V::I(NS_PG_CATALOG),
                V::I(ROLE_OID),
                V::I(-1),
                s("b"),
                s(if elem != 0 { "A" } else { "U" }),
                V::I(elem),
                V::I(0),
                V::I(0),
                V::I(-1),
                V::B(false),
                s(","),
                V::I(0),
            ]
        })
        .collect();
    add(
        "pg_type",
        table(
            &[
                ("oid", Int),
                ("typname", Text),
                ("typnamespace", Int),
                ("typowner", Int),
                ("typlen", Int),
                ("typtype", Text),
                ("typcategory", Text),
                ("typelem", Int),
                ("typrelid", Int),
                ("typbasetype", Int),
                ("typtypmod", Int),
                ("typnotnull", Bool),
                ("typdelim", Text),
                ("typcollation", Int),
            ],
            type_rows,
        ),
    );
    add(
        "pg_database",
        table(
            &[
                ("oid", Int),
                ("datname", Text),
                ("datdba", Int),
                ("encoding", Int),
                ("datlocprovider", Text),
                ("datcollate", Text),
                ("datctype", Text),
                ("daticulocale", Text),
                ("datistemplate", Bool),
                ("datallowconn", Bool),
                ("datconnlimit", Int),
                ("datacl", Text),
            ],
            vec![vec![
                V::I(1),
                s(&session.database),
                V::I(ROLE_OID),
                V::I(6),
                s("c"),
                s("C"),
                s("C"),
                V::Null,
                V::B(false),
                V::B(true),
                V::I(-1),
            ]],
        ),
    );
    let role =
        vec![V::I(ROLE_OID), s(&session.user), V::B(true), V::B(true), V::B(true), V::B(true), V::B(true), V::I(-1)];
    let role_cols: &[(&str, K)] = &[
        ("oid", Int),
        ("rolname", Text),
        ("rolsuper", Bool),
        ("rolinherit", Bool),
        ("rolcreaterole", Bool),
        ("rolcreatedb", Bool),
        ("rolcanlogin", Bool),
        ("rolconnlimit", Int),
    ];
    add("pg_roles", table(role_cols, vec![role.clone()]));
    add("pg_authid", table(role_cols, vec![role]));
    add(
        "pg_user",
        table(
            &[("usesysid", Int), ("usename", Text), ("usesuper", Bool), ("usecreatedb", Bool)],
            vec![vec![V::I(ROLE_OID), s(&session.user), V::B(true), V::B(true)]],
        ),
    );
    add("pg_am", table(&[("oid", Int), ("amname", Text), ("amtype", Text)], vec![vec![V::I(2), s("heap"), s("t")]]));
    let settings = session
        .settings()
        .into_iter()
        .map(|(k, v)| vec![s(k), s(v), V::Null, s("Sluice"), s(""), s("user"), s("string"), s("default")])
        .collect();
    add(
        "pg_settings",
        table(
            &[
                ("name", Text),
                ("setting", Text),
                ("unit", Text),
                ("category", Text),
                ("short_desc", Text),
                ("context", Text),
                ("vartype", Text),
                ("source", Text),
            ],
            settings,
        ),
    );
    for (name, cols) in EMPTY {
        let cols: Vec<(&str, K)> = cols.iter().map(|c| (*c, Text)).collect();
        add(name, table(&cols, vec![]));
    }
    // information_schema
    let tables = rels
        .iter()
        .map(|r| {
            vec![
                s(&session.database),
                s("public"),
                s(&r.name),
                s(if r.kind == "r" { "BASE TABLE" } else { "VIEW" }),
                s("YES"),
                s("NO"),
            ]
        })
        .collect();
    add(
        "information_schema.tables",
        table(
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("table_type", Text),
                ("is_insertable_into", Text),
                ("is_typed", Text),
            ],
            tables,
        ),
    );
    let mut columns = vec![];
    for r in &rels {
        for (i, (name, ty, sluice_type, not_null)) in r.columns.iter().enumerate() {
            columns.push(vec![
                s(&session.database),
                s("public"),
                s(&r.name),
                s(name),
                V::I(i as i64 + 1),
                V::Null,
                s(if *not_null { "NO" } else { "YES" }),
                s(information_schema_type(ty)),
                s(ty.name()),
                s(sluice_type),
            ]);
        }
    }
    add(
        "information_schema.columns",
        table(
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("column_name", Text),
                ("ordinal_position", Int),
                ("column_default", Text),
                ("is_nullable", Text),
                ("data_type", Text),
                ("udt_name", Text),
                ("sluice_type", Text),
            ],
            columns,
        ),
    );
    add(
        "information_schema.schemata",
        table(
            &[("catalog_name", Text), ("schema_name", Text), ("schema_owner", Text)],
            ["public", "pg_catalog", "information_schema"]
                .iter()
                .map(|n| vec![s(&session.database), s(*n), s(&session.user)])
                .collect(),
        ),
    );
    add(
        "information_schema.views",
        table(
            &[("table_catalog", Text), ("table_schema", Text), ("table_name", Text), ("view_definition", Text)],
            rels.iter()
                .filter(|r| r.kind == "v")
                .map(|r| vec![s(&session.database), s("public"), s(&r.name)])
                .collect(),
        ),
    );
    cat
}

/// The SQL-standard type name `information_schema.columns.data_type` shows.
fn information_schema_type(t: &Type) -> &'static str {
    match *t {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::NUMERIC => "numeric",
        Type::DATE => "date",
        Type::TIMESTAMP => "timestamp without time zone",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::UUID => "uuid",
        Type::BYTEA => "bytea",
        _ => "text",
    }
}

/// Whether a query reads catalog tables.
pub(crate) fn reads_catalog(normalized: &str) -> bool {
    normalized.contains("pg_catalog.")
        || normalized.contains("information_schema.")
        || [
            " pg_class",
            " pg_namespace",
            " pg_type",
            " pg_attribute",
            " pg_database",
            " pg_settings",
            " pg_proc",
            " pg_roles",
            " pg_user",
            " pg_am",
        ]
        .iter()
        .any(|t| normalized.contains(t))
}

/// Runs a catalog query: rewritten (see the module docs), then planned and run by sluice's
/// SQL engine over [`catalog`]. Call on a blocking thread.
pub(crate) fn run(sql: &str, db: &Database, session: &Session) -> Result<Vec<RecordBatch>, String> {
    let mut stmts =
        sluice_sql::sqlparser::parser::Parser::parse_sql(&sluice_sql::sqlparser::dialect::PostgreSqlDialect {}, sql)
            .map_err(|e| e.to_string())?;
    let [ast::Statement::Query(q)] = stmts.as_mut_slice() else { return Err("not one query".into()) };
    let cat = catalog(db, session);
    let rels = relations(db);
    let mut rw = Rewriter { rels: &rels, user: &session.user };
    rw.query(q);
    let text = q.to_string();
    let stmt = sluice_sql::parse_statement(&text).map_err(|e| format!("{e} in `{text}`"))?;
    let sluice_sql::Statement::Query(q) = stmt else { return Err("not a query".into()) };
    let plan = sluice_sql::plan_query(&q, &cat, &sluice_sql::QueryOptions::default())
        .map_err(|e| format!("{e} in `{text}`"))?;
    let stream = plan.execute(&sluice_sql::ExecContext::default()).map_err(|e| e.to_string())?;
    let mut out = vec![];
    for b in stream {
        out.push(b.map_err(|e| e.to_string())?);
    }
    if out.is_empty() {
        out.push(RecordBatch::new_empty(plan.schema()));
    }
    Ok(out)
}

/// Rewrites Postgres-only syntax into what sluice's SQL runs (see the module docs).
struct Rewriter<'a> {
    rels: &'a [Rel],
    user: &'a str,
}

fn lit_str(v: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(v.to_string()).into())
}

fn lit_num(v: i64) -> Expr {
    Expr::Value(Value::Number(v.to_string(), false).into())
}

fn lit_bool(v: bool) -> Expr {
    Expr::Value(Value::Boolean(v).into())
}

fn null() -> Expr {
    Expr::Value(Value::Null.into())
}

/// Whether a query has no rows because it reads (in a cross product or an inner join) a table
/// sluice keeps empty.
fn over_empty_tables(q: &Query) -> bool {
    let SetExpr::Select(sel) = q.body.as_ref() else { return false };
    let empty = |r: &TableFactor| matches!(r, TableFactor::Table { name, .. } if is_empty_table(&name.to_string()));
    sel.from.iter().any(|t| {
        empty(&t.relation)
            || t.joins.iter().any(|j| {
                use ast::JoinOperator as J;
                matches!(j.join_operator, J::Join(_) | J::Inner(_) | J::CrossJoin(_)) && empty(&j.relation)
            })
    })
}

impl Rewriter<'_> {
    fn query(&mut self, q: &mut Query) {
        if let Some(w) = &mut q.with {
            for cte in &mut w.cte_tables {
                self.query(&mut cte.query);
            }
        }
        self.set_expr(&mut q.body);
        if let Some(o) = &mut q.order_by
            && let ast::OrderByKind::Expressions(exprs) = &mut o.kind
        {
            for e in exprs {
                self.expr(&mut e.expr);
            }
        }
    }

    fn set_expr(&mut self, s: &mut SetExpr) {
        match s {
            SetExpr::Select(sel) => self.select(sel),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            _ => {}
        }
    }

    fn select(&mut self, sel: &mut Select) {
        for item in &mut sel.projection {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    // Keep the column name the client expects from a call it asked for.
                    let name = match e {
                        Expr::Function(f) => f.name.0.last().map(|p| p.to_string()),
                        _ => None,
                    };
                    self.expr(e);
                    if let Some(n) = name
                        && !matches!(e, Expr::Function(_))
                    {
                        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: ast::Ident::new(n) };
                    }
                }
                SelectItem::ExprWithAlias { expr, .. } => self.expr(expr),
                _ => {}
            }
        }
        for t in &mut sel.from {
            self.table(t);
        }
        if let Some(w) = &mut sel.selection {
            self.expr(w);
        }
    }

    fn table(&mut self, t: &mut TableWithJoins) {
        if let TableFactor::Derived { subquery, .. } = &mut t.relation {
            self.query(subquery);
        }
        for j in &mut t.joins {
            if let TableFactor::Derived { subquery, .. } = &mut j.relation {
                self.query(subquery);
            }
            use ast::{JoinConstraint, JoinOperator as J};
            let c = match &mut j.join_operator {
                J::Join(c)
                | J::Inner(c)
                | J::Left(c)
                | J::LeftOuter(c)
                | J::Right(c)
                | J::RightOuter(c)
                | J::FullOuter(c) => Some(c),
                _ => None,
            };
            if let Some(JoinConstraint::On(e)) = c {
                self.expr(e);
            }
        }
    }

    fn oid_of(&self, name: &str) -> i64 {
        let bare = name.rsplit('.').next().unwrap_or(name).trim_matches('"');
        self.rels.iter().find(|r| r.name == bare).map(|r| r.oid).unwrap_or(0)
    }

    fn expr(&mut self, e: &mut Expr) {
        let replacement = match e {
            Expr::BinaryOp { left, op, right } => {
                self.expr(left);
                self.expr(right);
                let negate = match op {
                    ast::BinaryOperator::PGRegexMatch | ast::BinaryOperator::PGRegexIMatch => Some(false),
                    ast::BinaryOperator::PGRegexNotMatch | ast::BinaryOperator::PGRegexNotIMatch => Some(true),
                    ast::BinaryOperator::PGCustomBinaryOperator(parts) => match parts.last().map(String::as_str) {
                        Some("~" | "~*") => Some(false),
                        Some("!~" | "!~*") => Some(true),
                        _ => None,
                    },
                    _ => None,
                };
                negate.map(|neg| {
                    let call = call("match", vec![(**left).clone(), (**right).clone()]);
                    if neg { Expr::UnaryOp { op: ast::UnaryOperator::Not, expr: Box::new(call) } } else { call }
                })
            }
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::IsNull(expr) | Expr::IsNotNull(expr) => {
                self.expr(expr);
                None
            }
            Expr::IsTrue(expr) | Expr::IsFalse(expr) | Expr::IsNotTrue(expr) | Expr::IsNotFalse(expr) => {
                self.expr(expr);
                None
            }
            Expr::Collate { expr, .. } => {
                self.expr(expr);
                Some((**expr).clone())
            }
            Expr::Cast { expr, data_type, .. } => {
                self.expr(expr);
                let ty = data_type.to_string().to_ascii_lowercase();
                let ty = ty.trim_start_matches("pg_catalog.");
                match ty {
                    "regclass" => Some(match expr.as_ref() {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(name) => lit_num(self.oid_of(name)),
                            _ => (**expr).clone(),
                        },
                        other => other.clone(),
                    }),
                    "oid" | "regtype" | "regproc" | "regnamespace" | "regrole" | "name" | "\"char\"" | "char" => {
                        Some((**expr).clone())
                    }
                    "text" | "varchar" | "character varying" => {
                        *data_type = ast::DataType::String(None);
                        None
                    }
                    _ => None,
                }
            }
            Expr::Between { expr, low, high, .. } => {
                self.expr(expr);
                self.expr(low);
                self.expr(high);
                None
            }
            Expr::In { expr, target, negated, .. } => {
                self.expr(expr);
                match target {
                    ast::InTarget::List(list) => {
                        list.iter_mut().for_each(|x| self.expr(x));
                        None
                    }
                    ast::InTarget::Subquery(q) if over_empty_tables(q) => Some(lit_bool(*negated)),
                    ast::InTarget::Subquery(q) => {
                        self.query(q);
                        None
                    }
                    _ => None,
                }
            }
            Expr::Exists { subquery, negated } => {
                if over_empty_tables(subquery) {
                    Some(lit_bool(*negated))
                } else {
                    self.query(subquery);
                    None
                }
            }
            Expr::Subquery(q) => {
                if over_empty_tables(q) {
                    Some(null())
                } else {
                    self.query(q);
                    None
                }
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                if let Some(o) = operand {
                    self.expr(o);
                }
                for c in conditions {
                    self.expr(&mut c.condition);
                    self.expr(&mut c.result);
                }
                if let Some(x) = else_result {
                    self.expr(x);
                }
                None
            }
            Expr::Function(f) => self.function(f),
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
    }

    fn function(&mut self, f: &mut ast::Function) -> Option<Expr> {
        let name = f.name.0.last().map(|p| p.to_string().to_ascii_lowercase()).unwrap_or_default();
        let mut args: Vec<Expr> = match &mut f.args {
            FunctionArguments::List(l) => l
                .args
                .iter_mut()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                        self.expr(e);
                        Some(e.clone())
                    }
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        // `pg_catalog.f(...)` is `f(...)`.
        if f.name.0.len() > 1 {
            f.name.0.drain(..f.name.0.len() - 1);
        }
        Some(match name.as_str() {
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege" => lit_bool(true),
            "pg_get_userbyid" => lit_str(self.user),
            "pg_encoding_to_char" => lit_str("UTF8"),
            "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_get_expr"
            | "array_to_string"
            | "pg_get_indexdef"
            | "pg_get_constraintdef"
            | "pg_get_viewdef"
            | "pg_get_partkeydef"
            | "pg_tablespace_location" => null(),
            "pg_relation_size" | "pg_total_relation_size" | "pg_table_size" | "pg_database_size" => lit_num(0),
            "format_type" => {
                let arg = args.drain(..).next()?;
                // A column's type: its sluice type; any other oid: the Postgres type name.
                match &arg {
                    Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|p| p.value == "atttypid") => {
                        let mut p = parts.clone();
                        if let Some(last) = p.last_mut() {
                            *last = ast::Ident::new("sluice_type");
                        }
                        Expr::CompoundIdentifier(p)
                    }
                    _ => {
                        let conditions = types()
                            .iter()
                            .map(|t| ast::CaseWhen { condition: lit_num(t.oid() as i64), result: lit_str(t.name()) })
                            .collect();
                        Expr::Case {
                            case_token: ast::helpers::attached_token::AttachedToken::empty(),
                            end_token: ast::helpers::attached_token::AttachedToken::empty(),
                            operand: Some(Box::new(arg)),
                            conditions,
                            else_result: Some(Box::new(lit_str("???"))),
                        }
                    }
                }
            }
            _ => return None,
        })
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ast::ObjectName::from(vec![ast::Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
