//! Runs the SQL logic tests in `tests/slt/*.slt` against an embedded database (each file on a
//! fresh in-memory database, and again on disk). `slt_wire.rs` runs the same files over the
//! Postgres wire.
//! Values print as `sluice::text::format_value` prints them; NULL prints as `NULL`, the empty
//! string as `(empty)` (the sqllogictest convention).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sluice::arrow::array::{Array, ArrayRef, AsArray};
use sluice::arrow::compute::cast;
use sluice::arrow::datatypes::{DataType, Float64Type};
use sluice::{Database, Output};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Embedded {
    db: Database,
    /// Streaming queries started with `SUBSCRIBE name AS query`.
    subs: HashMap<String, Sub>,
}

impl Embedded {
    fn new(db: Database) -> Self {
        Embedded { db, subs: HashMap::new() }
    }
}

/// What a background streaming query has delivered.
#[derive(Default)]
struct Delivered {
    rows: Vec<Vec<String>>,
    error: Option<String>,
    ended: bool,
}

/// A streaming query read by a background thread.
struct Sub {
    state: Arc<(Mutex<Delivered>, Condvar)>,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    width: usize,
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest any streaming command waits.
pub(crate) const STREAM_WAIT: Duration = Duration::from_secs(10);

fn test_error(m: String) -> sluice::Error {
    sluice::Error::NotSupported(m)
}

impl Embedded {
    /// The streaming commands of the `.slt` files (see `tests/slt/README.md`); `None` for SQL.
    fn streaming_command(&mut self, sql: &str) -> Option<Result<DBOutput<DefaultColumnType>, sluice::Error>> {
        let words: Vec<&str> = sql.split_whitespace().collect();
        let upper: Vec<String> = words.iter().take(4).map(|w| w.to_ascii_uppercase()).collect();
        let up = |i: usize| upper.get(i).map(String::as_str);
        match (up(0), up(2)) {
            (Some("SUBSCRIBE"), Some("AS")) => {
                let name = words[1].to_string();
                // The text after `SUBSCRIBE name AS`.
                let rest = sql.trim_start()["SUBSCRIBE".len()..].trim_start();
                let query = rest[name.len()..].trim_start()["AS".len()..].to_string();
                Some(self.subscribe(name, &query))
            }
            (Some("FETCH"), Some("FROM")) => {
                let n: usize = words[1].parse().ok()?;
                Some(self.fetch(words[3], Some(n)))
            }
            (Some("FETCH"), _) if words.len() == 2 => Some(self.fetch(words[1], None)),
            (Some("CANCEL"), _) if words.len() == 2 => Some(match self.subs.remove(words[1]) {
                None => Err(test_error(format!("no subscription {}", words[1]))),
                Some(_) => Ok(DBOutput::StatementComplete(0)),
            }),
            (Some("SYNC"), _) if words.len() == 1 => {
                Some(self.db.sync(STREAM_WAIT).map(|_| DBOutput::StatementComplete(0)))
            }
            _ => None,
        }
    }

    fn subscribe(&mut self, name: String, query: &str) -> Result<DBOutput<DefaultColumnType>, sluice::Error> {
        let result = self.db.query(query)?;
        let width = result.schema().fields().len();
        let cancel = result.cancel_flag();
        let state: Arc<(Mutex<Delivered>, Condvar)> = Arc::default();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            for batch in result {
                let (lock, cv) = &*st;
                let mut d = lock.lock().expect("lock");
                match batch {
                    Ok(b) => {
                        for r in 0..b.num_rows() {
                            d.rows.push(b.columns().iter().map(|c| cell(c, r)).collect());
                        }
                    }
                    Err(e) => d.error = Some(e.to_string()),
                }
                cv.notify_all();
            }
            let (lock, cv) = &*st;
            lock.lock().expect("lock").ended = true;
            cv.notify_all();
        });
        self.subs.insert(name, Sub { state, cancel, thread: Some(thread), width });
        Ok(DBOutput::StatementComplete(0))
    }

    /// `FETCH name`: after `sync`, every row delivered and not fetched yet. `FETCH n FROM
    /// name`: waits for the next `n` rows (or the end of the query).
    fn fetch(&mut self, name: &str, n: Option<usize>) -> Result<DBOutput<DefaultColumnType>, sluice::Error> {
        let sub = self.subs.get(name).ok_or_else(|| test_error(format!("no subscription {name}")))?;
        if n.is_none() {
            self.db.sync(STREAM_WAIT)?;
        }
        let (lock, cv) = &*sub.state;
        let deadline = Instant::now() + STREAM_WAIT;
        let mut d = lock.lock().expect("lock");
        if let Some(n) = n {
            while d.rows.len() < n && !d.ended && d.error.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(test_error(format!("{name}: {} of {n} rows after {STREAM_WAIT:?}", d.rows.len())));
                }
                d = cv.wait_timeout(d, left).expect("lock").0;
            }
        }
        if let Some(e) = d.error.take() {
            return Err(test_error(e));
        }
        let take = n.unwrap_or(d.rows.len()).min(d.rows.len());
        let rows: Vec<Vec<String>> = d.rows.drain(..take).collect();
        Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; sub.width], rows })
    }
}

impl sqllogictest::DB for Embedded {
    type Error = sluice::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, sluice::Error> {
        if let Some(out) = self.streaming_command(sql) {
            return out;
        }
        let outputs = self.db.execute(sql)?;
        let Some(last) = outputs.into_iter().last() else { return Ok(DBOutput::StatementComplete(0)) };
        match last {
            Output::Command { tag, .. } => {
                let n = tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                Ok(DBOutput::StatementComplete(n))
            }
            Output::Rows(rows) => {
                let schema = rows.schema().clone();
                let mut out = Vec::new();
                for batch in rows {
                    let batch = batch?;
                    for r in 0..batch.num_rows() {
                        out.push(batch.columns().iter().map(|c| cell(c, r)).collect());
                    }
                }
                Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; schema.fields().len()], rows: out })
            }
        }
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// A value as the `.slt` files spell it: `sluice::text::format_value`, except NULL as `NULL`, the
/// empty string as `(empty)`, floats with a fraction rounded to 6 decimals (so results do not
/// depend on the last bits of a summation order), lists as `[a,b]`.
fn cell(c: &ArrayRef, r: usize) -> String {
    if c.is_null(r) {
        return "NULL".into();
    }
    match c.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let v = cast(&c.slice(r, 1), &DataType::Float64).expect("float").as_primitive::<Float64Type>().value(0);
            if v.is_finite() && v.fract() != 0.0 {
                return format!("{}", (v * 1e6).round() / 1e6);
            }
        }
        DataType::List(_) => {
            let l = c.as_list::<i32>().value(r);
            let items: Vec<String> = (0..l.len()).map(|j| cell(&l, j)).collect();
            return format!("[{}]", items.join(","));
        }
        _ => {}
    }
    match sluice::text::format_value(c, r) {
        None => "NULL".into(),
        Some(s) if s.is_empty() => "(empty)".into(),
        Some(s) => s,
    }
}

/// Every `.slt` file under `tests/slt/`, recursively, sorted.
pub(crate) fn slt_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "slt") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("slt"), &mut files);
    files.sort();
    files
}

#[test]
fn sql_logic_tests_embedded() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in &files {
        // Once on an in-memory database, once on disk.
        let mut runner = sqllogictest::Runner::new(|| async { Ok(Embedded::new(Database::in_memory())) });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{} (in memory): {e}", file.display()));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let mut runner = sqllogictest::Runner::new(move || {
            let path = path.clone();
            async move { Ok(Embedded::new(Database::open(&path, sluice::Options::default())?)) }
        });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{} (on disk): {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} .slt files failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}
