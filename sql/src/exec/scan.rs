//! Bounded table scan: asks the table for partitions (with pushed-down filters and the columns
//! needed) and checks cancellation between batches.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{ExecNode, LazyPart, PartStream};
use crate::catalog::{ScanRequest, Table};
use crate::context::ExecContext;
use crate::error::{Error, Result};

/// Scans a table.
#[derive(Debug)]
pub struct ScanExec {
    /// The table.
    pub table: Arc<dyn Table>,
    /// What to read.
    pub request: ScanRequest,
    /// Output schema (the requested columns, named as the query names them).
    pub schema: SchemaRef,
}

impl ExecNode for ScanExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let parts = self.table.scan(&self.request)?;
        Ok(parts
            .into_iter()
            .map(|p| {
                let schema = self.schema.clone();
                let ctx = ctx.clone();
                let name = self.table.name().to_string();
                Box::new(move || {
                    let it = p()?;
                    let it = it.map(move |b| {
                        ctx.check_cancelled()?;
                        conform(b?, &schema, &name)
                    });
                    Ok(Box::new(it) as PartStream)
                }) as LazyPart
            })
            .collect())
    }

    fn describe(&self) -> String {
        let mut s = format!("Scan {} columns=[{}]", self.table.name(), self.request.columns.join(", "));
        if !self.request.filters.is_empty() {
            let f: Vec<String> =
                self.request.filters.iter().map(|f| format!("{} {:?} {}", f.column, f.op, f.value)).collect();
            s.push_str(&format!(" pushed_filters=[{}]", f.join(", ")));
        }
        if let Some(l) = self.request.limit_hint {
            s.push_str(&format!(" limit_hint={l}"));
        }
        s
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
}

/// Re-labels a storage batch with the plan's schema (same types in the same order).
fn conform(b: RecordBatch, schema: &SchemaRef, table: &str) -> Result<RecordBatch> {
    if b.schema().fields() == schema.fields() {
        return Ok(b);
    }
    if b.num_columns() != schema.fields().len()
        || b.columns().iter().zip(schema.fields()).any(|(c, f)| c.data_type() != f.data_type())
    {
        return Err(Error::Internal {
            message: format!("table `{table}` returned batches of schema {:?}, expected {:?}", b.schema(), schema),
        });
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        b.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )
    .or_else(|_| {
        // A nullable-ness mismatch: relax the schema.
        let relaxed = Arc::new(arrow::datatypes::Schema::new(
            schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
        ));
        RecordBatch::try_new_with_options(
            relaxed,
            b.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )
    })?)
}
