//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and any crash artifacts
//! (`fuzz/artifacts/<target>/`) through `sluice_tests::fuzz`, on stable, so every seed and
//! every input that once crashed stays a regression test. The seeds themselves are made by
//! `write_seeds` (ignored; run it after a format change and commit what it writes):
//! `cargo test -p sluice-tests --test integration fuzz_corpus::write_seeds -- --ignored`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use sluice::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice::arrow::record_batch::RecordBatch;
use sluice::columnstore::{Edit, PartStore, ReadBackend, SeqRange, StoreOptions, WriterOptions};
use sluice_tests::fuzz::TARGETS;
use sluice_vfs::{FileSystem, SimFs};
use sluice_wal::{Codec, Durability, Wal, WalOptions};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn corpora_replay_without_panics() {
    let started = Instant::now();
    let mut failures = vec![];
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        let artifacts = files(&fuzz_dir().join("artifacts").join(name));
        for path in corpus.iter().chain(&artifacts) {
            let data = std::fs::read(path).unwrap();
            assert!(data.len() <= 1 << 20, "{} is over 1 MiB: keep corpus files small", path.display());
            if let Err(msg) = sluice_tests::fuzz::replay(target, &data) {
                failures.push(format!("{name}: {}: {msg}", path.display()));
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "{} of {replayed} fuzz inputs fail:\n{}", failures.len(), failures.join("\n"));
    assert!(started.elapsed() < Duration::from_secs(60), "replay took {:?}", started.elapsed());
}

/// The same replay on a few mutations of every seed (truncations and bit flips): cheap
/// fuzzing on stable that also runs where nightly does not.
#[test]
fn seed_mutations_do_not_panic() {
    let mut failures = vec![];
    for (name, target) in TARGETS {
        for path in files(&fuzz_dir().join("corpus").join(name)) {
            let data = std::fs::read(path.as_path()).unwrap();
            let n = data.len();
            let mut inputs: Vec<Vec<u8>> = [0, 1, n / 3, n / 2, n.saturating_sub(1)]
                .iter()
                .filter(|&&k| k < n)
                .map(|&k| data[..k].to_vec())
                .collect();
            for at in [0, 8, 17, n / 2, n.saturating_sub(5)] {
                if at < n {
                    let mut d = data.clone();
                    d[at] ^= 0x41;
                    inputs.push(d);
                }
            }
            for input in inputs {
                if let Err(msg) = sluice_tests::fuzz::replay(target, &input) {
                    failures.push(format!("{name}: mutation of {}: {msg}\n  input: {input:?}", path.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The seeds are valid inputs (so fuzzing starts from the real formats, and a format change
/// that leaves them stale is noticed): run `write_seeds` again when this fails.
#[test]
fn seeds_are_valid_inputs() {
    let seed = |target: &str, name: &str| std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap();
    let fs = SimFs::new(1);
    fs.create_dir_all(Path::new("/wal")).unwrap();
    for name in ["seed-segment", "seed-segment-lz4", "seed-segment-zstd"] {
        let mut f = fs.create_new(Path::new("/wal/00000000000000000000.wal")).unwrap();
        f.append(&seed("wal_frame", name)).unwrap();
        drop(f);
        let check = sluice_wal::check(&fs, Path::new("/wal")).unwrap();
        assert!(check.records > 0 && check.damage.is_empty() && check.torn_tail.is_none(), "{name}: {check:?}");
        fs.remove_file(Path::new("/wal/00000000000000000000.wal")).unwrap();
    }
    assert!(sluice_wal::frame::decode_frame(&seed("wal_frame", "seed-frame")).is_ok());

    fs.create_dir_all(Path::new("/s/parts")).unwrap();
    let mut f = fs.create_new(Path::new("/s/MANIFEST")).unwrap();
    f.append(&seed("manifest", "seed-manifest")).unwrap();
    drop(f);
    let read = sluice::columnstore::read_manifest(&fs, Path::new("/s")).unwrap().unwrap();
    assert_eq!((read.records, read.good_len), (3, read.file_len));

    let mut f = fs.create_new(Path::new("/s/parts/1.parquet")).unwrap();
    f.append(&seed("part", "seed-part")).unwrap();
    drop(f);
    let part = sluice::columnstore::Part::open(&fs, "/s/parts/1.parquet", ReadBackend::Pread).unwrap();
    assert_eq!(part.read_all().unwrap().iter().map(|b| b.num_rows()).sum::<usize>(), 3);

    let sql_seeds = files(&fuzz_dir().join("corpus/sql"));
    for path in sql_seeds.iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-"))) {
        let text = std::fs::read_to_string(path).unwrap();
        sluice_sql::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let def = sluice_tests::fuzz::ingest_def();
    for name in ["seed-lines", "seed-array", "seed-types"] {
        sluice_server::json_to_batch(&def, &seed("http_ingest", name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, rows) in [("seed-copy-text", 2), ("seed-copy-csv", 2)] {
        let got = sluice_server::pg_fuzzing::message_path(&def, &seed("pgwire", name));
        assert_eq!(got, Ok(rows), "{name}");
    }
}

/// A WAL segment with `payloads`, compressed with `codec` where that shrinks them.
fn wal_segment(codec: Codec, payloads: &[&[u8]]) -> Vec<u8> {
    let fs = SimFs::new(1);
    let opts = WalOptions::default().durability(Durability::Fsync).codec(codec).fs(fs.shared());
    let wal = Wal::open("/wal", opts).unwrap();
    for (i, p) in payloads.iter().enumerate() {
        wal.append_n(p.to_vec(), 1 + i as u32 % 3).unwrap();
    }
    wal.close().unwrap();
    let name = fs.list_dir(Path::new("/wal")).unwrap().remove(0);
    fs.open_read(&Path::new("/wal").join(name)).unwrap().read_all().unwrap()
}

/// A shard with one tiny part and a second commit: (manifest bytes, part bytes).
fn shard() -> (Vec<u8>, Vec<u8>) {
    let fs = SimFs::new(1);
    let opts = StoreOptions::default()
        .backend(ReadBackend::Pread)
        .writer(WriterOptions::default().time_column("_tp_time").sort_key(["_tp_time"]));
    let (store, _) = PartStore::open(fs.shared(), "/s", opts).unwrap();
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("_tp_time", ts, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("value", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_000, 3_000]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec!["a", "b", "a"])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        ],
    )
    .unwrap();
    let info = store.write_part(schema, &[batch], SeqRange::new(0, 2)).unwrap();
    store.commit(&Edit { add: vec![info.clone()], remove: vec![], flushed_mark: Some(2) }).unwrap();
    store.commit(&Edit { add: vec![], remove: vec![], flushed_mark: Some(5) }).unwrap();
    drop(store);
    let read = |p: &Path| fs.open_read(p).unwrap().read_all().unwrap();
    let parts = Path::new("/s/parts");
    let part = fs.list_dir(parts).unwrap().into_iter().find(|n| n.ends_with(".parquet")).unwrap();
    (read(Path::new("/s/MANIFEST")), read(&parts.join(part)))
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus; run by hand"]
fn write_seeds() {
    let (manifest, part) = shard();
    let segment = wal_segment(Codec::None, &[b"hello", b"three rows", b""]);
    let lz4 = wal_segment(Codec::Lz4, &[&[b'a'; 300], b"x"]);
    let zstd = wal_segment(Codec::Zstd, &[&[b'z'; 500]]);
    let frame = segment[32..].to_vec();
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = vec![
        ("wal_frame", "segment", segment),
        ("wal_frame", "segment-lz4", lz4),
        ("wal_frame", "segment-zstd", zstd),
        ("wal_frame", "frame", frame),
        ("manifest", "manifest", manifest),
        ("part", "part", part),
    ];
    let sql = [
        ("select", "SELECT id, name, v * 2 AS w FROM table(s) WHERE id > 1 AND name LIKE 'a%' ORDER BY w DESC LIMIT 3"),
        ("aggregate", "SELECT name, count(), sum(v), avg(v) FROM table(s) GROUP BY name HAVING count() > 1"),
        (
            "window",
            "SELECT window_start, count() FROM tumble(s, ts, 5s) GROUP BY window_start EMIT AFTER WATERMARK WITH DELAY 2s",
        ),
        (
            "ddl",
            "CREATE STREAM clicks (user string, url string, ts datetime64(3)) ORDER BY ts SETTINGS shards = 2; DROP STREAM IF EXISTS clicks",
        ),
        ("insert", "INSERT INTO s (id, name, v) VALUES (1, 'a', 1.5), (2, NULL, -3)"),
        ("misc", "EXPLAIN SELECT * FROM s WHERE id IN (1, 2, 3); DESCRIBE s; SHOW STREAMS; SHOW CREATE s"),
        (
            "join",
            "SELECT a.id, b.v FROM table(s) AS a JOIN table(s) AS b ON a.id = b.id WHERE a.tags[1] = 'x' AND b.ts > now() - INTERVAL 1 HOUR",
        ),
        (
            "subquery",
            "SELECT x FROM (SELECT id + 1 AS x, CAST(v AS int32) FROM table(s) UNION ALL SELECT 1, 2) WHERE x BETWEEN 1 AND 9",
        ),
    ];
    for (name, text) in sql {
        seeds.push(("sql", name, text.as_bytes().to_vec()));
    }
    let pg: [(&str, &[u8]); 6] = [
        ("copy-text", b"COPY t (i64, s, n, d) FROM STDIN\x001\tx\t\\N\t2024-01-02\n2\ty\\tz\tq\t2024-03-04\n\\.\n"),
        ("copy-csv", b"COPY t (i32, s, ts, dec, b) FROM STDIN WITH (FORMAT csv, HEADER true)\x00i32,s,ts,dec,b\n1,\"a,b\",2024-01-01 00:00:00.5,1.25,true\n2,\"q\"\"x\",,-3.5,f\n"),
        ("params", b"SELECT * FROM table(s) WHERE id = $1 AND name = $2 OR v < $3\x0042\x00it's a \\ test\x00-1.5e3"),
        ("cursor", b"BEGIN; DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM table(s); FETCH FORWARD 10 FROM c; MOVE ALL IN c; CLOSE c; COMMIT"),
        ("copy-out", b"COPY (SELECT 1 AS x) TO STDOUT WITH (FORMAT csv, DELIMITER ';', NULL 'nil', QUOTE '''')"),
        ("uuid", b"SELECT $1, $2\x00123e4567-e89b-12d3-a456-426614174000\x00\\x414243"),
    ];
    for (name, data) in pg {
        seeds.push(("pgwire", name, data.to_vec()));
    }
    let http: [(&str, &str); 4] = [
        (
            "lines",
            "{\"i64\": 1, \"s\": \"a\", \"ts\": \"2024-01-01 00:00:00.5\", \"lc\": \"x\"}\n{\"i64\": \"2\", \"ts\": 1704067200, \"u8\": 3, \"n\": null}\n",
        ),
        (
            "array",
            "[{\"i64\": 0, \"i8\": -1, \"i16\": 300, \"i32\": 7, \"u64\": 18446744073709551615, \"f32\": 1.5, \"f64\": -2e10, \"b\": true}]",
        ),
        (
            "types",
            "{\"i64\": -7, \"d\": \"2024-02-29\", \"dt\": \"2024-01-01 12:00:00\", \"dec\": \"12.34\", \"id\": \"123e4567-e89b-12d3-a456-426614174000\"}",
        ),
        ("bad", "{\"i64\": 1}\n{\"i64\": \"x\"}\n[1]\n{\"nope\": 2}"),
    ];
    for (name, body) in http {
        seeds.push(("http_ingest", name, body.as_bytes().to_vec()));
    }
    for (target, name, data) in seeds {
        assert!(data.len() < 4096, "seed {target}/{name} is {} bytes", data.len());
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), &data).unwrap();
    }
}
