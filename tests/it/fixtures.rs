//! Format fixtures: data directories written by an earlier format version, committed under
//! `tests/fixtures/<version>/`, opened by today's code and checked row by row, so a format
//! change cannot break old data silently.
//!
//! `v1/basic`: stream `events` (2 shards) with rows in parts (flushed) and rows only in the log,
//! a `versioned_kv` stream `prices`, a materialized view `evens` into stream `evens_t` with a
//! checkpoint. `v1/torn_tail`: the same, with the last log record of `events` shard 0 cut in
//! the middle (a crash while it was written): its rows are gone, everything else is intact.
//!
//! The fixtures are written once by [`generate_v1`] (an ignored test:
//! `cargo nextest run -p sluice-tests -E 'test(fixtures_generate_v1)' --run-ignored only`).
//! A future format version adds `generate_v2` and `tests/fixtures/v2/`, and keeps v1's test.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice::{Database, Options};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn exec(db: &Database, sql: &str) {
    db.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn rows(db: &Database, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
        let b = b.unwrap();
        for i in 0..b.num_rows() {
            let r: Vec<String> =
                b.columns().iter().map(|c| sluice::text::format_value(c, i).unwrap_or_else(|| "NULL".into())).collect();
            out.push(r.join(","));
        }
    }
    out
}

/// Batches appended to `events`, in order: batch `b` holds ids `10*b .. 10*b + 10` and goes to
/// shard `b % 2` (round robin from a fresh open). Batches 0..4 are flushed into parts, 4..7
/// stay in the log. The last one, batch 6 (shard 0), is the record `torn_tail` cuts.
const BATCHES: i64 = 7;
const FLUSHED: i64 = 4;

fn event_rows(upto_batch: impl Fn(i64) -> bool) -> Vec<String> {
    (0..BATCHES)
        .filter(|b| upto_batch(*b))
        .flat_map(|b| (b * 10..b * 10 + 10).map(|id| format!("{id},n{},2024-01-01 00:00:{:02}.000", id % 7, id % 60)))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (p, q) = (e.path(), to.join(e.file_name()));
        if p.is_dir() {
            copy_dir(&p, &q);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

/// Writes `tests/fixtures/v1/` (replacing it). Run by hand, once per format version.
#[test]
#[ignore = "writes the committed fixtures; run by hand when a format version is added"]
fn fixtures_generate_v1() {
    generate_v1(&fixtures().join("v1"));
}

/// The v1 fixtures, written into `root`.
pub(crate) fn generate_v1(root: &Path) {
    let basic = root.join("basic");
    let _ = std::fs::remove_dir_all(root);
    {
        let db = Database::open(&basic, Options { merge: false, ..Options::default() }).unwrap();
        exec(
            &db,
            "CREATE STREAM events (id int64, name string, ts datetime64(3, 'UTC')) SETTINGS shards = 2, \
             event_time_column = 'ts', flush_threshold_count = 1000000, flush_threshold_ms = 100000000",
        );
        exec(&db, "CREATE STREAM evens_t (id int64, name string)");
        exec(
            &db,
            "CREATE MATERIALIZED VIEW evens INTO evens_t AS SELECT id, name FROM events WHERE id % 2 = 0 \
             SETTINGS checkpoint_interval = 1",
        );
        exec(
            &db,
            "CREATE STREAM prices (sym string, px float64, ver int64) PRIMARY KEY sym \
             SETTINGS mode = 'versioned_kv', version_column = 'ver'",
        );
        for b in 0..BATCHES {
            let values: Vec<String> = (b * 10..b * 10 + 10)
                .map(|id| format!("({id}, 'n{}', '2024-01-01 00:00:{:02}')", id % 7, id % 60))
                .collect();
            exec(&db, &format!("INSERT INTO events (id, name, ts) VALUES {}", values.join(", ")));
            if b + 1 == FLUSHED {
                db.flush("events").unwrap();
            }
        }
        exec(&db, "INSERT INTO prices (sym, px, ver) VALUES ('a', 1.5, 1), ('b', 2.5, 1)");
        db.flush("prices").unwrap();
        exec(&db, "INSERT INTO prices (sym, px, ver) VALUES ('a', 1.75, 2), ('c', 3.5, 1), ('b', 9.0, 0)");
        db.sync(Duration::from_secs(10)).unwrap();
        db.close().unwrap();
    }
    std::fs::remove_file(basic.join("LOCK")).unwrap();
    // torn_tail: the last record of events shard 0 (batch 6) cut in the middle.
    let torn = root.join("torn_tail");
    copy_dir(&basic, &torn);
    let wal = torn.join("streams/events/0/wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len - 50).unwrap();
}

/// Opens a copy of fixture `name` and checks every row.
fn open_fixture(version: &str, name: &str) -> (tempfile::TempDir, Database) {
    let src = fixtures().join(version).join(name);
    assert!(src.join("catalog/catalog.bin").is_file(), "fixture {} is missing", src.display());
    let t = tempfile::tempdir().unwrap();
    copy_dir(&src, t.path());
    let report = sluice::check(t.path()).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.parts >= 3 && report.log_records > 0, "parts and log rows: {report:?}");
    let db = Database::open(t.path(), Options::default()).unwrap_or_else(|e| panic!("{version}/{name}: {e}"));
    (t, db)
}

fn check_common(db: &Database, events: &[String]) {
    assert_eq!(rows(db, "SELECT id, name, ts FROM table(events) ORDER BY id"), events);
    assert_eq!(rows(db, "SELECT sym, px FROM table(prices) ORDER BY sym"), vec!["a,1.75", "b,2.5", "c,3.5"]);
    // The view resumes from its checkpoint and writes every even id at least once.
    db.sync(Duration::from_secs(10)).unwrap();
    let want: Vec<String> = events
        .iter()
        .filter(|r| r.split(',').next().unwrap().parse::<i64>().unwrap() % 2 == 0)
        .map(|r| r.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    let mut got = rows(db, "SELECT DISTINCT id, name FROM table(evens_t) ORDER BY id");
    got.retain(|r| want.contains(r));
    assert_eq!(got, want);
    // New rows go on from where the old ones ended.
    exec(db, "INSERT INTO events (id, name, ts) VALUES (1000, 'new', '2024-01-02 00:00:00')");
    assert_eq!(rows(db, "SELECT count() FROM table(events)"), vec![(events.len() + 1).to_string()]);
}

#[test]
fn fixtures_v1_basic_opens_with_every_row() {
    let (_t, db) = open_fixture("v1", "basic");
    check_common(&db, &event_rows(|_| true));
    let parts = rows(&db, "SELECT count() FROM table(events) WHERE id < 40");
    assert_eq!(parts, vec!["40"]);
}

#[test]
fn fixtures_v1_torn_tail_loses_only_the_torn_record() {
    let (_t, db) = open_fixture("v1", "torn_tail");
    check_common(&db, &event_rows(|b| b != BATCHES - 1));
}
