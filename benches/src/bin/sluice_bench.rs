//! `sluice-bench`: sluice measured the way `../shared/bench/peers.py` measures DuckDB and chDB,
//! speaking its external-engine contract:
//!
//! ```text
//! sluice-bench --parquet FILE --rows N --stream-rows S --batch-rows B --reps R --warmup W
//!              --queries QUERIES.json --workdir DIR --out RESULT.json [--durability fsync|os|none]
//! ```
//!
//! Phases, in peers.py's order: (b) streaming ingest of the first S rows in B-row appends,
//! each acknowledged per the durability mode, on a fresh database, for durability `fsync` and
//! `os`; (a) bulk ingest of the whole table from Arrow (in memory) and from the Parquet file,
//! `--ingest-reps` times each, `finalize_seconds` = the flush that makes the data fully
//! columnar (it is durable and queryable at acknowledgement already); (d) storage bytes;
//! (c) Q1..Q10 and Q8a with warmup and reps. Progress goes to stderr, the result JSON to
//! `--out`, and a table to stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use sluice::arrow::array::{Array, AsArray, RecordBatch};
use sluice::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice::{Database, Durability, Options, StreamDef};
use sluice_benches::dir_bytes;

/// The benchmarks over the Postgres wire.
#[path = "sluice_bench/wire.rs"]
mod wire;

#[derive(Parser, Debug)]
#[command(name = "sluice-bench", about = "sluice side by side with DuckDB and chDB (peers.py contract)")]
struct Args {
    /// The event table (peers.py writes it).
    #[arg(long)]
    parquet: Option<PathBuf>,
    /// Rows in the table (checked).
    #[arg(long, default_value_t = 0)]
    rows: u64,
    /// Rows of the streaming-ingest phase.
    #[arg(long, default_value_t = 1_000_000)]
    stream_rows: u64,
    /// Rows per streaming append.
    #[arg(long, default_value_t = 1000)]
    batch_rows: usize,
    /// Timed runs per query.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed runs per query.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Bulk loads per source.
    #[arg(long, default_value_t = 3)]
    ingest_reps: usize,
    /// queries.json written by peers.py (titles; sluice runs its own SQL for each).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Where databases go.
    #[arg(long)]
    workdir: PathBuf,
    /// Result JSON.
    #[arg(long)]
    out: PathBuf,
    /// Durability of the bulk phases and queries' database (the streaming phase runs both
    /// fsync and os).
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Instead of the peer phases: insert -> streaming subscriber latency (embedded), one
    /// single-row insert at a time, for durability os and fsync.
    #[arg(long)]
    streaming_latency: bool,
    /// Inserts measured by --streaming-latency.
    #[arg(long, default_value_t = 10_000)]
    latency_inserts: usize,
    /// Instead of the peer phases: the Parquet table replayed as a stream through
    /// `tumble(5s)` count/sum per event_type (rows/s).
    #[arg(long)]
    window: bool,
    /// Instead of the peer phases: a materialized view of a global aggregation over this many
    /// keys (10 rows per key appended in 100,000-row batches): rows/s and state memory.
    #[arg(long)]
    view_keys: Option<u64>,
    /// Instead of the peer phases: Q1..Q10 only, on a database kept in `<workdir>/queries-db`
    /// (loaded from --parquet and compacted on the first run, reused after). For profiling.
    #[arg(long)]
    queries_only: bool,
    /// With --queries-only: bytes of the decoded-column cache (`Options::cache_bytes`; 0 turns
    /// it off).
    #[arg(long)]
    cache_bytes: Option<usize>,
    /// Instead of the peer phases: insert over one Postgres connection -> row received by a
    /// streaming SELECT on another (in-process server), for durability os and fsync.
    #[arg(long)]
    wire_latency: bool,
    /// Instead of the peer phases: the --parquet table ingested over the Postgres wire with
    /// COPY FROM STDIN (CSV) and with multi-row INSERTs (durability --durability).
    #[arg(long)]
    wire_ingest: bool,
    /// Rows per INSERT statement of --wire-ingest.
    #[arg(long, default_value_t = 1000)]
    wire_insert_rows: usize,
    /// Instead of the peer phases: 64 connections (32 inserting, 16 streaming, 16 historical)
    /// for --wire-seconds (durability --durability).
    #[arg(long)]
    wire_load: bool,
    /// Duration of --wire-load.
    #[arg(long, default_value_t = 60)]
    wire_seconds: u64,
}

fn log(msg: &str) {
    eprintln!("[sluice-bench] {msg}");
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("sluice-bench: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error>;

fn run(args: Args) -> Result<(), BoxError> {
    let durability: Durability = args.durability.parse().map_err(|e| format!("--durability: {e}"))?;
    std::fs::create_dir_all(&args.workdir)?;
    if args.wire_latency || args.wire_ingest || args.wire_load {
        return wire_modes(&args, durability);
    }
    if args.streaming_latency || args.window || args.view_keys.is_some() {
        return streaming_modes(&args);
    }
    let parquet = args.parquet.clone().ok_or("--parquet is required")?;
    if args.queries_only {
        return queries_only(&args, &parquet, durability);
    }
    let t = Instant::now();
    let batches = read_parquet(&parquet)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    log(&format!("read {rows} rows from {} in {:.2} s", parquet.display(), t.elapsed().as_secs_f64()));
    if rows != args.rows {
        log(&format!("warning: --rows {} but the file has {rows} rows", args.rows));
    }
    let mut res = json!({
        "engine": "sluice",
        "version": env!("CARGO_PKG_VERSION"),
        "rows": rows,
        "settings": {"durability": durability.to_string(), "threads": 2, "shards": 1},
        "machine": machine(),
        "bulk_ingest": [],
        "stream_ingest": [],
        "queries": {},
    });

    // (b) streaming ingest.
    let stream_rows = args.stream_rows.min(rows);
    for d in [Durability::Fsync, Durability::Os] {
        let entry = stream_phase(&args, &batches, stream_rows, d)?;
        res["stream_ingest"].as_array_mut().expect("array").push(entry);
    }

    // (a) bulk ingest, Arrow then Parquet; the last Parquet load stays for (d) and (c).
    let mut last: Option<(Database, PathBuf)> = None;
    for source in ["arrow", "parquet"] {
        let mut entry = json!({"source": source, "rows": rows, "seconds": [], "finalize_seconds": [],
                               "storage_bytes": [], "parts": []});
        for rep in 0..args.ingest_reps.max(1) {
            if let Some((db, _)) = last.take() {
                db.close()?;
            }
            let dir = fresh_dir(&args.workdir, &format!("bulk-{source}-{rep}"))?;
            let db = open(&dir, durability)?;
            let t0 = Instant::now();
            match source {
                "arrow" => {
                    for b in &batches {
                        db.append("events", b)?;
                    }
                }
                _ => {
                    for b in read_parquet(&parquet)? {
                        db.append("events", &b)?;
                    }
                }
            }
            let seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            db.flush("events")?;
            let fin = t1.elapsed().as_secs_f64();
            let count = db.snapshot("events")?.rows();
            if count != rows {
                return Err(format!("bulk {source}: {count} rows stored, expected {rows}").into());
            }
            let bytes = dir_bytes(&dir);
            log(&format!(
                "bulk {source} rep {rep}: {seconds:.2} s ({:.2} M rows/s), finalize {fin:.2} s, {:.1} MB",
                rows as f64 / seconds / 1e6,
                bytes as f64 / 1e6
            ));
            entry["seconds"].as_array_mut().expect("array").push(json!(seconds));
            entry["finalize_seconds"].as_array_mut().expect("array").push(json!(fin));
            entry["storage_bytes"].as_array_mut().expect("array").push(json!(bytes));
            entry["parts"].as_array_mut().expect("array").push(json!(parts(&db)?));
            last = Some((db, dir));
        }
        res["bulk_ingest"].as_array_mut().expect("array").push(entry);
    }
    let (db, dir) = last.ok_or("no bulk load ran")?;
    db.compact("events")?;

    // (d) storage.
    let bytes = dir_bytes(&dir);
    res["storage"] = json!({"bytes": bytes, "detail": {"bytes_per_row": bytes as f64 / rows.max(1) as f64,
                                                       "parts": parts(&db)?}});
    log(&format!("storage: {:.1} MB ({:.2} bytes/row)", bytes as f64 / 1e6, bytes as f64 / rows.max(1) as f64));

    // (c) queries.
    query_phases(&db, rows, &args, &mut res);
    db.close()?;
    std::fs::write(&args.out, serde_json::to_vec_pretty(&res)?)?;
    print_table(&res);
    Ok(())
}

/// `--queries-only`: the query phase on a kept database (loaded once).
fn queries_only(args: &Args, parquet: &Path, durability: Durability) -> Result<(), BoxError> {
    let dir = args.workdir.join("queries-db");
    // A marker written after the load: an interrupted load is redone.
    let db = if dir.join("loaded").exists() {
        let mut opts = Options::default();
        if let Some(b) = args.cache_bytes {
            opts.cache_bytes = b;
        }
        let db = Database::open(&dir, opts)?;
        log(&format!("reusing {}", dir.display()));
        db
    } else {
        let dir = fresh_dir(&args.workdir, "queries-db")?;
        let db = open(&dir, durability)?;
        for b in read_parquet(parquet)? {
            db.append("events", &b)?;
        }
        db.flush("events")?;
        db.compact("events")?;
        std::fs::write(dir.join("loaded"), b"")?;
        log(&format!("loaded {}", dir.display()));
        db
    };
    let rows = db.snapshot("events")?.rows();
    let mut res = json!({"engine": "sluice", "version": env!("CARGO_PKG_VERSION"), "rows": rows, "queries": {}});
    query_phases(&db, rows, args, &mut res);
    db.close()?;
    std::fs::write(&args.out, serde_json::to_vec_pretty(&res)?)?;
    Ok(())
}

/// (c): every query with warmup and reps, into `res["queries"]`.
fn query_phases(db: &Database, rows: u64, args: &Args, res: &mut Value) {
    let titles = read_titles(args.queries.as_deref());
    // SLUICE_BENCH_QUERIES=Q3,Q9 runs only those (for profiling).
    let only: Option<Vec<String>> =
        std::env::var("SLUICE_BENCH_QUERIES").ok().map(|v| v.split(',').map(|q| q.trim().to_string()).collect());
    for (qid, sql) in queries(rows) {
        if only.as_ref().is_some_and(|o| !o.iter().any(|q| q == qid)) {
            continue;
        }
        let entry = query_phase(db, &sql, args);
        match entry.get("times_ms").and_then(|t| t.as_array()).filter(|t| !t.is_empty()) {
            Some(t) => {
                let mut v: Vec<f64> = t.iter().filter_map(|x| x.as_f64()).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                log(&format!("{qid}: median {:.2} ms", v[v.len() / 2]));
            }
            None => log(&format!("{qid}: {}", entry.get("error").and_then(|e| e.as_str()).unwrap_or("no runs"))),
        }
        let mut entry = entry;
        if let Some(title) = titles.get(qid) {
            entry["title"] = json!(title);
        }
        res["queries"][qid] = entry;
    }
}

/// `--streaming-latency` and `--window`: streaming figures (issue D), written to `--out`.
fn streaming_modes(args: &Args) -> Result<(), BoxError> {
    let mut res = json!({"engine": "sluice", "version": env!("CARGO_PKG_VERSION"), "machine": machine()});
    if args.streaming_latency {
        let mut all = Vec::new();
        for d in [Durability::Os, Durability::Fsync] {
            all.push(latency_mode(args, d)?);
        }
        res["streaming_latency"] = Value::Array(all);
    }
    if args.window {
        let parquet = args.parquet.clone().ok_or("--window needs --parquet")?;
        res["window"] = window_mode(args, &parquet)?;
    }
    if let Some(keys) = args.view_keys {
        res["view"] = view_mode(args, keys)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&res)?)?;
    println!("{}", serde_json::to_string_pretty(&res)?);
    Ok(())
}

/// `--wire-latency`, `--wire-ingest` and `--wire-load` (issue E), written to `--out`.
fn wire_modes(args: &Args, durability: Durability) -> Result<(), BoxError> {
    let mut res = json!({"engine": "sluice", "version": env!("CARGO_PKG_VERSION"), "machine": machine()});
    if args.wire_latency {
        res["wire_latency"] = wire::latency(args)?;
    }
    if args.wire_ingest {
        res["wire_ingest"] = wire::ingest(args, durability)?;
    }
    if args.wire_load {
        res["wire_load"] = wire::load(args, durability)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&res)?)?;
    println!("{}", serde_json::to_string_pretty(&res)?);
    Ok(())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

/// `CREATE MATERIALIZED VIEW ... AS SELECT k, count(), sum(v) FROM s GROUP BY k` over `keys`
/// keys: 10 rows per key appended (durability os) in 100,000-row batches; the time until the
/// view has processed them all (`sync`), its state and the process RSS.
fn view_mode(args: &Args, keys: u64) -> Result<Value, BoxError> {
    let dir = fresh_dir(&args.workdir, "view")?;
    let db = Database::open(&dir, Options::default())?;
    db.execute("CREATE STREAM s (k uint64, v int64) SETTINGS ack = 'local'")?;
    db.execute("CREATE MATERIALIZED VIEW agg AS SELECT k, count() AS c, sum(v) AS total FROM s GROUP BY k")?;
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::UInt64, false), Field::new("v", DataType::Int64, false)]));
    let rows = keys * 10;
    let batch = 100_000u64;
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let mut i = 0u64;
    while i < rows {
        let n = batch.min(rows - i);
        // Keys cycle so every batch touches 100,000 different keys.
        let k: Vec<u64> = (i..i + n).map(|x| (x.wrapping_mul(2_654_435_761)) % keys).collect();
        let v: Vec<i64> = (i..i + n).map(|x| (x % 100) as i64).collect();
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(sluice::arrow::array::UInt64Array::from(k)),
                Arc::new(sluice::arrow::array::Int64Array::from(v)),
            ],
        )?;
        db.append("s", &b)?;
        i += n;
    }
    let appended = t0.elapsed().as_secs_f64();
    db.sync(std::time::Duration::from_secs(600))?;
    let seconds = t0.elapsed().as_secs_f64();
    let info = db.views().into_iter().next().ok_or("no view")?;
    let rss = rss_bytes();
    log(&format!(
        "view over {keys} keys: {rows} rows in {seconds:.2} s ({:.2} M rows/s; appends alone {appended:.2} s), state {:.1} MiB, RSS +{:.1} MiB",
        rows as f64 / seconds / 1e6,
        info.state_bytes as f64 / (1 << 20) as f64,
        rss.saturating_sub(rss0) as f64 / (1 << 20) as f64
    ));
    db.close()?;
    Ok(json!({"keys": keys, "rows": rows, "seconds": seconds, "append_seconds": appended,
              "rows_per_second": rows as f64 / seconds, "state_bytes": info.state_bytes,
              "rss_growth_bytes": rss.saturating_sub(rss0), "status": info.status}))
}

/// One single-row append at a time; the time until a running `SELECT * FROM s` delivers it.
fn latency_mode(args: &Args, d: Durability) -> Result<Value, BoxError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = fresh_dir(&args.workdir, &format!("latency-{d}"))?;
    let db = Database::open(&dir, Options::default())?;
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let mut def = StreamDef::from_schema("s", &schema);
    def.settings.durability = d;
    db.create_stream(def)?;
    let n = args.latency_inserts;
    let got = Arc::new(AtomicU64::new(0));
    let result = db.query("SELECT id FROM s")?;
    let cancel = result.cancel_flag();
    let g = got.clone();
    let reader = std::thread::spawn(move || -> Vec<(i64, Instant)> {
        let mut seen = Vec::with_capacity(n);
        for b in result {
            let Ok(b) = b else { break };
            let now = Instant::now();
            let ids = b.column(0).as_primitive::<sluice::arrow::datatypes::Int64Type>();
            for i in 0..ids.len() {
                seen.push((ids.value(i), now));
            }
            g.store(seen.len() as u64, Ordering::Release);
            if seen.len() >= n {
                break;
            }
        }
        seen
    });
    let mut sent = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(sluice::arrow::array::Int64Array::from(vec![i as i64]))],
        )?;
        sent.push(Instant::now());
        db.append("s", &b)?;
        // One insert in flight: wait until the subscriber has it (bounded).
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while got.load(Ordering::Acquire) <= i as u64 {
            if Instant::now() > deadline {
                return Err(format!("insert {i} not delivered within 10 s").into());
            }
            std::hint::spin_loop();
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    cancel.store(true, std::sync::atomic::Ordering::Release);
    let seen = reader.join().map_err(|_| "reader panicked")?;
    let mut lat: Vec<f64> =
        seen.iter().map(|(id, at)| at.duration_since(sent[*id as usize]).as_secs_f64() * 1e3).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99, max) = (percentile(&lat, 0.5), percentile(&lat, 0.99), lat.last().copied().unwrap_or(f64::NAN));
    log(&format!("streaming latency ({d}): {n} inserts, p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"));
    db.close()?;
    Ok(json!({"durability": d.to_string(), "inserts": n, "seconds": seconds,
              "latency_ms": {"p50": p50, "p99": p99, "max": max}}))
}

/// The table appended to a stream (durability os), then a streaming tumble aggregate reading
/// it from the earliest row; rows/s until it has processed every row.
fn window_mode(args: &Args, parquet: &Path) -> Result<Value, BoxError> {
    let batches = read_parquet(parquet)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let dir = fresh_dir(&args.workdir, "window")?;
    let db = open(&dir, Durability::Os)?;
    for b in &batches {
        db.append("events", b)?;
    }
    db.flush("events")?;
    log(&format!("window: {rows} rows stored"));
    let mut runs = Vec::new();
    for rep in 0..args.reps.max(1) {
        let default = "SELECT window_start, event_type, count(*), sum(value) FROM tumble(events, ts, 5s) \
                       GROUP BY window_start, event_type SETTINGS seek_to = 'earliest'";
        // SLUICE_BENCH_WINDOW_SQL: another query over the same replay (for profiling).
        let custom = std::env::var("SLUICE_BENCH_WINDOW_SQL").ok();
        let sql = custom.as_deref().unwrap_or(default);
        let t0 = Instant::now();
        let result = db.query(sql)?;
        let cancel = result.cancel_flag();
        let reader = std::thread::spawn(move || {
            let mut out = 0u64;
            for b in result {
                match b {
                    Ok(b) => out += b.num_rows() as u64,
                    Err(_) => break,
                }
            }
            out
        });
        db.sync(std::time::Duration::from_secs(600))?;
        let seconds = t0.elapsed().as_secs_f64();
        cancel.store(true, std::sync::atomic::Ordering::Release);
        let emitted = reader.join().map_err(|_| "reader panicked")?;
        log(&format!(
            "window rep {rep}: {:.1} M rows/s ({seconds:.3} s, {emitted} result rows)",
            rows as f64 / seconds / 1e6
        ));
        runs.push(json!({"seconds": seconds, "rows_per_second": rows as f64 / seconds, "result_rows": emitted}));
    }
    db.close()?;
    Ok(json!({"query": "tumble(events, ts, 5s) count(*), sum(value) GROUP BY window_start, event_type",
              "rows": rows, "runs": runs}))
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    json!({"nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), "cpu_model": cpu})
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, BoxError> {
    let f = std::fs::File::open(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)?.with_batch_size(1 << 20).build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

fn fresh_dir(base: &Path, name: &str) -> Result<PathBuf, BoxError> {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn open(dir: &Path, durability: Durability) -> Result<Database, BoxError> {
    let db = Database::open(dir, Options::default())?;
    // event_type and url are low-cardinality strings (8 and 1,000 values): stored and read as
    // dictionaries, as ClickHouse's LowCardinality(String).
    let base = sluice_benches::event_schema();
    let fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "event_type" | "url" => Field::new(
                f.name(),
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                f.is_nullable(),
            ),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Schema::new(fields);
    let mut def = StreamDef::from_schema("events", &schema).sort_key(&["ts"]);
    def.settings.durability = durability;
    def.settings.event_time_column = Some("ts".into());
    if let Some(n) = std::env::var("SLUICE_BENCH_FLUSH_ROWS").ok().and_then(|v| v.parse().ok()) {
        def.settings.flush_threshold_count = n;
    }
    db.create_stream(def)?;
    Ok(db)
}

fn parts(db: &Database) -> Result<usize, BoxError> {
    let snap = db.snapshot("events")?;
    let mut ids = std::collections::HashSet::new();
    for u in snap.units(&sluice::Predicate::all()) {
        if let sluice::ScanUnit::Part { part, .. } = u {
            ids.insert(part.id());
        }
    }
    Ok(ids.len())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (k.floor() as usize, k.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo as f64)
}

fn stream_phase(args: &Args, batches: &[RecordBatch], n: u64, d: Durability) -> Result<Value, BoxError> {
    let dir = fresh_dir(&args.workdir, &format!("stream-{d}"))?;
    let db = open(&dir, d)?;
    let mut pieces = Vec::new();
    let mut left = n as usize;
    'outer: for b in batches {
        let mut off = 0;
        while off < b.num_rows() {
            if left == 0 {
                break 'outer;
            }
            let len = args.batch_rows.min(b.num_rows() - off).min(left);
            pieces.push(b.slice(off, len));
            off += len;
            left -= len;
        }
    }
    let mut lat = Vec::with_capacity(pieces.len());
    let t0 = Instant::now();
    for p in &pieces {
        let b0 = Instant::now();
        db.append("events", p)?;
        lat.push(b0.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    db.flush("events")?;
    let settle = t1.elapsed().as_secs_f64();
    let count = db.snapshot("events")?.rows();
    if count != n {
        return Err(format!("stream {d}: {count} rows stored, expected {n}").into());
    }
    let bytes = dir_bytes(&dir);
    let tenth = (lat.len() / 10).max(1);
    let by_tenth: Vec<f64> = lat
        .chunks(tenth)
        .map(|c| {
            let mut c = c.to_vec();
            c.sort_by(|a, b| a.total_cmp(b));
            percentile(&c, 0.5)
        })
        .collect();
    let mut sorted = lat.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    log(&format!(
        "stream append_{d}: {:.0} rows/s, p50 {:.3} ms, p99 {:.3} ms per {}-row batch",
        n as f64 / seconds,
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        args.batch_rows
    ));
    let entry = json!({
        "method": format!("append_{d}"), "rows": n, "batch_rows": args.batch_rows, "batches": pieces.len(),
        "seconds": seconds, "durability": d.to_string(),
        "batch_ms": {"p50": percentile(&sorted, 0.5), "p99": percentile(&sorted, 0.99),
                     "max": sorted.last().copied().unwrap_or(f64::NAN)},
        "batch_ms_p50_by_tenth": by_tenth, "settle_seconds": settle, "parts": parts(&db)?,
        "storage_bytes": bytes,
    });
    db.close()?;
    Ok(entry)
}

/// sluice's SQL for peers.py's questions (historical queries: `table(events)`).
fn queries(rows: u64) -> Vec<(&'static str, String)> {
    let point = (rows - 1).min(rows * 7 / 10 + 7);
    vec![
        ("Q1", "SELECT count(*) FROM table(events)".into()),
        ("Q2", "SELECT count(*) FROM table(events) WHERE event_type = 'click'".into()),
        (
            "Q3",
            "SELECT event_type, count(*) AS n, sum(value) AS total, avg(value) AS mean FROM table(events) \
             GROUP BY event_type ORDER BY event_type"
                .into(),
        ),
        (
            "Q4",
            "SELECT user_id, count(*) AS n FROM table(events) GROUP BY user_id ORDER BY n DESC, user_id LIMIT 10"
                .into(),
        ),
        (
            "Q5",
            "SELECT to_start_of_minute(ts) AS minute, count(*) AS n FROM table(events) GROUP BY minute ORDER BY minute"
                .into(),
        ),
        ("Q6", "SELECT count(DISTINCT user_id) FROM table(events)".into()),
        (
            "Q7",
            "SELECT count(*) AS n, avg(value) AS mean FROM table(events) \
             WHERE ts >= '2024-01-01 12:00:00' AND ts < '2024-01-01 12:14:24'"
                .into(),
        ),
        (
            "Q8",
            "SELECT event_type, quantile_exact_inclusive(0.5)(value) AS p50, \
             quantile_exact_inclusive(0.99)(value) AS p99 FROM table(events) GROUP BY event_type ORDER BY event_type"
                .into(),
        ),
        (
            "Q8a",
            "SELECT event_type, quantile(0.5)(value) AS p50, quantile(0.99)(value) AS p99 FROM table(events) \
             GROUP BY event_type ORDER BY event_type"
                .into(),
        ),
        (
            "Q9",
            "SELECT url, sum(value) AS total FROM table(events) WHERE event_type = 'purchase' \
             GROUP BY url ORDER BY total DESC, url LIMIT 10"
                .into(),
        ),
        ("Q10", format!("SELECT * FROM table(events) WHERE id = {point}")),
    ]
}

fn read_titles(path: Option<&Path>) -> BTreeMap<String, String> {
    let Some(p) = path else { return BTreeMap::new() };
    let Ok(text) = std::fs::read_to_string(p) else { return BTreeMap::new() };
    let Ok(v) = serde_json::from_str::<Value>(&text) else { return BTreeMap::new() };
    v.as_object()
        .map(|o| o.iter().filter_map(|(k, q)| Some((k.clone(), q.get("title")?.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn query_phase(db: &Database, sql: &str, args: &Args) -> Value {
    let mut times = Vec::new();
    let mut last = None;
    let run = || -> Result<Vec<RecordBatch>, sluice::Error> { db.query(sql)?.collect() };
    for _ in 0..args.warmup {
        match run() {
            Ok(r) => last = Some(r),
            Err(e) => return json!({"sql": sql, "times_ms": [], "error": e.to_string()}),
        }
    }
    for _ in 0..args.reps {
        let t0 = Instant::now();
        match run() {
            Ok(r) => {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
                last = Some(r);
            }
            Err(e) => return json!({"sql": sql, "times_ms": times, "error": e.to_string()}),
        }
    }
    json!({"sql": sql, "times_ms": times, "result": last.map(|b| rows_json(&b)).unwrap_or_default()})
}

/// Result rows as JSON, timestamps as epoch seconds (peers.py's normal form).
fn rows_json(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| cell(c, r)).collect());
        }
    }
    out
}

fn cell(c: &Arc<dyn Array>, r: usize) -> Value {
    use sluice::arrow::datatypes as t;
    if c.is_null(r) {
        return Value::Null;
    }
    match c.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let v = sluice::arrow::compute::cast(&c.slice(r, 1), &DataType::Int64).ok();
            v.map(|a| json!(a.as_primitive::<t::Int64Type>().value(0))).unwrap_or(Value::Null)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let v = sluice::arrow::compute::cast(&c.slice(r, 1), &DataType::UInt64).ok();
            v.map(|a| json!(a.as_primitive::<t::UInt64Type>().value(0))).unwrap_or(Value::Null)
        }
        DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            let v = sluice::arrow::compute::cast(&c.slice(r, 1), &DataType::Float64).ok();
            v.map(|a| json!(a.as_primitive::<t::Float64Type>().value(0))).unwrap_or(Value::Null)
        }
        DataType::Timestamp(unit, _) => {
            let v = sluice::arrow::compute::cast(&c.slice(r, 1), &DataType::Int64).ok();
            let div = match unit {
                TimeUnit::Second => 1.0,
                TimeUnit::Millisecond => 1e3,
                TimeUnit::Microsecond => 1e6,
                TimeUnit::Nanosecond => 1e9,
            };
            v.map(|a| json!(a.as_primitive::<t::Int64Type>().value(0) as f64 / div)).unwrap_or(Value::Null)
        }
        DataType::Boolean => json!(c.as_boolean().value(r)),
        _ => sluice::text::format_value(c, r).map(Value::String).unwrap_or(Value::Null),
    }
}

fn print_table(res: &Value) {
    println!("\nsluice ({} rows, durability {})", res["rows"], res["settings"]["durability"]);
    for s in res["stream_ingest"].as_array().into_iter().flatten() {
        let rate = s["rows"].as_f64().unwrap_or(0.0) / s["seconds"].as_f64().unwrap_or(1.0);
        println!(
            "  stream {:<14} {:>12.0} rows/s   p50 {:.3} ms  p99 {:.3} ms",
            s["method"].as_str().unwrap_or(""),
            rate,
            s["batch_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            s["batch_ms"]["p99"].as_f64().unwrap_or(f64::NAN)
        );
    }
    for b in res["bulk_ingest"].as_array().into_iter().flatten() {
        let mut secs: Vec<f64> = b["seconds"].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect();
        secs.sort_by(|a, b| a.total_cmp(b));
        let med = secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "  bulk {:<16} {:>12.2} M rows/s",
            b["source"].as_str().unwrap_or(""),
            b["rows"].as_f64().unwrap_or(0.0) / med / 1e6
        );
    }
    println!("  storage {:>20} bytes", res["storage"]["bytes"]);
    if let Some(q) = res["queries"].as_object() {
        for (id, e) in q {
            let mut t: Vec<f64> = e["times_ms"].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect();
            t.sort_by(|a, b| a.total_cmp(b));
            match t.get(t.len() / 2) {
                Some(m) => println!("  {id:<4} {m:>10.2} ms"),
                None => println!("  {id:<4} error: {}", e["error"].as_str().unwrap_or("?")),
            }
        }
    }
}
