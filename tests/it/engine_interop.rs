//! Parts written by the engine are plain Parquet: pyarrow and DuckDB open them unchanged and
//! see the same rows (including `_tp_time` and `_tp_sn`). Runs when python3 with pyarrow and
//! duckdb is available; `SLUICE_REQUIRE_INTEROP=1` (set by `.ci/run`) makes their absence a
//! failure instead of a skip.

use std::process::Command;
use std::sync::Arc;

use sluice::arrow::array::{Float64Array, RecordBatch, StringArray, UInt64Array};
use sluice::arrow::datatypes::{DataType, Field, Schema};
use sluice::{Database, Options, StreamDef};

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow, duckdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var("SLUICE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("python3 with pyarrow and duckdb is required (SLUICE_REQUIRE_INTEROP=1): run .ci/install-deps.sh");
    }
    ok
}

#[test]
fn engine_parts_open_in_pyarrow_and_duckdb() {
    if !python_ready() {
        eprintln!("skipping: python3 with pyarrow and duckdb not available");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path(), Options::default()).expect("open");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]));
    db.create_stream(StreamDef::from_schema("s", &schema).sort_key(&["kind"])).expect("create");
    let n = 5000u64;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from((0..n).collect::<Vec<_>>())),
            Arc::new(StringArray::from((0..n).map(|i| ["a", "b", "c"][i as usize % 3]).collect::<Vec<_>>())),
            Arc::new(Float64Array::from((0..n).map(|i| i as f64 * 0.5).collect::<Vec<_>>())),
        ],
    )
    .expect("batch");
    db.append("s", &batch).expect("append");
    db.flush("s").expect("flush");
    db.close().expect("close");
    let parts = dir.path().join("streams/s/0/parts");
    let script = format!(
        r#"
import glob, pyarrow.parquet as pq, duckdb
files = sorted(glob.glob("{dir}/*.parquet"))
t = pq.read_table(files)
assert t.num_rows == {n}, t.num_rows
assert set(t.column_names) >= {{"id", "kind", "value", "_tp_time", "_tp_sn"}}, t.column_names
ids = sorted(t.column("id").to_pylist())
assert ids == list(range({n})), "ids"
sns = sorted(t.column("_tp_sn").to_pylist())
assert sns == list(range({n})), "sn"
r = duckdb.sql(f"SELECT count(*), sum(value), count(DISTINCT kind) FROM read_parquet({{files!r}})").fetchall()[0]
assert r[0] == {n} and abs(r[1] - {sum}) < 1e-6 and r[2] == 3, r
print("ok")
"#,
        dir = parts.display(),
        n = n,
        sum = (0..n).map(|i| i as f64 * 0.5).sum::<f64>()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    assert!(
        out.status.success(),
        "python check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
