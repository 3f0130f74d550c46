//! Per-batch operators of a streaming query (filter, projection, window assignment) and the
//! event-time watermark.

use arrow::array::{Array, AsArray, BooleanArray, Int64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::row::{RowConverter, SortField};

use crate::catalog::{SeekTo, StreamSource, SubscribeRequest, Table};
use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::exec::ExecNode;
use crate::exec::hash_join::Probe;
use crate::exec::{filter, project, window};
use crate::expr::BExpr;
use crate::logical::JoinKind;
use crate::logical::WindowSpec;

/// One stateless step applied to every batch.
#[derive(Debug, Clone)]
pub(crate) enum RowOp {
    /// WHERE / HAVING, keeping the `keep` columns.
    Filter { pred: BExpr, keep: Vec<usize>, schema: SchemaRef },
    /// SELECT list.
    Project { exprs: Vec<BExpr>, schema: SchemaRef },
    /// `tumble` / `hop`; with `drop_late`, rows older than the watermark are dropped first
    /// (and the watermark advances).
    Window { time: usize, spec: WindowSpec, schema: SchemaRef, drop_late: bool },
    /// stream ⋈ `table(t)`: the right side is read once when the query starts ([`RowOp::prepare`]).
    Join(Box<JoinOp>),
    /// A versioned_kv stream as changes: each row that replaces an older version of its key
    /// is preceded by that version with `_tp_delta = -1`; new rows carry `+1`.
    KvChangelog(Arc<KvChangelog>),
}

/// The latest row per key seen so far, to retract it when a newer version arrives.
#[derive(Debug)]
pub(crate) struct KvChangelog {
    pub keys: Vec<usize>,
    pub version: usize,
    /// A changelog_kv input: its `_tp_delta` column (a negative delta deletes the key).
    pub delta_in: Option<usize>,
    pub schema: SchemaRef,
    state: Mutex<Option<KvLatest>>,
}

struct KvLatest {
    key_conv: RowConverter,
    ver_conv: RowConverter,
    /// Per key: its version (row encoding) and its row.
    latest: HashMap<Box<[u8]>, Versioned>,
}

/// A key's current version and row.
type Versioned = (Box<[u8]>, RecordBatch);

impl std::fmt::Debug for KvLatest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvLatest").field("keys", &self.latest.len()).finish()
    }
}

impl KvChangelog {
    pub(crate) fn new(keys: Vec<usize>, version: usize, delta_in: Option<usize>, schema: SchemaRef) -> Self {
        KvChangelog { keys, version, delta_in, schema, state: Mutex::new(None) }
    }

    /// The latest row of every key as one batch (a `__sluice_version` binary column holds each
    /// row's version encoding), for a checkpoint; `None` before the first row.
    pub(crate) fn save(&self) -> Option<RecordBatch> {
        let g = self.state.lock().ok()?;
        let Some(st) = g.as_ref() else {
            return Some(RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())));
        };
        let rows: Vec<&Versioned> = st.latest.values().collect();
        if rows.is_empty() {
            return Some(RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())));
        }
        let batches: Vec<RecordBatch> = rows.iter().map(|(_, r)| r.clone()).collect();
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).ok()?;
        let versions = arrow::array::BinaryArray::from_iter_values(rows.iter().map(|(v, _)| v.as_ref()));
        let mut fields: Vec<arrow::datatypes::Field> =
            all.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(arrow::datatypes::Field::new("__sluice_version", arrow::datatypes::DataType::Binary, false));
        let mut cols = all.columns().to_vec();
        cols.push(Arc::new(versions));
        RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols).ok()
    }

    /// Restores what [`KvChangelog::save`] produced.
    pub(crate) fn load(&self, b: &RecordBatch) -> Result<()> {
        if b.num_columns() == 0 {
            return Ok(());
        }
        let last = b.num_columns() - 1;
        let rows = b.project(&(0..last).collect::<Vec<_>>())?;
        let versions = b
            .column(last)
            .as_any()
            .downcast_ref::<arrow::array::BinaryArray>()
            .ok_or_else(|| Error::Internal { message: "saved kv state has no versions".into() })?
            .clone();
        let mut g = self.state.lock().map_err(|_| Error::Internal { message: "changelog state poisoned".into() })?;
        let field = |i: usize| SortField::new(rows.schema().field(i).data_type().clone());
        let key_conv = RowConverter::new(self.keys.iter().map(|i| field(*i)).collect())?;
        let ver_conv = RowConverter::new(vec![field(self.version)])?;
        let k = key_conv.convert_columns(&self.keys.iter().map(|i| rows.column(*i).clone()).collect::<Vec<_>>())?;
        let mut latest = HashMap::new();
        for r in 0..rows.num_rows() {
            latest.insert(Box::from(k.row(r).as_ref()), (Box::from(versions.value(r)), rows.slice(r, 1)));
        }
        *g = Some(KvLatest { key_conv, ver_conv, latest });
        Ok(())
    }

    fn apply(&self, b: &RecordBatch) -> Result<RecordBatch> {
        let mut g = self.state.lock().map_err(|_| Error::Internal { message: "changelog state poisoned".into() })?;
        if g.is_none() {
            let field = |i: usize| SortField::new(b.schema().field(i).data_type().clone());
            *g = Some(KvLatest {
                key_conv: RowConverter::new(self.keys.iter().map(|i| field(*i)).collect())?,
                ver_conv: RowConverter::new(vec![field(self.version)])?,
                latest: HashMap::new(),
            });
        }
        let st = g.as_mut().expect("state");
        let k = st.key_conv.convert_columns(&self.keys.iter().map(|i| b.column(*i).clone()).collect::<Vec<_>>())?;
        let v = st.ver_conv.convert_columns(&[b.column(self.version).clone()])?;
        // Sources: 0 = this batch, 1.. = retracted old rows.
        let mut olds: Vec<RecordBatch> = Vec::new();
        let mut idx: Vec<(usize, usize)> = Vec::with_capacity(b.num_rows());
        let mut delta: Vec<i8> = Vec::with_capacity(b.num_rows());
        let deltas = match self.delta_in {
            Some(i) => Some(arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Int8)?),
            None => None,
        };
        let deltas = deltas.as_ref().and_then(|d| d.as_any().downcast_ref::<arrow::array::Int8Array>().cloned());
        for r in 0..b.num_rows() {
            let (key, ver) = (k.row(r), v.row(r));
            // A delete (changelog_kv): take the key's current row back, if any.
            if deltas.as_ref().is_some_and(|d| d.is_valid(r) && d.value(r) < 0) {
                if let Some((old_v, old)) = st.latest.get(key.as_ref())
                    && ver.as_ref() >= old_v.as_ref()
                {
                    olds.push(old.clone());
                    idx.push((olds.len(), 0));
                    delta.push(-1);
                    st.latest.remove(key.as_ref());
                }
                continue;
            }
            match st.latest.get(key.as_ref()) {
                // An older version than the current one: superseded already, no change.
                Some((old_v, _)) if ver.as_ref() < old_v.as_ref() => continue,
                Some((_, old)) => {
                    olds.push(old.clone());
                    idx.push((olds.len(), 0));
                    delta.push(-1);
                }
                None => {}
            }
            idx.push((0, r));
            delta.push(1);
            st.latest.insert(key.as_ref().into(), (ver.as_ref().into(), b.slice(r, 1)));
        }
        let mut sources: Vec<&RecordBatch> = vec![b];
        sources.extend(olds.iter());
        let rows = arrow::compute::interleave_record_batch(&sources, &idx)?;
        let mut cols = rows.columns().to_vec();
        cols.push(Arc::new(arrow::array::Int8Array::from(delta)));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(idx.len())),
        )?)
    }
}

/// The right side of a streaming join.
#[derive(Debug, Clone)]
pub(crate) enum JoinRight {
    /// `table(t)`: read once at the start.
    Snapshot(Arc<dyn ExecNode>),
    /// A `versioned_kv` stream: its latest row per key, kept current while the query runs.
    Kv { table: Arc<dyn Table>, columns: Vec<String>, keys: Vec<String>, version: String, deletes: bool },
    /// Another stream, joined on rows whose times are at most `range_ms` apart
    /// (`date_diff_within`): both sides are buffered for that long.
    Stream { table: Arc<dyn Table>, columns: Vec<String>, range_ms: i64, left_time: BExpr, right_time: BExpr },
}

/// Both sides of a stream-to-stream join, buffered within the time range.
pub(crate) struct StreamJoinState {
    source: Box<dyn StreamSource>,
    left: Vec<RecordBatch>,
    right: Vec<RecordBatch>,
    left_max: Option<i64>,
    right_max: Option<i64>,
    /// Joined rows produced by right-side arrivals, not handed on yet.
    pending: Vec<RecordBatch>,
    reservation: crate::context::MemoryReservation,
}

impl std::fmt::Debug for StreamJoinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJoinState").field("left", &self.left.len()).field("right", &self.right.len()).finish()
    }
}

/// Milliseconds since the epoch of a time expression's values.
fn times_ms(e: &BExpr, b: &RecordBatch) -> Result<Int64Array> {
    let a = e.eval_array(b)?;
    let a = arrow::compute::cast(
        &a,
        &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
    )?;
    Ok(arrow::compute::cast(&a, &arrow::datatypes::DataType::Int64)?
        .as_primitive::<arrow::datatypes::Int64Type>()
        .clone())
}

fn max_of(t: &Int64Array) -> Option<i64> {
    arrow::compute::max(t)
}

/// The latest row of one key: (version in row encoding, arrival number, the row).
type KvRow = (Box<[u8]>, u64, RecordBatch);

/// The current rows of a versioned_kv stream on the right of a join.
pub(crate) struct KvSide {
    source: Box<dyn StreamSource>,
    /// Columns of the join's right side (the rest of a source batch: key and version).
    width: usize,
    keys: Vec<usize>,
    version: usize,
    /// changelog_kv: the `_tp_delta` column (a negative delta deletes the key).
    delta: Option<usize>,
    key_conv: RowConverter,
    ver_conv: RowConverter,
    /// Per key: its latest row.
    latest: HashMap<Box<[u8]>, KvRow>,
    arrivals: u64,
    dirty: bool,
    probe: Option<Arc<Probe>>,
}

impl std::fmt::Debug for KvSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSide").field("keys", &self.latest.len()).finish()
    }
}

impl KvSide {
    /// Takes in every right-side row available now (never waits).
    fn drain(&mut self) -> Result<()> {
        while let Some(b) = self.source.next_timeout(std::time::Duration::ZERO)? {
            let k =
                self.key_conv.convert_columns(&self.keys.iter().map(|i| b.column(*i).clone()).collect::<Vec<_>>())?;
            let v = self.ver_conv.convert_columns(&[b.column(self.version).clone()])?;
            let narrow = b.project(&(0..self.width).collect::<Vec<_>>())?;
            let deltas = match self.delta {
                Some(i) => Some(arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Int8)?),
                None => None,
            };
            let deltas = deltas.as_ref().and_then(|d| d.as_any().downcast_ref::<arrow::array::Int8Array>().cloned());
            for r in 0..b.num_rows() {
                self.arrivals += 1;
                let (key, ver) = (k.row(r), v.row(r));
                if deltas.as_ref().is_some_and(|d| d.is_valid(r) && d.value(r) < 0) {
                    if self.latest.get(key.as_ref()).is_some_and(|(old, _, _)| ver.as_ref() >= old.as_ref()) {
                        self.latest.remove(key.as_ref());
                        self.dirty = true;
                    }
                    continue;
                }
                let newer = match self.latest.get(key.as_ref()) {
                    Some((old, _, _)) => ver.as_ref() >= old.as_ref(),
                    None => true,
                };
                if newer {
                    self.latest.insert(key.as_ref().into(), (ver.as_ref().into(), self.arrivals, narrow.slice(r, 1)));
                    self.dirty = true;
                }
            }
        }
        Ok(())
    }
}

/// A streaming join with a bounded or versioned_kv right side.
#[derive(Debug, Clone)]
pub(crate) struct JoinOp {
    pub right: JoinRight,
    /// Schema of the right side's rows.
    pub right_schema: SchemaRef,
    /// A kv right side, once started.
    pub kv: Option<Arc<Mutex<KvSide>>>,
    /// A stream right side, once started.
    pub stream: Option<Arc<Mutex<StreamJoinState>>>,
    pub right_keys: Vec<BExpr>,
    pub left_keys: Vec<BExpr>,
    pub filter: Option<BExpr>,
    pub kind: JoinKind,
    pub schema: SchemaRef,
    pub probe: Option<Arc<Probe>>,
}

impl JoinOp {
    /// A probe with `right` as the build side.
    fn probe_over(&self, right: RecordBatch) -> Result<Probe> {
        Probe::streaming(
            right,
            &self.right_keys,
            self.left_keys.clone(),
            self.filter.clone(),
            self.kind,
            self.schema.clone(),
        )
    }

    fn stream_state(&self) -> Result<std::sync::MutexGuard<'_, StreamJoinState>> {
        self.stream
            .as_ref()
            .ok_or_else(|| Error::Internal { message: "stream join not prepared".into() })?
            .lock()
            .map_err(|_| Error::Internal { message: "stream join state poisoned".into() })
    }

    fn times(&self) -> (i64, &BExpr, &BExpr) {
        match &self.right {
            JoinRight::Stream { range_ms, left_time, right_time, .. } => (*range_ms, left_time, right_time),
            _ => unreachable!("a stream join"),
        }
    }

    /// Takes in the right side's new rows (at most `limit` batches): each is joined with the
    /// buffered left rows (the results wait in `pending`), then buffered itself.
    fn stream_drain(&self, limit: usize) -> Result<()> {
        let (_, _, right_time) = self.times();
        let mut st = self.stream_state()?;
        let mut taken = 0;
        while taken < limit
            && let Some(r) = st.source.next_timeout(std::time::Duration::ZERO)?
        {
            taken += 1;
            if r.num_rows() == 0 {
                continue;
            }
            if !st.left.is_empty() {
                let left = arrow::compute::concat_batches(&st.left[0].schema(), &st.left)?;
                let probe = self.probe_over(r.clone())?;
                let out = probe.run(&left, None)?;
                st.pending.extend(out.into_iter().filter(|b| b.num_rows() > 0));
            }
            let t = times_ms(right_time, &r)?;
            st.right_max = st.right_max.max(max_of(&t));
            st.right.push(r);
        }
        self.evict(&mut st)
    }

    /// Joined rows from right-side arrivals so far.
    fn stream_right_arrivals(&self) -> Result<Vec<RecordBatch>> {
        self.stream_drain(usize::MAX)?;
        Ok(std::mem::take(&mut self.stream_state()?.pending))
    }

    /// Joins a left batch with the buffered right rows, then buffers it.
    fn stream_left(&self, b: &RecordBatch) -> Result<Vec<RecordBatch>> {
        let (_, left_time, _) = self.times();
        let mut st = self.stream_state()?;
        let mut out = Vec::new();
        if !st.right.is_empty() && b.num_rows() > 0 {
            let right = arrow::compute::concat_batches(&st.right[0].schema(), &st.right)?;
            let probe = self.probe_over(right)?;
            out = probe.run(b, None)?.into_iter().filter(|b| b.num_rows() > 0).collect();
        }
        if b.num_rows() > 0 {
            let t = times_ms(left_time, b)?;
            st.left_max = st.left_max.max(max_of(&t));
            st.left.push(b.clone());
        }
        self.evict(&mut st)?;
        Ok(out)
    }

    /// Drops buffered rows that no future row can match (older than the slower side's latest
    /// time minus the range) and charges the rest to the query's memory limit.
    fn evict(&self, st: &mut StreamJoinState) -> Result<()> {
        let (range, left_time, right_time) = self.times();
        if let (Some(l), Some(r)) = (st.left_max, st.right_max) {
            let bound = l.min(r).saturating_sub(range);
            let keep = |bufs: &mut Vec<RecordBatch>, e: &BExpr| -> Result<()> {
                let mut kept = Vec::with_capacity(bufs.len());
                for b in bufs.drain(..) {
                    let t = times_ms(e, &b)?;
                    if max_of(&t).is_some_and(|m| m < bound) {
                        continue;
                    }
                    let mask = arrow::compute::kernels::cmp::gt_eq(&t, &Int64Array::new_scalar(bound))?;
                    let b = if mask.true_count() == b.num_rows() { b } else { filter_record_batch(&b, &mask)? };
                    if b.num_rows() > 0 {
                        kept.push(b);
                    }
                }
                *bufs = kept;
                Ok(())
            };
            keep(&mut st.left, left_time)?;
            keep(&mut st.right, right_time)?;
        }
        let bytes: usize =
            st.left.iter().chain(st.right.iter()).chain(st.pending.iter()).map(|b| b.get_array_memory_size()).sum();
        st.reservation.resize(bytes)
    }

    /// The probe over the kv side's current rows (rebuilt when they changed).
    fn kv_probe(&self, kv: &Mutex<KvSide>) -> Result<Arc<Probe>> {
        let mut side = kv.lock().map_err(|_| Error::Internal { message: "kv join state poisoned".into() })?;
        side.drain()?;
        if side.dirty || side.probe.is_none() {
            let mut rows: Vec<&KvRow> = side.latest.values().collect();
            rows.sort_by_key(|r| r.1);
            let batches: Vec<RecordBatch> = rows.iter().map(|r| r.2.clone()).collect();
            let right = if batches.is_empty() {
                RecordBatch::new_empty(self.right_schema.clone())
            } else {
                let b = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
                RecordBatch::try_new_with_options(
                    self.right_schema.clone(),
                    b.columns().to_vec(),
                    &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                )
                .unwrap_or(b)
            };
            let probe = self.probe_over(right)?;
            side.probe = Some(Arc::new(probe));
            side.dirty = false;
        }
        Ok(side.probe.clone().expect("probe built"))
    }
}

impl RowOp {
    /// Takes in side inputs that arrived (the right side of a kv join) without waiting, so
    /// their progress is seen even while the main stream is idle.
    pub(crate) fn poll_side_inputs(&self) -> Result<()> {
        if let RowOp::Join(j) = self {
            if let Some(kv) = &j.kv {
                kv.lock().map_err(|_| Error::Internal { message: "kv join state poisoned".into() })?.drain()?;
            }
            // One batch at a time: the source reports a batch as processed when asked for
            // the next, which then happens only after its joined rows were handed on.
            if j.stream.is_some() {
                j.stream_drain(1)?;
            }
        }
        Ok(())
    }

    /// Rows this operator produced from a side input (a stream join's right side) that the
    /// rest of the pipeline has not seen yet.
    pub(crate) fn take_pending(&self) -> Result<Vec<RecordBatch>> {
        match self {
            RowOp::Join(j) if j.stream.is_some() => Ok(std::mem::take(&mut j.stream_state()?.pending)),
            _ => Ok(Vec::new()),
        }
    }

    /// Work done once when a query starts: reads the right side of a join.
    pub(crate) fn prepare(&mut self, ctx: &ExecContext) -> Result<()> {
        if let RowOp::Join(j) = self {
            let node = match &j.right {
                JoinRight::Snapshot(node) => node.clone(),
                JoinRight::Stream { table, columns, .. } => {
                    let source =
                        table.subscribe(&SubscribeRequest { columns: columns.clone(), start: SeekTo::Latest })?;
                    j.stream = Some(Arc::new(Mutex::new(StreamJoinState {
                        source,
                        left: Vec::new(),
                        right: Vec::new(),
                        left_max: None,
                        right_max: None,
                        pending: Vec::new(),
                        reservation: ctx.reservation("stream-to-stream JOIN buffers"),
                    })));
                    return Ok(());
                }
                JoinRight::Kv { table, columns, keys, version, deletes } => {
                    let mut all = columns.clone();
                    let delta_name = "_tp_delta".to_string();
                    let extra: Vec<&String> =
                        keys.iter().chain(std::iter::once(version)).chain(deletes.then_some(&delta_name)).collect();
                    for c in extra {
                        if !all.contains(c) {
                            all.push(c.clone());
                        }
                    }
                    let delta_idx = deletes.then(|| all.iter().position(|a| a == "_tp_delta")).flatten();
                    let pos = |c: &String| all.iter().position(|a| a == c).expect("column requested");
                    let key_idx: Vec<usize> = keys.iter().map(pos).collect();
                    let ver_idx = pos(version);
                    let schema = table.schema();
                    let ty = |c: &String| {
                        schema
                            .field_with_name(c)
                            .map(|f| f.data_type().clone())
                            .map_err(|e| Error::Internal { message: e.to_string() })
                    };
                    let key_conv =
                        RowConverter::new(keys.iter().map(|k| Ok(SortField::new(ty(k)?))).collect::<Result<_>>()?)?;
                    let ver_conv = RowConverter::new(vec![SortField::new(ty(version)?)])?;
                    let source = table.subscribe(&SubscribeRequest { columns: all, start: SeekTo::Latest })?;
                    let mut side = KvSide {
                        source,
                        width: columns.len(),
                        keys: key_idx,
                        version: ver_idx,
                        delta: delta_idx,
                        key_conv,
                        ver_conv,
                        latest: HashMap::new(),
                        arrivals: 0,
                        dirty: true,
                        probe: None,
                    };
                    side.drain()?;
                    j.kv = Some(Arc::new(Mutex::new(side)));
                    return Ok(());
                }
            };
            let batches = crate::exec::parallel::collect_parallel(ctx, node.execute(ctx)?)?;
            let right = arrow::compute::concat_batches(&node.schema(), &batches)?;
            let mut res = ctx.reservation("streaming JOIN right side");
            res.resize(right.get_array_memory_size() * 2)?;
            // Charged for the query's whole life (the counter belongs to this query).
            std::mem::forget(res);
            let probe = j.probe_over(right)?;
            j.probe = Some(Arc::new(probe));
        }
        Ok(())
    }

    pub(crate) fn apply(&self, b: RecordBatch, wm: &mut Watermark) -> Result<RecordBatch> {
        match self {
            RowOp::Filter { pred, keep, schema } => {
                let m = pred.eval_array(&b)?;
                let m =
                    m.as_boolean_opt().ok_or_else(|| Error::Internal { message: "filter is not boolean".into() })?;
                filter::apply(&b, m, keep, schema)
            }
            RowOp::Project { exprs, schema } => project::project(&b, exprs, schema),
            RowOp::Window { time, spec, schema, drop_late } => {
                let b = if *drop_late {
                    let t = window::ticks(b.column(*time))?;
                    match wm.admit(&t) {
                        None => b,
                        Some(keep) => filter_record_batch(&b, &keep)?,
                    }
                } else {
                    b
                };
                window::assign(&b, *time, *spec, schema)
            }
            RowOp::KvChangelog(c) => c.apply(&b),
            RowOp::Join(j) if j.stream.is_some() => {
                let mut out = j.stream_right_arrivals()?;
                out.extend(j.stream_left(&b)?);
                match out.len() {
                    0 => Ok(RecordBatch::new_empty(j.schema.clone())),
                    1 => Ok(out.into_iter().next().expect("one batch")),
                    _ => Ok(arrow::compute::concat_batches(&out[0].schema(), &out)?),
                }
            }
            RowOp::Join(j) => {
                let probe = match &j.kv {
                    None => j
                        .probe
                        .clone()
                        .ok_or_else(|| Error::Internal { message: "streaming join not prepared".into() })?,
                    Some(kv) => j.kv_probe(kv)?,
                };
                let out = probe.run(&b, None)?;
                match out.len() {
                    0 => Ok(RecordBatch::new_empty(j.schema.clone())),
                    1 => Ok(out.into_iter().next().expect("one batch")),
                    _ => {
                        let schema = out[0].schema();
                        Ok(arrow::compute::concat_batches(&schema, &out)?)
                    }
                }
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            RowOp::Filter { pred, .. } => format!("Filter {pred}"),
            RowOp::Project { exprs, schema } => {
                let cols: Vec<String> = exprs
                    .iter()
                    .zip(schema.fields())
                    .map(
                        |(e, f)| {
                            if e.to_string() == *f.name() { f.name().clone() } else { format!("{e} AS {}", f.name()) }
                        },
                    )
                    .collect();
                format!("Project {}", cols.join(", "))
            }
            RowOp::Window { spec, drop_late, .. } => {
                format!("Window {spec}{}", if *drop_late { " (drops rows older than the watermark)" } else { "" })
            }
            RowOp::KvChangelog(_) => "KvChangelog (retracts replaced versions, adds _tp_delta)".to_string(),
            RowOp::Join(j) => {
                let keys: Vec<String> =
                    j.left_keys.iter().zip(&j.right_keys).map(|(l, r)| format!("{l} = {r}")).collect();
                match &j.right {
                    JoinRight::Stream { table, range_ms, .. } => format!(
                        "StreamStreamJoin {:?} on [{}] within {range_ms} ms of {} (both sides buffered)",
                        j.kind,
                        keys.join(", "),
                        table.name()
                    ),
                    JoinRight::Snapshot(_) => {
                        format!("StreamTableJoin {:?} on [{}] (right side read at start)", j.kind, keys.join(", "))
                    }
                    JoinRight::Kv { table, .. } => format!(
                        "StreamKvJoin {:?} on [{}] (latest row per key of {}, kept current)",
                        j.kind,
                        keys.join(", "),
                        table.name()
                    ),
                }
            }
        }
    }
}

/// Event-time progress: the greatest event time seen minus the delay, never below `floor`
/// (windows closed by a timeout raise it). Ticks of the window's time column.
///
/// On a multi-shard stream the shards are read one after the other, so the greatest time seen
/// can run ahead of a shard that still has rows to deliver: while shards have rows waiting,
/// the watermark follows the slowest of them (the smallest of their greatest times), and a
/// waiting shard that delivered nothing yet holds it where it is. Caught-up shards do not hold
/// it (their next rows are new arrivals).
#[derive(Debug, Clone)]
pub(crate) struct Watermark {
    max: Option<i64>,
    shard_max: Vec<Option<i64>>,
    /// Shard of the rows being admitted.
    shard: usize,
    /// Rows of `shard` are being admitted: it counts as waiting (its rows were waiting).
    admitting: bool,
    /// Shards with rows not delivered yet.
    waiting: Vec<bool>,
    delay: i64,
    floor: i64,
    /// Rows dropped because they were older than the watermark.
    pub late_rows: u64,
}

impl Watermark {
    pub(crate) fn new(delay: i64) -> Self {
        Watermark {
            max: None,
            shard_max: Vec::new(),
            shard: 0,
            admitting: false,
            waiting: Vec::new(),
            delay,
            floor: i64::MIN,
            late_rows: 0,
        }
    }

    /// Where the next rows come from, and which shards still have rows to deliver.
    pub(crate) fn set_source(&mut self, shard: Option<usize>, waiting: Vec<bool>) {
        self.shard = shard.unwrap_or(0);
        self.admitting = shard.is_some();
        if self.shard_max.len() < waiting.len().max(self.shard + 1) {
            self.shard_max.resize(waiting.len().max(self.shard + 1), None);
        }
        self.waiting = waiting;
    }

    /// The rows of the current batch are in: its shard counts as waiting only if it still
    /// has rows to deliver.
    pub(crate) fn admitted(&mut self) {
        self.admitting = false;
    }

    /// The greatest event time that bounds the watermark (see the type's docs).
    fn effective_max(&self) -> Option<i64> {
        let waits = |i: usize| self.waiting.get(i).copied().unwrap_or(false) || (self.admitting && i == self.shard);
        if self.waiting.len() < 2 || !(0..self.waiting.len()).any(waits) {
            return self.max;
        }
        let mut m: Option<i64> = None;
        for i in 0..self.waiting.len() {
            if waits(i) {
                let s = self.shard_max.get(i).copied().flatten()?;
                m = Some(m.map_or(s, |x| x.min(s)));
            }
        }
        m
    }

    /// The watermark; `None` before the first event.
    pub(crate) fn value(&self) -> Option<i64> {
        match self.effective_max() {
            None if self.floor == i64::MIN => None,
            None => Some(self.floor),
            Some(m) => Some(m.saturating_sub(self.delay).max(self.floor)),
        }
    }

    /// Raises the floor (windows up to `t` were closed).
    pub(crate) fn raise_floor(&mut self, t: i64) {
        self.floor = self.floor.max(t);
    }

    /// Advances over `t` row by row: a row is late when its time is below the watermark as it
    /// stood before that row. Returns the mask of rows to keep, or `None` when all are kept.
    /// NULL times are kept (they belong to no window and are dropped later).
    pub(crate) fn admit(&mut self, t: &Int64Array) -> Option<BooleanArray> {
        let mut keep: Option<Vec<bool>> = None;
        for i in 0..t.len() {
            if t.is_null(i) {
                continue;
            }
            let v = t.value(i);
            if let Some(w) = self.value()
                && v < w
            {
                self.late_rows += 1;
                keep.get_or_insert_with(|| vec![true; t.len()])[i] = false;
                continue;
            }
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
            if let Some(s) = self.shard_max.get_mut(self.shard) {
                *s = Some(s.map_or(v, |m| m.max(v)));
            }
        }
        keep.map(BooleanArray::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_drops_rows_older_than_max_minus_delay() {
        let mut w = Watermark::new(2);
        assert_eq!(w.value(), None);
        let keep = w.admit(&Int64Array::from(vec![Some(10), Some(9), Some(7), None, Some(12), Some(9)]));
        // 9 >= 10-2 kept, 7 < 8 late, 9 < 12-2 late.
        assert_eq!(keep.expect("test"), BooleanArray::from(vec![true, true, false, true, true, false]));
        assert_eq!(w.late_rows, 2);
        assert_eq!(w.value(), Some(10));
        w.raise_floor(20);
        assert_eq!(w.value(), Some(20));
        assert!(w.admit(&Int64Array::from(vec![25, 23])).is_none());
    }

    #[test]
    fn shards_with_rows_waiting_hold_the_watermark() {
        let mut w = Watermark::new(0);
        // Shard 0 delivers up to 100 while shard 1 still has rows waiting.
        w.set_source(Some(0), vec![true, true]);
        assert!(w.admit(&Int64Array::from(vec![50, 100])).is_none());
        assert_eq!(w.value(), None, "shard 1 delivered nothing yet");
        // Shard 1's batch is the last it had: while admitted, it still counts as waiting.
        w.set_source(Some(1), vec![false, false]);
        assert!(w.admit(&Int64Array::from(vec![10, 20])).is_none(), "not late: shard 1 was behind");
        assert_eq!(w.value(), Some(20));
        // Both caught up: the greatest time seen.
        w.admitted();
        assert_eq!(w.value(), Some(100));
    }
}
