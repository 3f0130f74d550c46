//! Faults at every step of a flush and of a merge (the Nth write, sync or metadata operation
//! fails: part file creation, its write and fsync, the rename, the directory fsync, the
//! manifest append and sync), each followed by a power loss and a reopen; poisoning after a
//! failed log write; TTL expiry; memory back-pressure.

use std::collections::BTreeSet;
use std::sync::Arc;

use sluice::arrow::array::{Array, Int64Array, RecordBatch, TimestampMillisecondArray, UInt64Array};
use sluice::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice::{Database, Durability, Error, Options, ScanRequest, StreamDef, Ttl};
use sluice_vfs::{Crash, FileSystem, SimFs};

const DIR: &str = "/db";

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("id", DataType::UInt64, false), Field::new("k", DataType::Int64, false)]))
}

fn batch(ids: std::ops::Range<u64>) -> RecordBatch {
    let ids: Vec<u64> = ids.collect();
    let ks: Vec<i64> = ids.iter().map(|i| (*i % 17) as i64).collect();
    RecordBatch::try_new(schema(), vec![Arc::new(UInt64Array::from(ids)), Arc::new(Int64Array::from(ks))])
        .expect("batch")
}

fn open(fs: &SimFs) -> Database {
    Database::open(DIR, Options { merge: false, ..Options::default().fs(fs.shared()) }).expect("open")
}

fn create(db: &Database) {
    let mut def = StreamDef::from_schema("s", &schema()).sort_key(&["k"]);
    def.settings.durability = Durability::Fsync;
    def.settings.flush_threshold_count = 1 << 40;
    def.settings.flush_threshold_bytes = 1 << 40;
    def.settings.flush_threshold_ms = 1 << 40;
    db.create_stream(def).expect("create");
}

fn ids(db: &Database) -> Vec<u64> {
    let mut out = Vec::new();
    for b in db.scan("s", &ScanRequest::all()).expect("scan") {
        let b = b.expect("batch");
        let c = b.column(0).as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
        out.extend(c.values().iter().copied());
    }
    out.sort();
    out
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Write,
    Sync,
    Metadata,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Flush,
    Merge,
}

fn crash_points(step: Step) {
    for fault in [Fault::Write, Fault::Sync, Fault::Metadata] {
        for k in 0..24 {
            let ctx = format!("{step:?} {fault:?} after {k}");
            let fs = SimFs::new(k);
            let db = open(&fs);
            create(&db);
            let mut next = 0;
            let rounds = if matches!(step, Step::Merge) { 4 } else { 1 };
            for _ in 0..rounds {
                for _ in 0..3 {
                    db.append("s", &batch(next..next + 50)).expect("append");
                    next += 50;
                }
                if matches!(step, Step::Merge) {
                    db.flush("s").expect("flush");
                }
            }
            match fault {
                Fault::Write => fs.fail_write_after(k),
                Fault::Sync => fs.fail_sync_after(k),
                Fault::Metadata => fs.fail_metadata_after(k),
            }
            let _ = match step {
                Step::Flush => db.flush("s"),
                Step::Merge => db.compact("s"),
            };
            fs.clear_faults();
            fs.crash(Crash::PowerLossTorn);
            drop(db);
            let db = open(&fs);
            assert_eq!(ids(&db), (0..next).collect::<Vec<_>>(), "{ctx}: rows after reopen");
            // The shard works again: append, flush, merge, and everything is still there once.
            db.append("s", &batch(next..next + 10)).unwrap_or_else(|e| panic!("{ctx}: append after reopen: {e}"));
            db.flush("s").unwrap_or_else(|e| panic!("{ctx}: flush after reopen: {e}"));
            db.compact("s").unwrap_or_else(|e| panic!("{ctx}: compact after reopen: {e}"));
            assert_eq!(ids(&db), (0..next + 10).collect::<Vec<_>>(), "{ctx}: rows after recovery work");
            db.close().expect("close");
            let db = open(&fs);
            assert_eq!(ids(&db), (0..next + 10).collect::<Vec<_>>(), "{ctx}: rows after a second reopen");
        }
    }
}

#[test]
fn crash_at_every_step_of_a_flush() {
    crash_points(Step::Flush);
}

#[test]
fn crash_at_every_step_of_a_merge() {
    crash_points(Step::Merge);
}

#[test]
fn failed_log_write_poisons_until_reopen() {
    let fs = SimFs::new(1);
    let db = open(&fs);
    create(&db);
    db.append("s", &batch(0..10)).expect("append");
    fs.fail_write_after(0);
    assert!(db.append("s", &batch(10..20)).is_err());
    fs.clear_faults();
    let e = db.append("s", &batch(20..30)).expect_err("poisoned");
    assert!(matches!(e, Error::Poisoned { .. } | Error::Wal { .. }), "{e}");
    assert!(e.to_string().contains("reopen"), "{e}");
    drop(db);
    let db = open(&fs);
    let got = ids(&db);
    assert!(got == (0..10).collect::<Vec<_>>() || got == (0..20).collect::<Vec<_>>(), "{got:?}");
    db.append("s", &batch(100..110)).expect("append after reopen");
}

#[test]
fn ttl_expires_rows_in_merges() {
    let fs = SimFs::new(2);
    let db = open(&fs);
    let sch = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("_tp_time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]));
    let mut def = StreamDef::from_schema("s", &sch).ttl(Ttl { column: "_tp_time".into(), interval_ms: 3_600_000 });
    def.settings.flush_threshold_count = 1 << 40;
    db.create_stream(def).expect("create");
    let now = fs.now_ms() as i64;
    let mk = |ids: Vec<u64>, t: i64| {
        RecordBatch::try_new(
            sch.clone(),
            vec![
                Arc::new(UInt64Array::from(ids.clone())),
                Arc::new(TimestampMillisecondArray::from(vec![t; ids.len()]).with_timezone("UTC")),
            ],
        )
        .expect("batch")
    };
    // Four parts: two old (2 h ago), two fresh; and one part mixing both.
    for (i, age) in [7_200_000i64, 7_200_000, 0, 0].iter().enumerate() {
        db.append("s", &mk((i as u64 * 10..i as u64 * 10 + 10).collect(), now - age)).expect("append");
        db.flush("s").expect("flush");
    }
    db.compact("s").expect("compact");
    assert_eq!(ids(&db), (20..40).collect::<Vec<_>>());
}

#[test]
fn appenders_wait_for_memory_and_nothing_is_lost() {
    let fs = SimFs::new(3);
    let opts = Options { memtable_limit_bytes: 256 << 10, merge: false, ..Options::default().fs(fs.shared()) };
    let db = Database::open(DIR, opts).expect("open");
    create(&db);
    // Thresholds are huge: only memory pressure makes the flushers flush.
    let mut want = BTreeSet::new();
    for i in 0..200u64 {
        db.append("s", &batch(i * 100..i * 100 + 100)).expect("append under memory pressure");
        want.extend(i * 100..i * 100 + 100);
    }
    assert_eq!(ids(&db), want.into_iter().collect::<Vec<_>>());
    assert!(db.snapshot("s").expect("snapshot").units(&sluice::Predicate::all()).len() > 1, "pressure flushed parts");
}
