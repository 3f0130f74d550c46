//! Damaged files on a real directory: garbage after a log segment, a truncated part, a flipped
//! byte in the manifest or in a part. `Database::open` recovers (a torn tail: everything
//! acknowledged before it intact) or fails with an error naming the file and the offset; a
//! scan that would read a damaged part fails with `Corrupted`; nothing panics, no query returns
//! wrong rows. `sluice::check` reports the same damage without changing a byte.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice::arrow::array::{Array, Int64Array, RecordBatch};
use sluice::arrow::datatypes::{DataType, Field, Schema};
use sluice::{Database, Error, Options, ScanRequest, StreamDef};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(ids.collect::<Vec<_>>()))]).unwrap()
}

fn opts() -> Options {
    Options { merge: false, ..Options::default() }
}

/// A stream `s` (one shard) with two flushed parts (ids 0..100, 100..200) and ids 200..250 only
/// in the log; the log keeps its closed segments (4 KiB each) so there are several.
fn build(dir: &Path, keep_log: bool) {
    let db = Database::open(dir, opts()).unwrap();
    let mut def = StreamDef::from_schema("s", &schema()).sort_key(&["id"]);
    def.settings.flush_threshold_count = 1 << 40;
    def.settings.flush_threshold_bytes = 1 << 40;
    def.settings.flush_threshold_ms = 1 << 40;
    def.settings.logstore_segment_bytes = 4096;
    if keep_log {
        def.settings.logstore_retention_bytes = None;
        def.settings.logstore_retention_ms = None;
    }
    db.create_stream(def).unwrap();
    for chunk in 0..25 {
        db.append("s", &batch(chunk * 10..chunk * 10 + 10)).unwrap();
        if chunk == 9 || chunk == 19 {
            db.flush("s").unwrap();
        }
    }
    db.close().unwrap();
}

fn shard(dir: &Path) -> PathBuf {
    dir.join("streams/s/0")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn ids(db: &Database) -> sluice::Result<Vec<i64>> {
    let mut out = Vec::new();
    for b in db.scan("s", &ScanRequest::all())? {
        let b = b?;
        let c = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend(c.values().iter().copied());
    }
    out.sort();
    Ok(out)
}

fn all() -> Vec<i64> {
    (0..250).collect()
}

fn snapshot_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// Runs `sluice::check` and asserts it changed nothing.
fn check(dir: &Path) -> sluice::CheckReport {
    let before = snapshot_files(dir);
    let report = sluice::check(dir).unwrap();
    assert_eq!(before, snapshot_files(dir), "check changed the directory");
    report
}

fn damage_names(report: &sluice::CheckReport, file: &Path) -> bool {
    report.damage().any(|f| f.file == file)
}

/// The error names `file` and an offset (the Display form is what users see).
fn names_file_and_offset(e: &Error, file: &Path) -> bool {
    let text = e.to_string();
    text.contains(&file.display().to_string()) && text.contains("offset")
}

#[test]
fn damage_garbage_after_the_last_log_segment_is_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), true);
    assert!(check(t.path()).findings.is_empty());
    let segs = files(&shard(t.path()).join("wal"), "wal");
    assert!(segs.len() > 2, "several segments: {segs:?}");
    let last = segs.last().unwrap();
    let mut b = std::fs::read(last).unwrap();
    b.extend_from_slice(b"garbage garbage garbage garbage garbage garbage");
    std::fs::write(last, b).unwrap();
    let report = check(t.path());
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(&report.findings[0].file, last);
    for _ in 0..2 {
        let db = Database::open(t.path(), opts()).unwrap();
        assert_eq!(ids(&db).unwrap(), all());
        db.close().unwrap();
    }
    assert!(check(t.path()).findings.is_empty(), "the open cut the tail");
}

#[test]
fn damage_garbage_after_an_earlier_log_segment_fails_the_open() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), true);
    let first = files(&shard(t.path()).join("wal"), "wal").remove(0);
    let mut b = std::fs::read(&first).unwrap();
    let at = b.len() as u64;
    b.extend_from_slice(b"garbage garbage garbage garbage garbage garbage");
    std::fs::write(&first, b).unwrap();
    let report = check(t.path());
    let d: Vec<_> = report.damage().collect();
    assert_eq!(d.len(), 1, "{:?}", report.findings);
    assert_eq!((&d[0].file, d[0].offset), (&first, Some(at)));
    let e = Database::open(t.path(), opts()).unwrap_err();
    assert!(names_file_and_offset(&e, &first), "{e}");
    assert!(e.to_string().contains(&format!("offset {at}")), "{e}");
}

#[test]
fn damage_a_truncated_part_fails_the_open() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), false);
    let part = files(&shard(t.path()).join("parts"), "parquet").remove(0);
    let len = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&part).unwrap().set_len(len / 2).unwrap();
    let report = check(t.path());
    assert!(damage_names(&report, &part), "{:?}", report.findings);
    let before = snapshot_files(t.path());
    let e = Database::open(t.path(), opts()).unwrap_err();
    assert!(names_file_and_offset(&e, &part), "{e}");
    assert!(e.to_string().contains(&format!("offset {}", len / 2)), "{e}");
    assert_eq!(before.len(), snapshot_files(t.path()).len(), "a failed open deletes nothing");
}

/// Every byte of the manifest flipped in turn (one fresh copy each): the open recovers all rows
/// (a torn last record whose rows the log still holds) or fails naming the manifest and an
/// offset without deleting a part; `check` agrees with the open.
#[test]
fn damage_a_flipped_byte_in_the_manifest() {
    for keep_log in [false, true] {
        let t0 = tempfile::tempdir().unwrap();
        build(t0.path(), keep_log);
        let manifest = shard(t0.path()).join("MANIFEST");
        let len = std::fs::metadata(&manifest).unwrap().len();
        let (mut recovered, mut refused) = (0, 0);
        for off in (0..len).step_by(7).chain([len - 1]) {
            let t = tempfile::tempdir().unwrap();
            copy_dir(t0.path(), t.path());
            let manifest = shard(t.path()).join("MANIFEST");
            flip(&manifest, off);
            let report = check(t.path());
            let parts_before = files(&shard(t.path()).join("parts"), "parquet");
            match Database::open(t.path(), opts()) {
                Ok(db) => {
                    recovered += 1;
                    assert_eq!(ids(&db).unwrap(), all(), "flip at {off}: wrong rows after recovery");
                    assert!(
                        report.is_clean(),
                        "flip at {off}: check found damage the open repaired: {:?}",
                        report.findings
                    );
                }
                Err(e) => {
                    refused += 1;
                    assert!(names_file_and_offset(&e, &manifest), "flip at {off}: {e}");
                    assert!(damage_names(&report, &manifest), "flip at {off}: check missed it: {:?}", report.findings);
                    assert_eq!(parts_before, files(&shard(t.path()).join("parts"), "parquet"), "flip at {off}");
                }
            }
        }
        // Only flips in the last record can pass for a torn tail, and only while the log still
        // holds the rows of that flush.
        assert!(refused > 0, "keep_log {keep_log}");
        assert_eq!(recovered > 0, keep_log, "keep_log {keep_log}: {recovered} recovered");
    }
}

/// Flipped bytes all over a part: the open succeeds (parts are read lazily), every scan that
/// reads the part fails with `Corrupted` naming it, and `check` reports it.
#[test]
fn damage_a_flipped_byte_in_a_part() {
    let t0 = tempfile::tempdir().unwrap();
    build(t0.path(), false);
    let plen = std::fs::metadata(&files(&shard(t0.path()).join("parts"), "parquet")[0]).unwrap().len();
    for off in (0..plen).step_by(97).chain([4, plen - 1]) {
        let t = tempfile::tempdir().unwrap();
        copy_dir(t0.path(), t.path());
        let part = files(&shard(t.path()).join("parts"), "parquet").remove(0);
        flip(&part, off);
        let report = check(t.path());
        assert!(damage_names(&report, &part), "flip at {off}: {:?}", report.findings);
        let db = Database::open(t.path(), opts()).unwrap();
        let e = ids(&db).unwrap_err();
        assert!(matches!(&e, Error::Parts { source, .. } if source.is_corrupted()), "flip at {off}: {e:?}");
        assert!(names_file_and_offset(&e, &part), "flip at {off}: {e}");
        let e = db.query("SELECT id FROM table(s) ORDER BY id").and_then(|r| r.collect()).unwrap_err();
        assert!(e.to_string().contains(&part.display().to_string()), "flip at {off}: {e}");
    }
}

#[test]
fn damage_a_flipped_byte_in_the_catalog_fails_the_open() {
    let t = tempfile::tempdir().unwrap();
    build(t.path(), false);
    let catalog = t.path().join("catalog/catalog.bin");
    flip(&catalog, std::fs::metadata(&catalog).unwrap().len() / 2);
    let report = check(t.path());
    assert!(damage_names(&report, &catalog), "{:?}", report.findings);
    let e = Database::open(t.path(), opts()).unwrap_err();
    assert!(names_file_and_offset(&e, &catalog), "{e}");
}

/// `sluice check` through the binary: exit 0 on a clean directory, 1 with the file and the
/// offset printed when a part is damaged.
#[test]
fn damage_sluice_check_command() {
    let bin = crate::crash::sluice_binary();
    let t = tempfile::tempdir().unwrap();
    build(t.path(), false);
    let run = || {
        let out = std::process::Command::new(&bin).arg("check").arg("--data-dir").arg(t.path()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, text) = run();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no damage"), "{text}");
    let part = files(&shard(t.path()).join("parts"), "parquet").remove(1);
    flip(&part, 100);
    let (code, text) = run();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("DAMAGE: {} at offset 0", part.display())), "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let q = to.join(e.file_name());
        if p.is_dir() {
            std::fs::create_dir_all(&q).unwrap();
            copy_dir(&p, &q);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}
