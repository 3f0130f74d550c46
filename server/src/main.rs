//! `sluice`: the command line. `sluice serve` runs the server (Postgres wire + HTTP);
//! `sluice sql` runs SQL on a data directory without a server.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::{Database, Options, Output};
use sluice_server::{Config, Server};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "sluice: a streaming database in one process (Timeplus Proton's SQL dialect).",
    long_about = "sluice: a streaming database in one process (Timeplus Proton's SQL dialect).\n\n\
        `sluice serve` starts the server: Postgres wire protocol (psql, drivers) and HTTP ingest\n\
        (POST /ingest/<stream> with JSON lines or a JSON array, GET /health, GET /metrics).\n\
        `sluice sql` runs SQL directly on a data directory (no server; stop the server first).\n\
        `sluice check` verifies a data directory without changing it (exit code 1 on damage)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGTERM or Ctrl-C.
    Serve {
        /// Data directory (created if missing).
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        /// Postgres wire address.
        #[arg(long, default_value = "127.0.0.1:5433")]
        pg_listen: String,
        /// HTTP address (ingest, health, metrics); "off" disables HTTP.
        #[arg(long, default_value = "127.0.0.1:8433")]
        http_listen: String,
        /// Log level: error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: String,
        /// File whose first line is the password; clients then authenticate with
        /// SCRAM-SHA-256. The SLUICE_PASSWORD environment variable works too.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Allow listening on a non-loopback address without a password.
        #[arg(long)]
        insecure: bool,
        /// Most Postgres connections at once.
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
    },
    /// Run SQL on a data directory and print the results as tables. Without -c, reads
    /// statements from standard input (a prompt when it is a terminal).
    Sql {
        /// Data directory.
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        /// SQL to run (may be given several times; each may hold several statements).
        #[arg(short = 'c', long = "command")]
        commands: Vec<String>,
    },
    /// Verify a data directory without changing it: the catalog, every manifest and part
    /// (every checksum, every row group decoded), every log segment (every frame checksum) and
    /// every view's files. Prints each problem with its file and offset. Exit code 0 when
    /// nothing is damaged (a torn tail or leftover files that opening repairs are listed but
    /// are not damage), 1 when something is, 2 when the directory cannot be checked.
    Check {
        /// Data directory (stop the server first).
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
    },
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address '{addr}': {e}"))?
        .next()
        .ok_or_else(|| format!("address '{addr}' resolves to nothing"))
}

fn init_logging(level: &str) -> Result<(), String> {
    let level: tracing::Level = level.parse().map_err(|_| format!("unknown log level '{level}'"))?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { data_dir, pg_listen, http_listen, log_level, password_file, insecure, max_connections } => {
            serve(data_dir, &pg_listen, &http_listen, &log_level, password_file, insecure, max_connections)
        }
        Command::Sql { data_dir, commands } => sql(data_dir, commands),
        Command::Check { data_dir } => return check(&data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    data_dir: PathBuf,
    pg_listen: &str,
    http_listen: &str,
    log_level: &str,
    password_file: Option<PathBuf>,
    insecure: bool,
    max_connections: usize,
) -> Result<(), String> {
    init_logging(log_level)?;
    let password = match password_file {
        Some(f) => {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("reading {}: {e}", f.display()))?;
            Some(text.lines().next().unwrap_or_default().trim_end().to_string())
        }
        None => std::env::var("SLUICE_PASSWORD").ok().filter(|p| !p.is_empty()),
    };
    let config = Config {
        data_dir,
        pg_listen: resolve(pg_listen)?,
        http_listen: if http_listen == "off" { None } else { Some(resolve(http_listen)?) },
        password,
        insecure,
        max_connections,
        ..Config::default()
    };
    let server = Server::start(config).map_err(|e| e.to_string())?;
    server.wait_for_signal();
    server.shutdown().map_err(|e| e.to_string())
}

fn sql(data_dir: PathBuf, commands: Vec<String>) -> Result<(), String> {
    let db = Database::open(&data_dir, Options::default()).map_err(|e| e.to_string())?;
    let mut ok = true;
    if !commands.is_empty() {
        for c in &commands {
            ok &= run(&db, c);
        }
    } else if std::io::stdin().is_terminal() {
        repl(&db);
    } else {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script).map_err(|e| e.to_string())?;
        ok = run(&db, &script);
    }
    db.close().map_err(|e| e.to_string())?;
    if ok { Ok(()) } else { Err("a statement failed".into()) }
}

fn check(data_dir: &std::path::Path) -> ExitCode {
    let report = match sluice::check(data_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot check {}: {e}", data_dir.display());
            return ExitCode::from(2);
        }
    };
    for f in &report.findings {
        println!("{f}");
    }
    let damaged = report.damage().count();
    println!(
        "checked {}: {} streams, {} shards, {} parts ({} rows), {} log records, {} views: {}",
        data_dir.display(),
        report.streams,
        report.shards,
        report.parts,
        report.part_rows,
        report.log_records,
        report.views,
        if damaged == 0 { "no damage".to_string() } else { format!("{damaged} damaged") }
    );
    if damaged == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Runs statements, printing results; false if one failed.
fn run(db: &Database, sql: &str) -> bool {
    let stmts = match sluice_sql::parse(sql) {
        Ok(s) => s,
        Err(e) => {
            let e = sluice::Error::Sql(e);
            eprintln!("ERROR ({}): {e}", sluice_server::sqlstate(&e));
            return false;
        }
    };
    for s in stmts {
        match db.execute_statement(s) {
            Ok(Output::Command { tag, notices }) => {
                for n in notices {
                    eprintln!("NOTICE: {n}");
                }
                println!("{tag}");
            }
            Ok(Output::Rows(rows)) => {
                let schema = rows.schema().clone();
                match rows.collect() {
                    Ok(batches) => print!("{}", sluice_server::table::render(&schema, &batches)),
                    Err(e) => {
                        eprintln!("ERROR ({}): {e}", sluice_server::sqlstate(&e));
                        return false;
                    }
                }
            }
            Err(e) => {
                eprintln!("ERROR ({}): {e}", sluice_server::sqlstate(&e));
                return false;
            }
        }
    }
    true
}

fn repl(db: &Database) {
    println!("sluice {} — statements end with ';', \\q quits", env!("CARGO_PKG_VERSION"));
    let stdin = std::io::stdin();
    let mut buf = String::new();
    loop {
        print!("{}", if buf.is_empty() { "sluice> " } else { "   ...> " });
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.is_empty() && matches!(line.trim(), "\\q" | "exit" | "quit") {
            break;
        }
        buf.push_str(&line);
        if buf.trim_end().ends_with(';') {
            run(db, &buf);
            buf.clear();
        }
    }
}
