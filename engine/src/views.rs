//! Materialized views: a streaming query the engine runs on its own thread, appending its
//! results to a target stream (`INTO t`, or an implicit stream named after the view).
//!
//! A view checkpoints where a restart must resume (`views/<name>/checkpoint`, replaced
//! atomically every `checkpoint_interval`, default 5 s, and at close): the source position
//! after the rows whose results were appended (stateless views), the position of the row that
//! opened the oldest open window plus the end of the last emitted window (windowed
//! aggregations), or the view's start (global aggregations: their state covers everything
//! since, so they replay it). A restart therefore delivers every result at least once; a
//! crash between an append and the next checkpoint repeats the results in between.
//!
//! `recovery_policy = 'strict'` (default) stops a view at its first error, which
//! `system.views` shows; `'best_effort'` skips input batches that fail and counts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parking_lot::Mutex;
use sluice_sql::{Checkpoint, CreateView, ExecContext, Planned, QueryOptions, Statement, StreamPlan};

use crate::database::{Database, WeakDb};
use crate::sql_catalog::EngineCatalog;
use crate::stream_def::{StreamDef, TP_TIME};
use crate::{Error, Result};

const DEF_MAGIC: &[u8; 8] = b"SLUICEVW";
const CP_MAGIC: &[u8; 8] = b"SLUICECP";
const VERSION: u16 = 1;
pub(crate) const DEF_FILE: &str = "view.def";
const CP_FILE: &str = "checkpoint";

/// Default `checkpoint_interval`.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// What a view does when its query fails on some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryPolicy {
    /// Stop the view; the error is shown in `system.views`.
    Strict,
    /// Skip the input batch that failed, count it, go on.
    BestEffort,
}

/// A view's definition as stored.
#[derive(Debug, Clone)]
pub(crate) struct ViewDef {
    name: String,
    target: String,
    /// The target was created for the view (dropped with it).
    implicit: bool,
    /// The `CREATE MATERIALIZED VIEW` statement.
    statement: CreateView,
    checkpoint_every: Duration,
    policy: RecoveryPolicy,
}

/// A materialized view as `system.views` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewInfo {
    /// Name.
    pub name: String,
    /// The stream it reads.
    pub source: String,
    /// The stream it writes.
    pub target: String,
    /// `running`, `failed` or `stopped`.
    pub status: String,
    /// The error that stopped it.
    pub error: Option<String>,
    /// Rows written into the target.
    pub rows_out: u64,
    /// Input batches skipped (`best_effort`).
    pub skipped_rows: u64,
    /// Rows dropped as late by its windows.
    pub late_rows: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Bytes of aggregation state held.
    pub state_bytes: u64,
    /// Next sequence number to read, per shard of the source.
    pub position: Vec<u64>,
    /// Rows of the source not read yet (visible rows past `position`; filled when listed).
    pub lag: u64,
    /// The defining query.
    pub query: String,
}

struct Shared {
    stop: Arc<AtomicBool>,
    info: Mutex<ViewInfo>,
    /// Every stream the view reads (joins included) and its target.
    uses: Vec<String>,
}

/// A running view.
pub(crate) struct ViewRunner {
    def: Arc<ViewDef>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ViewRunner {
    /// Asks the thread to stop (it notices within the query's poll slice).
    pub(crate) fn signal_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// Stops the thread and waits for it (it writes a last checkpoint).
    pub(crate) fn stop(&self) {
        self.signal_stop();
        if let Some(t) = self.thread.lock().take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }

    pub(crate) fn reads_or_writes(&self, stream: &str) -> bool {
        let i = self.shared.info.lock();
        i.source == stream || i.target == stream || self.shared.uses.iter().any(|u| u == stream)
    }
}

/// The running views of a database.
#[derive(Default)]
pub(crate) struct Views {
    pub(crate) running: Mutex<BTreeMap<String, Arc<ViewRunner>>>,
}

fn views_dir(db: &Database) -> PathBuf {
    db.dir().join("views")
}

fn view_dir(db: &Database, name: &str) -> PathBuf {
    views_dir(db).join(name)
}

fn plan_view(db: &Database, cv: &CreateView) -> Result<StreamPlan> {
    let catalog = EngineCatalog { db: db.clone() };
    match sluice_sql::plan(&cv.query, &catalog, &QueryOptions::default())? {
        Planned::Streaming(p) => Ok(*p),
        Planned::Bounded(_) => Err(Error::InvalidDefinition(
            "a materialized view runs a streaming query over a stream: read it as FROM s (not FROM table(s), and not without a stream)".into(),
        )),
    }
}

fn settings_of(cv: &CreateView) -> Result<(Duration, RecoveryPolicy)> {
    let every = match cv.query.setting("checkpoint_interval") {
        None => DEFAULT_CHECKPOINT_INTERVAL,
        Some(v) => match v.as_i64() {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            _ => {
                return Err(Error::InvalidDefinition(format!(
                    "checkpoint_interval must be a positive number of seconds, got {}",
                    v.as_string()
                )));
            }
        },
    };
    let policy = match cv.query.setting("recovery_policy").map(|v| v.as_string().to_ascii_lowercase()) {
        None => RecoveryPolicy::Strict,
        Some(p) if p == "strict" => RecoveryPolicy::Strict,
        Some(p) if p == "best_effort" => RecoveryPolicy::BestEffort,
        Some(p) => {
            return Err(Error::InvalidDefinition(format!(
                "recovery_policy must be 'strict' or 'best_effort', got '{p}'"
            )));
        }
    };
    Ok((every, policy))
}

/// The stream a view without `INTO` writes: the query's columns, all nullable.
fn implicit_target(name: &str, schema: &SchemaRef) -> StreamDef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != TP_TIME)
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    StreamDef::from_schema(name, &Schema::new(fields))
}

/// Checks that every output column of the view exists in the target.
fn check_target(db: &Database, target: &str, schema: &SchemaRef) -> Result<()> {
    let def = db.stream_def(target)?;
    for f in schema.fields() {
        let Some(i) = def.column_index(f.name()) else {
            return Err(Error::InvalidDefinition(format!(
                "the view's column '{}' is not a column of target stream '{target}' (columns are matched by name)",
                f.name()
            )));
        };
        // The same rule appends apply, checked once here instead of failing at run time.
        let to = def.columns[i].field.data_type();
        let both_times = matches!((f.data_type(), to), (DataType::Timestamp(..), DataType::Timestamp(..)));
        if !both_times && !crate::ingest::castable(f.data_type(), to) {
            return Err(Error::InvalidDefinition(format!(
                "the view's column '{}' ({}) cannot be stored in column '{}' of '{target}' ({to})",
                f.name(),
                f.data_type(),
                f.name()
            )));
        }
    }
    Ok(())
}

impl Database {
    /// `CREATE MATERIALIZED VIEW`: validates the query and the target, stores the view and
    /// starts it. Returns false for `IF NOT EXISTS` on an existing view.
    pub(crate) fn create_view(&self, cv: &CreateView) -> Result<bool> {
        if !cv.materialized {
            return Err(Error::NotSupported(
                "plain (non-materialized) views; use CREATE MATERIALIZED VIEW ... INTO or a CTE".into(),
            ));
        }
        let name = crate::ddl::object_name(&cv.name)?;
        let _ddl = self.inner.views_ddl.lock();
        if self.inner.views.running.lock().contains_key(&name) {
            return if cv.if_not_exists { Ok(false) } else { Err(Error::ViewExists { name }) };
        }
        let (every, policy) = settings_of(cv)?;
        let plan = plan_view(self, cv)?;
        let schema = plan.schema();
        let (target, implicit) = match &cv.target {
            Some(t) => {
                let t = crate::ddl::object_name(t)?;
                check_target(self, &t, &schema)?;
                (t, false)
            }
            None => {
                if self.stream_def(&name).is_ok() {
                    return Err(Error::StreamExists { name });
                }
                (name.clone(), true)
            }
        };
        if plan.source().name() == target {
            return Err(Error::InvalidDefinition(format!("view '{name}' would write into the stream it reads")));
        }
        let def = Arc::new(ViewDef {
            name: name.clone(),
            target,
            implicit,
            statement: cv.clone(),
            checkpoint_every: every,
            policy,
        });
        // The definition first: an implicit target missing after a crash is created at open.
        let dir = view_dir(self, &name);
        let fs = self.inner.opts.fs.clone();
        fs.create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        store_def(fs.as_ref(), &dir, &def)?;
        let started = (|| {
            if implicit {
                self.create_stream(implicit_target(&name, &schema))?;
            }
            let query = plan.start(None, &ExecContext::default())?;
            self.start_view(def.clone(), plan, query, true)
        })();
        if let Err(e) = started {
            if implicit {
                let _ = self.drop_stream_if_exists(&name);
            }
            let _ = fs.remove_dir_all(&dir);
            return Err(e);
        }
        Ok(true)
    }

    /// `DROP VIEW`: stops the view, deletes its files and its implicit target.
    pub(crate) fn drop_view(&self, name: &str, if_exists: bool) -> Result<()> {
        let _ddl = self.inner.views_ddl.lock();
        let Some(runner) = self.inner.views.running.lock().get(name).cloned() else {
            return if if_exists { Ok(()) } else { Err(Error::ViewNotFound { name: name.to_string() }) };
        };
        // Refuse before changing anything when other views use the implicit target.
        if runner.def.implicit {
            let users: Vec<String> = self.views_using(&runner.def.target).into_iter().filter(|v| v != name).collect();
            if !users.is_empty() {
                return Err(Error::DependentObjects(format!(
                    "view '{name}' is read by materialized view(s) {}; drop them first",
                    users.join(", ")
                )));
            }
        }
        self.inner.views.running.lock().remove(name);
        runner.stop();
        let dir = view_dir(self, name);
        self.inner.opts.fs.remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        if runner.def.implicit {
            self.drop_stream_if_exists(&runner.def.target)?;
        }
        Ok(())
    }

    /// Every view with its state.
    pub fn views(&self) -> Vec<ViewInfo> {
        let mut out: Vec<ViewInfo> =
            self.inner.views.running.lock().values().map(|r| r.shared.info.lock().clone()).collect();
        for v in &mut out {
            // Lag: rows visible in the source past the view's read position, per shard.
            if let Ok(stream) = self.stream(&v.source) {
                v.lag = stream
                    .shards
                    .iter()
                    .enumerate()
                    .map(|(i, sh)| sh.visible().saturating_sub(v.position.get(i).copied().unwrap_or(0)))
                    .sum();
            }
        }
        out
    }

    /// The names of views that read or write `stream`.
    pub(crate) fn views_using(&self, stream: &str) -> Vec<String> {
        self.inner
            .views
            .running
            .lock()
            .values()
            .filter(|r| r.reads_or_writes(stream))
            .map(|r| r.def.name.clone())
            .collect()
    }

    /// Starts every stored view (at open).
    pub(crate) fn start_views(&self) -> Result<()> {
        let root = views_dir(self);
        let fs = self.inner.opts.fs.clone();
        fs.create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
        let mut names: Vec<String> = fs.list_dir(&root).map_err(|e| Error::io("list", &root, e))?;
        names.sort();
        for name in names {
            let dir = root.join(&name);
            if !fs.exists(&dir.join(DEF_FILE)) {
                // A create that did not get as far as its definition.
                let _ = fs.remove_dir_all(&dir);
                continue;
            }
            let def = Arc::new(load_def(fs.as_ref(), &dir, &name)?);
            let cp = load_checkpoint(fs.as_ref(), &dir)?;
            if let Err(e) = self.restart_view(def.clone(), cp) {
                tracing::warn!(view = %name, error = %e, "materialized view could not start");
                let info = ViewInfo {
                    name: name.clone(),
                    source: String::new(),
                    target: def.target.clone(),
                    status: "failed".into(),
                    error: Some(e.to_string()),
                    rows_out: 0,
                    skipped_rows: 0,
                    late_rows: 0,
                    checkpoints: 0,
                    state_bytes: 0,
                    position: Vec::new(),
                    lag: 0,
                    query: def.statement.query.to_string(),
                };
                let shared = Arc::new(Shared { stop: Arc::default(), info: Mutex::new(info), uses: Vec::new() });
                let runner = Arc::new(ViewRunner { def, shared, thread: Mutex::new(None) });
                self.inner.views.running.lock().insert(name, runner);
            }
        }
        Ok(())
    }

    fn restart_view(&self, def: Arc<ViewDef>, cp: Option<Checkpoint>) -> Result<()> {
        if def.implicit && self.stream_def(&def.target).is_err() {
            let plan = plan_view(self, &def.statement)?;
            self.create_stream(implicit_target(&def.target, &plan.schema()))?;
        }
        let plan = plan_view(self, &def.statement)?;
        let ctx = ExecContext::default();
        let (query, fresh) = match &cp {
            Some(cp) => (plan.resume(cp, &ctx)?, false),
            None => (plan.start(None, &ctx)?, true),
        };
        self.start_view(def, plan, query, fresh)
    }

    fn start_view(
        &self,
        def: Arc<ViewDef>,
        plan: StreamPlan,
        mut query: sluice_sql::StreamingQuery,
        fresh: bool,
    ) -> Result<()> {
        query.skip_bad_batches(def.policy == RecoveryPolicy::BestEffort);
        let dir = view_dir(self, &def.name);
        let fs = self.inner.opts.fs.clone();
        if fresh && let Some(cp) = query.checkpoint() {
            store_checkpoint(fs.as_ref(), &dir, &cp)?;
        }
        let stop = query.cancel_flag();
        let info = ViewInfo {
            name: def.name.clone(),
            source: plan.source().name().to_string(),
            target: def.target.clone(),
            status: "running".into(),
            error: None,
            rows_out: 0,
            skipped_rows: 0,
            late_rows: 0,
            checkpoints: u64::from(fresh),
            state_bytes: 0,
            position: query.positions(),
            lag: 0,
            query: def.statement.query.to_string(),
        };
        let shared = Arc::new(Shared { stop, info: Mutex::new(info), uses: plan.tables().to_vec() });
        let weak = self.downgrade();
        let (d, sh) = (def.clone(), shared.clone());
        let listed =
            self.inner.queries.list(&format!("view {}", def.name), def.statement.query.to_string(), query.live_stats());
        let thread = std::thread::Builder::new()
            .name(format!("sluice-view-{}", def.name))
            .spawn(move || {
                let _listed = listed;
                run_view(weak, d, query, sh, dir)
            })
            .map_err(|e| Error::io("spawn view thread", PathBuf::new(), e))?;
        let runner = Arc::new(ViewRunner { def: def.clone(), shared, thread: Mutex::new(Some(thread)) });
        self.inner.views.running.lock().insert(def.name.clone(), runner);
        Ok(())
    }
}

/// The view's thread: pull results, append them, checkpoint.
fn run_view(db: WeakDb, def: Arc<ViewDef>, mut query: sluice_sql::StreamingQuery, sh: Arc<Shared>, dir: PathBuf) {
    let mut last_cp_at = Instant::now();
    let mut last_cp: Option<Checkpoint> = query.checkpoint();
    let fail = |sh: &Shared, e: String| {
        tracing::warn!(view = %def.name, error = %e, "materialized view stopped");
        let mut i = sh.info.lock();
        i.status = "failed".into();
        i.error = Some(e);
    };
    loop {
        if sh.stop.load(Ordering::Acquire) {
            break;
        }
        let item = query.next_timeout(Duration::from_millis(200));
        let Some(db) = db.upgrade() else { break };
        match item {
            Ok(Some(batch)) => {
                let n = batch.num_rows() as u64;
                match db.append(&def.target, &batch) {
                    Ok(_) => sh.info.lock().rows_out += n,
                    Err(e) if def.policy == RecoveryPolicy::BestEffort && is_data_error(&e) => {
                        sh.info.lock().skipped_rows += 1;
                    }
                    Err(e) => {
                        if !sh.stop.load(Ordering::Acquire) {
                            fail(&sh, format!("writing into '{}': {e}", def.target));
                        }
                        break;
                    }
                }
            }
            Ok(None) if query.is_done() => {
                sh.info.lock().status = "stopped".into();
                break;
            }
            Ok(None) => {}
            Err(sluice_sql::Error::Cancelled) => break,
            Err(e) => {
                fail(&sh, e.to_string());
                break;
            }
        }
        {
            let s = query.stats();
            let mut i = sh.info.lock();
            i.skipped_rows = i.skipped_rows.max(s.skipped_rows);
            i.late_rows = s.late_rows;
            i.state_bytes = s.state_bytes as u64;
            i.position = query.positions();
        }
        if last_cp_at.elapsed() >= def.checkpoint_every {
            checkpoint(&db, &dir, &query, &mut last_cp, &sh);
            last_cp_at = Instant::now();
        }
    }
    // A last checkpoint on a clean stop (not after a failure: resume before the bad input).
    if sh.info.lock().status == "running"
        && let Some(db) = db.upgrade()
    {
        checkpoint(&db, &dir, &query, &mut last_cp, &sh);
    }
}

fn checkpoint(
    db: &Database,
    dir: &Path,
    query: &sluice_sql::StreamingQuery,
    last: &mut Option<Checkpoint>,
    sh: &Shared,
) {
    let Some(cp) = query.checkpoint() else { return };
    if last.as_ref() == Some(&cp) {
        return;
    }
    match store_checkpoint(db.inner.opts.fs.as_ref(), dir, &cp) {
        Ok(()) => {
            *last = Some(cp);
            sh.info.lock().checkpoints += 1;
        }
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "view checkpoint failed; will retry"),
    }
}

fn is_data_error(e: &Error) -> bool {
    matches!(e, Error::InvalidData { .. } | Error::ColumnNotFound { .. } | Error::Arrow(_))
}

/// `system.views` as a batch.
pub(crate) fn views_batch(views: &[ViewInfo]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&ViewInfo) -> String| -> ArrayRef {
        Arc::new(StringArray::from(views.iter().map(f).collect::<Vec<_>>()))
    };
    let u = |f: &dyn Fn(&ViewInfo) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(views.iter().map(f).collect::<Vec<_>>()))
    };
    let error: ArrayRef = Arc::new(StringArray::from(views.iter().map(|v| v.error.clone()).collect::<Vec<_>>()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("rows_out", DataType::UInt64, false),
        Field::new("skipped_rows", DataType::UInt64, false),
        Field::new("late_rows", DataType::UInt64, false),
        Field::new("checkpoints", DataType::UInt64, false),
        Field::new("state_bytes", DataType::UInt64, false),
        Field::new("position", DataType::Utf8, false),
        Field::new("lag", DataType::UInt64, false),
        Field::new("query", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            s(&|v| v.name.clone()),
            s(&|v| v.source.clone()),
            s(&|v| v.target.clone()),
            s(&|v| v.status.clone()),
            error,
            u(&|v| v.rows_out),
            u(&|v| v.skipped_rows),
            u(&|v| v.late_rows),
            u(&|v| v.checkpoints),
            u(&|v| v.state_bytes),
            // `shard:next_sn` pairs, as system.shards numbers shards.
            s(&|v| v.position.iter().enumerate().map(|(i, p)| format!("{i}:{p}")).collect::<Vec<_>>().join(",")),
            u(&|v| v.lag),
            s(&|v| v.query.clone()),
        ],
    )?)
}

// ---- files -------------------------------------------------------------------------------

fn frame(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out
}

fn unframe<'a>(magic: &[u8; 8], bytes: &'a [u8], path: &Path) -> Result<&'a [u8]> {
    let bad =
        |offset: usize, reason: String| Error::Corrupted { file: path.to_path_buf(), offset: offset as u64, reason };
    if bytes.len() < 20 || &bytes[..8] != magic {
        return Err(bad(0, "not a sluice view file (bad magic or too short)".into()));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(bad(8, format!("unsupported version {version}")));
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    if bytes.len() != 16 + len + 4 {
        return Err(bad(12, format!("length {len} does not match the file size {}", bytes.len())));
    }
    let body = &bytes[16..16 + len];
    let crc = u32::from_le_bytes(bytes[16 + len..].try_into().expect("4 bytes"));
    if crc32c::crc32c(body) != crc {
        return Err(bad(16 + len, "checksum mismatch".into()));
    }
    Ok(body)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.at + n > self.b.len() {
            return Err(Error::Corrupted {
                file: self.path.to_path_buf(),
                offset: (16 + self.at) as u64,
                reason: "truncated record".into(),
            });
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let at = self.at;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Error::Corrupted {
            file: self.path.to_path_buf(),
            offset: (16 + at) as u64,
            reason: "invalid UTF-8".into(),
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn store_def(fs: &dyn sluice_vfs::FileSystem, dir: &Path, def: &ViewDef) -> Result<()> {
    let mut body = Vec::new();
    body.push(u8::from(def.implicit));
    put_str(&mut body, &def.target);
    put_str(&mut body, &def.statement.to_string());
    let path = dir.join(DEF_FILE);
    sluice_vfs::atomic_write(fs, &path, &frame(DEF_MAGIC, &body)).map_err(|e| Error::io("write view", &path, e))
}

pub(crate) fn load_def(fs: &dyn sluice_vfs::FileSystem, dir: &Path, name: &str) -> Result<ViewDef> {
    let path = dir.join(DEF_FILE);
    let bytes = fs.open_read(&path).and_then(|f| f.read_all()).map_err(|e| Error::io("read view", &path, e))?;
    let body = unframe(DEF_MAGIC, &bytes, &path)?;
    let mut r = Reader { b: body, at: 0, path: &path };
    let implicit = r.u8()? != 0;
    let target = r.str()?;
    let sql = r.str()?;
    let statement = match sluice_sql::parse_statement(&sql)? {
        Statement::CreateView(cv) => *cv,
        _ => {
            return Err(Error::Corrupted { file: path, offset: 16, reason: "not a CREATE VIEW statement".into() });
        }
    };
    let (checkpoint_every, policy) = settings_of(&statement)?;
    Ok(ViewDef { name: name.to_string(), target, implicit, statement, checkpoint_every, policy })
}

fn store_checkpoint(fs: &dyn sluice_vfs::FileSystem, dir: &Path, cp: &Checkpoint) -> Result<()> {
    let mut body = Vec::new();
    body.extend_from_slice(&(cp.positions.len() as u32).to_le_bytes());
    for p in &cp.positions {
        body.extend_from_slice(&p.to_le_bytes());
    }
    body.push(u8::from(cp.closed_upto.is_some()));
    body.extend_from_slice(&cp.closed_upto.unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&(cp.partitions.len() as u32).to_le_bytes());
    for (key, closed) in &cp.partitions {
        body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(&closed.to_le_bytes());
    }
    body.extend_from_slice(&(cp.states.len() as u32).to_le_bytes());
    for (tag, key, state) in &cp.states {
        let mut ipc = Vec::new();
        {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &state.schema())?;
            w.write(state)?;
            w.finish()?;
        }
        put_str(&mut body, tag);
        body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(&(ipc.len() as u32).to_le_bytes());
        body.extend_from_slice(&ipc);
    }
    let path = dir.join(CP_FILE);
    sluice_vfs::atomic_write(fs, &path, &frame(CP_MAGIC, &body)).map_err(|e| Error::io("write checkpoint", &path, e))
}

pub(crate) fn load_checkpoint(fs: &dyn sluice_vfs::FileSystem, dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(CP_FILE);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let bytes = fs.open_read(&path).and_then(|f| f.read_all()).map_err(|e| Error::io("read checkpoint", &path, e))?;
    let body = unframe(CP_MAGIC, &bytes, &path)?;
    let mut r = Reader { b: body, at: 0, path: &path };
    let n = r.u32()? as usize;
    if n > 1 << 16 {
        return Err(Error::Corrupted { file: path, offset: 16, reason: format!("{n} shards") });
    }
    let positions = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
    let has = r.u8()? != 0;
    let closed = r.u64()? as i64;
    let k = r.u32()? as usize;
    let mut partitions = Vec::with_capacity(k.min(1 << 16));
    for _ in 0..k {
        let n = r.u32()? as usize;
        let key = r.take(n)?.to_vec();
        partitions.push((key, r.u64()? as i64));
    }
    let count = r.u32()? as usize;
    let mut states = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let tag = r.str()?;
        let klen = r.u32()? as usize;
        let key = r.take(klen)?.to_vec();
        let n = r.u32()? as usize;
        let at = r.at;
        let bytes = r.take(n)?;
        let bad = |e: String| Error::Corrupted { file: path.clone(), offset: (16 + at) as u64, reason: e };
        let mut reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| bad(format!("saved state: {e}")))?;
        match reader.next() {
            Some(Ok(b)) => states.push((tag, key, b)),
            Some(Err(e)) => return Err(bad(format!("saved state: {e}"))),
            None => return Err(bad("saved state: no batch".into())),
        }
    }
    Ok(Some(Checkpoint { positions, closed_upto: has.then_some(closed), partitions, states }))
}
