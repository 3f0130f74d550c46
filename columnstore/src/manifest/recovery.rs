//! Reading a manifest file back, cutting a torn tail, and removing part files the manifest does
//! not know.

use std::path::Path;

use sluice_vfs::FileSystem;

use super::ManifestState;
use super::codec::{DecodeError, FRAME_LEN, HEADER_LEN, Record, decode_header, decode_record};
use crate::{Error, PartId, PartInfo, Result};

/// What replaying a manifest file found.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) state: ManifestState,
    /// Length of the valid prefix (header and whole records).
    pub(crate) good_len: u64,
    /// Records applied.
    pub(crate) records: usize,
}

/// Replays the manifest bytes `b` of file `path`. A bad record with no valid record after it is
/// a torn tail (everything from it on is ignored); a bad record followed by a valid one is
/// [`Error::Corrupted`].
pub(crate) fn replay(path: &Path, b: &[u8]) -> Result<Replayed> {
    decode_header(b).map_err(|e| {
        let reason = match e {
            DecodeError::Incomplete => "file is shorter than the manifest header".to_owned(),
            DecodeError::Invalid(r) => r,
        };
        Error::corrupted(path, Some(0), reason)
    })?;
    let mut state: Option<ManifestState> = None;
    let mut pos = HEADER_LEN;
    let mut records = 0;
    while pos < b.len() {
        match decode_record(&b[pos..]) {
            Ok((record, n)) => {
                match (record, state.as_mut()) {
                    (Record::Snapshot { parts, flushed_mark, next_part_id }, None) => {
                        state = Some(ManifestState::from_snapshot(parts, flushed_mark, next_part_id));
                    }
                    (Record::Edit(edit), Some(s)) => {
                        s.apply(&edit).map_err(|r| Error::corrupted(path, Some(pos as u64), r))?;
                    }
                    (Record::Snapshot { .. }, Some(_)) => {
                        return Err(Error::corrupted(path, Some(pos as u64), "second snapshot record"));
                    }
                    (Record::Edit(_), None) => {
                        return Err(Error::corrupted(
                            path,
                            Some(pos as u64),
                            "manifest does not start with a snapshot",
                        ));
                    }
                }
                records += 1;
                pos += n;
            }
            Err(e) => {
                if let Some(at) = next_valid_record(b, pos + 1) {
                    let reason = match e {
                        DecodeError::Incomplete => "truncated record".to_owned(),
                        DecodeError::Invalid(r) => r,
                    };
                    return Err(Error::corrupted(
                        path,
                        Some(pos as u64),
                        format!("{reason}, followed by a valid record at offset {at}"),
                    ));
                }
                break;
            }
        }
    }
    let state =
        state.ok_or_else(|| Error::corrupted(path, Some(HEADER_LEN as u64), "manifest has no snapshot record"))?;
    Ok(Replayed { state, good_len: pos as u64, records })
}

/// The first offset at or after `from` where a whole, checksummed record starts.
fn next_valid_record(b: &[u8], from: usize) -> Option<usize> {
    (from..b.len().saturating_sub(FRAME_LEN - 1)).find(|&p| decode_record(&b[p..]).is_ok())
}

/// Deletes everything in `parts_dir` that is not a live part: temporary files (`*.tmp`) and
/// part files the manifest does not list (written but never committed, or removed by a merge
/// whose deletion did not happen). Other files are left alone with a warning. Returns the
/// names deleted.
pub(crate) fn remove_orphans(fs: &dyn FileSystem, parts_dir: &Path, state: &ManifestState) -> Result<Vec<String>> {
    let names = fs.list_dir(parts_dir).map_err(|e| Error::io("list", parts_dir, e))?;
    let mut removed = Vec::new();
    for name in names {
        let orphan = if name.ends_with(".tmp") {
            true
        } else if let Some(id) = PartId::from_file_name(&name) {
            !state.parts.contains_key(&id)
        } else {
            tracing::warn!(dir = %parts_dir.display(), file = %name, "unexpected file among parts");
            false
        };
        if orphan {
            let p = parts_dir.join(&name);
            fs.remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
            tracing::info!(file = %p.display(), "removed orphan part file");
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        fs.sync_dir(parts_dir).map_err(|e| Error::io("fsync dir", parts_dir, e))?;
    }
    Ok(removed)
}

/// Checks that every live part's file exists with the recorded size.
pub(crate) fn check_live_parts(fs: &dyn FileSystem, parts_dir: &Path, state: &ManifestState) -> Result<()> {
    for (id, info) in &state.parts {
        check_live_part(fs, &parts_dir.join(id.file_name()), *id, info)?;
    }
    Ok(())
}

/// Checks that part `id`'s file `path` exists with the recorded size: a missing file is
/// [`Error::MissingPart`], a file of another size [`Error::Corrupted`] at the offset where the
/// shorter of the two ends.
pub(crate) fn check_live_part(fs: &dyn FileSystem, path: &Path, id: PartId, info: &PartInfo) -> Result<()> {
    match fs.file_len(path) {
        Ok(len) if len == info.file_bytes => Ok(()),
        Ok(len) => Err(Error::corrupted(
            path,
            Some(len.min(info.file_bytes)),
            format!(
                "part {id} is {len} bytes, the manifest says {} ({})",
                info.file_bytes,
                if len < info.file_bytes { "truncated" } else { "bytes appended" }
            ),
        )),
        Err(e) => Err(Error::MissingPart { id, path: path.to_path_buf(), reason: e.to_string() }),
    }
}
