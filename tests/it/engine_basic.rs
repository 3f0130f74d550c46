//! The engine's typed API end to end: create, append, scan, flush, reopen, subscribe, drop.

use std::sync::Arc;
use std::time::Duration;

use sluice::arrow::array::{Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use sluice::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice::{ColumnRange, Database, Error, Options, Predicate, ScanRequest, StartAt, StorageType, StreamDef, TP_SN};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("value", DataType::Int64, true),
    ]))
}

fn batch(from: u64, n: u64) -> RecordBatch {
    let ids: Vec<u64> = (from..from + n).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(UInt64Array::from(ids.clone())),
            Arc::new(TimestampMillisecondArray::from(
                ids.iter().map(|i| 1_700_000_000_000 + *i as i64).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(ids.iter().map(|i| ["a", "b", "c"][*i as usize % 3]).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(ids.iter().map(|i| *i as i64 * 10).collect::<Vec<_>>())),
        ],
    )
    .expect("batch")
}

fn ids(db: &Database, stream: &str, req: &ScanRequest) -> Vec<u64> {
    let mut out = Vec::new();
    for b in db.scan(stream, req).expect("scan") {
        let b = b.expect("batch");
        let c = b.column_by_name("id").expect("id").as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
        out.extend(c.values().iter().copied());
    }
    out.sort();
    out
}

fn def(name: &str, storage: StorageType, shards: u32) -> StreamDef {
    let mut d = StreamDef::from_schema(name, &schema()).sort_key(&["kind", "ts"]);
    d.settings.storage_type = storage;
    d.settings.shards = shards;
    d.settings.durability = sluice::Durability::Os;
    d.settings.logstore_retention_bytes = None;
    d
}

#[test]
fn append_scan_flush_reopen_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path(), Options::default()).expect("open");
        db.create_stream(def("events", StorageType::Hybrid, 2)).expect("create");
        assert!(matches!(db.create_stream(def("events", StorageType::Hybrid, 1)), Err(Error::StreamExists { .. })));
        for i in 0..10 {
            db.append("events", &batch(i * 100, 100)).expect("append");
        }
        assert_eq!(ids(&db, "events", &ScanRequest::all()), (0..1000).collect::<Vec<_>>());
        assert_eq!(db.flush("events").expect("flush"), 1000);
        db.append("events", &batch(1000, 50)).expect("append");
        let all = ids(&db, "events", &ScanRequest::all());
        assert_eq!(all, (0..1050).collect::<Vec<_>>());
        let pred = Predicate::all().and(ColumnRange::new("id").ge(100u64).lt(200u64));
        assert_eq!(ids(&db, "events", &ScanRequest::all().filter(pred)), (100..200).collect::<Vec<_>>());
        db.close().expect("close");
    }
    // Reopen: parts + replayed log.
    let db = Database::open(dir.path(), Options::default()).expect("reopen");
    assert_eq!(ids(&db, "events", &ScanRequest::all()), (0..1050).collect::<Vec<_>>());
    let p = db.scan("events", &ScanRequest::all().columns(["id", TP_SN])).expect("scan");
    let mut sns = Vec::new();
    for b in p {
        let b = b.expect("b");
        assert_eq!(b.schema().field(1).name(), TP_SN);
        sns.extend(b.column(1).as_any().downcast_ref::<Int64Array>().expect("i64").values().iter().copied());
    }
    assert_eq!(sns.len(), 1050);
    db.drop_stream("events").expect("drop");
    assert!(matches!(db.drop_stream("events"), Err(Error::StreamNotFound { .. })));
    assert!(!dir.path().join("streams/events").exists());
}

#[test]
fn every_storage_type_scans_and_subscribes() {
    for storage in [StorageType::Hybrid, StorageType::Streaming, StorageType::InMemory] {
        let db = Database::in_memory();
        db.create_stream(def("s", storage, 1)).expect("create");
        let mut sub = db.subscribe("s", StartAt::Earliest, Some(vec!["id".into(), TP_SN.into()])).expect("sub");
        for i in 0..5 {
            db.append("s", &batch(i * 10, 10)).expect("append");
            if i == 2 {
                db.flush("s").expect("flush");
            }
        }
        assert_eq!(ids(&db, "s", &ScanRequest::all()), (0..50).collect::<Vec<_>>(), "{storage}");
        let mut seen = Vec::new();
        while seen.len() < 50 {
            let Some(b) = sub.next_timeout(Duration::from_secs(5)).expect("next") else { break };
            let c = b.batch.column(0).as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
            seen.extend(c.values().iter().copied());
        }
        // The subscription started before any append, so it saw every row in order.
        assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{storage}");
        db.close().expect("close");
    }
}

#[test]
fn bad_batches_write_nothing() {
    let db = Database::in_memory();
    db.create_stream(def("s", StorageType::Hybrid, 1)).expect("create");
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1, -5]))],
    )
    .expect("batch");
    let e = db.append("s", &bad).expect_err("negative id");
    assert!(e.to_string().contains("'id'"), "{e}");
    assert!(ids(&db, "s", &ScanRequest::all()).is_empty());
    assert!(matches!(db.append("nope", &batch(0, 1)), Err(Error::StreamNotFound { .. })));
}

#[test]
fn event_time_column_fills_tp_time() {
    let db = Database::in_memory();
    let mut d = def("s", StorageType::Hybrid, 1);
    d.settings.event_time_column = Some("ts".into());
    db.create_stream(d).expect("create");
    db.append("s", &batch(0, 5)).expect("append");
    let mut bad = def("t", StorageType::Hybrid, 1);
    bad.settings.event_time_column = Some("kind".into());
    assert!(matches!(db.create_stream(bad), Err(Error::InvalidDefinition(_))));
    for b in db.scan("s", &ScanRequest::all().columns(["ts", "_tp_time"])).expect("scan") {
        let b = b.expect("batch");
        let ts = b.column(0).as_any().downcast_ref::<TimestampMillisecondArray>().expect("ts").values().to_vec();
        let tp = b.column(1).as_any().downcast_ref::<TimestampMillisecondArray>().expect("tp").values().to_vec();
        assert_eq!(ts, tp);
    }
}
