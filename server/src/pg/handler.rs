//! The per-connection handler: simple and extended query protocol on top of pgwire's codec
//! and state machine, with statements run by [`runner`](super::runner) and rows streamed to
//! the client batch by batch.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{FieldDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, PortalSuspended, Sync as PgSync,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, NoticeResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use sluice::arrow::array::RecordBatch;
use sluice_sql::Statement;

use super::catalog::{Answer, Session};
use super::command::{self, Command};
use super::encode::{self, Col};
use super::params::{self, Placeholders};
use super::runner::{self, Rows, Source, Started};
use super::{ConnHandler, Shared};
use crate::error::{WireError, wire_sqlstate};
use crate::metrics::Metrics;
use crate::sqlstate;

/// A statement prepared with Parse.
#[derive(Debug)]
pub(crate) struct Prepared {
    sql: String,
    placeholders: Placeholders,
    /// Parameter types the server chose (client-given ones take precedence).
    inferred: Vec<Type>,
}

/// Parses statements for pgwire's Parse handling (the SQL is parsed for real at Describe or
/// Execute, once parameters are known).
#[derive(Debug)]
pub(crate) struct SluiceQueryParser {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl QueryParser for SluiceQueryParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let placeholders = params::scan(sql);
        let inferred = params::infer_types(sql, &placeholders, &self.shared.db);
        Ok(Some(Arc::new(Prepared { sql: sql.to_string(), placeholders, inferred })))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.inferred.clone())
    }

    fn get_result_schema(&self, _stmt: &Self::Statement, _f: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

/// An engine error as a client error.
pub(crate) fn engine_error(e: &sluice::Error) -> PgWireError {
    user_error(sqlstate(e), e.to_string())
}

/// An error the server raises itself as a client error.
pub(crate) fn wire_error(e: WireError) -> PgWireError {
    user_error(wire_sqlstate(&e), e.to_string())
}

pub(crate) fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message.into())))
}

pub(crate) fn cancelled() -> PgWireError {
    user_error("57014", "canceling statement due to user request")
}

/// One thing to run.
#[derive(Debug)]
pub(crate) enum Item {
    Answer(Answer),
    Engine(Statement),
    /// COPY, DECLARE, FETCH, MOVE or CLOSE, with the planned query of COPY TO and DECLARE.
    Wire(Command, Option<Box<Item>>),
}

impl Item {
    /// Runs without side effects (safe to start at Describe time).
    fn read_only(&self) -> bool {
        match self {
            Item::Answer(a) => !matches!(a, Answer::Set { .. }),
            Item::Wire(..) => false,
            Item::Engine(s) => matches!(
                s,
                Statement::Query(_)
                    | Statement::ShowStreams { .. }
                    | Statement::ShowViews { .. }
                    | Statement::ShowCreate { .. }
                    | Statement::Describe { .. }
                    | Statement::Explain { analyze: false, .. }
            ),
        }
    }
}

/// What one statement produced, before its rows are sent.
pub(crate) enum Outcome {
    Command(String, Vec<String>),
    Rows(Rows),
}

/// Per-connection state of the handler.
#[derive(Debug, Default)]
pub(crate) struct PortalRuns {
    /// Results started by Describe or suspended by an Execute row limit, by portal name.
    running: Mutex<HashMap<String, Rows>>,
}

impl ConnHandler {
    pub(crate) fn session(&self) -> PgWireResult<Arc<Session>> {
        self.state.session.lock().clone().ok_or(PgWireError::NotReadyForQuery)
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The statements of `sql`. Statements the server parses itself (COPY, cursors) are cut
    /// out of the text first; everything else goes to the engine's parser as one text, so its
    /// errors point into the original query.
    fn plan(&self, sql: &str, session: &Session) -> PgWireResult<Vec<Item>> {
        let pieces = command::split(sql);
        if !pieces.iter().any(|p| command::is_command(p)) {
            return self.plan_engine(sql, session);
        }
        let mut items = vec![];
        for piece in pieces {
            match command::parse(piece) {
                Some(cmd) => items.push(self.plan_command(cmd.map_err(wire_error)?, session)?),
                None => items.extend(self.plan_engine(piece, session)?),
            }
        }
        Ok(items)
    }

    /// A server command, with the query of COPY TO and DECLARE planned.
    fn plan_command(&self, cmd: Command, session: &Session) -> PgWireResult<Item> {
        let query = match &cmd {
            Command::CopyTo { query, .. } | Command::Declare { query, .. } => query,
            _ => return Ok(Item::Wire(cmd, None)),
        };
        let mut items = self.plan_engine(query, session)?;
        let what = if matches!(cmd, Command::CopyTo { .. }) { "COPY (query) TO" } else { "DECLARE CURSOR" };
        match (items.pop(), items.is_empty()) {
            (Some(item), true) if item.read_only() && !matches!(item, Item::Answer(Answer::Command(_))) => {
                Ok(Item::Wire(cmd, Some(Box::new(item))))
            }
            _ => Err(wire_error(WireError::Syntax(format!("{what} needs one query that returns rows")))),
        }
    }

    /// Statements for the engine (or answered by [`catalog`](super::catalog)).
    fn plan_engine(&self, sql: &str, session: &Session) -> PgWireResult<Vec<Item>> {
        if let Some(a) = super::catalog::intercept(sql, session) {
            return Ok(vec![Item::Answer(a)]);
        }
        let stmts = sluice_sql::parse(sql).map_err(|e| engine_error(&sluice::Error::Sql(e)))?;
        Ok(stmts
            .into_iter()
            .map(|s| match s {
                Statement::Other(other) => match super::catalog::intercept(&other.to_string(), session) {
                    Some(a) => Item::Answer(a),
                    None => Item::Engine(Statement::Other(other)),
                },
                s => Item::Engine(s),
            })
            .collect())
    }

    /// Starts one item: engine statements on a blocking thread; a cancel while it starts ends
    /// it with 57014.
    pub(crate) async fn start(&self, item: Item, session: &Session, apply_set: bool) -> PgWireResult<Outcome> {
        match item {
            Item::Wire(..) => Err(user_error("XX000", "a server command cannot be started as a statement")),
            Item::Answer(Answer::Command(tag)) => Ok(Outcome::Command(tag, vec![])),
            Item::Answer(Answer::Set { name, value }) => {
                if apply_set {
                    session.set(&name, &value);
                }
                Ok(Outcome::Command("SET".into(), vec![]))
            }
            Item::Answer(Answer::Rows(batch)) => Ok(Outcome::Rows(Rows::ready(batch.schema(), vec![batch]))),
            Item::Answer(Answer::Catalog { sql, names }) => {
                let db = self.shared.db.clone();
                let s = Arc::new(Session::clone_for_catalog(session));
                let result = tokio::task::spawn_blocking(move || super::pg_catalog::run(&sql, &db, &s))
                    .await
                    .map_err(|e| user_error("XX000", format!("the catalog query's thread failed: {e}")))?;
                let batches = result.unwrap_or_else(|why| {
                    tracing::debug!(reason = %why, "catalog query answered with no rows");
                    vec![RecordBatch::new_empty(encode::text_schema(&names))]
                });
                Ok(Outcome::Rows(Rows::ready(batches[0].schema(), batches)))
            }
            Item::Engine(stmt) => {
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "57P01".into(),
                        "terminating connection due to administrator command".into(),
                    ))));
                }
                Metrics::add(&self.metrics().pg_statements, 1);
                let entry = self.entry()?;
                let mut rx = runner::start(self.shared.db.clone(), stmt);
                let started = loop {
                    tokio::select! {
                        r = &mut rx => break r.map_err(|_| user_error("XX000", "the statement's thread ended without an answer"))?,
                        _ = entry.notify.notified() => {
                            if entry.cancelled() {
                                return Err(cancelled());
                            }
                        }
                    }
                };
                match started.map_err(|e| engine_error(&e))? {
                    Started::Command { tag, notices } => Ok(Outcome::Command(tag, notices)),
                    Started::Rows(rows) => {
                        entry.set_current(rows.cancel.clone());
                        Ok(Outcome::Rows(rows))
                    }
                }
            }
        }
    }

    pub(crate) fn entry(&self) -> PgWireResult<Arc<super::cancel::ConnEntry>> {
        self.state.entry.lock().clone().ok_or(PgWireError::NotReadyForQuery)
    }

    /// Sends rows until the result ends (`Ok(true)`) or `max_rows` rows were sent
    /// (`Ok(false)`, the portal is suspended). Flushes whenever no batch is waiting, so a
    /// streaming query's rows reach the client as they are produced.
    pub(crate) async fn send_rows<C>(
        &self,
        client: &mut C,
        rows: &mut Rows,
        cols: &[Col],
        max_rows: usize,
    ) -> PgWireResult<bool>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let entry = self.entry()?;
        let mut buf = BytesMut::with_capacity(4096);
        let mut sent_now = 0usize;
        loop {
            if let Some((batch, from)) = rows.pending.take() {
                let n = batch.num_rows();
                let mut row = from;
                while row < n {
                    if max_rows > 0 && sent_now == max_rows {
                        rows.pending = Some((batch, row));
                        Metrics::add(&self.metrics().pg_rows_sent, sent_now as u64);
                        return Ok(false);
                    }
                    client.feed(PgWireBackendMessage::DataRow(encode::data_row(&batch, row, cols, &mut buf))).await?;
                    row += 1;
                    sent_now += 1;
                    rows.sent += 1;
                }
                if entry.cancelled() {
                    return Err(cancelled());
                }
                continue;
            }
            if max_rows > 0 && sent_now == max_rows {
                Metrics::add(&self.metrics().pg_rows_sent, sent_now as u64);
                return Ok(false);
            }
            let next = match &mut rows.source {
                Source::Ready(q) => q.pop_front().map(Ok),
                Source::Channel(rx) => {
                    if rx.is_empty() {
                        client.flush().await?;
                    }
                    loop {
                        tokio::select! {
                            b = rx.recv() => break b,
                            _ = entry.notify.notified() => {
                                if entry.cancelled() {
                                    rows.cancel.store(true, Ordering::Release);
                                    return Err(cancelled());
                                }
                            }
                        }
                    }
                }
            };
            match next {
                Some(Ok(batch)) => rows.pending = Some((batch, 0)),
                Some(Err(e)) => return Err(engine_error(&e)),
                None => {
                    Metrics::add(&self.metrics().pg_rows_sent, sent_now as u64);
                    if entry.cancelled() {
                        return Err(cancelled());
                    }
                    return Ok(true);
                }
            }
        }
    }

    pub(crate) async fn send_command<C>(&self, client: &mut C, tag: String, notices: Vec<String>) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        for n in notices {
            let info = ErrorInfo::new("NOTICE".into(), "00000".into(), n);
            client.feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(info))).await?;
        }
        client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))).await?;
        Ok(())
    }

    /// Runs the statements of a simple query in order, stopping at the first error. `Ok(true)`:
    /// the last one is a COPY FROM STDIN, now waiting for the client's data.
    async fn run_simple<C>(&self, client: &mut C, sql: &str, txn: &mut TransactionStatus) -> PgWireResult<bool>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?;
        let items = self.plan(sql, &session)?;
        let count = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let _busy = self.shared.registry.busy();
            self.entry()?.begin();
            if let Item::Wire(cmd, inner) = item {
                if matches!(cmd, Command::CopyFrom { .. }) && i + 1 < count {
                    return Err(wire_error(WireError::NotSupported(
                        "COPY FROM STDIN must be the last statement of a query string".into(),
                    )));
                }
                let in_txn = *txn == TransactionStatus::Transaction;
                let copying = self.run_wire(client, cmd, inner, None, true, in_txn).await?;
                self.entry()?.end();
                if copying {
                    return Ok(true);
                }
                continue;
            }
            let result = self.start(item, &session, true).await;
            match result? {
                Outcome::Command(tag, notices) => {
                    *txn = self.after_command(&tag, *txn);
                    self.send_command(client, tag, notices).await?;
                }
                Outcome::Rows(mut rows) => {
                    let cols = encode::columns(&rows.schema, None);
                    client.feed(PgWireBackendMessage::RowDescription(row_description(&cols))).await?;
                    self.send_rows(client, &mut rows, &cols, 0).await?;
                    let tag = format!("SELECT {}", rows.sent);
                    client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))).await?;
                }
            }
            self.entry()?.end();
        }
        Ok(false)
    }

    /// The transaction status after a command; COMMIT and ROLLBACK close the cursors declared
    /// in the transaction without HOLD, DISCARD ALL closes every cursor.
    fn after_command(&self, tag: &str, txn: TransactionStatus) -> TransactionStatus {
        match tag {
            "BEGIN" => TransactionStatus::Transaction,
            "COMMIT" | "ROLLBACK" => {
                self.state.cursors.end_transaction();
                TransactionStatus::Idle
            }
            "DISCARD ALL" => {
                self.state.cursors.close_all();
                txn
            }
            _ => txn,
        }
    }

    /// The SQL of a bound portal with its parameters as literals.
    fn bound_sql(portal: &Portal<Arc<Prepared>>) -> PgWireResult<String> {
        let p = &portal.statement.statement;
        let given = &portal.statement.parameter_types;
        let mut literals = Vec::with_capacity(p.placeholders.count);
        for i in 0..p.placeholders.count {
            let ty =
                given.get(i).cloned().flatten().unwrap_or_else(|| p.inferred.get(i).cloned().unwrap_or(Type::TEXT));
            let raw = portal.parameters.get(i).ok_or_else(|| {
                user_error(
                    "08P01",
                    format!(
                        "bind supplies {} parameters, the statement needs {}",
                        portal.parameters.len(),
                        p.placeholders.count
                    ),
                )
            })?;
            literals.push(params::literal(&ty, raw.as_ref(), portal.parameter_format.is_binary(i))?);
        }
        Ok(params::substitute(&p.sql, &p.placeholders, &literals))
    }

    /// The one item of an extended-protocol statement.
    fn single_item(&self, sql: &str, session: &Session) -> PgWireResult<Option<Item>> {
        let mut items = self.plan(sql, session)?;
        match items.len() {
            0 => Ok(None),
            1 => Ok(items.pop()),
            _ => Err(user_error("42601", "cannot insert multiple commands into a prepared statement")),
        }
    }
}

pub(crate) fn row_description(cols: &[Col]) -> RowDescription {
    RowDescription::new(encode::field_infos(cols).iter().map(FieldDescription::from).collect())
}

#[async_trait]
impl SimpleQueryHandler for ConnHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut txn = client.transaction_status();
        if query.query.chars().all(|c| c == ';' || c.is_whitespace()) {
            client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
        } else {
            match self.run_simple(client, &query.query, &mut txn).await {
                Ok(false) => {}
                Ok(true) => {
                    // COPY FROM STDIN: ReadyForQuery follows the client's CopyDone.
                    client.set_transaction_status(txn);
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    client.flush().await?;
                    return Ok(());
                }
                Err(e) => self.simple_error(client, e, &mut txn).await?,
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(txn);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(txn))).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_query is overridden and never calls this.
        Ok(vec![])
    }
}

impl ConnHandler {
    /// Reports the error that ended a simple query (a FATAL one ends the connection).
    async fn simple_error<C>(&self, client: &mut C, e: PgWireError, txn: &mut TransactionStatus) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Ok(entry) = self.entry() {
            entry.end();
        }
        match e {
            PgWireError::UserError(info) => {
                Metrics::add(&self.metrics().pg_errors, 1);
                let fatal = info.is_fatal();
                client.feed(PgWireBackendMessage::ErrorResponse((*info).into())).await?;
                if fatal {
                    client.flush().await?;
                    return Err(PgWireError::IoError(std::io::Error::other("connection terminated")));
                }
                if *txn == TransactionStatus::Transaction {
                    *txn = TransactionStatus::Error;
                }
                Ok(())
            }
            other => Err(other),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for ConnHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = SluiceQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(SluiceQueryParser { shared: self.shared.clone() })
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        self.state.portals.running.lock().remove(portal_name);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => client.portal_store().put_empty_portal(portal_name),
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client.send(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME).to_string();
        let max_rows = message.max_rows.max(0) as usize;
        let portal = match client.portal_store().get_portal(&portal_name) {
            Some(Entry::Value(p)) => p,
            Some(Entry::Empty) => {
                client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(portal_name)),
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let result = self.execute_portal(client, &portal, &portal_name, max_rows).await;
        if let Ok(entry) = self.entry() {
            entry.end();
        }
        match result {
            Ok(true) => {
                // COPY FROM STDIN: the client's CopyDone and Sync end it.
                client.set_state(PgWireConnectionState::CopyInProgress(true));
                client.flush().await?;
                Ok(())
            }
            Ok(false) => {
                client.set_state(PgWireConnectionState::ReadyForQuery);
                Ok(())
            }
            Err(e) => {
                client.set_state(PgWireConnectionState::ReadyForQuery);
                Metrics::add(&self.metrics().pg_errors, 1);
                Err(e)
            }
        }
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        self.state.portals.running.lock().remove(DEFAULT_NAME);
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(client.transaction_status()))).await?;
        client.flush().await?;
        Ok(())
    }

    /// As pgwire's, with two differences Postgres drivers rely on: a statement without result
    /// columns is described with `NoData` after its parameters (pgwire sends an empty
    /// RowDescription, which pgjdbc takes for a result set and fails `executeUpdate`), and a
    /// portal name that is a cursor made by `DECLARE` (psycopg's server-side cursors declare
    /// one, then ask for its columns with Describe Portal) describes the cursor.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::results::DescribeResponse;
        use pgwire::messages::data::ParameterDescription;
        use pgwire::messages::extendedquery::{TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT};
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT
            && let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name)
        {
            let described = self.do_describe_statement(client, &stmt).await?;
            let oids = described.parameters().unwrap_or_default().iter().map(Type::oid).collect();
            client.send(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
            // No fields: NoData.
            let fields = DescribePortalResponse::new(described.fields().to_vec());
            return send_describe_response(client, &fields).await;
        }
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && client.portal_store().get_portal(name).is_none()
            && let Some(schema) = self.state.cursors.schema(name)
        {
            let fields = encode::field_infos(&encode::columns(&schema, None));
            return send_describe_response(client, &DescribePortalResponse::new(fields)).await;
        }
        self._on_describe(client, message).await
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT {
            client.portal_store().rm_statement(name);
        } else {
            client.portal_store().rm_portal(name);
            self.state.portals.running.lock().remove(name);
        }
        client.send(PgWireBackendMessage::CloseComplete(CloseComplete::new())).await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &target.statement;
        let types: Vec<Type> = (0..p.placeholders.count)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| p.inferred.get(i).cloned().unwrap_or(Type::TEXT))
            })
            .collect();
        // The result columns: a query is planned (not run) with placeholder values of the
        // parameters' types; other read-only statements (catalog answers, SHOW) are run.
        let dummies: Vec<String> = types.iter().map(params::dummy_literal).collect();
        let sql = params::substitute(&p.sql, &p.placeholders, &dummies);
        let session = self.session()?;
        let fields = match self.single_item(&sql, &session)? {
            Some(Item::Wire(Command::CopyFrom { stream, columns, format }, _)) => {
                self.copy_target(&stream, columns, format)?;
                vec![]
            }
            Some(Item::Wire(Command::Fetch { name, skip: false, .. }, _)) => self
                .state
                .cursors
                .schema(&name)
                .map(|s| encode::field_infos(&encode::columns(&s, None)))
                .unwrap_or_default(),
            Some(Item::Engine(stmt @ Statement::Query(_))) => {
                let db = self.shared.db.clone();
                let schema = tokio::task::spawn_blocking(move || db.describe_statement(stmt))
                    .await
                    .map_err(|e| user_error("XX000", format!("the planning thread failed: {e}")))?
                    .map_err(|e| engine_error(&e))?;
                schema.map(|s| encode::field_infos(&encode::columns(&s, None))).unwrap_or_default()
            }
            Some(item) if item.read_only() => {
                self.entry()?.begin();
                let outcome = self.start(item, &session, false).await;
                if let Ok(entry) = self.entry() {
                    entry.end();
                }
                match outcome? {
                    Outcome::Rows(rows) => encode::field_infos(&encode::columns(&rows.schema, None)),
                    Outcome::Command(..) => vec![],
                }
            }
            _ => vec![],
        };
        Ok(DescribeStatementResponse::new(types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(rows) = self.state.portals.running.lock().get(&portal.name) {
            let cols = encode::columns(&rows.schema, Some(&portal.result_column_format));
            return Ok(DescribePortalResponse::new(encode::field_infos(&cols)));
        }
        let sql = Self::bound_sql(portal)?;
        let session = self.session()?;
        match self.single_item(&sql, &session)? {
            Some(Item::Wire(Command::Fetch { name, skip: false, .. }, _)) => {
                let fields = self
                    .state
                    .cursors
                    .schema(&name)
                    .map(|s| encode::field_infos(&encode::columns(&s, Some(&portal.result_column_format))))
                    .unwrap_or_default();
                Ok(DescribePortalResponse::new(fields))
            }
            Some(item) if item.read_only() => {
                self.entry()?.begin();
                let outcome = self.start(item, &session, false).await;
                if let Ok(entry) = self.entry() {
                    entry.end();
                }
                match outcome? {
                    Outcome::Rows(rows) => {
                        let cols = encode::columns(&rows.schema, Some(&portal.result_column_format));
                        self.state.portals.running.lock().insert(portal.name.clone(), rows);
                        Ok(DescribePortalResponse::new(encode::field_infos(&cols)))
                    }
                    Outcome::Command(..) => Ok(DescribePortalResponse::new(vec![])),
                }
            }
            _ => Ok(DescribePortalResponse::new(vec![])),
        }
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_execute is overridden and never calls this.
        Ok(Response::EmptyQuery)
    }
}

impl ConnHandler {
    /// Runs (or resumes) a portal; `Ok(true)`: a COPY FROM STDIN now waits for data.
    async fn execute_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Arc<Prepared>>,
        name: &str,
        max_rows: usize,
    ) -> PgWireResult<bool>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _busy = self.shared.registry.busy();
        let session = self.session()?;
        let existing = self.state.portals.running.lock().remove(name);
        let mut rows = match existing {
            Some(rows) => {
                self.entry()?.begin();
                self.entry()?.set_current(rows.cancel.clone());
                rows
            }
            None => {
                let sql = Self::bound_sql(portal)?;
                let Some(item) = self.single_item(&sql, &session)? else {
                    client.feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new())).await?;
                    return Ok(false);
                };
                self.entry()?.begin();
                if let Item::Wire(cmd, inner) = item {
                    let in_txn = client.transaction_status() == TransactionStatus::Transaction;
                    let formats = Some(&portal.result_column_format);
                    return self.run_wire(client, cmd, inner, formats, false, in_txn).await;
                }
                match self.start(item, &session, true).await? {
                    Outcome::Command(tag, notices) => {
                        let txn = self.after_command(&tag, client.transaction_status());
                        client.set_transaction_status(txn);
                        self.send_command(client, tag, notices).await?;
                        return Ok(false);
                    }
                    Outcome::Rows(rows) => rows,
                }
            }
        };
        let cols = encode::columns(&rows.schema, Some(&portal.result_column_format));
        let done = self.send_rows(client, &mut rows, &cols, max_rows).await?;
        if done {
            let tag = format!("SELECT {}", rows.sent);
            client.feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag))).await?;
        } else {
            self.state.portals.running.lock().insert(name.to_string(), rows);
            client.feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new())).await?;
        }
        Ok(false)
    }
}

impl ConnHandler {
    /// Runs a server command. `formats` are the result formats a Bind asked for (FETCH in the
    /// extended protocol); `describe` sends a RowDescription before FETCH rows (the simple
    /// protocol); `in_txn` tells whether a DECLARE happens inside BEGIN ... COMMIT. `Ok(true)`:
    /// a COPY FROM STDIN now waits for the client's data.
    async fn run_wire<C>(
        &self,
        client: &mut C,
        cmd: Command,
        inner: Option<Box<Item>>,
        formats: Option<&Format>,
        describe: bool,
        in_txn: bool,
    ) -> PgWireResult<bool>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Metrics::add(&self.metrics().pg_statements, 1);
        let query = || inner.ok_or_else(|| user_error("XX000", "the command's query was not planned"));
        match cmd {
            Command::CopyFrom { stream, columns, format } => {
                self.start_copy_in(client, &stream, columns, format).await?;
                Ok(true)
            }
            Command::CopyTo { format, .. } => {
                self.copy_out(client, *query()?, &format).await?;
                Ok(false)
            }
            Command::Declare { name, hold, .. } => {
                self.declare(client, name, hold, in_txn, *query()?).await?;
                Ok(false)
            }
            Command::Fetch { name, count, skip } => {
                self.fetch(client, &name, count, skip, formats, describe).await?;
                Ok(false)
            }
            Command::Close { name } => {
                match name {
                    Some(n) => self.state.cursors.close(&n).map_err(wire_error)?,
                    None => self.state.cursors.close_all(),
                }
                self.send_command(client, "CLOSE CURSOR".into(), vec![]).await?;
                Ok(false)
            }
        }
    }
}

impl ConnHandler {
    /// The next batch of a result, rows of a partly sent batch first (`None`: the result
    /// ended). Waits for a running query; a cancel ends the wait with 57014 and stops the query.
    pub(crate) async fn next_batch(&self, rows: &mut Rows) -> PgWireResult<Option<RecordBatch>> {
        if let Some((batch, from)) = rows.pending.take() {
            return Ok(Some(if from == 0 { batch } else { batch.slice(from, batch.num_rows() - from) }));
        }
        let entry = self.entry()?;
        let next = match &mut rows.source {
            Source::Ready(q) => q.pop_front().map(Ok),
            Source::Channel(rx) => loop {
                tokio::select! {
                    b = rx.recv() => break b,
                    _ = entry.notify.notified() => {
                        if entry.cancelled() {
                            rows.cancel.store(true, Ordering::Release);
                            return Err(cancelled());
                        }
                    }
                }
            },
        };
        if entry.cancelled() {
            rows.cancel.store(true, Ordering::Release);
            return Err(cancelled());
        }
        next.transpose().map_err(|e| engine_error(&e))
    }
}
