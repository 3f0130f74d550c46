//! UNION ALL: the partitions of every input, relabelled with the union's schema.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{ExecNode, LazyPart, map_parts};
use crate::context::ExecContext;
use crate::error::Result;

/// UNION ALL of inputs with equal column types.
#[derive(Debug)]
pub struct UnionExec {
    /// Inputs.
    pub inputs: Vec<Arc<dyn ExecNode>>,
    /// Output schema.
    pub schema: SchemaRef,
}

impl ExecNode for UnionExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let mut out = Vec::new();
        for i in &self.inputs {
            let schema = self.schema.clone();
            out.extend(map_parts(
                i.execute(ctx)?,
                Arc::new(move |b: RecordBatch| {
                    Ok(Some(RecordBatch::try_new_with_options(
                        schema.clone(),
                        b.columns().to_vec(),
                        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                    )?))
                }),
            ));
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        "UnionAll".into()
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        self.inputs.clone()
    }
}
