//! Per-batch operators of a streaming query (filter, projection, window assignment) and the
//! event-time watermark.

use arrow::array::{Array, AsArray, BooleanArray, Int64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use std::sync::Arc;

use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::exec::ExecNode;
use crate::exec::hash_join::Probe;
use crate::exec::{filter, project, window};
use crate::expr::BExpr;
use crate::logical::JoinKind;
use crate::logical::WindowSpec;

/// One stateless step applied to every batch.
#[derive(Debug, Clone)]
pub(crate) enum RowOp {
    /// WHERE / HAVING, keeping the `keep` columns.
    Filter { pred: BExpr, keep: Vec<usize>, schema: SchemaRef },
    /// SELECT list.
    Project { exprs: Vec<BExpr>, schema: SchemaRef },
    /// `tumble` / `hop`; with `drop_late`, rows older than the watermark are dropped first
    /// (and the watermark advances).
    Window { time: usize, spec: WindowSpec, schema: SchemaRef, drop_late: bool },
    /// stream ⋈ `table(t)`: the right side is read once when the query starts ([`RowOp::prepare`]).
    Join(Box<JoinOp>),
}

/// A streaming join with a bounded right side.
#[derive(Debug, Clone)]
pub(crate) struct JoinOp {
    pub right: Arc<dyn ExecNode>,
    pub right_keys: Vec<BExpr>,
    pub left_keys: Vec<BExpr>,
    pub filter: Option<BExpr>,
    pub kind: JoinKind,
    pub schema: SchemaRef,
    pub probe: Option<Arc<Probe>>,
}

impl RowOp {
    /// Work done once when a query starts: reads the right side of a join.
    pub(crate) fn prepare(&mut self, ctx: &ExecContext) -> Result<()> {
        if let RowOp::Join(j) = self {
            let batches = crate::exec::parallel::collect_parallel(ctx, j.right.execute(ctx)?)?;
            let right = arrow::compute::concat_batches(&j.right.schema(), &batches)?;
            let mut res = ctx.reservation("streaming JOIN right side");
            res.resize(right.get_array_memory_size() * 2)?;
            // Charged for the query's whole life (the counter belongs to this query).
            std::mem::forget(res);
            let probe = Probe::streaming(
                right,
                &j.right_keys,
                j.left_keys.clone(),
                j.filter.clone(),
                j.kind,
                j.schema.clone(),
            )?;
            j.probe = Some(Arc::new(probe));
        }
        Ok(())
    }

    pub(crate) fn apply(&self, b: RecordBatch, wm: &mut Watermark) -> Result<RecordBatch> {
        match self {
            RowOp::Filter { pred, keep, schema } => {
                let m = pred.eval_array(&b)?;
                let m =
                    m.as_boolean_opt().ok_or_else(|| Error::Internal { message: "filter is not boolean".into() })?;
                filter::apply(&b, m, keep, schema)
            }
            RowOp::Project { exprs, schema } => project::project(&b, exprs, schema),
            RowOp::Window { time, spec, schema, drop_late } => {
                let b = if *drop_late {
                    let t = window::ticks(b.column(*time))?;
                    match wm.admit(&t) {
                        None => b,
                        Some(keep) => filter_record_batch(&b, &keep)?,
                    }
                } else {
                    b
                };
                window::assign(&b, *time, *spec, schema)
            }
            RowOp::Join(j) => {
                let probe = j
                    .probe
                    .as_ref()
                    .ok_or_else(|| Error::Internal { message: "streaming join not prepared".into() })?;
                let out = probe.run(&b, None)?;
                match out.len() {
                    0 => Ok(RecordBatch::new_empty(j.schema.clone())),
                    1 => Ok(out.into_iter().next().expect("one batch")),
                    _ => {
                        let schema = out[0].schema();
                        Ok(arrow::compute::concat_batches(&schema, &out)?)
                    }
                }
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            RowOp::Filter { pred, .. } => format!("Filter {pred}"),
            RowOp::Project { exprs, schema } => {
                let cols: Vec<String> = exprs
                    .iter()
                    .zip(schema.fields())
                    .map(
                        |(e, f)| {
                            if e.to_string() == *f.name() { f.name().clone() } else { format!("{e} AS {}", f.name()) }
                        },
                    )
                    .collect();
                format!("Project {}", cols.join(", "))
            }
            RowOp::Window { spec, drop_late, .. } => {
                format!("Window {spec}{}", if *drop_late { " (drops rows older than the watermark)" } else { "" })
            }
            RowOp::Join(j) => {
                let keys: Vec<String> =
                    j.left_keys.iter().zip(&j.right_keys).map(|(l, r)| format!("{l} = {r}")).collect();
                format!("StreamTableJoin {:?} on [{}] (right side read at start)", j.kind, keys.join(", "))
            }
        }
    }
}

/// Event-time progress: the greatest event time seen minus the delay, never below `floor`
/// (windows closed by a timeout raise it). Ticks of the window's time column.
#[derive(Debug, Clone)]
pub(crate) struct Watermark {
    max: Option<i64>,
    delay: i64,
    floor: i64,
    /// Rows dropped because they were older than the watermark.
    pub late_rows: u64,
}

impl Watermark {
    pub(crate) fn new(delay: i64) -> Self {
        Watermark { max: None, delay, floor: i64::MIN, late_rows: 0 }
    }

    /// The watermark; `None` before the first event.
    pub(crate) fn value(&self) -> Option<i64> {
        match self.max {
            None if self.floor == i64::MIN => None,
            None => Some(self.floor),
            Some(m) => Some(m.saturating_sub(self.delay).max(self.floor)),
        }
    }

    /// Raises the floor (windows up to `t` were closed).
    pub(crate) fn raise_floor(&mut self, t: i64) {
        self.floor = self.floor.max(t);
    }

    /// Advances over `t` row by row: a row is late when its time is below the watermark as it
    /// stood before that row. Returns the mask of rows to keep, or `None` when all are kept.
    /// NULL times are kept (they belong to no window and are dropped later).
    pub(crate) fn admit(&mut self, t: &Int64Array) -> Option<BooleanArray> {
        let mut keep: Option<Vec<bool>> = None;
        for i in 0..t.len() {
            if t.is_null(i) {
                continue;
            }
            let v = t.value(i);
            if let Some(w) = self.value()
                && v < w
            {
                self.late_rows += 1;
                keep.get_or_insert_with(|| vec![true; t.len()])[i] = false;
                continue;
            }
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
        keep.map(BooleanArray::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_drops_rows_older_than_max_minus_delay() {
        let mut w = Watermark::new(2);
        assert_eq!(w.value(), None);
        let keep = w.admit(&Int64Array::from(vec![Some(10), Some(9), Some(7), None, Some(12), Some(9)]));
        // 9 >= 10-2 kept, 7 < 8 late, 9 < 12-2 late.
        assert_eq!(keep.expect("test"), BooleanArray::from(vec![true, true, false, true, true, false]));
        assert_eq!(w.late_rows, 2);
        assert_eq!(w.value(), Some(10));
        w.raise_floor(20);
        assert_eq!(w.value(), Some(20));
        assert!(w.admit(&Int64Array::from(vec![25, 23])).is_none());
    }
}
