//! Streaming aggregation: one state per open window (tumble/hop) or one global state, and the
//! emission bookkeeping (which groups changed since they were last emitted, what was emitted
//! for changelog retractions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};

use crate::context::ExecContext;
use crate::error::Result;
use crate::exec::hash_agg::{AggSpec, AggState, conform, relax};
use crate::exec::window::ticks;
use crate::expr::BExpr;

/// Where each group column of the aggregate's output comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySlot {
    /// `window_start` of the window.
    Start,
    /// `window_end` of the window.
    End,
    /// The k-th key of the state.
    Key(usize),
}

/// The window identity of a windowed aggregate.
#[derive(Debug, Clone)]
pub(crate) struct WindowKey {
    /// A `window_start` or `window_end` column of the aggregate's input.
    pub expr: BExpr,
    /// `expr` is `window_end`.
    pub is_end: bool,
    /// Window length in ticks.
    pub size: i64,
    /// Type of the window columns.
    pub ty: DataType,
    /// Session windows: (idle gap, longest session) in ticks.
    pub session: Option<(i64, i64)>,
}

/// The planned aggregation.
#[derive(Debug, Clone)]
pub(crate) struct AggPlan {
    /// Keys (without the window columns) and calls.
    pub spec: AggSpec,
    /// One entry per group column of the output.
    pub layout: Vec<KeySlot>,
    /// Set for windowed aggregates.
    pub window: Option<WindowKey>,
    /// Output: groups, then aggregates.
    pub schema: SchemaRef,
    /// A changing input: the `_tp_delta` column (+1 add, -1 take back) of the input.
    pub delta: Option<BExpr>,
}

/// What an emission contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Every group of the state.
    Snapshot,
    /// Only groups changed since their last emission.
    Delta,
}

/// Rows to emit: retractions of earlier rows (changelog) and new rows.
#[derive(Debug, Default)]
pub(crate) struct Emission {
    pub retract: Option<RecordBatch>,
    pub insert: Option<RecordBatch>,
}

/// Name of the net-rows column appended to a saved aggregation state.
const NET_COLUMN: &str = "__sluice_net_rows";

/// Raw rows of one emission: retractions (changelog) and inserts, key columns then calls.
type RawEmission = (Option<Vec<ArrayRef>>, Vec<ArrayRef>);

/// An aggregation state with emission tracking.
struct Tracked {
    state: AggState,
    /// Rows in each group net of retractions (a group at 0 is gone).
    net: Vec<i64>,
    dirty: Vec<bool>,
    any_dirty: bool,
    /// Changelog: the full output at the last emission and which groups it held.
    prev: Option<Vec<ArrayRef>>,
    emitted: Vec<bool>,
}

impl Tracked {
    fn new(spec: &AggSpec, ctx: &ExecContext) -> Result<Self> {
        Ok(Tracked {
            state: AggState::new(spec, 1, ctx.reservation("streaming aggregation state"))?,
            net: Vec::new(),
            dirty: Vec::new(),
            any_dirty: false,
            prev: None,
            emitted: Vec::new(),
        })
    }

    fn update(&mut self, spec: &AggSpec, b: &RecordBatch) -> Result<()> {
        self.add(spec, b, false)
    }

    fn retract(&mut self, spec: &AggSpec, b: &RecordBatch) -> Result<()> {
        self.add(spec, b, true)
    }

    fn add(&mut self, spec: &AggSpec, b: &RecordBatch, retract: bool) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        if retract {
            self.state.retract(spec, b)?;
        } else {
            self.state.update(spec, b)?;
        }
        let n = self.state.len();
        self.dirty.resize(n, false);
        self.net.resize(n, 0);
        for g in &self.state.gids {
            self.dirty[*g as usize] = true;
            self.net[*g as usize] += if retract { -1 } else { 1 };
        }
        self.any_dirty = true;
        Ok(())
    }

    /// The raw columns (keys, then calls) of the rows to emit; `None` if nothing to emit.
    fn emit(
        &mut self,
        spec: &AggSpec,
        shape: Shape,
        changelog: bool,
        repeat: bool,
        last: bool,
    ) -> Result<Option<RawEmission>> {
        let repeat_now = repeat && shape == Shape::Snapshot && self.state.len() > 0;
        if !self.any_dirty && !repeat_now {
            return Ok(None);
        }
        let delta = shape == Shape::Delta;
        let cols = self.state.finish(spec, !last || changelog || delta)?;
        let n = self.state.len();
        self.net.resize(n, 0);
        self.emitted.resize(n, false);
        let present = |g: u32| self.net[g as usize] > 0;
        let mut selected: Vec<u32> = match shape {
            Shape::Snapshot => (0..n as u32).collect(),
            Shape::Delta => (0..n as u32).filter(|g| self.dirty[*g as usize]).collect(),
        };
        let pick = |cols: &[ArrayRef], idx: &[u32]| -> Result<Vec<ArrayRef>> {
            let idx = UInt32Array::from(idx.to_vec());
            Ok(cols.iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<_, _>>()?)
        };
        // Delta emissions leave out groups whose results did not change since last emitted.
        if delta
            && let Some(prev) = &self.prev
            && !selected.is_empty()
        {
            let fields = cols.iter().map(|c| SortField::new(c.data_type().clone())).collect();
            let conv = RowConverter::new(fields)?;
            let now_rows = conv.convert_columns(&pick(&cols, &selected)?)?;
            let old_idx: Vec<u32> = selected.iter().map(|g| (*g).min(prev[0].len().saturating_sub(1) as u32)).collect();
            let old_rows = conv.convert_columns(&pick(prev, &old_idx)?)?;
            let mut keep = Vec::with_capacity(selected.len());
            for (i, g) in selected.iter().enumerate() {
                let same = self.emitted[*g as usize]
                    && (*g as usize) < prev[0].len()
                    && present(*g)
                    && now_rows.row(i) == old_rows.row(i);
                if !same {
                    keep.push(*g);
                }
            }
            selected = keep;
        }
        let inserts: Vec<u32> = selected.iter().copied().filter(|g| present(*g)).collect();
        let insert = if inserts.len() == n { cols.clone() } else { pick(&cols, &inserts)? };
        let mut retract = None;
        if changelog {
            let back: Vec<u32> = selected.iter().copied().filter(|g| self.emitted[*g as usize]).collect();
            if let Some(prev) = &self.prev
                && !back.is_empty()
            {
                retract = Some(pick(prev, &back)?);
            }
        }
        for g in &selected {
            self.emitted[*g as usize] = present(*g);
        }
        if changelog || delta {
            // What was emitted last per group: unchanged groups keep their old rows.
            self.prev = Some(match self.prev.take() {
                Some(prev) if prev[0].len() <= n && !selected.is_empty() && selected.len() < n => {
                    merge_rows(&prev, &cols, &selected, n)?
                }
                Some(prev) if selected.is_empty() => prev,
                _ => cols,
            });
        }
        if inserts.is_empty() && retract.is_none() {
            self.dirty.iter_mut().for_each(|d| *d = false);
            self.any_dirty = false;
            return Ok(None);
        }
        self.dirty.iter_mut().for_each(|d| *d = false);
        self.any_dirty = false;
        Ok(Some((retract, insert)))
    }
}

/// `prev` (rows of groups `0..prev_len`) with the groups in `changed` taken from `now`
/// (`n` groups): the rows last emitted per group.
fn merge_rows(prev: &[ArrayRef], now: &[ArrayRef], changed: &[u32], n: usize) -> Result<Vec<ArrayRef>> {
    let mut from_now = vec![false; n];
    for g in changed {
        from_now[*g as usize] = true;
    }
    let old_len = prev.first().map_or(0, |c| c.len());
    let idx: Vec<(usize, usize)> = (0..n).map(|g| if from_now[g] || g >= old_len { (1, g) } else { (0, g) }).collect();
    prev.iter().zip(now).map(|(p, c)| Ok(arrow::compute::interleave(&[p.as_ref(), c.as_ref()], &idx)?)).collect()
}

/// One open window.
struct Win {
    start: i64,
    end: i64,
    state: Tracked,
    /// The source position before the batch that opened it: replaying from here rebuilds it.
    opened_at: Vec<u64>,
}

/// One open session of one group key.
struct Session {
    key: Box<[u8]>,
    start: i64,
    last: i64,
    state: Tracked,
    /// The source position before the batch that opened it.
    opened_at: Vec<u64>,
}

/// Open sessions (session windows).
#[derive(Default)]
struct Sessions {
    open: BTreeMap<u64, Session>,
    by_key: HashMap<Box<[u8]>, Vec<u64>>,
    /// Per group key: the end of the last session emitted (rows before it belonged to emitted
    /// sessions; after a resume they are replayed and must not form a session again).
    closed: HashMap<Box<[u8]>, i64>,
    next_id: u64,
    conv: Option<RowConverter>,
}

/// The aggregation stage of a running streaming query.
pub(crate) struct AggRun {
    plan: AggPlan,
    ctx: ExecContext,
    /// Open windows by end.
    windows: BTreeMap<i64, Win>,
    sessions: Sessions,
    global: Option<Tracked>,
    /// Windows ending at or before this were closed.
    pub closed_upto: i64,
    /// Rows for windows already closed (after a timeout), dropped.
    pub late_rows: u64,
}

impl AggRun {
    pub(crate) fn new(plan: AggPlan, ctx: ExecContext) -> Result<Self> {
        let global = if plan.window.is_none() { Some(Tracked::new(&plan.spec, &ctx)?) } else { None };
        Ok(AggRun {
            plan,
            ctx,
            windows: BTreeMap::new(),
            sessions: Sessions::default(),
            global,
            closed_upto: i64::MIN,
            late_rows: 0,
        })
    }

    /// A global aggregation's state for a checkpoint (`None`: windowed, or not saveable).
    pub(crate) fn save(&self) -> Option<RecordBatch> {
        let g = self.global.as_ref()?;
        let b = g.state.save()?;
        // The rows per group net of retractions, as a last column.
        let mut net = g.net.clone();
        net.resize(g.state.len(), 0);
        let mut fields: Vec<arrow::datatypes::Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(arrow::datatypes::Field::new(NET_COLUMN, DataType::Int64, false));
        let schema = arrow::datatypes::Schema::new(fields).with_metadata(b.schema().metadata().clone());
        let mut cols = b.columns().to_vec();
        cols.push(Arc::new(arrow::array::Int64Array::from(net)));
        RecordBatch::try_new_with_options(
            Arc::new(schema),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )
        .ok()
    }

    /// Restores a global aggregation's saved state; its groups count as present and emitted
    /// nothing yet.
    pub(crate) fn load(&mut self, b: &RecordBatch) -> Result<()> {
        let g = self.global.as_mut().ok_or_else(|| crate::error::Error::Internal {
            message: "a saved state for an aggregation without one".into(),
        })?;
        let last = b.num_columns().saturating_sub(1);
        let has_net = b.num_columns() > 0 && b.schema().field(last).name() == NET_COLUMN;
        let state = if has_net { b.project(&(0..last).collect::<Vec<_>>())? } else { b.clone() };
        g.state.load(&state)?;
        let n = g.state.len();
        g.net = match has_net {
            true => b
                .column(last)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.values().to_vec())
                .unwrap_or_else(|| vec![1; n]),
            false => vec![1; n],
        };
        g.dirty = vec![false; n];
        // Restored groups were emitted before the restart (their values are not known here).
        g.emitted = vec![false; n];
        Ok(())
    }

    /// Open windows (sessions included).
    pub(crate) fn open_windows(&self) -> usize {
        self.windows.len() + self.sessions.open.len()
    }

    /// The latest end of an open window.
    pub(crate) fn last_end(&self) -> Option<i64> {
        let idle = self.plan.window.as_ref().and_then(|w| w.session).map_or(0, |(i, _)| i);
        let s = self.sessions.open.values().map(|s| s.last + idle).max();
        self.windows.keys().next_back().copied().max(s)
    }

    /// Where a replay must start to rebuild every open window (element-wise minimum of the
    /// positions that opened them); `None` without open windows.
    pub(crate) fn replay_from(&self) -> Option<Vec<u64>> {
        let mut out: Option<Vec<u64>> = None;
        let opened =
            self.windows.values().map(|w| &w.opened_at).chain(self.sessions.open.values().map(|s| &s.opened_at));
        for at in opened {
            match &mut out {
                None => out = Some(at.clone()),
                Some(o) => o.iter_mut().zip(at).for_each(|(a, b)| *a = (*a).min(*b)),
            }
        }
        out
    }

    /// Session windows: the end of the last session emitted per group key, as a batch.
    pub(crate) fn save_sessions_closed(&self) -> Option<RecordBatch> {
        let keys = arrow::array::BinaryArray::from_iter_values(self.sessions.closed.keys().map(|k| k.as_ref()));
        let ends = arrow::array::Int64Array::from_iter_values(self.sessions.closed.values().copied());
        let schema = arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("key", DataType::Binary, false),
            arrow::datatypes::Field::new("end", DataType::Int64, false),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(keys), Arc::new(ends)]).ok()
    }

    /// Restores [`AggRun::save_sessions_closed`].
    pub(crate) fn load_sessions_closed(&mut self, b: &RecordBatch) -> Result<()> {
        let bad = || crate::error::Error::Internal { message: "saved session ends".into() };
        let k = b.column(0).as_any().downcast_ref::<arrow::array::BinaryArray>().ok_or_else(bad)?;
        let e = b.column(1).as_any().downcast_ref::<arrow::array::Int64Array>().ok_or_else(bad)?;
        for i in 0..b.num_rows() {
            self.sessions.closed.insert(Box::from(k.value(i)), e.value(i));
        }
        Ok(())
    }

    /// Adds a batch of the aggregate's input; `before` is the source position before it.
    pub(crate) fn update(&mut self, b: &RecordBatch, before: &[u64]) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        let Some(w) = self.plan.window.clone() else {
            let g = self.global.as_mut().expect("global state");
            let Some(delta) = &self.plan.delta else { return g.update(&self.plan.spec, b) };
            let d = arrow::compute::cast(&delta.eval_array(b)?, &DataType::Int8)?;
            let d = d.as_any().downcast_ref::<arrow::array::Int8Array>().expect("int8");
            // In arrival order: runs of additions and of retractions.
            let mut start = 0;
            while start < b.num_rows() {
                let neg = d.is_valid(start) && d.value(start) < 0;
                let mut end = start + 1;
                while end < b.num_rows() && (d.is_valid(end) && d.value(end) < 0) == neg {
                    end += 1;
                }
                let run = b.slice(start, end - start);
                if neg {
                    g.retract(&self.plan.spec, &run)?;
                } else {
                    g.update(&self.plan.spec, &run)?;
                }
                start = end;
            }
            return Ok(());
        };
        if let Some((idle, max)) = w.session {
            return self.update_sessions(b, idle, max, before);
        }
        let key = ticks(&w.expr.eval_array(b)?)?;
        let end_of = |v: i64| if w.is_end { v } else { v + w.size };
        // Rows of one window usually sit together (event time roughly follows arrival):
        // runs of equal windows become zero-copy slices. Otherwise sort the rows by window
        // once and slice that.
        let (b, key) = if key.null_count() == 0 && non_decreasing(key.values()) {
            (b.clone(), key)
        } else {
            let mut idx: Vec<u32> = (0..key.len() as u32).filter(|i| key.is_valid(*i as usize)).collect();
            idx.sort_by_key(|i| key.value(*i as usize));
            let idx = UInt32Array::from(idx);
            let sorted = arrow::compute::take_record_batch(b, &idx)?;
            let k = ticks(&w.expr.eval_array(&sorted)?)?;
            (sorted, k)
        };
        let vals = key.values();
        let mut start = 0;
        while start < vals.len() {
            let v = vals[start];
            let mut end = start + 1;
            while end < vals.len() && vals[end] == v {
                end += 1;
            }
            let part = if start == 0 && end == vals.len() { b.clone() } else { b.slice(start, end - start) };
            self.update_window(end_of(v), w.size, &part, before)?;
            start = end;
        }
        Ok(())
    }

    /// Puts each row into the open session of its group key that it extends (within `idle`
    /// of its rows, not past `max` long), or opens a new one.
    fn update_sessions(&mut self, b: &RecordBatch, idle: i64, max: i64, before: &[u64]) -> Result<()> {
        let w = self.plan.window.as_ref().expect("session window");
        // Until a session closes, a row's window columns hold its own time.
        let t = ticks(&w.expr.eval_array(b)?)?;
        let keys: Vec<ArrayRef> = self.plan.spec.groups.iter().map(|g| g.eval_array(b)).collect::<Result<_>>()?;
        let ss = &mut self.sessions;
        if ss.conv.is_none() {
            ss.conv = Some(RowConverter::new(keys.iter().map(|k| SortField::new(k.data_type().clone())).collect())?);
        }
        let rows =
            if keys.is_empty() { None } else { Some(ss.conv.as_ref().expect("converter").convert_columns(&keys)?) };
        let mut per_session: Vec<(u64, Vec<u32>)> = Vec::new();
        for r in 0..b.num_rows() {
            if t.is_null(r) {
                continue;
            }
            let v = t.value(r);
            let key: Box<[u8]> = rows.as_ref().map_or_else(|| Box::from(&[][..]), |rw| rw.row(r).as_ref().into());
            let key: &[u8] = &key;
            // A row of a session already emitted (replayed after a resume).
            if ss.closed.get(key).is_some_and(|end| v < *end) {
                self.late_rows += 1;
                continue;
            }
            let ids = ss.by_key.entry(key.into()).or_default();
            let found = ids.iter().copied().find(|id| {
                let s = &ss.open[id];
                v > s.start - idle && v < s.last + idle && s.last.max(v) - s.start.min(v) < max
            });
            let id = match found {
                Some(id) => {
                    let s = ss.open.get_mut(&id).expect("open session");
                    s.start = s.start.min(v);
                    s.last = s.last.max(v);
                    id
                }
                None => {
                    let id = ss.next_id;
                    ss.next_id += 1;
                    ids.push(id);
                    let state = Tracked::new(&self.plan.spec, &self.ctx)?;
                    ss.open
                        .insert(id, Session { key: key.into(), start: v, last: v, state, opened_at: before.to_vec() });
                    id
                }
            };
            match per_session.iter_mut().find(|(i, _)| *i == id) {
                Some((_, v)) => v.push(r as u32),
                None => per_session.push((id, vec![r as u32])),
            }
        }
        for (id, rows) in per_session {
            let part = if rows.len() == b.num_rows() {
                b.clone()
            } else {
                arrow::compute::take_record_batch(b, &UInt32Array::from(rows))?
            };
            let s = ss.open.get_mut(&id).expect("open session");
            s.state.update(&self.plan.spec, &part)?;
        }
        Ok(())
    }

    /// Closes the sessions that idled out (`last + idle <= upto`) or reached their longest
    /// length, in order of their end; `window_start` is the first row's time, `window_end`
    /// the last row's time plus the idle gap.
    fn close_sessions(&mut self, upto: i64, idle: i64, max: i64) -> Result<Vec<Emission>> {
        let done: Vec<u64> = self
            .sessions
            .open
            .iter()
            .filter(|(_, s)| s.last.saturating_add(idle) <= upto || s.start.saturating_add(max) <= upto)
            .map(|(id, _)| *id)
            .collect();
        let mut closed: Vec<Session> = Vec::with_capacity(done.len());
        for id in done {
            let s = self.sessions.open.remove(&id).expect("open session");
            let end = (s.last + idle).min(s.start.saturating_add(max));
            let c = self.sessions.closed.entry(s.key.clone()).or_insert(end);
            *c = (*c).max(end);
            if let Some(ids) = self.sessions.by_key.get_mut(&s.key) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    self.sessions.by_key.remove(&s.key);
                }
            }
            closed.push(s);
        }
        closed.sort_by_key(|s| (s.last + idle, s.start));
        let mut out = Vec::new();
        for mut s in closed {
            if let Some((r, i)) = s.state.emit(&self.plan.spec, Shape::Snapshot, false, false, true)? {
                let end = (s.last + idle).min(s.start.saturating_add(max));
                out.push(self.assemble(r, i, s.start, end)?);
            }
        }
        Ok(out)
    }

    fn update_window(&mut self, end: i64, size: i64, b: &RecordBatch, before: &[u64]) -> Result<()> {
        if end <= self.closed_upto {
            self.late_rows += b.num_rows() as u64;
            return Ok(());
        }
        let win = match self.windows.entry(end) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let state = Tracked::new(&self.plan.spec, &self.ctx)?;
                v.insert(Win { start: end - size, end, state, opened_at: before.to_vec() })
            }
        };
        win.state.update(&self.plan.spec, b)
    }

    /// Emits from every open window (or the global state) without closing anything.
    pub(crate) fn emit_open(&mut self, shape: Shape, changelog: bool, repeat: bool) -> Result<Vec<Emission>> {
        let mut out = Vec::new();
        if let Some(g) = self.global.as_mut() {
            if let Some((r, i)) = g.emit(&self.plan.spec, shape, changelog, repeat, false)? {
                out.push(self.assemble(r, i, 0, 0)?);
            }
            return Ok(out);
        }
        let spec = self.plan.spec.clone();
        let mut raw = Vec::new();
        for w in self.windows.values_mut() {
            if let Some((r, i)) = w.state.emit(&spec, shape, changelog, repeat, false)? {
                raw.push((r, i, w.start, w.end));
            }
        }
        for (r, i, s, e) in raw {
            out.push(self.assemble(r, i, s, e)?);
        }
        Ok(out)
    }

    /// Closes every window ending at or before `upto`, in window order, emitting what the
    /// policy still owes for each.
    pub(crate) fn close(&mut self, upto: i64, shape: Shape, changelog: bool) -> Result<Vec<Emission>> {
        if let Some((idle, max)) = self.plan.window.as_ref().and_then(|w| w.session) {
            return self.close_sessions(upto, idle, max);
        }
        let mut out = Vec::new();
        while let Some((&end, _)) = self.windows.first_key_value() {
            if end > upto {
                break;
            }
            let mut w = self.windows.remove(&end).expect("window present");
            self.closed_upto = self.closed_upto.max(end);
            if let Some((r, i)) = w.state.emit(&self.plan.spec, shape, changelog, false, true)? {
                out.push(self.assemble(r, i, w.start, w.end)?);
            }
        }
        Ok(out)
    }

    /// Output batches (the aggregate's schema) from raw key + call columns.
    fn assemble(
        &self,
        retract: Option<Vec<ArrayRef>>,
        insert: Vec<ArrayRef>,
        start: i64,
        end: i64,
    ) -> Result<Emission> {
        Ok(Emission {
            retract: retract.map(|r| self.batch(r, start, end)).transpose()?,
            insert: Some(self.batch(insert, start, end)?),
        })
    }

    fn batch(&self, raw: Vec<ArrayRef>, start: i64, end: i64) -> Result<RecordBatch> {
        let n = raw.first().map_or(0, |c| c.len());
        let nkeys = self.plan.spec.groups.len();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.plan.schema.fields().len());
        for slot in &self.plan.layout {
            cols.push(match slot {
                KeySlot::Key(k) => raw[*k].clone(),
                KeySlot::Start | KeySlot::End => {
                    let v = if *slot == KeySlot::Start { start } else { end };
                    let ty = self.plan.window.as_ref().map(|w| w.ty.clone()).unwrap_or(DataType::Int64);
                    let a = arrow::array::Int64Array::from(vec![v; n]);
                    arrow::compute::cast(&a, &ty)?
                }
            });
        }
        cols.extend(raw[nkeys..].iter().cloned());
        let cols = conform(cols, &self.plan.schema)?;
        let schema = relax(&self.plan.schema, &cols);
        Ok(RecordBatch::try_new_with_options(schema, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?)
    }

    /// Bytes held by the states.
    pub(crate) fn size(&self) -> usize {
        self.global.as_ref().map_or(0, |g| g.state.size())
            + self.windows.values().map(|w| w.state.state.size()).sum::<usize>()
            + self.sessions.open.values().map(|s| s.state.state.size()).sum::<usize>()
    }
}

/// Whether equal values form runs in increasing order (each value in one run).
fn non_decreasing(v: &[i64]) -> bool {
    v.windows(2).all(|w| w[0] <= w[1])
}

/// A schema with `_tp_delta` (int8) appended.
pub(crate) fn with_delta(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<arrow::datatypes::Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(arrow::datatypes::Field::new("_tp_delta", DataType::Int8, false));
    Arc::new(arrow::datatypes::Schema::new(fields))
}
