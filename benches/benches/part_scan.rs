//! `part_scan`: reading parts through the engine's snapshot scans on the peer event table:
//! a full scan of one Float64 column (reported in bytes of that column per second), and a
//! point lookup on the sort key (`id`), which must touch a single row group and page. Rows:
//! `SLUICE_BENCH_ROWS` (default 4,000,000). Also prints bytes per stored row.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sluice::arrow::array::{Array, Float64Array};
use sluice::{ColumnRange, Database, Durability, Options, Predicate, ScanRequest, StreamDef};
use sluice_benches::{dir_bytes, event_batch, event_schema};

fn main() {
    let rows: u64 = std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(4_000_000);
    let base = std::env::var_os("SLUICE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new().prefix("sluice-part-scan").tempdir_in(base).expect("dir");
    let db = Database::open(root.path(), Options::default()).expect("open");
    let mut def = StreamDef::from_schema("events", &event_schema()).sort_key(&["id"]);
    def.settings.durability = Durability::Os;
    db.create_stream(def).expect("create");
    let chunk = 1_000_000u64;
    let mut first = 0;
    while first < rows {
        let n = chunk.min(rows - first);
        db.append("events", &event_batch(first, n as usize, rows, 42)).expect("append");
        first += n;
    }
    db.flush("events").expect("flush");
    db.compact("events").expect("compact");
    let shard = root.path().join("streams/events/0");
    let (parts, wal) = (dir_bytes(&shard.join("parts")), dir_bytes(&shard.join("wal")));
    println!(
        "{rows} rows: parts {parts} bytes ({:.2} bytes/row), log {wal} bytes (the open segment)",
        parts as f64 / rows as f64
    );

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    let mut g = c.benchmark_group("part_scan");
    g.throughput(Throughput::Bytes(rows * 8));
    let req = ScanRequest::all().columns(["value"]);
    g.bench_function("full_scan_f64", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for batch in db.scan("events", &req).expect("scan") {
                let batch = batch.expect("batch");
                let v = batch.column(0).as_any().downcast_ref::<Float64Array>().expect("f64");
                sum += v.values().iter().sum::<f64>();
            }
            sum
        })
    });
    g.throughput(Throughput::Elements(1));
    let point = rows * 7 / 10 + 7;
    let lookup = ScanRequest::all().filter(Predicate::all().and(ColumnRange::eq("id", point)));
    g.bench_function("point_lookup_sort_key", |b| {
        b.iter(|| {
            let n: usize = db.scan("events", &lookup).expect("scan").map(|b| b.expect("batch").num_rows()).sum();
            assert_eq!(n, 1);
        })
    });
    g.finish();
    c.final_summary();
    // How much of the data a point lookup reads.
    let snap = db.snapshot("events").expect("snapshot");
    let mut seen = std::collections::HashSet::new();
    for unit in snap.units(&Predicate::all().and(ColumnRange::eq("id", point))) {
        if let sluice::ScanUnit::Part { part, .. } = unit
            && seen.insert(part.id())
        {
            let p = part.part().expect("open part");
            let plan = p.plan(&Predicate::all().and(ColumnRange::eq("id", point)), true).expect("plan");
            println!(
                "point lookup: part {} has {} row groups, reads {} of them, {} of {} rows",
                part.id(),
                p.num_row_groups(),
                plan.row_groups.len(),
                plan.selected_rows,
                plan.total_rows
            );
        }
    }
    db.close().expect("close");
}
