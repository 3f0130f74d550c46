//! A tiny sqllogictest runner that checks `tests/slt/historical/*.slt` against this crate alone:
//! `CREATE STREAM` makes an empty in-memory table, `INSERT ... VALUES` appends through
//! `values_to_batch`, `DROP STREAM` removes it, queries run through `plan_query`. The engine's
//! harness runs the same files for real.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::cell;
use crate::ast::query::InsertSource;
use crate::ast::{Statement, ddl::ColumnDefault};
use crate::context::{ExecContext, QueryOptions};
use crate::error::Result;
use crate::memtable::{MemCatalog, MemTable};
use crate::{parse_statement, plan_query, values_to_batch};

#[derive(Default)]
struct Db {
    tables: HashMap<String, (SchemaRef, Vec<RecordBatch>)>,
}

impl Db {
    fn catalog(&self) -> MemCatalog {
        let c = MemCatalog::new();
        for (name, (schema, batches)) in &self.tables {
            // Two partitions so the parallel paths run.
            let mid = batches.len() / 2;
            let parts = vec![batches[..mid].to_vec(), batches[mid..].to_vec()];
            c.register(Arc::new(MemTable::new(name.clone(), schema.clone(), parts).expect("table")));
        }
        c
    }

    fn run(&mut self, sql: &str) -> Result<Vec<String>> {
        match parse_statement(sql)? {
            Statement::CreateStream(c) => {
                let fields = c
                    .columns
                    .iter()
                    .filter(|col| !matches!(col.default, Some(ColumnDefault::Alias(_))))
                    .map(|col| {
                        col.data_type
                            .clone()
                            .unwrap_or(crate::types::SqlType::String)
                            .to_arrow_field(col.name.value.clone())
                    })
                    .collect::<Vec<_>>();
                self.tables.insert(c.name.to_string(), (Arc::new(Schema::new(fields)), Vec::new()));
                Ok(vec![])
            }
            Statement::Drop { name, .. } => {
                self.tables.remove(&name.to_string());
                Ok(vec![])
            }
            Statement::Insert(ins) => {
                let InsertSource::Values(rows) = &ins.source else { panic!("INSERT ... SELECT in slt") };
                let (schema, batches) = self.tables.get_mut(&ins.stream.to_string()).expect("stream exists");
                let cols: Vec<String> = ins.columns.iter().map(|c| c.value.clone()).collect();
                let b = values_to_batch(rows, schema, &cols)?;
                // Columns not listed become NULL here (the engine fills defaults).
                let full = schema
                    .fields()
                    .iter()
                    .map(|f| match b.schema().index_of(f.name()) {
                        Ok(i) => b.column(i).clone(),
                        Err(_) => arrow::array::new_null_array(f.data_type(), b.num_rows()),
                    })
                    .collect();
                batches.push(RecordBatch::try_new(schema.clone(), full)?);
                Ok(vec![])
            }
            Statement::Query(q) => {
                let opts = QueryOptions { now: 1_704_067_200_000_000_000, ..Default::default() };
                let plan = plan_query(&q, &self.catalog(), &opts)?;
                let mut out = Vec::new();
                for b in plan.execute(&ExecContext { now: opts.now, ..Default::default() })? {
                    let b = b?;
                    for i in 0..b.num_rows() {
                        out.push(b.columns().iter().map(|c| cell(c.as_ref(), i)).collect::<Vec<_>>().join(" "));
                    }
                }
                Ok(out)
            }
            other => panic!("unsupported statement in slt: {other}"),
        }
    }
}

/// Runs one file; returns the number of records checked.
fn run_file(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).expect("read slt");
    let mut db = Db::default();
    let mut lines = text.lines().peekable();
    let mut n = 0;
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let header: Vec<&str> = line.split_whitespace().collect();
        let mut sql = String::new();
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() || l.trim() == "----" {
                break;
            }
            sql.push_str(lines.next().unwrap_or_default());
            sql.push('\n');
        }
        n += 1;
        let at = format!("{}: {}", path.display(), sql.trim());
        match header.as_slice() {
            ["statement", "ok"] => {
                db.run(&sql).unwrap_or_else(|e| panic!("{at}\n  failed: {e}"));
            }
            ["statement", "error", pattern @ ..] => match db.run(&sql) {
                Ok(r) => panic!("{at}\n  should fail, gave {r:?}"),
                Err(e) => {
                    let p = pattern.join(" ");
                    let re = regex::Regex::new(&p).expect("pattern");
                    assert!(re.is_match(&e.to_string()), "{at}\n  error `{e}` does not match `{p}`");
                }
            },
            ["query", _types, rest @ ..] => {
                let mut got = db.run(&sql).unwrap_or_else(|e| panic!("{at}\n  failed: {e}"));
                let mut want = Vec::new();
                if lines.peek().is_some_and(|l| l.trim() == "----") {
                    lines.next();
                    while let Some(l) = lines.peek() {
                        if l.trim().is_empty() {
                            break;
                        }
                        want.push(lines.next().unwrap_or_default().trim_end().to_string());
                    }
                }
                if rest.contains(&"rowsort") {
                    got.sort();
                    want.sort();
                }
                assert_eq!(got, want, "{at}");
            }
            other => panic!("{}: unknown record {other:?}", path.display()),
        }
    }
    n
}

#[test]
fn slt_files_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slt/historical");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let total: usize = files.iter().map(|f| run_file(f)).sum();
    assert!(total > 0 || files.is_empty());
    println!("{} slt records in {} files", total, files.len());
}
