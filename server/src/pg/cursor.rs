//! Cursors: `DECLARE c CURSOR FOR query` starts the query and keeps its result on the
//! connection; `FETCH n FROM c` sends up to n more rows, `MOVE n` skips them, `CLOSE c` stops
//! the query. This is what psql's `\set FETCH_COUNT n` uses.
//!
//! A cursor is its query's running result ([`Rows`]): the query runs ahead of the FETCHes by at
//! most the runner's channel (two batches), so a cursor holds little memory whatever the size
//! of the result. A cursor over a streaming query works too: each FETCH n waits until n rows
//! have arrived (a CancelRequest ends the wait with 57014 and closes the cursor).
//!
//! Cursors are forward-only (`NO SCROLL`). Since every sluice statement commits on its own,
//! transactions only matter for a cursor's lifetime: COMMIT or ROLLBACK closes the cursors
//! declared inside the transaction without `WITH HOLD`; a cursor declared outside a
//! transaction block (Postgres refuses that) lives until CLOSE or the end of the connection.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::portal::Format;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use sluice::arrow::datatypes::SchemaRef;

use super::ConnHandler;
use super::command::Count;
use super::encode;
use super::handler::{Item, Outcome, row_description, user_error, wire_error};
use super::runner::Rows;
use crate::error::WireError;

/// One open cursor.
#[derive(Debug)]
struct Cursor {
    rows: Rows,
    hold: bool,
    in_txn: bool,
}

/// The cursors of one connection, by name.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    open: Mutex<HashMap<String, Cursor>>,
}

impl Cursors {
    /// The columns of a cursor's rows.
    pub fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open.lock().get(name).map(|c| c.rows.schema.clone())
    }

    /// Closes a cursor (its query stops).
    pub fn close(&self, name: &str) -> Result<(), WireError> {
        self.open.lock().remove(name).map(|_| ()).ok_or_else(|| WireError::UnknownCursor(name.to_string()))
    }

    /// Closes every cursor.
    pub fn close_all(&self) {
        self.open.lock().clear();
    }

    /// COMMIT or ROLLBACK: closes the cursors declared in the transaction without HOLD.
    pub fn end_transaction(&self) {
        self.open.lock().retain(|_, c| c.hold || !c.in_txn);
    }

    fn exists(&self, name: &str) -> bool {
        self.open.lock().contains_key(name)
    }

    /// Takes a cursor out while a FETCH uses it (no lock is held across the FETCH's waits).
    fn take(&self, name: &str) -> Result<Cursor, WireError> {
        self.open.lock().remove(name).ok_or_else(|| WireError::UnknownCursor(name.to_string()))
    }

    fn put(&self, name: String, c: Cursor) {
        self.open.lock().insert(name, c);
    }
}

impl ConnHandler {
    /// `DECLARE name CURSOR FOR query`: starts the query and keeps its result.
    pub(crate) async fn declare<C>(
        &self,
        client: &mut C,
        name: String,
        hold: bool,
        in_txn: bool,
        query: Item,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.state.cursors.exists(&name) {
            return Err(wire_error(WireError::DuplicateCursor(name)));
        }
        let session = self.session()?;
        let Outcome::Rows(rows) = self.start(query, &session, false).await? else {
            return Err(user_error("42601", "DECLARE CURSOR needs a query that returns rows"));
        };
        self.state.cursors.put(name, Cursor { rows, hold, in_txn });
        self.send_command(client, "DECLARE CURSOR".into(), vec![]).await
    }

    /// `FETCH count FROM name` (`skip`: `MOVE`). The simple protocol sends a RowDescription
    /// first (`describe`); the extended one described the portal already.
    pub(crate) async fn fetch<C>(
        &self,
        client: &mut C,
        name: &str,
        count: Count,
        skip: bool,
        formats: Option<&Format>,
        describe: bool,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut cursor = self.state.cursors.take(name).map_err(wire_error)?;
        self.entry()?.set_current(cursor.rows.cancel.clone());
        let cols = encode::columns(&cursor.rows.schema, formats);
        if describe && !skip {
            client.feed(PgWireBackendMessage::RowDescription(row_description(&cols))).await?;
        }
        let before = cursor.rows.sent;
        // On an error the cursor stays closed: its query was cancelled or failed.
        match count {
            Count::Rows(0) => {}
            Count::Rows(n) if skip => self.skip_rows(&mut cursor.rows, n as usize).await?,
            Count::All if skip => self.skip_rows(&mut cursor.rows, usize::MAX).await?,
            Count::Rows(n) => {
                self.send_rows(client, &mut cursor.rows, &cols, n as usize).await?;
            }
            Count::All => {
                self.send_rows(client, &mut cursor.rows, &cols, 0).await?;
            }
        }
        let tag = format!("{} {}", if skip { "MOVE" } else { "FETCH" }, cursor.rows.sent - before);
        self.state.cursors.put(name.to_string(), cursor);
        self.send_command(client, tag, vec![]).await
    }

    /// Skips up to `n` rows of a result.
    async fn skip_rows(&self, rows: &mut Rows, n: usize) -> PgWireResult<()> {
        let mut left = n;
        while left > 0 {
            let Some(batch) = self.next_batch(rows).await? else { break };
            let take = batch.num_rows().min(left);
            if take < batch.num_rows() {
                rows.pending = Some((batch, take));
            }
            rows.sent += take;
            left -= take;
        }
        Ok(())
    }
}
