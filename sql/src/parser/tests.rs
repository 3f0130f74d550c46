//! Query, expression, EMIT and error tests. DDL is in `tests_ddl.rs`, random input in
//! `tests_fuzz.rs`.

use sqlparser::ast::{self as sql, SetExpr, TableFactor};

use super::*;
use crate::ast::query::{Emit, EmitMode, InsertSource, SluiceQuery};
use crate::interval::{IntervalLiteral, IntervalUnit};

/// Parses one statement, checks that its display parses back to the same AST and that display is
/// a fixed point, and returns it.
pub(crate) fn round_trip(sql: &str) -> Statement {
    let first = parse_statement(sql).unwrap_or_else(|e| panic!("{sql}\n  {e}"));
    let shown = first.to_string();
    let second = parse_statement(&shown).unwrap_or_else(|e| panic!("{sql}\n  displayed as {shown}\n  {e}"));
    assert_eq!(first, second, "{sql}\n  displayed as {shown}");
    assert_eq!(second.to_string(), shown, "display is not stable for {sql}");
    first
}

fn query(sql: &str) -> SluiceQuery {
    match round_trip(sql) {
        Statement::Query(q) => *q,
        other => panic!("{sql} is not a query: {other:?}"),
    }
}

fn emit(sql: &str) -> Emit {
    query(sql).emit.unwrap_or_else(|| panic!("{sql} has no EMIT"))
}

fn err(sql: &str) -> Error {
    match parse(sql) {
        Ok(s) => panic!("{sql} should fail, parsed as {s:?}"),
        Err(e) => e,
    }
}

/// Asserts a syntax error at `line`:`column` whose message contains `needle`.
fn syntax_error(sql: &str, line: u64, column: u64, needle: &str) {
    let e = err(sql);
    assert!(matches!(e, Error::Parse { .. }), "{sql}: {e:?}");
    assert_eq!(e.location(), Some(Location::new(line, column)), "{sql}: {e}");
    assert!(e.to_string().contains(needle), "{sql}: {e}");
}

fn select(q: &SluiceQuery) -> &sql::Select {
    match q.query.body.as_ref() {
        SetExpr::Select(s) => s,
        other => panic!("not a SELECT: {other}"),
    }
}

fn s(n: i64) -> IntervalLiteral {
    IntervalLiteral::new(n, IntervalUnit::Second)
}

#[test]
fn interval_literals_in_every_unit() {
    for unit in IntervalUnit::ALL {
        let q = query(&format!("SELECT 3{}", unit.suffix()));
        let sql::SelectItem::UnnamedExpr(e) = &select(&q).projection[0] else { panic!("projection") };
        assert_eq!(IntervalLiteral::from_expr(e).ok(), Some(IntervalLiteral::new(3, unit)));
    }
    let q = query("SELECT now() - 100ms, INTERVAL 5 SECOND, 2m + 1h, -1d");
    assert_eq!(select(&q).projection.len(), 4);
}

#[test]
fn glued_interval_is_never_an_alias() {
    let q = query("SELECT 5s");
    assert!(matches!(&select(&q).projection[0], sql::SelectItem::UnnamedExpr(sql::Expr::Interval(_))));
    // An explicit alias still works, also for an interval.
    let q = query("SELECT 5 AS s, 5s AS five_seconds");
    assert!(matches!(&select(&q).projection[0], sql::SelectItem::ExprWithAlias { alias, .. } if alias.value == "s"));
    assert!(matches!(&select(&q).projection[1], sql::SelectItem::ExprWithAlias { .. }));
}

#[test]
fn implicit_column_aliases_are_errors_with_a_hint() {
    // Proton requires AS in the select list; so does sluice, which keeps `5 s` from being `5 AS s`.
    syntax_error("SELECT 5 s", 1, 10, "a column alias needs AS");
    syntax_error("SELECT a b FROM t", 1, 10, "a column alias needs AS");
    syntax_error("SELECT (SELECT 5 s)", 1, 18, "a column alias needs AS");
    syntax_error("SELECT 5x", 1, 8, "unknown interval unit `x`");
    syntax_error("SELECT 10Mb", 1, 8, "unknown interval unit `Mb`");
    syntax_error("SELECT 1.5h", 1, 8, "needs a whole number");
    // Table aliases keep the optional AS.
    let q = query("SELECT t.a FROM s t JOIN s2 AS u ON t.id = u.id");
    assert_eq!(select(&q).from.len(), 1);
}

#[test]
fn historical_and_window_sources() {
    let q = query("SELECT * FROM table(s) WHERE _tp_time > now() - 1h");
    assert!(matches!(&select(&q).from[0].relation, TableFactor::TableFunction { .. }));
    for sql in [
        "SELECT window_start, count() FROM tumble(s, 5s) GROUP BY window_start",
        "SELECT window_start, max(v) FROM tumble(s, ts, INTERVAL 5 SECOND) GROUP BY window_start",
        "SELECT window_start, count() FROM hop(s, ts, 1s, 5s) GROUP BY window_start, window_end",
        "SELECT window_start, count() FROM session(s, ts, 5m) GROUP BY window_start",
        "SELECT count() FROM tumble(table(s), 1d) GROUP BY window_start",
        "SELECT * FROM s AS a JOIN table(dim) AS d ON a.k = d.k",
    ] {
        let q = query(sql);
        assert!(!select(&q).from.is_empty(), "{sql}");
    }
}

#[test]
fn casts_use_sluice_types() {
    let q = query("SELECT x::uint64, CAST(y AS LowCardinality(Nullable(String))), z::datetime64(3, 'UTC'), w::int");
    let types: Vec<String> = select(&q)
        .projection
        .iter()
        .map(|item| match item {
            sql::SelectItem::UnnamedExpr(sql::Expr::Cast { data_type, .. }) => {
                SqlType::from_data_type(data_type).map(|t| t.to_string()).unwrap_or_else(|e| e.to_string())
            }
            other => panic!("not a cast: {other}"),
        })
        .collect();
    assert_eq!(types, ["uint64", "low_cardinality(nullable(string))", "datetime64(3, 'UTC')", "int32"]);
    let q = query("SELECT date '2024-01-01', datetime '2024-01-01 00:00:00'");
    assert!(matches!(&select(&q).projection[0], sql::SelectItem::UnnamedExpr(sql::Expr::TypedString(_))));
    // A column called like a type is still a column.
    let q = query("SELECT date, string, map FROM t WHERE date > '2024-01-01'");
    assert!(matches!(&select(&q).projection[0], sql::SelectItem::UnnamedExpr(sql::Expr::Identifier(_))));
    // Bad types in casts are errors, not something else.
    syntax_error("SELECT x::decimal(99, 2)", 1, 11, "decimal precision");
    assert!(
        SqlType::from_data_type(&sql::DataType::Custom(sql::ObjectName::from(vec![sql::Ident::new("foo")]), vec![]))
            .is_err()
    );
}

#[test]
fn emit_variants() {
    let e = emit("SELECT count() FROM tumble(s, 5s) GROUP BY window_start EMIT AFTER WATERMARK");
    assert_eq!(e, Emit { after_watermark: true, ..Emit::default() });
    let e = emit("SELECT count() FROM tumble(s, 5s) GROUP BY window_start EMIT STREAM AFTER WATERMARK WITH DELAY 2s");
    assert_eq!((e.after_watermark, e.delay), (true, Some(s(2))));
    // Older Proton spelling.
    let e = emit("SELECT count() FROM tumble(s, 5s) GROUP BY window_start EMIT AFTER WATERMARK AND DELAY 2s");
    assert_eq!((e.after_watermark, e.delay), (true, Some(s(2))));
    let e = emit("SELECT count() FROM s EMIT PERIODIC 2s");
    assert_eq!(e.periodic, Some(s(2)));
    let e = emit("SELECT count() FROM s EMIT PERIODIC INTERVAL 500 MILLISECOND REPEAT");
    assert_eq!((e.periodic, e.repeat), (Some(IntervalLiteral::new(500, IntervalUnit::Millisecond)), true));
    let e = emit("SELECT count() FROM s EMIT ON UPDATE");
    assert!(e.on_update);
    let e = emit("SELECT count() FROM s EMIT STREAM PERIODIC 3s ON UPDATE");
    assert_eq!((e.periodic, e.on_update), (Some(s(3)), true));
    let e = emit("SELECT count() FROM session(s, 5m) GROUP BY window_start EMIT AFTER WATERMARK AND TIMEOUT 5s");
    assert_eq!(e.timeout, Some(s(5)));
    let e = emit("SELECT count() FROM s EMIT LAST 1h ON PROCTIME");
    assert_eq!((e.last, e.on_proctime), (Some(IntervalLiteral::new(1, IntervalUnit::Hour)), true));
    let e = emit("SELECT count() FROM s EMIT STREAM AFTER WATERMARK AND LAST 10m");
    assert_eq!(e.last, Some(IntervalLiteral::new(10, IntervalUnit::Minute)));
    let e = emit("SELECT k, count() FROM s GROUP BY k EMIT CHANGELOG");
    assert_eq!(e.mode, EmitMode::Changelog);
    let e = emit("SELECT count() FROM s EMIT STREAM");
    assert_eq!(e, Emit::default());
    let e = emit("SELECT count() FROM s EMIT PERIODIC INTERVAL '1' MINUTE");
    assert_eq!(e.periodic, Some(IntervalLiteral::new(1, IntervalUnit::Minute)));
}

#[test]
fn emit_positions() {
    // Before ORDER BY / LIMIT (DESIGN.md's order) and after LIMIT (Proton's), same result.
    let a = query(
        "SELECT k, count() AS c FROM s GROUP BY k EMIT PERIODIC 1s ORDER BY c LIMIT 3 SETTINGS seek_to = 'earliest'",
    );
    let b = query(
        "SELECT k, count() AS c FROM s GROUP BY k ORDER BY c LIMIT 3 EMIT PERIODIC 1s SETTINGS seek_to = 'earliest'",
    );
    assert_eq!(a, b);
    assert!(a.query.order_by.is_some() && a.query.limit_clause.is_some());
    assert_eq!(a.setting("SEEK_TO"), Some(&crate::SettingValue::String("earliest".into())));
    assert!(a.query.settings.is_none(), "settings are moved out of sqlparser's Query");
    // The EMIT clause ends at LIMIT / SETTINGS.
    let q = query("SELECT count() FROM s EMIT ON UPDATE LIMIT 10");
    assert!(q.emit.is_some() && q.query.limit_clause.is_some());
}

#[test]
fn emit_errors() {
    let base = "SELECT count() FROM s ";
    for (tail, needle) in [
        ("EMIT DELAY 2s", "needs AFTER WATERMARK"),
        ("EMIT PERIODIC 2s AND PERIODIC 3s", "given more than once"),
        ("EMIT PERIODIC 0s", "must be positive"),
        ("EMIT PERIODIC 5", "expected an interval"),
        ("EMIT PERIODIC x", "expected an interval"),
        ("EMIT ON 2s", "expected UPDATE after ON"),
        ("EMIT AFTER WATERMARK AND", "expected STREAM, CHANGELOG"),
        ("EMIT", "EMIT needs a policy"),
        ("EMIT LIMIT 1", "EMIT needs a policy"),
        ("EMIT LAST 1h ON EVENTTIME", "expected PROCTIME"),
        ("EMIT PERIODIC 1s EMIT ON UPDATE", "EMIT given more than once"),
        ("EMIT PERIODIC 1s WHERE x", "after the EMIT policy"),
    ] {
        let sql = format!("{base}{tail}");
        let e = err(&sql);
        assert!(matches!(e, Error::Parse { .. }), "{sql}: {e:?}");
        assert!(e.to_string().contains(needle), "{sql}: {e}");
        assert_eq!(e.location().map(|l| l.line), Some(1), "{sql}: {e}");
    }
    let e = err("SELECT * FROM (SELECT count() FROM s EMIT PERIODIC 1s)");
    assert!(matches!(e, Error::NotImplemented { .. }), "{e:?}");
    let e = err("SELECT a FROM s1 UNION ALL SELECT a FROM s2 EMIT PERIODIC 1s");
    assert!(matches!(e, Error::NotImplemented { .. }), "{e:?}");
}

#[test]
fn emit_as_a_name_is_still_a_name() {
    for sql in [
        "SELECT emit FROM t",
        "SELECT a AS emit FROM t",
        "SELECT * FROM emit",
        "SELECT * FROM a JOIN emit ON a.x = emit.x",
        "SELECT emit.on FROM emit",
    ] {
        let q = query(sql);
        assert!(q.emit.is_none(), "{sql}");
    }
}

#[test]
fn partition_by_substreams() {
    let q = query("SELECT device, max(temp) FROM s WHERE temp > 0 PARTITION BY device GROUP BY device EMIT ON UPDATE");
    assert_eq!(q.partition_by.len(), 1);
    assert!(select(&q).selection.is_some());
    let q2 = query("SELECT device, max(temp) FROM s WHERE temp > 0 GROUP BY device PARTITION BY device EMIT ON UPDATE");
    assert_eq!(q, q2, "both positions mean the same");
    let q = query("SELECT window_start, k, count() FROM tumble(s, 5s) PARTITION BY k, region GROUP BY window_start, k");
    assert_eq!(q.partition_by.len(), 2);
    // Window functions keep their own PARTITION BY.
    let q = query("SELECT a, row_number() OVER (PARTITION BY a ORDER BY b) AS n FROM table(s)");
    assert!(q.partition_by.is_empty());
    syntax_error("SELECT a FROM s PARTITION BY k PARTITION BY j", 1, 32, "PARTITION BY given more than once");
    syntax_error("SELECT a FROM s PARTITION BY k WHERE x", 1, 32, "expected the end");
}

#[test]
fn ctes_subqueries_unions_joins() {
    for sql in [
        "WITH recent AS (SELECT * FROM table(s) WHERE _tp_time > now() - 1h) SELECT count() FROM recent",
        "SELECT * FROM (SELECT a, b FROM s WHERE a > 1) AS sub WHERE b IN (SELECT b FROM table(t))",
        "SELECT a FROM table(s1) UNION ALL SELECT a FROM table(s2)",
        "SELECT s.a, t.b FROM s LEFT JOIN table(t) AS t ON s.k = t.k",
        "SELECT a, count() FROM table(s) GROUP BY a HAVING count() > 1 ORDER BY a DESC LIMIT 10 OFFSET 5",
        "SELECT DISTINCT a FROM table(s) LIMIT 1 BY a",
        "SELECT [1, 2, 3] AS arr, map('a', 1) AS m, (1, 'x') AS t, x -> x + 1 AS f",
        "SELECT earliest_ts(), _tp_sn FROM s WHERE _tp_sn >= 100",
        "(SELECT 1)",
        "VALUES (1, 'a'), (2, 'b')",
    ] {
        query(sql);
    }
}

#[test]
fn query_settings_are_a_list() {
    let q = query("SELECT * FROM s SETTINGS seek_to = '-2h', query_mode = table, max_threads = 4, f = 0.5, b = true");
    let names: Vec<&str> = q.settings.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["seek_to", "query_mode", "max_threads", "f", "b"]);
    assert_eq!(q.setting("max_threads"), Some(&crate::SettingValue::Int(4)));
    assert_eq!(q.setting("query_mode").map(|v| v.as_string()), Some("table".into()));
    let e = err("SELECT * FROM s SETTINGS seek_to = now()");
    assert!(matches!(e, Error::InvalidSetting { ref name, .. } if name == "seek_to"), "{e:?}");
}

#[test]
fn unsupported_query_features_say_so() {
    for sql in
        ["SELECT * FROM t FORMAT JSON", "SELECT * FROM t FOR UPDATE", "WITH x AS (SELECT 1) INSERT INTO t VALUES (1)"]
    {
        let e = err(sql);
        assert!(matches!(e, Error::NotImplemented { .. } | Error::Parse { .. }), "{sql}: {e:?}");
    }
}

#[test]
fn inserts() {
    let Statement::Insert(i) = round_trip("INSERT INTO s (a, b) VALUES (1, 'x'), (2, 'y')") else { panic!() };
    assert_eq!(i.columns.len(), 2);
    assert!(matches!(&i.source, InsertSource::Values(rows) if rows.len() == 2));
    let Statement::Insert(i) = round_trip("INSERT INTO db.s SETTINGS async_insert = 1 VALUES (1) (2)") else {
        panic!()
    };
    assert_eq!(i.settings.get("async_insert"), Some(&crate::SettingValue::Int(1)));
    assert!(matches!(&i.source, InsertSource::Values(rows) if rows.len() == 2));
    let Statement::Insert(i) = round_trip("INSERT INTO t SELECT a, b FROM table(s) WHERE a > 1") else { panic!() };
    assert!(matches!(&i.source, InsertSource::Query(_)));
    round_trip("INSERT INTO s (id, v, _tp_time) VALUES (1, [1, 2], '2025-09-18 00:00:00'), (-2, [], now())");
    let e = err("INSERT INTO s (a, b) VALUES (1, 2), (3)");
    assert!(matches!(e, Error::Bind { .. }) && e.to_string().contains("row 2"), "{e}");
    let e = err("INSERT INTO s VALUES (1, 2), (3)");
    assert!(e.to_string().contains("expected 2"), "{e}");
    assert!(matches!(err("INSERT INTO s FORMAT JSONEachRow"), Error::NotImplemented { .. }));
    syntax_error("INSERT INTO s (a) VALUES (1", 1, 28, "expected `)`");
}

#[test]
fn explain() {
    let Statement::Explain { analyze, statement } = round_trip("EXPLAIN SELECT count() FROM s EMIT PERIODIC 1s") else {
        panic!()
    };
    assert!(!analyze);
    assert!(matches!(*statement, Statement::Query(ref q) if q.emit.is_some()));
    let Statement::Explain { analyze, .. } = round_trip("EXPLAIN ANALYZE INSERT INTO t SELECT * FROM table(s)") else {
        panic!()
    };
    assert!(analyze);
    assert!(matches!(err("EXPLAIN DROP STREAM s"), Error::NotImplemented { .. }));
}

#[test]
fn session_statements_pass_through() {
    for sql in [
        "SET extra_float_digits = 3",
        "SHOW transaction_isolation",
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "DECLARE c CURSOR FOR SELECT * FROM s",
        "FETCH 100 FROM c",
        "CLOSE c",
        "COPY s (a, b) FROM STDIN WITH (FORMAT csv)",
        "USE default",
    ] {
        assert!(matches!(parse_statement(sql), Ok(Statement::Other(_))), "{sql}: {:?}", parse(sql));
    }
    for sql in ["UPDATE t SET a = 1", "DELETE FROM t WHERE a = 1", "TRUNCATE TABLE t", "GRANT SELECT ON t TO u"] {
        assert!(matches!(err(sql), Error::NotImplemented { .. }), "{sql}");
    }
}

#[test]
fn multiple_statements_and_locations() {
    let all = parse("SELECT 1;\n\n  SELECT 2 ;;\n").expect("parses");
    assert_eq!(all.len(), 2);
    assert!(parse("").expect("parses").is_empty());
    assert!(parse_statement("SELECT 1; SELECT 2").is_err());
    // The location of an error in the second statement is in the whole text.
    syntax_error("SELECT 1;\nSELECT (a\n  FROM t", 3, 3, "Expected: ), found: FROM");
    // Proton's ASOF / LATEST joins are not in the parser yet: a clear error, not a misparse.
    let e = err("SELECT a FROM s ASOF JOIN t ON s.k = t.k AND s.ts >= t.ts");
    assert!(matches!(e, Error::NotImplemented { .. }) && e.location() == Some(Location::new(1, 17)), "{e:?}");
    syntax_error("SELECT 'unterminated", 1, 8, "Unterminated string literal");
    syntax_error("SELECT a FROM s WHERE", 1, 22, "");
    syntax_error("CREATE STREAM s (a int32)\n  ORDER BY a\n  SETTINGS shards = ", 3, 21, "found: EOF");
    let e = err(
        "SELECT ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
    );
    assert!(e.to_string().contains("nested"), "{e}");
}

#[test]
fn expressions() -> Result<()> {
    // ClickHouse integer literals in other radixes stay numbers, not byte strings.
    let hex = parse_expr("0x1F")?;
    assert!(
        matches!(&hex, sql::Expr::Value(v) if matches!(&v.value, sql::Value::Number(n, _) if n == "0x1F")),
        "{hex:?}"
    );
    assert!(matches!(parse_expr("X'1F'")?, sql::Expr::Value(_)));
    assert!(matches!(parse_expr("5s")?, sql::Expr::Interval(_)));
    assert!(matches!(parse_expr("a + 1")?, sql::Expr::BinaryOp { .. }));
    assert!(parse_expr("a +").is_err());
    assert!(parse_expr("a b").is_err());
    Ok(())
}

#[test]
fn error_categories_of_parse_errors() {
    use crate::ErrorCategory as C;
    assert_eq!(err("SELEC 1").category(), C::Syntax);
    assert_eq!(err("CREATE EXTERNAL STREAM k (a int)").category(), C::NotSupported);
    assert_eq!(err("CREATE STREAM s (a int33)").category(), C::UndefinedType);
    assert_eq!(err("CREATE STREAM s (a int, a int)").category(), C::DuplicateColumn);
    assert_eq!(err("CREATE STREAM s (a int) SETTINGS shards = 0").category(), C::InvalidParameter);
}
