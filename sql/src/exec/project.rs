//! Projection: evaluates expressions into the output columns.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{ExecNode, LazyPart, map_parts};
use crate::context::ExecContext;
use crate::error::Result;
use crate::expr::BExpr;

/// SELECT list.
#[derive(Debug)]
pub struct ProjectExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// One expression per output column.
    pub exprs: Vec<BExpr>,
    /// Output schema.
    pub schema: SchemaRef,
}

/// Evaluates `exprs` on `b` into a batch of `schema`.
pub fn project(b: &RecordBatch, exprs: &[BExpr], schema: &SchemaRef) -> Result<RecordBatch> {
    let cols = exprs.iter().map(|e| e.eval_array(b)).collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )?)
}

impl ExecNode for ProjectExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let parts = self.input.execute(ctx)?;
        let (exprs, schema) = (self.exprs.clone(), self.schema.clone());
        Ok(map_parts(parts, Arc::new(move |b: RecordBatch| Ok(Some(project(&b, &exprs, &schema)?)))))
    }

    fn describe(&self) -> String {
        let cols: Vec<String> = self
            .exprs
            .iter()
            .zip(self.schema.fields())
            .map(|(e, f)| if e.to_string() == *f.name() { f.name().clone() } else { format!("{e} AS {}", f.name()) })
            .collect();
        format!("Project {}", cols.join(", "))
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}
