//! Checking a shard directory without changing it (`sluice check`): the manifest replayed by
//! the rules of recovery, then every live part read whole (block checksums, page index and
//! footer checksum, every row group decoded). Nothing is cut, deleted or synced.

use std::path::{Path, PathBuf};

use sluice_vfs::FileSystem;

use crate::manifest::{MANIFEST_FILE, ManifestState, PARTS_DIR, recovery};
use crate::{Error, Part, PartId, ReadBackend, Result};

/// A place in a file and what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in it, when known.
    pub offset: Option<u64>,
    /// What is there.
    pub reason: String,
}

impl Finding {
    /// The finding an error of this crate describes (`default_file` when it names none).
    pub fn from_error(e: &Error, default_file: &Path) -> Finding {
        match e {
            Error::Corrupted { file, offset, reason } => {
                Finding { file: file.clone(), offset: *offset, reason: reason.clone() }
            }
            Error::MissingPart { path, reason, .. } => {
                Finding { file: path.clone(), offset: None, reason: reason.clone() }
            }
            Error::Io { path, .. } => Finding { file: path.clone(), offset: None, reason: e.to_string() },
            other => Finding { file: default_file.to_path_buf(), offset: None, reason: other.to_string() },
        }
    }
}

/// A manifest read back without changing it.
#[derive(Debug, Clone)]
pub struct ManifestRead {
    /// The state after every good record.
    pub state: ManifestState,
    /// Records applied.
    pub records: usize,
    /// Length of the good prefix; recovery cuts the file there when it is shorter than the file.
    pub good_len: u64,
    /// Length of the file.
    pub file_len: u64,
}

/// Reads `<dir>/MANIFEST` by the rules of recovery (a bad record with no valid one after it is
/// a torn tail, reported by `good_len < file_len`), changing nothing. `Ok(None)`: no manifest.
pub fn read_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<Option<ManifestRead>> {
    let path = dir.join(MANIFEST_FILE);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let bytes = fs.open_read(&path).and_then(|f| f.read_all()).map_err(|e| Error::io("read", &path, e))?;
    let r = recovery::replay(&path, &bytes)?;
    Ok(Some(ManifestRead { state: r.state, records: r.records, good_len: r.good_len, file_len: bytes.len() as u64 }))
}

/// What [`check_shard`] found.
#[derive(Debug, Clone, Default)]
pub struct ShardCheck {
    /// The manifest's state (`None` when there is no manifest or it is damaged).
    pub manifest: Option<ManifestRead>,
    /// A torn manifest tail recovery would cut.
    pub torn_tail: Option<Finding>,
    /// Live parts read whole without damage, and their rows.
    pub parts: usize,
    /// Rows of those parts.
    pub rows: u64,
    /// Files recovery would delete: temporary files and part files the manifest does not list.
    pub leftovers: Vec<PathBuf>,
    /// Damage: recovery would fail, or a scan reading the part would.
    pub damage: Vec<Finding>,
}

/// Checks the shard directory `dir` read-only. A missing directory or manifest is an empty
/// shard. I/O errors reading a file are reported as damage of that file.
pub fn check_shard(fs: &dyn FileSystem, dir: &Path) -> ShardCheck {
    let mut out = ShardCheck::default();
    let path = dir.join(MANIFEST_FILE);
    let parts_dir = dir.join(PARTS_DIR);
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    if fs.exists(&tmp) {
        out.leftovers.push(tmp);
    }
    match read_manifest(fs, dir) {
        Ok(Some(m)) => {
            if m.good_len < m.file_len {
                out.torn_tail = Some(Finding {
                    file: path.clone(),
                    offset: Some(m.good_len),
                    reason: format!("torn last record ({} bytes to cut)", m.file_len - m.good_len),
                });
            }
            out.manifest = Some(m);
        }
        Ok(None) => {}
        Err(e) => out.damage.push(Finding::from_error(&e, &path)),
    }
    let empty = ManifestState::default();
    let state = out.manifest.as_ref().map_or(&empty, |m| &m.state);
    for (id, info) in &state.parts {
        let p = parts_dir.join(id.file_name());
        let result = recovery::check_live_part(fs, &p, *id, info)
            .and_then(|()| Part::open_expecting(fs, &p, ReadBackend::Pread, info))
            .and_then(|part| part.verify());
        match result {
            Ok(rows) => {
                out.parts += 1;
                out.rows += rows;
            }
            Err(e) => out.damage.push(Finding::from_error(&e, &p)),
        }
    }
    if let Ok(names) = fs.list_dir(&parts_dir) {
        for name in names {
            let listed = PartId::from_file_name(&name).is_some_and(|id| state.parts.contains_key(&id));
            // With a damaged manifest nothing is known to be an orphan.
            if name.ends_with(".tmp") || (!listed && out.manifest.is_some() && PartId::from_file_name(&name).is_some())
            {
                out.leftovers.push(parts_dir.join(name));
            }
        }
    }
    out.leftovers.sort();
    out
}
