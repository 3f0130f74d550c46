//! The manifest record codec as a fuzz entry point (`sluice_tests::fuzz`). Not an API.

use crate::manifest::codec::{Record, decode_record, encode_edit, encode_snapshot};

/// Decodes the manifest record at the start of `b`. `None` when it is not a valid record;
/// otherwise the bytes it took and the record encoded again. Never panics.
#[doc(hidden)]
pub fn manifest_record(b: &[u8]) -> Option<(usize, Vec<u8>)> {
    let (record, n) = decode_record(b).ok()?;
    let encoded = match record {
        Record::Edit(edit) => encode_edit(&edit),
        Record::Snapshot { parts, flushed_mark, next_part_id } => {
            encode_snapshot(parts.iter(), flushed_mark, next_part_id)
        }
    };
    Some((n, encoded))
}
