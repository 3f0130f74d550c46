//! Bounded scans over a consistent snapshot of a stream: every shard's parts, the rows only in
//! its log (streaming storage) and its visible memtable rows, with projection and predicate
//! pushdown (parts prune row groups and pages; the engine filters exactly when asked to).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use sluice_columnstore::{PartHandle, Predicate, Projection, ScanOptions, Stat};
use sluice_wal::SeqNo;

use crate::batch_codec;
use crate::ingest;
use crate::memtable::MemBatch;
use crate::shard::{Shard, ShardState};
use crate::stream_def::{StreamDef, TP_SN, sn_column, tp_sn_field};
use crate::{Error, Result};

/// An iterator of result batches.
pub type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// What a scan reads.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// Columns to return, in this order (`_tp_sn` allowed); `None` = every stored column.
    pub projection: Option<Vec<String>>,
    /// Used to skip parts, row groups and pages; with `exact`, also to filter rows.
    pub predicate: Predicate,
    /// Filter rows by `predicate` exactly (otherwise extra rows may come back).
    pub exact: bool,
}

impl ScanRequest {
    /// Every row, every stored column.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only these columns.
    pub fn columns<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.projection = Some(cols.into_iter().map(Into::into).collect());
        self
    }

    /// Rows matching `predicate`, exactly.
    pub fn filter(mut self, predicate: Predicate) -> Self {
        self.predicate = predicate;
        self.exact = true;
        self
    }
}

/// One shard's part of a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct ShardSnapshot {
    pub(crate) shard: Arc<Shard>,
    pub(crate) state: ShardState,
    pub(crate) visible: u64,
}

impl ShardSnapshot {
    pub(crate) fn take(shard: &Arc<Shard>) -> Self {
        let (state, visible) = shard.snapshot();
        Self { shard: shard.clone(), state, visible }
    }

    /// Visible memtable batches.
    fn mem(&self) -> impl Iterator<Item = &Arc<MemBatch>> {
        self.state.mem.batches().iter().take_while(move |b| b.end_seq() <= self.visible)
    }
}

/// A consistent view of a whole stream at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) def: Arc<StreamDef>,
    pub(crate) shards: Vec<ShardSnapshot>,
}

/// An independent piece of a snapshot that one thread can scan: a part, the log-only rows of
/// a shard, or a shard's memtable rows.
#[derive(Debug, Clone)]
pub enum ScanUnit {
    /// A Parquet part, or some of its row groups.
    Part {
        /// Shard number.
        shard: u32,
        /// The part.
        part: Arc<PartHandle>,
        /// Only these row groups (`None`: all).
        row_groups: Option<Vec<usize>>,
    },
    /// Rows `from..to` of a shard kept only in its log.
    Log {
        /// Shard number.
        shard: u32,
        /// First sequence number.
        from: u64,
        /// One past the last.
        to: u64,
    },
    /// Memtable batches.
    Mem {
        /// Shard number.
        shard: u32,
        /// The batches.
        batches: Vec<Arc<MemBatch>>,
    },
}

impl Snapshot {
    /// The stream's definition at snapshot time.
    pub fn def(&self) -> &Arc<StreamDef> {
        &self.def
    }

    /// The next sequence number per shard after the rows of the snapshot (where a subscription
    /// continues without a gap or a duplicate).
    pub(crate) fn positions(&self) -> Vec<u64> {
        self.shards.iter().map(|s| s.visible).collect()
    }

    /// Rows in the snapshot (parts, log-only rows and memtable; TTL may make it an upper bound).
    pub fn rows(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                let parts: u64 = s.state.parts.iter().map(|p| p.info().rows).sum();
                let mem: u64 = s.mem().map(|b| b.batch.num_rows() as u64).sum();
                let log = self.log_range(s).map_or(0, |(a, b)| b - a);
                parts + mem + log
            })
            .sum()
    }

    fn log_range(&self, s: &ShardSnapshot) -> Option<(u64, u64)> {
        let wal = s.shard.wal.as_ref()?;
        if s.shard.storage != crate::StorageType::Streaming {
            return None;
        }
        let from = wal.first_seq().0;
        let to = s.state.flushed;
        (from < to).then_some((from, to))
    }

    /// The snapshot cut into units for parallel scans, parts pruned by `predicate`.
    pub fn units(&self, predicate: &Predicate) -> Vec<ScanUnit> {
        let mut out = Vec::new();
        for s in &self.shards {
            let shard = s.shard.id;
            for p in s.state.parts.prune(predicate) {
                // Parts with several row groups become one unit per group the predicate may
                // match (row-group statistics), so that one big merged part still keeps every
                // core busy and a point lookup opens one group.
                let groups = p.part().ok().filter(|part| part.num_row_groups() > 1).map(|part| {
                    match part.plan(predicate, false) {
                        Ok(plan) => plan.row_groups,
                        Err(_) => (0..part.num_row_groups()).collect(),
                    }
                });
                match groups {
                    Some(groups) => {
                        for g in groups {
                            out.push(ScanUnit::Part { shard, part: p.clone(), row_groups: Some(vec![g]) });
                        }
                    }
                    None => out.push(ScanUnit::Part { shard, part: p, row_groups: None }),
                }
            }
            if let Some((from, to)) = self.log_range(s) {
                out.push(ScanUnit::Log { shard, from, to });
            }
            let batches: Vec<Arc<MemBatch>> = s.mem().cloned().collect();
            if !batches.is_empty() {
                out.push(ScanUnit::Mem { shard, batches });
            }
        }
        out
    }

    /// The schema of the batches a scan with `req` returns.
    pub fn output_schema(&self, req: &ScanRequest) -> Result<SchemaRef> {
        output_schema(&self.def, req.projection.as_deref())
    }

    /// Scans the whole snapshot, unit after unit.
    pub fn scan(&self, req: &ScanRequest) -> Result<BatchIter> {
        let units = self.units(&req.predicate);
        let this = self.clone();
        let req = req.clone();
        let out = self.output_schema(&req)?;
        let iter = units.into_iter().flat_map(move |u| match this.read_unit(&u, &req, &out) {
            Ok(it) => it,
            Err(e) => Box::new(std::iter::once(Err(e))) as BatchIter,
        });
        Ok(Box::new(iter))
    }

    /// Reads one unit.
    pub fn read_unit(&self, unit: &ScanUnit, req: &ScanRequest, out: &SchemaRef) -> Result<BatchIter> {
        let def = self.def.clone();
        // Columns needed: the projection plus what the exact filter looks at.
        let mut need: Vec<String> = out.fields().iter().map(|f| f.name().clone()).collect();
        if req.exact {
            for c in &req.predicate.conjuncts {
                if !need.iter().any(|n| n == c.column()) {
                    need.push(c.column().to_string());
                }
            }
        }
        let full = output_schema(&def, Some(&need))?;
        let finish = {
            let out = out.clone();
            let pred = req.predicate.clone();
            let exact = req.exact;
            move |b: RecordBatch| -> Result<RecordBatch> {
                let b = if exact && !pred.is_empty() { filter_exact(&b, &pred)? } else { b };
                project(&b, &out)
            }
        };
        match unit {
            ScanUnit::Part { part, row_groups, .. } => {
                let names: Vec<String> = need.clone();
                let opts = ScanOptions::default()
                    .projection(Projection::names(names.into_iter().filter(|n| part_has(part, n)).collect::<Vec<_>>()))
                    .predicate(req.predicate.clone())
                    .row_groups(row_groups.clone())
                    .use_cache(true);
                let shard_err = self.shard_of(unit);
                let scan = part.scan(&opts).map_err(|e| shard_err.parts_error(e))?;
                let it = scan.map(move |r| {
                    let b = r.map_err(|e| shard_err.parts_error(e))?;
                    finish(complete(&def, &full, &b)?)
                });
                Ok(Box::new(it))
            }
            ScanUnit::Mem { batches, .. } => {
                let batches = batches.clone();
                let it = batches.into_iter().map(move |mb| {
                    let b = with_sn(&mb.batch, mb.first_seq)?;
                    finish(complete(&def, &full, &b)?)
                });
                Ok(Box::new(it))
            }
            ScanUnit::Log { from, to, .. } => {
                let shard = self.shard_of(unit);
                let it = read_log(&shard, &def, *from, *to)?.map(move |r| {
                    let b = r?;
                    finish(complete(&def, &full, &b)?)
                });
                Ok(Box::new(it))
            }
        }
    }

    fn shard_of(&self, unit: &ScanUnit) -> Arc<Shard> {
        let id = match unit {
            ScanUnit::Part { shard, .. } | ScanUnit::Log { shard, .. } | ScanUnit::Mem { shard, .. } => *shard,
        };
        self.shards.iter().find(|s| s.shard.id == id).map(|s| s.shard.clone()).expect("unit of this snapshot")
    }
}

fn part_has(part: &PartHandle, name: &str) -> bool {
    part.info().columns.iter().any(|c| c.name == name)
}

/// Rows `from..to` of a shard's log, decoded, conformed to the current schema, with `_tp_sn`.
pub(crate) fn read_log(shard: &Arc<Shard>, def: &Arc<StreamDef>, from: u64, to: u64) -> Result<BatchIter> {
    let wal = shard.wal.as_ref().ok_or_else(|| Error::NotSupported("stream keeps no log".into()))?;
    let wal_err = {
        let (stream, id) = (shard.stream.to_string(), shard.id);
        move |source| Error::Wal { stream: stream.clone(), shard: id, source }
    };
    let reader = wal.reader(SeqNo(from)).map_err(&wal_err)?;
    let schema = def.schema();
    let def = def.clone();
    let dir = shard.dir.join("wal");
    let it = reader.take_while(move |r| r.as_ref().map_or(true, |r| r.seq.0 < to)).map(move |r| {
        let rec = r.map_err(&wal_err)?;
        let batch = batch_codec::decode(&rec.payload, || (dir.clone(), rec.seq.0))?;
        let batch = ingest::conform_stored(&def, &schema, &batch)?;
        let mut b = with_sn(&batch, rec.seq.0)?;
        // Cut rows outside from..to (records may straddle the ends).
        let start = from.saturating_sub(rec.seq.0) as usize;
        let end = (to.saturating_sub(rec.seq.0) as usize).min(b.num_rows());
        if start > 0 || end < b.num_rows() {
            b = b.slice(start.min(end), end.saturating_sub(start));
        }
        Ok(b)
    });
    Ok(Box::new(it))
}

/// The stored batch plus `_tp_sn`.
pub(crate) fn with_sn(batch: &RecordBatch, first_seq: u64) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(tp_sn_field());
    let mut cols = batch.columns().to_vec();
    cols.push(sn_column(first_seq, batch.num_rows()));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// The schema of `projection` (stored columns and `_tp_sn`), in the order given.
pub(crate) fn output_schema(def: &StreamDef, projection: Option<&[String]>) -> Result<SchemaRef> {
    let Some(cols) = projection else { return Ok(def.schema()) };
    let mut fields = Vec::with_capacity(cols.len());
    for c in cols {
        if c == TP_SN {
            fields.push(tp_sn_field());
        } else {
            let i = def
                .column_index(c)
                .ok_or_else(|| Error::ColumnNotFound { stream: def.name.clone(), column: c.clone() })?;
            fields.push(def.columns[i].field.clone());
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Builds a batch of schema `target` from `b` (columns by name): columns `b` lacks (added by
/// `ALTER STREAM` after it was written) take their DEFAULT, NULL or zero value as at insert.
pub(crate) fn complete(def: &StreamDef, target: &SchemaRef, b: &RecordBatch) -> Result<RecordBatch> {
    let rows = b.num_rows();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        match b.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => cols.push(c.clone()),
            Some(c) => cols.push(arrow::compute::cast(c, f.data_type())?),
            None => match def.column_index(f.name()) {
                Some(i) => cols.push(ingest::fill_missing(&def.name, &def.columns[i], b, rows)?),
                None => cols.push(new_null_array(f.data_type(), rows)),
            },
        }
    }
    Ok(RecordBatch::try_new_with_options(target.clone(), cols, &RecordBatchOptions::new().with_row_count(Some(rows)))?)
}

/// Keeps the columns of `out`, in its order.
fn project(b: &RecordBatch, out: &SchemaRef) -> Result<RecordBatch> {
    if b.schema().fields().len() == out.fields().len() {
        return Ok(RecordBatch::try_new_with_options(
            out.clone(),
            b.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )?);
    }
    let cols = out
        .fields()
        .iter()
        .map(|f| b.column_by_name(f.name()).cloned().ok_or_else(|| Error::NotSupported(format!("column {}", f.name()))))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        out.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )?)
}

/// Keeps the rows that satisfy every conjunct of `pred`.
pub(crate) fn filter_exact(b: &RecordBatch, pred: &Predicate) -> Result<RecordBatch> {
    let mut keep = vec![true; b.num_rows()];
    for c in &pred.conjuncts {
        let Some(col) = b.column_by_name(c.column()) else {
            // A column the rows do not have: all null, and a null never matches.
            keep.iter_mut().for_each(|k| *k = false);
            break;
        };
        for (i, k) in keep.iter_mut().enumerate() {
            if *k {
                let v: Option<Stat> = if col.is_null(i) { None } else { Stat::from_array(col.as_ref(), i) };
                *k = c.matches(v.as_ref());
            }
        }
    }
    if keep.iter().all(|k| *k) {
        return Ok(b.clone());
    }
    Ok(filter_record_batch(b, &BooleanArray::from(keep))?)
}
