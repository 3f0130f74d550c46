//! A shard's memtable: the batches appended since the last flush, in sequence order, shared
//! copy-on-write so that a snapshot is a cheap `Arc` clone.

use std::sync::Arc;

use arrow::array::RecordBatch;

/// One appended batch and where it sits in the shard's sequence.
#[derive(Debug)]
pub struct MemBatch {
    /// `_tp_sn` of its first row (its WAL record's sequence number).
    pub first_seq: u64,
    /// The rows, in the stream's stored schema.
    pub batch: RecordBatch,
    /// When it was appended (ms), for `flush_threshold_ms`.
    pub appended_ms: u64,
    /// Memory it holds.
    pub bytes: u64,
}

impl MemBatch {
    /// One past its last row's sequence number.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.batch.num_rows() as u64
    }
}

/// The batches of a memtable, ordered by `first_seq` and contiguous.
#[derive(Debug, Clone, Default)]
pub struct Memtable {
    batches: Arc<Vec<Arc<MemBatch>>>,
    rows: u64,
    bytes: u64,
}

impl Memtable {
    /// Adds a batch at the end (its `first_seq` must be the current end).
    pub(crate) fn push(&mut self, b: Arc<MemBatch>) {
        debug_assert!(self.batches.last().is_none_or(|l| l.end_seq() == b.first_seq));
        self.rows += b.batch.num_rows() as u64;
        self.bytes += b.bytes;
        Arc::make_mut(&mut self.batches).push(b);
    }

    /// Removes the last batch (an append that could not be logged).
    pub(crate) fn pop(&mut self) -> Option<Arc<MemBatch>> {
        let b = Arc::make_mut(&mut self.batches).pop()?;
        self.rows -= b.batch.num_rows() as u64;
        self.bytes -= b.bytes;
        Some(b)
    }

    /// Drops every batch that ends at or before `seq` (flushed into a part, or evicted).
    pub(crate) fn drop_before(&mut self, seq: u64) -> u64 {
        let n = self.batches.partition_point(|b| b.end_seq() <= seq);
        if n == 0 {
            return 0;
        }
        let v = Arc::make_mut(&mut self.batches);
        let freed: u64 = v[..n].iter().map(|b| b.bytes).sum();
        self.rows -= v[..n].iter().map(|b| b.batch.num_rows() as u64).sum::<u64>();
        self.bytes -= freed;
        v.drain(..n);
        freed
    }

    /// The batches, oldest first.
    pub fn batches(&self) -> &Arc<Vec<Arc<MemBatch>>> {
        &self.batches
    }

    /// Rows held.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When the oldest batch was appended.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.batches.first().map(|b| b.appended_ms)
    }
}
