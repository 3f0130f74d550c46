//! Query shapes, aggregates, joins, set operations, errors and cancellation.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{err, one, rows, run_sql};
use crate::ast::Statement;
use crate::context::{ExecContext, QueryOptions};
use crate::error::{Error, ErrorCategory, Location};

#[test]
fn projection_filter_and_order() {
    assert_eq!(rows("SELECT id, value FROM events WHERE value > 5 ORDER BY value DESC"), ["4 99.99", "8 20", "3 10"]);
    assert_eq!(rows("SELECT id FROM events WHERE event_type = 'click' ORDER BY id"), ["2", "6"]);
    assert_eq!(rows("SELECT id FROM table(events) WHERE url IS NULL"), ["5"]);
    assert_eq!(rows("SELECT id FROM events WHERE value IS NOT NULL AND id BETWEEN 4 AND 6 ORDER BY id"), ["4", "6"]);
    assert_eq!(rows("SELECT id FROM events WHERE id NOT BETWEEN 2 AND 7 ORDER BY id"), ["1", "8"]);
    assert_eq!(rows("SELECT id FROM events WHERE id IN (1, 3, 99) ORDER BY id"), ["1", "3"]);
    assert_eq!(rows("SELECT id FROM events WHERE event_type NOT IN ('view', 'click') ORDER BY id"), ["4", "8"]);
    assert_eq!(rows("SELECT id FROM events WHERE url LIKE '/c%' ORDER BY id"), ["3", "4", "8"]);
    assert_eq!(rows("SELECT id FROM events WHERE url ILIKE '/HOME' ORDER BY id"), ["1", "2", "7"]);
    assert_eq!(rows("SELECT id FROM events WHERE url NOT LIKE '%/%' ORDER BY id"), Vec::<String>::new());
    assert_eq!(rows("SELECT id, id * 2 AS d FROM events ORDER BY d DESC LIMIT 2"), ["8 16", "7 14"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY id LIMIT 2 OFFSET 3"), ["4", "5"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY id LIMIT 3, 2"), ["4", "5"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY value NULLS FIRST, id LIMIT 2"), ["5", "6"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY value DESC LIMIT 2"), ["4", "8"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY value DESC NULLS FIRST LIMIT 1"), ["5"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY 1 DESC LIMIT 1"), ["8"]);
    assert_eq!(rows("SELECT id FROM events ORDER BY user_id DESC, id LIMIT 3"), ["7", "5", "6"]);
    assert_eq!(rows("SELECT count(*) FROM (SELECT id FROM events LIMIT 5)"), ["5"]);
}

#[test]
fn select_star_and_hidden_columns() {
    let (schema, b) = run_sql("SELECT * FROM events WHERE id = 1").expect("query");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "ts", "user_id", "event_type", "url", "value"]);
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(one("SELECT _tp_time FROM events WHERE id = 1"), "2024-01-01 00:00:01.000");
    assert_eq!(
        rows("SELECT e.id, e.* FROM events AS e WHERE id = 2"),
        ["2 2 2024-01-01 00:00:30.500 10 click /home 2.5"]
    );
}

#[test]
fn aggregates() {
    assert_eq!(one("SELECT count(*) FROM events"), "8");
    assert_eq!(one("SELECT count() FROM events WHERE id > 2"), "6");
    assert_eq!(one("SELECT count(value) FROM events"), "7");
    assert_eq!(one("SELECT sum(value) FROM events"), "137.49");
    assert_eq!(one("SELECT round(avg(value), 4) FROM events"), "19.6414");
    assert_eq!(one("SELECT min(value), max(value) FROM events").as_str(), "0.5 99.99");
    assert_eq!(one("SELECT min(ts), max(url) FROM events"), "2024-01-01 00:00:00.000 /search?q=a");
    assert_eq!(one("SELECT sum(user_id), sum(id) - 1 FROM events"), "170 35");
    assert_eq!(one("SELECT count(DISTINCT user_id), uniq(url), uniq_exact(event_type) FROM events"), "4 3 3");
    assert_eq!(one("SELECT count(DISTINCT user_id, event_type) FROM events"), "8");
    assert_eq!(one("SELECT any(id) FROM events WHERE id > 7"), "8");
    assert_eq!(one("SELECT median(value), quantile_exact(0.5)(value) FROM events"), "3 3");
    assert_eq!(one("SELECT quantile(0.5)(value), quantile(value, 0.5) FROM events"), "3 3");
    assert_eq!(one("SELECT quantileExactInclusive(0.99)(value) FROM events"), "95.1906");
    assert_eq!(one("SELECT quantiles(0, 0.5, 1)(value) FROM events"), "[0.5,3,99.99]");
    assert_eq!(one("SELECT arg_max(id, value), arg_min(url, value) FROM events"), "4 /search?q=a");
    // group_array keeps input order, and partitions run in parallel: order the input first.
    assert_eq!(one("SELECT group_array(id) FROM (SELECT id FROM events WHERE user_id = 10 ORDER BY id)"), "[1,2,8]");
    assert_eq!(one("SELECT count_if(value > 5), sum_if(value, event_type = 'view') FROM events"), "3 14.5");
    assert_eq!(one("SELECT round(stddev_pop(id), 4), var_samp(id) FROM events"), "2.2913 6");
    // Empty input: one row, ClickHouse defaults.
    assert_eq!(one("SELECT count(*), sum(id), count(DISTINCT id) FROM events WHERE id > 100"), "0 0 0");
    assert_eq!(one("SELECT sum(value) FROM events WHERE id > 100"), "NULL");
    assert_eq!(
        rows("SELECT event_type, count(*) FROM events WHERE id > 100 GROUP BY event_type"),
        Vec::<String>::new()
    );
}

#[test]
fn group_by_forms() {
    let q3 = ["click 2 3 1.5", "purchase 2 119.99 59.995", "view 4 14.5 4.833333"];
    assert_eq!(
        rows(
            "SELECT event_type, count(*) AS n, sum(value) AS total, avg(value) AS mean FROM events GROUP BY event_type ORDER BY event_type"
        ),
        q3
    );
    assert_eq!(rows("SELECT event_type, count(*) AS n, sum(value), avg(value) FROM events GROUP BY 1 ORDER BY 1"), q3);
    assert_eq!(
        rows("SELECT user_id, count(*) AS n FROM events GROUP BY user_id ORDER BY n DESC, user_id LIMIT 2"),
        ["10 3", "20 2"]
    );
    assert_eq!(
        rows(
            "SELECT to_start_of_minute(ts) AS minute, count(*) AS n FROM events GROUP BY minute ORDER BY minute LIMIT 3"
        ),
        ["2024-01-01 00:00:00.000 2", "2024-01-01 00:01:00.000 1", "2024-01-01 00:02:00.000 1"]
    );
    assert_eq!(one("SELECT count(*) FROM (SELECT to_start_of_minute(ts) AS m FROM events GROUP BY m)"), "7");
    assert_eq!(
        rows("SELECT to_date(ts) AS d, count(*) FROM events GROUP BY to_date(ts) ORDER BY d"),
        ["2024-01-01 5", "2024-01-02 2", "2024-01-03 1"]
    );
    assert_eq!(
        rows("SELECT url, count(*) FROM events GROUP BY url ORDER BY url NULLS FIRST"),
        ["NULL 1", "/cart 3", "/home 3", "/search?q=a 1"]
    );
    assert_eq!(
        rows(
            "SELECT user_id, event_type, count(*) AS c FROM events GROUP BY user_id, event_type HAVING c > 1 ORDER BY user_id"
        ),
        ["10 view 1"; 0]
            .iter()
            .map(|s| s.to_string())
            .chain(["20 view 1"; 0].iter().map(|s| s.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rows("SELECT user_id, count(*) AS c FROM events GROUP BY user_id HAVING count(*) >= 2 ORDER BY user_id"),
        ["10 3", "20 2", "30 2"]
    );
    assert_eq!(rows("SELECT user_id % 20 AS k, sum(id) FROM events GROUP BY k ORDER BY k"), ["0 14", "10 22"]);
    assert_eq!(
        rows("SELECT event_type FROM events GROUP BY event_type ORDER BY count(*) DESC, event_type LIMIT 1"),
        ["view"]
    );
    assert_eq!(
        rows("SELECT event_type, max(id) FROM events GROUP BY ALL ORDER BY 2"),
        ["click 6", "view 7", "purchase 8"]
    );
    assert_eq!(rows("SELECT DISTINCT event_type FROM events ORDER BY event_type"), ["click", "purchase", "view"]);
    assert_eq!(rows("SELECT DISTINCT user_id % 20 AS r FROM events ORDER BY r"), ["0", "10"]);
    assert_eq!(
        rows(
            "SELECT event_type, quantileExactInclusive(0.5)(value) AS p50, quantileExactInclusive(0.99)(value) AS p99 FROM events GROUP BY event_type ORDER BY event_type"
        ),
        ["click 1.5 2.48", "purchase 59.995 99.1901", "view 3 9.86"]
    );
}

#[test]
fn subqueries_ctes_and_unions() {
    assert_eq!(one("SELECT max(n) FROM (SELECT user_id, count(*) AS n FROM events GROUP BY user_id) AS t"), "3");
    assert_eq!(one("WITH t AS (SELECT id FROM events WHERE id > 5) SELECT count(*) FROM t"), "3");
    assert_eq!(one("WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT y FROM b"), "2");
    assert_eq!(
        rows("SELECT id FROM events WHERE user_id IN (SELECT user_id FROM users WHERE country = 'US') ORDER BY id"),
        ["3", "4"]
    );
    assert_eq!(one("SELECT count(*) FROM events WHERE user_id NOT IN (SELECT user_id FROM users)"), "1");
    assert_eq!(one("SELECT (SELECT max(id) FROM events) + 1"), "9");
    assert_eq!(rows("SELECT 1 AS a UNION ALL SELECT 2 ORDER BY a"), ["1", "2"]);
    assert_eq!(
        // UNION ALL branches run in parallel: without ORDER BY the order is not defined.
        rows("SELECT id FROM events WHERE id < 2 UNION ALL SELECT user_id FROM users WHERE user_id > 40 ORDER BY 1"),
        ["1", "50"]
    );
    assert_eq!(rows("SELECT 1 AS a UNION DISTINCT SELECT 1"), ["1"]);
    assert_eq!(err("SELECT 'x' AS a UNION ALL SELECT 2.5").category(), ErrorCategory::Semantic);
    assert_eq!(one("SELECT count(*) FROM (SELECT id FROM events UNION ALL SELECT id FROM events)"), "16");
    assert_eq!(rows("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) ORDER BY 1 DESC"), ["2 b", "1 a"]);
    assert_eq!(rows("SELECT number FROM numbers(3)"), ["0", "1", "2"]);
    assert_eq!(one("SELECT sum(number) FROM numbers(100000)"), "4999950000");
}

#[test]
fn joins() {
    assert_eq!(one("SELECT count(*) FROM events AS e INNER JOIN users AS u ON e.user_id = u.user_id"), "7");
    assert_eq!(one("SELECT count(*) FROM events e JOIN users u ON e.user_id = u.user_id AND u.country = 'DE'"), "3");
    assert_eq!(
        rows(
            "SELECT e.id, u.name FROM events e LEFT JOIN users u ON e.user_id = u.user_id WHERE e.id >= 6 ORDER BY e.id"
        ),
        ["6 cy", "7 NULL", "8 ann"]
    );
    assert_eq!(one("SELECT count(*) FROM events e RIGHT JOIN users u ON e.user_id = u.user_id"), "8");
    assert_eq!(
        rows("SELECT u.name FROM events e RIGHT JOIN users u ON e.user_id = u.user_id WHERE e.id IS NULL"),
        ["dee"]
    );
    assert_eq!(one("SELECT count(*) FROM events e FULL OUTER JOIN users u ON e.user_id = u.user_id"), "9");
    assert_eq!(one("SELECT count(*) FROM events CROSS JOIN users"), "32");
    assert_eq!(one("SELECT count(*) FROM events, users WHERE events.user_id = users.user_id"), "7");
    assert_eq!(
        rows(
            "SELECT u.name, count(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id GROUP BY u.name ORDER BY n DESC, u.name"
        ),
        ["ann 3", "bob 2", "cy 2"]
    );
    assert_eq!(one("SELECT count(*) FROM events JOIN users USING (user_id)"), "7");
    assert_eq!(one("SELECT count(*) FROM events e JOIN users u ON e.user_id = u.user_id AND e.value > u.user_id"), "2");
    assert_eq!(one("SELECT count(*) FROM events e JOIN users u ON e.id < u.user_id / 10"), "7");
    assert_eq!(one("SELECT count(*) FROM events e LEFT JOIN users u ON e.user_id = u.user_id AND u.name = 'zzz'"), "8");
    assert_eq!(
        one("SELECT count(*) FROM (SELECT * FROM users) a JOIN (SELECT * FROM users) b ON a.user_id = b.user_id"),
        "4"
    );
}

#[test]
fn expressions_in_queries() {
    assert_eq!(
        rows(
            "SELECT id, CASE WHEN value > 10 THEN 'big' WHEN value > 2 THEN 'mid' ELSE 'small' END FROM events WHERE id <= 4 ORDER BY id"
        ),
        ["1 small", "2 mid", "3 mid", "4 big"]
    );
    assert_eq!(
        rows("SELECT CASE event_type WHEN 'view' THEN 1 ELSE 0 END AS v FROM events WHERE id < 3 ORDER BY id"),
        ["1", "0"]
    );
    assert_eq!(one("SELECT sum(if(event_type = 'view', 1, 0)) FROM events"), "4");
    assert_eq!(one("SELECT coalesce(url, 'none') FROM events WHERE id = 5"), "none");
    assert_eq!(one("SELECT value::int32 + 1 FROM events WHERE id = 4"), "100");
    assert_eq!(one("SELECT CAST(id AS string) || '!' FROM events WHERE id = 4"), "4!");
    assert_eq!(
        one("SELECT to_type_name(value), to_type_name(event_type), to_type_name(id) FROM events LIMIT 1"),
        "nullable(float64) low_cardinality(string) uint64"
    );
    assert_eq!(one("SELECT count(*) FROM events WHERE ts >= '2024-01-02 00:00:00' AND ts < '2024-01-03'"), "2");
    assert_eq!(one("SELECT count(*) FROM events WHERE ts > to_datetime('2024-01-02 12:00:00')"), "2");
    assert_eq!(one("SELECT count(*) FROM events WHERE to_date(ts) = '2024-01-01'"), "5");
    assert_eq!(one("SELECT count(*) FROM events WHERE ts + INTERVAL 1 DAY > '2024-01-03 12:00:00'"), "2");
    assert_eq!(
        one("SELECT count(*) FROM events WHERE ts BETWEEN '2024-01-01 00:00:30' AND '2024-01-01 00:02:00'"),
        "3"
    );
}

#[test]
fn explain_and_pushdown() {
    let c = super::catalog();
    let sql = "SELECT count(*) FROM events WHERE ts >= '2024-01-02' AND id IN (6, 7) AND event_type = 'view'";
    let Ok(Statement::Query(q)) = crate::parse_statement(sql) else { panic!("parse") };
    let opts = QueryOptions { plain_stream_is_table: true, ..Default::default() };
    let plan = crate::plan_query(&q, &c, &opts).expect("plan");
    let text = plan.explain();
    assert!(text.contains("HashAggregate"), "{text}");
    assert!(text.contains("pushed_filters=[ts GtEq '2024-01-02 00:00:00.000', id In"), "{text}");
    assert!(text.contains("event_type Eq 'view'"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("  ")), "{text}");
    let Ok(Statement::Query(q)) = crate::parse_statement("SELECT count(*) FROM events") else { panic!("parse") };
    let text = crate::plan_query(&q, &c, &opts).expect("plan").explain();
    assert!(text.contains("RowCountFromMetadata"), "{text}");
    assert_eq!(one("SELECT count(*) FROM events WHERE id = 7"), "1");
}

fn category(sql: &str) -> ErrorCategory {
    err(sql).category()
}

#[test]
fn errors_have_categories_and_positions() {
    let e = err("SELECT nope FROM events");
    assert!(matches!(&e, Error::UnknownColumn { name, stream: Some(s), .. } if name == "nope" && s == "events"), "{e}");
    assert_eq!(e.location(), Some(Location::new(1, 8)));
    let e = err("SELECT id,\n  lenght(url) FROM events");
    assert!(matches!(&e, Error::UnknownFunction { suggestion: Some(s), .. } if s == "length"), "{e:?}");
    assert_eq!(e.to_string(), "unknown function `lenght`, did you mean `length`?");
    assert_eq!(e.location(), Some(Location::new(2, 3)));
    assert_eq!(category("SELECT * FROM nosuch"), ErrorCategory::UndefinedStream);
    assert_eq!(category("SELECT lower(id) FROM events"), ErrorCategory::Semantic);
    assert_eq!(err("SELECT lower(id) FROM events").location(), Some(Location::new(1, 8)));
    assert_eq!(category("SELECT id + 'a' FROM events"), ErrorCategory::Semantic);
    assert_eq!(category("SELECT 1 % 0"), ErrorCategory::DataException);
    assert_eq!(category("SELECT int_div(id, 0) FROM events"), ErrorCategory::DataException);
    assert_eq!(one("SELECT 1 / 0, -1 / 0, int_div_or_zero(5, 0)"), "inf -inf 0");
    assert_eq!(category("SELECT CAST('abc' AS int32)"), ErrorCategory::DataException);
    assert_eq!(category("SELECT id, count(*) FROM events"), ErrorCategory::Semantic);
    assert_eq!(category("SELECT count(*) FROM events WHERE sum(id) > 1"), ErrorCategory::Semantic);
    assert_eq!(
        category("SELECT id FROM events e JOIN users u ON e.user_id = u.user_id WHERE user_id = 1"),
        ErrorCategory::Semantic
    );
    assert_eq!(category("SELECT row_number() OVER () FROM events"), ErrorCategory::NotSupported);
    assert_eq!(category("SELECT array_join([1, 2])"), ErrorCategory::NotSupported);
    assert_eq!(category("SELECT 1 UNION ALL SELECT 1, 2"), ErrorCategory::Semantic);
    assert_eq!(category("SELECT id FROM events ORDER BY 9"), ErrorCategory::Semantic);
    assert_eq!(category("SELECT toDateTime('not a time')"), ErrorCategory::DataException);
    assert_eq!(category("SELECT quantile(2)(value) FROM events"), ErrorCategory::Semantic);
    assert_eq!(category("SELECT (SELECT id FROM events)"), ErrorCategory::DataException);
    assert_eq!(category("SELECT replace_regex('a', '(', 'b')"), ErrorCategory::DataException);
}

fn plan_plain(sql: &str, plain_is_table: bool) -> crate::Result<crate::QueryPlan> {
    let Statement::Query(q) = crate::parse_statement(sql)? else { panic!("query") };
    let opts = QueryOptions { plain_stream_is_table: plain_is_table, ..Default::default() };
    crate::plan_query(&q, &super::catalog(), &opts)
}

#[test]
fn streaming_forms_are_not_silently_historical() {
    // A bare stream name is a streaming read: never planned as a historical scan.
    let e = plan_plain("SELECT * FROM events", false).expect_err("streaming");
    assert_eq!(e.category(), ErrorCategory::NotSupported);
    assert!(e.to_string().contains("table(events)"), "{e}");
    assert!(plan_plain("SELECT * FROM table(events)", false).is_ok());
    let e = plan_plain("SELECT count(*) FROM table(events) EMIT PERIODIC 1s", false).expect_err("emit");
    assert!(e.to_string().contains("EMIT applies to streaming queries"), "{e}");
    let e = plan_plain("SELECT window_start, count(*) FROM tumble(events, ts, 5s) GROUP BY window_start", false)
        .expect_err("tumble over a stream");
    assert_eq!(e.category(), ErrorCategory::NotSupported);
    // The in-memory catalog cannot follow a stream.
    let Statement::Query(q) = crate::parse_statement("SELECT * FROM events").expect("parse") else { panic!() };
    let planned = crate::plan(&q, &super::catalog(), &QueryOptions::default()).expect("plan");
    let crate::Planned::Streaming(p) = planned else { panic!("streaming plan") };
    let e = p.start(None, &crate::ExecContext::default()).expect_err("no subscribe");
    assert_eq!(e.category(), ErrorCategory::NotSupported);
}

#[test]
fn cancellation_and_memory_limit() {
    let plan = plan_plain("SELECT number FROM numbers(1000000)", true).expect("plan");
    let cancel = Arc::new(AtomicBool::new(true));
    let ctx = ExecContext { cancel, ..Default::default() };
    assert!(matches!(
        plan.execute(&ctx).map(|mut s| s.next()),
        Err(Error::Cancelled) | Ok(Some(Err(Error::Cancelled)))
    ));
    let ctx = ExecContext { memory_limit_bytes: 10_000, ..Default::default() };
    for sql in [
        "SELECT number % 100000 AS k, count(*) FROM numbers(1000000) GROUP BY k",
        "SELECT number FROM numbers(1000000) ORDER BY number DESC",
        "SELECT count(DISTINCT number) FROM numbers(1000000)",
    ] {
        let plan = plan_plain(sql, true).expect("plan");
        let r: crate::Result<Vec<_>> = plan.execute(&ctx).and_then(|s| s.collect());
        assert!(matches!(r, Err(Error::ResourcesExhausted { .. })), "{sql}: {r:?}");
    }
    let plan = plan_plain("SELECT number FROM numbers(100) SETTINGS max_threads = 1", true).expect("plan");
    assert_eq!(plan.max_threads, Some(1));
}

#[test]
fn parallel_results_equal_serial() {
    let c = super::catalog();
    for sql in [
        "SELECT event_type, count(*), sum(value) FROM events GROUP BY event_type ORDER BY event_type",
        "SELECT user_id, count(DISTINCT url) FROM events GROUP BY user_id ORDER BY user_id",
        "SELECT id FROM events ORDER BY value DESC, id LIMIT 3",
        "SELECT e.id, u.name FROM events e LEFT JOIN users u ON e.user_id = u.user_id ORDER BY e.id",
    ] {
        // Compare values, not physical layout: a dictionary's values may come in another order.
        let fmt = |threads| {
            let (_, batches) = super::run_on(&c, sql, threads).expect(sql);
            let mut out = Vec::new();
            for b in &batches {
                for i in 0..b.num_rows() {
                    out.push(b.columns().iter().map(|c| super::cell(c.as_ref(), i)).collect::<Vec<_>>().join(" "));
                }
            }
            out
        };
        assert_eq!(fmt(1), fmt(4), "{sql}");
    }
}

/// Batches made one at a time, each with its own dictionary (same length, another order), the
/// previous one freed before the next is made: as Parquet row groups arrive from storage. Group
/// keys must follow each batch's dictionary even when the allocator hands the next dictionary
/// the freed one's address.
#[derive(Debug)]
struct FreshDictionaries;

impl crate::catalog::Table for FreshDictionaries {
    fn name(&self) -> &str {
        "d"
    }
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(
                "k",
                arrow::datatypes::DataType::Dictionary(
                    Box::new(arrow::datatypes::DataType::Int32),
                    Box::new(arrow::datatypes::DataType::Utf8),
                ),
                false,
            ),
            arrow::datatypes::Field::new("v", arrow::datatypes::DataType::Int64, false),
        ]))
    }
    fn star_columns(&self) -> Vec<String> {
        vec!["k".into(), "v".into()]
    }
    fn scan(&self, req: &crate::catalog::ScanRequest) -> crate::error::Result<Vec<crate::catalog::Partition>> {
        let schema = self.schema();
        let cols = req.columns.clone();
        let part: crate::catalog::Partition = Box::new(move || {
            let it = (0..200u32).map(move |b| {
                // Dictionary values rotated by `b`: key i means value (i + b) % 8.
                let values: Vec<String> = (0..8u32).map(|i| format!("v{}", (i + b) % 8)).collect();
                let keys: Vec<i32> = (0..64).map(|r| r % 8).collect();
                let dict = arrow::array::DictionaryArray::<arrow::datatypes::Int32Type>::try_new(
                    arrow::array::Int32Array::from(keys),
                    Arc::new(arrow::array::StringArray::from(values)),
                )
                .expect("dictionary");
                let full = arrow::record_batch::RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(dict), Arc::new(arrow::array::Int64Array::from(vec![1i64; 64]))],
                )
                .expect("batch");
                let idx: Vec<usize> = cols.iter().map(|c| full.schema().index_of(c).expect("column")).collect();
                Ok(full.project(&idx).expect("project"))
            });
            Ok(Box::new(it) as Box<dyn Iterator<Item = crate::error::Result<arrow::record_batch::RecordBatch>> + Send>)
        });
        Ok(vec![part])
    }
}

#[test]
fn group_by_follows_each_batch_dictionary() {
    let c = crate::memtable::MemCatalog::default();
    c.register(Arc::new(FreshDictionaries));
    let (_, batches) = super::run_on(&c, "SELECT k, sum(v) FROM table(d) GROUP BY k ORDER BY k", 1).expect("query");
    let mut got = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            got.push(format!("{} {}", super::cell(b.column(0).as_ref(), i), super::cell(b.column(1).as_ref(), i)));
        }
    }
    // Every value appears 8 times per batch, 200 batches.
    let want: Vec<String> = (0..8).map(|i| format!("v{i} 1600")).collect();
    assert_eq!(got, want);
}
