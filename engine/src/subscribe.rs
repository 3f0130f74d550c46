//! Unbounded reads of a stream: a [`Subscription`] starts at a position (latest, earliest, a
//! sequence number per shard, or a time), backfills from parts, the log and the memtable, and
//! then follows new appends, per shard in sequence order, with no gap and no duplicate.
//!
//! Each shard has a cursor, the next sequence number to deliver. A fetch looks at the shard's
//! current state: a cursor below the flushed mark reads the part (or log range) covering it,
//! sorted by `_tp_sn`; at or above it reads visible memtable batches. A flush between two
//! fetches only moves rows from the memtable into a part, which the cursor then reads from the
//! part, filtered by `_tp_sn >= cursor`: the same rows either way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatchOptions;
use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use sluice_columnstore::{ColumnRange, Predicate, Projection, ScanOptions};

use crate::database::Stream;
use crate::scan::{complete, output_schema, read_log, with_sn};
use crate::shard::Shard;
use crate::stream_def::{TP_SN, TP_TIME};
use crate::{Error, Result, StorageType};

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// New rows only (Proton's default for `SELECT ... FROM s`).
    Latest,
    /// Every row still stored.
    Earliest,
    /// From this sequence number in every shard (`_tp_sn >= n`).
    Seq(u64),
    /// From these sequence numbers, one per shard (a resumed position).
    Positions(Vec<u64>),
    /// Rows whose `_tp_time` is at or after this time (ms since the epoch, UTC) during the
    /// backfill, then every new row.
    Time(i64),
}

/// Rows delivered by a subscription: a batch from one shard.
#[derive(Debug, Clone)]
pub struct ShardBatch {
    /// Shard number.
    pub shard: u32,
    /// Rows, in the subscription's projection.
    pub batch: RecordBatch,
}

/// Stops a subscription from another thread: its waiting `next` returns `Ok(None)` at once.
#[derive(Debug, Clone)]
pub struct CancelHandle {
    flag: Arc<AtomicBool>,
    stream: Arc<Stream>,
}

impl CancelHandle {
    /// Cancels the subscription.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.stream.progress.notify();
    }
}

#[derive(Debug)]
struct Cursor {
    shard: Arc<Shard>,
    /// Next sequence number to deliver.
    pos: u64,
    /// Rows below this are backfill (time filter applies).
    backfill_end: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Subscription {
    stream: Arc<Stream>,
    cursors: Vec<Cursor>,
    projection: Vec<String>,
    schema: SchemaRef,
    time_from: Option<i64>,
    /// Fetched batches not delivered yet, with the cursor position they were fetched at.
    ready: VecDeque<(u64, ShardBatch)>,
    cancel: Arc<AtomicBool>,
    next_shard: usize,
}

/// Most rows a backfill fetch reads from the memtable at once.
const MAX_FETCH_BATCHES: usize = 64;

impl Subscription {
    pub(crate) fn new(stream: Arc<Stream>, start: StartAt, projection: Option<Vec<String>>) -> Result<Self> {
        let def = stream.def();
        let projection: Vec<String> =
            projection.unwrap_or_else(|| def.columns.iter().map(|c| c.field.name().clone()).collect());
        let schema = output_schema(&def, Some(&projection))?;
        let n = stream.shards.len();
        let starts: Vec<u64> = match &start {
            StartAt::Latest => stream.shards.iter().map(|s| s.visible()).collect(),
            StartAt::Earliest | StartAt::Time(_) => vec![0; n],
            StartAt::Seq(s) => vec![*s; n],
            StartAt::Positions(p) if p.len() == n => p.clone(),
            StartAt::Positions(p) => {
                return Err(Error::InvalidDefinition(format!(
                    "{} start positions given for a stream of {n} shards",
                    p.len()
                )));
            }
        };
        let cursors = stream
            .shards
            .iter()
            .zip(starts)
            .map(|(s, pos)| Cursor { shard: s.clone(), pos, backfill_end: s.visible() })
            .collect();
        let time_from = match start {
            StartAt::Time(t) => Some(t),
            _ => None,
        };
        Ok(Self {
            stream,
            cursors,
            projection,
            schema,
            time_from,
            ready: VecDeque::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            next_shard: 0,
        })
    }

    pub(crate) fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// The schema of delivered batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next sequence number per shard (a position to resume from with
    /// [`StartAt::Positions`]).
    pub fn positions(&self) -> Vec<u64> {
        self.cursors.iter().map(|c| c.pos).collect()
    }

    /// The next sequence number per shard after the rows *delivered* so far (fetched rows
    /// still queued inside the subscription do not count).
    pub fn delivered_positions(&self) -> Vec<u64> {
        let mut out = self.positions();
        for (pos, b) in &self.ready {
            let i = b.shard as usize;
            if let Some(p) = out.get_mut(i) {
                *p = (*p).min(*pos);
            }
        }
        out
    }

    /// Per shard: whether rows are waiting (fetched and not delivered, or appended and not
    /// fetched yet).
    pub fn waiting_shards(&self) -> Vec<bool> {
        let mut out: Vec<bool> = self.cursors.iter().map(|c| c.pos < c.shard.visible()).collect();
        for (_, b) in &self.ready {
            if let Some(w) = out.get_mut(b.shard as usize) {
                *w = true;
            }
        }
        out
    }

    /// True once no row can come any more (the stream was dropped or the database closed).
    pub fn is_finished(&self) -> bool {
        self.stream.is_gone()
    }

    /// A handle that cancels this subscription from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle { flag: self.cancel.clone(), stream: self.stream.clone() }
    }

    /// The next batch, waiting at most `timeout`; `Ok(None)` on timeout, cancel, or when the
    /// stream was dropped or the database closed.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ShardBatch>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, b)) = self.ready.pop_front() {
                return Ok(Some(b));
            }
            if self.cancel.load(Ordering::Acquire) || self.stream.is_gone() {
                return Ok(None);
            }
            let generation = self.stream.progress.generation();
            if self.fetch()? {
                continue;
            }
            if !self.stream.progress.wait(generation, deadline) {
                // Timed out; one last look.
                if self.fetch()? {
                    continue;
                }
                return Ok(None);
            }
        }
    }

    /// The next batch if one is ready now.
    pub fn try_next(&mut self) -> Result<Option<ShardBatch>> {
        self.next_timeout(Duration::ZERO)
    }

    /// Fetches from every shard (starting with a different one each time, for fairness);
    /// true if anything became ready.
    fn fetch(&mut self) -> Result<bool> {
        let n = self.cursors.len();
        let mut any = false;
        for k in 0..n {
            let i = (self.next_shard + k) % n;
            any |= self.fetch_shard(i)?;
        }
        self.next_shard = (self.next_shard + 1) % n.max(1);
        Ok(any)
    }

    fn fetch_shard(&mut self, i: usize) -> Result<bool> {
        let def = self.stream.def();
        let shard = self.cursors[i].shard.clone();
        let (state, visible) = shard.snapshot();
        let pos = self.cursors[i].pos;
        if pos >= visible {
            return Ok(false);
        }
        let mut need = self.projection.clone();
        // `_tp_sn` orders and bounds the rows; `_tp_time` only matters to a time seek.
        let extras: &[&str] = if self.time_from.is_some() { &[TP_SN, TP_TIME] } else { &[TP_SN] };
        for extra in extras {
            if !need.iter().any(|c| c == extra) {
                need.push(extra.to_string());
            }
        }
        let full = output_schema(&def, Some(&need))?;
        let (batches, next): (Vec<RecordBatch>, u64) = if pos < state.flushed {
            match shard.storage {
                StorageType::Hybrid => {
                    // The part holding `pos` (or the next one after a gap left by TTL), and
                    // any other part overlapping its range (merges may combine parts whose
                    // ranges interleave): the rows of `pos..=last` from all of them.
                    let mut parts: Vec<_> = state.parts.iter().filter(|p| p.info().seq.last >= pos).cloned().collect();
                    parts.sort_by_key(|p| p.info().seq.first);
                    match parts.first() {
                        None => (Vec::new(), state.flushed),
                        Some(first) => {
                            let last = first.info().seq.last;
                            let pred = Predicate::all().and(ColumnRange::new(TP_SN).ge(pos as i64).le(last as i64));
                            let mut out = Vec::new();
                            for p in parts.iter().filter(|p| p.info().seq.first <= last) {
                                let names: Vec<String> = need
                                    .iter()
                                    .filter(|n| p.info().columns.iter().any(|c| &c.name == *n))
                                    .cloned()
                                    .collect();
                                let opts =
                                    ScanOptions::default().projection(Projection::names(names)).predicate(pred.clone());
                                for b in p.scan(&opts).map_err(|e| shard.parts_error(e))? {
                                    let b = b.map_err(|e| shard.parts_error(e))?;
                                    let b = sn_range(&complete(&def, &full, &b)?, pos, last)?;
                                    if b.num_rows() > 0 {
                                        out.push(b);
                                    }
                                }
                            }
                            (in_sn_order(&full, out)?, (last + 1).min(state.flushed).max(pos + 1))
                        }
                    }
                }
                StorageType::Streaming => {
                    let first = shard.wal.as_ref().map_or(state.flushed, |w| w.first_seq().0);
                    let from = pos.max(first);
                    if from >= state.flushed {
                        (Vec::new(), state.flushed)
                    } else {
                        let mut out = Vec::new();
                        let mut end = from;
                        for b in read_log(&shard, &def, from, state.flushed)?.take(MAX_FETCH_BATCHES) {
                            let b = b?;
                            end = last_sn(&b).map_or(end, |s| s + 1);
                            out.push(complete(&def, &full, &b)?);
                        }
                        (out, end.max(from + 1).min(state.flushed))
                    }
                }
                StorageType::InMemory => (Vec::new(), state.flushed),
            }
        } else {
            let mut out = Vec::new();
            let mut end = pos;
            for mb in state.mem.batches().iter() {
                if mb.end_seq() <= pos {
                    continue;
                }
                if mb.end_seq() > visible || out.len() >= MAX_FETCH_BATCHES {
                    break;
                }
                let mut b = with_sn(&mb.batch, mb.first_seq)?;
                if mb.first_seq < pos {
                    let skip = (pos - mb.first_seq) as usize;
                    b = b.slice(skip, b.num_rows() - skip);
                }
                end = mb.end_seq();
                out.push(complete(&def, &full, &b)?);
            }
            if out.is_empty() {
                return Ok(false);
            }
            // Small appends arrive as one batch; big ones stay as they are.
            let out = if out.len() > 1 && out.iter().all(|b| b.num_rows() < MAX_CHUNK_ROWS / 16) {
                vec![concat_batches(&full, &out)?]
            } else {
                out
            };
            (out, end)
        };
        self.cursors[i].pos = next;
        for mut batch in batches {
            if let Some(t) = self.time_from
                && pos < self.cursors[i].backfill_end
            {
                batch = filter_backfill_by_time(&batch, self.cursors[i].backfill_end, t)?;
            }
            let mut off = 0;
            while off < batch.num_rows() {
                let len = MAX_CHUNK_ROWS.min(batch.num_rows() - off);
                let chunk = batch.slice(off, len);
                off += len;
                // The position before this chunk: its first `_tp_sn` (rows are in order).
                let at = first_sn(&chunk).map_or(pos, |s| s.max(pos));
                let cols = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| chunk.column_by_name(f.name()).cloned().expect("projection column present"))
                    .collect();
                let opts = RecordBatchOptions::new().with_row_count(Some(len));
                let b = RecordBatch::try_new_with_options(self.schema.clone(), cols, &opts)?;
                self.ready.push_back((at, ShardBatch { shard: shard.id, batch: b }));
            }
        }
        Ok(true)
    }
}

/// Most rows in one delivered batch (bigger reads are sliced).
const MAX_CHUNK_ROWS: usize = 65_536;

/// The rows of `b` with `pos <= _tp_sn <= last`.
fn sn_range(b: &RecordBatch, pos: u64, last: u64) -> Result<RecordBatch> {
    let Some(sn) = b.column_by_name(TP_SN).and_then(|c| c.as_any().downcast_ref::<Int64Array>()) else {
        return Ok(b.clone());
    };
    let (lo, hi) = (pos as i64, last as i64);
    let (min, max) = (arrow::compute::min(sn), arrow::compute::max(sn));
    if min.is_some_and(|m| m >= lo) && max.is_some_and(|m| m <= hi) {
        return Ok(b.clone());
    }
    let keep: BooleanArray = sn.iter().map(|v| Some(v.is_some_and(|v| v >= lo && v <= hi))).collect();
    Ok(filter_record_batch(b, &keep)?)
}

/// The batches in `_tp_sn` order: as they are when they already are (event-time sorted
/// parts of in-order data), else concatenated and sorted.
fn in_sn_order(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let mut prev: Option<i64> = None;
    let mut sorted = true;
    'check: for b in &batches {
        let Some(sn) = b.column_by_name(TP_SN).and_then(|c| c.as_any().downcast_ref::<Int64Array>()) else {
            return Ok(batches);
        };
        for v in sn.values().iter() {
            if prev.is_some_and(|p| *v <= p) {
                sorted = false;
                break 'check;
            }
            prev = Some(*v);
        }
    }
    if sorted || batches.is_empty() {
        return Ok(batches);
    }
    Ok(vec![sort_by_sn(schema, batches)?])
}

fn first_sn(b: &RecordBatch) -> Option<u64> {
    let sn = b.column_by_name(TP_SN)?.as_any().downcast_ref::<Int64Array>()?;
    (!sn.is_empty()).then(|| sn.value(0) as u64)
}

/// Drops backfill rows (`_tp_sn < backfill_end`) older than `from_ms`; live rows stay.
fn filter_backfill_by_time(b: &RecordBatch, backfill_end: u64, from_ms: i64) -> Result<RecordBatch> {
    let (Some(sn), Some(time)) = (b.column_by_name(TP_SN), b.column_by_name(TP_TIME)) else { return Ok(b.clone()) };
    let ms = arrow::compute::cast(time, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    let ms = arrow::compute::cast(&ms, &DataType::Int64)?;
    let (Some(sn), Some(ms)) = (sn.as_any().downcast_ref::<Int64Array>(), ms.as_any().downcast_ref::<Int64Array>())
    else {
        return Ok(b.clone());
    };
    let keep: BooleanArray = (0..b.num_rows())
        .map(|i| Some(sn.value(i) as u64 >= backfill_end || (ms.is_valid(i) && ms.value(i) >= from_ms)))
        .collect();
    Ok(arrow::compute::filter_record_batch(b, &keep)?)
}

fn last_sn(b: &RecordBatch) -> Option<u64> {
    let sn = b.column_by_name(TP_SN)?.as_any().downcast_ref::<Int64Array>()?;
    (!sn.is_empty()).then(|| sn.value(sn.len() - 1) as u64)
}

/// Concatenates and sorts by `_tp_sn` (parts are sorted by the sort key, not by arrival).
fn sort_by_sn(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let all = concat_batches(schema, &batches)?;
    let Some(sn) = all.column_by_name(TP_SN) else { return Ok(all) };
    let idx = lexsort_to_indices(&[SortColumn { values: sn.clone(), options: None }], None)?;
    Ok(take_record_batch(&all, &idx)?)
}
