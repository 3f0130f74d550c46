//! HTTP ingest, health and metrics with a tiny HTTP/1.1 client over a std TcpStream.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sluice::{ScanRequest, StreamDef};
use sluice_server::{Config, ServerHandle};

use crate::server_pg::start;

/// Sends one request (`Connection: close`) and returns (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body); // the server may answer (413) and close before reading it all
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn rows(server: &ServerHandle, stream: &str) -> usize {
    let db = server.database();
    db.scan(stream, &ScanRequest::all()).unwrap().map(|b| b.unwrap().num_rows()).sum()
}

fn setup() -> (ServerHandle, SocketAddr) {
    let server = start(Config { http_body_limit: 64 * 1024, ..Config::ephemeral() });
    server
        .database()
        .execute("CREATE STREAM ev (id int64, name nullable(string), ts datetime64(3), tag low_cardinality(string) DEFAULT 'none', ok bool DEFAULT true)")
        .unwrap();
    let addr = server.http_addr().unwrap();
    (server, addr)
}

#[test]
fn server_http_ingest_valid_json_lines_and_arrays() {
    let (server, addr) = setup();
    let body = b"{\"id\": 1, \"name\": \"a\", \"ts\": \"2024-01-01T00:00:00Z\", \"tag\": \"x\"}\n\n{\"id\": 2, \"ts\": 1704067200.25}\n";
    let (status, resp) = request(addr, "POST", "/ingest/ev", &[("Content-Type", "application/x-ndjson")], body);
    assert_eq!((status, resp.as_str()), (200, r#"{"rows":2}"#));
    let body = br#"[{"id": 3, "ts": "2024-01-01 00:00:01.500", "ok": false}, {"id": "4", "name": null, "ts": 1}]"#;
    let (status, resp) = request(addr, "POST", "/ingest/ev", &[], body);
    assert_eq!((status, resp.as_str()), (200, r#"{"rows":2}"#));
    assert_eq!(rows(&server, "ev"), 4);
    // Omitted columns took their defaults.
    let all: Vec<_> = server.database().scan("ev", &ScanRequest::all().columns(["id", "tag", "ok"])).unwrap().collect();
    let text: Vec<String> = all
        .iter()
        .flat_map(|b| {
            let b = b.as_ref().unwrap();
            (0..b.num_rows())
                .map(|r| {
                    (0..3)
                        .map(|c| sluice::text::format_value(b.column(c), r).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for want in ["1,x,true", "2,none,true", "3,none,false", "4,none,true"] {
        assert!(text.contains(&want.to_string()), "{want} in {text:?}");
    }
    // A running view shows in the streaming gauges.
    let db = server.database().clone();
    db.execute("CREATE MATERIALIZED VIEW v AS SELECT count() AS n FROM ev EMIT ON UPDATE").unwrap();
    db.sync(std::time::Duration::from_secs(10)).unwrap();
    let (status, metrics) = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(metrics.contains("sluice_ingest_rows_total 4"), "{metrics}");
    assert!(metrics.contains("sluice_streams 2"), "{metrics}");
    assert!(metrics.contains("sluice_views 1"), "{metrics}");
    assert!(metrics.contains("sluice_streaming_late_rows 0"), "{metrics}");
    // Storage counters and each view's lag (caught up after sync).
    assert!(metrics.contains("sluice_view_lag_rows{view=\"v\"} 0"), "{metrics}");
    assert!(metrics.contains("sluice_flush_duration_seconds_count "), "{metrics}");
    let appended: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_rows_appended_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sluice_rows_appended_total in {metrics}"));
    assert!(appended >= 4, "{appended}");
    assert_eq!(request(addr, "GET", "/health", &[], b""), (200, "ok".to_string()));
    server.shutdown().unwrap();
}

#[test]
fn server_http_ingest_rejects_bad_requests_whole() {
    let (server, addr) = setup();
    let cases: [(&[u8], u16, &str); 6] = [
        (b"{\"id\": 1, \"ts\": 0}\n{\"id\": \"x\", \"ts\": 0}", 400, "\"row\":2"),
        (b"[{\"id\": 1, \"ts\": 0}, {\"id\": 2, \"ts\": \"not a time\"}]", 400, "\"column\":\"ts\""),
        (b"[{\"id\": 1, \"ts\": 0, \"nope\": 1}]", 400, "\"column\":\"nope\""),
        (b"[{\"id\": 1, \"ts\": 0}, {\"id\": null, \"ts\": 0}]", 400, "null"),
        (b"{\"id\": 1, \"ts\": 0}\n{\"id\": 2,", 400, "malformed JSON"),
        (b"[{\"ts\": 0}]", 400, "\"column\":\"id\""),
    ];
    for (body, want, needle) in cases {
        let (status, resp) = request(addr, "POST", "/ingest/ev", &[], body);
        assert_eq!(status, want, "{}: {resp}", String::from_utf8_lossy(body));
        assert!(resp.contains(needle), "{resp} should contain {needle}");
    }
    assert_eq!(rows(&server, "ev"), 0, "nothing of a rejected request is written");
    let (status, resp) = request(addr, "POST", "/ingest/nope", &[], b"[]");
    assert_eq!(status, 404, "{resp}");
    server.shutdown().unwrap();
}

#[test]
fn server_http_ingest_body_limit() {
    let (server, addr) = setup();
    let row = b"{\"id\": 1, \"ts\": 0}\n";
    let big: Vec<u8> = row.iter().copied().cycle().take(100 * 1024).collect();
    let (status, _) = request(addr, "POST", "/ingest/ev", &[], &big);
    assert_eq!(status, 413);
    // With Expect: 100-continue the answer comes before the body is sent.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /ingest/ev HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413, "refused without reading the body");
    // Chunked bodies (no Content-Length) are cut at the limit too.
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("POST /ingest/ev HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    for chunk in big.chunks(8192) {
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
            || s.write_all(chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413);
    assert_eq!(rows(&server, "ev"), 0);
    // Just under the limit is fine.
    let ok: Vec<u8> = row.iter().copied().cycle().take(row.len() * 1000).collect();
    let (status, resp) = request(addr, "POST", "/ingest/ev", &[], &ok);
    assert_eq!((status, resp.as_str()), (200, r#"{"rows":1000}"#));
    let _ = StreamDef::new("unused", vec![]);
    server.shutdown().unwrap();
}

/// Every row of a SQL query over the server's database, as text.
fn sql_rows(server: &ServerHandle, sql: &str) -> Vec<Vec<String>> {
    let batch = server.database().query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).concat().unwrap();
    (0..batch.num_rows())
        .map(|r| {
            (0..batch.num_columns())
                .map(|c| sluice::text::format_value(batch.column(c), r).unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

fn metric(addr: SocketAddr, name: &str) -> String {
    let (status, metrics) = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
        .unwrap_or_else(|| panic!("{name} not in {metrics}"))
}

#[test]
fn server_http_dead_letter_stream_receives_rejected_requests() {
    let (server, addr) = setup();
    let db = server.database().clone();
    db.execute("CREATE STREAM dl (id int64, v float64 DEFAULT 0) SETTINGS dead_letter_stream = 'dl_dlq'").unwrap();
    // Created with the stream, in Moose's dead-letter shape; SHOW CREATE round-trips the setting.
    let cols = sql_rows(&server, "DESCRIBE dl_dlq");
    let cols: Vec<String> = cols.iter().map(|c| format!("{} {}", c[0], c[1])).collect();
    assert_eq!(
        cols[..5],
        [
            "original_record string",
            "error_message string",
            "error_type string",
            "failed_at datetime64(3, 'UTC')",
            "source string"
        ]
    );
    let shown = sql_rows(&server, "SHOW CREATE STREAM dl")[0][0].clone();
    assert!(shown.contains("dead_letter_stream = 'dl_dlq'"), "{shown}");
    db.execute("DROP STREAM dl").unwrap();
    db.execute(&shown).unwrap();
    assert_eq!(db.stream_def("dl").unwrap().settings.dead_letter_stream.as_deref(), Some("dl_dlq"));

    // A valid request: written, nothing dead-lettered.
    let (status, resp) = request(addr, "POST", "/ingest/dl", &[], b"{\"id\": 1}\n{\"id\": 2, \"v\": 2.5}");
    assert_eq!((status, resp.as_str()), (200, r#"{"rows":2}"#));
    assert_eq!(rows(&server, "dl_dlq"), 0);

    // An invalid one: 400 naming the row, nothing written to `dl`, every record in the DLQ.
    let body = b"{\"id\": 3}\n{\"id\": \"x\"}\n{\"id\": 5, \"nope\": 1}";
    let (status, resp) = request(addr, "POST", "/ingest/dl", &[], body);
    assert_eq!(status, 400, "{resp}");
    // (Unknown columns are checked before values, so row 3 is the one named.)
    for needle in [
        "\"row\":3",
        "\"column\":\"nope\"",
        "\"error_type\":\"unknown_column\"",
        "\"stream\":\"dl_dlq\"",
        "\"records\":3",
    ] {
        assert!(resp.contains(needle), "{needle} in {resp}");
    }
    assert!(resp.contains("nothing was written to 'dl'"), "{resp}");
    assert_eq!(rows(&server, "dl"), 2, "the rejected request wrote nothing");
    let mut got = sql_rows(
        &server,
        "SELECT original_record, error_type, error_message, source, failed_at > now64() - INTERVAL 1 MINUTE FROM table(dl_dlq)",
    );
    got.sort();
    assert_eq!(got.len(), 3, "{got:?}");
    let expect = [
        ("{\"id\": \"x\"}", "invalid_value", "row 2: column 'id': expected an int64"),
        (
            "{\"id\": 3}",
            "request_rejected",
            "row 1: not written: the request was refused as a whole (row 3: column 'nope'",
        ),
        ("{\"id\": 5, \"nope\": 1}", "unknown_column", "row 3: column 'nope'"),
    ];
    for (row, (original, kind, message)) in got.iter().zip(expect) {
        assert_eq!((row[0].as_str(), row[1].as_str()), (original, kind), "{row:?}");
        assert!(row[2].contains(message), "{message} in {row:?}");
        assert_eq!((row[3].as_str(), row[4].as_str()), ("http:/ingest/dl", "true"), "{row:?}");
    }
    // A malformed array is one record: the body.
    let (status, resp) = request(addr, "POST", "/ingest/dl", &[], b"[{\"id\": 1},");
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("\"records\":1"), "{resp}");
    assert_eq!(sql_rows(&server, "SELECT count() FROM table(dl_dlq) WHERE error_type = 'malformed_json'"), [["1"]]);
    assert_eq!(metric(addr, "sluice_ingest_dead_letters_total"), "4");

    // A stream without the setting dead-letters nothing.
    let (status, resp) = request(addr, "POST", "/ingest/ev", &[], b"[{\"id\": \"x\", \"ts\": 0}]");
    assert_eq!(status, 400, "{resp}");
    assert!(!resp.contains("dead_letter"), "{resp}");
    assert_eq!(metric(addr, "sluice_ingest_dead_letters_total"), "4");
    assert_eq!(db.streams().len(), 3, "ev, dl, dl_dlq: no other stream was created");

    // The DLQ dropped: the next rejection creates it again. Replaced by a stream of the wrong
    // shape: the request is still refused, the failure is said, logged and counted.
    db.execute("DROP STREAM dl_dlq").unwrap();
    let (status, resp) = request(addr, "POST", "/ingest/dl", &[], b"[{\"id\": null}]");
    assert_eq!(status, 400, "{resp}");
    assert_eq!(sql_rows(&server, "SELECT error_type FROM table(dl_dlq)"), [["missing_value"]]);
    db.execute("DROP STREAM dl_dlq").unwrap();
    db.execute("CREATE STREAM dl_dlq (original_record int64)").unwrap();
    let (status, resp) = request(addr, "POST", "/ingest/dl", &[], b"[{\"id\": null}]");
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("could not be written to dead-letter stream 'dl_dlq'"), "{resp}");
    assert_eq!(metric(addr, "sluice_ingest_dead_letter_failures_total"), "1");
    assert_eq!(rows(&server, "dl"), 2);
    server.shutdown().unwrap();
}

#[test]
fn server_http_dead_letter_setting_is_checked_at_create() {
    let (server, _) = setup();
    let db = server.database();
    let e = db.execute("CREATE STREAM a (id int64) SETTINGS dead_letter_stream = 'ev'").unwrap_err();
    assert!(e.to_string().contains("cannot be a dead-letter stream"), "{e}");
    assert!(e.to_string().contains("original_record string"), "{e}");
    let e = db.execute("CREATE STREAM a (id int64) SETTINGS dead_letter_stream = 'no good'").unwrap_err();
    assert!(e.to_string().contains("not a stream name"), "{e}");
    let e = db.execute("CREATE STREAM a (id int64) SETTINGS dead_letter_stream = 'a'").unwrap_err();
    assert!(e.to_string().contains("its own"), "{e}");
    assert!(db.stream_def("a").is_err(), "nothing created by a refused CREATE");
    assert_eq!(sluice_server::sqlstate(&e), "42P17");
    server.shutdown().unwrap();
}
