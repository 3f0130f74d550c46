//! Model test of the storage engine: seeded random appends, flushes, merges, crashes (power
//! loss with torn writes), injected I/O faults, clean reopens, scans and subscriptions on the
//! simulated file system, for 1 and 4 shards and every durable storage type, checked against an
//! in-memory model. A failure prints the seed; replay with `SLUICE_SEED=<seed>`.
//!
//! Properties: every acknowledged row is present exactly once after any crash; an
//! unacknowledged batch is either wholly present or wholly absent; scans with a predicate
//! return exactly the matching rows; a subscription from the earliest position delivers every
//! row once, per shard in `_tp_sn` order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sluice::arrow::array::{Array, Int64Array, RecordBatch, UInt64Array};
use sluice::arrow::datatypes::{DataType, Field, Schema};
use sluice::{
    ColumnRange, Database, Durability, Options, Predicate, ScanRequest, StartAt, StorageType, StreamDef, TP_SN,
};
use sluice_tests::seed_from_env;
use sluice_vfs::{Crash, Rng, SimFs};

const DIR: &str = "/db";

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("id", DataType::UInt64, false), Field::new("k", DataType::Int64, false)]))
}

/// Rows with ids `ids`; `k` is a function of the id so that content is checked too.
fn batch(ids: &[u64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(UInt64Array::from(ids.to_vec())),
            Arc::new(Int64Array::from(ids.iter().map(|i| k_of(*i)).collect::<Vec<_>>())),
        ],
    )
    .expect("batch")
}

fn k_of(id: u64) -> i64 {
    ((id * 7919) % 1000) as i64 - 500
}

fn open(fs: &SimFs) -> Database {
    let opts = Options { merge: false, ..Options::default().fs(fs.shared()) };
    Database::open(DIR, opts).expect("open")
}

/// `(id, k)` of every row a scan returns, checking there are no duplicates.
fn scan(db: &Database, req: &ScanRequest, ctx: &str) -> BTreeMap<u64, i64> {
    let mut out = BTreeMap::new();
    for b in db.scan("s", req).unwrap_or_else(|e| panic!("{ctx}: scan: {e}")) {
        let b = b.unwrap_or_else(|e| panic!("{ctx}: scan batch: {e}"));
        let ids = b.column_by_name("id").expect("id").as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
        let ks = b.column_by_name("k").expect("k").as_any().downcast_ref::<Int64Array>().expect("i64").clone();
        for i in 0..b.num_rows() {
            assert!(out.insert(ids.value(i), ks.value(i)).is_none(), "{ctx}: row {} returned twice", ids.value(i));
        }
    }
    out
}

struct Model {
    /// Acknowledged (or proven durable) rows.
    rows: BTreeSet<u64>,
    /// Batches whose append failed: they may or may not be present, but never in part.
    uncertain: Vec<Vec<u64>>,
}

impl Model {
    /// Checks the database against the model and resolves uncertain batches.
    fn check(&mut self, db: &Database, ctx: &str) {
        let got = scan(db, &ScanRequest::all(), ctx);
        for (id, k) in &got {
            assert_eq!(*k, k_of(*id), "{ctx}: row {id} has wrong content");
        }
        for id in &self.rows {
            assert!(got.contains_key(id), "{ctx}: acknowledged row {id} is missing");
        }
        let mut allowed = self.rows.clone();
        for b in self.uncertain.drain(..) {
            let present = b.iter().filter(|id| got.contains_key(id)).count();
            assert!(
                present == 0 || present == b.len(),
                "{ctx}: unacknowledged batch half visible ({present}/{})",
                b.len()
            );
            if present > 0 {
                allowed.extend(b.iter().copied());
                self.rows.extend(b.iter().copied());
            }
        }
        for id in got.keys() {
            assert!(allowed.contains(id), "{ctx}: row {id} was never appended");
        }
    }
}

fn run(seed: u64, storage: StorageType, shards: u32, steps: usize) {
    let mut rng = Rng::new(seed);
    let fs = SimFs::new(seed ^ 0xabc);
    let mut def = StreamDef::from_schema("s", &schema()).sort_key(&["k"]);
    def.settings.storage_type = storage;
    def.settings.shards = shards;
    def.settings.durability = Durability::Fsync;
    def.settings.logstore_segment_bytes = 4096 + rng.below(16384);
    if storage == StorageType::Streaming {
        // The log is the only history of a streaming stream: keep all of it.
        def.settings.logstore_retention_bytes = None;
        def.settings.logstore_retention_ms = None;
    }
    // Background flushes only by explicit request: keeps the run deterministic.
    def.settings.flush_threshold_count = 1 << 40;
    def.settings.flush_threshold_bytes = 1 << 40;
    def.settings.flush_threshold_ms = 1 << 40;
    let mut db = Some(open(&fs));
    db.as_ref().expect("db").create_stream(def).expect("create");
    let mut model = Model { rows: BTreeSet::new(), uncertain: Vec::new() };
    let mut next_id = 0u64;
    for step in 0..steps {
        let ctx = format!("seed {seed} {storage} shards {shards} step {step}");
        let d = db.as_ref().expect("db");
        match rng.below(100) {
            0..=49 => {
                let n = 1 + rng.below(40);
                let ids: Vec<u64> = (next_id..next_id + n).collect();
                next_id += n;
                d.append("s", &batch(&ids)).unwrap_or_else(|e| panic!("{ctx}: append: {e}"));
                model.rows.extend(ids);
            }
            50..=59 => {
                d.flush("s").unwrap_or_else(|e| panic!("{ctx}: flush: {e}"));
            }
            60..=64 => {
                d.compact("s").unwrap_or_else(|e| panic!("{ctx}: compact: {e}"));
            }
            65..=71 => {
                fs.crash(if rng.chance(0.5) { Crash::PowerLossTorn } else { Crash::Process });
                drop(db.take());
                db = Some(open(&fs));
                model.check(db.as_ref().expect("db"), &format!("{ctx} after crash"));
            }
            72..=76 => {
                db.take().expect("db").close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
                db = Some(open(&fs));
                model.check(db.as_ref().expect("db"), &format!("{ctx} after reopen"));
            }
            77..=86 => {
                let lo = rng.below(next_id.max(1));
                let hi = lo + rng.below(200);
                let pred = Predicate::all().and(ColumnRange::new("id").ge(lo).lt(hi));
                let got: BTreeSet<u64> = scan(d, &ScanRequest::all().filter(pred), &ctx).into_keys().collect();
                let want: BTreeSet<u64> = model.rows.range(lo..hi).copied().collect();
                assert_eq!(got, want, "{ctx}: range scan [{lo}, {hi})");
            }
            87..=93 => {
                // An I/O fault during appends or a flush: errors are allowed, acknowledged
                // rows must survive, failed batches must be all-or-nothing.
                match rng.below(3) {
                    0 => fs.fail_write_after(rng.below(4)),
                    1 => fs.fail_sync_after(rng.below(4)),
                    _ => fs.fail_metadata_after(rng.below(4)),
                }
                for _ in 0..1 + rng.below(4) {
                    if rng.chance(0.3) {
                        let _ = d.flush("s");
                        continue;
                    }
                    let n = 1 + rng.below(20);
                    let ids: Vec<u64> = (next_id..next_id + n).collect();
                    next_id += n;
                    match d.append("s", &batch(&ids)) {
                        Ok(_) => model.rows.extend(ids),
                        Err(_) => model.uncertain.push(ids),
                    }
                }
                fs.clear_faults();
                fs.crash(Crash::PowerLossTorn);
                drop(db.take());
                db = Some(open(&fs));
                model.check(db.as_ref().expect("db"), &format!("{ctx} after fault"));
            }
            _ => {
                model.check(d, &ctx);
                check_subscription(d, &model, &ctx);
            }
        }
    }
    let d = db.take().expect("db");
    model.check(&d, &format!("seed {seed} final"));
    check_subscription(&d, &model, &format!("seed {seed} final"));
    d.close().expect("close");
}

/// A subscription from the earliest position delivers every stored row once, per shard in
/// `_tp_sn` order.
fn check_subscription(db: &Database, model: &Model, ctx: &str) {
    let mut sub = db.subscribe("s", StartAt::Earliest, Some(vec!["id".into(), TP_SN.into()])).expect("subscribe");
    let mut seen = BTreeSet::new();
    let mut last_sn: BTreeMap<u32, i64> = BTreeMap::new();
    while seen.len() < model.rows.len() {
        let Some(b) = sub.next_timeout(Duration::from_secs(10)).expect("next") else {
            panic!("{ctx}: subscription stalled after {} of {} rows", seen.len(), model.rows.len())
        };
        let ids = b.batch.column(0).as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
        let sns = b.batch.column(1).as_any().downcast_ref::<Int64Array>().expect("i64").clone();
        for i in 0..ids.len() {
            assert!(seen.insert(ids.value(i)), "{ctx}: subscription delivered {} twice", ids.value(i));
            let last = last_sn.entry(b.shard).or_insert(-1);
            assert!(sns.value(i) > *last, "{ctx}: shard {} out of order", b.shard);
            *last = sns.value(i);
        }
    }
    assert_eq!(&seen, &model.rows, "{ctx}: subscription rows");
}

#[test]
fn engine_model_hybrid_one_shard() {
    let seed = seed_from_env(11);
    run(seed, StorageType::Hybrid, 1, 300);
}

#[test]
fn engine_model_hybrid_four_shards() {
    let seed = seed_from_env(12);
    run(seed, StorageType::Hybrid, 4, 300);
}

#[test]
fn engine_model_streaming_storage() {
    let seed = seed_from_env(13);
    run(seed, StorageType::Streaming, 1, 200);
    run(seed + 1, StorageType::Streaming, 4, 200);
}

/// A subscriber that starts at `earliest` while 4 threads append, with background flushes and
/// merges racing it, sees every row exactly once, per shard in sequence order.
#[test]
fn subscription_races_appends_flushes_and_merges() {
    let fs = SimFs::new(5);
    let opts = Options { merge_fan_in: 4, ..Options::default().fs(fs.shared()) };
    let db = Database::open(DIR, opts).expect("open");
    let mut def = StreamDef::from_schema("s", &schema()).sort_key(&["k"]);
    def.settings.shards = 2;
    def.settings.durability = Durability::Os;
    def.settings.flush_threshold_count = 300;
    db.create_stream(def).expect("create");
    const THREADS: u64 = 4;
    const BATCHES: u64 = 150;
    const ROWS: u64 = 20;
    let total = (THREADS * BATCHES * ROWS) as usize;
    let mut sub = db.subscribe("s", StartAt::Earliest, Some(vec!["id".into(), TP_SN.into()])).expect("subscribe");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let db = db.clone();
            s.spawn(move || {
                for b in 0..BATCHES {
                    let first = (t * BATCHES + b) * ROWS;
                    let ids: Vec<u64> = (first..first + ROWS).collect();
                    db.append("s", &batch(&ids)).expect("append");
                    if b % 37 == 0 {
                        db.flush("s").expect("flush");
                    }
                }
            });
        }
        let mut seen = BTreeSet::new();
        let mut last_sn: BTreeMap<u32, i64> = BTreeMap::new();
        while seen.len() < total {
            let Some(b) = sub.next_timeout(Duration::from_secs(20)).expect("next") else {
                panic!("subscription stalled after {} of {total} rows", seen.len())
            };
            let ids = b.batch.column(0).as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
            let sns = b.batch.column(1).as_any().downcast_ref::<Int64Array>().expect("i64").clone();
            for i in 0..ids.len() {
                assert!(seen.insert(ids.value(i)), "row {} delivered twice", ids.value(i));
                let last = last_sn.entry(b.shard).or_insert(-1);
                assert!(sns.value(i) > *last, "shard {} out of order", b.shard);
                *last = sns.value(i);
            }
        }
        assert_eq!(seen.len(), total);
    });
    let parts: usize = db.snapshot("s").expect("snapshot").units(&Predicate::all()).len();
    assert!(parts >= 2, "flushes happened");
    db.close().expect("close");
}
