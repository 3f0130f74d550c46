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

/// What an aggregation computes: group keys and calls over its input, physical (column
/// positions), and which calls share one accumulator.
#[derive(Debug, Clone)]
pub(crate) struct AggSpec {
    /// Group key expressions.
    pub groups: Vec<BExpr>,
    /// Aggregate calls.
    pub aggs: Vec<AggCall>,
    /// Indexes of `aggs` sharing each accumulator.
    states: Vec<Vec<usize>>,
    /// Rows may be taken back ([`AggState::retract`]): retractable accumulators, one per call.
    retractable: bool,
}

impl AggSpec {
    pub(crate) fn new(groups: Vec<BExpr>, aggs: Vec<AggCall>) -> Self {
        let states = state_groups(&aggs);
        AggSpec { groups, aggs, states, retractable: false }
    }

    /// An aggregation over rows that change (every call must support retraction).
    pub(crate) fn retractable(groups: Vec<BExpr>, aggs: Vec<AggCall>) -> Result<Self> {
        for a in &aggs {
            aggregate::retract::create(a)?;
        }
        let states = (0..aggs.len()).map(|i| vec![i]).collect();
        Ok(AggSpec { groups, aggs, states, retractable: true })
    }
}

/// Group keys and accumulators of one aggregation (a worker's partial state, a streaming
/// window's state). Group ids are dense and stable: new groups get the next id.
pub(crate) struct AggState {
    pub(crate) keys: GroupKeys,
    accs: Vec<Box<dyn Accumulator>>,
    /// The group id of each row of the last update.
    pub(crate) gids: Vec<u32>,
    batches: usize,
    reservation: MemoryReservation,
}

impl AggState {
    pub(crate) fn new(spec: &AggSpec, threads: usize, reservation: MemoryReservation) -> Result<Self> {
        let types: Vec<_> = spec.groups.iter().map(BExpr::data_type).collect();
        let accs = spec
            .states
            .iter()
            .map(|g| {
                if spec.retractable {
                    return aggregate::retract::create(&spec.aggs[g[0]]);
                }
                let calls: Vec<&AggCall> = g.iter().map(|i| &spec.aggs[*i]).collect();
                aggregate::create(&calls, threads)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AggState { keys: GroupKeys::new(&types)?, accs, gids: Vec::new(), batches: 0, reservation })
    }

    /// Number of groups.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn update(&mut self, spec: &AggSpec, b: &RecordBatch) -> Result<()> {
        self.add(spec, b, false)
    }

    /// Takes the rows of `b` back (their groups stay; a group's net row count is the caller's).
    pub(crate) fn retract(&mut self, spec: &AggSpec, b: &RecordBatch) -> Result<()> {
        self.add(spec, b, true)
    }

    fn add(&mut self, spec: &AggSpec, b: &RecordBatch, retract: bool) -> Result<()> {
        let rows = b.num_rows();
        if rows == 0 {
            self.gids.clear();
            return Ok(());
        }
        let keys = spec.groups.iter().map(|g| g.eval_array(b)).collect::<Result<Vec<_>>>()?;
        self.keys.intern(&keys, rows, &mut self.gids)?;
        let n = self.keys.len();
        for (acc, g) in self.accs.iter_mut().zip(&spec.states) {
            let call = &spec.aggs[g[0]];
            let mut args = call.args.iter().map(|a| a.eval_array(b)).collect::<Result<Vec<_>>>()?;
            match &call.filter {
                None if retract => acc.retract(&args, &self.gids, n)?,
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
                    if retract {
                        acc.retract(&args, &gids, n)?;
                    } else {
                        acc.update(&args, &gids, n)?;
                    }
                }
            }
        }
        self.batches += 1;
        if self.batches % 8 == 1 {
            self.reservation.resize(self.size())?;
        }
        Ok(())
    }

    /// The whole state as one batch (group keys, then each accumulator's columns; the layout
    /// in the schema metadata), or `None` when an accumulator cannot save its state.
    pub(crate) fn save(&self) -> Option<RecordBatch> {
        let n = self.keys.len();
        let mut cols = self.keys.arrays().ok()?;
        let mut layout = vec![n.to_string(), cols.len().to_string()];
        for a in &self.accs {
            let s = a.save(n)?;
            layout.push(s.len().to_string());
            cols.extend(s);
        }
        let fields: Vec<arrow::datatypes::Field> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| arrow::datatypes::Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        let schema = arrow::datatypes::Schema::new(fields)
            .with_metadata(std::collections::HashMap::from([("sluice.agg_state".to_string(), layout.join(","))]));
        RecordBatch::try_new_with_options(Arc::new(schema), cols, &RecordBatchOptions::new().with_row_count(Some(n)))
            .ok()
    }

    /// Restores a state [`AggState::save`] produced into this fresh state.
    pub(crate) fn load(&mut self, b: &RecordBatch) -> Result<()> {
        let bad = || Error::Internal { message: "saved aggregation state does not match the query".into() };
        let layout: Vec<usize> = b
            .schema()
            .metadata()
            .get("sluice.agg_state")
            .ok_or_else(bad)?
            .split(',')
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let (n, nk) = (*layout.first().ok_or_else(bad)?, *layout.get(1).ok_or_else(bad)?);
        if layout.len() != 2 + self.accs.len() || b.num_columns() != nk + layout[2..].iter().sum::<usize>() {
            return Err(bad());
        }
        let mut gids = Vec::new();
        self.keys.intern(&b.columns()[..nk], n, &mut gids)?;
        if self.keys.len() != n {
            return Err(bad());
        }
        let mut at = nk;
        for (acc, width) in self.accs.iter_mut().zip(&layout[2..]) {
            acc.load(&b.columns()[at..at + width])?;
            at += width;
        }
        Ok(())
    }

    /// Approximate heap bytes held.
    pub(crate) fn size(&self) -> usize {
        self.keys.size() + self.accs.iter().map(|a| a.size()).sum::<usize>() + self.gids.capacity() * 4
    }

    fn merge(&mut self, other: AggState) -> Result<()> {
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

    /// The results: group key columns, then one column per aggregate call, one row per group.
    /// `keep` leaves the state usable (streaming emits partial results); otherwise the
    /// accumulators may be consumed.
    pub(crate) fn finish(&mut self, spec: &AggSpec, keep: bool) -> Result<Vec<ArrayRef>> {
        let n = self.keys.len();
        let mut cols: Vec<Option<ArrayRef>> = vec![None; spec.groups.len() + spec.aggs.len()];
        for (i, k) in self.keys.arrays()?.into_iter().enumerate() {
            cols[i] = Some(k);
        }
        for (a, g) in self.accs.iter_mut().zip(&spec.states) {
            let outs = if keep { a.boxed_clone().finish(n)? } else { a.finish(n)? };
            for (o, i) in outs.into_iter().zip(g) {
                cols[spec.groups.len() + i] = Some(o);
            }
        }
        cols.into_iter()
            .map(|c| c.ok_or_else(|| Error::Internal { message: "missing aggregate output".into() }))
            .collect()
    }
}

impl HashAggExec {
    fn run(&self, ctx: &ExecContext) -> Result<Vec<RecordBatch>> {
        let spec = AggSpec::new(self.groups.clone(), self.aggs.clone());
        let parts = self.input.execute(ctx)?;
        let new = || AggState::new(&spec, ctx.threads, ctx.reservation("GROUP BY state"));
        let partials = fold_parallel(ctx, parts, &new, &|p: &mut AggState, b: RecordBatch| p.update(&spec, &b))?;
        let mut it = partials.into_iter();
        let mut acc = match it.next() {
            Some(p) => p,
            None => new()?,
        };
        for p in it {
            ctx.check_cancelled()?;
            acc.merge(p)?;
        }
        let n = acc.len();
        let cols = conform(acc.finish(&spec, false)?, &self.schema)?;
        let schema = relax(&self.schema, &cols);
        let batch =
            RecordBatch::try_new_with_options(schema, cols, &RecordBatchOptions::new().with_row_count(Some(n)))?;
        Ok(chunks(batch, 65_536))
    }
}

/// Casts result columns to the types the plan promised.
pub(crate) fn conform(cols: Vec<ArrayRef>, schema: &SchemaRef) -> Result<Vec<ArrayRef>> {
    cols.into_iter()
        .zip(schema.fields().iter())
        .map(
            |(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    crate::functions::cast::cast_array(&c, f.data_type())
                }
            },
        )
        .collect()
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
