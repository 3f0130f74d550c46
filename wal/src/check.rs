//! Checking a log directory without changing it (`sluice check`): every segment header and
//! every frame checksum, the same rules as recovery, but nothing is cut, deleted or synced.

use std::path::{Path, PathBuf};

use sluice_vfs::FileSystem;

use crate::frame::SEGMENT_HEADER_LEN;
use crate::segment::{FrameCursor, parse_segment_name, scan_segment, valid_frame_after};
use crate::{Error, Result};

/// A place in a file and what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in it.
    pub offset: u64,
    /// What is there.
    pub reason: String,
}

/// What [`check`] found in a log directory.
#[derive(Debug, Clone, Default)]
pub struct LogCheck {
    /// Segment files found.
    pub segments: usize,
    /// Records whose frame checksum was verified.
    pub records: u64,
    /// The first sequence number of the log as recovery would leave it (`None`: no segment).
    pub first_seq: Option<u64>,
    /// The sequence number after the last good record.
    pub next_seq: Option<u64>,
    /// A torn tail of the last segment that recovery would cut (not damage: the frames were
    /// never acknowledged, or a crash interrupted their write).
    pub torn_tail: Option<Finding>,
    /// Segments below a gap that recovery would delete (left over by an interrupted retention).
    pub leftovers: Vec<PathBuf>,
    /// Damage: recovery would refuse to open the log.
    pub damage: Vec<Finding>,
}

impl LogCheck {
    fn damage(&mut self, file: &Path, offset: u64, reason: impl Into<String>) {
        self.damage.push(Finding { file: file.to_path_buf(), offset, reason: reason.into() });
    }
}

/// Checks the log in `dir` read-only, verifying every frame's checksum. A missing directory is
/// an empty log. I/O errors are returned; damage is reported in [`LogCheck::damage`].
pub fn check(fs: &dyn FileSystem, dir: &Path) -> Result<LogCheck> {
    let mut out = LogCheck::default();
    if !fs.exists(dir) {
        return Ok(out);
    }
    let names = fs.list_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut firsts: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    firsts.sort_unstable();
    out.segments = firsts.len();
    let n = firsts.len();
    let mut run: Vec<PathBuf> = Vec::new();
    let mut expected: Option<u64> = None;
    for (i, &first) in firsts.iter().enumerate() {
        let last = i + 1 == n;
        let path = dir.join(crate::segment::segment_name(first));
        let file_len = fs.file_len(&path).map_err(|e| Error::io("stat", &path, e))?;
        if let Some(exp) = expected {
            if first < exp {
                out.damage(
                    &path,
                    0,
                    format!(
                        "segment starts at sequence number {first}, inside the previous segment (which ends at {exp})"
                    ),
                );
            } else if first > exp {
                out.leftovers.append(&mut run);
                out.first_seq = None;
            }
        }
        out.first_seq.get_or_insert(first);
        run.push(path.clone());
        match FrameCursor::open(fs, &path)?.header(file_len)? {
            Ok(h) if h.first_seq == first => {}
            Ok(h) => {
                out.damage(
                    &path,
                    16,
                    format!("header says first sequence number {} but the file name says {first}", h.first_seq),
                );
                expected = Some(first);
                continue;
            }
            Err(e) if last && file_len <= SEGMENT_HEADER_LEN as u64 => {
                out.torn_tail =
                    Some(Finding { file: path.clone(), offset: 0, reason: format!("torn segment header ({e:?})") });
                expected = Some(first);
                continue;
            }
            Err(e) => {
                out.damage(&path, 0, format!("bad segment header: {e:?}"));
                expected = Some(first);
                continue;
            }
        }
        let scan = scan_segment(fs, &path, first, true)?;
        out.records += scan.records;
        if let Some((offset, reason)) = scan.bad_tail {
            if !last {
                out.damage(&path, offset, reason);
            } else if let Some(at) = valid_frame_after(fs, &path, offset, scan.end_seq)? {
                out.damage(
                    &path,
                    offset,
                    format!("{reason}; a valid record follows at offset {at}, so this is damage, not a torn tail"),
                );
            } else {
                out.torn_tail = Some(Finding {
                    file: path.clone(),
                    offset,
                    reason: format!("{reason} ({} bytes to cut)", scan.file_len - offset),
                });
            }
        }
        expected = Some(scan.end_seq);
    }
    out.next_seq = expected;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use sluice_vfs::SimFs;

    use super::*;
    use crate::{Durability, Wal, WalOptions};

    fn log(fs: &SimFs, records: usize) -> PathBuf {
        let dir = PathBuf::from("/w");
        let opts = WalOptions::default().fs(fs.shared()).durability(Durability::Fsync).segment_bytes(4096);
        let wal = Wal::open(&dir, opts).expect("open");
        for i in 0..records {
            wal.append(vec![i as u8; 300]).expect("append");
        }
        drop(wal);
        dir
    }

    fn segments(fs: &SimFs, dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs.list_dir(dir).expect("list").into_iter().map(|n| dir.join(n)).collect();
        v.sort();
        v
    }

    fn bytes(fs: &SimFs, p: &Path) -> Vec<u8> {
        fs.open_read(p).and_then(|f| f.read_all()).expect("read")
    }

    #[test]
    fn a_clean_log_has_no_findings_and_nothing_changes() {
        let fs = SimFs::new(1);
        let dir = log(&fs, 40);
        let before: Vec<_> = segments(&fs, &dir).iter().map(|p| bytes(&fs, p)).collect();
        let c = check(&fs, &dir).expect("check");
        assert!(c.segments > 1, "{c:?}");
        assert_eq!((c.records, c.first_seq, c.next_seq), (40, Some(0), Some(40)));
        assert!(c.damage.is_empty() && c.torn_tail.is_none() && c.leftovers.is_empty(), "{c:?}");
        let after: Vec<_> = segments(&fs, &dir).iter().map(|p| bytes(&fs, p)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn torn_tails_and_damage_are_told_apart() {
        let fs = SimFs::new(2);
        let dir = log(&fs, 40);
        let segs = segments(&fs, &dir);
        // Garbage after the last segment: a torn tail.
        let mut f = fs.open_append(segs.last().expect("segment")).expect("open");
        f.append(b"garbage garbage garbage garbage garbage").expect("append");
        f.sync_all().expect("sync");
        drop(f);
        let c = check(&fs, &dir).expect("check");
        assert!(c.damage.is_empty(), "{c:?}");
        assert_eq!(c.torn_tail.as_ref().map(|t| &t.file), segs.last());
        // A flipped byte in an earlier segment: damage at the frame's offset.
        let first = &segs[0];
        let mut b = bytes(&fs, first);
        b[SEGMENT_HEADER_LEN + 40] ^= 1;
        fs.remove_file(first).expect("remove");
        let mut f = fs.create_new(first).expect("create");
        f.append(&b).expect("write");
        f.sync_all().expect("sync");
        drop(f);
        let c = check(&fs, &dir).expect("check");
        assert_eq!(c.damage.len(), 1, "{c:?}");
        assert_eq!((&c.damage[0].file, c.damage[0].offset), (first, SEGMENT_HEADER_LEN as u64));
    }
}
