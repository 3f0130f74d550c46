//! Streaming SQL on the engine: tails, seeks, LIMIT, cancel, windows and emission policies,
//! and `Database::sync`. Results are read on a helper thread; every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice::Database;

const WAIT: Duration = Duration::from_secs(10);

/// A running streaming query whose rows (formatted, `_tp_delta` included) arrive on a channel.
struct Tail {
    rows: mpsc::Receiver<Result<Vec<String>, String>>,
    cancel: Arc<AtomicBool>,
    finished: mpsc::Receiver<()>,
}

impl Tail {
    fn start(db: &Database, sql: &str) -> Tail {
        let q = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let cancel = q.cancel_flag();
        let (tx, rows) = mpsc::channel();
        let (done_tx, finished) = mpsc::channel();
        std::thread::spawn(move || {
            for b in q {
                match b {
                    Ok(b) => {
                        for i in 0..b.num_rows() {
                            let r = b
                                .columns()
                                .iter()
                                .map(|c| sluice::text::format_value(c, i).unwrap_or_else(|| "NULL".into()))
                                .collect();
                            let _ = tx.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            }
            let _ = done_tx.send(());
        });
        Tail { rows, cancel, finished }
    }

    /// The next `n` rows (panics after [`WAIT`]).
    fn take(&self, n: usize) -> Vec<Vec<String>> {
        (0..n)
            .map(|i| match self.rows.recv_timeout(WAIT) {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => panic!("row {i}: error {e}"),
                Err(_) => panic!("row {i} of {n} did not arrive"),
            })
            .collect()
    }

    /// Every row delivered so far (call after `db.sync`).
    fn drain(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        while let Ok(r) = self.rows.try_recv() {
            out.push(r.expect("row"));
        }
        out
    }

    /// Waits for the query to end by itself.
    fn wait_end(&self) {
        self.finished.recv_timeout(WAIT).expect("query ended");
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
    }
}

fn exec(db: &Database, sql: &str) {
    db.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn sync(db: &Database) {
    db.sync(WAIT).expect("sync");
}

fn row(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn tail_sees_only_new_rows_in_order() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (id int64, name string)");
    exec(&db, "INSERT INTO s (id, name) VALUES (1, 'old')");
    let t = Tail::start(&db, "SELECT id, upper(name) FROM s WHERE id % 2 = 0");
    for i in 2..=7 {
        exec(&db, &format!("INSERT INTO s (id, name) VALUES ({i}, 'n{i}')"));
    }
    assert_eq!(t.take(3), vec![row(&["2", "N2"]), row(&["4", "N4"]), row(&["6", "N6"])]);
    sync(&db);
    assert!(t.drain().is_empty());
}

#[test]
fn seek_backfills_then_follows_without_gap_or_duplicate() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (id int64)");
    exec(&db, "INSERT INTO s (id) VALUES (1), (2)");
    db.flush("s").expect("flush");
    exec(&db, "INSERT INTO s (id) VALUES (3)");
    for sql in [
        "SELECT id FROM s SETTINGS seek_to = 'earliest'",
        "SELECT id FROM s WHERE _tp_time > earliest_ts()",
        "SELECT id FROM s WHERE _tp_sn >= 0",
    ] {
        let t = Tail::start(&db, sql);
        assert_eq!(t.take(3), vec![row(&["1"]), row(&["2"]), row(&["3"])], "{sql}");
        drop(t);
    }
    let t = Tail::start(&db, "SELECT id FROM s WHERE _tp_sn >= 1");
    exec(&db, "INSERT INTO s (id) VALUES (4)");
    assert_eq!(t.take(3), vec![row(&["2"]), row(&["3"]), row(&["4"])]);
    // Back-dated rows: a time seek skips stored rows before it, live rows all pass.
    exec(&db, "CREATE STREAM e (id int64)");
    exec(&db, "INSERT INTO e (id, _tp_time) VALUES (1, '2020-01-01 00:00:00'), (2, '2024-01-01 00:00:00')");
    let t = Tail::start(&db, "SELECT id FROM e SETTINGS seek_to = '2023-06-01 00:00:00'");
    exec(&db, "INSERT INTO e (id) VALUES (3)");
    assert_eq!(t.take(2), vec![row(&["2"]), row(&["3"])]);
}

#[test]
fn limit_ends_the_query_and_cancel_stops_it_fast() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (id int64)");
    let t = Tail::start(&db, "SELECT id FROM s LIMIT 2");
    exec(&db, "INSERT INTO s (id) VALUES (1), (2), (3)");
    assert_eq!(t.take(2), vec![row(&["1"]), row(&["2"])]);
    t.wait_end();
    let t = Tail::start(&db, "SELECT id FROM s");
    let started = Instant::now();
    t.cancel.store(true, Ordering::Release);
    t.finished.recv_timeout(WAIT).expect("ended");
    assert!(started.elapsed() < Duration::from_millis(100), "cancel took {:?}", started.elapsed());
    match t.rows.try_recv() {
        Ok(Err(e)) => assert!(e.contains("cancel"), "{e}"),
        other => panic!("expected a cancel error, got {other:?}"),
    }
}

#[test]
fn tumble_window_emits_after_watermark_and_drops_late_rows() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (k string, v int64, ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT window_start, k, count(*) AS c, sum(v) FROM tumble(s, ts, 5s) GROUP BY window_start, k \
         ORDER BY k",
    );
    exec(
        &db,
        "INSERT INTO s (k, v, ts) VALUES ('a', 1, '2024-01-01 00:00:01'), ('b', 2, '2024-01-01 00:00:02'), \
         ('a', 3, '2024-01-01 00:00:04.999')",
    );
    sync(&db);
    assert!(t.drain().is_empty(), "window still open");
    // 00:00:05 closes [0, 5); 00:00:03 is then late and dropped.
    exec(&db, "INSERT INTO s (k, v, ts) VALUES ('a', 10, '2024-01-01 00:00:05'), ('a', 100, '2024-01-01 00:00:03')");
    assert_eq!(
        t.take(2),
        vec![row(&["2024-01-01 00:00:00.000", "a", "2", "4"]), row(&["2024-01-01 00:00:00.000", "b", "1", "2"])]
    );
    exec(&db, "INSERT INTO s (k, v, ts) VALUES ('c', 1, '2024-01-01 00:00:12')");
    assert_eq!(t.take(1), vec![row(&["2024-01-01 00:00:05.000", "a", "1", "10"])]);
    sync(&db);
    assert!(t.drain().is_empty(), "an empty window emits nothing");
}

#[test]
fn watermark_delay_keeps_windows_open_longer() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (v int64, ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT window_end, count() FROM tumble(s, ts, 10s) GROUP BY window_end EMIT AFTER WATERMARK WITH DELAY 2s",
    );
    exec(&db, "INSERT INTO s (v, ts) VALUES (1, '2024-01-01 00:00:09'), (1, '2024-01-01 00:00:11')");
    exec(&db, "INSERT INTO s (v, ts) VALUES (1, '2024-01-01 00:00:09.500')"); // >= 11 - 2: in time
    exec(&db, "INSERT INTO s (v, ts) VALUES (1, '2024-01-01 00:00:08')"); // < 11 - 2: late
    sync(&db);
    assert!(t.drain().is_empty());
    exec(&db, "INSERT INTO s (v, ts) VALUES (1, '2024-01-01 00:00:12')");
    assert_eq!(t.take(1), vec![row(&["2024-01-01 00:00:10.000", "2"])]);
}

#[test]
fn hop_windows_overlap() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT window_start, window_end, count() FROM hop(s, ts, 2s, 4s) GROUP BY window_start, window_end",
    );
    exec(&db, "INSERT INTO s (ts) VALUES ('2024-01-01 00:00:03'), ('2024-01-01 00:00:10')");
    assert_eq!(
        t.take(2),
        vec![
            row(&["2024-01-01 00:00:00.000", "2024-01-01 00:00:04.000", "1"]),
            row(&["2024-01-01 00:00:02.000", "2024-01-01 00:00:06.000", "1"]),
        ]
    );
}

#[test]
fn global_aggregation_on_update_and_changelog() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (k string, v int64)");
    let upd = Tail::start(&db, "SELECT k, sum(v) FROM s GROUP BY k EMIT ON UPDATE");
    let log = Tail::start(&db, "SELECT k, max(v) FROM s GROUP BY k EMIT CHANGELOG");
    exec(&db, "INSERT INTO s (k, v) VALUES ('a', 1), ('b', 2)");
    sync(&db);
    let mut got = upd.drain();
    got.sort();
    assert_eq!(got, vec![row(&["a", "1"]), row(&["b", "2"])]);
    exec(&db, "INSERT INTO s (k, v) VALUES ('a', 5)");
    sync(&db);
    assert_eq!(upd.drain(), vec![row(&["a", "6"])], "only the changed group");
    let mut first = log.take(2);
    first.sort();
    assert_eq!(first, vec![row(&["a", "1", "1"]), row(&["b", "2", "1"])]);
    assert_eq!(log.take(2), vec![row(&["a", "1", "-1"]), row(&["a", "5", "1"])]);
}

#[test]
fn global_aggregation_emits_periodically_when_changed() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (v int64)");
    let t = Tail::start(&db, "SELECT count(), sum(v) FROM s EMIT PERIODIC 50ms");
    exec(&db, "INSERT INTO s (v) VALUES (1), (2)");
    assert_eq!(t.take(1), vec![row(&["2", "3"])]);
    exec(&db, "INSERT INTO s (v) VALUES (3)");
    assert_eq!(t.take(1), vec![row(&["3", "6"])]);
}

#[test]
fn timeout_closes_an_idle_window() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT window_start, count() FROM tumble(s, ts, 1h) GROUP BY window_start EMIT AFTER WATERMARK AND TIMEOUT 100ms",
    );
    exec(&db, "INSERT INTO s (ts) VALUES ('2024-01-01 00:10:00')");
    assert_eq!(t.take(1), vec![row(&["2024-01-01 00:00:00.000", "1"])]);
}

#[test]
fn streaming_errors_are_clear() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (v int64, ts datetime64(3))");
    for (sql, want) in [
        ("SELECT count() FROM tumble(s, ts, 5s)", "GROUP BY window_start"),
        ("SELECT v FROM s ORDER BY v", "ORDER BY"),
        ("SELECT v FROM s EMIT PERIODIC 1s", "aggregation"),
        ("SELECT count() FROM s EMIT AFTER WATERMARK", "window"),
        ("SELECT v FROM s SETTINGS seek_to = 'yesterday'", "seek_to"),
        ("SELECT count() FROM table(s) EMIT ON UPDATE", "EMIT"),
        ("SELECT count() FROM tumble(s, v, 5s) GROUP BY window_start", "not a datetime"),
        ("SELECT count() FROM hop(s, ts, 5s, 2s) GROUP BY window_start", "slide"),
    ] {
        let e = db.query(sql).map(|_| ()).expect_err(sql);
        assert!(e.to_string().contains(want), "{sql}: {e}");
    }
    let e = db.execute("INSERT INTO s (v) SELECT v FROM s").expect_err("streaming insert-select");
    assert!(e.to_string().contains("table(s)"), "{e}");
}

#[test]
fn historical_tumble_over_table() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (ts datetime64(3, 'UTC'))");
    exec(&db, "INSERT INTO s (ts) VALUES ('2024-01-01 00:00:01'), ('2024-01-01 00:00:07'), ('2024-01-01 00:00:08')");
    let r = db
        .query("SELECT window_start, count() FROM tumble(table(s), ts, 5s) GROUP BY window_start ORDER BY window_start")
        .expect("query")
        .concat()
        .expect("rows");
    assert_eq!(r.num_rows(), 2);
    assert_eq!(sluice::text::format_value(r.column(1), 1).as_deref(), Some("2"));
}
