//! The one place that maps a part file into memory (the crate's only `unsafe`).

use std::io;
use std::path::Path;

use bytes::Bytes;

/// Maps the finished, immutable part file at `path` read-only and hands the mapping to
/// [`Bytes`], which parquet reads without copying. An empty file gives empty bytes.
#[allow(unsafe_code)]
pub(crate) fn map_part(path: &Path) -> io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: memmap2 requires that the file is not modified (or truncated) while it is mapped.
    // Part files are immutable once renamed to their final name: the writer never reopens them,
    // merges write new files, and obsolete parts are unlinked only after the last handle (and
    // with it this mapping) is dropped; unlinking does not affect an existing mapping. The
    // mapping is read-only and lives as long as the returned `Bytes` (it owns the `Mmap`).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}
