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
        // The storage counters of /metrics saw the 4 appends and 4 flushes.
        let t = db.storage_totals();
        assert_eq!((t.rows_appended, t.flushes, t.flush_rows, t.parts, t.merges), (2000, 4, 2000, 4, 0), "{t:?}");
        assert!(t.part_bytes > 0 && t.wal_appends == 4 && t.wal_syncs >= 1, "{t:?}");
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

/// ALTER STREAM on disk: rows in parts, in the memtable and in the log before and after the
/// change read the right values, through flushes, merges and a reopen; SHOW CREATE shows the
/// altered definition.
#[test]
fn alter_stream_across_flushes_merges_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Database::open(dir.path(), sluice::Options { merge: false, ..Default::default() }).expect("open");
    let db = open();
    db.execute("CREATE STREAM m (host string, cpu float64, old int32) ORDER BY host").expect("create");
    db.execute("INSERT INTO m (host, cpu, old) VALUES ('a', 1, 10), ('b', 2, 20)").expect("insert");
    db.flush("m").expect("flush"); // a part with `old`
    db.execute("INSERT INTO m (host, cpu, old) VALUES ('c', 3, 30)").expect("insert"); // memtable + log
    db.execute("ALTER STREAM m ADD COLUMN mem uint64 DEFAULT 7, DROP COLUMN old, ADD COLUMN tag string")
        .expect("alter");
    db.execute("INSERT INTO m (host, cpu, mem, tag) VALUES ('d', 4, 8, 'x')").expect("insert");
    let want = vec![
        vec!["a".to_string(), "1".into(), "7".into(), "".into()],
        vec!["b".into(), "2".into(), "7".into(), "".into()],
        vec!["c".into(), "3".into(), "7".into(), "".into()],
        vec!["d".into(), "4".into(), "8".into(), "x".into()],
    ];
    let q = "SELECT host, cpu, mem, tag FROM table(m) ORDER BY host";
    assert_eq!(rows(&db, q), want);
    // The memtable mixes old and new batches: the flush writes them as one part of the new
    // columns; the old part and the new one cannot merge (different columns) but both read.
    db.flush("m").expect("flush");
    assert_eq!(rows(&db, q), want);
    db.compact("m").expect("compact");
    assert_eq!(rows(&db, q), want);
    db.execute("INSERT INTO m (host, cpu) VALUES ('e', 5)").expect("insert");
    db.close().expect("close");
    drop(db);
    // Reopen: the catalog has the new definition; the log replays the unflushed row.
    let db = open();
    let mut want = want;
    want.push(vec!["e".into(), "5".into(), "7".into(), "".into()]);
    assert_eq!(rows(&db, q), want);
    let create = rows(&db, "SHOW CREATE STREAM m").concat().join(" ");
    assert!(create.contains("mem uint64 DEFAULT 7") && !create.contains("old"), "{create}");
    assert!(matches!(db.execute("SELECT old FROM table(m)"), Err(Error::Sql(_)) | Err(Error::ColumnNotFound { .. })));
    db.execute("ALTER STREAM m MODIFY SETTING flush_threshold_count = 5, MODIFY TTL _tp_time + INTERVAL 1 DAY")
        .expect("alter settings");
    let create = rows(&db, "SHOW CREATE STREAM m").concat().join(" ");
    assert!(create.contains("flush_threshold_count = 5") && create.contains("TTL"), "{create}");
    assert_eq!(db.stream_def("m").expect("def").settings.flush_threshold_count, 5);
}

/// The log replays rows appended before a DROP COLUMN (their dropped values are ignored).
#[test]
fn alter_stream_drop_column_with_rows_only_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Database::open(dir.path(), sluice::Options { merge: false, ..Default::default() }).expect("open");
    let db = open();
    db.execute("CREATE STREAM s (k int64, gone string, v float64) SETTINGS flush_threshold_count = 1000000")
        .expect("create");
    db.execute("INSERT INTO s (k, gone, v) VALUES (1, 'x', 1.5)").expect("insert");
    db.execute("ALTER STREAM s DROP COLUMN gone").expect("alter");
    drop(db); // no flush: the row is only in the log
    let db = open();
    assert_eq!(rows(&db, "SELECT k, v FROM table(s)"), vec![vec!["1".to_string(), "1.5".into()]]);
    db.flush("s").expect("flush");
    assert_eq!(rows(&db, "SELECT * FROM table(s)"), vec![vec!["1".to_string(), "1.5".into()]]);
}

/// A TTL on a column other than `_tp_time` expires rows (in merges) and whole parts by that
/// column's values, not by their arrival time.
#[test]
fn ttl_on_another_column_expires_by_that_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path(), sluice::Options { merge: false, ..Default::default() }).expect("open");
    db.execute("CREATE STREAM t (id int64, at datetime64(3, 'UTC')) TTL at + INTERVAL 1 HOUR").expect("create");
    // Arrived now (recent _tp_time), but `at` is long past for ids 1 and 3.
    db.execute("INSERT INTO t (id, at) VALUES (1, '2000-01-01 00:00:00'), (2, '2999-01-01 00:00:00')").expect("insert");
    db.flush("t").expect("flush");
    db.execute("INSERT INTO t (id, at) VALUES (3, '2001-01-01 00:00:00')").expect("insert");
    db.flush("t").expect("flush"); // a part whose rows have all expired by `at`
    for id in [4, 5, 6] {
        db.execute(&format!("INSERT INTO t (id, at) VALUES ({id}, '2998-01-01 00:00:00')")).expect("insert");
        db.flush("t").expect("flush");
    }
    // Compaction drops the all-expired part whole and merges the other four (merges need 4),
    // dropping the expired row 1 from its part.
    db.compact("t").expect("compact");
    let ids: Vec<String> = rows(&db, "SELECT id FROM table(t) ORDER BY id").concat();
    assert_eq!(ids, ["2", "4", "5", "6"]);
}
