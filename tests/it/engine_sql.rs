//! SQL statements on the engine: DDL, SHOW, DESCRIBE, errors. (SELECT and INSERT ... VALUES are
//! covered by the SQL logic tests in `tests/slt/`.)

use sluice::arrow::array::{Array, StringArray};
use sluice::{Database, Error, Output};

fn rows(db: &Database, sql: &str) -> Vec<Vec<String>> {
    let r = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in r {
        let b = b.expect("batch");
        for i in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| sluice::text::format_value(c, i).unwrap_or_default()).collect());
        }
    }
    out
}

#[test]
fn create_show_describe_drop() {
    let db = Database::in_memory();
    let out = db
        .execute(
            "CREATE STREAM IF NOT EXISTS events (id uint64, kind low_cardinality(string) COMMENT 'what', \
             value nullable(float64), ts datetime64(3, 'UTC')) ORDER BY (kind, ts) \
             SETTINGS shards = 2, replication_factor = 3, logstore_codec = 'lz4', ack = 'local', event_time_column = 'ts'",
        )
        .expect("create");
    let Output::Command { tag, notices } = &out[0] else { panic!("command") };
    assert_eq!(tag, "CREATE STREAM");
    assert!(notices.iter().any(|n| n.contains("replication_factor")), "{notices:?}");
    let def = db.stream_def("events").expect("def");
    assert_eq!(def.settings.shards, 2);
    assert_eq!(def.sort_key, vec!["kind", "ts"]);
    assert_eq!(def.settings.durability, sluice::Durability::Os);
    assert_eq!(def.settings.event_time_column.as_deref(), Some("ts"));
    // IF NOT EXISTS is quiet, a second plain CREATE is an error.
    db.execute("CREATE STREAM IF NOT EXISTS events (id uint64)").expect("if not exists");
    assert!(matches!(db.execute("CREATE STREAM events (id uint64)"), Err(Error::StreamExists { .. })));
    assert_eq!(rows(&db, "SHOW STREAMS"), vec![vec!["events".to_string()]]);
    let d = rows(&db, "DESCRIBE events");
    assert_eq!(d[0][0..2], ["id".to_string(), "uint64".to_string()]);
    assert_eq!(d[1][4], "what");
    assert!(d.iter().any(|r| r[0] == "_tp_time"), "{d:?}");
    let create = rows(&db, "SHOW CREATE STREAM events");
    assert!(create[0][0].contains("CREATE STREAM"), "{create:?}");
    // Survives a reopen of the catalog: the definition round-trips.
    db.execute("DROP STREAM events").expect("drop");
    assert!(matches!(db.execute("DROP STREAM events"), Err(Error::StreamNotFound { .. })));
    db.execute("DROP STREAM IF EXISTS events").expect("drop if exists");
    assert!(rows(&db, "SHOW STREAMS").is_empty());
}

#[test]
fn bad_ddl_is_a_clear_error() {
    let db = Database::in_memory();
    let e = db.execute("CREATE STREAM s (a int32) SETTINGS shardz = 2").expect_err("unknown setting");
    assert!(e.to_string().contains("shardz"), "{e}");
    let e = db.execute("CREATE STREAM s (a int32) SETTINGS mode = 'versioned_kv'").expect_err("kv needs key");
    assert!(e.to_string().contains("PRIMARY KEY"), "{e}");
    let e = db.execute("SELEC 1").expect_err("syntax");
    assert!(matches!(e, Error::Sql(_)), "{e}");
    let e = db.execute("CREATE STREAM s (a int32, b int32) ORDER BY a + b").expect_err("two-column sort key");
    assert!(e.to_string().contains("ORDER BY"), "{e}");
    db.execute("CREATE STREAM s (a int32)").expect("create");
    let e = db.execute("SELECT * FROM s EMIT ON UPDATE").expect_err("EMIT needs an aggregation");
    assert!(e.to_string().contains("aggregation"), "{e}");
    let names: Vec<String> = db.streams().iter().map(|d| d.name.clone()).collect();
    assert_eq!(names, vec!["s".to_string()]);
    let _ = StringArray::from(vec!["x"]).len();
}

/// Historical queries over parts read decoded columns from the cache on repeats, with the
/// same answers as without a cache; merged-away parts leave it.
#[test]
fn repeated_queries_read_the_column_cache() {
    let run = |cache_bytes: usize| {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = sluice::Options { cache_bytes, merge: false, ..Default::default() };
        let db = Database::open(dir.path(), opts).expect("open");
        db.execute("CREATE STREAM t (k int64, s low_cardinality(string), v float64)").expect("create");
        for chunk in 0..4 {
            let values: Vec<String> =
                (0..500).map(|i| format!("({}, 's{}', {}.5)", chunk * 500 + i, i % 7, i % 13)).collect();
            db.execute(&format!("INSERT INTO t (k, s, v) VALUES {}", values.join(","))).expect("insert");
            db.flush("t").expect("flush");
        }
        let queries = [
            "SELECT s, count(*), sum(v) FROM table(t) GROUP BY s ORDER BY s",
            "SELECT count(*), max(k) FROM table(t) WHERE s = 's3'",
            "SELECT k, s, v FROM table(t) WHERE k = 1234",
            "SELECT sum(k) FROM table(t) WHERE v > 6",
        ];
        let mut answers = Vec::new();
        for _ in 0..3 {
            for q in queries {
                answers.push(rows(&db, q));
            }
        }
        let stats = db.column_cache_stats();
        (answers, stats, db, dir)
    };
    let (plain, off, _db0, _d0) = run(0);
    let (cached, on, db, _d1) = run(64 << 20);
    assert_eq!(plain, cached);
    assert_eq!((off.hits, off.entries), (0, 0));
    assert!(on.hits > 0 && on.entries > 0 && on.bytes > 0, "{on:?}");
    assert_eq!(cached[0][0], vec!["s0".to_string(), "288".into(), "1824".into()], "{:?}", cached[0]);
    // Merging the parts closes them: their columns leave the cache.
    db.compact("t").expect("compact");
    assert_eq!(rows(&db, "SELECT count(*) FROM table(t)"), vec![vec!["2000".to_string()]]);
    assert_eq!(db.column_cache_stats().entries, 0, "{:?}", db.column_cache_stats());
}
