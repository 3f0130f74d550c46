//! [`check`]: verifies a data directory without changing it (`sluice check`). The catalog,
//! every shard's manifest and parts (each read whole: block checksums, page index and footer
//! checksum, every row group decoded), every log segment (every frame checksum), whether the
//! log still holds every row not in a part, and every materialized view's files. Nothing is
//! cut, deleted, created or synced: damage is reported with its file and offset, and what an
//! open would repair (a torn tail, leftover files) is reported as repairable.

use std::fmt;
use std::path::{Path, PathBuf};

use sluice_vfs::{FileSystem, RealFs};

use crate::options::StorageType;
use crate::stream_def::StreamDef;
use crate::{Error, Result, catalog};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Opening the database would fail, or a read of these bytes would.
    Damage,
    /// Opening the database repairs it: a torn tail it cuts, leftover files it deletes.
    Repairable,
}

/// One thing [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Damage or repairable.
    pub severity: Severity,
    /// The file (or directory).
    pub file: PathBuf,
    /// Byte offset in the file, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Damage => "DAMAGE",
            Severity::Repairable => "repairable",
        };
        write!(f, "{what}: {}", self.file.display())?;
        if let Some(o) = self.offset {
            write!(f, " at offset {o}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What [`check`] found, with counts of what it verified.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Every finding, in the order found.
    pub findings: Vec<Finding>,
    /// Streams in the catalog.
    pub streams: usize,
    /// Shards checked.
    pub shards: usize,
    /// Live parts read whole without damage.
    pub parts: usize,
    /// Rows in those parts.
    pub part_rows: u64,
    /// Log records whose checksum was verified.
    pub log_records: u64,
    /// Materialized views checked.
    pub views: usize,
}

impl CheckReport {
    /// True when nothing is damaged (repairable findings allowed).
    pub fn is_clean(&self) -> bool {
        self.damage().next().is_none()
    }

    /// The damage findings.
    pub fn damage(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Damage)
    }

    fn push(&mut self, severity: Severity, file: impl Into<PathBuf>, offset: Option<u64>, reason: impl Into<String>) {
        self.findings.push(Finding { severity, file: file.into(), offset, reason: reason.into() });
    }

    fn error(&mut self, e: &Error, default_file: &Path) {
        let (file, offset, reason) = match e {
            Error::Corrupted { file, offset, reason } => (file.clone(), Some(*offset), reason.clone()),
            Error::Parts { source, .. } => {
                let f = sluice_columnstore::Finding::from_error(source, default_file);
                (f.file, f.offset, f.reason)
            }
            Error::Wal { source: sluice_wal::Error::Corrupted { file, offset, reason }, .. } => {
                (file.clone(), Some(*offset), reason.clone())
            }
            Error::Io { path, .. } => (path.clone(), None, e.to_string()),
            other => (default_file.to_path_buf(), None, other.to_string()),
        };
        self.push(Severity::Damage, file, offset, reason);
    }
}

/// Verifies the data directory `dir` read-only (see the module docs). Fails only when `dir`
/// is not a sluice data directory, is in use by another process, or cannot be listed; every
/// damage found is in the report.
pub fn check(dir: impl AsRef<Path>) -> Result<CheckReport> {
    let dir = dir.as_ref();
    let fs = RealFs::shared();
    let fs = fs.as_ref();
    if !fs.exists(&dir.join("catalog")) && !fs.exists(&dir.join("streams")) {
        return Err(Error::io(
            "check",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a sluice data directory (no catalog/ or streams/)"),
        ));
    }
    // Held while checking, so that no server starts on the directory meanwhile.
    let _lock = lock_shared(dir)?;
    let mut report = CheckReport::default();
    let catalog_dir = dir.join("catalog");
    let defs = match catalog::load(fs, &catalog_dir) {
        Ok(d) => Some(d),
        Err(e) => {
            report.error(&e, &catalog_dir.join("catalog.bin"));
            None
        }
    };
    let streams_dir = dir.join("streams");
    let on_disk = if fs.exists(&streams_dir) {
        fs.list_dir(&streams_dir).map_err(|e| Error::io("list", &streams_dir, e))?
    } else {
        Vec::new()
    };
    match &defs {
        Some(defs) => {
            report.streams = defs.len();
            for def in defs {
                check_stream(fs, &streams_dir.join(&def.name), Some(def), &mut report);
            }
            for name in &on_disk {
                if !defs.iter().any(|d| &d.name == name) {
                    report.push(
                        Severity::Repairable,
                        streams_dir.join(name),
                        None,
                        "stream directory not in the catalog (an interrupted CREATE or DROP): open deletes it",
                    );
                }
            }
        }
        // Without a catalog, check whatever shards are there.
        None => {
            for name in &on_disk {
                check_stream(fs, &streams_dir.join(name), None, &mut report);
            }
        }
    }
    check_views(fs, &dir.join("views"), &mut report);
    Ok(report)
}

fn check_stream(fs: &dyn FileSystem, sdir: &Path, def: Option<&StreamDef>, report: &mut CheckReport) {
    let storage = def.map_or(StorageType::Hybrid, |d| d.settings.storage_type);
    if storage == StorageType::InMemory {
        return;
    }
    let shards: Vec<u32> = match def {
        Some(d) => (0..d.settings.shards).collect(),
        None => fs.list_dir(sdir).unwrap_or_default().iter().filter_map(|n| n.parse().ok()).collect(),
    };
    for shard in shards {
        report.shards += 1;
        let dir = crate::shard::shard_dir(sdir, shard);
        let wal_dir = dir.join("wal");
        let log = match sluice_wal::check(fs, &wal_dir) {
            Ok(log) => {
                report.log_records += log.records;
                if let Some(t) = &log.torn_tail {
                    report.push(Severity::Repairable, &t.file, Some(t.offset), format!("torn log tail: {}", t.reason));
                }
                for l in &log.leftovers {
                    report.push(Severity::Repairable, l, None, "log segment below a gap: open deletes it");
                }
                for d in &log.damage {
                    report.push(Severity::Damage, &d.file, Some(d.offset), d.reason.clone());
                }
                log.damage.is_empty().then_some(log)
            }
            Err(e) => {
                report.push(Severity::Damage, &wal_dir, None, e.to_string());
                None
            }
        };
        if storage != StorageType::Hybrid {
            continue;
        }
        let parts = sluice_columnstore::check_shard(fs, &dir);
        report.parts += parts.parts;
        report.part_rows += parts.rows;
        if let Some(t) = &parts.torn_tail {
            report.push(Severity::Repairable, &t.file, t.offset, format!("torn manifest tail: {}", t.reason));
        }
        for l in &parts.leftovers {
            report.push(Severity::Repairable, l, None, "not a live part: open deletes it");
        }
        for d in &parts.damage {
            report.push(Severity::Damage, &d.file, d.offset, d.reason.clone());
        }
        // The log must hold every row not in a part (what `Shard::open` checks).
        let (Some(log), true) = (log, parts.damage.is_empty()) else { continue };
        let flushed = parts.manifest.as_ref().and_then(|m| m.state.flushed_mark).unwrap_or(0);
        let (Some(first), Some(next)) = (log.first_seq, log.next_seq) else { continue };
        if first > flushed && next > flushed {
            let (file, offset) = match &parts.manifest {
                Some(m) if m.good_len < m.file_len => (dir.join("MANIFEST"), Some(m.good_len)),
                _ => (wal_dir.clone(), None),
            };
            report.push(
                Severity::Damage,
                file,
                offset,
                format!("rows {flushed}..{first} are in no part and no longer in the log (which starts at {first})"),
            );
        } else if flushed > next {
            report.push(
                Severity::Damage,
                dir.join("MANIFEST"),
                None,
                format!("flushed mark {flushed} is beyond the end of the log ({next})"),
            );
        }
    }
}

fn check_views(fs: &dyn FileSystem, views_dir: &Path, report: &mut CheckReport) {
    let Ok(names) = fs.list_dir(views_dir) else { return };
    for name in names {
        let vdir = views_dir.join(&name);
        if !fs.exists(&vdir.join(crate::views::DEF_FILE)) {
            report.push(Severity::Repairable, &vdir, None, "view directory without view.def: open deletes it");
            continue;
        }
        report.views += 1;
        if let Err(e) = crate::views::load_def(fs, &vdir, &name) {
            report.error(&e, &vdir.join(crate::views::DEF_FILE));
        }
        if let Err(e) = crate::views::load_checkpoint(fs, &vdir) {
            report.error(&e, &vdir.join("checkpoint"));
        }
    }
}

/// Locks `<dir>/LOCK` if it exists (it is not created): fails if another process holds it.
fn lock_shared(dir: &Path) -> Result<Option<std::fs::File>> {
    let path = dir.join("LOCK");
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    match f.try_lock_shared() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
            "lock",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the data directory is in use by another process: stop it before checking",
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}
