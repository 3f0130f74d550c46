//! Interoperability: parts written here are read by pyarrow and DuckDB with the same answers.
//!
//! Needs `python3` with the `pyarrow` and `duckdb` modules. Without them the test prints why
//! and passes, unless `SLUICE_REQUIRE_INTEROP=1` is set (CI), where it fails.

use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, UInt64Type};
use sluice_vfs::Rng;

use crate::testutil::{Env, all_types, events};
use crate::{NewPart, PartId, ReadBackend, SeqRange, WriterOptions, write_part};

const SCRIPT: &str = r#"
import sys
import pyarrow.parquet as pq
import duckdb

events, types = sys.argv[1], sys.argv[2]
t = pq.read_table(events)
n_sum = sum(v for v in t.column("n").to_pylist() if v is not None)
id_sum = sum(t.column("row_id").to_pylist())
print("pyarrow", t.num_rows, n_sum, id_sum)
con = duckdb.connect()
r = con.execute(
    "select count(*), sum(n), sum(row_id), count(distinct device), count(distinct kind) from read_parquet(?)",
    [events],
).fetchone()
print("duckdb", r[0], int(r[1]), int(r[2]), r[3], r[4])
# The time filter must agree with the statistics and page index DuckDB uses for pruning.
r = con.execute(
    "select count(*) from read_parquet(?) where _tp_time >= to_timestamp(1700000001.5)",
    [events],
).fetchone()
print("duckdb_recent", r[0])
a = pq.read_table(types)
print("pyarrow_types", a.num_rows, a.num_columns)
r = con.execute("select count(*), sum(k), count(lc) from read_parquet(?)", [types]).fetchone()
print("duckdb_types", r[0], int(r[1]), r[2])
"#;

fn python_ready() -> Result<(), String> {
    match Command::new("python3").args(["-c", "import pyarrow, duckdb"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Err(e) => Err(format!("python3: {e}")),
    }
}

#[test]
fn pyarrow_and_duckdb_read_parts() {
    if let Err(why) = python_ready() {
        if std::env::var("SLUICE_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("SLUICE_REQUIRE_INTEROP=1 but python3 with pyarrow and duckdb is missing: {why}");
        }
        println!("skipping the interop test: python3 with pyarrow and duckdb is missing ({why})");
        return;
    }
    let env = Env::real(ReadBackend::Mmap);
    let mut rng = Rng::new(1);
    let rows = 20_000;
    let batch = events(&mut rng, rows, 1_700_000_000_000, 0);
    let opts =
        WriterOptions::default().sort_key(["_tp_time"]).time_column("_tp_time").row_group_rows(4096).page_rows(512);
    let new = NewPart { id: PartId(1), seq: SeqRange::new(0, rows as u64 - 1), level: 0 };
    let chunks: Vec<_> = (0..rows).step_by(3000).map(|i| batch.slice(i, 3000.min(rows - i))).collect();
    let info = write_part(env.fs.clone(), &env.dir, new, batch.schema(), &chunks, &opts).expect("write events");
    let types = all_types(&mut rng, 2000);
    let lc_count = 2000 - types.column_by_name("lc").expect("lc").null_count();
    let new = NewPart { id: PartId(2), seq: SeqRange::new(0, 0), level: 0 };
    let types_info = write_part(env.fs.clone(), &env.dir, new, types.schema(), &[types], &WriterOptions::default())
        .expect("write types");

    let n_sum: i64 = batch.column_by_name("n").expect("n").as_primitive::<Int64Type>().iter().flatten().sum();
    let id_sum: u64 = batch.column_by_name("row_id").expect("ids").as_primitive::<UInt64Type>().values().iter().sum();
    let times = batch.column(0).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    let recent = times.values().iter().filter(|&&t| t >= 1_700_000_001_500).count();

    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(env.dir.join(info.file_name()))
        .arg(env.dir.join(types_info.file_name()))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("pyarrow {rows} {n_sum} {id_sum}"));
    assert_eq!(lines[1], format!("duckdb {rows} {n_sum} {id_sum} {} 4", count_distinct_devices(&batch)));
    assert_eq!(lines[2], format!("duckdb_recent {recent}"));
    assert_eq!(lines[3], "pyarrow_types 2000 22");
    assert_eq!(lines[4], format!("duckdb_types 2000 {} {lc_count}", (0..2000).sum::<i64>()));
}

fn count_distinct_devices(batch: &arrow::record_batch::RecordBatch) -> usize {
    let d = batch.column_by_name("device").expect("device").as_string::<i32>();
    d.iter().flatten().collect::<std::collections::BTreeSet<_>>().len()
}
