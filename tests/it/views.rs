//! Materialized views: INTO targets, implicit targets, chains, several views into one target,
//! DROP, restart from checkpoints (stateless and windowed), recovery policies, system.views.
//! Every wait is `Database::sync` (bounded), never a sleep.

use std::time::Duration;

use sluice::{Database, Options};

const WAIT: Duration = Duration::from_secs(10);

fn exec(db: &Database, sql: &str) {
    db.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn rows(db: &Database, sql: &str) -> Vec<Vec<String>> {
    let r = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in r {
        let b = b.expect("batch");
        for i in 0..b.num_rows() {
            out.push(
                b.columns().iter().map(|c| sluice::text::format_value(c, i).unwrap_or_else(|| "NULL".into())).collect(),
            );
        }
    }
    out.sort();
    out
}

fn col(db: &Database, sql: &str) -> Vec<String> {
    rows(db, sql).into_iter().map(|mut r| r.remove(0)).collect()
}

#[test]
fn view_into_target_and_implicit_target() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (id int64, name string)");
    exec(&db, "CREATE STREAM t (id int64, shout string, extra string DEFAULT 'x')");
    exec(&db, "CREATE MATERIALIZED VIEW v INTO t AS SELECT id, upper(name) AS shout FROM s WHERE id > 0");
    exec(&db, "CREATE MATERIALIZED VIEW mv AS SELECT id * 10 AS big FROM s");
    exec(&db, "INSERT INTO s (id, name) VALUES (1, 'a'), (-1, 'neg'), (2, 'b')");
    db.sync(WAIT).expect("sync");
    assert_eq!(rows(&db, "SELECT id, shout, extra FROM table(t)"), vec![vec!["1", "A", "x"], vec!["2", "B", "x"]]);
    assert_eq!(col(&db, "SELECT big FROM table(mv)"), vec!["-10", "10", "20"]);
    let v = rows(&db, "SELECT name, source, target, status FROM system.views");
    assert_eq!(v, vec![vec!["mv", "s", "mv", "running"], vec!["v", "s", "t", "running"]]);
    // Caught up: each has read the 3 rows of the source's one shard.
    let v = rows(&db, "SELECT name, position, lag FROM system.views");
    assert_eq!(v, vec![vec!["mv", "0:3", "0"], vec!["v", "0:3", "0"]]);
    // Dependent streams cannot be dropped; DROP VIEW removes the implicit target.
    let e = db.execute("DROP STREAM s").expect_err("used by views");
    assert!(e.to_string().contains("materialized view"), "{e}");
    let e = db.execute("DROP STREAM mv").expect_err("implicit target");
    assert!(e.to_string().contains("DROP VIEW"), "{e}");
    exec(&db, "DROP VIEW mv");
    assert!(db.stream_def("mv").is_err(), "implicit target dropped");
    exec(&db, "DROP VIEW IF EXISTS mv");
    let e = db.execute("DROP VIEW mv").expect_err("gone");
    assert!(e.to_string().contains("does not exist"), "{e}");
    exec(&db, "DROP VIEW v");
    exec(&db, "DROP STREAM s");
    assert_eq!(col(&db, "SELECT count() FROM table(t)"), vec!["2"], "INTO target keeps its rows");
}

#[test]
fn views_chain_and_share_a_target() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM raw (v int64)");
    exec(&db, "CREATE STREAM mid (v int64)");
    exec(&db, "CREATE STREAM out (v int64, src string)");
    exec(&db, "CREATE MATERIALIZED VIEW a INTO mid AS SELECT v + 1 AS v FROM raw");
    exec(&db, "CREATE MATERIALIZED VIEW b INTO out AS SELECT v * 2 AS v, 'b' AS src FROM mid");
    exec(&db, "CREATE MATERIALIZED VIEW c INTO out AS SELECT v, 'c' AS src FROM raw");
    exec(&db, "INSERT INTO raw (v) VALUES (1), (2)");
    db.sync(WAIT).expect("sync waits for the whole chain");
    assert_eq!(
        rows(&db, "SELECT src, v FROM table(out)"),
        vec![vec!["b", "4"], vec!["b", "6"], vec!["c", "1"], vec!["c", "2"]]
    );
}

#[test]
fn bad_views_are_refused() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (id int64)");
    exec(&db, "CREATE STREAM t (other int64)");
    for (sql, want) in [
        ("CREATE MATERIALIZED VIEW v INTO t AS SELECT id FROM s", "not a column of target"),
        ("CREATE MATERIALIZED VIEW v INTO t AS SELECT now() AS other FROM s", "cannot be stored"),
        ("CREATE MATERIALIZED VIEW v INTO nope AS SELECT id FROM s", "does not exist"),
        ("CREATE MATERIALIZED VIEW v AS SELECT id FROM table(s)", "streaming query"),
        ("CREATE MATERIALIZED VIEW s AS SELECT id FROM s", "already exists"),
        ("CREATE MATERIALIZED VIEW v INTO s AS SELECT id FROM s", "the stream it reads"),
        ("CREATE VIEW v AS SELECT id FROM s", "non-materialized"),
        ("CREATE MATERIALIZED VIEW v AS SELECT id FROM s SETTINGS recovery_policy = 'maybe'", "recovery_policy"),
        ("CREATE MATERIALIZED VIEW v AS SELECT id FROM s SETTINGS checkpoint_interval = 0", "checkpoint_interval"),
    ] {
        let e = db.execute(sql).expect_err(sql);
        assert!(e.to_string().contains(want), "{sql}: {e}");
    }
    assert!(db.views().is_empty());
    assert!(db.stream_def("v").is_err(), "a refused view leaves no stream behind");
    exec(&db, "CREATE MATERIALIZED VIEW v AS SELECT id FROM s");
    exec(&db, "CREATE MATERIALIZED VIEW IF NOT EXISTS v AS SELECT id FROM s");
    let e = db.execute("CREATE MATERIALIZED VIEW v AS SELECT id FROM s").expect_err("exists");
    assert!(e.to_string().contains("already exists"), "{e}");
}

#[test]
fn recovery_policy_strict_stops_best_effort_skips() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (x string)");
    exec(&db, "CREATE MATERIALIZED VIEW strict AS SELECT CAST(x AS int64) AS n FROM s");
    exec(
        &db,
        "CREATE MATERIALIZED VIEW lenient AS SELECT CAST(x AS int64) AS n FROM s SETTINGS recovery_policy = 'best_effort'",
    );
    exec(&db, "INSERT INTO s (x) VALUES ('1')");
    db.sync(WAIT).expect("sync");
    exec(&db, "INSERT INTO s (x) VALUES ('oops')");
    exec(&db, "INSERT INTO s (x) VALUES ('3'), ('4')");
    exec(&db, "INSERT INTO s (x) VALUES ('5'), ('bad'), ('7')");
    db.sync(WAIT).expect("sync");
    // Only the bad rows are skipped, also inside a batch with good ones.
    assert_eq!(col(&db, "SELECT n FROM table(lenient)"), vec!["1", "3", "4", "5", "7"]);
    assert_eq!(col(&db, "SELECT n FROM table(strict)"), vec!["1"]);
    let v = rows(&db, "SELECT name, status, skipped_rows, error IS NULL FROM system.views");
    assert_eq!(v[0], vec!["lenient", "running", "2", "true"]);
    assert_eq!(v[1][..3], ["strict".to_string(), "failed".to_string(), "0".to_string()]);
    assert_eq!(v[1][3], "false", "the error is shown");
}

#[test]
fn views_resume_after_restart_without_losing_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(&db, "CREATE STREAM s (id int64, ts datetime64(3, 'UTC'))");
        exec(&db, "CREATE MATERIALIZED VIEW copy AS SELECT id FROM s");
        exec(
            &db,
            "CREATE MATERIALIZED VIEW win AS SELECT window_start, count() AS c FROM tumble(s, ts, 10s) GROUP BY window_start",
        );
        exec(&db, "INSERT INTO s (id, ts) VALUES (1, '2024-01-01 00:00:01'), (2, '2024-01-01 00:00:02')");
        db.sync(WAIT).expect("sync");
        exec(&db, "INSERT INTO s (id, ts) VALUES (3, '2024-01-01 00:00:11')"); // closes [0, 10)
        db.sync(WAIT).expect("sync");
        exec(&db, "INSERT INTO s (id, ts) VALUES (4, '2024-01-01 00:00:12')");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    // Rows appended while no view runs are picked up after the restart.
    {
        let db = Database::open(dir.path(), Options::default()).expect("reopen");
        db.sync(WAIT).expect("sync");
        exec(&db, "INSERT INTO s (id, ts) VALUES (5, '2024-01-01 00:00:25')"); // closes [10, 20)
        db.sync(WAIT).expect("sync");
        let ids = col(&db, "SELECT DISTINCT id FROM table(copy)");
        assert_eq!(ids, vec!["1", "2", "3", "4", "5"], "no input row missing");
        let w = rows(&db, "SELECT window_start, c FROM table(win)");
        assert_eq!(
            w,
            vec![vec!["2024-01-01 00:00:00.000", "2"], vec!["2024-01-01 00:00:10.000", "2"]],
            "the open window was rebuilt, the closed one not emitted again"
        );
        let v = db.views();
        assert!(v.iter().all(|v| v.status == "running"), "{v:?}");
    }
    // Dropping the last handle without close() also resumes (rows replayed at least once).
    {
        let db = Database::open(dir.path(), Options::default()).expect("reopen");
        exec(&db, "INSERT INTO s (id, ts) VALUES (6, '2024-01-01 00:00:26')");
        db.sync(WAIT).expect("sync");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    db.sync(WAIT).expect("sync");
    let ids = col(&db, "SELECT DISTINCT id FROM table(copy)");
    assert_eq!(ids, vec!["1", "2", "3", "4", "5", "6"]);
}

#[test]
fn global_aggregation_views_resume_from_saved_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(&db, "CREATE STREAM s (k string, v int64)");
        exec(
            &db,
            "CREATE MATERIALIZED VIEW agg AS SELECT k, count() AS c, sum(v) AS t, max(v) AS m FROM s GROUP BY k EMIT ON UPDATE",
        );
        exec(&db, "INSERT INTO s (k, v) VALUES ('a', 1), ('a', 2), ('b', 5)");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    db.sync(WAIT).expect("sync");
    exec(&db, "INSERT INTO s (k, v) VALUES ('a', 10)");
    db.sync(WAIT).expect("sync");
    // The state came back from the checkpoint: a's totals include the rows before the restart.
    let latest = rows(&db, "SELECT c, t, m FROM table(agg) WHERE k = 'a' ORDER BY c DESC LIMIT 1");
    assert_eq!(latest, vec![vec!["3", "13", "10"]]);
    // ... and nothing was replayed: the view read one row since the restart.
    let read = col(&db, "SELECT rows_in FROM system.queries WHERE kind = 'view agg'");
    assert_eq!(read, vec!["1"]);
}

#[test]
fn saved_state_covers_the_common_aggregates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = "CREATE MATERIALIZED VIEW agg AS SELECT k, count() AS c, sum(v) AS s, avg(v) AS a, min(v) AS lo, \
               max(name) AS hi, var_pop(v) AS var, quantile(0.5)(v) AS med, any(name) AS anyn, uniq(v) AS u, \
               count(DISTINCT name) AS dn, arg_max(name, v) AS top, group_array(v) AS vs FROM s GROUP BY k EMIT ON UPDATE";
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(&db, "CREATE STREAM s (k string, v int64, name string)");
        exec(&db, sql);
        exec(&db, "INSERT INTO s (k, v, name) VALUES ('a', 1, 'x'), ('a', 3, 'z'), ('b', 5, 'y')");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    exec(&db, "INSERT INTO s (k, v, name) VALUES ('a', 5, 'x')");
    db.sync(WAIT).expect("sync");
    let latest = rows(
        &db,
        "SELECT c, s, a, lo, hi, var, med, anyn, u, dn FROM table(agg) WHERE k = 'a' ORDER BY c DESC LIMIT 1",
    );
    assert_eq!(latest, vec![vec!["3", "9", "3", "1", "z", "2.6666666666666665", "3", "x", "3", "2"]]);
    assert_eq!(col(&db, "SELECT rows_in FROM system.queries WHERE kind = 'view agg'"), vec!["1"], "no replay");
}

#[test]
fn saved_state_of_a_changelog_aggregation_keeps_its_multisets() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(&db, "CREATE STREAM m (item string, qty int64) SETTINGS mode = 'changelog'");
        exec(&db, "CREATE MATERIALIZED VIEW hi AS SELECT max(qty) AS mx, count() AS n FROM m EMIT ON UPDATE");
        exec(&db, "INSERT INTO m (item, qty) VALUES ('a', 5), ('b', 9), ('c', 9)");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    // Take back both 9s: the max falls to 5, known only from the saved multiset.
    exec(&db, "INSERT INTO m (item, qty, _tp_delta) VALUES ('b', 9, -1), ('c', 9, -1)");
    db.sync(WAIT).expect("sync");
    assert_eq!(rows(&db, "SELECT mx, n FROM table(hi) ORDER BY n ASC LIMIT 1"), vec![vec!["5", "1"]]);
    assert_eq!(col(&db, "SELECT rows_in FROM system.queries WHERE kind = 'view hi'"), vec!["2"], "no replay");
}

#[test]
fn views_over_kv_streams_and_partitions_resume_from_saved_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(
            &db,
            "CREATE STREAM acct (id string, region string, bal int64) PRIMARY KEY id SETTINGS mode = 'versioned_kv'",
        );
        exec(
            &db,
            "CREATE MATERIALIZED VIEW byreg AS SELECT region, count() AS n, sum(bal) AS s FROM acct GROUP BY region EMIT ON UPDATE",
        );
        exec(&db, "CREATE STREAM ev (dev string, v int64)");
        exec(
            &db,
            "CREATE MATERIALIZED VIEW perdev AS SELECT dev, sum(v) AS t FROM ev PARTITION BY dev GROUP BY dev EMIT ON UPDATE",
        );
        exec(&db, "INSERT INTO acct (id, region, bal) VALUES ('a', 'eu', 10), ('b', 'eu', 20)");
        exec(&db, "INSERT INTO ev (dev, v) VALUES ('x', 1), ('y', 2), ('x', 3)");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    // b moves to us: its old row (known only from the saved latest rows) is retracted from eu.
    exec(&db, "INSERT INTO acct (id, region, bal) VALUES ('b', 'us', 5)");
    exec(&db, "INSERT INTO ev (dev, v) VALUES ('x', 10)");
    db.sync(WAIT).expect("sync");
    assert_eq!(
        rows(&db, "SELECT n, s FROM table(byreg) WHERE region = 'eu' ORDER BY n ASC LIMIT 1"),
        vec![vec!["1", "10"]]
    );
    assert_eq!(rows(&db, "SELECT n, s FROM table(byreg) WHERE region = 'us'"), vec![vec!["1", "5"]]);
    assert_eq!(rows(&db, "SELECT t FROM table(perdev) WHERE dev = 'x' ORDER BY t DESC LIMIT 1"), vec![vec!["14"]]);
    let read = rows(&db, "SELECT kind, rows_in FROM system.queries ORDER BY kind");
    assert_eq!(read, vec![vec!["view byreg", "1"], vec!["view perdev", "1"]], "no replay");
}

#[test]
fn session_views_resume_from_their_oldest_open_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        exec(&db, "CREATE STREAM clicks (user string, ts datetime64(3, 'UTC'))");
        exec(
            &db,
            "CREATE MATERIALIZED VIEW sess AS SELECT user, window_start AS ws, count() AS n \
             FROM session(clicks, ts, 5s) GROUP BY user, window_start, window_end",
        );
        exec(
            &db,
            "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:00'), ('ann', '2024-01-01 00:00:03'), ('bob', '2024-01-01 00:00:04')",
        );
        exec(&db, "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:20')");
        db.sync(WAIT).expect("sync");
        db.close().expect("close");
    }
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    exec(&db, "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:22')");
    exec(&db, "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:40')");
    db.sync(WAIT).expect("sync");
    assert_eq!(
        rows(&db, "SELECT user, ws, n FROM table(sess)"),
        vec![
            vec!["ann", "2024-01-01 00:00:00.000", "2"],
            vec!["ann", "2024-01-01 00:00:20.000", "2"],
            vec!["bob", "2024-01-01 00:00:04.000", "1"],
        ],
        "the open session was rebuilt from its first row, the emitted ones not again"
    );
    assert_eq!(col(&db, "SELECT rows_in FROM system.queries WHERE kind = 'view sess'"), vec!["3"], "bounded replay");
}
