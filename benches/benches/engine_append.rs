//! `engine_append`: `Database::append` of the peer benchmark's event rows: 1,000-row batches
//! from 1 and 4 appenders with durability `os` and `fsync`, and 1M-row bulk batches; then an
//! ack-latency table (p50/p99/max per 1,000-row batch, 4 appenders) unless
//! `SLUICE_ENGINE_LATENCY=0`. Throughput is in rows. Data goes to `SLUICE_BENCH_DIR` (default:
//! the system temp directory), which must be a real disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice::arrow::array::RecordBatch;
use sluice::{Database, Durability, Options, StreamDef};
use sluice_benches::{event_batch, event_schema};

fn root() -> tempfile::TempDir {
    let base = std::env::var_os("SLUICE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new().prefix("sluice-engine-bench").tempdir_in(base).expect("bench dir")
}

fn open(dir: &std::path::Path, durability: Durability) -> Database {
    let db = Database::open(dir, Options::default()).expect("open");
    let mut def = StreamDef::from_schema("events", &event_schema()).sort_key(&["ts"]);
    def.settings.durability = durability;
    db.create_stream(def).expect("create");
    db
}

fn batches(rows_each: usize, count: usize) -> Vec<RecordBatch> {
    let total = (rows_each * count) as u64;
    (0..count).map(|i| event_batch((i * rows_each) as u64, rows_each, total, 42)).collect()
}

fn bench(c: &mut Criterion) {
    let root = root();
    let small = batches(1000, 256);
    let mut n = 0;
    for durability in [Durability::Os, Durability::Fsync] {
        let mut g = c.benchmark_group(format!("engine_append/{durability}"));
        g.throughput(Throughput::Elements(1000));
        for appenders in [1usize, 4] {
            n += 1;
            let db = open(&root.path().join(format!("db{n}")), durability);
            g.bench_with_input(BenchmarkId::new("1000rows", appenders), &appenders, |b, &k| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(k as u64);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..k {
                            let db = &db;
                            let small = &small;
                            s.spawn(move || {
                                for i in 0..per {
                                    db.append("events", &small[(i as usize + t * 61) % small.len()]).expect("append");
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
            db.close().expect("close");
        }
        g.finish();
    }
    let big = batches(1_000_000, 2);
    let mut g = c.benchmark_group("engine_append/bulk");
    g.throughput(Throughput::Elements(1_000_000));
    g.sample_size(10);
    let db = open(&root.path().join("bulk"), Durability::Fsync);
    let mut i = 0;
    g.bench_function(BenchmarkId::new("1Mrows", 1), |b| {
        b.iter(|| {
            i += 1;
            db.append("events", &big[i % 2]).expect("append");
        })
    });
    db.close().expect("close");
    g.finish();
}

fn latency() {
    let root = root();
    let small = batches(1000, 256);
    println!("\nack latency per 1,000-row batch, 4 appenders x 2,000 batches:");
    println!("{:<10} {:>10} {:>10} {:>10} {:>12}", "durability", "p50 us", "p99 us", "max us", "rows/s");
    for durability in [Durability::Os, Durability::Fsync] {
        let db = open(&root.path().join(format!("lat-{durability}")), durability);
        let start = Instant::now();
        let mut all: Vec<Duration> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let db = &db;
                    let small = &small;
                    s.spawn(move || {
                        (0..2000)
                            .map(|i| {
                                let t0 = Instant::now();
                                db.append("events", &small[(i + t * 61) % small.len()]).expect("append");
                                t0.elapsed()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().expect("appender")).collect()
        });
        let secs = start.elapsed().as_secs_f64();
        all.sort();
        let p = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{:<10} {:>10.0} {:>10.0} {:>10.0} {:>12.0}",
            durability.to_string(),
            p(0.5),
            p(0.99),
            all.last().expect("samples").as_secs_f64() * 1e6,
            8_000_000.0 / secs
        );
        db.close().expect("close");
    }
}

fn main() {
    let listing = std::env::args().any(|a| a == "--list" || a == "--test");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    if !listing && std::env::var("SLUICE_ENGINE_LATENCY").as_deref() != Ok("0") {
        latency();
    }
}
