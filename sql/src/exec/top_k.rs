//! ORDER BY ... LIMIT k: every worker keeps only its best k rows (compacting its buffer with a
//! partial sort when it grows), then the workers' survivors are merged with one more top-k.

use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::parallel::fold_parallel;
use super::sort::{PhysSortKey, batches_size, describe_keys, sort_batch};
use super::{ExecNode, LazyPart, PartStream, chunks};
use crate::context::{ExecContext, MemoryReservation};
use crate::error::Result;

/// ORDER BY with LIMIT `fetch` (limit plus offset).
#[derive(Debug)]
pub struct TopKExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Keys.
    pub keys: Vec<PhysSortKey>,
    /// Rows kept.
    pub fetch: usize,
}

struct Buffer {
    batches: Vec<RecordBatch>,
    rows: usize,
    res: MemoryReservation,
}

fn compact(schema: &SchemaRef, b: &mut Buffer, keys: &[PhysSortKey], k: usize) -> Result<()> {
    let all = concat_batches(schema, &b.batches)?;
    let top = sort_batch(&all, keys, Some(k))?;
    b.rows = top.num_rows();
    b.batches = vec![top];
    b.res.resize(batches_size(&b.batches))?;
    Ok(())
}

impl ExecNode for TopKExec {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let (input, keys, k, ctx) = (self.input.clone(), self.keys.clone(), self.fetch, ctx.clone());
        Ok(vec![Box::new(move || {
            let schema = input.schema();
            let limit = (2 * k).max(65_536);
            let parts = input.execute(&ctx)?;
            let bufs = fold_parallel(
                &ctx,
                parts,
                &|| Ok(Buffer { batches: Vec::new(), rows: 0, res: ctx.reservation("ORDER BY ... LIMIT") }),
                &|b: &mut Buffer, batch: RecordBatch| {
                    if k == 0 || batch.num_rows() == 0 {
                        return Ok(());
                    }
                    b.rows += batch.num_rows();
                    b.batches.push(batch);
                    if b.rows > limit {
                        compact(&schema, b, &keys, k)?;
                    }
                    Ok(())
                },
            )?;
            let mut all: Vec<RecordBatch> = Vec::new();
            for mut b in bufs {
                if b.rows > k {
                    compact(&schema, &mut b, &keys, k)?;
                }
                all.extend(b.batches);
            }
            let merged = concat_batches(&schema, &all)?;
            let top = sort_batch(&merged, &keys, Some(k))?;
            Ok(Box::new(chunks(top, 65_536).into_iter().map(Ok)) as PartStream)
        })])
    }

    fn describe(&self) -> String {
        format!("TopK k={} {}", self.fetch, describe_keys(&self.keys))
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}
