//! [`Server`]: opens the database, binds both endpoints on one tokio runtime, and stops them
//! gracefully: stop accepting, let running statements finish (cancelling those still running
//! after the grace period), close the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice::{Database, Options};
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::{Error, Result, http, pg};

/// Entry points.
#[derive(Debug)]
pub struct Server;

/// A running server. [`ServerHandle::shutdown`] stops it; dropping it stops it too.
#[derive(Debug)]
pub struct ServerHandle {
    runtime: Option<tokio::runtime::Runtime>,
    pg_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    db: Database,
    metrics: Arc<Metrics>,
    shared: Arc<pg::Shared>,
}

impl Server {
    /// Opens the database in `config.data_dir` and starts serving.
    pub fn start(config: Config) -> Result<ServerHandle> {
        config.validate()?;
        let db = Database::open(&config.data_dir, Options::default())?;
        Self::start_with(config, db)
    }

    /// Serves an open database (tests use `Database::in_memory()`).
    pub fn start_with(config: Config, db: Database) -> Result<ServerHandle> {
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(config.max_connections + 64)
            .thread_name("sluice-net")
            .enable_all()
            .build()
            .map_err(|source| Error::Io { what: "starting the tokio runtime".into(), source })?;
        let metrics = Arc::new(Metrics::default());
        let shared =
            Arc::new(pg::Shared::new(db.clone(), metrics.clone(), config.password.as_deref(), config.copy_max_bytes));
        let (stop, stop_rx) = watch::channel(false);
        let pg_listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.pg_listen))
            .map_err(|source| Error::Bind { addr: config.pg_listen, source })?;
        let pg_addr = pg_listener.local_addr().map_err(|source| Error::Bind { addr: config.pg_listen, source })?;
        let mut tasks = vec![runtime.spawn(pg::serve(
            pg_listener,
            shared.clone(),
            config.max_connections,
            config.shutdown_grace,
            stop_rx.clone(),
        ))];
        let mut http_addr = None;
        if let Some(addr) = config.http_listen {
            let listener =
                runtime.block_on(tokio::net::TcpListener::bind(addr)).map_err(|source| Error::Bind { addr, source })?;
            http_addr = Some(listener.local_addr().map_err(|source| Error::Bind { addr, source })?);
            let app = http::router(http::HttpState {
                db: db.clone(),
                metrics: metrics.clone(),
                body_limit: config.http_body_limit,
            });
            let mut rx = stop_rx.clone();
            tasks.push(runtime.spawn(async move {
                let shutdown = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
        }
        tracing::info!(
            postgres = %pg_addr,
            http = %http_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            data_dir = %db.dir().display(),
            auth = if config.password.is_some() { "scram-sha-256" } else { "trust" },
            "sluice listening"
        );
        Ok(ServerHandle { runtime: Some(runtime), pg_addr, http_addr, stop, tasks, db, metrics, shared })
    }
}

impl ServerHandle {
    /// The Postgres address actually bound.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
    }

    /// The HTTP address actually bound, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The database served.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Blocks until SIGTERM or Ctrl-C.
    pub fn wait_for_signal(&self) {
        let Some(rt) = &self.runtime else { return };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        tracing::info!("signal received: shutting down");
    }

    /// Stops gracefully: no new connections or requests, running statements finish (those
    /// still running after the grace period are cancelled), connections close, the database
    /// closes. Must not be called from inside an async runtime.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        let Some(rt) = self.runtime.take() else { return Ok(()) };
        self.shared.shutting_down.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        // One deadline for everything, so that a stop takes well under 5 s.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(4_200);
        rt.block_on(async {
            for t in tasks {
                let _ = tokio::time::timeout_at(deadline, t).await;
            }
        });
        rt.shutdown_timeout(Duration::from_millis(500));
        self.db.close()?;
        tracing::info!("sluice stopped");
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!(error = %e, "closing the database failed");
        }
    }
}
