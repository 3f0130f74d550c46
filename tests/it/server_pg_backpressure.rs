//! A slow consumer over the Postgres wire: a streaming SELECT whose client stops reading while
//! another connection inserts about 220 MB. The query is pulled by the connection (a channel of
//! two batches between the query's thread and the socket), so it stops reading the stream: its
//! `rows_in` in `system.queries` stays within a few chunks while millions of rows arrive, the
//! rows it has not read stay in the stream's storage, and other connections keep working.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice::Database;
use sluice_server::{Config, Server};
use tokio_postgres::Client;

use crate::server_pg::{connect, rows_of};

/// Rows a subscription hands over at most in one batch (`MAX_CHUNK_ROWS` in
/// `engine/src/subscribe.rs`).
const CHUNK_ROWS: u64 = 65_536;
/// What a stalled query may have read: the batches in the server's channel (2), the one its
/// thread waits to send, the one the connection is writing (whose rows fill the socket
/// buffers), and one inside the query.
const MAX_ROWS_IN: u64 = 5 * CHUNK_ROWS;
const BATCHES: u64 = 20;
const BATCH_ROWS: u64 = 100_000;

/// A Postgres client that speaks just enough of the protocol by hand, so that it can stop
/// reading.
struct RawClient {
    sock: TcpStream,
}

impl RawClient {
    fn connect(addr: std::net::SocketAddr) -> Self {
        let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes()); // protocol 3.0
        for s in ["user", "sluice", "database", "sluice", ""] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        sock.write_all(&msg).unwrap();
        let mut c = RawClient { sock };
        while c.next_message().0 != b'Z' {}
        c
    }

    /// Sends a simple Query.
    fn query(&mut self, sql: &str) {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        msg.extend_from_slice(sql.as_bytes());
        msg.push(0);
        self.sock.write_all(&msg).unwrap();
    }

    /// The next message: its type and body. Panics on an ErrorResponse.
    fn next_message(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        self.sock.read_exact(&mut head).unwrap();
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.sock.read_exact(&mut body).unwrap();
        assert_ne!(head[0], b'E', "error response: {}", String::from_utf8_lossy(&body));
        (head[0], body)
    }
}

/// `rows_in` of the one running streaming query that reads `big`.
async fn rows_in(c: &Client) -> u64 {
    let rows = rows_of(
        &c.simple_query("SELECT rows_in FROM system.queries WHERE kind = 'query' AND position(query, 'big') > 0")
            .await
            .unwrap(),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

fn vm_rss_mb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb / 1024)
}

#[test]
fn server_slow_consumer_holds_the_query_back_and_others_keep_working() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), sluice::Options::default()).unwrap();
    let config = Config { http_listen: None, shutdown_grace: Duration::from_millis(100), ..Config::ephemeral() };
    let server = Server::start_with(config, db).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (writer, reader) = rt.block_on(async {
        let w = connect(&server).await;
        w.simple_query("CREATE STREAM big (id int64, pad string) SETTINGS ack = 'local'").await.unwrap();
        (w, connect(&server).await)
    });

    // The slow consumer: starts a streaming SELECT and reads nothing after its RowDescription.
    let mut slow = RawClient::connect(server.pg_addr());
    slow.query("SELECT id, pad FROM big");
    while slow.next_message().0 != b'T' {}

    let rss_before = vm_rss_mb();
    let mut rss_max = rss_before;
    let mut slowest_answer = Duration::ZERO;
    let mut max_rows_in = 0;
    rt.block_on(async {
        let wait = Duration::from_secs(10);
        for i in 0..BATCHES {
            let sql = format!(
                "INSERT INTO big (id, pad) SELECT number + {}, repeat('x', 100) FROM numbers({BATCH_ROWS})",
                i * BATCH_ROWS
            );
            tokio::time::timeout(wait, writer.simple_query(&sql)).await.expect("insert in time").unwrap();
            // Another connection gets historical answers meanwhile.
            let t = Instant::now();
            let count = tokio::time::timeout(wait, reader.simple_query("SELECT count() FROM table(big)"))
                .await
                .expect("historical query in time")
                .unwrap();
            slowest_answer = slowest_answer.max(t.elapsed());
            assert_eq!(rows_of(&count)[0][0].as_deref(), Some((i + 1) * BATCH_ROWS).map(|n| n.to_string()).as_deref());
            let n = rows_in(&reader).await;
            max_rows_in = max_rows_in.max(n);
            assert!(n <= MAX_ROWS_IN, "the stalled query read {n} rows after {} inserted", (i + 1) * BATCH_ROWS);
            rss_max = rss_max.max(vm_rss_mb());
        }
    });
    assert!(slowest_answer < Duration::from_secs(5), "a historical query took {slowest_answer:?}");
    eprintln!(
        "slow consumer: {} rows inserted, the stalled query read at most {max_rows_in}; slowest historical \
         answer {slowest_answer:?}; test process RSS {rss_before:?} -> max {rss_max:?} MB",
        BATCHES * BATCH_ROWS
    );

    // The client reads again: the query was held back, not stuck, and catches up past the bound.
    let mut received = 0u64;
    while received <= MAX_ROWS_IN + 1 {
        let (kind, _) = slow.next_message();
        if kind == b'D' {
            received += 1;
        }
    }
    let n = rt.block_on(rows_in(&reader));
    assert!(n > MAX_ROWS_IN, "the query read {n} rows after its client resumed");
    drop(slow);
    drop((writer, reader));
    drop(rt);
    server.shutdown().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
