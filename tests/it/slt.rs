//! Runs the SQL logic tests in `tests/slt/*.slt` against an embedded database (each file on a
//! fresh in-memory database). The same files run over the Postgres wire once the server lands.
//! Values print as `sluice::text::format_value` prints them; NULL prints as `NULL`, the empty
//! string as `(empty)` (the sqllogictest convention).

use std::path::{Path, PathBuf};

use sluice::arrow::array::{Array, ArrayRef, AsArray};
use sluice::arrow::compute::cast;
use sluice::arrow::datatypes::{DataType, Float64Type};
use sluice::{Database, Output};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Embedded {
    db: Database,
}

impl sqllogictest::DB for Embedded {
    type Error = sluice::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, sluice::Error> {
        let outputs = self.db.execute(sql)?;
        let Some(last) = outputs.into_iter().last() else { return Ok(DBOutput::StatementComplete(0)) };
        match last {
            Output::Command { tag, .. } => {
                let n = tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                Ok(DBOutput::StatementComplete(n))
            }
            Output::Rows(rows) => {
                let schema = rows.schema().clone();
                let mut out = Vec::new();
                for batch in rows {
                    let batch = batch?;
                    for r in 0..batch.num_rows() {
                        out.push(batch.columns().iter().map(|c| cell(c, r)).collect());
                    }
                }
                Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; schema.fields().len()], rows: out })
            }
        }
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// Every `.slt` file under `tests/slt/`, recursively, sorted.
/// A value as the `.slt` files spell it: `sluice::text::format_value`, except NULL as `NULL`, the
/// empty string as `(empty)`, floats with a fraction rounded to 6 decimals (so results do not
/// depend on the last bits of a summation order), lists as `[a,b]`.
fn cell(c: &ArrayRef, r: usize) -> String {
    if c.is_null(r) {
        return "NULL".into();
    }
    match c.data_type() {
        DataType::Float32 | DataType::Float64 => {
            let v = cast(&c.slice(r, 1), &DataType::Float64).expect("float").as_primitive::<Float64Type>().value(0);
            if v.is_finite() && v.fract() != 0.0 {
                return format!("{}", (v * 1e6).round() / 1e6);
            }
        }
        DataType::List(_) => {
            let l = c.as_list::<i32>().value(r);
            let items: Vec<String> = (0..l.len()).map(|j| cell(&l, j)).collect();
            return format!("[{}]", items.join(","));
        }
        _ => {}
    }
    match sluice::text::format_value(c, r) {
        None => "NULL".into(),
        Some(s) if s.is_empty() => "(empty)".into(),
        Some(s) => s,
    }
}

fn slt_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "slt") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("slt"), &mut files);
    files.sort();
    files
}

#[test]
fn sql_logic_tests_embedded() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in &files {
        // Once on an in-memory database, once on disk.
        let mut runner = sqllogictest::Runner::new(|| async { Ok(Embedded { db: Database::in_memory() }) });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{} (in memory): {e}", file.display()));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let mut runner = sqllogictest::Runner::new(move || {
            let path = path.clone();
            async move { Ok(Embedded { db: Database::open(&path, sluice::Options::default())? }) }
        });
        if let Err(e) = runner.run_file(file) {
            failures.push(format!("{} (on disk): {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} .slt files failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}
