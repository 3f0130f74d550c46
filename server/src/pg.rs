//! The Postgres wire endpoint: accept loop, connection limit, and one [`ConnHandler`] per
//! connection (startup and authentication here, queries in [`handler`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::auth::{StartupHandler, protocol_negotiation, save_startup_parameters_to_metadata};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{
    ClientInfo, ErrorHandler, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PgWireServerHandlers,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion};
use sluice::Database;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::metrics::Metrics;

/// Who is running what, for CancelRequest and graceful stops.
mod cancel;
/// `SET`, `SHOW`, transactions and catalog queries answered by the server.
mod catalog;
/// COPY, DECLARE, FETCH, MOVE and CLOSE: parsed by the server, not the engine.
mod command;
/// COPY FROM STDIN and COPY TO STDOUT.
mod copy;
/// DECLARE / FETCH / CLOSE.
mod cursor;
/// Arrow values as Postgres text and binary values.
mod encode;
/// The message path's parsers as fuzz entry points (not an API).
#[doc(hidden)]
pub mod fuzzing;
/// The query protocol handlers.
mod handler;
/// `$n` parameters: where, which type, and as literals.
mod params;
/// `pg_catalog` and `information_schema` tables built from the real catalog.
mod pg_catalog;
/// Statements on blocking threads, batches through a bounded channel.
mod runner;
/// SCRAM-SHA-256.
pub(crate) mod scram;

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub db: Database,
    pub metrics: Arc<Metrics>,
    pub secret: Option<scram::Secret>,
    pub registry: Arc<cancel::Registry>,
    pub shutting_down: AtomicBool,
    /// The most a COPY FROM STDIN holds in memory (see `Config::copy_max_bytes`).
    pub copy_max_bytes: usize,
}

impl Shared {
    pub fn new(db: Database, metrics: Arc<Metrics>, password: Option<&str>, copy_max_bytes: usize) -> Self {
        Shared {
            db,
            metrics,
            secret: password.map(scram::Secret::new),
            registry: Arc::default(),
            shutting_down: AtomicBool::new(false),
            copy_max_bytes,
        }
    }

    /// Cancels every running statement and waits for connections to go idle.
    pub async fn drain(&self, grace: std::time::Duration) {
        self.shutting_down.store(true, Ordering::Release);
        if !self.registry.wait_idle(grace).await {
            tracing::warn!("statements still running after {grace:?}: cancelling them");
            self.registry.cancel_all();
            self.registry.wait_idle(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// Per-connection state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Refused by the connection limit: the startup answers 53300.
    over_limit: bool,
    scram: Mutex<Option<scram::Exchange>>,
    pub session: Mutex<Option<Arc<catalog::Session>>>,
    pub entry: Mutex<Option<Arc<cancel::ConnEntry>>>,
    guard: Mutex<Option<cancel::ConnGuard>>,
    pub portals: handler::PortalRuns,
    /// The COPY FROM STDIN in progress.
    pub copy: Mutex<Option<copy::Pending>>,
    /// Open cursors.
    pub cursors: cursor::Cursors,
}

/// The handlers of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandler {
    pub shared: Arc<Shared>,
    pub state: Arc<ConnState>,
}

struct Handlers(Arc<ConnHandler>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.0.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.0.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }
    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.0.clone()
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.0.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.0.clone()
    }
}

impl ErrorHandler for ConnHandler {}

#[async_trait]
impl CancelHandler for ConnHandler {
    async fn on_cancel_request(&self, req: CancelRequest) {
        if self.shared.registry.cancel(req.pid, &req.secret_key) {
            Metrics::add(&self.shared.metrics.pg_cancels, 1);
        }
    }
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message.into())))
}

impl ConnHandler {
    async fn finish_login<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_else(|| "sluice".into());
        let database = client.metadata().get(METADATA_DATABASE).cloned().unwrap_or_else(|| user.clone());
        let params: BTreeMap<String, String> = client.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let session = Arc::new(catalog::Session::new(user, database, &params));
        let long_key = client.protocol_version() != ProtocolVersion::PROTOCOL3_0;
        let (entry, secret, guard) = self.shared.registry.register(long_key);
        *session.pid.lock() = entry.pid;
        client.set_pid_and_secret_key(entry.pid, secret.clone());
        client.feed(PgWireBackendMessage::Authentication(Authentication::Ok)).await?;
        for (k, v) in session.startup_parameters() {
            client.feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(k, v))).await?;
        }
        client.feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(entry.pid, secret))).await?;
        client.send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(TransactionStatus::Idle))).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        *self.state.session.lock() = Some(session);
        *self.state.entry.lock() = Some(entry);
        *self.state.guard.lock() = Some(guard);
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for ConnHandler {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                if self.state.over_limit {
                    return Err(fatal("53300", "sorry, too many clients already"));
                }
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    return Err(fatal("57P03", "the server is shutting down"));
                }
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                match &self.shared.secret {
                    None => self.finish_login(client).await,
                    Some(_) => {
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(vec![
                                "SCRAM-SHA-256".into(),
                            ])))
                            .await?;
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let Some(secret) = &self.shared.secret else {
                    return Err(fatal("08P01", "unexpected password message"));
                };
                let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
                let failed = |why: String| {
                    tracing::info!(user = %user, reason = %why, "authentication failed");
                    fatal("28P01", format!("password authentication failed for user \"{user}\""))
                };
                let pending = self.state.scram.lock().take();
                match pending {
                    None => {
                        let first = msg.into_sasl_initial_response()?;
                        if first.auth_method != "SCRAM-SHA-256" {
                            return Err(failed(format!("mechanism {} not offered", first.auth_method)));
                        }
                        let data = first.data.unwrap_or_default();
                        let (ex, server_first) = scram::server_first(secret, &data).map_err(failed)?;
                        *self.state.scram.lock() = Some(ex);
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(
                                server_first.into_bytes().into(),
                            )))
                            .await?;
                        Ok(())
                    }
                    Some(ex) => {
                        let resp = msg.into_sasl_response()?;
                        let server_final = scram::server_final(secret, &ex, &resp.data).map_err(failed)?;
                        client
                            .feed(PgWireBackendMessage::Authentication(Authentication::SASLFinal(
                                server_final.into_bytes().into(),
                            )))
                            .await?;
                        self.finish_login(client).await
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

/// Accepts Postgres connections until `stop` turns true, then waits for them to end.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    grace: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let permit = limit.clone().try_acquire_owned().ok();
                if permit.is_none() {
                    Metrics::add(&shared.metrics.pg_connections_refused, 1);
                    tracing::warn!(%peer, max_connections, "connection limit reached");
                } else {
                    Metrics::add(&shared.metrics.pg_connections, 1);
                }
                let state = ConnState { over_limit: permit.is_none(), ..Default::default() };
                let handler = Arc::new(ConnHandler { shared: shared.clone(), state: Arc::new(state) });
                let metrics = shared.metrics.clone();
                conns.spawn(async move {
                    let counted = permit.is_some();
                    if counted {
                        Metrics::add(&metrics.pg_connections_active, 1);
                    }
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, Handlers(handler)).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    if counted {
                        metrics.pg_connections_active.fetch_sub(1, Ordering::Relaxed);
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    // Statements in flight finish (or are cancelled after the grace period); then every
    // connection is closed.
    shared.drain(grace).await;
    conns.shutdown().await;
}
