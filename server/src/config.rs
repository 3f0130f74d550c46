//! [`Config`]: what `sluice serve` is told on its command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// Server settings. `Config::default()` is what `sluice serve` uses without flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory of the database.
    pub data_dir: PathBuf,
    /// Postgres wire address (`127.0.0.1:5433`); port 0 picks a free port.
    pub pg_listen: SocketAddr,
    /// HTTP address (`127.0.0.1:8433`); `None` turns HTTP off.
    pub http_listen: Option<SocketAddr>,
    /// With a password, every Postgres client authenticates with SCRAM-SHA-256 (any user
    /// name); without one, clients are trusted (loopback only unless `insecure`).
    pub password: Option<String>,
    /// Allow a non-loopback listen address without a password.
    pub insecure: bool,
    /// Most Postgres connections open at once; more are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// Largest HTTP request body (413 above it).
    pub http_body_limit: usize,
    /// How long a graceful stop waits for running statements before cancelling them.
    pub shutdown_grace: Duration,
    /// The most a `COPY ... FROM STDIN` may hold in memory, about the size of its parsed rows
    /// (a COPY is all-or-nothing, so its rows are kept until it ends and then appended at
    /// once). A larger COPY fails with SQLSTATE 54000 and writes nothing.
    pub copy_max_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./sluice-data"),
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8433))),
            password: None,
            insecure: false,
            max_connections: 256,
            http_body_limit: 10 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(3),
            copy_max_bytes: 128 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Loopback addresses with free ports (for tests and examples).
    pub fn ephemeral() -> Self {
        Self {
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Self::default()
        }
    }

    /// Checks the settings: a listen address reachable from other machines needs a password
    /// unless `insecure` is set.
    pub fn validate(&self) -> Result<()> {
        if self.password.is_none() && !self.insecure {
            let exposed: Vec<SocketAddr> =
                std::iter::once(self.pg_listen).chain(self.http_listen).filter(|a| !a.ip().is_loopback()).collect();
            if let Some(a) = exposed.first() {
                return Err(Error::Config(format!(
                    "refusing to listen on {a} (not a loopback address) without a password: \
                     give --password-file, or --insecure to allow it anyway"
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        if matches!(&self.password, Some(p) if p.is_empty()) {
            return Err(Error::Config("the password is empty".into()));
        }
        Ok(())
    }
}
