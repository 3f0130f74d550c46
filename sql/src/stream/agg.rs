//! Streaming aggregation: one state per open window (tumble/hop) or one global state, and the
//! emission bookkeeping (which groups changed since they were last emitted, what was emitted
//! for changelog retractions).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

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

/// Raw rows of one emission: retractions (changelog) and inserts, key columns then calls.
type RawEmission = (Option<Vec<ArrayRef>>, Vec<ArrayRef>);

/// An aggregation state with emission tracking.
struct Tracked {
    state: AggState,
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
            dirty: Vec::new(),
            any_dirty: false,
            prev: None,
            emitted: Vec::new(),
        })
    }

    fn update(&mut self, spec: &AggSpec, b: &RecordBatch) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        self.state.update(spec, b)?;
        self.dirty.resize(self.state.len(), false);
        for g in &self.state.gids {
            self.dirty[*g as usize] = true;
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
        let cols = self.state.finish(spec, !last || changelog)?;
        let n = self.state.len();
        let selected: Option<Vec<u32>> = match shape {
            Shape::Snapshot => None,
            Shape::Delta => Some((0..n as u32).filter(|g| self.dirty[*g as usize]).collect()),
        };
        let pick = |cols: &[ArrayRef], idx: &[u32]| -> Result<Vec<ArrayRef>> {
            let idx = UInt32Array::from(idx.to_vec());
            Ok(cols.iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<_, _>>()?)
        };
        let insert = match &selected {
            None => cols.clone(),
            Some(idx) => pick(&cols, idx)?,
        };
        let mut retract = None;
        if changelog {
            let all: Vec<u32> = (0..n as u32).collect();
            let idx = selected.as_deref().unwrap_or(&all);
            let back: Vec<u32> = idx.iter().copied().filter(|g| self.emitted.get(*g as usize) == Some(&true)).collect();
            if let Some(prev) = &self.prev
                && !back.is_empty()
            {
                retract = Some(pick(prev, &back)?);
            }
            self.emitted.resize(n, false);
            for g in idx {
                self.emitted[*g as usize] = true;
            }
            self.prev = Some(cols);
        }
        self.dirty.iter_mut().for_each(|d| *d = false);
        self.any_dirty = false;
        Ok(Some((retract, insert)))
    }
}

/// One open window.
struct Win {
    start: i64,
    end: i64,
    state: Tracked,
    /// The source position before the batch that opened it: replaying from here rebuilds it.
    opened_at: Vec<u64>,
}

/// The aggregation stage of a running streaming query.
pub(crate) struct AggRun {
    plan: AggPlan,
    ctx: ExecContext,
    /// Open windows by end.
    windows: BTreeMap<i64, Win>,
    global: Option<Tracked>,
    /// Windows ending at or before this were closed.
    pub closed_upto: i64,
    /// Rows for windows already closed (after a timeout), dropped.
    pub late_rows: u64,
}

impl AggRun {
    pub(crate) fn new(plan: AggPlan, ctx: ExecContext) -> Result<Self> {
        let global = if plan.window.is_none() { Some(Tracked::new(&plan.spec, &ctx)?) } else { None };
        Ok(AggRun { plan, ctx, windows: BTreeMap::new(), global, closed_upto: i64::MIN, late_rows: 0 })
    }

    /// Open windows.
    pub(crate) fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// The latest end of an open window.
    pub(crate) fn last_end(&self) -> Option<i64> {
        self.windows.keys().next_back().copied()
    }

    /// Where a replay must start to rebuild every open window (element-wise minimum of the
    /// positions that opened them); `None` without open windows.
    pub(crate) fn replay_from(&self) -> Option<Vec<u64>> {
        let mut out: Option<Vec<u64>> = None;
        for w in self.windows.values() {
            match &mut out {
                None => out = Some(w.opened_at.clone()),
                Some(o) => o.iter_mut().zip(&w.opened_at).for_each(|(a, b)| *a = (*a).min(*b)),
            }
        }
        out
    }

    /// Adds a batch of the aggregate's input; `before` is the source position before it.
    pub(crate) fn update(&mut self, b: &RecordBatch, before: &[u64]) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        let Some(w) = self.plan.window.clone() else {
            let g = self.global.as_mut().expect("global state");
            return g.update(&self.plan.spec, b);
        };
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
