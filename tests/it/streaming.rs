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
    // A row that changes no result emits nothing.
    exec(&db, "INSERT INTO s (k, v) VALUES ('b', 0)");
    sync(&db);
    assert!(upd.drain().is_empty(), "b's sum did not change");
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

/// One window's expected aggregate: (window_start ms, key) -> (count, sum).
type Expected = std::collections::BTreeMap<(i64, String), (u64, i64)>;

fn fmt_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 2024-01-01 only (the model stays within one year).
    assert!(d < 366, "model times stay in 2024");
    let (mut month, mut day) = (1usize, d + 1);
    let lens = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    while day > lens[month - 1] {
        day -= lens[month - 1];
        month += 1;
    }
    format!("2024-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}", s / 3600, s % 3600 / 60, s % 60, ms.rem_euclid(1000))
}

/// Seeded random event-time streams (out of order, some rows late) through tumble and hop
/// aggregates, compared with a row-by-row model of the watermark rules; and, for streams whose
/// disorder stays within the delay, with the same aggregation recomputed over `table(s)`.
#[test]
fn window_aggregates_match_a_model_and_a_batch_recomputation() {
    let seed = sluice_tests::seed_from_env(0x5eed_0006);
    for round in 0..6u64 {
        let mut rng = sluice_vfs::Rng::new(seed.wrapping_add(round));
        let db = Database::in_memory();
        exec(&db, "CREATE STREAM s (k string, v int64, ts datetime64(3, 'UTC'))");
        let hop = round % 2 == 1;
        let (size, slide) = (1000i64, if hop { 250i64 } else { 1000 });
        let delay = [0i64, 300, 2000][(round / 2) as usize % 3];
        // Disorder bound: rounds 4 and 5 stay within the delay (no late rows).
        let disorder = if round >= 4 { delay } else { 1500 };
        let window = if hop { format!("hop(s, ts, {slide}ms, {size}ms)") } else { format!("tumble(s, ts, {size}ms)") };
        let emit = if delay > 0 { format!("EMIT AFTER WATERMARK WITH DELAY {delay}ms") } else { String::new() };
        let t = Tail::start(
            &db,
            &format!("SELECT window_start, k, count(), sum(v) FROM {window} GROUP BY window_start, k {emit}"),
        );
        // The model: admitted rows per the row-by-row watermark.
        let mut max: Option<i64> = None;
        let mut admitted: Vec<(i64, String, i64)> = Vec::new();
        let mut clock = 3_600_000i64; // 01:00, so hop windows never start before 2024
        let mut late = 0;
        for _ in 0..40 {
            let n = rng.range(1, 25);
            let mut values = Vec::new();
            for _ in 0..n {
                clock += rng.below(120) as i64;
                let back = rng.below(disorder as u64 + 1) as i64;
                let ts = (clock - back).max(0);
                let k = ["a", "b", "c"][rng.below(3) as usize].to_string();
                let v = rng.below(100) as i64;
                match max {
                    Some(m) if ts < m - delay => late += 1,
                    _ => {
                        max = Some(max.map_or(ts, |m| m.max(ts)));
                        admitted.push((ts, k.clone(), v));
                    }
                }
                values.push(format!("('{k}', {v}, '{}')", fmt_ms(ts)));
            }
            exec(&db, &format!("INSERT INTO s (k, v, ts) VALUES {}", values.join(", ")));
        }
        let wm = max.expect("rows") - delay;
        let mut expected = Expected::new();
        for (ts, k, v) in &admitted {
            let last = ts.div_euclid(slide) * slide;
            let mut s = last;
            while s + size > *ts {
                if s + size <= wm {
                    let e = expected.entry((s, k.clone())).or_default();
                    e.0 += 1;
                    e.1 += v;
                }
                s -= slide;
            }
        }
        sync(&db);
        let mut got = t.drain();
        got.sort();
        let mut want: Vec<Vec<String>> = expected
            .iter()
            .map(|((s, k), (c, sum))| vec![fmt_ms(*s), k.clone(), c.to_string(), sum.to_string()])
            .collect();
        want.sort();
        if got != want {
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
            panic!(
                "seed {seed} round {round} (hop {hop}, delay {delay}, late {late}): {} rows, want {}; \
                 missing {missing:?}, extra {extra:?}",
                got.len(),
                want.len()
            );
        }
        if round >= 4 {
            assert_eq!(late, 0);
            let batch = db
                .query(&format!(
                    "SELECT window_start, k, count(), sum(v) FROM {} WHERE window_end <= '{}' \
                     GROUP BY window_start, k",
                    window.replace("(s,", "(table(s),"),
                    fmt_ms(wm)
                ))
                .expect("historical")
                .collect()
                .expect("rows");
            let mut hist: Vec<Vec<String>> = Vec::new();
            for b in batch {
                for i in 0..b.num_rows() {
                    hist.push(b.columns().iter().map(|c| sluice::text::format_value(c, i).expect("value")).collect());
                }
            }
            hist.sort();
            assert_eq!(hist, want, "historical recomputation, seed {seed} round {round}");
        }
    }
}

#[test]
fn stream_joins_a_table_snapshot() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM clicks (user_id int64, url string)");
    exec(&db, "CREATE STREAM users (user_id int64, name string)");
    exec(&db, "INSERT INTO users (user_id, name) VALUES (1, 'ann'), (2, 'bob')");
    let inner =
        Tail::start(&db, "SELECT c.url, u.name FROM clicks AS c JOIN table(users) AS u ON c.user_id = u.user_id");
    let left =
        Tail::start(&db, "SELECT c.url, u.name FROM clicks AS c LEFT JOIN table(users) AS u ON c.user_id = u.user_id");
    let swapped = Tail::start(
        &db,
        "SELECT u.name, count() FROM table(users) AS u JOIN clicks AS c ON c.user_id = u.user_id GROUP BY u.name EMIT ON UPDATE",
    );
    // Rows added to the table after the start are not seen (snapshot at start).
    exec(&db, "INSERT INTO users (user_id, name) VALUES (3, 'cy')");
    exec(&db, "INSERT INTO clicks (user_id, url) VALUES (1, '/a'), (3, '/c'), (2, '/b')");
    db.sync(WAIT).expect("sync");
    let mut got = inner.drain();
    got.sort();
    assert_eq!(got, vec![row(&["/a", "ann"]), row(&["/b", "bob"])]);
    let mut got = left.drain();
    got.sort();
    assert_eq!(got, vec![row(&["/a", "ann"]), row(&["/b", "bob"]), row(&["/c", "NULL"])]);
    let mut got = swapped.drain();
    got.sort();
    assert_eq!(got, vec![row(&["ann", "1"]), row(&["bob", "1"])]);
    for (sql, want) in [
        ("SELECT * FROM clicks AS a JOIN clicks AS b ON a.user_id = b.user_id", "two streams"),
        ("SELECT * FROM clicks AS c FULL JOIN table(users) AS u ON c.user_id = u.user_id", "Full JOIN"),
        ("SELECT * FROM table(users) AS u LEFT JOIN clicks AS c ON c.user_id = u.user_id", "Left JOIN"),
    ] {
        let e = db.query(sql).map(|_| ()).expect_err(sql);
        assert!(e.to_string().contains(want), "{sql}: {e}");
    }
}

#[test]
fn versioned_kv_keeps_the_latest_row_per_key() {
    let db = Database::in_memory();
    exec(
        &db,
        "CREATE STREAM prices (sym string, px float64, ver int64) PRIMARY KEY sym \
         SETTINGS mode = 'versioned_kv', version_column = 'ver', shards = 3",
    );
    exec(&db, "INSERT INTO prices (sym, px, ver) VALUES ('a', 1, 1), ('b', 2, 1), ('a', 3, 2)");
    exec(&db, "INSERT INTO prices (sym, px, ver) VALUES ('a', 99, 1), ('b', 5, 1), ('c', 7, 1)");
    let q = |sql: &str| {
        let mut r = Vec::new();
        for b in db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
            let b = b.expect("batch");
            for i in 0..b.num_rows() {
                r.push(b.columns().iter().map(|c| sluice::text::format_value(c, i).expect("v")).collect::<Vec<_>>());
            }
        }
        r.sort();
        r
    };
    // a: version 2 beats the later version 1; b: tie on version, the later arrival wins.
    assert_eq!(q("SELECT sym, px FROM table(prices)"), vec![row(&["a", "3"]), row(&["b", "5"]), row(&["c", "7"])]);
    assert_eq!(q("SELECT count(*) FROM table(prices)"), vec![row(&["3"])]);
    // A filter sees the latest version only (b's older px 2 does not match).
    assert_eq!(q("SELECT sym FROM table(prices) WHERE px < 4"), vec![row(&["a"])]);
    db.flush("prices").expect("flush");
    assert_eq!(q("SELECT sym, px FROM table(prices)"), vec![row(&["a", "3"]), row(&["b", "5"]), row(&["c", "7"])]);
    // A streaming read starts with the latest row of every key, then follows.
    let t = Tail::start(&db, "SELECT sym, px FROM prices");
    let mut first = t.take(3);
    first.sort();
    assert_eq!(first, vec![row(&["a", "3"]), row(&["b", "5"]), row(&["c", "7"])]);
    exec(&db, "INSERT INTO prices (sym, px, ver) VALUES ('c', 8, 2)");
    assert_eq!(t.take(1), vec![row(&["c", "8"])]);
    let e = db.execute("CREATE STREAM kv2 (k string) SETTINGS mode = 'versioned_kv'").expect_err("needs a key");
    assert!(e.to_string().contains("PRIMARY KEY"), "{e}");
}

#[test]
fn partition_by_gives_each_key_its_own_watermark() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (dev string, ts datetime64(3, 'UTC'))");
    let shared =
        Tail::start(&db, "SELECT window_start, dev, count() FROM tumble(s, ts, 10s) GROUP BY window_start, dev");
    let parted = Tail::start(
        &db,
        "SELECT window_start, dev, count() FROM tumble(s, ts, 10s) PARTITION BY dev GROUP BY window_start, dev",
    );
    // Device a runs ahead; device b's clock is behind.
    exec(&db, "INSERT INTO s (dev, ts) VALUES ('a', '2024-01-01 00:01:00'), ('b', '2024-01-01 00:00:01')");
    exec(&db, "INSERT INTO s (dev, ts) VALUES ('b', '2024-01-01 00:00:02'), ('b', '2024-01-01 00:00:15')");
    exec(&db, "INSERT INTO s (dev, ts) VALUES ('a', '2024-01-01 00:01:20')");
    db.sync(WAIT).expect("sync");
    let mut got = parted.drain();
    got.sort();
    assert_eq!(
        got,
        vec![row(&["2024-01-01 00:00:00.000", "b", "2"]), row(&["2024-01-01 00:01:00.000", "a", "1"])],
        "each key closes its windows by its own watermark"
    );
    // One watermark for all: b's rows are all late after a's first row.
    let got = shared.drain();
    assert_eq!(got, vec![row(&["2024-01-01 00:01:00.000", "a", "1"])]);
    // Late rows are counted where operators can see them.
    let stats = db
        .query("SELECT late_rows, rows_in, open_windows FROM system.queries WHERE query LIKE '%tumble%' ORDER BY id")
        .expect("system.queries")
        .concat()
        .expect("rows");
    assert_eq!(stats.num_rows(), 2, "both running queries are listed");
    assert_eq!(sluice::text::format_value(stats.column(0), 0).as_deref(), Some("3"), "shared: b's three rows");
    assert_eq!(sluice::text::format_value(stats.column(0), 1).as_deref(), Some("0"), "partitioned: none");
    assert_eq!(sluice::text::format_value(stats.column(1), 0).as_deref(), Some("5"));
    let e = db.query("SELECT count() FROM s PARTITION BY nope GROUP BY dev").map(|_| ()).expect_err("unknown");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn session_windows_close_after_the_idle_gap() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM clicks (user string, ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT user, window_start, window_end, count() FROM session(clicks, ts, 5s) \
         GROUP BY user, window_start, window_end",
    );
    exec(
        &db,
        "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:00'), ('ann', '2024-01-01 00:00:03'), \
         ('bob', '2024-01-01 00:00:04'), ('ann', '2024-01-01 00:00:07')",
    );
    db.sync(WAIT).expect("sync");
    assert!(t.drain().is_empty(), "sessions still open");
    // 00:00:13 is past ann's last click (7s) + 5s and bob's (4s) + 5s: both sessions close;
    // the new click of ann opens another one.
    exec(&db, "INSERT INTO clicks (user, ts) VALUES ('ann', '2024-01-01 00:00:13')");
    let mut got = t.take(2);
    got.sort();
    assert_eq!(
        got,
        vec![
            row(&["ann", "2024-01-01 00:00:00.000", "2024-01-01 00:00:12.000", "3"]),
            row(&["bob", "2024-01-01 00:00:04.000", "2024-01-01 00:00:09.000", "1"]),
        ]
    );
    // A session is at most five idle gaps long by default.
    let long = Tail::start(&db, "SELECT window_start, count() FROM session(clicks, ts, 2s, 4s) GROUP BY window_start");
    exec(
        &db,
        "INSERT INTO clicks (user, ts) VALUES ('cy', '2024-01-01 00:01:00'), ('cy', '2024-01-01 00:01:01.500'), \
         ('cy', '2024-01-01 00:01:03'), ('cy', '2024-01-01 00:01:04.500'), ('cy', '2024-01-01 00:01:20')",
    );
    let mut got = long.take(2);
    got.sort();
    assert_eq!(got, vec![row(&["2024-01-01 00:01:00.000", "3"]), row(&["2024-01-01 00:01:04.500", "1"])]);
    let e = db
        .query("SELECT window_start, count() FROM session(clicks, ts, 5s) GROUP BY window_start EMIT ON UPDATE")
        .map(|_| ())
        .expect_err("session emits at close");
    assert!(e.to_string().contains("session"), "{e}");
}

#[test]
fn stream_joins_the_latest_rows_of_a_versioned_kv_stream() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM orders (id int64, sym string)");
    exec(&db, "CREATE STREAM px (sym string, price float64) PRIMARY KEY sym SETTINGS mode = 'versioned_kv'");
    exec(&db, "INSERT INTO px (sym, price) VALUES ('a', 1), ('b', 2)");
    let t = Tail::start(&db, "SELECT o.id, p.price FROM orders AS o JOIN px AS p ON o.sym = p.sym");
    let left = Tail::start(&db, "SELECT o.id, p.price FROM orders AS o LEFT JOIN px AS p ON o.sym = p.sym");
    exec(&db, "INSERT INTO orders (id, sym) VALUES (1, 'a'), (2, 'c')");
    db.sync(WAIT).expect("sync");
    assert_eq!(t.drain(), vec![row(&["1", "1"])]);
    let mut got = left.drain();
    got.sort();
    assert_eq!(got, vec![row(&["1", "1"]), row(&["2", "NULL"])]);
    // New versions on the right are used by later left rows.
    exec(&db, "INSERT INTO px (sym, price) VALUES ('a', 10), ('c', 3)");
    db.sync(WAIT).expect("sync");
    exec(&db, "INSERT INTO orders (id, sym) VALUES (3, 'a'), (4, 'c')");
    db.sync(WAIT).expect("sync");
    let mut got = t.drain();
    got.sort();
    assert_eq!(got, vec![row(&["3", "10"]), row(&["4", "3"])]);
}

#[test]
fn aggregates_over_a_versioned_kv_stream_retract_replaced_rows() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM acct (id string, region string, bal int64) PRIMARY KEY id SETTINGS mode = 'versioned_kv'");
    exec(&db, "INSERT INTO acct (id, region, bal) VALUES ('a', 'eu', 10), ('b', 'eu', 20), ('c', 'us', 5)");
    let totals = Tail::start(&db, "SELECT count(), sum(bal), min(bal), max(bal) FROM acct EMIT ON UPDATE");
    let log = Tail::start(&db, "SELECT region, count() AS n, sum(bal) AS s FROM acct GROUP BY region EMIT CHANGELOG");
    // The current rows first.
    assert_eq!(totals.take(1), vec![row(&["3", "35", "5", "20"])]);
    let mut first = log.take(2);
    first.sort();
    assert_eq!(first, vec![row(&["eu", "2", "30", "1"]), row(&["us", "1", "5", "1"])]);
    // b moves to us with a new balance; the max (20) is retracted.
    exec(&db, "INSERT INTO acct (id, region, bal) VALUES ('b', 'us', 7)");
    assert_eq!(totals.take(1), vec![row(&["3", "22", "5", "10"])]);
    let mut got = log.take(4);
    got.sort();
    assert_eq!(
        got,
        vec![
            row(&["eu", "1", "10", "1"]),
            row(&["eu", "2", "30", "-1"]),
            row(&["us", "1", "5", "-1"]),
            row(&["us", "2", "12", "1"]),
        ]
    );
    // The last row of a group leaves: only its retraction.
    exec(&db, "INSERT INTO acct (id, region, bal) VALUES ('a', 'us', 1)");
    let mut got = log.take(3);
    got.sort();
    assert_eq!(got, vec![row(&["eu", "1", "10", "-1"]), row(&["us", "2", "12", "-1"]), row(&["us", "3", "13", "1"])]);
    let e = db.query("SELECT quantile(0.5)(bal) FROM acct EMIT ON UPDATE").map(|_| ()).expect_err("not retractable");
    assert!(e.to_string().contains("count, sum, avg, min and max"), "{e}");
}

#[test]
fn changelog_kv_streams_apply_deletes() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM inv (sku string, qty int64) PRIMARY KEY sku SETTINGS mode = 'changelog_kv'");
    exec(&db, "INSERT INTO inv (sku, qty) VALUES ('a', 5), ('b', 7), ('c', 1)");
    let sum = Tail::start(&db, "SELECT count(), sum(qty) FROM inv EMIT ON UPDATE");
    assert_eq!(sum.take(1), vec![row(&["3", "13"])]);
    // Update a (retract the old row, add the new one), delete c.
    exec(&db, "INSERT INTO inv (sku, qty, _tp_delta) VALUES ('a', 5, -1), ('a', 6, 1), ('c', 1, -1)");
    assert_eq!(sum.take(1), vec![row(&["2", "13"])]);
    let q = |sql: &str| {
        let b = db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).concat().expect("rows");
        let mut r: Vec<Vec<String>> = (0..b.num_rows())
            .map(|i| b.columns().iter().map(|c| sluice::text::format_value(c, i).expect("v")).collect())
            .collect();
        r.sort();
        r
    };
    assert_eq!(q("SELECT * FROM table(inv)"), vec![row(&["a", "6"]), row(&["b", "7"])]);
    assert_eq!(q("SELECT count() FROM table(inv)"), vec![row(&["2"])]);
    let e = db.execute("CREATE STREAM bad (k string, _tp_delta string) PRIMARY KEY k SETTINGS mode = 'changelog_kv'");
    assert!(e.expect_err("type").to_string().contains("int8"));
}

#[test]
fn stream_to_stream_join_within_a_time_range() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM imp (ad int64, ts datetime64(3, 'UTC'))");
    exec(&db, "CREATE STREAM clk (ad int64, ts datetime64(3, 'UTC'))");
    let t = Tail::start(
        &db,
        "SELECT i.ad, c.ts FROM imp AS i JOIN clk AS c ON i.ad = c.ad AND date_diff_within(10s, i.ts, c.ts)",
    );
    exec(&db, "INSERT INTO imp (ad, ts) VALUES (1, '2024-01-01 00:00:00'), (2, '2024-01-01 00:00:01')");
    db.sync(WAIT).expect("sync");
    // A click within 10 s of its impression matches (it arrives after it: right-side arrival).
    exec(&db, "INSERT INTO clk (ad, ts) VALUES (1, '2024-01-01 00:00:05'), (2, '2024-01-01 00:00:30')");
    db.sync(WAIT).expect("sync");
    assert_eq!(t.drain(), vec![row(&["1", "2024-01-01 00:00:05.000"])]);
    // An impression after its click (left-side arrival), within range.
    exec(&db, "INSERT INTO imp (ad, ts) VALUES (2, '2024-01-01 00:00:25')");
    db.sync(WAIT).expect("sync");
    assert_eq!(t.drain(), vec![row(&["2", "2024-01-01 00:00:30.000"])]);
    // Historical joins understand date_diff_within too.
    let n = db
        .query("SELECT count() FROM table(imp) AS i JOIN table(clk) AS c ON i.ad = c.ad AND date_diff_within(10s, i.ts, c.ts)")
        .expect("historical")
        .concat()
        .expect("rows");
    assert_eq!(sluice::text::format_value(n.column(0), 0).as_deref(), Some("2"));
    let e = db.query("SELECT * FROM imp AS i JOIN clk AS c ON i.ad = c.ad").map(|_| ()).expect_err("unbounded");
    assert!(e.to_string().contains("date_diff_within"), "{e}");
}

#[test]
fn merges_drop_superseded_versions_of_kv_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path(), sluice::Options::default()).expect("open");
    exec(&db, "CREATE STREAM kv (k int64, v int64) PRIMARY KEY k SETTINGS mode = 'versioned_kv', version_column = 'v'");
    for round in 0..8 {
        let rows: Vec<String> = (0..50).map(|k| format!("({k}, {round})")).collect();
        exec(&db, &format!("INSERT INTO kv (k, v) VALUES {}", rows.join(", ")));
        db.flush("kv").expect("flush");
    }
    assert_eq!(db.snapshot("kv").expect("snapshot").rows(), 400);
    let rounds = db.compact("kv").expect("compact");
    assert!(rounds > 0, "the policy merged something");
    let stored = db.snapshot("kv").expect("snapshot").rows();
    assert!(stored < 400, "superseded versions dropped: {stored} rows stored");
    let r = db.query("SELECT count(), min(v), max(v) FROM table(kv)").expect("q").concat().expect("rows");
    let cells: Vec<String> = r.columns().iter().map(|c| sluice::text::format_value(c, 0).expect("v")).collect();
    assert_eq!(cells, vec!["50", "7", "7"]);
}

#[test]
fn changelog_streams_carry_deltas_for_aggregations() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM moves (item string, qty int64) SETTINGS mode = 'changelog'");
    let t = Tail::start(&db, "SELECT item, sum(qty), count() FROM moves GROUP BY item EMIT ON UPDATE");
    exec(&db, "INSERT INTO moves (item, qty) VALUES ('a', 5), ('b', 2)");
    let mut got = t.take(2);
    got.sort();
    assert_eq!(got, vec![row(&["a", "5", "1"]), row(&["b", "2", "1"])]);
    exec(&db, "INSERT INTO moves (item, qty, _tp_delta) VALUES ('a', 5, -1), ('a', 4, 1)");
    assert_eq!(t.take(1), vec![row(&["a", "4", "1"])]);
    // A historical read returns the change rows as stored; _tp_delta is hidden from SELECT *.
    let b = db.query("SELECT * FROM table(moves)").expect("q").concat().expect("rows");
    assert_eq!((b.num_rows(), b.num_columns()), (4, 2));
}

#[test]
fn multi_shard_replay_does_not_drop_rows_of_slower_shards() {
    let db = Database::in_memory();
    exec(&db, "CREATE STREAM s (v int64, ts datetime64(3, 'UTC')) SETTINGS shards = 3");
    // Three inserts go to three shards, each covering 00:00:01 .. 00:00:09.
    for _ in 0..3 {
        let rows: Vec<String> = (1..10).map(|i| format!("({i}, '2024-01-01 00:00:0{i}')")).collect();
        exec(&db, &format!("INSERT INTO s (v, ts) VALUES {}", rows.join(", ")));
    }
    exec(&db, "INSERT INTO s (v, ts) VALUES (0, '2024-01-01 00:00:30')");
    let t = Tail::start(
        &db,
        "SELECT window_start, count() FROM tumble(s, ts, 10s) GROUP BY window_start SETTINGS seek_to = 'earliest'",
    );
    assert_eq!(t.take(1), vec![row(&["2024-01-01 00:00:00.000", "27"])]);
    let late = db.query("SELECT late_rows FROM system.queries").expect("q").concat().expect("rows");
    assert_eq!(sluice::text::format_value(late.column(0), 0).as_deref(), Some("0"));
}
