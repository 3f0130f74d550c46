//! The interface to the storage engine: catalog lookup and bounded scans. The engine implements
//! these traits; [`crate::memtable`] has an in-memory implementation for tests and benchmarks.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::scalar::ScalarValue;

/// Finds streams and tables by name.
pub trait Catalog: Send + Sync {
    /// A stream/table by name; Err(Error::UnknownStream) if absent.
    fn table(&self, name: &str) -> Result<Arc<dyn Table>>;
}

/// One stream or table that can be scanned.
pub trait Table: Send + Sync + std::fmt::Debug {
    /// Its name.
    fn name(&self) -> &str;
    /// Every column the table can produce: stored columns (incl. `_tp_time`), then computed ones (`_tp_sn` Int64).
    fn schema(&self) -> SchemaRef;
    /// The columns `SELECT *` expands to, in order (the engine leaves out `_tp_time`/`_tp_sn`).
    fn star_columns(&self) -> Vec<String>;
    /// A `changelog_kv` stream: its rows carry `_tp_delta` (+1 upsert, -1 delete).
    fn changelog_delta(&self) -> bool {
        false
    }
    /// For a `versioned_kv` stream: its primary key columns and version column.
    fn versioned_key(&self) -> Option<(Vec<String>, String)> {
        None
    }
    /// A table that is never streamed (system tables): `FROM t` reads it like `table(t)`.
    fn bounded_only(&self) -> bool {
        false
    }
    /// Exact row count if known cheaply (metadata), for `count(*)` without filters.
    fn row_count(&self) -> Option<u64> {
        None
    }
    /// A bounded scan split into independent partitions (parts, memtable chunks) that may run on different threads.
    /// `filters` are conjuncts the storage MAY use to skip data (it can return extra rows; the executor always re-applies the full WHERE).
    fn scan(&self, req: &ScanRequest) -> Result<Vec<Partition>>;
    /// An unbounded read for a streaming query (`SELECT ... FROM s`): rows from `req.start`
    /// on, then every new row as it is appended.
    fn subscribe(&self, req: &SubscribeRequest) -> Result<Box<dyn StreamSource>> {
        let _ = req;
        Err(crate::error::Error::NotImplemented {
            feature: format!("streaming reads of `{}` (use table({}))", self.name(), self.name()),
            location: None,
        })
    }
}

/// Where a streaming read starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeekTo {
    /// New rows only (the default of `SELECT ... FROM s`).
    #[default]
    Latest,
    /// Every stored row (`seek_to='earliest'`, `_tp_time > earliest_ts()`).
    Earliest,
    /// Stored rows whose `_tp_time` is at or after this time (ms since the epoch, UTC), then
    /// every new row.
    Time(i64),
    /// Rows from this sequence number on in every shard (`_tp_sn >= n`).
    Sn(u64),
    /// From these sequence numbers, one per shard (a resumed checkpoint).
    Positions(Vec<u64>),
}

/// What a streaming read should produce.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscribeRequest {
    /// The columns, in this order.
    pub columns: Vec<String>,
    /// Where to start.
    pub start: SeekTo,
}

/// The unbounded input of a streaming query. Batches of one shard arrive in sequence order.
pub trait StreamSource: Send {
    /// The next batch, waiting at most `timeout`; `Ok(None)` when none arrived in time.
    /// Calling it again means the previous batch has been fully processed (the source may
    /// report that progress, see `Database::sync`).
    fn next_timeout(&mut self, timeout: std::time::Duration) -> Result<Option<RecordBatch>>;
    /// True once no row can come any more (the stream was dropped, the database closed).
    fn is_finished(&self) -> bool;
    /// The next sequence number per shard after the rows delivered so far (a checkpoint).
    fn positions(&self) -> Vec<u64>;
    /// The shard the last delivered batch came from (`None`: unknown or one shard).
    fn batch_shard(&self) -> Option<usize> {
        None
    }
    /// Per shard: whether it has rows not delivered yet (event-time watermarks wait for them).
    fn waiting_shards(&self) -> Vec<bool> {
        Vec::new()
    }
}

/// What a scan should produce.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanRequest {
    /// The columns to produce, in this order (may be empty: batches then only carry a row count).
    pub columns: Vec<String>,
    /// Conjuncts the storage may use to skip data.
    pub filters: Vec<ColumnFilter>,
    /// The query needs at most this many rows (no filter, no aggregation, no ORDER BY above it).
    pub limit_hint: Option<usize>,
}

/// `column op value`, a conjunct of the WHERE clause. The value has the column's type (for
/// dictionary columns: the dictionary's value type); NULL never appears.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnFilter {
    /// The column name.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// The constant compared with (ignored for [`FilterOp::In`]).
    pub value: ScalarValue,
}

/// A comparison in a [`ColumnFilter`].
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOp {
    /// `column = value`.
    Eq,
    /// `column < value`.
    Lt,
    /// `column <= value`.
    LtEq,
    /// `column > value`.
    Gt,
    /// `column >= value`.
    GtEq,
    /// `column IN (values)`; the filter's `value` repeats the first element.
    In(Vec<ScalarValue>),
}

/// One independent piece of a scan: called (on any thread) to start reading it.
pub type Partition = Box<dyn FnOnce() -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> + Send>;

impl ColumnFilter {
    /// Whether a range `[min, max]` of column values may hold a row passing this filter.
    /// Values of different kinds are treated as "may match".
    pub fn may_match(&self, min: &ScalarValue, max: &ScalarValue) -> bool {
        use std::cmp::Ordering::*;
        let cmp = |a: &ScalarValue, b: &ScalarValue| compare_scalars(a, b);
        match &self.op {
            FilterOp::Eq => {
                !matches!(cmp(&self.value, min), Some(Less)) && !matches!(cmp(&self.value, max), Some(Greater))
            }
            FilterOp::Lt => !matches!(cmp(min, &self.value), Some(Greater | Equal)),
            FilterOp::LtEq => !matches!(cmp(min, &self.value), Some(Greater)),
            FilterOp::Gt => !matches!(cmp(max, &self.value), Some(Less | Equal)),
            FilterOp::GtEq => !matches!(cmp(max, &self.value), Some(Less)),
            FilterOp::In(values) => {
                values.iter().any(|v| !matches!(cmp(v, min), Some(Less)) && !matches!(cmp(v, max), Some(Greater)))
            }
        }
    }
}

/// Orders two scalars of the same kind; `None` if they are not comparable.
pub fn compare_scalars(a: &ScalarValue, b: &ScalarValue) -> Option<std::cmp::Ordering> {
    use ScalarValue as S;
    match (a, b) {
        (S::Int64(x), S::Int64(y)) => Some(x.cmp(y)),
        (S::UInt64(x), S::UInt64(y)) => Some(x.cmp(y)),
        (S::Int64(x), S::UInt64(y)) => Some((*x as i128).cmp(&(*y as i128))),
        (S::UInt64(x), S::Int64(y)) => Some((*x as i128).cmp(&(*y as i128))),
        (S::Float64(x), S::Float64(y)) => x.partial_cmp(y),
        (S::Utf8(x), S::Utf8(y)) => Some(x.cmp(y)),
        (S::Boolean(x), S::Boolean(y)) => Some(x.cmp(y)),
        (S::Date32(x), S::Date32(y)) => Some(x.cmp(y)),
        (S::Timestamp(x, u1, _), S::Timestamp(y, u2, _)) if u1 == u2 => Some(x.cmp(y)),
        (S::Decimal128(x, _, s1), S::Decimal128(y, _, s2)) if s1 == s2 => Some(x.cmp(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    }
}
