//! The wire benchmarks: an in-process server (`Server::start_with`) on 127.0.0.1:0 with
//! tokio-postgres clients on their own runtime, so every figure includes the Postgres protocol,
//! the loopback socket and the server's text encoding.
//!
//! * `--wire-latency`: one connection inserts single rows (one INSERT at a time), another runs
//!   `SELECT id FROM s`; the time from sending the INSERT to receiving its row, for durability
//!   os and fsync.
//! * `--wire-ingest --parquet FILE`: the table sent with `COPY events FROM STDIN WITH (FORMAT csv)`
//!   (250,000-row COPYs) and with multi-row INSERTs (`--wire-insert-rows` per statement), one
//!   connection each, on a fresh database; the CSV and SQL text are made before the clock starts.
//! * `--wire-load`: `--wire-seconds` of 32 inserting connections (10-row INSERTs), 16 streaming
//!   SELECTs and 16 connections running historical queries; errors, rows, sampled RSS, latencies.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sluice::arrow::array::RecordBatch;
use sluice::{Database, Durability, Options};
use sluice_server::{Config, Server, ServerHandle};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::{Args, BoxError, fresh_dir, log, percentile, read_parquet, rss_bytes};

const WAIT: Duration = Duration::from_secs(30);

fn server(db: Database) -> Result<ServerHandle, BoxError> {
    let config = Config { http_listen: None, shutdown_grace: Duration::from_millis(200), ..Config::ephemeral() };
    Ok(Server::start_with(config, db)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

async fn connect(server: &ServerHandle) -> Result<Client, BoxError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1").port(server.pg_addr().port()).user("sluice").dbname("sluice").connect_timeout(WAIT);
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    json!({"count": v.len(), "p50": percentile(&v, 0.5), "p99": percentile(&v, 0.99),
           "max": v.last().copied().unwrap_or(f64::NAN)})
}

/// `--wire-latency` for durability os and fsync.
pub(crate) fn latency(args: &Args) -> Result<Value, BoxError> {
    let mut all = Vec::new();
    for d in [Durability::Os, Durability::Fsync] {
        all.push(latency_one(args, d)?);
    }
    Ok(Value::Array(all))
}

fn latency_one(args: &Args, d: Durability) -> Result<Value, BoxError> {
    let dir = fresh_dir(&args.workdir, &format!("wire-latency-{d}"))?;
    let server = server(Database::open(&dir, Options::default())?)?;
    let n = args.latency_inserts;
    let ack = match d {
        Durability::Fsync => "quorum",
        Durability::Os => "local",
        Durability::None => "none",
    };
    let rt = runtime()?;
    let lat = rt.block_on(async {
        let w = connect(&server).await?;
        let r = connect(&server).await?;
        w.simple_query(&format!("CREATE STREAM s (id int64) SETTINGS ack = '{ack}'")).await?;
        let stream = r.simple_query_raw("SELECT id FROM s").await?;
        let mut stream = Box::pin(stream);
        // The query runs once its RowDescription arrived.
        match tokio::time::timeout(WAIT, stream.next()).await? {
            Some(Ok(SimpleQueryMessage::RowDescription(_))) => {}
            other => return Err(format!("streaming SELECT did not start: {other:?}").into()),
        }
        let (tx, mut rx) = tokio::sync::watch::channel(0usize);
        let reader = tokio::spawn(async move {
            let mut seen: Vec<(usize, Instant)> = Vec::with_capacity(n);
            while let Some(Ok(m)) = stream.next().await {
                if let SimpleQueryMessage::Row(row) = m {
                    let id: usize = row.get(0).and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
                    seen.push((id, Instant::now()));
                    let _ = tx.send(seen.len());
                    if seen.len() >= n {
                        break;
                    }
                }
            }
            seen
        });
        let mut sent = Vec::with_capacity(n);
        let t0 = Instant::now();
        for i in 0..n {
            sent.push(Instant::now());
            w.simple_query(&format!("INSERT INTO s (id) VALUES ({i})")).await?;
            // One insert in flight: wait until the streaming connection received it.
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|c| *c > i))
                .await
                .map_err(|_| format!("insert {i} not received within 10 s"))??;
        }
        let seconds = t0.elapsed().as_secs_f64();
        let seen = reader.await?;
        let lat: Vec<f64> =
            seen.iter().filter(|(id, _)| *id < n).map(|(id, at)| ms(at.duration_since(sent[*id]))).collect();
        r.cancel_token().cancel_query(NoTls).await?;
        Ok::<_, BoxError>((lat, seconds))
    })?;
    let (lat, seconds) = lat;
    let s = summary(lat);
    log(&format!(
        "wire latency ({d}): {n} inserts in {seconds:.2} s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        s["p50"].as_f64().unwrap_or(f64::NAN),
        s["p99"].as_f64().unwrap_or(f64::NAN),
        s["max"].as_f64().unwrap_or(f64::NAN)
    ));
    drop(rt);
    server.shutdown()?;
    Ok(json!({"durability": d.to_string(), "inserts": n, "seconds": seconds, "latency_ms": s}))
}

/// A value as COPY CSV wants it: NULL is an empty unquoted field, other values quoted when
/// needed.
fn csv_value(out: &mut String, v: Option<String>) {
    match v {
        None => {}
        Some(s) if s.is_empty() || s.contains([',', '"', '\n', '\r']) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        Some(s) => out.push_str(&s),
    }
}

/// A value as a SQL literal.
fn sql_value(out: &mut String, v: Option<String>, quoted: bool) {
    match v {
        None => out.push_str("NULL"),
        Some(s) if quoted => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Some(s) => out.push_str(&s),
    }
}

fn rows_text(batches: &[RecordBatch], rows_per_chunk: usize, csv: bool) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut cur = String::new();
    let mut in_chunk = 0;
    for b in batches {
        let quoted: Vec<bool> = b.schema().fields().iter().map(|f| !f.data_type().is_numeric()).collect();
        for r in 0..b.num_rows() {
            if !csv {
                cur.push_str(if in_chunk == 0 { "" } else { "," });
                cur.push('(');
            }
            for (i, c) in b.columns().iter().enumerate() {
                if i > 0 {
                    cur.push(',');
                }
                let v = sluice::text::format_value(c, r);
                if csv {
                    csv_value(&mut cur, v);
                } else {
                    sql_value(&mut cur, v, quoted[i]);
                }
            }
            cur.push_str(if csv { "\n" } else { ")" });
            in_chunk += 1;
            if in_chunk == rows_per_chunk {
                chunks.push(std::mem::take(&mut cur));
                in_chunk = 0;
            }
        }
    }
    if in_chunk > 0 {
        chunks.push(cur);
    }
    chunks
}

/// `--wire-ingest`: COPY and multi-row INSERT of the Parquet table, rows/s.
pub(crate) fn ingest(args: &Args, durability: Durability) -> Result<Value, BoxError> {
    let parquet = args.parquet.clone().ok_or("--wire-ingest needs --parquet")?;
    let batches = read_parquet(&parquet)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    let cols = names.join(", ");
    let copy_chunks = rows_text(&batches, 250_000, true);
    let insert_rows = args.wire_insert_rows;
    let inserts: Vec<String> = rows_text(&batches, insert_rows, false)
        .into_iter()
        .map(|values| format!("INSERT INTO events ({cols}) VALUES {values}"))
        .collect();
    let mut res = json!({"rows": rows, "durability": durability.to_string(), "connections": 1});
    for method in ["copy_csv", "insert_values"] {
        let dir = fresh_dir(&args.workdir, &format!("wire-ingest-{method}"))?;
        let server = server(super::open(&dir, durability)?)?;
        let rt = runtime()?;
        let seconds = rt.block_on(async {
            let c = connect(&server).await?;
            let t0 = Instant::now();
            if method == "copy_csv" {
                for chunk in &copy_chunks {
                    let sink = c
                        .copy_in::<_, bytes::Bytes>(&format!("COPY events ({cols}) FROM STDIN WITH (FORMAT csv)"))
                        .await?;
                    futures::pin_mut!(sink);
                    for piece in chunk.as_bytes().chunks(1 << 20) {
                        sink.send(bytes::Bytes::copy_from_slice(piece)).await?;
                    }
                    sink.finish().await?;
                }
            } else {
                for sql in &inserts {
                    c.simple_query(sql).await?;
                }
            }
            let seconds = t0.elapsed().as_secs_f64();
            let count = c.simple_query("SELECT count() FROM table(events)").await?;
            let got = count.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            if got.as_deref() != Some(rows.to_string().as_str()) {
                return Err(format!("{method}: {got:?} rows stored, {rows} sent").into());
            }
            Ok::<_, BoxError>(seconds)
        })?;
        drop(rt);
        server.shutdown()?;
        let rps = rows as f64 / seconds;
        log(&format!("wire ingest {method}: {rows} rows in {seconds:.2} s ({:.3} M rows/s)", rps / 1e6));
        res[method] = json!({"seconds": seconds, "rows_per_second": rps});
    }
    res["insert_rows_per_statement"] = json!(insert_rows);
    Ok(res)
}

/// `--wire-load`: 32 inserting, 16 streaming and 16 historical connections for
/// `--wire-seconds`.
pub(crate) fn load(args: &Args, durability: Durability) -> Result<Value, BoxError> {
    let dir = fresh_dir(&args.workdir, "wire-load")?;
    let server = server(Database::open(&dir, Options::default())?)?;
    let ack = match durability {
        Durability::Fsync => "quorum",
        Durability::Os => "local",
        Durability::None => "none",
    };
    let rt = runtime()?;
    let run = Duration::from_secs(args.wire_seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let inserted = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let rss_max = Arc::new(AtomicU64::new(rss_bytes()));
    let rss0 = rss_bytes();
    let res = rt.block_on(async {
        let admin = connect(&server).await?;
        admin
            .simple_query(&format!("CREATE STREAM load (id int64, conn int32, payload string) SETTINGS ack = '{ack}'"))
            .await?;
        let mut tasks = Vec::new();
        // Streaming SELECTs first, so they see every insert.
        let mut cancels = Vec::new();
        for _ in 0..16 {
            let c = connect(&server).await?;
            cancels.push(c.cancel_token());
            let stream = c.simple_query_raw("SELECT id, conn, payload FROM load").await?;
            let (received, errors, stop) = (received.clone(), errors.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let _c = c;
                let mut stream = Box::pin(stream);
                while let Some(m) = stream.next().await {
                    match m {
                        Ok(SimpleQueryMessage::Row(_)) => {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            // The cancel at the end is expected.
                            if !(stop.load(Ordering::Acquire)
                                && e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED))
                            {
                                errors.fetch_add(1, Ordering::Relaxed);
                                log(&format!("streaming error: {e}"));
                            }
                            break;
                        }
                    }
                }
                ("stream", Vec::new())
            }));
        }
        for conn in 0..32 {
            let c = connect(&server).await?;
            let (inserted, errors, stop) = (inserted.clone(), errors.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut id = 0i64;
                while !stop.load(Ordering::Acquire) {
                    let mut sql = String::from("INSERT INTO load (id, conn, payload) VALUES ");
                    for k in 0..10 {
                        let _ = write!(sql, "{}({id}, {conn}, 'payload-{conn}-{id}')", if k > 0 { "," } else { "" });
                        id += 1;
                    }
                    let t = Instant::now();
                    match c.simple_query(&sql).await {
                        Ok(_) => {
                            lat.push(ms(t.elapsed()));
                            inserted.fetch_add(10, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            log(&format!("insert error: {e}"));
                        }
                    }
                }
                ("insert", lat)
            }));
        }
        let queries = [
            "SELECT count(), max(id) FROM table(load)",
            "SELECT conn, count() FROM table(load) GROUP BY conn ORDER BY conn LIMIT 5",
            "SELECT id, payload FROM table(load) WHERE conn = 7 ORDER BY id DESC LIMIT 10",
            "SELECT count() FROM table(load) WHERE payload LIKE '%-1%'",
        ];
        for q in 0..16 {
            let c = connect(&server).await?;
            let (errors, stop) = (errors.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut k = q;
                while !stop.load(Ordering::Acquire) {
                    let t = Instant::now();
                    match c.simple_query(queries[k % queries.len()]).await {
                        Ok(_) => lat.push(ms(t.elapsed())),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            log(&format!("historical query error: {e}"));
                        }
                    }
                    k += 1;
                }
                ("historical", lat)
            }));
        }
        let t0 = Instant::now();
        while t0.elapsed() < run {
            tokio::time::sleep(Duration::from_millis(100)).await;
            rss_max.fetch_max(rss_bytes(), Ordering::Relaxed);
        }
        stop.store(true, Ordering::Release);
        let seconds = t0.elapsed().as_secs_f64();
        let ins = inserted.load(Ordering::Relaxed);
        // Inserts and historical queries in flight finish first (the streaming tasks are the
        // first 16), so that the inserted count is final.
        let streams: Vec<_> = tasks.drain(..16).collect();
        let (mut ins_lat, mut hist_lat) = (Vec::new(), Vec::new());
        for t in tasks {
            let (kind, lat) = tokio::time::timeout(WAIT, t).await??;
            match kind {
                "insert" => ins_lat.extend(lat),
                _ => hist_lat.extend(lat),
            }
        }
        // Every streaming query receives every row: wait for that (bounded), then cancel them.
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.load(Ordering::Relaxed) < 16 * inserted.load(Ordering::Relaxed) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain_seconds = t0.elapsed().as_secs_f64() - seconds;
        for t in &cancels {
            let _ = t.cancel_query(NoTls).await;
        }
        for t in streams {
            tokio::time::timeout(WAIT, t).await??;
        }
        let inserted_total = inserted.load(Ordering::Relaxed);
        Ok::<_, BoxError>(json!({
            "seconds": seconds, "durability": durability.to_string(),
            "connections": {"insert": 32, "streaming": 16, "historical": 16},
            "errors": errors.load(Ordering::Relaxed),
            "rows_inserted": inserted_total, "rows_inserted_in_window": ins,
            "insert_rows_per_second": ins as f64 / seconds,
            "rows_received": received.load(Ordering::Relaxed), "rows_expected": 16 * inserted_total,
            "drain_seconds_after_stop": drain_seconds,
            "insert_latency_ms": summary(ins_lat), "historical_latency_ms": summary(hist_lat),
            "rss_max_bytes": rss_max.load(Ordering::Relaxed), "rss_start_bytes": rss0,
        }))
    })?;
    drop(rt);
    server.shutdown()?;
    log(&format!("wire load: {res}"));
    Ok(res)
}
