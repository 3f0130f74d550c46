//! Statements run on blocking threads, never on the tokio workers. A query's batches reach the
//! connection task through a bounded channel of two batches: a slow client stops the query
//! from running ahead (back-pressure), and dropping the receiver stops it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice::arrow::array::RecordBatch;
use sluice::arrow::datatypes::SchemaRef;
use sluice::{Database, Output};
use sluice_sql::Statement;
use tokio::sync::{mpsc, oneshot};

/// Batches in flight per query.
const CHANNEL_BATCHES: usize = 2;

/// What a started statement turned into.
#[derive(Debug)]
pub(crate) enum Started {
    /// A statement without rows finished.
    Command { tag: String, notices: Vec<String> },
    /// Rows follow.
    Rows(Rows),
}

/// Where a result's batches come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A query running on a blocking thread.
    Channel(mpsc::Receiver<sluice::Result<RecordBatch>>),
    /// Batches at hand (catalog answers).
    Ready(VecDeque<RecordBatch>),
}

/// A result being delivered: its schema, its batches and its cancel flag. Dropping it cancels
/// the query.
#[derive(Debug)]
pub(crate) struct Rows {
    pub schema: SchemaRef,
    pub source: Source,
    pub cancel: Arc<AtomicBool>,
    /// A batch partly sent (extended protocol with a row limit).
    pub pending: Option<(RecordBatch, usize)>,
    /// Rows sent so far.
    pub sent: usize,
}

impl Rows {
    /// Whether no row is at hand now (a running query has not produced its next batch yet).
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
            && match &self.source {
                Source::Channel(rx) => rx.is_empty(),
                Source::Ready(q) => q.is_empty(),
            }
    }

    /// A result of batches at hand.
    pub fn ready(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Rows { schema, source: Source::Ready(batches.into()), cancel: Arc::default(), pending: None, sent: 0 }
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
    }
}

/// Runs `stmt` on a blocking thread.
pub(crate) fn start(db: Database, stmt: Statement) -> oneshot::Receiver<sluice::Result<Started>> {
    let (tx, rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || match db.execute_statement(stmt) {
        Err(e) => {
            let _ = tx.send(Err(e));
        }
        Ok(Output::Command { tag, notices }) => {
            let _ = tx.send(Ok(Started::Command { tag, notices }));
        }
        Ok(Output::Rows(result)) => {
            let (btx, brx) = mpsc::channel(CHANNEL_BATCHES);
            let cancel = result.cancel_flag();
            let rows = Rows {
                schema: result.schema().clone(),
                source: Source::Channel(brx),
                cancel: cancel.clone(),
                pending: None,
                sent: 0,
            };
            if tx.send(Ok(Started::Rows(rows))).is_err() {
                cancel.store(true, Ordering::Release);
                return;
            }
            for item in result {
                let failed = item.is_err();
                if btx.blocking_send(item).is_err() {
                    cancel.store(true, Ordering::Release);
                    break;
                }
                if failed {
                    break;
                }
            }
        }
    });
    rx
}
