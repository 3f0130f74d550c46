//! Filter: evaluates the predicate (NULL counts as false) and keeps the passing rows of the
//! columns the parent needs. A filter under `count(*)` keeps no columns, only a row count.

use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::{filter_record_batch, prep_null_mask_filter, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{ExecNode, LazyPart, map_parts};
use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::expr::BExpr;

/// WHERE / HAVING.
#[derive(Debug)]
pub struct FilterExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Condition over the input's columns.
    pub predicate: BExpr,
    /// Input columns kept, in order.
    pub projection: Vec<usize>,
    /// Output schema.
    pub schema: SchemaRef,
}

/// Keeps the rows where `mask` is true, projecting `projection`.
pub fn apply(
    batch: &RecordBatch,
    mask: &BooleanArray,
    projection: &[usize],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mask = if mask.null_count() > 0 { prep_null_mask_filter(mask) } else { mask.clone() };
    let projected = if projection.len() == batch.num_columns() && projection.iter().enumerate().all(|(i, p)| i == *p) {
        batch.clone()
    } else {
        batch.project(projection)?
    };
    let projected = RecordBatch::try_new_with_options(
        schema.clone(),
        projected.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?;
    let n = mask.true_count();
    if n == batch.num_rows() {
        return Ok(projected);
    }
    if projected.num_columns() == 0 {
        return Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?);
    }
    if n * 8 < batch.num_rows() {
        // Selective: gather the few passing rows by index.
        let idx: UInt32Array = mask.values().set_indices().map(|i| i as u32).collect();
        return Ok(take_record_batch(&projected, &idx)?);
    }
    Ok(filter_record_batch(&projected, &mask)?)
}

impl ExecNode for FilterExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let parts = self.input.execute(ctx)?;
        let (pred, proj, schema) = (self.predicate.clone(), self.projection.clone(), self.schema.clone());
        Ok(map_parts(
            parts,
            Arc::new(move |b: RecordBatch| {
                let m = pred.eval_array(&b)?;
                let m =
                    m.as_boolean_opt().ok_or_else(|| Error::Internal { message: "filter is not boolean".into() })?;
                let out = apply(&b, m, &proj, &schema)?;
                Ok((out.num_rows() > 0).then_some(out))
            }),
        ))
    }

    fn describe(&self) -> String {
        format!("Filter {}", self.predicate)
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}
