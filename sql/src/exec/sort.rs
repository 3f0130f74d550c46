//! Full sort: collects the input in parallel, then sorts once with Arrow's lexicographic sort.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::parallel::collect_parallel;
use super::{ExecNode, LazyPart, PartStream, chunks};
use crate::context::ExecContext;
use crate::error::Result;
use crate::expr::BExpr;
use crate::functions::value_type;

/// One sort key over the input's columns.
#[derive(Debug, Clone)]
pub struct PhysSortKey {
    /// The key.
    pub expr: BExpr,
    /// Direction and NULL placement.
    pub options: SortOptions,
}

/// Sorts `batch` by `keys`, keeping the first `fetch` rows if given.
pub fn sort_batch(batch: &RecordBatch, keys: &[PhysSortKey], fetch: Option<usize>) -> Result<RecordBatch> {
    if batch.num_rows() <= 1 && fetch.is_none_or(|f| f >= batch.num_rows()) {
        return Ok(batch.clone());
    }
    let cols = keys
        .iter()
        .map(|k| {
            let v: ArrayRef = k.expr.eval_array(batch)?;
            let v = crate::functions::cast::cast_array(&v, value_type(v.data_type()))?;
            Ok(SortColumn { values: v, options: Some(k.options) })
        })
        .collect::<Result<Vec<_>>>()?;
    let fetch = fetch.map(|f| f.min(batch.num_rows()));
    let idx = lexsort_to_indices(&cols, fetch)?;
    Ok(take_record_batch(batch, &idx)?)
}

/// Bytes held by batches.
pub fn batches_size(b: &[RecordBatch]) -> usize {
    b.iter().map(|b| b.columns().iter().map(|c| c.get_array_memory_size()).sum::<usize>()).sum()
}

/// ORDER BY without LIMIT.
#[derive(Debug)]
pub struct SortExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Keys.
    pub keys: Vec<PhysSortKey>,
}

impl ExecNode for SortExec {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let (input, keys, ctx) = (self.input.clone(), self.keys.clone(), ctx.clone());
        Ok(vec![Box::new(move || {
            let batches = collect_parallel(&ctx, input.execute(&ctx)?)?;
            let mut res = ctx.reservation("ORDER BY");
            res.resize(batches_size(&batches) * 2)?;
            let all = concat_batches(&input.schema(), &batches)?;
            drop(batches);
            ctx.check_cancelled()?;
            let sorted = sort_batch(&all, &keys, None)?;
            Ok(Box::new(chunks(sorted, 65_536).into_iter().map(Ok)) as PartStream)
        })])
    }

    fn describe(&self) -> String {
        format!("Sort {}", describe_keys(&self.keys))
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}

/// `a DESC, b` for EXPLAIN.
pub fn describe_keys(keys: &[PhysSortKey]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{}{}{}",
                k.expr,
                if k.options.descending { " DESC" } else { "" },
                if k.options.nulls_first { " NULLS FIRST" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
