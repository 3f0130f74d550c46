//! Constant batches: `SELECT` without FROM, VALUES, `numbers(n)`, folded results.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{ExecNode, LazyPart, ready};
use crate::context::ExecContext;
use crate::error::Result;

/// Produces fixed batches.
#[derive(Debug)]
pub struct ValuesExec {
    /// The batches.
    pub batches: Vec<RecordBatch>,
    /// Their schema.
    pub schema: SchemaRef,
    /// What they are, for EXPLAIN.
    pub label: String,
}

impl ExecNode for ValuesExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, _ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        Ok(vec![ready(self.batches.clone())])
    }

    fn describe(&self) -> String {
        format!("{} rows={}", self.label, self.batches.iter().map(RecordBatch::num_rows).sum::<usize>())
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
}
