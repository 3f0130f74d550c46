//! Hash aggregation: each worker aggregates the partitions it pulls into its own partial state
//! (group keys + accumulators); the partial states are then merged and finished. Quantile calls
//! over the same argument share one state. The state is charged to the query's memory limit.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::{filter, prep_null_mask_filter};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::group_keys::GroupKeys;
use super::parallel::fold_parallel;
use super::{ExecNode, LazyPart, PartStream, chunks};
use crate::aggregate::{self, Accumulator, AggCall};
use crate::context::{ExecContext, MemoryReservation};
use crate::error::{Error, Result};
use crate::expr::BExpr;

/// GROUP BY / aggregates / DISTINCT.
#[derive(Debug)]
pub struct HashAggExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Group key expressions over the input.
    pub groups: Vec<BExpr>,
    /// Aggregate calls over the input.
    pub aggs: Vec<AggCall>,
    /// Output: groups, then aggregates.
    pub schema: SchemaRef,
}

/// Which calls share each accumulator.
fn state_groups(aggs: &[AggCall]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, a) in aggs.iter().enumerate() {
        match out.iter_mut().find(|g| aggregate::shares_state(&aggs[g[0]], a)) {
            Some(g) => g.push(i),
            None => out.push(vec![i]),
        }
    }
    out
}

struct Partial {
    keys: GroupKeys,
    accs: Vec<Box<dyn Accumulator>>,
    gids: Vec<u32>,
    batches: usize,
    reservation: MemoryReservation,
}

impl Partial {
    fn new(node: &HashAggExec, states: &[Vec<usize>], ctx: &ExecContext) -> Result<Self> {
        let types: Vec<_> = node.groups.iter().map(BExpr::data_type).collect();
        let accs = states
            .iter()
            .map(|g| {
                let calls: Vec<&AggCall> = g.iter().map(|i| &node.aggs[*i]).collect();
                aggregate::create(&calls, ctx.threads)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Partial {
            keys: GroupKeys::new(&types)?,
            accs,
            gids: Vec::new(),
            batches: 0,
            reservation: ctx.reservation("GROUP BY state"),
        })
    }

    fn update(&mut self, node: &HashAggExec, states: &[Vec<usize>], b: &RecordBatch) -> Result<()> {
        let rows = b.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = node.groups.iter().map(|g| g.eval_array(b)).collect::<Result<Vec<_>>>()?;
        self.keys.intern(&keys, rows, &mut self.gids)?;
        let n = self.keys.len();
        for (acc, g) in self.accs.iter_mut().zip(states) {
            let call = &node.aggs[g[0]];
            let mut args = call.args.iter().map(|a| a.eval_array(b)).collect::<Result<Vec<_>>>()?;
            match &call.filter {
                None => acc.update(&args, &self.gids, n)?,
                Some(f) => {
                    let m = f.eval_array(b)?;
                    let m = m
                        .as_boolean_opt()
                        .ok_or_else(|| Error::Internal { message: "aggregate filter is not boolean".into() })?;
                    let m: BooleanArray = if m.null_count() > 0 { prep_null_mask_filter(m) } else { m.clone() };
                    for a in args.iter_mut() {
                        *a = filter(a.as_ref(), &m)?;
                    }
                    let gids: Vec<u32> =
                        self.gids.iter().zip(m.values().iter()).filter(|(_, k)| *k).map(|(g, _)| *g).collect();
                    acc.update(&args, &gids, n)?;
                }
            }
        }
        self.batches += 1;
        if self.batches % 8 == 1 {
            let size = self.keys.size() + self.accs.iter().map(|a| a.size()).sum::<usize>() + self.gids.capacity() * 4;
            self.reservation.resize(size)?;
        }
        Ok(())
    }

    fn merge(&mut self, other: Partial) -> Result<()> {
        let keys = other.keys.arrays()?;
        let rows = other.keys.len();
        let mut map = Vec::new();
        self.keys.intern(&keys, rows, &mut map)?;
        let n = self.keys.len();
        for (a, b) in self.accs.iter_mut().zip(other.accs) {
            a.merge(b, &map, n)?;
        }
        let size = self.keys.size() + self.accs.iter().map(|a| a.size()).sum::<usize>();
        self.reservation.resize(size)
    }
}

impl HashAggExec {
    fn run(&self, ctx: &ExecContext) -> Result<Vec<RecordBatch>> {
        let states = state_groups(&self.aggs);
        let parts = self.input.execute(ctx)?;
        let partials =
            fold_parallel(ctx, parts, &|| Partial::new(self, &states, ctx), &|p: &mut Partial, b: RecordBatch| {
                p.update(self, &states, &b)
            })?;
        let mut it = partials.into_iter();
        let mut acc = match it.next() {
            Some(p) => p,
            None => Partial::new(self, &states, ctx)?,
        };
        for p in it {
            ctx.check_cancelled()?;
            acc.merge(p)?;
        }
        let n = acc.keys.len();
        let mut cols: Vec<Option<ArrayRef>> = vec![None; self.groups.len() + self.aggs.len()];
        for (i, k) in acc.keys.arrays()?.into_iter().enumerate() {
            cols[i] = Some(k);
        }
        for (a, g) in acc.accs.iter_mut().zip(&states) {
            let outs = a.finish(n)?;
            for (o, i) in outs.into_iter().zip(g) {
                cols[self.groups.len() + i] = Some(o);
            }
        }
        let fields = self.schema.fields();
        let cols = cols
            .into_iter()
            .zip(fields.iter())
            .map(|(c, f)| {
                let c = c.ok_or_else(|| Error::Internal { message: "missing aggregate output".into() })?;
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    crate::functions::cast::cast_array(&c, f.data_type())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = relax(&self.schema, &cols);
        let batch =
            RecordBatch::try_new_with_options(schema, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?;
        Ok(chunks(batch, 65_536))
    }
}

/// The schema with fields made nullable where the data has NULLs the plan did not expect.
pub fn relax(schema: &SchemaRef, cols: &[ArrayRef]) -> SchemaRef {
    if schema.fields().iter().zip(cols).all(|(f, c)| f.is_nullable() || c.null_count() == 0) {
        return schema.clone();
    }
    Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .zip(cols)
            .map(|(f, c)| f.as_ref().clone().with_nullable(f.is_nullable() || c.null_count() > 0))
            .collect::<Vec<_>>(),
    ))
}

impl ExecNode for HashAggExec {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let me = HashAggExec {
            input: self.input.clone(),
            groups: self.groups.clone(),
            aggs: self.aggs.clone(),
            schema: self.schema.clone(),
        };
        let ctx = ctx.clone();
        Ok(vec![Box::new(move || {
            let out = me.run(&ctx)?;
            Ok(Box::new(out.into_iter().map(Ok)) as PartStream)
        })])
    }

    fn describe(&self) -> String {
        let g: Vec<String> = self.groups.iter().map(|g| g.to_string()).collect();
        let a: Vec<String> = self.aggs.iter().map(|a| a.to_string()).collect();
        format!("HashAggregate groups=[{}] aggs=[{}]", g.join(", "), a.join(", "))
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}
