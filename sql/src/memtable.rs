//! An in-memory [`Table`] and [`Catalog`] for tests and benchmarks. Batches are grouped into
//! partitions; per-batch min/max statistics let scans skip batches, as parts' statistics do.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, ArrayRef};
use arrow::compute::kernels::aggregate;
use arrow::compute::{cast, max_string, min_string};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::catalog::{Catalog, ColumnFilter, Partition, ScanRequest, Table};
use crate::error::{Error, Result};
use crate::scalar::ScalarValue;

/// Min and max of one column of one batch (None: unknown or all NULL).
type Stats = Option<(ScalarValue, ScalarValue)>;

/// A table held in memory as partitions of record batches.
#[derive(Debug)]
pub struct MemTable {
    name: String,
    schema: SchemaRef,
    star: Vec<String>,
    partitions: Vec<Vec<(RecordBatch, Vec<Stats>)>>,
    rows: u64,
    bounded: bool,
}

impl MemTable {
    /// A table named `name` whose partitions hold `partitions` (every batch must have `schema`).
    /// `SELECT *` expands to every column except `_tp_time` and `_tp_sn`.
    pub fn new(name: impl Into<String>, schema: SchemaRef, partitions: Vec<Vec<RecordBatch>>) -> Result<Self> {
        let star = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != crate::TP_TIME && n != crate::TP_SN)
            .collect();
        let mut rows = 0;
        let mut parts = Vec::with_capacity(partitions.len());
        for p in partitions {
            let mut out = Vec::with_capacity(p.len());
            for b in p {
                if b.schema().fields() != schema.fields() {
                    return Err(Error::Internal { message: "MemTable batch schema differs from the table's".into() });
                }
                rows += b.num_rows() as u64;
                let stats = b.columns().iter().map(column_stats).collect();
                out.push((b, stats));
            }
            parts.push(out);
        }
        Ok(MemTable { name: name.into(), schema, star, partitions: parts, rows, bounded: false })
    }

    /// Splits `batches` round-robin into `n` partitions.
    pub fn from_batches(
        name: impl Into<String>,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        n: usize,
    ) -> Result<Self> {
        let n = n.max(1);
        let mut parts: Vec<Vec<RecordBatch>> = (0..n).map(|_| Vec::new()).collect();
        let len = batches.len().max(1);
        for (i, b) in batches.into_iter().enumerate() {
            parts[i * n / len].push(b);
        }
        MemTable::new(name, schema, parts)
    }

    /// Makes `FROM name` read the table (a system table), not a stream.
    pub fn bounded_only(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// Replaces which columns `SELECT *` expands to.
    pub fn with_star_columns(mut self, star: Vec<String>) -> Self {
        self.star = star;
        self
    }
}

fn column_stats(c: &ArrayRef) -> Stats {
    if c.null_count() == c.len() {
        return None;
    }
    let c = match c.data_type() {
        DataType::Dictionary(_, v) => cast(c, v).ok()?,
        _ => c.clone(),
    };
    macro_rules! prim {
        ($t:ty) => {{
            let a = c.as_any().downcast_ref::<arrow::array::PrimitiveArray<$t>>()?;
            let (mn, mx) = (aggregate::min(a)?, aggregate::max(a)?);
            let mn = ScalarValue::try_from_array(
                &arrow::array::PrimitiveArray::<$t>::from(vec![mn]).with_data_type(c.data_type().clone()),
                0,
            )
            .ok()?;
            let mx = ScalarValue::try_from_array(
                &arrow::array::PrimitiveArray::<$t>::from(vec![mx]).with_data_type(c.data_type().clone()),
                0,
            )
            .ok()?;
            Some((mn, mx))
        }};
    }
    use arrow::datatypes::*;
    match c.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Date32 => prim!(Date32Type),
        DataType::Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondType),
        DataType::Utf8 => {
            let a = c.as_any().downcast_ref::<arrow::array::StringArray>()?;
            Some((ScalarValue::Utf8(min_string(a)?.to_string()), ScalarValue::Utf8(max_string(a)?.to_string())))
        }
        _ => None,
    }
}

impl Table for MemTable {
    fn name(&self) -> &str {
        &self.name
    }

    fn bounded_only(&self) -> bool {
        self.bounded
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn star_columns(&self) -> Vec<String> {
        self.star.clone()
    }

    fn row_count(&self) -> Option<u64> {
        Some(self.rows)
    }

    fn scan(&self, req: &ScanRequest) -> Result<Vec<Partition>> {
        let indices = req
            .columns
            .iter()
            .map(|c| {
                self.schema.index_of(c).map_err(|_| Error::UnknownColumn {
                    name: c.clone(),
                    stream: Some(self.name.clone()),
                    span: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let filters: Vec<(usize, &ColumnFilter)> =
            req.filters.iter().filter_map(|f| self.schema.index_of(&f.column).ok().map(|i| (i, f))).collect();
        let schema = Arc::new(self.schema.project(&indices).map_err(|e| Error::Internal { message: e.to_string() })?);
        let mut out: Vec<Partition> = Vec::new();
        let mut remaining = req.limit_hint;
        for p in &self.partitions {
            let batches: Vec<RecordBatch> = p
                .iter()
                .filter(|(_, stats)| {
                    filters.iter().all(|(i, f)| match &stats[*i] {
                        Some((mn, mx)) => f.may_match(mn, mx),
                        None => true,
                    })
                })
                .map(|(b, _)| project(b, &indices, &schema))
                .collect::<Result<_>>()?;
            if batches.is_empty() {
                continue;
            }
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            out.push(Box::new(move || Ok(Box::new(batches.into_iter().map(Ok)) as _)));
            if let Some(r) = remaining.as_mut() {
                *r = r.saturating_sub(n);
                if *r == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }
}

fn project(b: &RecordBatch, indices: &[usize], schema: &SchemaRef) -> Result<RecordBatch> {
    let cols = indices.iter().map(|i| b.column(*i).clone()).collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )
    .map_err(|e| Error::Internal { message: e.to_string() })
}

/// A catalog of [`MemTable`]s (or any tables) by name.
#[derive(Debug, Default)]
pub struct MemCatalog {
    tables: RwLock<HashMap<String, Arc<dyn Table>>>,
}

impl MemCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a table.
    pub fn register(&self, table: Arc<dyn Table>) {
        if let Ok(mut t) = self.tables.write() {
            t.insert(table.name().to_string(), table);
        }
    }
}

impl Catalog for MemCatalog {
    fn table(&self, name: &str) -> Result<Arc<dyn Table>> {
        self.tables
            .read()
            .ok()
            .and_then(|t| t.get(name).cloned())
            .ok_or_else(|| Error::UnknownStream { name: name.to_string() })
    }
}
