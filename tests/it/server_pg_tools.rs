//! What tools do over the Postgres wire beyond queries: COPY in and out (tokio-postgres and
//! psql's `\copy`), cursors (DECLARE / FETCH / CLOSE, psql's FETCH_COUNT), and the catalog
//! questions psql and drivers ask. Every network wait has a timeout.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use sluice_server::{Config, ServerHandle};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::server_pg::{block_on, code, connect, rows_of, start};

const WAIT: Duration = Duration::from_secs(10);

async fn copy_in(c: &Client, sql: &str, chunks: &[&'static [u8]]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for ch in chunks {
        sink.send(Bytes::from_static(ch)).await?;
    }
    sink.finish().await
}

async fn copy_out(c: &Client, sql: &str) -> Result<String, tokio_postgres::Error> {
    let stream = c.copy_out(sql).await?;
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(String::from_utf8(out).unwrap())
}

async fn count(c: &Client, stream: &str) -> String {
    let rows = rows_of(&c.simple_query(&format!("SELECT count() FROM table({stream})")).await.unwrap());
    rows[0][0].clone().unwrap()
}

fn tag(msgs: &[SimpleQueryMessage]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

/// COPY FROM STDIN in text and CSV format through tokio-postgres (the extended protocol),
/// split across CopyData messages at awkward places; a bad row anywhere writes nothing and
/// names its line; COPY TO STDOUT of a query and of a whole stream.
#[test]
fn server_copy_in_and_out() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM s (id int64, name nullable(string), ok nullable(bool), at datetime64(3))")
            .await
            .unwrap();
        // Text: tabs, backslash escapes, \N, a row cut between two messages.
        let n = copy_in(
            &c,
            "COPY s (id, name, ok, at) FROM STDIN",
            &[b"1\tone\\ttab\tt\t2024-01-02 03:04:05.678\n2\t\\N\tf\t2024-01-0", b"2 00:00:00\n"],
        )
        .await
        .expect("text COPY");
        assert_eq!(n, 2);
        // CSV with a header, quotes, an embedded newline, empty = NULL, "" = empty string.
        let n = copy_in(
            &c,
            "COPY s (id, name, ok, at) FROM STDIN WITH (FORMAT csv, HEADER)",
            &[b"id,name,ok,at\n3,\"a, \"\"quoted\"\"\nline\",true,2024-01-03 00:00:00\n4,,,2024-01-04 00:00:00\n5,\"\",no,2024-01-05 00:00:00\n"],
        )
        .await
        .expect("CSV COPY");
        assert_eq!(n, 3);
        assert_eq!(count(&c, "s").await, "5");

        // A bad value on line 3 of 4: nothing of this COPY is written.
        let e = copy_in(&c, "COPY s (id, name) FROM STDIN WITH CSV", &[b"6,a\n7,b\nx,c\n8,d\n"]).await.unwrap_err();
        assert_eq!(code(&e), "22P02", "{e}");
        let msg = e.as_db_error().unwrap().message().to_string();
        assert!(msg.contains("line 3") && msg.contains("column id") && msg.contains("\"x\""), "{msg}");
        assert_eq!(count(&c, "s").await, "5", "a failed COPY writes nothing");
        let e = copy_in(&c, "COPY s (id, name) FROM STDIN", &[b"6\ta\textra\n"]).await.unwrap_err();
        assert_eq!(code(&e), "22P04", "{e}");
        let e = copy_in(&c, "COPY s (id) FROM STDIN", &[b"\\N\n"]).await.unwrap_err();
        assert_eq!(code(&e), "23502", "{e}");
        let e = copy_in(&c, "COPY nope FROM STDIN", &[]).await.unwrap_err();
        assert_eq!(code(&e), "42P01", "{e}");
        let e = copy_in(&c, "COPY s (nope) FROM STDIN", &[]).await.unwrap_err();
        assert_eq!(code(&e), "42703", "{e}");
        let e = copy_in(&c, "COPY s FROM '/etc/passwd'", &[]).await.unwrap_err();
        assert_eq!(code(&e), "0A000", "{e}");
        assert_eq!(count(&c, "s").await, "5", "the connection is usable after each error");

        // Out: a query as CSV with a header, and the whole stream in text format.
        let csv =
            copy_out(&c, "COPY (SELECT id, name, ok FROM table(s) ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
                .await
                .unwrap();
        assert_eq!(csv, "id,name,ok\n1,one\ttab,t\n2,,f\n3,\"a, \"\"quoted\"\"\nline\",t\n4,,\n5,\"\",f\n");
        let text =
            copy_out(&c, "COPY (SELECT id, name FROM table(s) WHERE id <= 3 ORDER BY id) TO STDOUT").await.unwrap();
        assert_eq!(text, "1\tone\\ttab\n2\t\\N\n3\ta, \"quoted\"\\nline\n");
        let all = copy_out(&c, "COPY s TO STDOUT").await.unwrap();
        assert_eq!(all.lines().count(), 5);
        assert!(all.contains("1\tone\\ttab\tt\t2024-01-02 03:04:05.678+00\n"), "{all}");
        // What COPY TO writes, COPY FROM reads back.
        c.simple_query("CREATE STREAM s2 (id int64, name nullable(string), ok nullable(bool), at datetime64(3))")
            .await
            .unwrap();
        let leaked: &'static [u8] = Box::leak(all.clone().into_bytes().into_boxed_slice());
        assert_eq!(copy_in(&c, "COPY s2 FROM STDIN", &[leaked]).await.unwrap(), 5);
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(str::to_string).collect();
            l.sort();
            l
        };
        assert_eq!(sorted(&copy_out(&c, "COPY s2 TO STDOUT").await.unwrap()), sorted(&all));
    });
    server.shutdown().unwrap();
}

/// A COPY larger than the server's limit is refused (54000) and writes nothing.
#[test]
fn server_copy_over_the_limit_writes_nothing() {
    let server = start(Config { copy_max_bytes: 4096, ..Config::ephemeral() });
    block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM s (id int64)").await.unwrap();
        static ROWS: &[u8] = b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let chunks = vec![ROWS; 100];
        let e = copy_in(&c, "COPY s FROM STDIN", &chunks).await.unwrap_err();
        assert_eq!(code(&e), "54000", "{e}");
        assert_eq!(count(&c, "s").await, "0");
        assert_eq!(copy_in(&c, "COPY s FROM STDIN", &[ROWS]).await.unwrap(), 10);
    });
    server.shutdown().unwrap();
}

/// DECLARE / FETCH / MOVE / CLOSE over a historical query in the simple protocol, FETCH in the
/// extended protocol, cursor errors, and a cursor over a streaming query whose FETCH waits for
/// rows inserted by another connection and ends with 57014 on cancel.
#[test]
fn server_cursors_declare_fetch_close() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM s (id int64)").await.unwrap();
        c.simple_query("INSERT INTO s (id) SELECT number FROM numbers(10)").await.unwrap();
        let msgs = c
            .simple_query(
                "BEGIN; DECLARE c NO SCROLL CURSOR FOR SELECT id FROM table(s) ORDER BY id; FETCH FORWARD 3 FROM c",
            )
            .await
            .unwrap();
        assert_eq!(rows_of(&msgs), vec![vec![Some("0".to_string())], vec![Some("1".into())], vec![Some("2".into())]]);
        assert_eq!(tag(&msgs).last(), Some(&3));
        let moved = c.simple_query("MOVE 2 IN c").await.unwrap();
        assert_eq!(tag(&moved), vec![2]);
        // The extended protocol: typed values.
        let rows = c.query("FETCH 2 FROM c", &[]).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), vec![5, 6]);
        let rest = c.simple_query("FETCH ALL FROM c").await.unwrap();
        assert_eq!(rows_of(&rest).len(), 3);
        let none = c.simple_query("FETCH NEXT FROM c").await.unwrap();
        assert_eq!((rows_of(&none).len(), tag(&none)), (0, vec![0]));
        c.simple_query("CLOSE c").await.unwrap();
        let e = c.simple_query("FETCH 1 FROM c").await.unwrap_err();
        assert_eq!(code(&e), "34000", "{e}");
        let e = c.simple_query("CLOSE c").await.unwrap_err();
        assert_eq!(code(&e), "34000", "{e}");
        c.simple_query("ROLLBACK").await.unwrap();

        // Duplicates, backwards, scrollable: refused. COMMIT closes cursors without HOLD.
        c.simple_query("BEGIN; DECLARE a CURSOR FOR SELECT 1; DECLARE h CURSOR WITH HOLD FOR SELECT 2").await.unwrap();
        let e = c.simple_query("DECLARE a CURSOR FOR SELECT 3").await.unwrap_err();
        assert_eq!(code(&e), "42P03", "{e}");
        let e = c.simple_query("FETCH BACKWARD 1 FROM a").await.unwrap_err();
        assert_eq!(code(&e), "55000", "{e}");
        let e = c.simple_query("DECLARE z SCROLL CURSOR FOR SELECT 1").await.unwrap_err();
        assert_eq!(code(&e), "0A000", "{e}");
        c.simple_query("COMMIT").await.unwrap();
        assert_eq!(code(&c.simple_query("FETCH 1 FROM a").await.unwrap_err()), "34000");
        assert_eq!(rows_of(&c.simple_query("FETCH 1 FROM h").await.unwrap()), vec![vec![Some("2".to_string())]]);
        c.simple_query("CLOSE ALL").await.unwrap();

        // A cursor over a streaming query: each FETCH waits for its rows.
        c.simple_query("DECLARE live CURSOR FOR SELECT id FROM s WHERE _tp_sn >= 0 AND id >= 100").await.unwrap();
        let w = connect(&server).await;
        assert_eq!(
            code(&w.simple_query("FETCH 1 FROM live").await.unwrap_err()),
            "34000",
            "cursors are per connection"
        );
        let pending = c.simple_query("FETCH 2 FROM live");
        let insert = async {
            w.simple_query("INSERT INTO s (id) VALUES (100), (101), (102)").await.unwrap();
        };
        let (got, ()) = tokio::join!(pending, insert);
        let got = got.unwrap();
        assert_eq!(rows_of(&got), vec![vec![Some("100".to_string())], vec![Some("101".to_string())]]);
        // One more row is there; the fourth never comes: cancel ends the wait.
        let token = c.cancel_token();
        let started = Instant::now();
        let waiting = c.simple_query_raw("FETCH 2 FROM live").await.unwrap();
        futures::pin_mut!(waiting);
        let e = loop {
            match tokio::time::timeout(WAIT, waiting.next()).await.expect("the FETCH ends after the cancel") {
                // The row at hand arrives first: the FETCH is waiting for the next one now.
                Some(Ok(SimpleQueryMessage::Row(r))) => {
                    assert_eq!(r.get(0), Some("102"));
                    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e,
                None => panic!("the FETCH ended without an error"),
            }
        };
        assert_eq!(code(&e), "57014", "{e}");
        assert!(started.elapsed() < WAIT);
        assert_eq!(code(&c.simple_query("FETCH 1 FROM live").await.unwrap_err()), "34000", "cancel closed it");
        assert_eq!(rows_of(&c.simple_query("SELECT 1").await.unwrap()).len(), 1);
    });
    server.shutdown().unwrap();
}

/// Runs psql against the server with `args`, bounded in time; `None` if psql is not installed.
pub(crate) fn psql(server: &ServerHandle, args: &[&str], stdin: Option<&str>) -> Option<(bool, String, String)> {
    use std::io::Write;
    let Ok(out) = std::process::Command::new("psql").arg("--version").output() else { return None };
    if !out.status.success() {
        return None;
    }
    let port = server.pg_addr().port().to_string();
    let mut child = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "sluice", "-d", "sluice", "-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql starts");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("psql hung: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// psql: `\copy` from a CSV file and to stdout (the simple protocol's COPY), and
/// `\set FETCH_COUNT` over a result larger than the fetch count (psql's cursor loop).
#[test]
fn server_psql_copy_and_fetch_count() {
    let server = start(Config::ephemeral());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    let mut csv = String::from("id,name\n");
    for i in 0..250 {
        csv.push_str(&format!("{i},\"n{i}, x\"\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let copy = format!("\\copy p from '{}' with csv header", file.display());
    let Some((ok, out, err)) = psql(&server, &["-c", "CREATE STREAM p (id int64, name string)", "-c", &copy], None)
    else {
        return;
    };
    assert!(ok, "psql failed: {err}");
    assert!(out.contains("COPY 250"), "{out}");
    // FETCH_COUNT 100: psql declares a cursor and fetches three times.
    let (ok, out, err) =
        psql(&server, &["-A", "-t", "-v", "FETCH_COUNT=100", "-c", "SELECT id, name FROM table(p) ORDER BY id"], None)
            .unwrap();
    assert!(ok, "psql failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 250, "{out}");
    assert_eq!((lines[0], lines[249]), ("0|n0, x", "249|n249, x"));
    // COPY from psql's stdin in text format, then out again.
    let (ok, out, err) = psql(
        &server,
        &[
            "-c",
            "\\copy p from stdin",
            "-c",
            "\\copy (SELECT name FROM table(p) WHERE id >= 1000 ORDER BY id) to stdout",
        ],
        Some("1000\tfrom stdin\n1001\tt\\tab\n\\.\n"),
    )
    .unwrap();
    assert!(ok, "psql failed: {err}");
    assert!(out.contains("from stdin\nt\\tab\n"), "{out}");
    // A bad row: psql reports the line, nothing is written.
    let (ok, _, err) = psql(&server, &["-c", "\\copy p from stdin with csv"], Some("2000,a\nbad,b\n")).unwrap();
    assert!(!ok && err.contains("line 2"), "{err}");
    let (_, out, _) = psql(&server, &["-A", "-t", "-c", "SELECT count() FROM table(p)"], None).unwrap();
    assert_eq!(out.trim(), "252");
    server.shutdown().unwrap();
}

/// The catalog comes from the real streams: information_schema and pg_catalog queries over
/// tokio-postgres, and psql's `\d`, `\dt`, `\d name` and `\l`.
#[test]
fn server_catalog_for_tools() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM clicks (id int64, url nullable(string), at datetime64(3))").await.unwrap();
        c.simple_query("CREATE STREAM other (x float64)").await.unwrap();
        let rows = c
            .query(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' \
                 ORDER BY table_name",
                &[],
            )
            .await
            .unwrap();
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(names, vec!["clicks", "other"]);
        let cols = c
            .query(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&"clicks"],
            )
            .await
            .unwrap();
        let cols: Vec<(String, String, String)> = cols.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        assert_eq!(cols[0], ("id".to_string(), "bigint".to_string(), "NO".to_string()));
        assert_eq!(cols[1], ("url".to_string(), "text".to_string(), "YES".to_string()));
        // pg_class / pg_attribute / pg_type joined, the way drivers look columns up.
        let typed = rows_of(
            &c.simple_query(
                "SELECT a.attname, t.typname FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
                 JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE c.relname = 'clicks' AND a.attnum > 0 ORDER BY a.attnum",
            )
            .await
            .unwrap(),
        );
        assert_eq!(typed[0], vec![Some("id".to_string()), Some("int8".to_string())]);
        assert_eq!(typed[2], vec![Some("at".to_string()), Some("timestamptz".to_string())]);
    });
    let Some((ok, out, err)) = psql(&server, &["-c", "\\d", "-c", "\\dt", "-c", "\\d clicks", "-c", "\\l"], None)
    else {
        return;
    };
    assert!(ok, "psql failed: {err}");
    // \d and \dt list both streams.
    assert_eq!(out.matches(" public | clicks | table | sluice").count(), 2, "{out}");
    assert_eq!(out.matches(" public | other  | table | sluice").count(), 2, "{out}");
    // \d clicks describes the columns with their sluice types.
    assert!(out.contains("Table \"public.clicks\""), "{out}");
    assert!(out.contains(" id       | int64            |           | not null |"), "{out}");
    assert!(out.contains(" url      | nullable(string) |"), "{out}");
    // \l lists the database.
    assert!(out.contains(" sluice | sluice | UTF8"), "{out}");
    server.shutdown().unwrap();
}
