//! The server over the Postgres wire with tokio-postgres (simple and extended protocol,
//! SQLSTATEs, cancel, limits, SCRAM, shutdown) and psql when it is installed. Every network
//! wait has a timeout.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::future::Future;
use std::time::{Duration, Instant};

use sluice::Database;
use sluice_server::{Config, Server, ServerHandle};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const WAIT: Duration = Duration::from_secs(10);

/// A server on loopback ports chosen by the OS, over an in-memory database.
pub(crate) fn start(config: Config) -> ServerHandle {
    Server::start_with(config, Database::in_memory()).expect("server starts")
}

/// Runs async client code on a private runtime, bounded in time.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), f).await.expect("test timed out") })
}

async fn connect_as(
    server: &ServerHandle,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1").port(server.pg_addr().port()).user(user).dbname("sluice").connect_timeout(WAIT);
    if let Some(p) = password {
        cfg.password(p);
    }
    let (client, conn) = tokio::time::timeout(WAIT, cfg.connect(NoTls)).await.expect("connect timed out")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

pub(crate) async fn connect(server: &ServerHandle) -> Client {
    connect_as(server, "sluice", None).await.expect("connects")
}

pub(crate) fn code(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

pub(crate) fn rows_of(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn server_simple_protocol_ddl_show_and_sqlstates() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        let msgs = c
            .simple_query("CREATE STREAM events (id int64, name string, v float64); SHOW STREAMS; DESCRIBE events")
            .await
            .expect("multi-statement query");
        let rows = rows_of(&msgs);
        assert_eq!(rows[0], vec![Some("events".to_string())]);
        assert_eq!(rows[1][0].as_deref(), Some("id"));
        assert_eq!(rows[1][1].as_deref(), Some("int64"));
        let completes = msgs.iter().filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_))).count();
        assert_eq!(completes, 3);

        let cases = [
            ("CREATE STREAM events (x int64)", "42P07"),
            ("DROP STREAM nope", "42P01"),
            ("DESCRIBE nope", "42P01"),
            ("SELEC 1", "42601"),
            ("CREATE STREAM bad (x no_such_type)", "42704"),
            ("CREATE STREAM bad2 (x int64) SETTINGS shards = 0", "22023"),
        ];
        for (sql, want) in cases {
            let e = c.simple_query(sql).await.expect_err(sql);
            assert_eq!(code(&e), want, "{sql}: {e}");
            // The connection stays usable after every error.
            let ok = c.simple_query("SHOW STREAMS").await.expect("usable after an error");
            assert_eq!(rows_of(&ok).len(), 1);
        }
        // A failing statement stops the rest of a multi-statement query.
        let e = c.simple_query("DROP STREAM nope; CREATE STREAM later (x int64)").await.unwrap_err();
        assert_eq!(code(&e), "42P01");
        assert_eq!(rows_of(&c.simple_query("SHOW STREAMS LIKE 'later'").await.unwrap()).len(), 0);
        c.simple_query("DROP STREAM IF EXISTS nope").await.expect("IF EXISTS is fine");

        // What drivers ask at connect time.
        let v = rows_of(&c.simple_query("SELECT version()").await.unwrap());
        assert!(v[0][0].as_deref().unwrap().starts_with("PostgreSQL 16"), "{v:?}");
        for (show, want) in
            [("SHOW transaction_isolation", "read committed"), ("SHOW standard_conforming_strings", "on")]
        {
            assert_eq!(rows_of(&c.simple_query(show).await.unwrap())[0][0].as_deref(), Some(want), "{show}");
        }
        c.simple_query("SET application_name = 'tests'").await.unwrap();
        assert_eq!(rows_of(&c.simple_query("SHOW application_name").await.unwrap())[0][0].as_deref(), Some("tests"));
        c.simple_query("BEGIN; COMMIT").await.expect("transactions are no-ops");
        // pg_catalog answers come from the server's catalog tables.
        let int4 =
            rows_of(&c.simple_query("SELECT oid, typname FROM pg_catalog.pg_type WHERE oid = 23").await.unwrap());
        assert_eq!(int4, vec![vec![Some("23".to_string()), Some("int4".to_string())]]);
    });
    server.shutdown().unwrap();
}

#[test]
fn server_extended_protocol_parameters_stay_data() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        c.execute("CREATE STREAM events (id int64, name string)", &[]).await.expect("DDL over the extended protocol");
        let rows = c.query("SHOW STREAMS", &[]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(0), "events");
        // Parameters are values, never SQL.
        let stmt = c.prepare("SHOW STREAMS LIKE $1").await.unwrap();
        assert_eq!(stmt.params(), &[tokio_postgres::types::Type::TEXT]);
        assert_eq!(c.query(&stmt, &[&"ev%"]).await.unwrap().len(), 1);
        for evil in ["'; DROP STREAM events; --", "ev%' OR '1'='1", "\\'; DROP STREAM events; --"] {
            assert_eq!(c.query(&stmt, &[&evil]).await.unwrap().len(), 0, "{evil}");
        }
        assert_eq!(c.query("SHOW STREAMS", &[]).await.unwrap().len(), 1, "the stream is still there");
        // Errors carry SQLSTATEs and leave the connection usable.
        let e = c.query("DESCRIBE nope", &[]).await.unwrap_err();
        assert_eq!(code(&e), "42P01");
        let e = c.execute("DROP STREAM nope", &[]).await.unwrap_err();
        assert_eq!(code(&e), "42P01");
        assert_eq!(c.query("SHOW STREAMS", &[]).await.unwrap().len(), 1);

        // With the SQL executor: typed parameters, binary results, batches streamed.
        match c.query("SELECT $1::int8 + 1 AS n, $2::text AS s", &[&41i64, &"it's"]).await {
            Ok(rows) => {
                assert_eq!(rows[0].get::<_, i64>("n"), 42);
                assert_eq!(rows[0].get::<_, String>("s"), "it's");
                c.execute("INSERT INTO events (id, name) VALUES ($1, $2)", &[&7i64, &"x'); DROP STREAM events; --"])
                    .await
                    .unwrap();
                let r = c.query("SELECT id, name FROM table(events) WHERE id = $1", &[&7i64]).await.unwrap();
                assert_eq!(r.len(), 1);
                assert_eq!(r[0].get::<_, String>(1), "x'); DROP STREAM events; --");
                let many = c.query("SELECT number FROM numbers(200000)", &[]).await.unwrap();
                assert_eq!(many.len(), 200_000);
            }
            Err(e) => assert_eq!(code(&e), "0A000", "only 'not supported' is acceptable before the executor: {e}"),
        }
    });
    server.shutdown().unwrap();
}

#[test]
fn server_cancel_request_ends_the_query_with_57014() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        if c.simple_query("SELECT 1").await.is_err() {
            return; // no executor yet: nothing long-running to cancel
        }
        let token = c.cancel_token();
        let started = Instant::now();
        let query = c.query_raw("SELECT number FROM numbers(50000000)", std::iter::empty::<i64>());
        let stream = query.await.expect("the query starts");
        futures::pin_mut!(stream);
        use futures::StreamExt;
        let first = stream.next().await.expect("a first row").expect("no error yet");
        assert_eq!(first.len(), 1);
        token.cancel_query(NoTls).await.expect("cancel request sent");
        let mut rows = 1u64;
        let err = loop {
            match stream.next().await {
                Some(Ok(_)) => rows += 1,
                Some(Err(e)) => break e,
                None => panic!("the query ended without the cancel error after {rows} rows"),
            }
        };
        assert_eq!(code(&err), "57014", "{err}");
        assert!(rows < 50_000_000);
        assert!(started.elapsed() < Duration::from_secs(20));
        // The connection is usable afterwards.
        assert_eq!(rows_of(&c.simple_query("SELECT 1").await.unwrap()).len(), 1);
    });
    assert!(server.metrics().pg_cancels.load(std::sync::atomic::Ordering::Relaxed) <= 1);
    server.shutdown().unwrap();
}

#[test]
fn server_connection_limit_and_scram() {
    let server = start(Config { max_connections: 1, password: Some("s3cret".into()), ..Config::ephemeral() });
    block_on(async {
        let wrong = connect_as(&server, "sluice", Some("nope")).await.expect_err("wrong password refused");
        assert_eq!(code(&wrong), "28P01");
        connect_as(&server, "sluice", None).await.expect_err("no password refused");
        // The refused logins free their slot when their sockets close, which may take a moment.
        let c = connect_retrying(&server, "anyone", "s3cret").await;
        assert_eq!(rows_of(&c.simple_query("SHOW STREAMS").await.unwrap()).len(), 0);
        let refused = connect_as(&server, "sluice", Some("s3cret")).await.expect_err("over the limit");
        assert_eq!(code(&refused), "53300");
        drop(c);
        // The slot frees when the first client goes.
        connect_retrying(&server, "sluice", "s3cret").await;
    });
    server.shutdown().unwrap();
}

/// Connects, retrying while the server answers 53300 (a slot not yet freed), up to `WAIT`.
async fn connect_retrying(server: &ServerHandle, user: &str, password: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect_as(server, user, Some(password)).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline && code(&e) == "53300" => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn server_refuses_exposed_address_without_password() {
    let config = Config { pg_listen: "0.0.0.0:0".parse().unwrap(), ..Config::ephemeral() };
    let err = Server::start_with(config.clone(), Database::in_memory()).unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
    let server = Server::start_with(Config { insecure: true, ..config }, Database::in_memory()).expect("--insecure");
    server.shutdown().unwrap();
}

#[test]
fn server_graceful_shutdown_is_quick_and_closes_connections() {
    let server = start(Config::ephemeral());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let c = rt.block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM s (x int64)").await.unwrap();
        c
    });
    let db = server.database().clone();
    let t = Instant::now();
    server.shutdown().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "shutdown took {:?}", t.elapsed());
    assert!(matches!(db.append("s", &empty_batch()), Err(sluice::Error::Closed)));
    let after =
        rt.block_on(async { tokio::time::timeout(WAIT, c.simple_query("SHOW STREAMS")).await.expect("no hang") });
    assert!(after.is_err(), "the connection is closed after shutdown");
}

fn empty_batch() -> sluice::arrow::array::RecordBatch {
    use std::sync::Arc;
    let schema = Arc::new(sluice::arrow::datatypes::Schema::new(vec![sluice::arrow::datatypes::Field::new(
        "x",
        sluice::arrow::datatypes::DataType::Int64,
        false,
    )]));
    sluice::arrow::array::RecordBatch::try_new(schema, vec![Arc::new(sluice::arrow::array::Int64Array::from(vec![1]))])
        .unwrap()
}

#[test]
fn server_psql_when_installed() {
    let Ok(out) = std::process::Command::new("psql").arg("--version").output() else { return };
    if !out.status.success() {
        return;
    }
    let server = start(Config::ephemeral());
    let port = server.pg_addr().port().to_string();
    let mut child = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "sluice",
            "-d",
            "sluice",
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", "CREATE STREAM p (id int64, name string)", "-c", "SHOW STREAMS", "-c", "DESCRIBE p"])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql starts");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "psql hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("CREATE STREAM") && stdout.contains("\np\n") && stdout.contains("id|int64"), "{stdout}");
    server.shutdown().unwrap();
}

/// A streaming SELECT over the wire: rows inserted by another connection arrive while the
/// query runs (extended protocol), LIMIT ends it (simple protocol), and a cancel ends an
/// unbounded one with 57014, leaving the connection usable.
#[test]
fn server_streaming_select_follows_inserts_and_cancels() {
    let server = start(Config::ephemeral());
    block_on(async {
        use futures::StreamExt;
        let c = connect(&server).await;
        let w = connect(&server).await;
        c.simple_query("CREATE STREAM s (id int64, name string)").await.unwrap();
        // Simple protocol with LIMIT: the rows come from the other connection.
        let limited = tokio::spawn({
            let c2 = connect(&server).await;
            // Seeking from the first row makes the result independent of when it starts.
            async move { c2.simple_query("SELECT id, name FROM s WHERE _tp_sn >= 0 AND id > 1 LIMIT 2").await }
        });
        // Extended protocol, unbounded.
        let stream =
            c.query_raw("SELECT id * 10 FROM s WHERE _tp_sn >= 0", std::iter::empty::<i64>()).await.expect("starts");
        futures::pin_mut!(stream);
        w.simple_query("INSERT INTO s (id, name) VALUES (1, 'a'), (2, 'b')").await.unwrap();
        w.simple_query("INSERT INTO s (id, name) VALUES (3, 'c')").await.unwrap();
        let first = tokio::time::timeout(WAIT, stream.next()).await.expect("a row in time").unwrap().unwrap();
        let v: i64 = first.get(0);
        assert_eq!(v, 10);
        let msgs = tokio::time::timeout(WAIT, limited).await.expect("LIMIT query ends").unwrap().unwrap();
        let rows = rows_of(&msgs);
        assert_eq!(
            rows,
            vec![
                vec![Some("2".to_string()), Some("b".to_string())],
                vec![Some("3".to_string()), Some("c".to_string())]
            ]
        );
        let token = c.cancel_token();
        token.cancel_query(NoTls).await.expect("cancel sent");
        let started = Instant::now();
        let err = loop {
            match tokio::time::timeout(WAIT, stream.next()).await.expect("ends in time") {
                Some(Ok(_)) => {}
                Some(Err(e)) => break e,
                None => panic!("ended without the cancel error"),
            }
        };
        assert_eq!(code(&err), "57014", "{err}");
        assert!(started.elapsed() < Duration::from_secs(2), "cancel took {:?}", started.elapsed());
        assert_eq!(rows_of(&c.simple_query("SELECT 1").await.unwrap()).len(), 1);
    });
    server.shutdown().unwrap();
}

/// Describe of a prepared statement plans the query without running it: the columns of a
/// streaming SELECT come back and no query is left running; preparing DDL or an INSERT does
/// nothing until it is executed.
#[test]
fn server_describe_statement_plans_only() {
    let server = start(Config::ephemeral());
    block_on(async {
        let c = connect(&server).await;
        c.simple_query("CREATE STREAM d (id int64, name string)").await.unwrap();
        let st = c.prepare("SELECT id, upper(name) AS n FROM d WHERE id > $1").await.unwrap();
        let cols: Vec<(&str, String)> = st.columns().iter().map(|c| (c.name(), c.type_().name().to_string())).collect();
        assert_eq!(cols, [("id", "int8".to_string()), ("n", "text".to_string())]);
        assert_eq!(server.database().streaming_totals().queries, 0, "nothing started by Describe");
        let st = c.prepare("CREATE STREAM never (x int64)").await.unwrap();
        assert!(st.columns().is_empty());
        assert!(server.database().stream_def("never").is_err(), "prepared, not run");
        let st = c.prepare("INSERT INTO d (id, name) VALUES ($1, $2)").await.unwrap();
        assert!(st.columns().is_empty());
        c.execute(&st, &[&7i64, &"a"]).await.unwrap();
        let e = c.prepare("SELECT nope FROM d").await.unwrap_err();
        assert_eq!(code(&e), "42703");
    });
    server.shutdown().unwrap();
}

/// A query that needs more memory than its limit ends with a 53xxx error (ResourcesExhausted) while
/// another connection keeps working, and its own connection stays usable.
#[test]
fn server_memory_hungry_query_is_refused_and_others_keep_working() {
    let server = start(Config::ephemeral());
    block_on(async {
        let hungry = connect(&server).await;
        let other = connect(&server).await;
        let big = hungry.simple_query(
            "SELECT number, count(*) FROM numbers(3000000) GROUP BY number SETTINGS max_memory_usage = 4000000",
        );
        let small = async {
            for _ in 0..5 {
                let rows = rows_of(&other.simple_query("SELECT count(*) FROM numbers(1000)").await.expect("small"));
                assert_eq!(rows, vec![vec![Some("1000".to_string())]]);
            }
        };
        let (big, ()) = tokio::join!(big, small);
        let e = big.expect_err("over the memory limit");
        assert!(code(&e).starts_with("53"), "{e}: {}", code(&e));
        let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
        assert!(msg.contains("max_memory_usage"), "{msg}");
        let rows = rows_of(&hungry.simple_query("SELECT 1").await.expect("usable after the error"));
        assert_eq!(rows, vec![vec![Some("1".to_string())]]);
    });
    server.shutdown().unwrap();
}
