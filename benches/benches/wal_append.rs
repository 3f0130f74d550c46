//! `wal_append`: throughput of `sluice_wal::Wal::append` for 1 KiB and 64 KiB payloads with
//! 1, 4 and 16 concurrent appenders, for every durability mode and codec, next to a bare
//! `write(2)` + `fdatasync(2)` loop of the same bytes on the same disk.
//!
//! After the criterion groups it prints an ack-latency table (p50/p99/max) of one appender with
//! `Durability::Fsync` against the bare `write + fdatasync` loop (set `SLUICE_WAL_LATENCY=0` to
//! skip it). Run with `cargo bench -p sluice-benches --bench wal_append` (release profile);
//! filter with a criterion regex, e.g. `-- 'wal_append/os/none/65536'`.
//!
//! The log lives in a temporary directory under `SLUICE_BENCH_DIR` (default: the system temp
//! directory), which must be on a real disk for the fsync figures to mean anything.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice_vfs::Rng;
use sluice_wal::{Codec, Durability, Wal, WalOptions};

const SIZES: [usize; 2] = [1024, 64 * 1024];
const APPENDERS: [usize; 3] = [1, 4, 16];

fn bench_root() -> tempfile::TempDir {
    let base = std::env::var_os("SLUICE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new().prefix("sluice-wal-bench").tempdir_in(base).expect("create bench directory")
}

/// An event-like payload: JSON-ish text with random numbers, so codecs have realistic work
/// (roughly 2-4x compressible), not a block of zeros.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        let line = format!(
            "{{\"device\":\"dev-{:04}\",\"ts\":{},\"temp\":{}.{},\"status\":\"{}\"}}\n",
            rng.below(5000),
            1_700_000_000_000u64 + rng.below(1_000_000),
            rng.below(100),
            rng.below(100),
            ["ok", "warn", "fail"][rng.below(3) as usize]
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

fn open_wal(dir: &Path, durability: Durability, codec: Codec) -> Wal {
    let opts = WalOptions::default().durability(durability).codec(codec).thread_name("bench-wal");
    Wal::open(dir, opts).expect("open wal")
}

/// Appends `iters` records spread over `appenders` threads; returns the wall time.
fn run_appends(wal: &Wal, data: &[u8], appenders: usize, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(appenders as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..appenders {
            s.spawn(|| {
                for _ in 0..per_thread {
                    wal.append(data.to_vec()).expect("append");
                }
            });
        }
    });
    // `None` acknowledges on enqueue: count the time until the bytes are written, so the figure
    // is a write rate, not a queueing rate.
    if wal.options().durability == Durability::None {
        wal.sync().expect("sync");
    }
    start.elapsed()
}

fn bench_wal(c: &mut Criterion) {
    let root = bench_root();
    let mut n = 0;
    for durability in [Durability::Fsync, Durability::Os, Durability::None] {
        for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
            let mut group = c.benchmark_group(format!("wal_append/{durability}/{codec}"));
            for size in SIZES {
                let data = payload(size, size as u64);
                group.throughput(Throughput::Bytes(size as u64));
                for appenders in APPENDERS {
                    n += 1;
                    let dir = root.path().join(format!("w{n}"));
                    let wal = open_wal(&dir, durability, codec);
                    group.bench_with_input(BenchmarkId::new(size.to_string(), appenders), &appenders, |b, &k| {
                        b.iter_custom(|iters| {
                            let t = run_appends(&wal, &data, k, iters);
                            // Keep the disk footprint flat: drop whole segments already written.
                            wal.truncate_before(wal.committed_seq()).expect("truncate");
                            t
                        })
                    });
                    if std::env::var_os("SLUICE_WAL_STATS").is_some() && wal.stats().appends > 0 {
                        let st = wal.stats();
                        eprintln!(
                            "  stats: {} appends, {} batches ({:.1} per group commit), {} syncs",
                            st.appends,
                            st.batches,
                            st.appends as f64 / st.batches.max(1) as f64,
                            st.syncs
                        );
                    }
                    wal.close().expect("close");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            group.finish();
        }
    }
}

/// The baseline: one thread doing `write(2)` + `fdatasync(2)` of the same bytes, no framing.
fn bench_bare(c: &mut Criterion) {
    let root = bench_root();
    let mut group = c.benchmark_group("wal_append/bare_write_fdatasync");
    for size in SIZES {
        let data = payload(size, size as u64);
        group.throughput(Throughput::Bytes(size as u64));
        let path = root.path().join(format!("bare-{size}"));
        let mut f = OpenOptions::new().create(true).append(true).open(&path).expect("open bare file");
        group.bench_function(BenchmarkId::new(size.to_string(), 1), |b| {
            b.iter(|| {
                f.write_all(&data).expect("write");
                f.sync_data().expect("fdatasync");
            })
        });
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn latency_report() {
    const N: usize = 2000;
    let root = bench_root();
    println!("\nack latency, one appender, {N} appends each (durability fsync):");
    println!("{:<28} {:>10} {:>10} {:>10} {:>10}", "case", "p50 us", "p99 us", "max us", "p99 ratio");
    for size in SIZES {
        let data = payload(size, size as u64);
        // Bare write + fdatasync.
        let path = root.path().join(format!("lat-bare-{size}"));
        let mut f = OpenOptions::new().create(true).append(true).open(&path).expect("open bare file");
        let mut bare = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            f.write_all(&data).expect("write");
            f.sync_data().expect("fdatasync");
            bare.push(t.elapsed());
        }
        // The WAL.
        let wal = open_wal(&root.path().join(format!("lat-wal-{size}")), Durability::Fsync, Codec::None);
        let mut walt = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            wal.append(data.clone()).expect("append");
            walt.push(t.elapsed());
        }
        wal.close().expect("close");
        bare.sort();
        walt.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ratio = us(percentile(&walt, 0.99)) / us(percentile(&bare, 0.99));
        for (name, v, r) in [("bare write+fdatasync", &bare, None), ("wal fsync", &walt, Some(ratio))] {
            println!(
                "{:<28} {:>10.1} {:>10.1} {:>10.1} {:>10}",
                format!("{name} {size} B"),
                us(percentile(v, 0.5)),
                us(percentile(v, 0.99)),
                us(*v.last().expect("non-empty")),
                r.map(|r| format!("{r:.2}x")).unwrap_or_default()
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list" || a == "--test" || a == "--list-tests");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    bench_bare(&mut c);
    bench_wal(&mut c);
    c.final_summary();
    if !listing && std::env::var("SLUICE_WAL_LATENCY").as_deref() != Ok("0") {
        latency_report();
    }
}
