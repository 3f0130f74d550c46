//! DDL tests: CREATE STREAM (the Timeplus examples and every clause), settings through DDL,
//! ALTER, DROP, SHOW, DESCRIBE, CREATE [MATERIALIZED] VIEW.

use super::tests::round_trip;
use super::*;
use crate::ast::ddl::{AlterAction, ColumnDefault, CreateStream};
use crate::settings::{AckMode, IngestMode, LogstoreCodec, Retention, StorageType, StreamMode, StreamSetting};

fn create(sql: &str) -> CreateStream {
    let statement = round_trip(sql);
    // The pretty form used by SHOW CREATE parses back to the same statement too.
    let pretty = format!("{statement:#}");
    assert_eq!(parse_statement(&pretty).ok().as_ref(), Some(&statement), "pretty form:\n{pretty}");
    match statement {
        Statement::CreateStream(c) => *c,
        other => panic!("not CREATE STREAM: {other:?}"),
    }
}

fn err(sql: &str) -> Error {
    parse(sql).expect_err(sql)
}

fn setting_err(sql: &str, setting: &str, needle: &str) {
    match err(sql) {
        Error::InvalidSetting { name, reason } => {
            assert_eq!(name, setting, "{sql}");
            assert!(reason.contains(needle), "{sql}: {reason}");
        }
        other => panic!("{sql}: expected InvalidSetting, got {other:?}"),
    }
}

#[test]
fn timeplus_examples() {
    let c = create(
        "CREATE STREAM test\n(\nid uint64,\nupdated_at datetime DEFAULT now(),\nupdated_at_date date DEFAULT to_date(updated_at)\n)\nORDER BY id;",
    );
    assert_eq!(c.columns.len(), 3);
    assert!(matches!(c.columns[1].default, Some(ColumnDefault::Default(_))));
    assert_eq!(c.order_by.len(), 1);

    let c = create(
        "CREATE STREAM test\n(\nid uint64,\nsize_bytes int64,\nsize string ALIAS format_readable_size(size_bytes)\n)\nORDER BY id;",
    );
    assert!(matches!(c.columns[2].default, Some(ColumnDefault::Alias(_))));

    let c =
        create("CREATE STREAM append\n(\np string,\np1 string,\ni int\n)\nORDER BY (p, p1, i)\nPRIMARY KEY (p, p1);");
    assert_eq!((c.order_by.len(), c.primary_key.len()), (3, 2));
    assert_eq!(c.columns[2].data_type, Some(SqlType::Int32));

    let c = create(
        "CREATE STREAM shared_disk_mutable_stream(i int, s string)
         SETTINGS
         shared_disk = 's3_plain_disk',
         ingest_batch_max_bytes = 67108864,
         ingest_batch_timeout_ms = 200,
         fetch_threads = 1;",
    );
    assert_eq!(
        c.settings.no_op_settings,
        ["shared_disk", "ingest_batch_max_bytes", "ingest_batch_timeout_ms", "fetch_threads"]
    );

    // Trailing comma after the last column, as in the Timeplus example.
    let c = create(
        "CREATE STREAM elastic_serving_stream
         (
         p string,
         id uint64,
         p2 uint32,
         c1 string,
         c2 int,
         v datetime64(3),
         )
         SETTINGS
         shards = 3,
         shared_disk='s3_disk',
         ingest_batch_timeout_ms=200,
         fetch_threads=2,
         logstore_codec='zstd';",
    );
    assert_eq!(c.columns.len(), 6);
    assert_eq!((c.settings.shards, c.settings.logstore_codec, c.settings.fetch_threads), (3, LogstoreCodec::Zstd, 2));
}

#[test]
fn every_clause_and_column_option() {
    let c = create(
        "CREATE STREAM IF NOT EXISTS db.events (
            id uint64 COMMENT 'the id' CODEC(Delta(8), ZSTD(3)),
            `user name` low_cardinality(string),
            amount nullable(decimal(18, 4)) DEFAULT NULL,
            tags array(string) DEFAULT [],
            attrs map(string, string),
            ts datetime64(3, 'UTC') DEFAULT now64(3, 'UTC') CODEC(DoubleDelta, LZ4),
            day DEFAULT to_date(ts),
            score float64 NULL,
            flag bool NOT NULL,
            INDEX idx_user `user name` TYPE bloom_filter(0.01) GRANULARITY 4,
            INDEX idx_amount amount TYPE minmax
         )
         ORDER BY (id, ts)
         PARTITION BY to_YYYYMM(ts)
         PRIMARY KEY id
         TTL ts + INTERVAL 30 DAY DELETE WHERE amount IS NULL
         COMMENT 'all events'
         SETTINGS shards = 2, mode = 'append', logstore_retention_ms = -1, flush_threshold_count = 1000",
    );
    assert!(c.if_not_exists);
    assert_eq!(c.name.to_string(), "db.events");
    assert_eq!(c.columns.len(), 9);
    assert_eq!(
        c.column("user name").and_then(|c| c.data_type.clone()),
        Some("low_cardinality(string)".parse().expect("type"))
    );
    assert_eq!(c.columns[0].comment.as_deref(), Some("the id"));
    assert_eq!(c.columns[0].codecs.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["Delta(8)", "ZSTD(3)"]);
    assert_eq!(c.column("day").map(|c| c.data_type.is_none()), Some(true));
    assert_eq!(c.column("score").and_then(|c| c.data_type.clone()), Some("nullable(float64)".parse().expect("type")));
    assert_eq!(c.column("flag").and_then(|c| c.data_type.clone()), Some(SqlType::Bool));
    assert_eq!(c.indexes.len(), 2);
    assert_eq!(c.indexes[0].granularity, Some(4));
    assert!(c.partition_by.is_some());
    assert!(c.ttl.as_ref().is_some_and(|t| t.where_clause.is_some()));
    assert_eq!(c.comment.as_deref(), Some("all events"));
    assert_eq!(c.settings.logstore_retention_ms, Retention::Unlimited);
    assert_eq!(c.settings.flush_threshold_count, 1000);
    assert!(c.settings.no_op_settings.is_empty());
}

#[test]
fn clauses_in_any_order_once_each() {
    let a = create("CREATE STREAM s (a int, b string) ORDER BY a TTL a + 1 SETTINGS shards = 2 COMMENT 'x'");
    let b = create("CREATE STREAM s (a int, b string) COMMENT 'x' SETTINGS shards = 2 TTL a + 1 ORDER BY a");
    assert_eq!(a, b);
    let e = err("CREATE STREAM s (a int) ORDER BY a ORDER BY a");
    assert!(matches!(e, Error::Parse { .. }) && e.to_string().contains("ORDER BY given more than once"), "{e}");
    // `ORDER BY a, b` is accepted as `ORDER BY (a, b)`, `tuple()` as no key.
    let c = create("CREATE STREAM s (a int, b int) ORDER BY a, b");
    assert_eq!(c.order_by.len(), 2);
    let c = create("CREATE STREAM s (a int) ORDER BY tuple()");
    assert!(c.order_by.is_empty());
}

#[test]
fn settings_as_bare_words_and_kv_modes() {
    let c = create(
        "CREATE STREAM kv (id int, v string, ver uint64) PRIMARY KEY id
         SETTINGS mode = versioned_kv, version_column = ver, storage_type = streaming, logstore_codec = lz4,
                  ack = none, ingest_mode = sync, replication_factor = 3, placement_policies = 'rack',
                  sharding_expr = 'weak_hash32(id)', event_time_column = 'now64(3)', merge_with_ttl_timeout = 60,
                  logstore_retention_bytes = 1073741824, flush_threshold_ms = 500, flush_threshold_bytes = '1048576'",
    );
    let s = &c.settings;
    assert_eq!(s.mode, StreamMode::VersionedKv);
    assert_eq!(s.version_column.as_deref(), Some("ver"));
    assert_eq!(
        (s.storage_type, s.logstore_codec, s.ack, s.ingest_mode),
        (StorageType::Streaming, LogstoreCodec::Lz4, AckMode::None, IngestMode::Sync)
    );
    assert_eq!(s.no_op_settings, ["replication_factor", "placement_policies"]);
    assert!(s.sharding_expr.is_some() && s.event_time_column.is_some());
    assert_eq!(s.logstore_retention_bytes, Retention::Limit(1 << 30));
    assert_eq!((s.flush_threshold_ms, s.flush_threshold_bytes, s.merge_with_ttl_timeout), (500, 1 << 20, 60));
    assert_eq!(s.explicit.len(), 14);

    create("CREATE STREAM c (id int, v string) PRIMARY KEY id SETTINGS mode = 'changelog_kv'");
    create("CREATE STREAM c (id int, v string) SETTINGS mode = 'changelog'");
    create("CREATE STREAM kv (id int) PRIMARY KEY id SETTINGS mode = 'versioned_kv', version_column = '_tp_time'");
}

#[test]
fn setting_errors_name_the_setting() {
    setting_err("CREATE STREAM s (a int) SETTINGS shardz = 2", "shardz", "did you mean `shards`");
    setting_err("CREATE STREAM s (a int) SETTINGS shards = 0", "shards", "between 1");
    setting_err("CREATE STREAM s (a int) SETTINGS shards = 2, shards = 3", "shards", "more than once");
    setting_err("CREATE STREAM s (a int) SETTINGS mode = 'upsert'", "mode", "expected one of");
    setting_err("CREATE STREAM s (a int) SETTINGS logstore_codec = 'gzip'", "logstore_codec", "'zstd'");
    setting_err("CREATE STREAM s (a int) SETTINGS mode = 'versioned_kv'", "mode", "needs a PRIMARY KEY");
    setting_err(
        "CREATE STREAM s (a int) PRIMARY KEY a SETTINGS mode = 'versioned_kv', version_column = 'nope'",
        "version_column",
        "not a column",
    );
    setting_err("CREATE STREAM s (a int) SETTINGS version_column = 'a'", "version_column", "only applies");
    setting_err("CREATE STREAM s (a int) SETTINGS replication_factor = 0", "replication_factor", "between 1");
    setting_err("CREATE STREAM s (a int) SETTINGS sharding_expr = 'a +'", "sharding_expr", "not an expression");
    // A non-literal value is a syntax error at the value.
    let e = err("CREATE STREAM s (a int) SETTINGS shards = 1 + 1");
    assert_eq!(e.location(), Some(Location::new(1, 43)), "{e}");
}

#[test]
fn column_errors() {
    let e = err("CREATE STREAM s (a int, b string, a int)");
    assert!(matches!(e, Error::DuplicateColumn { ref name } if name == "a"), "{e:?}");
    let e = err("CREATE STREAM s (_tp_sn int64)");
    assert!(matches!(e, Error::Bind { .. }), "{e:?}");
    let e = err("CREATE STREAM s (a int,\n  b)");
    assert!(e.to_string().contains("needs a type or a DEFAULT"), "{e}");
    assert_eq!(e.location(), Some(Location::new(2, 3)));
    let e = err("CREATE STREAM s (a int,\n  b uint65)");
    assert!(
        matches!(e, Error::UnknownType { ref name, location } if name == "uint65" && location == Location::new(2, 5)),
        "{e:?}"
    );
    let e = err("CREATE STREAM s (a nullable(array(int)))");
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    let e = err("CREATE STREAM s (a int CODEC(Brotli))");
    assert!(e.to_string().contains("unknown codec"), "{e}");
    let e = err("CREATE STREAM s ()");
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert!(matches!(err("CREATE STREAM s (a int MATERIALIZED 1)"), Error::NotImplemented { .. }));
    assert!(matches!(err("CREATE STREAM s (a int TTL a + 1)"), Error::NotImplemented { .. }));
    assert!(matches!(err("CREATE STREAM s (a int) TTL a TO DISK 'x'"), Error::NotImplemented { .. }));
    assert!(matches!(err("CREATE STREAM s (a int) ENGINE = MergeTree"), Error::NotImplemented { .. }));
    assert!(matches!(err("CREATE STREAM s (a int, CONSTRAINT c CHECK a > 0)"), Error::NotImplemented { .. }));
    let e = err("CREATE STREAM s (a int) ORDER BY a GARBAGE");
    assert!(e.to_string().contains("expected ORDER BY, PARTITION BY"), "{e}");
}

#[test]
fn a_column_called_index_is_a_column() {
    let c = create("CREATE STREAM s (index uint32, INDEX i index TYPE minmax)");
    assert_eq!(c.columns.len(), 1);
    assert_eq!(c.indexes.len(), 1);
}

#[test]
fn other_create_forms_are_clear_errors() {
    for (sql, needle) in [
        ("CREATE EXTERNAL STREAM k (a string) SETTINGS type = 'kafka'", "external"),
        ("CREATE RANDOM STREAM r (a int)", "RANDOM"),
        ("CREATE MUTABLE STREAM m (a int) PRIMARY KEY a", "versioned_kv"),
        ("CREATE TABLE t (a int)", "CREATE STREAM"),
        ("CREATE OR REPLACE STREAM s (a int)", "OR REPLACE"),
        ("CREATE FUNCTION f AS (x) -> x", "CREATE FUNCTION"),
        ("CREATE STREAM s AS SELECT 1", "MATERIALIZED VIEW"),
    ] {
        let e = err(sql);
        assert!(matches!(e, Error::NotImplemented { .. }), "{sql}: {e:?}");
        assert!(e.to_string().contains(needle), "{sql}: {e}");
        assert_eq!(e.location().map(|l| l.line), Some(1), "{sql}");
    }
}

#[test]
fn alter_stream() {
    let Statement::AlterStream(a) = round_trip(
        "ALTER STREAM s ADD COLUMN IF NOT EXISTS c nullable(string) DEFAULT 'x' COMMENT 'new', DROP COLUMN IF EXISTS old,
         MODIFY TTL _tp_time + 7d, MODIFY SETTING flush_threshold_count = 10, logstore_retention_ms = 60000, REMOVE TTL",
    ) else {
        panic!()
    };
    assert_eq!(a.actions.len(), 5);
    assert!(
        matches!(&a.actions[0], AlterAction::AddColumn { if_not_exists: true, column } if column.default.is_some())
    );
    assert!(matches!(&a.actions[1], AlterAction::DropColumn { if_exists: true, .. }));
    assert!(matches!(&a.actions[2], AlterAction::ModifyTtl(_)));
    assert!(matches!(&a.actions[3], AlterAction::ModifySettings(s) if s == &[
        StreamSetting::FlushThresholdCount(10),
        StreamSetting::LogstoreRetentionMs(Retention::Limit(60000)),
    ]));
    assert!(matches!(&a.actions[4], AlterAction::RemoveTtl));

    setting_err("ALTER STREAM s MODIFY SETTING shards = 4", "shards", "cannot be changed");
    setting_err("ALTER STREAM s MODIFY SETTING mode = 'append'", "mode", "cannot be changed");
    setting_err("ALTER STREAM s MODIFY SETTING flush_threshold_ms = 0", "flush_threshold_ms", "between 1");
    for sql in [
        "ALTER TABLE s ADD COLUMN a int",
        "ALTER STREAM s MODIFY COLUMN a int64",
        "ALTER STREAM s RENAME COLUMN a TO b",
        "ALTER STREAM s ADD COLUMN a int AFTER b",
        "ALTER STREAM s ADD INDEX i a TYPE minmax",
    ] {
        assert!(matches!(err(sql), Error::NotImplemented { .. }), "{sql}");
    }
    let e = err("ALTER STREAM s FROB");
    assert!(matches!(e, Error::Parse { .. }) && e.location() == Some(Location::new(1, 16)), "{e:?}");
}

#[test]
fn drop_show_describe() {
    for (sql, expected) in [
        ("DROP STREAM s", Statement::Drop { kind: ObjectKind::Stream, name: name("s"), if_exists: false }),
        (
            "drop stream if exists db.s",
            Statement::Drop { kind: ObjectKind::Stream, name: name("db.s"), if_exists: true },
        ),
        ("DROP VIEW IF EXISTS v", Statement::Drop { kind: ObjectKind::View, name: name("v"), if_exists: true }),
        (
            "DROP MATERIALIZED VIEW mv",
            Statement::Drop { kind: ObjectKind::MaterializedView, name: name("mv"), if_exists: false },
        ),
        ("SHOW STREAMS", Statement::ShowStreams { like: None }),
        ("SHOW STREAMS LIKE 'click%'", Statement::ShowStreams { like: Some("click%".into()) }),
        ("SHOW VIEWS", Statement::ShowViews { like: None }),
        ("SHOW MATERIALIZED VIEWS", Statement::ShowViews { like: None }),
        ("SHOW CREATE s", Statement::ShowCreate { kind: None, name: name("s") }),
        ("SHOW CREATE STREAM s", Statement::ShowCreate { kind: Some(ObjectKind::Stream), name: name("s") }),
        ("SHOW CREATE TABLE s", Statement::ShowCreate { kind: Some(ObjectKind::Stream), name: name("s") }),
        (
            "SHOW CREATE MATERIALIZED VIEW mv",
            Statement::ShowCreate { kind: Some(ObjectKind::MaterializedView), name: name("mv") },
        ),
        ("DESCRIBE s", Statement::Describe { name: name("s") }),
        ("DESC db.s", Statement::Describe { name: name("db.s") }),
        ("DESCRIBE STREAM s", Statement::Describe { name: name("s") }),
        ("describe table s", Statement::Describe { name: name("s") }),
    ] {
        assert_eq!(round_trip(sql), expected, "{sql}");
    }
    for sql in ["DROP TABLE s", "DROP DATABASE d", "SHOW TABLES", "DESCRIBE (SELECT 1)"] {
        assert!(matches!(err(sql), Error::NotImplemented { .. }), "{sql}");
    }
    let e = err("DROP STREAM s t");
    assert!(matches!(e, Error::Parse { .. }) && e.location() == Some(Location::new(1, 15)), "{e:?}");
}

fn name(dotted: &str) -> sqlparser::ast::ObjectName {
    sqlparser::ast::ObjectName::from(dotted.split('.').map(sqlparser::ast::Ident::new).collect::<Vec<_>>())
}

#[test]
fn views_and_materialized_views() {
    let Statement::CreateView(v) = round_trip(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS mv INTO totals AS
           SELECT window_start AS ts, device, count() AS n FROM tumble(readings, ts, 10s)
           GROUP BY window_start, device EMIT AFTER WATERMARK WITH DELAY 2s SETTINGS seek_to = 'earliest'",
    ) else {
        panic!()
    };
    assert!(v.materialized && v.if_not_exists);
    assert_eq!(v.target.as_ref().map(|t| t.to_string()).as_deref(), Some("totals"));
    assert!(v.query.emit.is_some());
    assert!(v.query.setting("seek_to").is_some());

    let Statement::CreateView(v) =
        round_trip("CREATE VIEW recent AS SELECT * FROM table(s) WHERE _tp_time > now() - 1h")
    else {
        panic!()
    };
    assert!(!v.materialized && v.target.is_none());
    let Statement::CreateView(v) = round_trip("CREATE MATERIALIZED VIEW mv AS SELECT a FROM s") else { panic!() };
    assert!(v.target.is_none());

    let e = err("CREATE VIEW v INTO t AS SELECT 1");
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    let e = err("CREATE MATERIALIZED VIEW mv INTO t SELECT 1");
    assert!(e.to_string().contains("expected AS"), "{e}");
    assert!(matches!(err("CREATE VIEW v (a) AS SELECT 1"), Error::NotImplemented { .. }));
}
