//! `sluice`: the server binary. Postgres wire, HTTP ingest and the CLI arrive with issue E; until
//! then `sluice serve` only reports that the server is not built yet.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("serve") => {
            eprintln!(
                "sluice serve: the network server is not implemented yet (issue E); \
                 the storage engine underneath is being built first"
            );
            ExitCode::from(2)
        }
        _ => {
            eprintln!("usage: sluice serve [--data-dir DIR]   (server arrives with issue E)");
            eprintln!("       sluice --version");
            ExitCode::from(2)
        }
    }
}
