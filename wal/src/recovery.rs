//! Opening a log directory: find the segments, check them, cut a torn tail off the last one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sluice_vfs::{FileSystem, WriteFile};

use crate::frame::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::segment::{FrameCursor, SegmentMeta, parse_segment_name, scan_segment, valid_frame_after};
use crate::{Error, Result, Verify, WalOptions};

/// The state of a log directory after recovery.
pub(crate) struct Recovered {
    /// Live segments, ascending; the last one is open for appending.
    pub segments: Vec<Arc<SegmentMeta>>,
    pub next_seq: u64,
    pub active_file: Box<dyn WriteFile>,
    pub active_len: u64,
}

fn create_segment(fs: &dyn FileSystem, dir: &Path, first_seq: u64) -> Result<(SegmentMeta, Box<dyn WriteFile>)> {
    let meta = SegmentMeta::new(dir, first_seq, fs.now_ms());
    let mut f = fs.create_new(&meta.path).map_err(|e| Error::io("create", &meta.path, e))?;
    f.append(&SegmentHeader { first_seq }.encode()).map_err(|e| Error::io("write", &meta.path, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &meta.path, e))?;
    fs.sync_dir(dir).map_err(|e| Error::io("fsync dir", dir, e))?;
    Ok((meta, f))
}

/// Recovers the log in `dir` (creating it if needed). Idempotent: recovering the result again
/// changes nothing.
pub(crate) fn recover(dir: &Path, opts: &WalOptions) -> Result<Recovered> {
    let fs = opts.fs.as_ref();
    fs.create_dir_all(dir).map_err(|e| Error::io("create dir", dir, e))?;
    let names = fs.list_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut firsts: Vec<u64> = Vec::new();
    for name in &names {
        match parse_segment_name(name) {
            Some(seq) => firsts.push(seq),
            None => tracing::warn!(dir = %dir.display(), file = %name, "ignoring unknown file in WAL directory"),
        }
    }
    firsts.sort_unstable();

    if firsts.is_empty() {
        let (meta, file) = create_segment(fs, dir, opts.initial_seq)?;
        return Ok(Recovered {
            segments: vec![Arc::new(meta)],
            next_seq: opts.initial_seq,
            active_file: file,
            active_len: SEGMENT_HEADER_LEN as u64,
        });
    }

    let n = firsts.len();
    let mut metas: Vec<Arc<SegmentMeta>> = Vec::new();
    let mut expected: Option<u64> = None;
    let mut active: Option<(Box<dyn WriteFile>, u64)> = None;
    for (i, &first) in firsts.iter().enumerate() {
        let last = i + 1 == n;
        let meta = SegmentMeta::new(dir, first, fs.now_ms());
        let path = meta.path.clone();
        let file_len = fs.file_len(&path).map_err(|e| Error::io("stat", &path, e))?;
        let header = FrameCursor::open(fs, &path)?.header(file_len)?;
        if let Some(exp) = expected {
            if first < exp {
                return Err(Error::corrupted(
                    &path,
                    0,
                    format!(
                        "segment starts at sequence number {first}, inside the previous segment (which ends at {exp})"
                    ),
                ));
            }
            if first > exp {
                // Segments before a gap are leftovers of a retention run that a crash
                // interrupted before the directory was synced: they were already deleted.
                for old in metas.drain(..) {
                    tracing::warn!(file = %old.path.display(), "removing WAL segment left over from interrupted retention");
                    fs.remove_file(&old.path).map_err(|e| Error::io("remove", &old.path, e))?;
                }
                fs.sync_dir(dir).map_err(|e| Error::io("fsync dir", dir, e))?;
            }
        }
        match header {
            Ok(h) if h.first_seq == first => {}
            Ok(h) => {
                return Err(Error::corrupted(
                    &path,
                    16,
                    format!("header says first sequence number {} but the file name says {first}", h.first_seq),
                ));
            }
            Err(e) if last && file_len <= SEGMENT_HEADER_LEN as u64 => {
                // A crash while the segment was being created: nothing was acknowledged in it.
                tracing::warn!(file = %path.display(), reason = ?e, "recreating WAL segment with a torn header");
                fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                let (meta, file) = create_segment(fs, dir, first)?;
                metas.push(Arc::new(meta));
                active = Some((file, SEGMENT_HEADER_LEN as u64));
                expected = Some(first);
                continue;
            }
            Err(e) => return Err(Error::corrupted(&path, 0, format!("bad segment header: {e:?}"))),
        }

        let verify = last || opts.verify == Verify::Full;
        let scan = scan_segment(fs, &path, first, verify)?;
        let mut good_len = scan.good_len;
        if let Some((offset, reason)) = &scan.bad_tail {
            if !last {
                return Err(Error::corrupted(&path, *offset, reason.clone()));
            }
            if let Some(at) = valid_frame_after(fs, &path, *offset, scan.end_seq)? {
                return Err(Error::corrupted(
                    &path,
                    *offset,
                    format!("{reason}; a valid record follows at offset {at}, so this is damage, not a torn tail"),
                ));
            }
            tracing::warn!(file = %path.display(), offset, %reason, cut = scan.file_len - offset, "cutting torn WAL tail");
            good_len = *offset;
        }
        for (seq, off) in &scan.index {
            meta.index.push(*seq, *off);
        }
        meta.end_seq.store(scan.end_seq, Ordering::Release);
        meta.len.store(good_len, Ordering::Release);
        if scan.last_ms > 0 {
            meta.last_ms.store(scan.last_ms, Ordering::Release);
        }
        meta.sealed.store(!last, Ordering::Release);
        if last {
            let mut f = fs.open_append(&path).map_err(|e| Error::io("open", &path, e))?;
            if good_len < scan.file_len {
                f.truncate(good_len).map_err(|e| Error::io("truncate", &path, e))?;
                f.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
            }
            active = Some((f, good_len));
        }
        expected = Some(scan.end_seq);
        metas.push(Arc::new(meta));
    }
    let (active_file, active_len) = active.expect("the last segment is always opened");
    let next_seq = metas.last().map_or(opts.initial_seq, |m| m.end_seq());
    Ok(Recovered { segments: metas, next_seq, active_file, active_len })
}
