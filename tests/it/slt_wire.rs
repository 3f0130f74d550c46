//! Runs the SQL logic tests in `tests/slt/**/*.slt` over the Postgres wire: each file against a
//! fresh in-process server (in-memory database) with tokio-postgres, every record sent with
//! `simple_query`. Values arrive as Postgres text and are rendered as the embedded runner
//! (`slt.rs`) renders them; where the wire text differs, it is normalised by the column's Arrow
//! type (from `Database::describe` of the record, which plans without running):
//!
//! * booleans come as `t`/`f`, printed `true`/`false`;
//! * floats come as `Infinity`/`-Infinity`/`NaN`, printed `inf`/`-inf`/`nan`, and a value with a
//!   fraction is rounded to 6 decimals as the embedded runner does;
//! * timestamps with a time zone carry `+00`, dropped;
//! * lists come as Arrow's display text `[a, b, , c]`: split on `, `, elements rendered as the
//!   embedded runner renders them (an empty string element as `(empty)`, a float element in
//!   shortest form). The wire text cannot tell a NULL string element from an empty one (both
//!   are empty), nor an element containing `, ` from two elements; no file has either.
//!
//! The streaming commands of `tests/slt/README.md` work over the wire too: `SUBSCRIBE name AS q`
//! opens a second connection running `q` (a streaming SELECT) and a task there collects its rows;
//! the record returns once the query started (RowDescription) or failed. `SYNC` and the wait of
//! `FETCH name` use the in-process `Database::sync` (the engine's test hook, as in the embedded
//! runner), and `FETCH name` then also waits until the connection received every row the query
//! emitted (`rows_out` of its `system.queries` entry), since rows still travel through the
//! server's channel and the socket after the query produced them. `CANCEL name` sends a
//! CancelRequest and waits for the 57014 error and for the query to leave `system.queries`.
//!
//! Files run embedded only: none.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sluice::Database;
use sluice::arrow::array::{AsArray, Float64Array};
use sluice::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use sluice_server::{Config, Server, ServerHandle};
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::slt::{STREAM_WAIT, slt_files};

/// An error of a record: the server's message (what the embedded runner's error says), or the
/// runner's own.
#[derive(Debug)]
struct WireError(String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl From<tokio_postgres::Error> for WireError {
    fn from(e: tokio_postgres::Error) -> Self {
        WireError(e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
    }
}

impl From<sluice::Error> for WireError {
    fn from(e: sluice::Error) -> Self {
        WireError(e.to_string())
    }
}

type WireResult<T> = Result<T, WireError>;

/// What a streaming query's connection has received.
#[derive(Default)]
struct Received {
    /// Rows not fetched yet.
    rows: Vec<Vec<String>>,
    /// Rows received in all.
    total: u64,
    error: Option<String>,
    ended: bool,
}

/// A streaming query on its own connection.
struct WireSub {
    state: Arc<(Mutex<Received>, Condvar)>,
    client: Client,
    /// Its `system.queries` id (none for a statement that is not a streaming query).
    id: Option<u64>,
    width: usize,
}

/// One file's server and connection.
struct Wire {
    rt: tokio::runtime::Runtime,
    server: Option<ServerHandle>,
    client: Client,
    subs: HashMap<String, WireSub>,
}

impl Wire {
    fn start() -> WireResult<Self> {
        // No grace at the end of a file: streaming queries still running are cancelled at once.
        let config = Config { http_listen: None, shutdown_grace: Duration::ZERO, ..Config::ephemeral() };
        let server = Server::start_with(config, Database::in_memory()).map_err(|e| WireError(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let client = rt.block_on(connect(&server))?;
        Ok(Wire { rt, server: Some(server), client, subs: HashMap::new() })
    }

    fn db(&self) -> &Database {
        self.server.as_ref().expect("server").database()
    }

    /// Ids of the streaming queries (not views) running now.
    fn query_ids(&self) -> WireResult<Vec<u64>> {
        let mut ids = Vec::new();
        for b in self.db().query("SELECT id FROM system.queries WHERE kind = 'query'")? {
            let b = b?;
            ids.extend(b.column(0).as_primitive::<UInt64Type>().values().iter().copied());
        }
        Ok(ids)
    }

    /// `rows_out` of a running query, `None` once it is gone.
    fn rows_out(&self, id: u64) -> WireResult<Option<u64>> {
        for b in self.db().query(&format!("SELECT rows_out FROM system.queries WHERE id = {id}"))? {
            let b = b?;
            if b.num_rows() > 0 {
                return Ok(Some(b.column(0).as_primitive::<UInt64Type>().value(0)));
            }
        }
        Ok(None)
    }

    /// The streaming commands of the `.slt` files; `None` for SQL.
    fn streaming_command(&mut self, sql: &str) -> Option<WireResult<DBOutput<DefaultColumnType>>> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        let upper: Vec<String> = words.iter().take(4).map(|w| w.to_ascii_uppercase()).collect();
        let up = |i: usize| upper.get(i).map(String::as_str);
        match (up(0), up(2)) {
            (Some("SUBSCRIBE"), Some("AS")) => {
                let name = words[1].to_string();
                let rest = sql.trim_start()["SUBSCRIBE".len()..].trim_start();
                let query = rest[name.len()..].trim_start()["AS".len()..].to_string();
                Some(self.subscribe(name, &query))
            }
            (Some("FETCH"), Some("FROM")) => {
                let n: usize = words[1].parse().ok()?;
                Some(self.fetch(words[3], Some(n)))
            }
            (Some("FETCH"), _) if words.len() == 2 => Some(self.fetch(words[1], None)),
            (Some("CANCEL"), _) if words.len() == 2 => Some(self.cancel(words[1])),
            (Some("SYNC"), _) if words.len() == 1 => {
                Some(self.db().sync(STREAM_WAIT).map(|_| DBOutput::StatementComplete(0)).map_err(WireError::from))
            }
            _ => None,
        }
    }

    fn subscribe(&mut self, name: String, query: &str) -> WireResult<DBOutput<DefaultColumnType>> {
        let schema = self.db().describe(query).ok().flatten();
        let before = self.query_ids()?;
        let server = self.server.as_ref().expect("server");
        let client = self.rt.block_on(connect(server))?;
        let state: Arc<(Mutex<Received>, Condvar)> = Arc::default();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<WireResult<usize>>();
        let stream = self.rt.block_on(client.simple_query_raw(query))?;
        let st = state.clone();
        self.rt.spawn(async move {
            let mut started = Some(started_tx);
            futures::pin_mut!(stream);
            let (lock, cv) = &*st;
            while let Some(m) = stream.next().await {
                match m {
                    Ok(SimpleQueryMessage::RowDescription(cols)) => {
                        if let Some(tx) = started.take() {
                            let _ = tx.send(Ok(cols.len()));
                        }
                    }
                    Ok(SimpleQueryMessage::Row(r)) => {
                        let row = render_row(&r, schema.as_ref());
                        let mut d = lock.lock().unwrap();
                        d.rows.push(row);
                        d.total += 1;
                        cv.notify_all();
                    }
                    Ok(_) => {
                        if let Some(tx) = started.take() {
                            let _ = tx.send(Ok(0));
                        }
                    }
                    Err(e) => {
                        let e = WireError::from(e);
                        match started.take() {
                            Some(tx) => {
                                let _ = tx.send(Err(e));
                            }
                            None => lock.lock().unwrap().error = Some(e.0),
                        }
                        break;
                    }
                }
            }
            lock.lock().unwrap().ended = true;
            cv.notify_all();
        });
        let width = self.rt.block_on(async {
            match tokio::time::timeout(STREAM_WAIT, started_rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(WireError(format!("{name}: the query ended without an answer"))),
                Err(_) => Err(WireError(format!("{name}: no answer to the query after {STREAM_WAIT:?}"))),
            }
        })?;
        // The query is listed once it started; SUBSCRIBEs run one at a time.
        let id = self.query_ids()?.into_iter().filter(|i| !before.contains(i)).max();
        self.subs.insert(name, WireSub { state, client, id, width });
        Ok(DBOutput::StatementComplete(0))
    }

    /// `FETCH name`: after `sync` and once every row the query emitted reached the connection,
    /// every row received and not fetched yet. `FETCH n FROM name`: waits for the next `n`
    /// rows (or the end of the query).
    fn fetch(&mut self, name: &str, n: Option<usize>) -> WireResult<DBOutput<DefaultColumnType>> {
        let sub = self.subs.get(name).ok_or_else(|| WireError(format!("no subscription {name}")))?;
        let deadline = Instant::now() + STREAM_WAIT;
        let (lock, cv) = &*sub.state;
        if n.is_none() {
            self.db().sync(STREAM_WAIT)?;
            let target = match sub.id {
                Some(id) => self.rows_out(id)?,
                None => None,
            };
            let mut d = lock.lock().unwrap();
            // A query no longer listed has ended: wait for the end of its result.
            while !d.ended && d.error.is_none() && target.is_none_or(|t| d.total < t) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(WireError(format!(
                        "{name}: {} rows received of {target:?} emitted after {STREAM_WAIT:?}",
                        d.total
                    )));
                }
                d = cv.wait_timeout(d, left).unwrap().0;
            }
        }
        let mut d = lock.lock().unwrap();
        if let Some(n) = n {
            while d.rows.len() < n && !d.ended && d.error.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(WireError(format!("{name}: {} of {n} rows after {STREAM_WAIT:?}", d.rows.len())));
                }
                d = cv.wait_timeout(d, left).unwrap().0;
            }
        }
        if let Some(e) = d.error.take() {
            return Err(WireError(e));
        }
        let take = n.unwrap_or(d.rows.len()).min(d.rows.len());
        let rows: Vec<Vec<String>> = d.rows.drain(..take).collect();
        Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; sub.width], rows })
    }

    /// `CANCEL name`: a CancelRequest, then waits until the query's result ended and the
    /// query left `system.queries`.
    fn cancel(&mut self, name: &str) -> WireResult<DBOutput<DefaultColumnType>> {
        let sub = self.subs.remove(name).ok_or_else(|| WireError(format!("no subscription {name}")))?;
        let token = sub.client.cancel_token();
        self.rt
            .block_on(async { tokio::time::timeout(STREAM_WAIT, token.cancel_query(NoTls)).await })
            .map_err(|_| WireError(format!("{name}: cancel request timed out")))??;
        let deadline = Instant::now() + STREAM_WAIT;
        {
            let (lock, cv) = &*sub.state;
            let mut d = lock.lock().unwrap();
            while !d.ended {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(WireError(format!("{name}: still running after the cancel")));
                }
                d = cv.wait_timeout(d, left).unwrap().0;
            }
        }
        if let Some(id) = sub.id {
            while self.rows_out(id)?.is_some() {
                if Instant::now() >= deadline {
                    return Err(WireError(format!("{name}: still listed after the cancel")));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(DBOutput::StatementComplete(0))
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.subs.clear();
        if let Some(s) = self.server.take() {
            let _ = s.shutdown();
        }
    }
}

async fn connect(server: &ServerHandle) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1").port(server.pg_addr().port()).user("sluice").dbname("sluice").connect_timeout(STREAM_WAIT);
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A row as the embedded runner prints it.
fn render_row(r: &tokio_postgres::SimpleQueryRow, schema: Option<&SchemaRef>) -> Vec<String> {
    (0..r.len())
        .map(|i| {
            let dt = schema.and_then(|s| s.fields().get(i)).map(|f| f.data_type());
            render(r.get(i), dt)
        })
        .collect()
}

/// A wire text value as the embedded runner's `cell` prints the Arrow value (module docs).
fn render(v: Option<&str>, dt: Option<&DataType>) -> String {
    let Some(v) = v else { return "NULL".into() };
    let out = match dt {
        Some(DataType::Boolean) => match v {
            "t" => "true".to_string(),
            "f" => "false".to_string(),
            _ => v.to_string(),
        },
        Some(DataType::Float32 | DataType::Float64) => float(v, true),
        Some(DataType::Timestamp(_, Some(_))) => v.strip_suffix("+00").unwrap_or(v).to_string(),
        Some(DataType::Dictionary(_, inner)) if !matches!(**inner, DataType::Float32 | DataType::Float64) => {
            return render(Some(v), Some(inner));
        }
        Some(DataType::List(f) | DataType::LargeList(f)) => {
            let inner = v.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
            match inner {
                Some("") => "[]".to_string(),
                Some(items) => {
                    let items: Vec<String> = items
                        .split(", ")
                        .map(|item| match f.data_type() {
                            DataType::Float32 | DataType::Float64 => float(item, true),
                            _ if item.is_empty() => "(empty)".to_string(),
                            _ => item.to_string(),
                        })
                        .collect();
                    return format!("[{}]", items.join(","));
                }
                None => v.to_string(),
            }
        }
        _ => v.to_string(),
    };
    if out.is_empty() { "(empty)".into() } else { out }
}

/// A float's text: `inf`/`-inf`/`nan`, a fraction rounded to 6 decimals (`round`), else the
/// shortest form of `sluice::text::format_value` (`3`, not `3.0`).
fn float(v: &str, round: bool) -> String {
    let x: f64 = match v {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => match v.parse() {
            Ok(x) => x,
            Err(_) => return v.to_string(),
        },
    };
    if round && x.is_finite() && x.fract() != 0.0 {
        return format!("{}", (x * 1e6).round() / 1e6);
    }
    let a: sluice::arrow::array::ArrayRef = Arc::new(Float64Array::from(vec![x]));
    sluice::text::format_value(&a, 0).unwrap_or_default()
}

impl sqllogictest::DB for Wire {
    type Error = WireError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> WireResult<DBOutput<DefaultColumnType>> {
        if let Some(out) = self.streaming_command(sql) {
            return out;
        }
        let msgs =
            self.rt.block_on(async { tokio::time::timeout(STREAM_WAIT * 3, self.client.simple_query(sql)).await });
        let msgs = msgs.map_err(|_| WireError(format!("no answer after {:?}", STREAM_WAIT * 3)))??;
        // The last statement's result, as the embedded runner takes the last output.
        let mut rows: Option<Vec<Vec<Option<String>>>> = None;
        let mut result = DBOutput::StatementComplete(0);
        let mut width = 0;
        for m in msgs {
            match m {
                SimpleQueryMessage::RowDescription(cols) => {
                    width = cols.len();
                    rows = Some(Vec::new());
                }
                SimpleQueryMessage::Row(r) => {
                    if let Some(rows) = rows.as_mut() {
                        rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                    }
                }
                SimpleQueryMessage::CommandComplete(n) => {
                    result = match rows.take() {
                        Some(rows) => {
                            // Types only matter for rows; describe plans without running.
                            let schema = if rows.is_empty() { None } else { self.db().describe(sql).ok().flatten() };
                            let rows = rows
                                .iter()
                                .map(|r| {
                                    r.iter()
                                        .enumerate()
                                        .map(|(i, v)| {
                                            let dt =
                                                schema.as_ref().and_then(|s| s.fields().get(i)).map(|f| f.data_type());
                                            render(v.as_deref(), dt)
                                        })
                                        .collect()
                                })
                                .collect();
                            DBOutput::Rows { types: vec![DefaultColumnType::Any; width], rows }
                        }
                        None => DBOutput::StatementComplete(n),
                    };
                }
                _ => {}
            }
        }
        Ok(result)
    }

    fn engine_name(&self) -> &str {
        "sluice-wire"
    }
}

#[test]
fn sql_logic_tests_over_the_wire() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let started = Instant::now();
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async { Wire::start() });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{} (over the wire): {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} .slt files failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
    eprintln!("{} .slt files over the wire in {:?}", files.len(), started.elapsed());
}
