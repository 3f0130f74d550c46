//! The merger: a k-way merge of sorted parts into one new sorted part, optionally dropping rows
//! older than a TTL cutoff.
//!
//! Inputs are streamed batch by batch (memory is bounded by about one input batch per input
//! plus one output batch). Rows are compared on the sort key with `arrow::row` (one byte string
//! per row, compared with `memcmp`); runs of rows from the same input are found by binary
//! search and copied with `interleave`, so there is no per-row allocation. Ties keep the order of
//! the inputs (older first).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, Scalar};
use arrow::compute::kernels::boolean::or_kleene;
use arrow::compute::kernels::cmp::gt_eq;
use arrow::compute::{cast, filter_record_batch, interleave_record_batch, is_null};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use sluice_vfs::FileSystem;

use crate::stats::from_ms;
use crate::{Error, NewPart, Part, PartId, PartInfo, PartScan, PartWriter, Result, ScanOptions, WriterOptions};

/// Options of one merge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeOptions {
    /// Drop rows whose time column (or [`MergeOptions::ttl_column`]) is before this instant
    /// (ms since the epoch); rows with a null time are kept. `None` keeps every row.
    pub ttl_cutoff_ms: Option<i64>,
    /// The column the TTL cutoff applies to, when not the parts' time column.
    pub ttl_column: Option<String>,
    /// Rows per batch read from each input. Default 8 Ki.
    pub read_batch_rows: usize,
    /// Rows per batch handed to the writer. Default 64 Ki.
    pub output_batch_rows: usize,
    /// Keep only the latest row per key among the merged rows (versioned key-value data).
    pub dedup: Option<Dedup>,
}

/// Which row of a key survives a merge: the greatest `version`, on a tie the greatest `seq`
/// (the later arrival). Rows of older parts outside the merge are not looked at, so a row is
/// only dropped when a newer row of its key is in the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// Key columns.
    pub keys: Vec<String>,
    /// Version column.
    pub version: String,
    /// Arrival order column (an integer sequence number).
    pub seq: String,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            ttl_cutoff_ms: None,
            ttl_column: None,
            read_batch_rows: 8 * 1024,
            output_batch_rows: 64 * 1024,
            dedup: None,
        }
    }
}

impl MergeOptions {
    /// Sets [`MergeOptions::ttl_cutoff_ms`].
    pub fn ttl_cutoff_ms(mut self, cutoff: Option<i64>) -> Self {
        self.ttl_cutoff_ms = cutoff;
        self
    }

    /// Sets [`MergeOptions::ttl_column`].
    pub fn ttl_column(mut self, column: Option<String>) -> Self {
        self.ttl_column = column;
        self
    }

    /// Sets [`MergeOptions::dedup`].
    pub fn dedup(mut self, dedup: Option<Dedup>) -> Self {
        self.dedup = dedup;
        self
    }

    /// Sets [`MergeOptions::read_batch_rows`].
    pub fn read_batch_rows(mut self, rows: usize) -> Self {
        self.read_batch_rows = rows.max(1);
        self
    }

    /// Sets [`MergeOptions::output_batch_rows`].
    pub fn output_batch_rows(mut self, rows: usize) -> Self {
        self.output_batch_rows = rows.max(1);
        self
    }
}

/// One input: its scan, current batch and that batch's sort-key rows.
struct Cursor {
    scan: PartScan,
    batch: RecordBatch,
    rows: Rows,
    pos: usize,
    /// Index of `batch` in the staged batches of the current output window.
    slot: usize,
}

/// The winning (version, seq) per key of a deduplicating merge.
struct Winners {
    key_idx: Vec<usize>,
    ver_idx: usize,
    seq_idx: usize,
    key_conv: RowConverter,
    ver_conv: RowConverter,
    /// Per key (row encoding): the winning version (row encoding) and seq.
    best: HashMap<Box<[u8]>, Winner>,
}

/// A key's winning version (row encoding) and sequence number.
type Winner = (Box<[u8]>, i64);

impl Winners {
    /// Reads the key, version and seq columns of every input.
    fn collect(inputs: &[Part], schema: &SchemaRef, d: &Dedup) -> Result<Self> {
        let idx = |c: &String| schema.index_of(c).map_err(|_| Error::UnknownColumn { column: c.clone() });
        let key_idx = d.keys.iter().map(idx).collect::<Result<Vec<_>>>()?;
        let (ver_idx, seq_idx) = (idx(&d.version)?, idx(&d.seq)?);
        let field = |i: usize| SortField::new(schema.field(i).data_type().clone());
        let key_conv =
            RowConverter::new(key_idx.iter().map(|i| field(*i)).collect()).map_err(|e| Error::arrow("dedup key", e))?;
        let ver_conv = RowConverter::new(vec![field(ver_idx)]).map_err(|e| Error::arrow("dedup version", e))?;
        let mut w = Winners { key_idx, ver_idx, seq_idx, key_conv, ver_conv, best: HashMap::new() };
        let mut names: Vec<String> = d.keys.clone();
        names.push(d.version.clone());
        names.push(d.seq.clone());
        names.dedup();
        let opts = ScanOptions::default().projection(crate::Projection::names(names.clone()));
        for p in inputs {
            for b in p.scan(&opts)? {
                let b = b?;
                // The projected batch has the columns in the part's order: find them by name.
                let col =
                    |n: &String| b.column_by_name(n).cloned().ok_or_else(|| Error::UnknownColumn { column: n.clone() });
                let keys = d.keys.iter().map(col).collect::<Result<Vec<_>>>()?;
                let k = w.key_conv.convert_columns(&keys).map_err(|e| Error::arrow("dedup key", e))?;
                let v =
                    w.ver_conv.convert_columns(&[col(&d.version)?]).map_err(|e| Error::arrow("dedup version", e))?;
                let seq = cast(&col(&d.seq)?, &DataType::Int64).map_err(|e| Error::arrow("dedup seq", e))?;
                let seq = seq.as_any().downcast_ref::<Int64Array>().expect("int64");
                for r in 0..b.num_rows() {
                    let cand = (v.row(r), seq.value(r));
                    match w.best.get_mut(k.row(r).as_ref()) {
                        Some(e) if (cand.0.as_ref(), cand.1) > (e.0.as_ref(), e.1) => {
                            *e = (cand.0.as_ref().into(), cand.1);
                        }
                        Some(_) => {}
                        None => {
                            w.best.insert(k.row(r).as_ref().into(), (cand.0.as_ref().into(), cand.1));
                        }
                    }
                }
            }
        }
        Ok(w)
    }

    /// The rows of `batch` that are their key's winner.
    fn filter(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let err = |e| Error::arrow("deduplicating merged rows", e);
        let keys: Vec<ArrayRef> = self.key_idx.iter().map(|&i| batch.column(i).clone()).collect();
        let k = self.key_conv.convert_columns(&keys).map_err(err)?;
        let v = self.ver_conv.convert_columns(&[batch.column(self.ver_idx).clone()]).map_err(err)?;
        let seq = cast(batch.column(self.seq_idx), &DataType::Int64).map_err(err)?;
        let seq = seq.as_any().downcast_ref::<Int64Array>().expect("int64");
        let keep: arrow::array::BooleanArray = (0..batch.num_rows())
            .map(|r| {
                Some(
                    self.best
                        .get(k.row(r).as_ref())
                        .is_some_and(|(bv, bs)| bv.as_ref() == v.row(r).as_ref() && *bs == seq.value(r)),
                )
            })
            .collect();
        if keep.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        filter_record_batch(batch, &keep).map_err(err)
    }
}

/// The shared state of a merge.
struct Merge<'a> {
    converter: RowConverter,
    key_idx: Vec<usize>,
    ttl: Option<(usize, i64)>,
    winners: Option<Winners>,
    opts: &'a MergeOptions,
    /// Batches referenced by `indices`.
    staged: Vec<RecordBatch>,
    indices: Vec<(usize, usize)>,
    writer: PartWriter,
}

impl Merge<'_> {
    /// Next non-empty (after TTL filtering) batch of `scan`.
    /// `with_keys` also encodes the sort key.
    fn next_batch(&self, scan: &mut PartScan, with_keys: bool) -> Result<Option<(RecordBatch, Option<Rows>)>> {
        for batch in scan.by_ref() {
            let mut batch = batch?;
            if let Some((col, cutoff)) = self.ttl {
                batch = ttl_filter(&batch, col, cutoff)?;
            }
            if let Some(w) = &self.winners {
                batch = w.filter(&batch)?;
            }
            if batch.num_rows() == 0 {
                continue;
            }
            if !with_keys {
                return Ok(Some((batch, None)));
            }
            let keys: Vec<ArrayRef> = self.key_idx.iter().map(|&i| batch.column(i).clone()).collect();
            let rows = self.converter.convert_columns(&keys).map_err(|e| Error::arrow("encoding merge keys", e))?;
            return Ok(Some((batch, Some(rows))));
        }
        Ok(None)
    }

    fn advance(&mut self, c: &mut Cursor) -> Result<bool> {
        match self.next_batch(&mut c.scan, true)? {
            Some((batch, Some(rows))) => {
                self.staged.push(batch.clone());
                c.slot = self.staged.len() - 1;
                c.batch = batch;
                c.rows = rows;
                c.pos = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Writes the gathered rows as one batch and restarts the window with the cursors' batches.
    fn flush(&mut self, cursors: &mut [Cursor]) -> Result<()> {
        if self.indices.is_empty() {
            return Ok(());
        }
        let refs: Vec<&RecordBatch> = self.staged.iter().collect();
        let out =
            interleave_record_batch(&refs, &self.indices).map_err(|e| Error::arrow("assembling merged rows", e))?;
        self.writer.write(&out)?;
        self.indices.clear();
        self.staged.clear();
        for c in cursors.iter_mut() {
            self.staged.push(c.batch.clone());
            c.slot = self.staged.len() - 1;
        }
        Ok(())
    }
}

/// Keeps the rows whose time column is `>= cutoff` (in the column's unit) or null.
fn ttl_filter(batch: &RecordBatch, col: usize, cutoff: i64) -> Result<RecordBatch> {
    let err = |e| Error::arrow("applying the TTL cutoff", e);
    let ints = cast(batch.column(col), &DataType::Int64).map_err(err)?;
    let scalar = Scalar::new(Int64Array::from(vec![cutoff]));
    let keep = gt_eq(&ints, &scalar).map_err(err)?;
    let keep = or_kleene(&keep, &is_null(&ints).map_err(err)?).map_err(err)?;
    if keep.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    filter_record_batch(batch, &keep).map_err(err)
}

/// Merges the sorted parts `inputs` into a new part `id` in `dir`; its sequence range is the
/// union of theirs and its level one above the highest. The sort key and time column come from
/// `writer_opts`, or else from the first input. Returns `None` (and writes nothing) when no row
/// is left after the TTL cutoff. The caller commits the result and removes the inputs in one
/// [`crate::Edit`].
pub fn merge_parts(
    fs: Arc<dyn FileSystem>,
    dir: impl AsRef<Path>,
    id: PartId,
    inputs: &[Part],
    writer_opts: &WriterOptions,
    opts: &MergeOptions,
) -> Result<Option<PartInfo>> {
    let first = inputs.first().ok_or_else(|| Error::InvalidArgument("merge of no parts".into()))?;
    let schema: SchemaRef = first.schema();
    for p in inputs {
        if p.schema().fields() != schema.fields() {
            return Err(Error::InvalidArgument(format!(
                "cannot merge parts with different schemas ({} and {})",
                first.path().display(),
                p.path().display()
            )));
        }
    }
    let mut wopts = writer_opts.clone();
    if wopts.sort_key.is_empty() {
        wopts.sort_key = first.sort_key().to_vec();
    }
    if wopts.time_column.is_none() {
        wopts.time_column = first.time_column().map(str::to_owned);
    }
    let key_idx = wopts
        .sort_key
        .iter()
        .map(|k| schema.index_of(k).map_err(|_| Error::UnknownColumn { column: k.clone() }))
        .collect::<Result<Vec<_>>>()?;
    let ttl = match (opts.ttl_cutoff_ms, opts.ttl_column.as_ref().or(wopts.time_column.as_ref())) {
        (Some(ms), Some(t)) => {
            let i = schema.index_of(t).map_err(|_| Error::UnknownColumn { column: t.clone() })?;
            Some((i, from_ms(ms, schema.field(i).data_type())))
        }
        (Some(_), None) => {
            return Err(Error::InvalidArgument("a TTL cutoff needs a time column".into()));
        }
        _ => None,
    };
    let fields = key_idx.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
    let converter = RowConverter::new(fields).map_err(|e| Error::arrow("sort key", e))?;

    let seq = inputs.iter().map(|p| p.info().seq).reduce(|a, b| a.union(b)).unwrap_or(first.info().seq);
    let level = inputs.iter().map(|p| p.info().level).max().unwrap_or(0).saturating_add(1);
    let writer = PartWriter::create(fs, dir, NewPart { id, seq, level }, schema.clone(), &wopts)?;
    let winners = opts.dedup.as_ref().map(|d| Winners::collect(inputs, &schema, d)).transpose()?;
    let mut m = Merge {
        converter,
        key_idx,
        ttl,
        winners,
        opts,
        staged: Vec::new(),
        indices: Vec::with_capacity(opts.output_batch_rows),
        writer,
    };

    let scan_opts = ScanOptions::default().batch_size(opts.read_batch_rows);
    let mut cursors = Vec::with_capacity(inputs.len());
    for p in inputs {
        let mut scan = p.scan(&scan_opts)?;
        if let Some((batch, Some(rows))) = m.next_batch(&mut scan, true)? {
            m.staged.push(batch.clone());
            let slot = m.staged.len() - 1;
            cursors.push(Cursor { scan, batch, rows, pos: 0, slot });
        }
    }

    while cursors.len() > 1 {
        // The cursor with the smallest current row (ties: the earlier input) ...
        let mut best = 0;
        for i in 1..cursors.len() {
            if cursors[i].rows.row(cursors[i].pos) < cursors[best].rows.row(cursors[best].pos) {
                best = i;
            }
        }
        // ... emits every row up to the smallest current row of the others.
        let mut next = usize::MAX;
        for i in 0..cursors.len() {
            if i != best
                && (next == usize::MAX
                    || cursors[i].rows.row(cursors[i].pos) < cursors[next].rows.row(cursors[next].pos))
            {
                next = i;
            }
        }
        let c = &cursors[best];
        let bound = cursors[next].rows.row(cursors[next].pos);
        let inclusive = best < next;
        let n = c.rows.num_rows();
        // Rows are sorted within a batch: binary search for the end of the run.
        let (mut lo, mut hi) = (c.pos + 1, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = c.rows.row(mid);
            if r < bound || (inclusive && r == bound) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let room = m.opts.output_batch_rows - m.indices.len();
        let end = lo.min(c.pos + room);
        let slot = c.slot;
        m.indices.extend((c.pos..end).map(|r| (slot, r)));
        cursors[best].pos = end;
        if m.indices.len() >= m.opts.output_batch_rows {
            m.flush(&mut cursors)?;
        }
        if cursors[best].pos == n {
            let mut c = cursors.remove(best);
            if m.advance(&mut c)? {
                cursors.insert(best, c);
            }
        }
    }
    // One input left: copy the rest of it through, batch by batch.
    if let Some(mut c) = cursors.pop() {
        m.flush(std::slice::from_mut(&mut c))?;
        loop {
            let n = c.batch.num_rows();
            if c.pos < n {
                m.writer.write(&c.batch.slice(c.pos, n - c.pos))?;
            }
            match m.next_batch(&mut c.scan, false)? {
                Some((batch, _)) => {
                    c.batch = batch;
                    c.pos = 0;
                }
                None => break,
            }
        }
    }
    m.flush(&mut [])?;
    if m.writer.rows() == 0 {
        m.writer.abort();
        return Ok(None);
    }
    m.writer.finish().map(Some)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
    use sluice_vfs::Rng;

    use super::*;
    use crate::testutil::{Env, concat, event_schema, events};
    use crate::{ReadBackend, SeqRange, Stat, write_part};

    /// Sorted random parts; returns them with their batches (in input order).
    fn inputs(env: &Env, rng: &mut Rng, key: &[&str], k: usize) -> (Vec<Part>, Vec<RecordBatch>) {
        let schema = event_schema();
        let opts = WriterOptions::default()
            .sort_key(key.iter().copied())
            .time_column("_tp_time")
            .row_group_rows(700)
            .page_rows(100);
        let mut parts = Vec::new();
        let mut batches = Vec::new();
        let mut next_id = 0;
        for i in 0..k {
            let rows = rng.below(2500) as usize + 1;
            // Few distinct times so that keys repeat across and within parts.
            let t0 = 1_000 + rng.below(50) as i64;
            let b = events(rng, rows, t0, next_id);
            next_id += rows as u64;
            let cols: Vec<SortColumn> = key
                .iter()
                .map(|k| SortColumn { values: b.column_by_name(k).expect("key").clone(), options: None })
                .collect();
            let idx = lexsort_to_indices(&cols, None).expect("sort");
            let b = take_record_batch(&b, &idx).expect("take");
            let part = NewPart {
                id: PartId(i as u64 + 1),
                seq: SeqRange::new(i as u64 * 100, i as u64 * 100 + 50),
                level: i as u32 % 2,
            };
            let chunks: Vec<RecordBatch> = (0..rows).step_by(333).map(|s| b.slice(s, 333.min(rows - s))).collect();
            let info = write_part(env.fs.clone(), &env.dir, part, schema.clone(), &chunks, &opts).expect("write");
            parts.push(Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open"));
            batches.push(b);
        }
        (parts, batches)
    }

    /// The expected merge: all rows (optionally without expired ones), stably sorted by key.
    fn expected(batches: &[RecordBatch], key: &[&str], cutoff: Option<i64>) -> Vec<u64> {
        let all = concat(&event_schema(), batches);
        let keys: Vec<&dyn Array> = key.iter().map(|k| all.column_by_name(k).expect("key").as_ref()).collect();
        let times = all.column(0).as_primitive::<TimestampMillisecondType>();
        let ids = all.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>();
        let mut rows: Vec<usize> =
            (0..all.num_rows()).filter(|&r| cutoff.is_none_or(|c| times.value(r) >= c)).collect();
        let key_of = |r: usize| -> Vec<Option<Stat>> { keys.iter().map(|a| Stat::from_array(*a, r)).collect() };
        rows.sort_by(|&a, &b| {
            let (ka, kb) = (key_of(a), key_of(b));
            for (x, y) in ka.iter().zip(&kb) {
                let o = match (x, y) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => x.compare(y).expect("comparable keys"),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        rows.into_iter().map(|r| ids.value(r)).collect()
    }

    fn ids_of(part: &Part) -> Vec<u64> {
        part.read_all()
            .expect("read")
            .iter()
            .flat_map(|b| b.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn merging_equals_sorting_the_concatenation() {
        let keys: [&[&str]; 3] = [&["_tp_time"], &["device", "_tp_time"], &["kind", "n"]];
        for (round, key) in keys.iter().enumerate() {
            let envs =
                if round == 1 { vec![Env::sim(1), Env::real(ReadBackend::Mmap)] } else { vec![Env::sim(round as u64)] };
            for env in envs {
                let mut rng = Rng::new(round as u64);
                let k = rng.range(2, 6) as usize;
                let (parts, batches) = inputs(&env, &mut rng, key, k);
                let opts = MergeOptions::default()
                    .read_batch_rows(rng.range(1, 600) as usize)
                    .output_batch_rows(rng.range(1, 2000) as usize);
                let wopts = WriterOptions::default().row_group_rows(1500);
                let info = merge_parts(env.fs.clone(), &env.dir, PartId(99), &parts, &wopts, &opts)
                    .expect("merge")
                    .expect("rows left");
                let merged = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
                assert_eq!(merged.sort_key(), key.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                assert_eq!(ids_of(&merged), expected(&batches, key, None), "key {key:?}");
                assert_eq!(info.level, 2);
                assert_eq!(info.seq, SeqRange::new(0, (k as u64 - 1) * 100 + 50));
                let total: u64 = parts.iter().map(|p| p.info().rows).sum();
                assert_eq!(info.rows, total);
                // Whole rows, not just ids, come through.
                let all = concat(&event_schema(), &batches);
                let got = concat(&merged.schema(), &merged.read_all().expect("read"));
                let all_ids = all.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().clone();
                let mut pos = vec![0u64; all.num_rows()];
                for (p, id) in all_ids.values().iter().enumerate() {
                    pos[*id as usize] = p as u64;
                }
                let got_ids = got.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().clone();
                let order: arrow::array::UInt64Array =
                    got_ids.values().iter().map(|id| pos[*id as usize]).collect::<Vec<_>>().into();
                let by_id = take_record_batch(&all, &order).expect("take");
                for c in 0..got.num_columns() {
                    assert_eq!(got.column(c), by_id.column(c), "column {c}");
                }
            }
        }
    }

    #[test]
    fn ttl_drops_expired_rows_and_may_empty_the_output() {
        let env = Env::sim(20);
        let mut rng = Rng::new(20);
        let key = ["_tp_time"];
        let (parts, batches) = inputs(&env, &mut rng, &key, 3);
        let cutoff = 1_000 + 600;
        let opts = MergeOptions::default().ttl_cutoff_ms(Some(cutoff)).read_batch_rows(100);
        let info = merge_parts(env.fs.clone(), &env.dir, PartId(50), &parts, &WriterOptions::default(), &opts)
            .expect("merge")
            .expect("rows left");
        let merged = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
        assert_eq!(ids_of(&merged), expected(&batches, &key, Some(cutoff)));
        assert!(info.time.is_some_and(|t| t.min_ms >= cutoff));
        let before = env.fs.list_dir(&env.dir).expect("ls");
        let all_gone = MergeOptions::default().ttl_cutoff_ms(Some(i64::MAX));
        let out = merge_parts(env.fs.clone(), &env.dir, PartId(51), &parts, &WriterOptions::default(), &all_gone)
            .expect("merge");
        assert!(out.is_none());
        assert_eq!(env.fs.list_dir(&env.dir).expect("ls"), before, "nothing written");
    }

    #[test]
    fn mismatched_inputs_are_rejected() {
        let env = Env::sim(21);
        let mut rng = Rng::new(21);
        let (mut parts, _) = inputs(&env, &mut rng, &["_tp_time"], 1);
        let other = crate::testutil::all_types(&mut rng, 10);
        let info = write_part(
            env.fs.clone(),
            &env.dir,
            NewPart { id: PartId(40), seq: SeqRange::new(0, 0), level: 0 },
            other.schema(),
            &[other],
            &WriterOptions::default(),
        )
        .expect("write");
        parts.push(Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open"));
        let r = merge_parts(
            env.fs.clone(),
            &env.dir,
            PartId(41),
            &parts,
            &WriterOptions::default(),
            &MergeOptions::default(),
        );
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
        let r =
            merge_parts(env.fs.clone(), &env.dir, PartId(41), &[], &WriterOptions::default(), &MergeOptions::default());
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }
}
