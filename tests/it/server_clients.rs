//! Real Postgres drivers against the server: psycopg 3 (Python), node-postgres and pgjdbc, each
//! one script under `tests/clients/` run once against a server on a loopback port chosen by the
//! OS, bounded in time. A missing driver is a skip, unless `SLUICE_REQUIRE_INTEROP=1` (set by
//! `.ci/run`; `.ci/install-deps.sh` installs them) makes it a failure. pgjdbc needs a JDK: without
//! `java` it is skipped even in CI.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_server::{Config, ServerHandle};

use crate::server_pg::start;

/// How long one client script may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether to run a client test: true if `available`; otherwise a skip, or a panic under
/// `SLUICE_REQUIRE_INTEROP=1`.
fn present(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("SLUICE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{what} is required (SLUICE_REQUIRE_INTEROP=1): run .ci/install-deps.sh");
    }
    eprintln!("skipping: {what} not available (run .ci/install-deps.sh)");
    false
}

/// Runs `cmd` with `--port <the server's Postgres port>` and asserts it exits 0 within
/// [`CLIENT_TIMEOUT`], showing its output otherwise.
fn run_client(server: &ServerHandle, mut cmd: Command) {
    let port = server.pg_addr().port().to_string();
    cmd.args(["--port", &port]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{shown}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // Waiting for a child process (not for the engine): nothing to be notified by.
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) if s.success() => eprintln!("{}", out.trim()),
        Some(s) => panic!("{shown} failed ({s})\n--- stdout\n{out}\n--- stderr\n{err}"),
        None => panic!("{shown} did not finish in {CLIENT_TIMEOUT:?}\n--- stdout\n{out}\n--- stderr\n{err}"),
    }
}

/// psycopg 3: parameters (text and binary, several types), a historical SELECT, a streaming
/// SELECT read row by row and cancelled (57014), a server-side cursor in a transaction, a live
/// row reaching a waiting reader, SQLSTATEs of errors.
#[test]
fn server_client_psycopg() {
    if !present("python3 with psycopg 3", succeeds("python3", &["-c", "import psycopg"])) {
        return;
    }
    let server = start(Config::ephemeral());
    let mut cmd = Command::new("python3");
    cmd.arg(clients_dir().join("psycopg_test.py"));
    run_client(&server, cmd);
    server.shutdown().unwrap();
}

/// node-postgres: parameters (numbers, strings, booleans, Dates, NULL, int8 beyond 2^53),
/// unnamed and named prepared statements, array row mode, a streaming SELECT ended by LIMIT,
/// SQLSTATEs of errors.
#[test]
fn server_client_node_postgres() {
    let installed = clients_dir().join("node/node_modules/pg/package.json").exists();
    if !present("node with the pg package in tests/clients/node", installed && succeeds("node", &["--version"])) {
        return;
    }
    let server = start(Config::ephemeral());
    let mut cmd = Command::new("node");
    cmd.arg(clients_dir().join("node_test.js"));
    run_client(&server, cmd);
    server.shutdown().unwrap();
}

/// pgjdbc (the JDK's source launcher runs the test file): prepared statements (server-side
/// after five runs), typed setters and getters, NULL, a streaming SELECT read with a fetch size
/// and cancelled (57014), SQLSTATEs of errors. The driver jar is `SLUICE_PGJDBC_JAR` or
/// Debian's `/usr/share/java/postgresql.jar`.
#[test]
fn server_client_pgjdbc() {
    if !succeeds("java", &["-version"]) {
        eprintln!("skipping: no JDK (java) installed, so no pgjdbc test");
        return;
    }
    let jar = std::env::var("SLUICE_PGJDBC_JAR").unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    if !present(&format!("the pgjdbc driver ({jar})"), Path::new(&jar).exists()) {
        return;
    }
    let server = start(Config::ephemeral());
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(&jar).arg(clients_dir().join("PgjdbcTest.java"));
    run_client(&server, cmd);
    server.shutdown().unwrap();
}
