//! Joins. The right input is the build side: collected (in parallel), its keys encoded in Arrow's
//! row format into a chained hash table. Left partitions probe it in parallel (INNER, LEFT) or
//! in one stream that then emits the unmatched build rows (RIGHT, FULL). Extra ON conditions
//! are evaluated on the candidate pairs. CROSS joins pair every row with every row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::{concat_batches, prep_null_mask_filter, take};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;

use super::hash_agg::relax;
use super::parallel::{collect_parallel, gather};
use super::sort::batches_size;
use super::{ExecNode, LazyPart, PartStream};
use crate::aggregate::distinct::{Hasher, hasher};
use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::expr::BExpr;
use crate::functions::value_type;
use crate::logical::JoinKind;

/// A hash join (or a cross join when there are no keys).
#[derive(Debug)]
pub struct HashJoinExec {
    /// Probe side.
    pub left: Arc<dyn ExecNode>,
    /// Build side.
    pub right: Arc<dyn ExecNode>,
    /// Kind.
    pub kind: JoinKind,
    /// Key expressions over the left input.
    pub left_keys: Vec<BExpr>,
    /// Key expressions over the right input.
    pub right_keys: Vec<BExpr>,
    /// Other conditions over the joined columns (left then right).
    pub filter: Option<BExpr>,
    /// Output: left columns then right columns.
    pub schema: SchemaRef,
}

struct Build {
    batch: RecordBatch,
    converter: Option<RowConverter>,
    rows: Option<Rows>,
    table: HashTable<u32>,
    next: Vec<u32>,
    hasher: Hasher,
}

const NONE: u32 = u32::MAX;

fn key_arrays(keys: &[BExpr], b: &RecordBatch) -> Result<Vec<ArrayRef>> {
    keys.iter()
        .map(|k| {
            let a = k.eval_array(b)?;
            crate::functions::cast::cast_array(&a, value_type(a.data_type()))
        })
        .collect()
}

fn valid_keys(cols: &[ArrayRef], i: usize) -> bool {
    cols.iter().all(|c| c.is_valid(i))
}

impl Build {
    fn new(batch: RecordBatch, keys: &[BExpr]) -> Result<Self> {
        let hasher = hasher();
        if keys.is_empty() {
            return Ok(Build { batch, converter: None, rows: None, table: HashTable::new(), next: vec![], hasher });
        }
        let cols = key_arrays(keys, &batch)?;
        let converter = RowConverter::new(cols.iter().map(|c| SortField::new(c.data_type().clone())).collect())?;
        let rows = converter.convert_columns(&cols)?;
        let mut table: HashTable<u32> = HashTable::with_capacity(batch.num_rows());
        let mut next = vec![NONE; batch.num_rows()];
        let hashes: Vec<u64> = rows.iter().map(|r| hasher.hash_one(r.as_ref())).collect();
        for i in (0..batch.num_rows()).rev() {
            if !valid_keys(&cols, i) {
                continue;
            }
            let bytes = rows.row(i);
            match table.find_mut(hashes[i], |j| rows.row(*j as usize) == bytes) {
                Some(head) => {
                    next[i] = *head;
                    *head = i as u32;
                }
                None => {
                    table.insert_unique(hashes[i], i as u32, |j| hashes[*j as usize]);
                }
            }
        }
        Ok(Build { batch, converter: Some(converter), rows: Some(rows), table, next, hasher })
    }

    /// Candidate (left row, right row) pairs for a probe batch.
    fn probe(&self, left_keys: &[BExpr], b: &RecordBatch) -> Result<(Vec<u32>, Vec<u32>)> {
        let (Some(conv), Some(rows)) = (&self.converter, &self.rows) else {
            // Cross product.
            let m = self.batch.num_rows() as u32;
            let n = b.num_rows() as u32;
            let l = (0..n).flat_map(|i| std::iter::repeat_n(i, m as usize)).collect();
            let r = (0..n).flat_map(|_| 0..m).collect();
            return Ok((l, r));
        };
        let cols = key_arrays(left_keys, b)?;
        let probe = conv.convert_columns(&cols)?;
        let (mut l, mut r) = (Vec::new(), Vec::new());
        for i in 0..b.num_rows() {
            if !valid_keys(&cols, i) {
                continue;
            }
            let bytes = probe.row(i);
            let h = self.hasher.hash_one(bytes.as_ref());
            if let Some(head) = self.table.find(h, |j| rows.row(*j as usize) == bytes) {
                let mut j = *head;
                while j != NONE {
                    l.push(i as u32);
                    r.push(j);
                    j = self.next[j as usize];
                }
            }
        }
        Ok((l, r))
    }
}

/// A built right side and how to probe it: also the per-batch join of a streaming query
/// (stream ⋈ `table(t)`, the table read once when the query starts).
pub(crate) struct Probe {
    build: Arc<Build>,
    left_keys: Vec<BExpr>,
    filter: Option<BExpr>,
    kind: JoinKind,
    schema: SchemaRef,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("kind", &self.kind).field("build_rows", &self.build.batch.num_rows()).finish()
    }
}

impl Probe {
    /// Builds the right side of a streaming join (INNER, LEFT or CROSS).
    pub(crate) fn streaming(
        right: RecordBatch,
        right_keys: &[BExpr],
        left_keys: Vec<BExpr>,
        filter: Option<BExpr>,
        kind: JoinKind,
        schema: SchemaRef,
    ) -> Result<Self> {
        Ok(Probe { build: Arc::new(Build::new(right, right_keys)?), left_keys, filter, kind, schema })
    }

    /// Joins one left batch; marks matched build rows in `matched`.
    pub(crate) fn run(&self, b: &RecordBatch, matched: Option<&mut Vec<bool>>) -> Result<Vec<RecordBatch>> {
        let (mut l, mut r) = self.build.probe(&self.left_keys, b)?;
        let mut out = Vec::new();
        if !l.is_empty() {
            let mut joined = self.pairs(b, &l, &r)?;
            if let Some(f) = &self.filter {
                let m = f.eval_array(&joined)?;
                let m = m
                    .as_boolean_opt()
                    .ok_or_else(|| Error::Internal { message: "join filter is not boolean".into() })?;
                let m = if m.null_count() > 0 { prep_null_mask_filter(m) } else { m.clone() };
                joined = arrow::compute::filter_record_batch(&joined, &m)?;
                let keep: Vec<bool> = m.values().iter().collect();
                let mut k = keep.iter();
                l.retain(|_| *k.next().unwrap_or(&false));
                let mut k = keep.iter();
                r.retain(|_| *k.next().unwrap_or(&false));
            }
            if joined.num_rows() > 0 {
                out.push(joined);
            }
        }
        if let Some(m) = matched {
            r.iter().for_each(|j| m[*j as usize] = true);
        }
        if matches!(self.kind, JoinKind::Left | JoinKind::Full) {
            let mut hit = vec![false; b.num_rows()];
            l.iter().for_each(|i| hit[*i as usize] = true);
            let missing: Vec<u32> = (0..b.num_rows() as u32).filter(|i| !hit[*i as usize]).collect();
            if !missing.is_empty() {
                let nulls = vec![None; missing.len()];
                out.push(self.assemble(b, &UInt32Array::from(missing), &UInt32Array::from(nulls))?);
            }
        }
        Ok(out)
    }

    fn pairs(&self, b: &RecordBatch, l: &[u32], r: &[u32]) -> Result<RecordBatch> {
        self.assemble(b, &UInt32Array::from(l.to_vec()), &UInt32Array::from(r.to_vec()))
    }

    fn assemble(&self, b: &RecordBatch, l: &UInt32Array, r: &UInt32Array) -> Result<RecordBatch> {
        let mut cols = Vec::with_capacity(self.schema.fields().len());
        for c in b.columns() {
            cols.push(take(c.as_ref(), l, None)?);
        }
        for c in self.build.batch.columns() {
            cols.push(take(c.as_ref(), r, None)?);
        }
        let schema = relax(&self.schema, &cols);
        Ok(RecordBatch::try_new_with_options(schema, cols, &RecordBatchOptions::new().with_row_count(Some(l.len())))?)
    }

    /// Build rows never matched, with NULLs on the left.
    fn unmatched(&self, matched: &[bool], left_schema: &SchemaRef) -> Result<Option<RecordBatch>> {
        let idx: Vec<u32> = (0..matched.len() as u32).filter(|j| !matched[*j as usize]).collect();
        if idx.is_empty() {
            return Ok(None);
        }
        let n = idx.len();
        let mut cols: Vec<ArrayRef> =
            left_schema.fields().iter().map(|f| arrow::array::new_null_array(f.data_type(), n)).collect();
        let r = UInt32Array::from(idx);
        for c in self.build.batch.columns() {
            cols.push(take(c.as_ref(), &r, None)?);
        }
        let schema = relax(&self.schema, &cols);
        Ok(Some(RecordBatch::try_new_with_options(schema, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?))
    }
}

impl ExecNode for HashJoinExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let right = collect_parallel(ctx, self.right.execute(ctx)?)?;
        let mut res = ctx.reservation("JOIN build side");
        res.resize(batches_size(&right) * 2)?;
        let right = concat_batches(&self.right.schema(), &right)?;
        let build = Arc::new(Build::new(right, &self.right_keys)?);
        let probe = Arc::new(Probe {
            build,
            left_keys: self.left_keys.clone(),
            filter: self.filter.clone(),
            kind: self.kind,
            schema: self.schema.clone(),
        });
        let left_parts = self.left.execute(ctx)?;
        if matches!(self.kind, JoinKind::Right | JoinKind::Full) {
            let ctx = ctx.clone();
            let left_schema = self.left.schema();
            return Ok(vec![Box::new(move || {
                let _res = res;
                let mut matched = vec![false; probe.build.batch.num_rows()];
                let mut out = Vec::new();
                for b in gather(&ctx, left_parts)? {
                    let b = b?;
                    out.extend(probe.run(&b, Some(&mut matched))?);
                }
                out.extend(probe.unmatched(&matched, &left_schema)?);
                Ok(Box::new(out.into_iter().map(Ok)) as PartStream)
            })]);
        }
        let res = Arc::new(res);
        Ok(left_parts
            .into_iter()
            .map(|p| {
                let probe = probe.clone();
                let res = res.clone();
                Box::new(move || {
                    let s = p()?;
                    let it = s.flat_map(move |b| {
                        let _keep = &res;
                        let r = b.and_then(|b| probe.run(&b, None));
                        match r {
                            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                            Err(e) => vec![Err(e)],
                        }
                    });
                    Ok(Box::new(it) as PartStream)
                }) as LazyPart
            })
            .collect())
    }

    fn describe(&self) -> String {
        let keys: Vec<String> =
            self.left_keys.iter().zip(&self.right_keys).map(|(l, r)| format!("{l} = {r}")).collect();
        let mut s = if self.kind == JoinKind::Cross {
            "CrossJoin".to_string()
        } else {
            format!("HashJoin {:?} on [{}]", self.kind, keys.join(", "))
        };
        if let Some(f) = &self.filter {
            s.push_str(&format!(" filter {f}"));
        }
        s
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.left.clone(), self.right.clone()]
    }
}
