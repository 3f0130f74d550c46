//! The part reader: open a part file, check it, plan and run pruned, projected scans.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use sluice_vfs::FileSystem;

use crate::cache::{ColumnCache, next_part_uid};
use crate::checksum::BlockTable;
use crate::part_meta::{KEY_CRC, KEY_PART, PartMeta};
use crate::prune::{ScanPlan, plan};
use crate::source::{PartSource, SourceError};
use crate::stats::{column_stats, time_range};
use crate::{Error, PartHandle, PartInfo, Predicate, Projection, ReadBackend, Result, ScanOptions};

/// An open, checked part. Cheap to clone; scans may run concurrently.
#[derive(Clone)]
pub struct Part {
    inner: Arc<Inner>,
}

struct Inner {
    source: PartSource,
    meta: ArrowReaderMetadata,
    info: PartInfo,
    part_meta: PartMeta,
    backend: ReadBackend,
    /// Decoded row-group columns shared with other parts, keyed by `uid`.
    cache: Option<Arc<ColumnCache>>,
    uid: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = &self.cache {
            c.evict_part(self.uid);
        }
    }
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("path", &self.inner.source.path())
            .field("backend", &self.inner.backend)
            .field("id", &self.inner.info.id)
            .field("rows", &self.inner.info.rows)
            .finish()
    }
}

/// Runs `f`, turning a panic inside a decoder into [`Error::Corrupted`].
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::corrupted(path, None, format!("decoder failed: {msg}")))
        }
    }
}

/// Turns a failure reported by parquet into our error, preferring what the source recorded.
fn read_error(source: &PartSource, e: impl fmt::Display) -> Error {
    match source.take_error() {
        Some(SourceError::Io(io)) => Error::io("read", source.path(), io),
        Some(SourceError::Corrupted { offset, reason }) => Error::corrupted(source.path(), Some(offset), reason),
        None => Error::corrupted(source.path(), None, e.to_string()),
    }
}

impl Part {
    /// Opens and checks the part at `path`. The footer and page index are parsed and checked
    /// for consistency; data pages are checked against their block checksums when first read.
    /// `fs` is used by [`ReadBackend::Pread`]; [`ReadBackend::Mmap`] maps the real file.
    pub fn open(fs: &dyn FileSystem, path: impl AsRef<Path>, backend: ReadBackend) -> Result<Part> {
        Self::open_inner(fs, path.as_ref(), backend, None, None)
    }

    /// Opens a part the manifest describes as `expected`: additionally checks the file size and
    /// the checksum of the page index and footer *before* parsing them, and that the part is the
    /// one expected. Every byte of the file is then covered by a checksum.
    pub fn open_expecting(
        fs: &dyn FileSystem,
        path: impl AsRef<Path>,
        backend: ReadBackend,
        expected: &PartInfo,
    ) -> Result<Part> {
        Self::open_inner(fs, path.as_ref(), backend, Some(expected), None)
    }

    /// [`Part::open_expecting`], with scans that ask for it ([`ScanOptions::use_cache`]) going
    /// through `cache`.
    pub fn open_cached(
        fs: &dyn FileSystem,
        path: impl AsRef<Path>,
        backend: ReadBackend,
        expected: &PartInfo,
        cache: Option<Arc<ColumnCache>>,
    ) -> Result<Part> {
        Self::open_inner(fs, path.as_ref(), backend, Some(expected), cache)
    }

    fn open_inner(
        fs: &dyn FileSystem,
        path: &Path,
        backend: ReadBackend,
        expected: Option<&PartInfo>,
        cache: Option<Arc<ColumnCache>>,
    ) -> Result<Part> {
        let raw = PartSource::open(fs, path, backend)?;
        guard(path, || Self::open_checked(raw, backend, expected, cache))
    }

    fn open_checked(
        raw: PartSource,
        backend: ReadBackend,
        expected: Option<&PartInfo>,
        cache: Option<Arc<ColumnCache>>,
    ) -> Result<Part> {
        let path = raw.path().to_path_buf();
        let len = raw.file_len();
        let corrupted = |offset: Option<u64>, reason: String| Error::corrupted(&path, offset, reason);
        let mut tail_crc = None;
        if let Some(exp) = expected {
            if len != exp.file_bytes {
                return Err(corrupted(None, format!("file is {len} bytes, the manifest says {}", exp.file_bytes)));
            }
            if exp.data_bytes > len {
                return Err(corrupted(None, "manifest data size exceeds the file".into()));
            }
            let tail = raw.read_raw(exp.data_bytes, len).map_err(|e| read_error(&raw, e))?;
            let crc = crc32c::crc32c(&tail);
            if crc != exp.tail_crc {
                return Err(corrupted(
                    Some(exp.data_bytes),
                    format!("page index / footer checksum mismatch: manifest {:08x}, file {crc:08x}", exp.tail_crc),
                ));
            }
            tail_crc = Some(crc);
        }
        if len < 12 {
            return Err(corrupted(None, format!("{len} bytes is too short for a Parquet file")));
        }
        let head = raw.read_raw(0, 4).map_err(|e| read_error(&raw, e))?;
        if &head[..] != b"PAR1" {
            return Err(corrupted(Some(0), "missing Parquet magic at the start".into()));
        }
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&raw, options.clone()).map_err(|e| read_error(&raw, e))?;
        // Our footer keys are not part of the data's schema: keep them out of scanned batches.
        let mut fields_meta = meta.schema().metadata().clone();
        fields_meta.retain(|k, _| !k.starts_with("sluice."));
        let clean = Arc::new(meta.schema().as_ref().clone().with_metadata(fields_meta));
        let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options.with_schema(clean))
            .map_err(|e| read_error(&raw, e))?;
        let kv = meta.metadata().file_metadata().key_value_metadata();
        let find = |key: &str| kv.and_then(|kv| kv.iter().find(|e| e.key == key)).and_then(|e| e.value.as_deref());
        let part_text =
            find(KEY_PART).ok_or_else(|| corrupted(None, format!("not a sluice part: no '{KEY_PART}' metadata")))?;
        let pm = PartMeta::decode(part_text).map_err(|r| corrupted(None, format!("bad '{KEY_PART}' metadata: {r}")))?;
        if pm.data_bytes < 4 || pm.data_bytes > len {
            return Err(corrupted(None, format!("data size {} outside the file", pm.data_bytes)));
        }
        let table = BlockTable::decode(pm.crc_block, pm.data_bytes, find(KEY_CRC).unwrap_or(""))
            .map_err(|r| corrupted(None, format!("bad '{KEY_CRC}' metadata: {r}")))?;
        validate_layout(meta.metadata(), &pm).map_err(|(o, r)| corrupted(o, r))?;

        let tail_crc = match tail_crc {
            Some(c) => c,
            None => crc32c::crc32c(&raw.read_raw(pm.data_bytes, len).map_err(|e| read_error(&raw, e))?),
        };
        let rgs = meta.metadata().row_groups();
        let schema = meta.schema().clone();
        let columns = column_stats(&schema, meta.metadata().file_metadata().schema_descr(), rgs);
        let time = time_range(&schema, &columns, pm.time_column.as_deref());
        let mut info = PartInfo {
            id: pm.id,
            level: pm.level,
            rows: pm.rows,
            file_bytes: len,
            data_bytes: pm.data_bytes,
            tail_crc,
            seq: pm.seq,
            time,
            columns,
        };
        if let Some(exp) = expected {
            if (exp.id, exp.rows, exp.seq, exp.level, exp.data_bytes)
                != (info.id, info.rows, info.seq, info.level, info.data_bytes)
            {
                return Err(corrupted(
                    None,
                    format!(
                        "part file describes part {} ({} rows, seq {}), the manifest part {} ({} rows, seq {})",
                        info.id, info.rows, info.seq, exp.id, exp.rows, exp.seq
                    ),
                ));
            }
            info = exp.clone();
        }
        let source = raw.with_table(table);
        let cache = cache.filter(|c| c.capacity() > 0);
        Ok(Part { inner: Arc::new(Inner { source, meta, info, part_meta: pm, backend, cache, uid: next_part_uid() }) })
    }

    /// What the part holds (rebuilt from the file, or the manifest's record when opened with
    /// [`Part::open_expecting`]).
    pub fn info(&self) -> &PartInfo {
        &self.inner.info
    }

    /// The Arrow schema of the part.
    pub fn schema(&self) -> SchemaRef {
        self.inner.meta.schema().clone()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.inner.source.path()
    }

    /// The backend the part was opened with.
    pub fn backend(&self) -> ReadBackend {
        self.inner.backend
    }

    /// The sort key recorded by the writer.
    pub fn sort_key(&self) -> &[String] {
        &self.inner.part_meta.sort_key
    }

    /// The time column recorded by the writer.
    pub fn time_column(&self) -> Option<&str> {
        self.inner.part_meta.time_column.as_deref()
    }

    /// Number of row groups.
    pub fn num_row_groups(&self) -> usize {
        self.inner.meta.metadata().num_row_groups()
    }

    /// The Parquet metadata (footer and page index).
    pub fn parquet_metadata(&self) -> &Arc<ParquetMetaData> {
        self.inner.meta.metadata()
    }

    /// Which row groups and rows a scan with `predicate` reads.
    pub fn plan(&self, predicate: &Predicate, page_pruning: bool) -> Result<ScanPlan> {
        let meta = self.inner.meta.metadata();
        let schema = self.inner.meta.schema();
        guard(self.path(), || Ok(plan(meta, schema, predicate, page_pruning)))
    }

    /// The top-level columns a projection reads, in schema order.
    fn projection_roots(&self, projection: &Projection) -> Result<Vec<usize>> {
        let schema = self.inner.meta.schema();
        let mut indices = match projection {
            Projection::All => (0..schema.fields().len()).collect(),
            Projection::Names(names) => names
                .iter()
                .map(|n| schema.index_of(n).map_err(|_| Error::UnknownColumn { column: n.clone() }))
                .collect::<Result<Vec<_>>>()?,
            Projection::Indices(ix) => {
                if let Some(bad) = ix.iter().find(|&&i| i >= schema.fields().len()) {
                    return Err(Error::InvalidArgument(format!(
                        "column index {bad} out of range ({} columns)",
                        schema.fields().len()
                    )));
                }
                ix.clone()
            }
        };
        indices.sort_unstable();
        indices.dedup();
        Ok(indices)
    }

    /// A Parquet reader of `roots` over `row_groups` (and `selection`, if any).
    fn reader(
        &self,
        roots: &[usize],
        row_groups: Vec<usize>,
        selection: Option<RowSelection>,
        batch_size: usize,
    ) -> Result<ParquetRecordBatchReader> {
        let source = &self.inner.source;
        guard(self.path(), || {
            let mask = ProjectionMask::roots(self.inner.meta.parquet_schema(), roots.iter().copied());
            let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(source.clone(), self.inner.meta.clone())
                .with_projection(mask)
                .with_batch_size(batch_size.max(1))
                .with_row_groups(row_groups);
            if let Some(sel) = selection {
                b = b.with_row_selection(sel);
            }
            b.build().map_err(|e| read_error(source, e))
        })
    }

    /// Starts a scan: prunes with the predicate, decodes only the projected columns. With
    /// [`ScanOptions::use_cache`] and a cache, row-group columns come from (and go to) it.
    pub fn scan(&self, opts: &ScanOptions) -> Result<PartScan> {
        let roots = self.projection_roots(&opts.projection)?;
        let mut plan = self.plan(&opts.predicate, opts.page_pruning)?;
        if let Some(only) = &opts.row_groups {
            plan = restrict_plan(plan, only, self.inner.meta.metadata());
        }
        let source = self.inner.source.clone();
        let selected_rows = plan.selected_rows;
        if opts.use_cache
            && let Some(cache) = &self.inner.cache
        {
            let schema = Arc::new(
                self.inner.meta.schema().project(&roots).map_err(|e| Error::arrow("projecting the schema", e))?,
            );
            let groups = split_selection(&plan, self.inner.meta.metadata());
            let cached = CachedScan {
                part: self.clone(),
                cache: cache.clone(),
                roots,
                schema: schema.clone(),
                groups: groups.into(),
                current: None,
                batch_size: opts.batch_size.max(1),
            };
            return Ok(PartScan {
                reader: (selected_rows > 0).then_some(Reader::Cached(Box::new(cached))),
                source,
                schema,
                selected_rows,
                keep_alive: None,
            });
        }
        let reader = self.reader(&roots, plan.row_groups, plan.selection, opts.batch_size)?;
        let schema = reader_schema(&reader);
        Ok(PartScan {
            reader: (selected_rows > 0).then_some(Reader::Parquet(reader)),
            source,
            schema,
            selected_rows,
            keep_alive: None,
        })
    }

    /// Checks the whole part (for `sluice check`): every block of the data region against its
    /// checksum, then every row group decoded, and the row count against the part's info.
    /// Returns the rows. Damage is [`Error::Corrupted`] naming the file and, for a checksum,
    /// the block's offset.
    pub fn verify(&self) -> Result<u64> {
        let source = &self.inner.source;
        source.verify_all().map_err(|e| read_error(source, e))?;
        let mut rows = 0u64;
        for batch in self.scan(&ScanOptions::default())? {
            rows += batch?.num_rows() as u64;
        }
        if rows != self.info().rows {
            return Err(Error::corrupted(
                self.path(),
                None,
                format!("{rows} rows decoded, the part says {}", self.info().rows),
            ));
        }
        Ok(rows)
    }

    /// Reads every row (all columns) into memory: for tests and small parts.
    pub fn read_all(&self) -> Result<Vec<RecordBatch>> {
        self.scan(&ScanOptions::default())?.collect()
    }
}

fn reader_schema(reader: &ParquetRecordBatchReader) -> SchemaRef {
    use arrow::record_batch::RecordBatchReader;
    reader.schema()
}

/// Rows of row group `g` (0 for a group the footer does not have).
fn group_rows(meta: &ParquetMetaData, g: usize) -> usize {
    meta.row_groups().get(g).map_or(0, |rg| rg.num_rows().max(0) as usize)
}

/// The next batch of `reader`, with a decoder panic or failure as [`Error::Corrupted`] (or
/// the I/O error the source recorded).
fn next_checked(source: &PartSource, reader: &mut ParquetRecordBatchReader) -> Result<Option<RecordBatch>> {
    guard(source.path(), || reader.next().transpose().map_err(|e| read_error(source, e)))
}

/// One row group of a scan and the `(start, len)` row ranges it reads (`None`: every row).
type GroupRanges = (usize, Option<Vec<(usize, usize)>>);

/// The plan per row group: each selected group with its row ranges.
fn split_selection(plan: &ScanPlan, meta: &ParquetMetaData) -> Vec<GroupRanges> {
    let mut rest = plan.selection.clone();
    let mut out = Vec::with_capacity(plan.row_groups.len());
    for &g in &plan.row_groups {
        let n = group_rows(meta, g);
        let ranges = rest.as_mut().map(|sel| {
            let piece = sel.split_off(n);
            let mut ranges = Vec::new();
            let mut at = 0usize;
            for s in piece.iter() {
                if !s.skip && s.row_count > 0 {
                    match ranges.last_mut() {
                        Some((start, len)) if *start + *len == at => *len += s.row_count,
                        _ => ranges.push((at, s.row_count)),
                    }
                }
                at += s.row_count;
            }
            ranges
        });
        if ranges.as_ref().is_some_and(|r| r.is_empty()) {
            continue;
        }
        out.push((g, ranges));
    }
    out
}

/// Keeps only the row groups in `only` (and their part of the row selection).
fn restrict_plan(plan: ScanPlan, only: &[usize], meta: &ParquetMetaData) -> ScanPlan {
    use parquet::arrow::arrow_reader::RowSelector;
    let mut row_groups = Vec::new();
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut rest = plan.selection.clone();
    let mut selected_rows = 0u64;
    for &g in &plan.row_groups {
        let n = group_rows(meta, g);
        let piece = rest.as_mut().map(|sel| sel.split_off(n));
        if only.contains(&g) {
            row_groups.push(g);
            match piece {
                Some(piece) => {
                    selected_rows += piece.row_count() as u64;
                    selectors.extend(piece.iter().copied());
                }
                None => selected_rows += n as u64,
            }
        }
    }
    let selection = plan.selection.as_ref().map(|_| RowSelection::from(selectors));
    ScanPlan { row_groups, selection, total_rows: plan.total_rows, selected_rows }
}

/// Checks that every byte range in the footer and page index lies inside the data region, and
/// that the page index is self-consistent, so decoding never reads outside checked bytes.
fn validate_layout(meta: &ParquetMetaData, pm: &PartMeta) -> Result<(), (Option<u64>, String)> {
    let rows: i64 = meta.row_groups().iter().map(|rg| rg.num_rows()).sum();
    if rows < 0 || rows as u64 != pm.rows || meta.file_metadata().num_rows() != rows {
        return Err((None, format!("row counts disagree: footer {rows}, part metadata {}", pm.rows)));
    }
    let page_index = meta.page_index();
    for (g, rg) in meta.row_groups().iter().enumerate() {
        let rg_rows = rg.num_rows();
        if rg_rows < 0 {
            return Err((None, format!("row group {g} has a negative row count")));
        }
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let size = col.compressed_size();
            let bad = |what: &str| (u64::try_from(start).ok(), format!("row group {g} column {c}: {what}"));
            if start < 4 || size < 0 || col.data_page_offset() < start {
                return Err(bad("bad column chunk offsets"));
            }
            let end = start.checked_add(size).ok_or_else(|| bad("column chunk overflows"))?;
            if end as u64 > pm.data_bytes || size == 0 || col.data_page_offset() >= end {
                return Err(bad("column chunk outside the data region"));
            }
            let Some(pi) = page_index else { continue };
            let Some(oi) = pi.offset_index(g, c) else { continue };
            let locs = oi.page_locations();
            if locs.is_empty() || locs[0].first_row_index != 0 {
                return Err(bad("offset index does not start at row 0"));
            }
            for w in locs.windows(2) {
                if w[1].first_row_index <= w[0].first_row_index {
                    return Err(bad("offset index rows not increasing"));
                }
            }
            if locs.last().is_some_and(|l| l.first_row_index >= rg_rows.max(1)) {
                return Err(bad("offset index points past the row group"));
            }
            for l in locs {
                let (o, s) = (l.offset, i64::from(l.compressed_page_size));
                if o < start || s <= 0 || o.checked_add(s).is_none_or(|e| e > end) {
                    return Err(bad("page outside its column chunk"));
                }
            }
            if let Some(ci) = pi.column_index(g, c)
                && ci.num_pages() as usize != locs.len()
            {
                return Err(bad("column index and offset index disagree on the page count"));
            }
        }
    }
    Ok(())
}

/// A running scan of one part: an iterator of record batches. After an error it ends.
pub struct PartScan {
    reader: Option<Reader>,
    source: PartSource,
    schema: SchemaRef,
    selected_rows: u64,
    keep_alive: Option<Arc<PartHandle>>,
}

impl fmt::Debug for PartScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartScan")
            .field("path", &self.source.path())
            .field("selected_rows", &self.selected_rows)
            .field("done", &self.reader.is_none())
            .finish()
    }
}

impl PartScan {
    /// Schema of the returned batches (the projection).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows the scan will read after pruning (the caller's exact filter may drop more).
    pub fn selected_rows(&self) -> u64 {
        self.selected_rows
    }

    pub(crate) fn keep_alive(mut self, handle: Arc<PartHandle>) -> Self {
        self.keep_alive = Some(handle);
        self
    }
}

impl Iterator for PartScan {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        let source = &self.source;
        let r = match reader {
            Reader::Parquet(reader) => next_checked(source, reader),
            Reader::Cached(c) => c.next_batch(),
        };
        match r {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.reader = None;
                None
            }
            Err(e) => {
                self.reader = None;
                Some(Err(e))
            }
        }
    }
}

/// Where a [`PartScan`]'s batches come from.
enum Reader {
    /// Straight from the file.
    Parquet(ParquetRecordBatchReader),
    /// Row group by row group through the [`ColumnCache`].
    Cached(Box<CachedScan>),
}

/// A scan through the column cache: per row group, the cached columns (decoding and caching
/// the missing ones when the scan reads enough of the group), sliced into batches.
struct CachedScan {
    part: Part,
    cache: Arc<ColumnCache>,
    roots: Vec<usize>,
    schema: SchemaRef,
    /// Row groups still to read, each with its selected row ranges (`None`: all rows).
    groups: VecDeque<GroupRanges>,
    current: Option<Current>,
    batch_size: usize,
}

/// The row group being read.
enum Current {
    /// Whole decoded columns and the row ranges still to return.
    Arrays { columns: Vec<ArrayRef>, ranges: VecDeque<(usize, usize)> },
    /// A selective read: the columns not in the cache decoded page by page (and not cached),
    /// the cached ones (`Some`, in projection order) sliced to the same rows.
    Direct { reader: ParquetRecordBatchReader, cached: Vec<Option<ArrayRef>>, ranges: VecDeque<(usize, usize)> },
}

/// A row group whose scan reads less than this share of its rows is not decoded whole to fill
/// the cache (a point lookup should not decode a million rows).
const FILL_MIN_SHARE: f64 = 0.25;

/// Takes the next `n` rows off `ranges`, as `(start, len)` pieces.
fn take_rows(ranges: &mut VecDeque<(usize, usize)>, mut n: usize) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    while n > 0 {
        let Some((start, len)) = ranges.front_mut() else { break };
        let k = (*len).min(n);
        pieces.push((*start, k));
        *start += k;
        *len -= k;
        n -= k;
        if *len == 0 {
            ranges.pop_front();
        }
    }
    pieces
}

/// The rows `pieces` of `array`, as one array.
fn gather(array: &ArrayRef, pieces: &[(usize, usize)]) -> Result<ArrayRef> {
    match pieces {
        [(start, len)] => Ok(array.slice(*start, *len)),
        _ => {
            let slices: Vec<ArrayRef> = pieces.iter().map(|(s, l)| array.slice(*s, *l)).collect();
            let refs: Vec<&dyn Array> = slices.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).map_err(|e| Error::arrow("joining cached slices", e))
        }
    }
}

impl CachedScan {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let columns = match &mut self.current {
                Some(Current::Arrays { columns, ranges }) => {
                    let pieces = take_rows(ranges, self.batch_size);
                    if pieces.is_empty() {
                        self.current = None;
                        continue;
                    }
                    columns.iter().map(|c| gather(c, &pieces)).collect::<Result<Vec<_>>>()?
                }
                Some(Current::Direct { reader, cached, ranges }) => {
                    let source = &self.part.inner.source;
                    let Some(b) = next_checked(source, reader)? else {
                        self.current = None;
                        continue;
                    };
                    let pieces = take_rows(ranges, b.num_rows());
                    let mut decoded = b.columns().iter();
                    let mut out = Vec::with_capacity(cached.len());
                    for c in cached.iter() {
                        out.push(match c {
                            Some(a) => gather(a, &pieces)?,
                            None => decoded.next().cloned().ok_or_else(|| {
                                Error::corrupted(source.path(), None, "decoded fewer columns than asked")
                            })?,
                        });
                    }
                    out
                }
                None => {
                    let Some((g, ranges)) = self.groups.pop_front() else { return Ok(None) };
                    self.current = Some(self.open_group(g, ranges)?);
                    continue;
                }
            };
            let rows = columns.first().map_or(0, |c| c.len());
            let opts = RecordBatchOptions::new().with_row_count(Some(rows));
            let b = RecordBatch::try_new_with_options(self.schema.clone(), columns, &opts)
                .map_err(|e| Error::arrow("assembling cached columns", e))?;
            return Ok(Some(b));
        }
    }

    fn open_group(&self, g: usize, ranges: Option<Vec<(usize, usize)>>) -> Result<Current> {
        let meta = self.part.inner.meta.metadata();
        let rows = group_rows(meta, g);
        let ranges: VecDeque<(usize, usize)> = ranges.unwrap_or_else(|| vec![(0, rows)]).into();
        let uid = self.part.inner.uid;
        let key_cols: Vec<u32> = self.roots.iter().map(|&c| c as u32).collect();
        let mut cached = self.cache.get_each(uid, g as u32, &key_cols);
        let missing: Vec<usize> =
            self.roots.iter().zip(&cached).filter(|(_, c)| c.is_none()).map(|(r, _)| *r).collect();
        if missing.is_empty() {
            let columns = cached.into_iter().flatten().collect();
            return Ok(Current::Arrays { columns, ranges });
        }
        let selected: usize = ranges.iter().map(|r| r.1).sum();
        if (selected as f64) < FILL_MIN_SHARE * rows as f64 {
            use parquet::arrow::arrow_reader::RowSelector;
            let mut selectors = Vec::with_capacity(ranges.len() * 2 + 1);
            let mut at = 0;
            for &(start, len) in &ranges {
                selectors.push(RowSelector::skip(start - at));
                selectors.push(RowSelector::select(len));
                at = start + len;
            }
            let sel = RowSelection::from(selectors);
            let reader = self.part.reader(&missing, vec![g], Some(sel), self.batch_size)?;
            return Ok(Current::Direct { reader, cached, ranges });
        }
        // Decode the missing columns of the whole group in one batch and cache them.
        let mut reader = self.part.reader(&missing, vec![g], None, rows.max(1))?;
        let source = &self.part.inner.source;
        let mut batches = Vec::new();
        while let Some(b) = next_checked(source, &mut reader)? {
            batches.push(b);
        }
        let decoded: Vec<ArrayRef> = match batches.len() {
            1 => batches.pop().map(|b| b.columns().to_vec()).unwrap_or_default(),
            _ => {
                let Some(schema) = batches.first().map(|b| b.schema()) else {
                    return Err(Error::corrupted(self.part.path(), None, format!("row group {g} decoded to nothing")));
                };
                arrow::compute::concat_batches(&schema, &batches)
                    .map_err(|e| Error::arrow("joining a row group's batches", e))?
                    .columns()
                    .to_vec()
            }
        };
        if decoded.len() != missing.len() || decoded.iter().any(|c| c.len() != rows) {
            return Err(Error::corrupted(
                self.part.path(),
                None,
                format!(
                    "row group {g} decoded to {} columns, expected {} of {rows} rows",
                    decoded.len(),
                    missing.len()
                ),
            ));
        }
        let bytes: usize = decoded.iter().map(|c| c.get_array_memory_size()).sum();
        let keep = self.cache.admits(bytes);
        let mut decoded = decoded.into_iter();
        for (root, slot) in self.roots.iter().zip(cached.iter_mut()) {
            if slot.is_none() {
                let a = decoded.next().ok_or_else(|| {
                    Error::corrupted(self.part.path(), None, format!("row group {g}: decoded columns ran out"))
                })?;
                if keep {
                    self.cache.insert((uid, g as u32, *root as u32), a.clone());
                }
                *slot = Some(a);
            }
        }
        Ok(Current::Arrays { columns: cached.into_iter().flatten().collect(), ranges })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::UInt64Type;
    use sluice_vfs::Rng;

    use super::*;
    use crate::testutil::{Env, concat, events};
    use crate::{ColumnPredicate, ColumnRange, NewPart, PartId, SeqRange, Stat, WriterOptions, write_part};

    fn write_events(env: &Env, rng: &mut Rng, rows: usize, rg: usize, page: usize) -> (PartInfo, RecordBatch) {
        let batch = events(rng, rows, 1_700_000_000_000, 0);
        let opts =
            WriterOptions::default().row_group_rows(rg).page_rows(page).sort_key(["_tp_time"]).time_column("_tp_time");
        let chunks: Vec<RecordBatch> = (0..rows).step_by(777).map(|i| batch.slice(i, 777.min(rows - i))).collect();
        let part = NewPart { id: PartId(1), seq: SeqRange::new(0, rows as u64 - 1), level: 0 };
        let info = write_part(env.fs.clone(), &env.dir, part, batch.schema(), &chunks, &opts).expect("write");
        (info, batch)
    }

    fn row_ids(batches: &[RecordBatch]) -> Vec<u64> {
        batches
            .iter()
            .flat_map(|b| {
                let col = b.column_by_name("row_id").expect("row_id projected");
                col.as_primitive::<UInt64Type>().values().to_vec()
            })
            .collect()
    }

    /// A random constraint on one of the event columns, with values drawn from the data.
    fn random_conjunct(rng: &mut Rng, batch: &RecordBatch) -> ColumnPredicate {
        let names = ["_tp_time", "device", "kind", "value", "n", "ok", "row_id"];
        let name = names[rng.below(names.len() as u64) as usize];
        let col = batch.column_by_name(name).expect("column");
        let pick = |rng: &mut Rng| Stat::from_array(col.as_ref(), rng.below(col.len() as u64) as usize);
        let bound = |rng: &mut Rng| {
            let v = pick(rng)?;
            // Sometimes a bound of another numeric kind, or between values.
            Some(match v {
                Stat::Int(i) if rng.chance(0.3) => Stat::Float(i as f64 + 0.5),
                Stat::Int(i) if rng.chance(0.2) && i >= 0 => Stat::UInt(i as u64),
                Stat::Float(f) if rng.chance(0.3) && f.is_finite() => Stat::Int(f.floor() as i64),
                v => v,
            })
        };
        if rng.chance(0.2) {
            let values = (0..rng.range(0, 3)).filter_map(|_| pick(rng)).collect();
            return ColumnPredicate::In { column: name.into(), values };
        }
        let mut r = ColumnRange::new(name);
        if rng.chance(0.7)
            && let Some(v) = bound(rng)
        {
            r = if rng.chance(0.5) { r.ge(v) } else { r.gt(v) };
        }
        if rng.chance(0.7)
            && let Some(v) = bound(rng)
        {
            r = if rng.chance(0.5) { r.le(v) } else { r.lt(v) };
        }
        if rng.chance(0.2)
            && let Some(v) = pick(rng)
        {
            r = ColumnRange::eq(name, v);
        }
        r.into()
    }

    fn matching_ids(batch: &RecordBatch, pred: &Predicate) -> Vec<u64> {
        let ids = batch.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().clone();
        (0..batch.num_rows())
            .filter(|&row| {
                pred.conjuncts.iter().all(|c| {
                    let col = batch.column_by_name(c.column()).expect("column");
                    c.matches(Stat::from_array(col.as_ref(), row).as_ref())
                })
            })
            .map(|row| ids.value(row))
            .collect()
    }

    #[test]
    fn pruning_never_drops_a_matching_row() {
        for env in [Env::sim(7), Env::real(ReadBackend::Mmap)] {
            let mut rng = Rng::new(7);
            let (info, batch) = write_events(&env, &mut rng, 6000, 1000, 100);
            let part = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
            let mut pruned_rows = 0u64;
            let rounds = if env.backend == ReadBackend::Mmap { 40 } else { 160 };
            for round in 0..rounds {
                let mut pred = Predicate::all();
                for _ in 0..rng.range(1, 3) {
                    pred = pred.and(random_conjunct(&mut rng, &batch));
                }
                let opts = ScanOptions::default()
                    .predicate(pred.clone())
                    .projection(Projection::names(["row_id"]))
                    .batch_size(rng.range(1, 3000) as usize)
                    .page_pruning(rng.chance(0.8));
                let scan = part.scan(&opts).expect("scan");
                let selected = scan.selected_rows();
                let batches: Vec<RecordBatch> = scan.collect::<Result<_>>().expect("read");
                let got: HashSet<u64> = row_ids(&batches).into_iter().collect();
                assert_eq!(got.len() as u64, selected, "round {round}: plan and scan disagree");
                let want = matching_ids(&batch, &pred);
                for id in &want {
                    assert!(got.contains(id), "round {round}: {pred:?} dropped matching row {id}");
                }
                pruned_rows += 6000 - selected;
                assert!(pred.may_match_part(part.info()) || want.is_empty());
            }
            assert!(pruned_rows > 0, "the predicates never pruned anything");
        }
    }

    #[test]
    fn cached_scans_return_what_uncached_scans_return() {
        for env in [Env::sim(11), Env::real(ReadBackend::Mmap)] {
            let mut rng = Rng::new(11);
            let (info, batch) = write_events(&env, &mut rng, 6000, 1000, 100);
            let path = env.dir.join(info.file_name());
            let cache = Arc::new(ColumnCache::new(64 << 20));
            let plain = Part::open(env.fs.as_ref(), &path, env.backend).expect("open");
            let cached =
                Part::open_cached(env.fs.as_ref(), &path, env.backend, &info, Some(cache.clone())).expect("open");
            let names = ["_tp_time", "device", "kind", "value", "n", "ok", "row_id"];
            for round in 0..60 {
                let mut pred = Predicate::all();
                for _ in 0..rng.range(0, 2) {
                    pred = pred.and(random_conjunct(&mut rng, &batch));
                }
                let cols: Vec<&str> = names.iter().copied().filter(|_| rng.chance(0.5)).chain(["row_id"]).collect();
                let mut opts = ScanOptions::default()
                    .predicate(pred.clone())
                    .projection(Projection::names(cols.clone()))
                    .batch_size(rng.range(1, 2500) as usize);
                if rng.chance(0.3) {
                    opts = opts.row_groups(Some(vec![rng.below(6) as usize, rng.below(6) as usize]));
                }
                let want: Vec<RecordBatch> = plain.scan(&opts).expect("scan").collect::<Result<_>>().expect("read");
                for pass in 0..2 {
                    let scan = cached.scan(&opts.clone().use_cache(true)).expect("scan");
                    let got: Vec<RecordBatch> = scan.collect::<Result<_>>().expect("read");
                    assert!(got.iter().all(|b| b.num_rows() <= opts.batch_size), "round {round}: batch too big");
                    let schema = plain
                        .schema()
                        .project(&{
                            let mut ix: Vec<usize> =
                                cols.iter().map(|c| plain.schema().index_of(c).expect("column")).collect();
                            ix.sort_unstable();
                            ix.dedup();
                            ix
                        })
                        .expect("project");
                    let schema = Arc::new(schema);
                    let (w, g) = (concat(&schema, &want), concat(&schema, &got));
                    assert_eq!(g.schema().fields(), w.schema().fields(), "round {round} pass {pass}: schema");
                    assert_eq!(g.columns(), w.columns(), "round {round} pass {pass} {pred:?} {cols:?}: rows differ");
                }
            }
            let stats = cache.stats();
            assert!(stats.hits > 0 && stats.misses > 0 && stats.entries > 0, "{stats:?}");
            drop(cached);
            assert_eq!(cache.stats().entries, 0, "closing the part drops its columns");
        }
    }

    #[test]
    fn a_point_lookup_does_not_fill_the_cache() {
        let env = Env::sim(12);
        let mut rng = Rng::new(12);
        let (info, batch) = write_events(&env, &mut rng, 20_000, 5000, 500);
        let cache = Arc::new(ColumnCache::new(64 << 20));
        let path = env.dir.join(info.file_name());
        let part = Part::open_cached(env.fs.as_ref(), &path, env.backend, &info, Some(cache.clone())).expect("open");
        let id = batch.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().value(12_345);
        let pred = Predicate::all().and(ColumnRange::eq("row_id", Stat::UInt(id)));
        let opts = ScanOptions::default().predicate(pred).use_cache(true);
        let rows: usize = part.scan(&opts).expect("scan").map(|b| b.expect("read").num_rows()).sum();
        assert!((1..5000).contains(&rows), "{rows} rows read");
        assert_eq!(cache.stats().entries, 0);
        // A full scan of two columns fills it; the lookup (every column) then takes those two
        // from it and decodes the others' pages, with the same rows as without a cache.
        let two = ScanOptions::default().projection(Projection::names(["row_id", "value"])).use_cache(true);
        assert_eq!(part.scan(&two).expect("scan").map(|b| b.expect("read").num_rows()).sum::<usize>(), 20_000);
        let filled = cache.stats();
        assert!(filled.entries > 0);
        let got: Vec<RecordBatch> = part.scan(&opts).expect("scan").collect::<Result<_>>().expect("read");
        assert!(cache.stats().hits > filled.hits);
        let plain = Part::open(env.fs.as_ref(), &path, env.backend).expect("open");
        let want: Vec<RecordBatch> =
            plain.scan(&opts.clone().use_cache(false)).expect("scan").collect::<Result<_>>().expect("read");
        let schema = plain.schema();
        assert_eq!(concat(&schema, &got).columns(), concat(&schema, &want).columns());
        assert_eq!(cache.stats().entries, filled.entries, "a selective read adds nothing");
    }

    #[test]
    fn narrow_time_ranges_read_few_pages() {
        let env = Env::sim(8);
        let mut rng = Rng::new(8);
        let (info, batch) = write_events(&env, &mut rng, 20_000, 5000, 500);
        let part = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
        let times = batch.column(0).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let (lo, hi) = (times.value(12_000), times.value(12_100));
        let pred = Predicate::all().and(ColumnRange::new("_tp_time").ge(lo).le(hi));
        let plan = part.plan(&pred, true).expect("plan");
        assert_eq!(plan.row_groups, vec![2]);
        assert!(plan.selected_rows <= 1500, "read {} rows", plan.selected_rows);
        let no_pages = part.plan(&pred, false).expect("plan");
        assert_eq!(no_pages.selected_rows, 5000);
        let none = Predicate::all().and(ColumnRange::new("_tp_time").lt(times.value(0)));
        assert_eq!(part.plan(&none, true).expect("plan").selected_rows, 0);
        assert_eq!(part.scan(&ScanOptions::default().predicate(none)).expect("scan").count(), 0);
    }

    #[test]
    fn row_group_subsets_read_exactly_their_rows() {
        let env = Env::sim(10);
        let mut rng = Rng::new(10);
        // 6 row groups of 1000 rows, pages of 100.
        let (info, batch) = write_events(&env, &mut rng, 6000, 1000, 100);
        let part = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
        assert_eq!(part.num_row_groups(), 6);
        let times = batch.column(0).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let preds = [
            Predicate::all(),
            Predicate::all().and(ColumnRange::new("_tp_time").ge(times.value(1500)).le(times.value(3700))),
        ];
        for pred in &preds {
            let all: Vec<RecordBatch> = part
                .scan(&ScanOptions::default().predicate(pred.clone()))
                .expect("scan")
                .collect::<Result<_>>()
                .expect("read");
            let all = concat(&batch.schema(), &all);
            let mut pieces = Vec::new();
            for g in 0..6 {
                let opts = ScanOptions::default().predicate(pred.clone()).row_groups(Some(vec![g]));
                let got: Vec<RecordBatch> = part.scan(&opts).expect("scan").collect::<Result<_>>().expect("read");
                pieces.extend(got);
            }
            assert_eq!(concat(&batch.schema(), &pieces), all, "the row groups one by one give the whole scan");
            let two = ScanOptions::default().predicate(pred.clone()).row_groups(Some(vec![1, 3]));
            let got: Vec<RecordBatch> = part.scan(&two).expect("scan").collect::<Result<_>>().expect("read");
            let got = concat(&batch.schema(), &got);
            let want: Vec<RecordBatch> = [1usize, 3]
                .iter()
                .flat_map(|g| {
                    part.scan(&ScanOptions::default().predicate(pred.clone()).row_groups(Some(vec![*g])))
                        .expect("scan")
                        .collect::<Result<Vec<_>>>()
                        .expect("read")
                })
                .collect();
            assert_eq!(got, concat(&batch.schema(), &want));
        }
    }

    #[test]
    fn projections_decode_only_what_is_asked() {
        let env = Env::sim(9);
        let mut rng = Rng::new(9);
        let (info, batch) = write_events(&env, &mut rng, 3000, 1000, 100);
        let part = Part::open(env.fs.as_ref(), env.dir.join(info.file_name()), env.backend).expect("open");
        let by_name = part.scan(&ScanOptions::default().projection(Projection::names(["value", "device", "value"])));
        let got: Vec<RecordBatch> = by_name.expect("scan").collect::<Result<_>>().expect("read");
        let got = concat(&got[0].schema(), &got);
        assert_eq!(got.schema().fields().len(), 2);
        assert_eq!(got.column(0), batch.column(1));
        assert_eq!(got.column(1), batch.column(3));
        let by_index = part.scan(&ScanOptions::default().projection(Projection::Indices(vec![6])).batch_size(128));
        let got: Vec<RecordBatch> = by_index.expect("scan").collect::<Result<_>>().expect("read");
        assert!(got.iter().all(|b| b.num_rows() <= 128 && b.num_columns() == 1));
        assert_eq!(row_ids(&got), (0..3000).collect::<Vec<u64>>());
        assert!(matches!(
            part.scan(&ScanOptions::default().projection(Projection::names(["nope"]))),
            Err(Error::UnknownColumn { .. })
        ));
        assert!(part.scan(&ScanOptions::default().projection(Projection::Indices(vec![7]))).is_err());
        // Predicates on unknown or unsupported columns keep everything.
        let pred = Predicate::all().and(ColumnRange::eq("nope", 1)).and(ColumnRange::eq("device", 3));
        assert_eq!(part.plan(&pred, true).expect("plan").selected_rows, 3000);
        assert_eq!(part.schema().metadata().keys().filter(|k| k.starts_with("sluice.")).count(), 0);
    }

    /// Opens (optionally against the manifest's record) and reads everything.
    fn open_and_read(env: &Env, path: &Path, expected: Option<&PartInfo>) -> Result<usize> {
        let part = match expected {
            Some(e) => Part::open_expecting(env.fs.as_ref(), path, env.backend, e)?,
            None => Part::open(env.fs.as_ref(), path, env.backend)?,
        };
        let mut rows = 0;
        for b in part.scan(&ScanOptions::default())? {
            rows += b?.num_rows();
        }
        Ok(rows)
    }

    fn put(env: &Env, name: &str, bytes: &[u8]) -> PathBuf {
        let path = env.dir.join(name);
        if env.fs.exists(&path) {
            env.fs.remove_file(&path).expect("rm");
        }
        let mut f = env.fs.create_new(&path).expect("create");
        f.append(bytes).expect("write");
        f.sync_data().expect("sync");
        path
    }

    fn assert_corrupted(r: Result<usize>, what: &str) {
        match r {
            Err(Error::Corrupted { .. }) => {}
            other => panic!("{what}: expected Corrupted, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_parts_are_errors_never_panics() {
        for env in [Env::sim(10), Env::real(ReadBackend::Mmap)] {
            let mut rng = Rng::new(10);
            let (info, _) = write_events(&env, &mut rng, 1200, 400, 60);
            let good = env.fs.open_read(&env.dir.join(info.file_name())).expect("open").read_all().expect("read");
            let len = good.len();
            let mmap = env.backend == ReadBackend::Mmap;
            let mut case = 0;
            let mut next_name = || {
                case += 1;
                format!("case-{case}.parquet")
            };
            // Truncations.
            let mut cuts = vec![0, 1, 4, 8, 11, 12, len / 2, len - 8, len - 1];
            cuts.extend((0..if mmap { 10 } else { 40 }).map(|_| rng.below(len as u64) as usize));
            for cut in cuts {
                let path = put(&env, &next_name(), &good[..cut]);
                assert_corrupted(open_and_read(&env, &path, None), &format!("cut at {cut}"));
                assert_corrupted(open_and_read(&env, &path, Some(&info)), &format!("cut at {cut}"));
            }
            // Flipped bytes: everywhere with the manifest's record, in the data without it.
            // SLUICE_FLIP_STEP=1 flips every byte (slow; for soak runs).
            let step = std::env::var("SLUICE_FLIP_STEP").ok().and_then(|s| s.parse().ok());
            let step = step.unwrap_or(len / if mmap { 30 } else { 160 }).max(1);
            let mut offsets: Vec<usize> = (0..len).step_by(step).collect();
            offsets.extend(len - 40..len);
            offsets.extend((info.data_bytes as usize - 5..info.data_bytes as usize + 5).filter(|&o| o < len));
            for off in offsets {
                let mut bad = good.clone();
                bad[off] ^= 1 + rng.below(255) as u8;
                let path = put(&env, &next_name(), &bad);
                assert_corrupted(open_and_read(&env, &path, Some(&info)), &format!("flip at {off}"));
                let plain = open_and_read(&env, &path, None);
                if (off as u64) < info.data_bytes {
                    assert_corrupted(plain, &format!("flip at {off} (no manifest)"));
                } else if let Err(e) = plain {
                    assert!(e.is_corrupted(), "flip at {off}: {e}");
                }
            }
            // Garbage.
            for n in [0usize, 3, 12, 100, 5000] {
                let mut junk = rng.bytes(n);
                if n >= 8 {
                    junk[..4].copy_from_slice(b"PAR1");
                    junk[n - 4..].copy_from_slice(b"PAR1");
                }
                let path = put(&env, &next_name(), &junk);
                assert_corrupted(open_and_read(&env, &path, None), &format!("{n} bytes of garbage"));
            }
            assert_eq!(open_and_read(&env, &put(&env, "ok.parquet", &good), Some(&info)).expect("intact"), 1200);
        }
    }
}
