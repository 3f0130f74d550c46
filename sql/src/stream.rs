//! Streaming queries: `SELECT ... FROM s` (no `table()`) reads the stream without end.
//!
//! A streaming plan is a chain over one unbounded source (joins and unions of streams are not
//! supported yet):
//!
//! ```text
//! StreamSource ─► pre ops (filter, project, window) ─► [aggregate] ─► post ops (HAVING,
//!                 select list, ORDER BY per emission) ─► LIMIT
//! ```
//!
//! Without an aggregate every batch flows through at once. A windowed aggregate (`GROUP BY
//! window_start` over `tumble`/`hop`) keeps one state per open window and emits a window when
//! the watermark (greatest event time minus the delay) reaches its end; rows older than the
//! watermark are dropped and counted. A global aggregate emits every 2 s when something
//! changed. `EMIT` changes the policy (see `docs/streaming.md`). The query runs on the
//! thread that pulls its results ([`StreamingQuery`] is a blocking iterator); a cancel is
//! seen within [`POLL_SLICE`].

pub(crate) mod agg;
pub(crate) mod ops;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int8Array, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};

use self::agg::{AggPlan, AggRun, Emission, KeySlot, Shape, WindowKey, with_delta};
use self::ops::{JoinOp, JoinRight, RowOp, Watermark};
use crate::ast::query::{Emit, EmitMode, SluiceQuery};
use crate::catalog::{SeekTo, StreamSource, SubscribeRequest, Table};
use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::exec::hash_agg::AggSpec;
use crate::exec::sort::{PhysSortKey, sort_batch};
use crate::expr::BExpr;
use crate::functions::compare::CmpOp;
use crate::interval::{IntervalLiteral, IntervalUnit};
use crate::logical::{self, ColumnInfo, JoinKind, LogicalPlan, WindowSpec};
use crate::plan::{relabel, schema_of, to_phys};
use crate::scalar::ScalarValue;

/// Query-unique id of the `_tp_delta` column added to a versioned_kv stream's rows.
const DELTA_ID: usize = usize::MAX - 1;

/// Longest a running query waits for input before it looks at its cancel flag and timers.
pub const POLL_SLICE: Duration = Duration::from_millis(20);

/// Longest a running query goes without publishing its [`LiveStats`] while rows keep coming.
const LIVE_STATS_EVERY: Duration = Duration::from_millis(50);

/// Default emission period of a global streaming aggregation.
pub const DEFAULT_GLOBAL_PERIOD: Duration = Duration::from_secs(2);

/// A step applied to every emitted batch after the aggregate.
#[derive(Debug, Clone)]
enum PostOp {
    Row(RowOp),
    Sort {
        keys: Vec<PhysSortKey>,
        fetch: Option<usize>,
    },
    /// LIMIT of a subquery: the first rows of each emission.
    Limit {
        skip: usize,
        fetch: Option<usize>,
    },
}

/// When and what a streaming aggregate emits.
#[derive(Debug, Clone)]
struct Policy {
    shape: Shape,
    changelog: bool,
    /// Emit after every input batch.
    per_batch: bool,
    periodic: Option<Duration>,
    repeat: bool,
    /// Close every open window after this long without input.
    timeout: Option<Duration>,
}

/// A planned streaming query.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    table: Arc<dyn Table>,
    request: SubscribeRequest,
    pre: Vec<RowOp>,
    agg: Option<AggPlan>,
    post: Vec<PostOp>,
    policy: Policy,
    /// Watermark delay in ticks of the window's time column (windowed aggregates).
    delay: i64,
    skip: usize,
    fetch: Option<usize>,
    schema: SchemaRef,
    memory_limit: Option<usize>,
    /// `PARTITION BY`: positions of the key columns in the source's batches, and their types.
    partition: Option<(Vec<usize>, Vec<DataType>)>,
    /// Every stream the query reads (the source, joined streams and tables).
    tables: Vec<String>,
}

impl StreamPlan {
    /// The result schema (`_tp_delta` last for `EMIT CHANGELOG`).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The stream read.
    pub fn source(&self) -> &Arc<dyn Table> {
        &self.table
    }

    /// Starts reading from `request().start` (or `start` when given).
    pub fn start(&self, start: Option<SeekTo>, ctx: &ExecContext) -> Result<StreamingQuery> {
        let mut req = self.request.clone();
        if let Some(s) = start {
            req.start = s;
        }
        let source = self.table.subscribe(&req)?;
        StreamingQuery::new(self.clone(), source, ctx)
    }

    /// Resumes from a [`Checkpoint`]: replays from its positions; windows it had already
    /// closed are not emitted again.
    pub fn resume(&self, cp: &Checkpoint, ctx: &ExecContext) -> Result<StreamingQuery> {
        let mut q = self.start(Some(SeekTo::Positions(cp.positions.clone())), ctx)?;
        q.start_positions = cp.positions.clone();
        if let Some(c) = cp.closed_upto {
            for s in q.subs.iter_mut() {
                if let Some(a) = s.agg.as_mut() {
                    a.closed_upto = a.closed_upto.max(c);
                }
            }
        }
        q.resumed_closed = cp.partitions.iter().map(|(k, c)| (k.clone().into_boxed_slice(), *c)).collect();
        for (tag, key, state) in &cp.states {
            match tag.as_str() {
                "agg" => {
                    let sub = q.substream(key.clone().into_boxed_slice())?;
                    if let Some(a) = q.subs[sub].agg.as_mut() {
                        a.load(state)?;
                    }
                }
                "sessions" => {
                    let sub = q.substream(key.clone().into_boxed_slice())?;
                    if let Some(a) = q.subs[sub].agg.as_mut() {
                        a.load_sessions_closed(state)?;
                    }
                }
                "kv" => {
                    for op in &q.plan.pre {
                        if let RowOp::KvChangelog(c) = op {
                            c.load(state)?;
                        }
                    }
                }
                other => {
                    return Err(Error::Internal { message: format!("unknown saved state `{other}` in a checkpoint") });
                }
            }
        }
        Ok(q)
    }

    /// Every stream the query reads: its source and the sides of its joins.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The operators, one per line.
    pub fn explain(&self) -> String {
        let mut lines = Vec::new();
        let part = match &self.partition {
            None => String::new(),
            Some((cols, _)) => {
                let names: Vec<&str> = cols.iter().map(|c| self.request.columns[*c].as_str()).collect();
                format!(" partition_by=[{}]", names.join(", "))
            }
        };
        lines.push(format!("StreamingQuery limit={:?} offset={}{part}", self.fetch, self.skip));
        for p in self.post.iter().rev() {
            lines.push(match p {
                PostOp::Row(r) => format!("{} (per emission)", r.describe()),
                PostOp::Sort { fetch, .. } => format!("Sort per emission fetch={fetch:?}"),
                PostOp::Limit { skip, fetch } => format!("Limit per emission offset={skip} fetch={fetch:?}"),
            });
        }
        if let Some(a) = &self.agg {
            let p = &self.policy;
            let groups: Vec<String> = a.spec.groups.iter().map(|g| g.to_string()).collect();
            let calls: Vec<String> = a.spec.aggs.iter().map(|c| c.to_string()).collect();
            lines.push(format!(
                "{} groups=[{}] aggs=[{}] emit: {:?}{}{}{}{}",
                if a.window.is_some() { "WindowAggregate" } else { "GlobalAggregate" },
                groups.join(", "),
                calls.join(", "),
                p.shape,
                if p.changelog { " changelog" } else { "" },
                if p.per_batch { " on-update" } else { "" },
                p.periodic.map(|d| format!(" periodic={d:?}")).unwrap_or_default(),
                p.timeout.map(|d| format!(" timeout={d:?}")).unwrap_or_default(),
            ));
        }
        for r in self.pre.iter().rev() {
            lines.push(r.describe());
        }
        lines.push(format!(
            "StreamScan {} columns=[{}] start={:?}",
            self.table.name(),
            self.request.columns.join(", "),
            self.request.start
        ));
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            out.push_str(&"  ".repeat(i));
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Plans a bound streaming query.
pub(crate) fn plan(q: &SluiceQuery, logical: LogicalPlan, memory_limit: Option<usize>) -> Result<StreamPlan> {
    let partition_names: Vec<String> = q
        .partition_by
        .iter()
        .map(|e| match e {
            sqlparser::ast::Expr::Identifier(i) => Ok(i.value.clone()),
            sqlparser::ast::Expr::CompoundIdentifier(p) if !p.is_empty() => Ok(p[p.len() - 1].value.clone()),
            other => Err(not_streaming(&format!("PARTITION BY `{other}`: partition by columns of the stream"))),
        })
        .collect::<Result<_>>()?;
    let out = logical.output();
    // The chain from the root down to the source.
    let mut chain: Vec<LogicalPlan> = Vec::new();
    let mut node = logical;
    loop {
        let next = match &node {
            LogicalPlan::StreamScan { .. } => None,
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. }
            | LogicalPlan::Window { input, .. } => Some((**input).clone()),
            LogicalPlan::Join { .. } => {
                node = streaming_left(node)?;
                let LogicalPlan::Join { left, .. } = &node else { unreachable!("a join") };
                Some((**left).clone())
            }
            LogicalPlan::Union { .. } => return Err(not_streaming("UNION of streaming queries")),
            LogicalPlan::Scan { .. } | LogicalPlan::Values { .. } => {
                return Err(Error::Internal { message: "streaming plan without a stream source".into() });
            }
        };
        chain.push(node);
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    chain.reverse(); // source first
    let all_scan_cols = match &chain[0] {
        LogicalPlan::StreamScan { columns, .. } => columns.clone(),
        _ => Vec::new(),
    };
    for n in &partition_names {
        if !all_scan_cols.iter().any(|(_, c)| c == n) {
            return Err(Error::UnknownColumn { name: n.clone(), stream: None, span: None });
        }
    }
    let start = seek_from_where(&chain)?;
    let start = match q.setting("seek_to") {
        Some(v) => parse_seek_to(&v.as_string())?,
        None => start,
    };
    // Prune: rebuild the plan from the chain and let `prune` drop unread columns.
    let mut rebuilt: Option<LogicalPlan> = None;
    for n in chain {
        rebuilt = Some(match rebuilt {
            None => n,
            Some(child) => with_input(n, child),
        });
    }
    let plan = rebuilt.ok_or_else(|| Error::Internal { message: "empty streaming plan".into() })?;
    let required: HashSet<usize> = out.iter().map(|c| c.id).collect();
    let plan = logical::prune(plan, &required);
    let mut chain = Vec::new();
    let mut node = plan;
    loop {
        let (this, next) = split_input(node);
        chain.push(this);
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    chain.reverse();
    // An aggregation over a versioned_kv stream read from now on sees it as changes (a new
    // version retracts the old row): the source also reads the key and version columns.
    let has_agg = chain.iter().any(|n| matches!(n, LogicalPlan::Aggregate { .. }));
    let mut extra: Vec<String> = partition_names.clone();
    if let Some(LogicalPlan::StreamScan { table, .. }) = chain.first()
        && has_agg
        && start == SeekTo::Latest
    {
        if table.changelog_delta() {
            extra.push("_tp_delta".to_string());
        }
        if let Some((keys, version)) = table.versioned_key() {
            extra.extend(keys);
            extra.push(version);
        }
    }
    if let Some(LogicalPlan::StreamScan { columns, .. }) = chain.first_mut() {
        for n in &extra {
            if !columns.iter().any(|(_, c)| c == n)
                && let Some(c) = all_scan_cols.iter().find(|(_, c)| c == n)
            {
                columns.push(c.clone());
            }
        }
    }
    let mut plan = build(q, chain, out, start, memory_limit)?;
    if !partition_names.is_empty() {
        let cols: Vec<usize> = partition_names
            .iter()
            .map(|n| plan.request.columns.iter().position(|c| c == n).expect("partition column read"))
            .collect();
        let types: Vec<DataType> = partition_names
            .iter()
            .map(|n| all_scan_cols.iter().find(|(_, c)| c == n).map(|(i, _)| i.ty.clone()).expect("partition column"))
            .collect();
        plan.partition = Some((cols, types));
    }
    Ok(plan)
}

/// A join of a stream with a bounded input, normalised so the stream is on the left.
fn streaming_left(node: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Join { left, right, kind, on, filter, out } = node else { return Ok(node) };
    match (left.is_streaming(), right.is_streaming()) {
        (true, true) => {
            // A versioned_kv stream on the right: joined with its latest row per key.
            let kv = matches!(right.as_ref(), LogicalPlan::StreamScan { table, .. } if table.versioned_key().is_some());
            if kv && matches!(kind, JoinKind::Inner | JoinKind::Left) {
                return Ok(LogicalPlan::Join { left, right, kind, on, filter, out });
            }
            // Two streams: an INNER equi-join bounded in time by date_diff_within.
            let plain = matches!(right.as_ref(), LogicalPlan::StreamScan { .. });
            let bounded = filter.as_ref().is_some_and(|f| find_within(f).is_some());
            if plain && bounded && kind == JoinKind::Inner && !on.is_empty() {
                return Ok(LogicalPlan::Join { left, right, kind, on, filter, out });
            }
            Err(not_streaming(
                "this join of two streams: join a stream with a stream as INNER JOIN ... ON equal keys AND date_diff_within(interval); \
                 a versioned_kv stream may be the right side of an INNER or LEFT join",
            ))
        }
        (false, false) => Err(Error::Internal { message: "a join without a stream in a streaming plan".into() }),
        (true, false) => match kind {
            JoinKind::Inner | JoinKind::Left | JoinKind::Cross => {
                Ok(LogicalPlan::Join { left, right, kind, on, filter, out })
            }
            other => Err(not_streaming(&format!(
                "{other:?} JOIN with the stream on the left (it would have to emit unmatched table rows at an end that never comes)"
            ))),
        },
        (false, true) => {
            let kind = match kind {
                JoinKind::Inner => JoinKind::Inner,
                JoinKind::Cross => JoinKind::Cross,
                JoinKind::Right => JoinKind::Left,
                other => {
                    return Err(not_streaming(&format!(
                        "{other:?} JOIN with the stream on the right (put the stream first, or use INNER / RIGHT)"
                    )));
                }
            };
            let on = on.into_iter().map(|(a, b)| (b, a)).collect();
            Ok(LogicalPlan::Join { left: right, right: left, kind, on, filter, out })
        }
    }
}

/// The two times of a `date_diff_within` bound as expressions over the left and the right
/// input (either argument may name either side).
fn split_times(
    within: &Option<(i64, BExpr, BExpr)>,
    left: &[ColumnInfo],
    right: &[ColumnInfo],
) -> Result<(BExpr, BExpr)> {
    let Some((_, a, b)) = within else { return Err(Error::Internal { message: "no time bound".into() }) };
    let over = |e: &BExpr, cols: &[ColumnInfo]| {
        let mut ids = Vec::new();
        e.columns(&mut ids);
        !ids.is_empty() && ids.iter().all(|id| cols.iter().any(|c| c.id == *id))
    };
    let (l, r) = if over(a, left) && over(b, right) {
        (a, b)
    } else if over(b, left) && over(a, right) {
        (b, a)
    } else {
        return Err(Error::Bind {
            message: "date_diff_within needs one time of each joined stream".into(),
            span: None,
        });
    };
    Ok((to_phys(l, left)?, to_phys(r, right)?))
}

/// The streams and tables a plan reads.
fn tables_of(plan: &LogicalPlan, out: &mut Vec<String>) {
    match plan {
        LogicalPlan::Scan { table, .. } | LogicalPlan::StreamScan { table, .. } => {
            if !out.iter().any(|t| t == table.name()) {
                out.push(table.name().to_string());
            }
        }
        LogicalPlan::Values { .. } => {}
        LogicalPlan::Window { input, .. }
        | LogicalPlan::Filter { input, .. }
        | LogicalPlan::Project { input, .. }
        | LogicalPlan::Aggregate { input, .. }
        | LogicalPlan::Sort { input, .. }
        | LogicalPlan::Limit { input, .. } => tables_of(input, out),
        LogicalPlan::Join { left, right, .. } => {
            tables_of(left, out);
            tables_of(right, out);
        }
        LogicalPlan::Union { inputs, .. } => inputs.iter().for_each(|i| tables_of(i, out)),
    }
}

/// The `date_diff_within` conjunct of a join condition: (range in ms, left time, right time).
fn find_within(filter: &BExpr) -> Option<(i64, BExpr, BExpr)> {
    filter.clone().conjuncts().into_iter().find_map(|c| match c {
        BExpr::Call { func, args, .. } if func.name.as_ref() == "date_diff_within" && args.len() == 2 => {
            func.params.first().and_then(|p| p.as_i64()).map(|ms| (ms, args[0].clone(), args[1].clone()))
        }
        _ => None,
    })
}

fn not_streaming(what: &str) -> Error {
    Error::NotImplemented { feature: what.to_string(), location: None }
}

/// Replaces a chain node's input.
fn with_input(node: LogicalPlan, child: LogicalPlan) -> LogicalPlan {
    let child = Box::new(child);
    match node {
        LogicalPlan::Filter { predicate, .. } => LogicalPlan::Filter { input: child, predicate },
        LogicalPlan::Project { exprs, .. } => LogicalPlan::Project { input: child, exprs },
        LogicalPlan::Aggregate { groups, aggs, .. } => LogicalPlan::Aggregate { input: child, groups, aggs },
        LogicalPlan::Sort { keys, fetch, .. } => LogicalPlan::Sort { input: child, keys, fetch },
        LogicalPlan::Limit { skip, fetch, .. } => LogicalPlan::Limit { input: child, skip, fetch },
        LogicalPlan::Window { spec, time, start, end, .. } => {
            LogicalPlan::Window { input: child, spec, time, start, end }
        }
        other => other,
    }
}

/// Splits a chain node from its input (the node keeps a placeholder input).
fn split_input(node: LogicalPlan) -> (LogicalPlan, Option<LogicalPlan>) {
    let hole = || Box::new(LogicalPlan::Values { out: vec![], batches: vec![] });
    match node {
        LogicalPlan::Filter { input, predicate } => (LogicalPlan::Filter { input: hole(), predicate }, Some(*input)),
        LogicalPlan::Project { input, exprs } => (LogicalPlan::Project { input: hole(), exprs }, Some(*input)),
        LogicalPlan::Aggregate { input, groups, aggs } => {
            (LogicalPlan::Aggregate { input: hole(), groups, aggs }, Some(*input))
        }
        LogicalPlan::Sort { input, keys, fetch } => (LogicalPlan::Sort { input: hole(), keys, fetch }, Some(*input)),
        LogicalPlan::Limit { input, skip, fetch } => (LogicalPlan::Limit { input: hole(), skip, fetch }, Some(*input)),
        LogicalPlan::Window { input, spec, time, start, end } => {
            (LogicalPlan::Window { input: hole(), spec, time, start, end }, Some(*input))
        }
        LogicalPlan::Join { left, right, kind, on, filter, out } => {
            (LogicalPlan::Join { left: hole(), right, kind, on, filter, out }, Some(*left))
        }
        other => (other, None),
    }
}

/// A seek in the WHERE clause right above the source: `_tp_time >= t`, `_tp_time > t`,
/// `_tp_sn >= n`, `_tp_sn > n`.
fn seek_from_where(chain: &[LogicalPlan]) -> Result<SeekTo> {
    let LogicalPlan::StreamScan { columns, .. } = &chain[0] else { return Ok(SeekTo::Latest) };
    let id_of = |name: &str| columns.iter().find(|(_, n)| n == name).map(|(c, _)| c.id);
    let (time_id, sn_id) = (id_of("_tp_time"), id_of("_tp_sn"));
    let mut seek = SeekTo::Latest;
    for n in &chain[1..] {
        let pred = match n {
            LogicalPlan::Filter { predicate, .. } => predicate,
            LogicalPlan::Window { .. } => continue,
            _ => break,
        };
        for c in pred.clone().conjuncts() {
            let BExpr::Call { func, args, .. } = &c else { continue };
            let Some(op) = CmpOp::from_name(&func.name) else { continue };
            if args.len() != 2 {
                continue;
            }
            let (id, lit, op) = match (&args[0], args[1].as_literal(), &args[1], args[0].as_literal()) {
                (BExpr::Column { id, .. }, Some(v), _, _) => (*id, v, op),
                (_, _, BExpr::Column { id, .. }, Some(v)) => (*id, v, op.flip()),
                _ => continue,
            };
            let found = if Some(id) == time_id && matches!(op, CmpOp::Gt | CmpOp::GtEq) {
                match lit {
                    ScalarValue::Timestamp(v, unit, _) => {
                        let ms = to_millis(v, unit);
                        Some(if ms <= 0 { SeekTo::Earliest } else { SeekTo::Time(ms) })
                    }
                    _ => None,
                }
            } else if Some(id) == sn_id && matches!(op, CmpOp::Gt | CmpOp::GtEq) {
                lit.as_i64().map(|n| {
                    let n = if op == CmpOp::Gt { n.saturating_add(1) } else { n };
                    SeekTo::Sn(n.max(0) as u64)
                })
            } else {
                None
            };
            if let Some(f) = found {
                seek = f;
            }
        }
    }
    Ok(seek)
}

fn to_millis(v: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1000),
        TimeUnit::Millisecond => v,
        TimeUnit::Microsecond => v.div_euclid(1000),
        TimeUnit::Nanosecond => v.div_euclid(1_000_000),
    }
}

/// `seek_to`: `'earliest'`, `'latest'`, a timestamp (UTC unless it names an offset), or a
/// negative interval relative to now (`'-2h'`, `'-30m'`).
pub fn parse_seek_to(v: &str) -> Result<SeekTo> {
    let bad = |why: &str| Error::InvalidSetting {
        name: "seek_to".into(),
        reason: format!(
            "{why}: expected 'earliest', 'latest', a timestamp or a negative interval like '-2h', got '{v}'"
        ),
    };
    let t = v.trim();
    match t.to_ascii_lowercase().as_str() {
        "earliest" => return Ok(SeekTo::Earliest),
        "latest" => return Ok(SeekTo::Latest),
        _ => {}
    }
    if let Some(rel) = t.strip_prefix('-') {
        let digits: String = rel.chars().take_while(|c| c.is_ascii_digit()).collect();
        let suffix = &rel[digits.len()..];
        let n: i64 = digits.parse().map_err(|_| bad("not a number"))?;
        let unit = IntervalUnit::from_suffix(suffix.trim()).ok_or_else(|| bad("unknown interval unit"))?;
        let nanos = IntervalLiteral { value: n, unit }.as_nanos().ok_or_else(|| bad("calendar intervals"))?;
        let now_ms = crate::context::now_nanos() / 1_000_000;
        return Ok(SeekTo::Time(now_ms - (nanos / 1_000_000) as i64));
    }
    match crate::temporal::parse_timestamp(t, TimeUnit::Millisecond, 0) {
        Some(ms) => Ok(SeekTo::Time(ms)),
        None => Err(bad("not a timestamp")),
    }
}

fn interval_duration(iv: &IntervalLiteral, what: &str) -> Result<Duration> {
    match iv.as_nanos() {
        Some(n) if n > 0 => Ok(Duration::from_nanos(n.min(u64::MAX as i128) as u64)),
        _ => Err(Error::Bind { message: format!("{what} {iv} must be a positive fixed-length interval"), span: None }),
    }
}

/// Window facts met on the way up the chain.
struct WindowFacts {
    spec: WindowSpec,
    unit_nanos: i128,
    ty: DataType,
    start_ids: HashSet<usize>,
    end_ids: HashSet<usize>,
    /// Index in `pre` of the window op.
    op: usize,
}

fn build(
    q: &SluiceQuery,
    chain: Vec<LogicalPlan>,
    out: Vec<ColumnInfo>,
    start: SeekTo,
    memory_limit: Option<usize>,
) -> Result<StreamPlan> {
    let chain_has_agg = chain.iter().any(|n| matches!(n, LogicalPlan::Aggregate { .. }));
    let mut joined: Vec<String> = Vec::new();
    for n in &chain {
        if let LogicalPlan::Join { right, .. } = n {
            tables_of(right, &mut joined);
        }
    }
    let mut it = chain.into_iter();
    let Some(LogicalPlan::StreamScan { table, columns }) = it.next() else {
        return Err(Error::Internal { message: "streaming chain does not start at a stream".into() });
    };
    let mut cols: Vec<ColumnInfo> = columns.iter().map(|(c, _)| c.clone()).collect();
    let changes = start == SeekTo::Latest && chain_has_agg;
    let request = SubscribeRequest { columns: columns.iter().map(|(_, n)| n.clone()).collect(), start };
    let mut pre: Vec<RowOp> = Vec::new();
    // The column carrying +1/-1 for an aggregation over changing rows.
    let mut delta_id = None;
    if changes && table.changelog_delta() && table.versioned_key().is_none() {
        // A changelog without keys: the stored deltas as they are.
        delta_id = columns.iter().find(|(_, n)| n == "_tp_delta").map(|(c, _)| c.id);
    } else if changes && let Some((keys, version)) = table.versioned_key() {
        let pos = |n: &String| {
            request
                .columns
                .iter()
                .position(|c| c == n)
                .ok_or_else(|| Error::Internal { message: format!("versioned_kv column {n} not read") })
        };
        let key_idx = keys.iter().map(pos).collect::<Result<Vec<_>>>()?;
        let ver_idx = pos(&version)?;
        cols.push(ColumnInfo { id: DELTA_ID, name: "_tp_delta".into(), ty: DataType::Int8, nullable: false });
        delta_id = Some(DELTA_ID);
        // changelog_kv: upserts and deletes against the latest row of each key.
        let delta_in = if table.changelog_delta() { Some(pos(&"_tp_delta".to_string())?) } else { None };
        pre.push(RowOp::KvChangelog(Arc::new(ops::KvChangelog::new(key_idx, ver_idx, delta_in, schema_of(&cols)))));
    }
    let mut post: Vec<PostOp> = Vec::new();
    let mut agg: Option<AggPlan> = None;
    let mut window: Option<WindowFacts> = None;
    let mut skip = 0;
    let mut fetch = None;
    let mut limited = false;
    let rest: Vec<LogicalPlan> = it.collect();
    let last = rest.len().saturating_sub(1);
    for (pos, node) in rest.into_iter().enumerate() {
        if limited {
            return Err(not_streaming("LIMIT inside a streaming subquery"));
        }
        let row_op = match node {
            // A LIMIT inside a subquery over an aggregation: top rows of each emission.
            LogicalPlan::Limit { skip: s, fetch: f, .. } if pos < last && agg.is_some() => {
                post.push(PostOp::Limit { skip: s, fetch: f });
                None
            }
            LogicalPlan::Filter { predicate, .. } => {
                // WHERE runs before the window when it does not look at the window columns:
                // rows it drops must not move the watermark.
                let mut used = Vec::new();
                predicate.columns(&mut used);
                let before_window = agg.is_none()
                    && window.as_ref().is_some_and(|w| {
                        w.op + 1 == pre.len()
                            && !used.iter().any(|id| w.start_ids.contains(id) || w.end_ids.contains(id))
                    });
                if before_window {
                    let input = &cols[..cols.len() - 2];
                    let pred = to_phys(&predicate, input)?;
                    let keep: Vec<usize> = (0..input.len()).collect();
                    let at = window.as_ref().map(|w| w.op).expect("window");
                    pre.insert(at, RowOp::Filter { pred, keep, schema: schema_of(input) });
                    if let Some(w) = window.as_mut() {
                        w.op += 1;
                    }
                    None
                } else {
                    let pred = to_phys(&predicate, &cols)?;
                    let keep: Vec<usize> = (0..cols.len()).collect();
                    Some(RowOp::Filter { pred, keep, schema: schema_of(&cols) })
                }
            }
            LogicalPlan::Project { exprs, .. } => {
                if let Some(w) = window.as_mut() {
                    for (e, c) in &exprs {
                        if let BExpr::Column { id, .. } = e {
                            if w.start_ids.contains(id) {
                                w.start_ids.insert(c.id);
                            }
                            if w.end_ids.contains(id) {
                                w.end_ids.insert(c.id);
                            }
                        }
                    }
                }
                let mut exprs = exprs;
                // A changing input keeps its `_tp_delta` up to the aggregation.
                if agg.is_none()
                    && let Some(d) = cols.iter().find(|c| Some(c.id) == delta_id)
                    && !exprs.iter().any(|(_, c)| Some(c.id) == delta_id)
                {
                    exprs.push((d.expr(), d.clone()));
                }
                let phys = exprs.iter().map(|(e, _)| to_phys(e, &cols)).collect::<Result<Vec<_>>>()?;
                cols = exprs.iter().map(|(_, c)| c.clone()).collect();
                Some(RowOp::Project { exprs: phys, schema: schema_of(&cols) })
            }
            LogicalPlan::Window { spec, time, start, end, .. } => {
                if agg.is_some() {
                    return Err(not_streaming("a window over an aggregated stream"));
                }
                let t = cols.iter().position(|c| c.id == time.id).ok_or_else(|| Error::Internal {
                    message: "window time column not produced by the input".into(),
                })?;
                let unit_nanos = match &time.ty {
                    DataType::Timestamp(u, _) => match u {
                        TimeUnit::Second => 1_000_000_000,
                        TimeUnit::Millisecond => 1_000_000,
                        TimeUnit::Microsecond => 1_000,
                        TimeUnit::Nanosecond => 1,
                    },
                    _ => 1,
                };
                cols.push(start.clone());
                cols.push(end.clone());
                window = Some(WindowFacts {
                    spec,
                    unit_nanos,
                    ty: start.ty.clone(),
                    start_ids: HashSet::from([start.id]),
                    end_ids: HashSet::from([end.id]),
                    op: pre.len(),
                });
                Some(RowOp::Window { time: t, spec, schema: schema_of(&cols), drop_late: false })
            }
            LogicalPlan::Aggregate { groups, aggs, .. } => {
                if agg.is_some() {
                    return Err(not_streaming("an aggregation over a streaming aggregation"));
                }
                let mut layout = Vec::new();
                let mut keys = Vec::new();
                let mut wkey: Option<WindowKey> = None;
                for (g, _) in &groups {
                    let slot = match (g, window.as_ref()) {
                        (BExpr::Column { id, .. }, Some(w)) if w.start_ids.contains(id) || w.end_ids.contains(id) => {
                            let is_end = w.end_ids.contains(id);
                            if wkey.is_none() {
                                wkey = Some(WindowKey {
                                    expr: to_phys(g, &cols)?,
                                    is_end,
                                    size: w.spec.size(),
                                    ty: w.ty.clone(),
                                    session: match w.spec {
                                        WindowSpec::Session { idle, max } => Some((idle, max)),
                                        _ => None,
                                    },
                                });
                            }
                            if is_end { KeySlot::End } else { KeySlot::Start }
                        }
                        _ => {
                            keys.push(to_phys(g, &cols)?);
                            KeySlot::Key(keys.len() - 1)
                        }
                    };
                    layout.push(slot);
                }
                if let Some(w) = window.as_ref() {
                    if wkey.is_none() {
                        return Err(Error::Bind {
                            message:
                                "an aggregation over tumble()/hop()/session() must GROUP BY window_start or window_end"
                                    .into(),
                            span: None,
                        });
                    }
                    if let RowOp::Window { drop_late, .. } = &mut pre[w.op] {
                        *drop_late = true;
                    }
                }
                let calls = crate::plan::calls_to_phys(&aggs, &cols)?;
                let delta = cols.iter().position(|c| Some(c.id) == delta_id);
                let spec = match delta {
                    Some(_) if wkey.is_some() => {
                        return Err(not_streaming(
                            "windowed aggregation over a versioned_kv stream (rows that change); use a global aggregation",
                        ));
                    }
                    Some(_) => AggSpec::retractable(keys, calls)?,
                    None => AggSpec::new(keys, calls),
                };
                let delta = delta.map(|i| BExpr::Column {
                    id: i,
                    name: "_tp_delta".into(),
                    ty: DataType::Int8,
                    nullable: false,
                });
                cols = groups.iter().map(|(_, c)| c.clone()).chain(aggs.iter().map(|(_, c)| c.clone())).collect();
                agg = Some(AggPlan { spec, layout, window: wkey, schema: schema_of(&cols), delta });
                None
            }
            LogicalPlan::Sort { keys, fetch: f, .. } => {
                if agg.is_none() {
                    return Err(Error::NotImplemented {
                        feature: "ORDER BY on a streaming query without aggregation (its rows never end); \
                                  ORDER BY sorts each emission of an aggregation"
                            .into(),
                        location: None,
                    });
                }
                let keys = crate::plan::sort_keys_to_phys(&keys, &cols)?;
                post.push(PostOp::Sort { keys, fetch: f });
                None
            }
            LogicalPlan::Limit { skip: s, fetch: f, .. } => {
                skip = s;
                fetch = f;
                limited = true;
                None
            }
            LogicalPlan::Join { right, kind, on, filter, out, .. } => {
                if agg.is_some() {
                    return Err(not_streaming("a join over a streaming aggregation"));
                }
                let rcols = right.output();
                let left_keys = on.iter().map(|(a, _)| to_phys(a, &cols)).collect::<Result<Vec<_>>>()?;
                let right_keys = on.iter().map(|(_, b)| to_phys(b, &rcols)).collect::<Result<Vec<_>>>()?;
                let all = crate::plan::joined_columns(&cols, &rcols, &out);
                let within = filter.as_ref().and_then(find_within);
                let filter = filter.as_ref().map(|f| to_phys(f, &all)).transpose()?;
                let right_schema = schema_of(&rcols);
                let right = match *right {
                    LogicalPlan::StreamScan { table, columns } => {
                        let names: Vec<String> = columns.iter().map(|(_, n)| n.clone()).collect();
                        match (table.versioned_key(), &within) {
                            (Some((keys, version)), _) => {
                                let deletes = table.changelog_delta();
                                JoinRight::Kv { table, columns: names, keys, version, deletes }
                            }
                            (None, Some((range_ms, _, _))) => {
                                // The time bound's two sides, over each input alone.
                                let (lt, rt) = split_times(&within, &cols, &rcols)?;
                                JoinRight::Stream {
                                    table,
                                    columns: names,
                                    range_ms: *range_ms,
                                    left_time: lt,
                                    right_time: rt,
                                }
                            }
                            (None, None) => {
                                return Err(Error::Internal { message: "stream join without a time bound".into() });
                            }
                        }
                    }
                    bounded => JoinRight::Snapshot(crate::plan::physical_plan(bounded)?),
                };
                cols = all;
                Some(RowOp::Join(Box::new(JoinOp {
                    right,
                    right_schema,
                    kv: None,
                    stream: None,
                    right_keys,
                    left_keys,
                    filter,
                    kind,
                    schema: schema_of(&cols),
                    probe: None,
                })))
            }
            other => return Err(Error::Internal { message: format!("unexpected streaming node {other:?}") }),
        };
        if let Some(op) = row_op {
            if agg.is_some() {
                if matches!(op, RowOp::Window { .. }) {
                    return Err(not_streaming("a window over an aggregated stream"));
                }
                post.push(PostOp::Row(op));
            } else {
                pre.push(op);
            }
        }
    }
    // The result must be exactly the query's columns.
    if cols.iter().map(|c| c.id).collect::<Vec<_>>() != out.iter().map(|c| c.id).collect::<Vec<_>>() {
        let exprs = out.iter().map(|c| to_phys(&c.expr(), &cols)).collect::<Result<Vec<_>>>()?;
        let op = RowOp::Project { exprs, schema: schema_of(&out) };
        if agg.is_some() { post.push(PostOp::Row(op)) } else { pre.push(op) }
    }
    let (policy, delay) = policy(q.emit.as_ref(), agg.as_ref(), window.as_ref())?;
    let mut schema = schema_of(&out);
    if policy.changelog {
        schema = with_delta(&schema);
    }
    let mut tables = vec![table.name().to_string()];
    tables.extend(joined);
    Ok(StreamPlan {
        table,
        request,
        pre,
        agg,
        post,
        policy,
        delay,
        skip,
        fetch,
        schema,
        memory_limit,
        partition: None,
        tables,
    })
}

fn policy(emit: Option<&Emit>, agg: Option<&AggPlan>, window: Option<&WindowFacts>) -> Result<(Policy, i64)> {
    let default = Emit::default();
    let e = emit.unwrap_or(&default);
    let bind = |m: &str| Error::Bind { message: m.to_string(), span: None };
    if e.last.is_some() {
        return Err(not_streaming("EMIT LAST"));
    }
    let changelog = e.mode == EmitMode::Changelog;
    let Some(agg) = agg else {
        if e.after_watermark || e.periodic.is_some() || e.on_update || e.timeout.is_some() || changelog {
            return Err(bind(
                "this EMIT policy needs an aggregation (a query without GROUP BY or aggregates emits every row as it arrives)",
            ));
        }
        let p = Policy {
            shape: Shape::Delta,
            changelog: false,
            per_batch: true,
            periodic: None,
            repeat: false,
            timeout: None,
        };
        return Ok((p, 0));
    };
    let shape = if e.on_update || changelog { Shape::Delta } else { Shape::Snapshot };
    let periodic = e.periodic.as_ref().map(|p| interval_duration(p, "EMIT PERIODIC")).transpose()?;
    let timeout = e.timeout.as_ref().map(|p| interval_duration(p, "EMIT TIMEOUT")).transpose()?;
    if agg.window.is_none() {
        if e.after_watermark || e.timeout.is_some() {
            return Err(bind(
                "EMIT AFTER WATERMARK / TIMEOUT need a window: aggregate over tumble(...) or hop(...) and GROUP BY window_start",
            ));
        }
        let per_batch = e.on_update || (changelog && periodic.is_none());
        let periodic = if per_batch { periodic } else { Some(periodic.unwrap_or(DEFAULT_GLOBAL_PERIOD)) };
        return Ok((Policy { shape, changelog, per_batch, periodic, repeat: e.repeat, timeout: None }, 0));
    }
    if matches!(window.map(|w| w.spec), Some(WindowSpec::Session { .. }))
        && (e.on_update || changelog || e.periodic.is_some())
    {
        return Err(bind(
            "session windows emit each session once, when it closes: use EMIT AFTER WATERMARK [AND TIMEOUT]",
        ));
    }
    let per_batch = e.on_update || (changelog && periodic.is_none() && !e.after_watermark);
    let delay = match (&e.delay, window) {
        (Some(d), Some(w)) => {
            let nanos = d.as_nanos().filter(|n| *n >= 0).ok_or_else(|| bind("the watermark delay must be fixed"))?;
            // Whole ticks of the time column, rounded up: a delay never shrinks.
            i64::try_from((nanos + w.unit_nanos - 1) / w.unit_nanos)
                .map_err(|_| bind("the watermark delay is too large"))?
        }
        _ => 0,
    };
    Ok((Policy { shape, changelog, per_batch, periodic, repeat: e.repeat, timeout }, delay))
}

/// Where a streaming query can be resumed from with at-least-once delivery of its results:
/// replaying from `positions` rebuilds its state; windows ending at or before `closed_upto`
/// were emitted already.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    /// Next sequence number per shard to replay from.
    pub positions: Vec<u64>,
    /// End (ticks of the window time column) of the last window emitted.
    pub closed_upto: Option<i64>,
    /// With `PARTITION BY`: the end of the last window emitted per partition key (the key in
    /// Arrow's row encoding).
    pub partitions: Vec<(Vec<u8>, i64)>,
    /// Saved operator states at `positions` (resuming loads them instead of replaying):
    /// `("agg", partition key, state)` per substream of a global aggregation, `("kv", [],
    /// rows)` for the latest rows per key of a versioned_kv/changelog_kv input.
    pub states: Vec<(String, Vec<u8>, RecordBatch)>,
}

/// Counters of a running streaming query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Input rows read from the source.
    pub rows_in: u64,
    /// Rows dropped because they were older than the watermark.
    pub late_rows: u64,
    /// Rows emitted.
    pub rows_out: u64,
    /// Windows open now.
    pub open_windows: usize,
    /// Bytes held by aggregation state.
    pub state_bytes: usize,
    /// Input rows skipped because processing them failed (see
    /// [`StreamingQuery::skip_bad_batches`]).
    pub skipped_rows: u64,
}

/// Counters of a running query that other threads can read while it runs (`system.queries`).
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Input rows read.
    pub rows_in: std::sync::atomic::AtomicU64,
    /// Rows emitted (updated as soon as they are queued, the other counters per input batch).
    pub rows_out: std::sync::atomic::AtomicU64,
    /// Rows dropped as late.
    pub late_rows: std::sync::atomic::AtomicU64,
    /// Rows skipped for errors.
    pub skipped_rows: std::sync::atomic::AtomicU64,
    /// Open windows and sessions.
    pub open_windows: std::sync::atomic::AtomicU64,
    /// Bytes of aggregation state.
    pub state_bytes: std::sync::atomic::AtomicU64,
}

impl LiveStats {
    fn store(&self, s: &StreamStats) {
        let o = Ordering::Relaxed;
        self.rows_in.store(s.rows_in, o);
        self.rows_out.store(s.rows_out, o);
        self.late_rows.store(s.late_rows, o);
        self.skipped_rows.store(s.skipped_rows, o);
        self.open_windows.store(s.open_windows as u64, o);
        self.state_bytes.store(s.state_bytes as u64, o);
    }
}

/// One substream: the whole stream, or the rows of one `PARTITION BY` key, with its own
/// watermark and aggregation state.
struct Substream {
    key: Box<[u8]>,
    wm: Watermark,
    agg: Option<AggRun>,
}

/// A running streaming query: a blocking iterator of result batches that ends at LIMIT, on
/// cancel (one `Err(Cancelled)`), on an error, or when the stream goes away.
pub struct StreamingQuery {
    plan: StreamPlan,
    source: Box<dyn StreamSource>,
    ctx: ExecContext,
    subs: Vec<Substream>,
    /// `PARTITION BY`: the key columns of the source and their row encoding, and the
    /// substream of each key.
    partition: Option<(Vec<usize>, RowConverter)>,
    sub_of: HashMap<Box<[u8]>, usize>,
    /// Windows each partition had emitted before a resume.
    resumed_closed: HashMap<Box<[u8]>, i64>,
    out: VecDeque<RecordBatch>,
    skipped: usize,
    next_periodic: Option<Instant>,
    last_input: Instant,
    stats: StreamStats,
    done: bool,
    /// Position before the batch being processed.
    before: Vec<u64>,
    /// Where the query started (the replay point of a global aggregation).
    start_positions: Vec<u64>,
    skip_errors: bool,
    live: Arc<LiveStats>,
    /// When `live` was last published.
    live_at: Instant,
    /// The source's shard facts for the batch being processed (multi-shard streams).
    waiting: Option<(Option<usize>, Vec<bool>)>,
}

impl std::fmt::Debug for StreamingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingQuery").field("stats", &self.stats).field("done", &self.done).finish()
    }
}

impl StreamingQuery {
    fn new(mut plan: StreamPlan, source: Box<dyn StreamSource>, ctx: &ExecContext) -> Result<Self> {
        let mut ctx = ctx.clone();
        if let Some(m) = plan.memory_limit.filter(|m| *m > 0) {
            ctx.memory_limit_bytes = m;
        }
        for op in plan.pre.iter_mut() {
            op.prepare(&ctx)?;
        }
        let partition = match &plan.partition {
            None => None,
            Some((cols, types)) => {
                let fields = types.iter().map(|t| SortField::new(t.clone())).collect();
                Some((cols.clone(), RowConverter::new(fields)?))
            }
        };
        let now = Instant::now();
        let start_positions = source.positions();
        let mut q = StreamingQuery {
            before: start_positions.clone(),
            start_positions,
            skip_errors: false,
            subs: Vec::new(),
            partition,
            sub_of: HashMap::new(),
            resumed_closed: HashMap::new(),
            next_periodic: plan.policy.periodic.map(|p| now + p),
            last_input: now,
            plan,
            source,
            ctx,
            out: VecDeque::new(),
            skipped: 0,
            stats: StreamStats::default(),
            done: false,
            live: Arc::default(),
            live_at: now,
            waiting: None,
        };
        if q.partition.is_none() {
            q.substream(Box::from(&[][..]))?;
        }
        // LIMIT 0: nothing to wait for.
        q.done = q.plan.fetch == Some(0);
        Ok(q)
    }

    /// The substream of `key`, created on first use.
    fn substream(&mut self, key: Box<[u8]>) -> Result<usize> {
        if let Some(i) = self.sub_of.get(&key) {
            return Ok(*i);
        }
        let mut agg = self.plan.agg.clone().map(|a| AggRun::new(a, self.ctx.clone())).transpose()?;
        if let (Some(a), Some(c)) = (agg.as_mut(), self.resumed_closed.get(&key)) {
            a.closed_upto = a.closed_upto.max(*c);
        }
        let mut wm = Watermark::new(self.plan.delay);
        if let Some((shard, waiting)) = &self.waiting {
            wm.set_source(*shard, waiting.clone());
        }
        self.subs.push(Substream { key: key.clone(), wm, agg });
        self.sub_of.insert(key, self.subs.len() - 1);
        Ok(self.subs.len() - 1)
    }

    /// The result schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema.clone()
    }

    /// The flag that cancels the query when set (from any thread).
    pub fn cancel_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.ctx.cancel.clone()
    }

    /// True once the query ended (LIMIT reached, cancelled, failed, or its stream is gone).
    pub fn is_done(&self) -> bool {
        self.done && self.out.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        let aggs = || self.subs.iter().filter_map(|s| s.agg.as_ref());
        StreamStats {
            late_rows: self.subs.iter().map(|s| s.wm.late_rows).sum::<u64>() + aggs().map(|a| a.late_rows).sum::<u64>(),
            state_bytes: aggs().map(AggRun::size).sum(),
            open_windows: aggs().map(AggRun::open_windows).sum(),
            ..self.stats
        }
    }

    /// Counters that other threads can read while the query runs (updated per input batch).
    pub fn live_stats(&self) -> Arc<LiveStats> {
        self.live.clone()
    }

    /// The source's position after the rows processed so far.
    pub fn positions(&self) -> Vec<u64> {
        self.source.positions()
    }

    /// A point to resume from, or `None` while results of processed rows are still queued
    /// (take them first). A stateless query resumes after the rows processed; a windowed
    /// aggregation at the row that opened its oldest open window; a global aggregation where
    /// it started (its state covers everything since).
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        if !self.out.is_empty() {
            return None;
        }
        let Some(windowed) = self.plan.agg.as_ref().map(|a| a.window.is_some()) else {
            return Some(Checkpoint { positions: self.source.positions(), ..Checkpoint::default() });
        };
        if !windowed {
            // A global aggregation saves its state with the position it covers; if it cannot
            // (an aggregate without a saveable state, PARTITION BY, sessions), it replays from
            // where it started.
            let global = self.plan.agg.as_ref().is_some_and(|a| a.window.is_none());
            if global && let Some(states) = self.save_states() {
                return Some(Checkpoint { positions: self.source.positions(), states, ..Checkpoint::default() });
            }
            return Some(Checkpoint { positions: self.start_positions.clone(), ..Checkpoint::default() });
        }
        let mut positions: Option<Vec<u64>> = None;
        let mut closed = Vec::new();
        for s in &self.subs {
            let Some(a) = &s.agg else { continue };
            if let Some(p) = a.replay_from() {
                match &mut positions {
                    None => positions = Some(p),
                    Some(o) => o.iter_mut().zip(&p).for_each(|(x, y)| *x = (*x).min(*y)),
                }
            }
            if a.closed_upto > i64::MIN {
                closed.push((s.key.to_vec(), a.closed_upto));
            }
        }
        let positions = positions.unwrap_or_else(|| self.source.positions());
        // Sessions: the end of the last session emitted per group key, per substream.
        let mut states = Vec::new();
        if self.plan.agg.as_ref().and_then(|a| a.window.as_ref()).is_some_and(|w| w.session.is_some()) {
            for s in &self.subs {
                if let Some(b) = s.agg.as_ref().and_then(AggRun::save_sessions_closed) {
                    states.push(("sessions".to_string(), s.key.to_vec(), b));
                }
            }
            return Some(Checkpoint { positions, states, ..Checkpoint::default() });
        }
        Some(if self.partition.is_none() {
            Checkpoint { positions, closed_upto: closed.first().map(|(_, c)| *c), ..Checkpoint::default() }
        } else {
            Checkpoint { positions, partitions: closed, ..Checkpoint::default() }
        })
    }

    /// Every state a global aggregation needs to resume without replay, or `None` when one of
    /// them cannot be saved.
    fn save_states(&self) -> Option<Vec<(String, Vec<u8>, RecordBatch)>> {
        let mut out = Vec::new();
        for op in &self.plan.pre {
            if let RowOp::KvChangelog(c) = op {
                out.push(("kv".to_string(), Vec::new(), c.save()?));
            }
        }
        for s in &self.subs {
            let a = s.agg.as_ref()?;
            out.push(("agg".to_string(), s.key.to_vec(), a.save()?));
        }
        Some(out)
    }

    /// With `true`, input rows whose processing fails (a bad value, a failed cast) are
    /// skipped and counted in [`StreamStats::skipped_rows`] instead of ending the query
    /// (a materialized view's `recovery_policy = 'best_effort'`): a failing batch is split
    /// in halves until the failing rows are found, so good rows next to a bad one still pass.
    pub fn skip_bad_batches(&mut self, on: bool) {
        self.skip_errors = on;
    }

    /// The next result batch, waiting at most `timeout` for one; `Ok(None)` when none came in
    /// time (the query goes on) — use the iterator to wait without bound.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordBatch>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(b) = self.out.pop_front() {
                return Ok(Some(b));
            }
            if self.done {
                return Ok(None);
            }
            if self.ctx.cancel.load(Ordering::Acquire) {
                self.done = true;
                return Err(Error::Cancelled);
            }
            let now = Instant::now();
            if self.timers(now)? {
                continue;
            }
            if now >= deadline && timeout > Duration::ZERO {
                return Ok(None);
            }
            let mut wait = POLL_SLICE.min(deadline.saturating_duration_since(now));
            if let Some(t) = self.next_periodic {
                wait = wait.min(t.saturating_duration_since(now));
            }
            if let Some(t) = self.timeout_at() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            for op in &self.plan.pre {
                op.poll_side_inputs()?;
            }
            self.run_pending()?;
            if !self.out.is_empty() {
                continue;
            }
            self.before = self.source.positions();
            match self.source.next_timeout(wait)? {
                Some(b) => {
                    self.last_input = Instant::now();
                    let (shard, waiting) = (self.source.batch_shard(), self.source.waiting_shards());
                    let more = waiting.iter().any(|w| *w);
                    if waiting.len() > 1 {
                        for s in self.subs.iter_mut() {
                            s.wm.set_source(shard, waiting.clone());
                        }
                        self.waiting = Some((shard, waiting));
                    }
                    self.process(b)?;
                    // `stats()` walks every substream and window: publish it when the input is
                    // drained (so it is exact once the query caught up) or every 50 ms.
                    if !more || self.live_at.elapsed() >= LIVE_STATS_EVERY {
                        self.live.store(&self.stats());
                        self.live_at = Instant::now();
                    }
                }
                None => {
                    if self.source.is_finished() {
                        self.done = true;
                    } else if timeout == Duration::ZERO {
                        return Ok(self.out.pop_front());
                    }
                }
            }
        }
    }

    fn timeout_at(&self) -> Option<Instant> {
        let t = self.plan.policy.timeout?;
        let open = self.subs.iter().any(|s| s.agg.as_ref().is_some_and(|a| a.open_windows() > 0));
        open.then(|| self.last_input + t)
    }

    /// Runs due timers; true if one fired.
    fn timers(&mut self, now: Instant) -> Result<bool> {
        let mut fired = false;
        let p = self.plan.policy.clone();
        if let (Some(at), Some(period)) = (self.next_periodic, p.periodic)
            && now >= at
        {
            let next = at + period;
            self.next_periodic = Some(if next <= now { now + period } else { next });
            for i in 0..self.subs.len() {
                if let Some(a) = self.subs[i].agg.as_mut() {
                    let e = a.emit_open(p.shape, p.changelog, p.repeat)?;
                    self.emit(e)?;
                }
            }
            fired = true;
        }
        if let Some(at) = self.timeout_at()
            && now >= at
        {
            for i in 0..self.subs.len() {
                let s = &mut self.subs[i];
                if let Some(a) = s.agg.as_mut()
                    && let Some(end) = a.last_end()
                {
                    let e = a.close(end, p.shape, p.changelog)?;
                    s.wm.raise_floor(end);
                    self.emit(e)?;
                }
            }
            fired = true;
        }
        Ok(fired)
    }

    /// Rows produced by side inputs (a stream join's right side) go through the operators
    /// after the one that produced them.
    fn run_pending(&mut self) -> Result<()> {
        for i in 0..self.plan.pre.len() {
            for b in self.plan.pre[i].take_pending()? {
                let mut b = b;
                for op in &self.plan.pre[i + 1..] {
                    b = op.apply(b, &mut self.subs[0].wm)?;
                }
                self.process_rows(0, b)?;
            }
        }
        Ok(())
    }

    /// The per-batch operators; with `skip_errors`, failing rows are found by halving the
    /// batch and dropped (the watermark is restored before each retry).
    fn run_pre(&mut self, sub: usize, batch: RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let saved = self.skip_errors.then(|| self.subs[sub].wm.clone());
        let mut b = batch.clone();
        let mut failed = None;
        for op in &self.plan.pre {
            match op.apply(b, &mut self.subs[sub].wm) {
                Ok(next) => b = next,
                Err(e) => {
                    failed = Some(e);
                    b = RecordBatch::new_empty(batch.schema());
                    break;
                }
            }
        }
        let Some(e) = failed else {
            out.push(b);
            return Ok(());
        };
        let Some(saved) = saved else { return Err(e) };
        if matches!(e, Error::ResourcesExhausted { .. } | Error::Cancelled | Error::Internal { .. }) {
            return Err(e);
        }
        self.subs[sub].wm = saved;
        let n = batch.num_rows();
        if n <= 1 {
            self.stats.skipped_rows += n as u64;
            return Ok(());
        }
        self.run_pre(sub, batch.slice(0, n / 2), out)?;
        self.run_pre(sub, batch.slice(n / 2, n - n / 2), out)
    }

    fn process(&mut self, batch: RecordBatch) -> Result<()> {
        self.stats.rows_in += batch.num_rows() as u64;
        let Some((cols, conv)) = &self.partition else {
            return self.process_sub(0, batch);
        };
        // Split by partition key, keeping arrival order within each key.
        let keys = conv.convert_columns(&cols.iter().map(|c| batch.column(*c).clone()).collect::<Vec<_>>())?;
        let mut groups: Vec<(Box<[u8]>, Vec<u32>)> = Vec::new();
        let mut at: HashMap<Box<[u8]>, usize> = HashMap::new();
        for r in 0..batch.num_rows() {
            let k = keys.row(r);
            match at.get(k.as_ref()) {
                Some(g) => groups[*g].1.push(r as u32),
                None => {
                    at.insert(k.as_ref().into(), groups.len());
                    groups.push((k.as_ref().into(), vec![r as u32]));
                }
            }
        }
        for (key, rows) in groups {
            let sub = self.substream(key)?;
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                arrow::compute::take_record_batch(&batch, &UInt32Array::from(rows))?
            };
            self.process_sub(sub, part)?;
        }
        Ok(())
    }

    fn process_sub(&mut self, sub: usize, batch: RecordBatch) -> Result<()> {
        let mut parts = Vec::with_capacity(1);
        self.run_pre(sub, batch, &mut parts)?;
        for b in parts {
            self.process_rows(sub, b)?;
        }
        Ok(())
    }

    fn process_rows(&mut self, sub: usize, b: RecordBatch) -> Result<()> {
        let windowed = self.plan.agg.as_ref().is_some_and(|x| x.window.is_some());
        let s = &mut self.subs[sub];
        s.wm.admitted();
        let Some(a) = s.agg.as_mut() else {
            return self.push(b);
        };
        a.update(&b, &self.before)?;
        let p = &self.plan.policy;
        let mut emissions = Vec::new();
        if p.per_batch {
            emissions.extend(a.emit_open(p.shape, p.changelog, false)?);
        }
        if windowed && let Some(w) = s.wm.value() {
            emissions.extend(a.close(w, p.shape, p.changelog)?);
        }
        self.emit(emissions)
    }

    fn emit(&mut self, emissions: Vec<Emission>) -> Result<()> {
        let mut no_watermark = Watermark::new(0);
        for e in emissions {
            for (b, delta) in [(e.retract, -1i8), (e.insert, 1i8)] {
                let Some(mut b) = b else { continue };
                for op in &self.plan.post {
                    b = match op {
                        PostOp::Row(r) => r.apply(b, &mut no_watermark)?,
                        PostOp::Sort { keys, fetch } => sort_batch(&b, keys, *fetch)?,
                        PostOp::Limit { skip, fetch } => {
                            let from = (*skip).min(b.num_rows());
                            let len = fetch.unwrap_or(usize::MAX).min(b.num_rows() - from);
                            b.slice(from, len)
                        }
                    };
                }
                if self.plan.policy.changelog {
                    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                    cols.push(Arc::new(Int8Array::from(vec![delta; b.num_rows()])));
                    let opts = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
                    b = RecordBatch::try_new_with_options(with_delta(&b.schema()), cols, &opts)?;
                }
                self.push(b)?;
            }
        }
        Ok(())
    }

    /// Queues a result batch, applying OFFSET and LIMIT.
    fn push(&mut self, b: RecordBatch) -> Result<()> {
        if self.done || b.num_rows() == 0 {
            return Ok(());
        }
        let mut b = b;
        if self.skipped < self.plan.skip {
            let n = (self.plan.skip - self.skipped).min(b.num_rows());
            self.skipped += n;
            b = b.slice(n, b.num_rows() - n);
            if b.num_rows() == 0 {
                return Ok(());
            }
        }
        if let Some(f) = self.plan.fetch {
            let left = f.saturating_sub(self.stats.rows_out as usize);
            if b.num_rows() >= left {
                b = b.slice(0, left);
                self.done = true;
            }
        }
        if b.num_rows() == 0 {
            return Ok(());
        }
        self.stats.rows_out += b.num_rows() as u64;
        // Published at once (one atomic store), so that `rows_out` is exact whenever the query
        // has handed its results on: the wire runner of the .slt files waits for that many rows.
        self.live.rows_out.store(self.stats.rows_out, Ordering::Relaxed);
        self.out.push_back(relabel(b, &self.plan.schema)?);
        Ok(())
    }
}

impl Iterator for StreamingQuery {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_timeout(Duration::from_secs(3600)) {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) if self.done => return None,
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
