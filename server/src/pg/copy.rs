//! COPY over the wire: `COPY s FROM STDIN` (CopyInResponse, then the client's CopyData
//! messages into a [`CopyIn`], then one append at CopyDone) and `COPY (query) TO STDOUT`
//! (CopyOutResponse, rows as CopyData, CopyDone), in the simple and the extended protocol.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::{Sink, SinkExt};
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};
use pgwire::messages::response::CommandComplete;

use super::ConnHandler;
use super::cancel::BusyGuard;
use super::command::{CopyFormat, Header};
use super::encode;
use super::handler::{Item, Outcome, engine_error, user_error, wire_error};
use crate::error::WireError;
use crate::metrics::Metrics;

/// The text and CSV formats.
mod format;

pub(crate) use format::CopyIn;
use format::{CopyStartError, encode_header, encode_row};

/// CopyData messages are cut at about this many bytes on the way out.
const OUT_CHUNK: usize = 64 * 1024;

/// A COPY FROM STDIN waiting for data. It counts as a running statement, so a graceful stop
/// lets it finish.
#[derive(Debug)]
pub(crate) struct Pending {
    copy: CopyIn,
    _busy: BusyGuard,
}

impl ConnHandler {
    /// Checks the stream and columns and asks the client for the data.
    pub(crate) async fn start_copy_in<C>(
        &self,
        client: &mut C,
        stream: &str,
        columns: Option<Vec<String>>,
        format: CopyFormat,
    ) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let copy = self.copy_target(stream, columns, format)?;
        let n = copy.columns();
        *self.state.copy.lock() = Some(Pending { copy, _busy: self.shared.registry.busy() });
        client.send(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(0, n as i16, vec![0; n]))).await?;
        Ok(())
    }

    /// A COPY into `stream`, checked: the stream and the columns exist. Describe checks this
    /// too, so that drivers that pipeline Bind, Execute and Sync after a Parse (tokio-postgres)
    /// hear about a wrong name before they start sending data, as they do from Postgres.
    pub(crate) fn copy_target(
        &self,
        stream: &str,
        columns: Option<Vec<String>>,
        format: CopyFormat,
    ) -> PgWireResult<CopyIn> {
        let def = self.shared.db.stream_def(stream).map_err(|e| engine_error(&e))?;
        CopyIn::new(&def, columns, format, self.shared.copy_max_bytes).map_err(|e| match e {
            CopyStartError::Engine(e) => engine_error(&e),
            CopyStartError::Wire(e) => wire_error(e),
        })
    }

    /// Runs `query` and sends its rows as COPY data.
    pub(crate) async fn copy_out<C>(&self, client: &mut C, query: Item, format: &CopyFormat) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?;
        let Outcome::Rows(mut rows) = self.start(query, &session, false).await? else {
            return Err(user_error("42601", "COPY (query) TO needs a query that returns rows"));
        };
        let cols = encode::columns(&rows.schema, None);
        let n = cols.len();
        client.send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(0, n as i16, vec![0; n]))).await?;
        let mut out = BytesMut::with_capacity(OUT_CHUNK);
        if format.header != Header::No {
            encode_header(&cols, format, &mut out);
        }
        let mut count = 0u64;
        loop {
            if !out.is_empty() && rows.is_idle() {
                // Nothing more at hand: what there is goes out now (a streaming query's rows
                // reach the client as they are produced).
                client.send(PgWireBackendMessage::CopyData(CopyData::new(out.split().freeze()))).await?;
            }
            let Some(batch) = self.next_batch(&mut rows).await? else { break };
            for r in 0..batch.num_rows() {
                encode_row(&batch, r, &cols, format, &mut out);
                if out.len() >= OUT_CHUNK {
                    client.feed(PgWireBackendMessage::CopyData(CopyData::new(out.split().freeze()))).await?;
                }
            }
            count += batch.num_rows() as u64;
        }
        if !out.is_empty() {
            client.feed(PgWireBackendMessage::CopyData(CopyData::new(out.split().freeze()))).await?;
        }
        Metrics::add(&self.shared.metrics.pg_rows_sent, count);
        client.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
        client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(format!("COPY {count}")))).await?;
        Ok(())
    }
}

#[async_trait]
impl CopyHandler for ConnHandler {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(p) = self.state.copy.lock().as_mut() {
            p.copy.feed(&data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(pending) = self.state.copy.lock().take() else {
            return Err(user_error("08P01", "CopyDone without a COPY in progress"));
        };
        let db = self.shared.db.clone();
        // Building the columns and appending them is work for a blocking thread.
        let result = tokio::task::spawn_blocking(move || {
            let Pending { copy, _busy } = pending;
            let stream = copy.stream().to_string();
            match copy.finish() {
                Err(e) => Err(wire_error(e)),
                Ok(None) => Ok(0),
                Ok(Some(batch)) => db.append(&stream, &batch).map(|r| r.rows).map_err(|e| engine_error(&e)),
            }
        })
        .await
        .map_err(|e| user_error("XX000", format!("the COPY's thread failed: {e}")))?;
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                Metrics::add(&self.shared.metrics.pg_errors, 1);
                return Err(e);
            }
        };
        client.send(PgWireBackendMessage::CommandComplete(CommandComplete::new(format!("COPY {rows}")))).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.state.copy.lock().take();
        Metrics::add(&self.shared.metrics.pg_errors, 1);
        wire_error(WireError::CopyFailed(fail.message))
    }
}
