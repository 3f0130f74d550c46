//! Physical operators. Each implements [`ExecNode`]: `execute` returns independent lazy
//! partitions (streams of record batches) that the driver runs on `ctx.threads` threads.
//! Pipelined operators (scan, filter, project) map partitions one to one, so a whole
//! scan-filter-project chain runs inside one worker; blocking operators (aggregate, sort, join
//! build) consume their input's partitions in parallel and produce one partition.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::context::ExecContext;
use crate::error::Result;

/// Filter with optional projection.
pub mod filter;
/// Group keys of the hash aggregate.
pub mod group_keys;
/// Hash aggregation (GROUP BY, DISTINCT, global aggregates).
pub mod hash_agg;
/// Hash and cross joins.
pub mod hash_join;
/// LIMIT / OFFSET.
pub mod limit;
/// Running partitions on threads.
pub mod parallel;
/// Projection.
pub mod project;
/// Table scans.
pub mod scan;
/// Full sort.
pub mod sort;
/// ORDER BY ... LIMIT as top-k.
pub mod top_k;
/// A fast hash table for integer keys.
pub mod u64_table;
/// UNION ALL.
pub mod union;
/// Constant batches.
pub mod values;
/// Window assignment (tumble, hop).
pub mod window;

/// A stream of batches.
pub type PartStream = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;
/// A partition not started yet.
pub type LazyPart = Box<dyn FnOnce() -> Result<PartStream> + Send>;

/// A physical operator.
pub trait ExecNode: Send + Sync + fmt::Debug {
    /// Output schema.
    fn schema(&self) -> SchemaRef;
    /// Starts execution: the output partitions.
    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>>;
    /// One line describing this node (for EXPLAIN).
    fn describe(&self) -> String;
    /// Inputs.
    fn children(&self) -> Vec<Arc<dyn ExecNode>>;
}

/// Writes the plan as an indented tree.
pub fn explain(node: &Arc<dyn ExecNode>, indent: usize, out: &mut String) {
    out.push_str(&"  ".repeat(indent));
    out.push_str(&node.describe());
    out.push('\n');
    for c in node.children() {
        explain(&c, indent + 1, out);
    }
}

/// Maps every batch of every partition with `f` (lazily, on the worker running it).
pub fn map_parts(
    parts: Vec<LazyPart>,
    f: Arc<dyn Fn(RecordBatch) -> Result<Option<RecordBatch>> + Send + Sync>,
) -> Vec<LazyPart> {
    parts
        .into_iter()
        .map(|p| {
            let f = f.clone();
            Box::new(move || {
                let s = p()?;
                let it = s.filter_map(move |b| match b {
                    Ok(b) => f(b).transpose(),
                    Err(e) => Some(Err(e)),
                });
                Ok(Box::new(it) as PartStream)
            }) as LazyPart
        })
        .collect()
}

/// A partition of already computed batches.
pub fn ready(batches: Vec<RecordBatch>) -> LazyPart {
    Box::new(move || Ok(Box::new(batches.into_iter().map(Ok)) as PartStream))
}

/// Splits a batch into chunks of at most `rows` rows.
pub fn chunks(b: RecordBatch, rows: usize) -> Vec<RecordBatch> {
    if b.num_rows() <= rows {
        return vec![b];
    }
    (0..b.num_rows()).step_by(rows).map(|s| b.slice(s, rows.min(b.num_rows() - s))).collect()
}
