//! Window assignment (`tumble`, `hop`): adds `window_start` and `window_end` to each row.
//! Windows are left-closed, right-open and aligned to the epoch, as Proton aligns them: a row
//! at time `t` falls into the tumble window starting at `floor(t / size) * size`, and into every
//! hop window `[k * slide, k * slide + size)` holding `t` (a row is repeated once per window).
//! Rows whose time is NULL belong to no window and are left out.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::{ExecNode, LazyPart, map_parts};
use crate::context::ExecContext;
use crate::error::{Error, Result};
use crate::logical::WindowSpec;

/// `tumble(...)` / `hop(...)` over a bounded input.
#[derive(Debug)]
pub struct WindowExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Sizes, in ticks of the time column.
    pub spec: WindowSpec,
    /// Position of the time column in the input.
    pub time: usize,
    /// Input columns, then `window_start`, `window_end`.
    pub schema: SchemaRef,
}

/// The time column as ticks of its own unit.
pub fn ticks(a: &ArrayRef) -> Result<Int64Array> {
    match a.data_type() {
        DataType::Timestamp(..) => Ok(arrow::compute::cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone()),
        other => Err(Error::Execution { message: format!("window time column has type {other}, not a timestamp") }),
    }
}

/// Adds the window columns of `spec` to `b` (time column at `time`), as a batch of `schema`.
pub fn assign(b: &RecordBatch, time: usize, spec: WindowSpec, schema: &SchemaRef) -> Result<RecordBatch> {
    let t = ticks(b.column(time))?;
    let ty = b.column(time).data_type().clone();
    let (rows, starts): (Option<UInt32Array>, Vec<i64>) = match spec {
        WindowSpec::Tumble { size } => {
            if t.null_count() == 0 {
                (None, t.values().iter().map(|v| v.div_euclid(size) * size).collect())
            } else {
                let mut idx = Vec::with_capacity(t.len());
                let mut starts = Vec::with_capacity(t.len());
                for (i, v) in t.iter().enumerate() {
                    if let Some(v) = v {
                        idx.push(i as u32);
                        starts.push(v.div_euclid(size) * size);
                    }
                }
                (Some(UInt32Array::from(idx)), starts)
            }
        }
        WindowSpec::Hop { slide, size } => {
            let per_row = (size + slide - 1) / slide;
            let mut idx = Vec::with_capacity(t.len() * per_row as usize);
            let mut starts = Vec::with_capacity(t.len() * per_row as usize);
            for (i, v) in t.iter().enumerate() {
                let Some(v) = v else { continue };
                let last = v.div_euclid(slide) * slide;
                // Earliest window first.
                for j in (0..per_row).rev() {
                    let s = last - j * slide;
                    if s + size > v {
                        idx.push(i as u32);
                        starts.push(s);
                    }
                }
            }
            (Some(UInt32Array::from(idx)), starts)
        }
        // A row's session is decided by the aggregation; until then both bounds are its time.
        WindowSpec::Session { .. } => {
            let idx: Vec<u32> = (0..t.len() as u32).filter(|i| t.is_valid(*i as usize)).collect();
            let starts = idx.iter().map(|i| t.value(*i as usize)).collect();
            let rows = (idx.len() < t.len()).then(|| UInt32Array::from(idx));
            (rows, starts)
        }
    };
    let base = match &rows {
        None => b.clone(),
        Some(idx) => take_record_batch(b, idx)?,
    };
    let size = if matches!(spec, WindowSpec::Session { .. }) { 0 } else { spec.size() };
    let ends: Int64Array = starts.iter().map(|s| s + size).collect();
    let starts = Int64Array::from(starts);
    let mut cols = base.columns().to_vec();
    cols.push(arrow::compute::cast(&starts, &ty)?);
    cols.push(arrow::compute::cast(&ends, &ty)?);
    let n = base.num_rows();
    Ok(RecordBatch::try_new_with_options(schema.clone(), cols, &RecordBatchOptions::new().with_row_count(Some(n)))?)
}

impl ExecNode for WindowExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let parts = self.input.execute(ctx)?;
        let (spec, time, schema) = (self.spec, self.time, self.schema.clone());
        Ok(map_parts(parts, Arc::new(move |b: RecordBatch| Ok(Some(assign(&b, time, spec, &schema)?)))))
    }

    fn describe(&self) -> String {
        format!("Window {} time=#{}", self.spec, self.time)
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMillisecondArray;
    use arrow::datatypes::{Field, Schema, TimeUnit};

    fn batch(ts: Vec<Option<i64>>) -> RecordBatch {
        let ty = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let a = TimestampMillisecondArray::from(ts).with_timezone("UTC");
        RecordBatch::try_new(Arc::new(Schema::new(vec![Field::new("t", ty, true)])), vec![Arc::new(a)]).expect("test")
    }

    fn out_schema() -> SchemaRef {
        let ty = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("t", ty.clone(), true),
            Field::new("window_start", ty.clone(), false),
            Field::new("window_end", ty, false),
        ]))
    }

    fn col(b: &RecordBatch, i: usize) -> Vec<i64> {
        ticks(b.column(i)).expect("test").values().to_vec()
    }

    #[test]
    fn tumble_aligns_to_the_epoch_and_is_left_closed() {
        let b = batch(vec![Some(0), Some(4_999), Some(5_000), Some(-1), None]);
        let out = assign(&b, 0, WindowSpec::Tumble { size: 5_000 }, &out_schema()).expect("test");
        assert_eq!(col(&out, 0), [0, 4_999, 5_000, -1]);
        assert_eq!(col(&out, 1), [0, 0, 5_000, -5_000]);
        assert_eq!(col(&out, 2), [5_000, 5_000, 10_000, 0]);
    }

    #[test]
    fn hop_repeats_rows_per_window() {
        let b = batch(vec![Some(7_000), Some(10_000)]);
        let out = assign(&b, 0, WindowSpec::Hop { slide: 2_000, size: 5_000 }, &out_schema()).expect("test");
        // 7s is in [4,9), [6,11); 10s in [6,11), [8,13), [10,15).
        assert_eq!(col(&out, 0), [7_000, 7_000, 10_000, 10_000, 10_000]);
        assert_eq!(col(&out, 1), [4_000, 6_000, 6_000, 8_000, 10_000]);
        assert_eq!(col(&out, 2), [9_000, 11_000, 11_000, 13_000, 15_000]);
    }
}
