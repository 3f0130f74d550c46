//! `kill -9` of the real `sluice serve` binary while clients write, then a restart on the same
//! data directory and a check of what survived.
//!
//! Writers insert batches over the Postgres wire (`INSERT ... VALUES`, one statement = one
//! batch) and over HTTP (`POST /ingest/s`, one body = one batch). Every row carries its batch
//! id and the batch size, and row ids are `batch * 64 + i`. The stream (2 shards) flushes every
//! 100 rows or 50 ms into small parts (so merges run too); a materialized view copies every
//! third row into a second stream and checkpoints every second.
//! The server is SIGKILLed at a seeded random moment (sometimes while it is still recovering),
//! restarted, and checked:
//!
//! * every acknowledged batch is present, every row of the stream exactly once;
//! * no batch is half visible (present batches hold exactly `bsize` rows; unacknowledged
//!   batches may be present or absent, never partly);
//! * the view is at-least-once: once it caught up, every source row with `id % 3 = 0` is in
//!   the target (maybe several times), and the target holds nothing else.
//!
//! 20 rounds by default; `SLUICE_CRASH_ROUNDS=N` for long runs (`tests/crash/run.sh --rounds N`).
//! The seed is printed with every failure; replay with `SLUICE_CRASH_SEED=<seed>` (the kill
//! moments are chosen by the seed, the thread interleavings are not).
//!
//! After the last round on a directory, `sluice::check` must find no damage there.
//!
//! The server is the `sluice` binary next to this test executable (`target/<profile>/sluice`),
//! or `SLUICE_BIN`. Cargo does not build it for the tests of another package: `.ci/run` and
//! `tests/crash/run.sh` run `cargo build --workspace --bins --tests` first.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_vfs::Rng;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Every network wait and every poll is bounded by this.
const WAIT: Duration = Duration::from_secs(20);
/// Rounds on one data directory before a fresh one (keeps each check's full read small).
const ROUNDS_PER_DIR: usize = 25;
/// Row ids are `batch * BATCH_SPAN + i`, `i < bsize <= BATCH_SPAN`.
const BATCH_SPAN: u64 = 64;

/// The `sluice` binary: `SLUICE_BIN`, or `target/<profile>/sluice` beside `target/<profile>/deps/`
/// where this test executable lives.
pub(crate) fn sluice_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "this test runs the real server binary, and {} does not exist. Build it first with \
         `cargo build --workspace --bins --tests` (same target directory and profile as the tests; \
         .ci/run and tests/crash/run.sh do this), or point SLUICE_BIN at a sluice binary.",
        bin.display()
    );
    bin
}

/// A `sluice serve` child process on loopback ports chosen by the OS.
struct ServerProc {
    child: Child,
    pg: SocketAddr,
    http: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

/// The last lines the server wrote to stderr, kept for failure messages.
const LOG_LINES: usize = 60;

/// A started `sluice serve` process whose stderr is being drained.
struct Spawned {
    child: Child,
    /// The last lines of its log.
    log: Arc<Mutex<VecDeque<String>>>,
    /// Receives the "sluice listening" line.
    listening: std::sync::mpsc::Receiver<String>,
    drain: std::thread::JoinHandle<()>,
}

fn spawn_child(bin: &Path, dir: &Path) -> Spawned {
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-level", "info"])
        .env_remove("SLUICE_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log2 = log.clone();
    // Drains stderr until the process dies (a full pipe would block the server's logging).
    let drain = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("sluice listening") {
                let _ = tx.send(line.clone());
            }
            let mut l = log2.lock().unwrap();
            if l.len() == LOG_LINES {
                l.pop_front();
            }
            l.push_back(line);
        }
    });
    Spawned { child, log, listening: rx, drain }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse().ok())
}

impl ServerProc {
    /// Starts the server and waits (bounded) until it says where it listens.
    fn start(bin: &Path, dir: &Path) -> Result<ServerProc, String> {
        let Spawned { mut child, log, listening, drain } = spawn_child(bin, dir);
        let line = match listening.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let _ = drain.join();
                let tail: Vec<String> = log.lock().unwrap().iter().cloned().collect();
                return Err(format!("the server did not start (exit {status:?}); its log:\n{}", tail.join("\n")));
            }
        };
        let (Some(pg), Some(http)) = (field(&line, "postgres="), field(&line, "http=")) else {
            return Err(format!("cannot read the addresses from the log line {line:?}"));
        };
        Ok(ServerProc { child, pg, http, log, drain: Some(drain) })
    }

    /// SIGKILL, and wait until the process is gone (its directory lock released).
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
    }

    fn log_tail(&self) -> String {
        self.log.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which batches were sent and which acknowledged; batch id -> size.
#[derive(Default)]
struct Ledger {
    next_batch: AtomicU64,
    attempted: Mutex<BTreeMap<u64, u64>>,
    acked: Mutex<BTreeMap<u64, u64>>,
}

impl Ledger {
    fn begin(&self, rng: &mut Rng) -> (u64, u64) {
        let batch = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let size = rng.range(1, BATCH_SPAN);
        self.attempted.lock().unwrap().insert(batch, size);
        (batch, size)
    }

    fn ack(&self, batch: u64, size: u64) {
        self.acked.lock().unwrap().insert(batch, size);
    }
}

/// A client error with the server's message (tokio-postgres shows only "db error").
fn pg_err(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn connect(pg: SocketAddr) -> Result<Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1").port(pg.port()).user("sluice").dbname("sluice").connect_timeout(WAIT);
    let (client, conn) = match tokio::time::timeout(WAIT, cfg.connect(NoTls)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err("connect timed out".into()),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn query(c: &Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let msgs = match tokio::time::timeout(WAIT, c.simple_query(sql)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(format!("{sql}: {}", pg_err(&e))),
        Err(_) => return Err(format!("{sql}: timed out")),
    };
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect()),
            _ => None,
        })
        .collect())
}

fn rows_sql(batch: u64, size: u64, via: &str) -> String {
    let rows: Vec<String> =
        (0..size).map(|i| format!("({}, {batch}, {size}, '{via}')", batch * BATCH_SPAN + i)).collect();
    format!("INSERT INTO s (id, batch, bsize, via) VALUES {}", rows.join(", "))
}

fn rows_json(batch: u64, size: u64) -> String {
    (0..size)
        .map(|i| format!("{{\"id\":{},\"batch\":{batch},\"bsize\":{size},\"via\":\"http\"}}\n", batch * BATCH_SPAN + i))
        .collect()
}

/// Shared by the writers of one round.
struct Round {
    ledger: Arc<Ledger>,
    /// Set just before the SIGKILL: errors after it are expected.
    killed: AtomicBool,
    deadline: Instant,
}

impl Round {
    /// An error is the end of a writer: expected after the kill, a failure before it.
    fn failed(&self, what: String) -> Result<(), String> {
        if self.killed.load(Ordering::Acquire) { Ok(()) } else { Err(format!("before the kill: {what}")) }
    }
}

fn pg_writer(pg: SocketAddr, round: &Round, mut rng: Rng) -> Result<(), String> {
    rt().block_on(async {
        let c = match connect(pg).await {
            Ok(c) => c,
            Err(e) => return round.failed(e),
        };
        while Instant::now() < round.deadline {
            let (batch, size) = round.ledger.begin(&mut rng);
            match tokio::time::timeout(WAIT, c.simple_query(&rows_sql(batch, size, "pg"))).await {
                Ok(Ok(_)) => round.ledger.ack(batch, size),
                Ok(Err(e)) => return round.failed(format!("insert of batch {batch}: {}", pg_err(&e))),
                Err(_) => return round.failed(format!("insert of batch {batch} timed out")),
            }
        }
        Err("the writer ran until its deadline: the kill never came".into())
    })
}

/// One `POST /ingest/s` (`Connection: close`): Ok(status, body) or the I/O error.
fn post(addr: SocketAddr, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, WAIT)?;
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    let head = format!(
        "POST /ingest/s HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn http_writer(http: SocketAddr, round: &Round, mut rng: Rng) -> Result<(), String> {
    while Instant::now() < round.deadline {
        let (batch, size) = round.ledger.begin(&mut rng);
        match post(http, &rows_json(batch, size)) {
            Ok((200, body)) if body.contains(&format!("\"rows\":{size}")) => round.ledger.ack(batch, size),
            Ok((status, body)) => return round.failed(format!("HTTP batch {batch}: status {status}: {body}")),
            Err(e) => return round.failed(format!("HTTP batch {batch}: {e}")),
        }
    }
    Err("the writer ran until its deadline: the kill never came".into())
}

/// Figures of a run.
#[derive(Debug, Default)]
struct Totals {
    rounds: usize,
    /// Distinct acknowledged batches and rows (each checked after every later round).
    acked_batches: u64,
    acked_rows: u64,
    /// Acknowledged rows looked for, summed over the checks.
    row_checks: u64,
    lost_rows: u64,
    duplicated_rows: u64,
    half_batches: u64,
    /// Live parts found by `sluice::check` at the end of each directory.
    parts_seen: u64,
}

/// Checks the restarted server against the ledger; adds to `totals`, Err describes violations.
async fn check(pg: SocketAddr, ledger: &Ledger, totals: &mut Totals) -> Result<(), String> {
    let c = connect(pg).await?;
    let rows = query(&c, "SELECT id, batch, bsize FROM table(s)").await?;
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let mut batches: BTreeMap<u64, (u64, BTreeSet<u64>)> = BTreeMap::new();
    let mut dups = 0;
    for r in &rows {
        let [id, batch, bsize] = [0, 1, 2].map(|i| r[i].parse::<u64>().unwrap_or(u64::MAX));
        if !ids.insert(id) {
            dups += 1;
            if dups <= 5 {
                problems.push(format!("row {id} (batch {batch}) is there twice"));
            }
        }
        let e = batches.entry(batch).or_insert_with(|| (bsize, BTreeSet::new()));
        if e.0 != bsize || id / BATCH_SPAN != batch || id % BATCH_SPAN >= bsize {
            problems.push(format!("row {id} does not belong to batch {batch} of {bsize} rows"));
        }
        e.1.insert(id);
    }
    let attempted = ledger.attempted.lock().unwrap().clone();
    let acked = ledger.acked.lock().unwrap().clone();
    let mut half = 0;
    for (b, (size, members)) in &batches {
        if members.len() as u64 != *size {
            half += 1;
            problems.push(format!("batch {b} is half visible: {} of {size} rows", members.len()));
        }
        if attempted.get(b) != Some(size) {
            problems.push(format!("batch {b} ({size} rows) was never sent"));
        }
    }
    let mut lost = 0;
    for (b, size) in &acked {
        let have = batches.get(b).map_or(0, |(_, m)| m.len() as u64);
        if have < *size {
            lost += size - have;
            if problems.len() < 20 {
                problems.push(format!("acknowledged batch {b} lost {} of its {size} rows", size - have));
            }
        }
    }
    totals.row_checks += acked.values().sum::<u64>();
    totals.lost_rows += lost;
    totals.duplicated_rows += dups;
    totals.half_batches += half;

    // The view: at least once, after it caught up (polled with a deadline).
    let want: BTreeSet<u64> = ids.iter().copied().filter(|id| id % 3 == 0).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        // The count first (cheap): the target holds at least as many rows once it caught up.
        let count = query(&c, "SELECT count() FROM table(t)").await?;
        if count.first().and_then(|r| r[0].parse::<usize>().ok()).unwrap_or(0) < want.len() {
            if Instant::now() > deadline {
                problems.push(format!("the view did not catch up within {WAIT:?}: fewer target rows than source rows"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let got: BTreeSet<u64> =
            query(&c, "SELECT id FROM table(t)").await?.iter().map(|r| r[0].parse().unwrap_or(u64::MAX)).collect();
        let extra: Vec<u64> = got.difference(&want).take(5).copied().collect();
        if !extra.is_empty() {
            problems.push(format!("the view wrote rows that are not in its source: {extra:?}"));
            break;
        }
        if got.len() == want.len() {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<u64> = want.difference(&got).take(5).copied().collect();
            problems.push(format!(
                "the view did not catch up within {WAIT:?}: {} source rows missing from its target, e.g. {missing:?}",
                want.len() - got.len()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

async fn setup(pg: SocketAddr) -> Result<(), String> {
    let c = connect(pg).await?;
    for sql in [
        "CREATE STREAM s (id uint64, batch uint64, bsize uint64, via string) SETTINGS shards = 2, \
         flush_threshold_count = 100, flush_threshold_ms = 50",
        "CREATE STREAM t (id uint64, batch uint64) SETTINGS flush_threshold_count = 100, flush_threshold_ms = 50",
        "CREATE MATERIALIZED VIEW v INTO t AS SELECT id, batch FROM s WHERE id % 3 = 0 SETTINGS checkpoint_interval = 1",
    ] {
        query(&c, sql).await?;
    }
    Ok(())
}

/// One round on a running server: writers, a SIGKILL at a seeded moment, a restart (sometimes
/// killed again while it recovers), and the check. Returns the restarted server.
fn round(
    bin: &Path,
    dir: &Path,
    server: ServerProc,
    ledger: &Arc<Ledger>,
    rng: &mut Rng,
    totals: &mut Totals,
) -> Result<ServerProc, String> {
    let state =
        Arc::new(Round { ledger: ledger.clone(), killed: AtomicBool::new(false), deadline: Instant::now() + WAIT });
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (state, wrng, pg, http) = (state.clone(), Rng::new(rng.next_u64()), server.pg, server.http);
        writers.push(std::thread::spawn(move || {
            if w < 2 { pg_writer(pg, &state, wrng) } else { http_writer(http, &state, wrng) }
        }));
    }
    // The moment of the kill: anywhere from the first appends to well past several flushes,
    // merges and a view checkpoint.
    std::thread::sleep(Duration::from_millis(rng.range(10, 1_200)));
    state.killed.store(true, Ordering::Release);
    server.kill();
    let mut errors = Vec::new();
    for w in writers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a writer panicked".into()),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    // Sometimes kill it again while it opens (recovery, views catching up).
    if rng.chance(0.2) {
        let Spawned { mut child, drain, .. } = spawn_child(bin, dir);
        std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
        let _ = child.kill();
        let _ = child.wait();
        let _ = drain.join();
    }
    let server = ServerProc::start(bin, dir)?;
    rt().block_on(check(server.pg, ledger, totals)).map_err(|e| format!("{e}\nserver log:\n{}", server.log_tail()))?;
    Ok(server)
}

#[test]
fn crash_kill9_server_keeps_acknowledged_rows() {
    let bin = sluice_binary();
    let rounds: usize = std::env::var("SLUICE_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed = std::env::var("SLUICE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut done = 0;
    while done < rounds {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Arc::new(Ledger::default());
        let fail = |round: usize, e: String| -> ! {
            panic!("kill -9 test failed in round {round} (SLUICE_CRASH_SEED={seed}, data in a temp dir):\n{e}")
        };
        let mut server = ServerProc::start(&bin, dir.path()).unwrap_or_else(|e| fail(done, e));
        rt().block_on(setup(server.pg)).unwrap_or_else(|e| fail(done, e));
        for _ in 0..ROUNDS_PER_DIR.min(rounds - done) {
            server = round(&bin, dir.path(), server, &ledger, &mut rng, &mut totals).unwrap_or_else(|e| fail(done, e));
            done += 1;
            totals.rounds = done;
        }
        let acked = ledger.acked.lock().unwrap();
        totals.acked_batches += acked.len() as u64;
        totals.acked_rows += acked.values().sum::<u64>();
        drop(acked);
        server.kill();
        // The directory after all those kills: nothing damaged (torn tails are fine).
        let report = sluice::check(dir.path()).unwrap_or_else(|e| fail(done, e.to_string()));
        if !report.is_clean() {
            let found: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
            fail(done, format!("sluice check found damage:\n{}", found.join("\n")));
        }
        totals.parts_seen += report.parts as u64;
        eprintln!(
            "kill -9: {done}/{rounds} rounds, {:.1?}, {} acknowledged rows so far, {} parts at the end of this directory",
            started.elapsed(),
            totals.acked_rows,
            report.parts
        );
    }
    println!(
        "kill -9: {} rounds in {:.1?} (seed {seed}): {} acknowledged batches with {} rows, checked after \
         every later round ({} row checks); lost {}, duplicated {}, half-visible batches {}; {} live parts \
         at the ends (sluice check: no damage)",
        totals.rounds,
        started.elapsed(),
        totals.acked_batches,
        totals.acked_rows,
        totals.row_checks,
        totals.lost_rows,
        totals.duplicated_rows,
        totals.half_batches,
        totals.parts_seen
    );
    assert_eq!((totals.lost_rows, totals.duplicated_rows, totals.half_batches), (0, 0, 0), "seed {seed}");
}
