//! Byte layout of the manifest (see `docs/format.md`, "Manifest"). All integers little endian.
//!
//! ```text
//! header, 16 bytes:  magic b"SLUICEMF" | version u16 = 1 | header_len u16 = 16 | crc32c u32 of bytes 0..12
//! record:            len u32 | crc u32 = crc32c(len bytes ‖ body) | body (len bytes)
//! body:              kind u8 (1 = edit, 2 = snapshot) then the kind's fields
//! ```
//! Decoding never panics: every read is bounds-checked and every failure is a [`DecodeError`].

use crate::{ColumnStats, Edit, PartId, PartInfo, SeqRange, Stat, TimeRange};

/// Magic bytes at the start of a manifest.
pub(crate) const MAGIC: [u8; 8] = *b"SLUICEMF";
/// Current manifest format version.
pub(crate) const VERSION: u16 = 1;
/// Size of the file header.
pub(crate) const HEADER_LEN: usize = 16;
/// Size of a record's frame header (len + crc).
pub(crate) const FRAME_LEN: usize = 8;
/// Largest record body accepted (a snapshot of a huge shard stays far below this).
pub(crate) const MAX_RECORD: usize = 64 << 20;

const KIND_EDIT: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;

/// Why bytes are not a valid header or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the header or record needs (a torn tail looks like this).
    Incomplete,
    /// The bytes are there but wrong.
    Invalid(String),
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// One committed edit.
    Edit(Edit),
    /// The whole state, written first in every manifest file.
    Snapshot { parts: Vec<PartInfo>, flushed_mark: Option<u64>, next_part_id: PartId },
}

pub(crate) fn encode_header() -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    let crc = crc32c::crc32c(&b[0..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

pub(crate) fn decode_header(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Incomplete);
    }
    if b[0..8] != MAGIC {
        return Err(DecodeError::Invalid("bad magic (not a sluice manifest)".into()));
    }
    let crc = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if crc32c::crc32c(&b[0..12]) != crc {
        return Err(DecodeError::Invalid("manifest header checksum mismatch".into()));
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != VERSION {
        return Err(DecodeError::Invalid(format!(
            "unsupported manifest version {version} (this build reads {VERSION})"
        )));
    }
    let header_len = u16::from_le_bytes([b[10], b[11]]);
    if usize::from(header_len) != HEADER_LEN {
        return Err(DecodeError::Invalid(format!("bad manifest header length {header_len}")));
    }
    Ok(())
}

/// Frames `body` as a record.
fn frame(body: Vec<u8>) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &body);
    let mut out = Vec::with_capacity(FRAME_LEN + body.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub(crate) fn encode_edit(edit: &Edit) -> Vec<u8> {
    let mut b = vec![KIND_EDIT];
    put_mark(&mut b, edit.flushed_mark);
    b.extend_from_slice(&(edit.add.len() as u32).to_le_bytes());
    for p in &edit.add {
        put_part(&mut b, p);
    }
    b.extend_from_slice(&(edit.remove.len() as u32).to_le_bytes());
    for id in &edit.remove {
        b.extend_from_slice(&id.0.to_le_bytes());
    }
    frame(b)
}

pub(crate) fn encode_snapshot<'a>(
    parts: impl ExactSizeIterator<Item = &'a PartInfo>,
    flushed_mark: Option<u64>,
    next_part_id: PartId,
) -> Vec<u8> {
    let mut b = vec![KIND_SNAPSHOT];
    put_mark(&mut b, flushed_mark);
    b.extend_from_slice(&next_part_id.0.to_le_bytes());
    b.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    for p in parts {
        put_part(&mut b, p);
    }
    frame(b)
}

fn put_mark(b: &mut Vec<u8>, mark: Option<u64>) {
    b.push(u8::from(mark.is_some()));
    b.extend_from_slice(&mark.unwrap_or(0).to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn put_stat(b: &mut Vec<u8>, s: Option<&Stat>) {
    match s {
        None => b.push(0),
        Some(Stat::Int(v)) => {
            b.push(1);
            b.extend_from_slice(&v.to_le_bytes());
        }
        Some(Stat::UInt(v)) => {
            b.push(2);
            b.extend_from_slice(&v.to_le_bytes());
        }
        Some(Stat::Float(v)) => {
            b.push(3);
            b.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Some(Stat::Str(v)) => {
            b.push(4);
            put_str(b, v);
        }
        Some(Stat::Bool(v)) => {
            b.push(5);
            b.push(u8::from(*v));
        }
    }
}

fn put_part(b: &mut Vec<u8>, p: &PartInfo) {
    b.extend_from_slice(&p.id.0.to_le_bytes());
    b.extend_from_slice(&p.level.to_le_bytes());
    b.extend_from_slice(&p.rows.to_le_bytes());
    b.extend_from_slice(&p.file_bytes.to_le_bytes());
    b.extend_from_slice(&p.data_bytes.to_le_bytes());
    b.extend_from_slice(&p.tail_crc.to_le_bytes());
    b.extend_from_slice(&p.seq.first.to_le_bytes());
    b.extend_from_slice(&p.seq.last.to_le_bytes());
    b.push(u8::from(p.time.is_some()));
    let t = p.time.unwrap_or(TimeRange { min_ms: 0, max_ms: 0 });
    b.extend_from_slice(&t.min_ms.to_le_bytes());
    b.extend_from_slice(&t.max_ms.to_le_bytes());
    b.extend_from_slice(&(p.columns.len() as u32).to_le_bytes());
    for c in &p.columns {
        put_str(b, &c.name);
        b.push(u8::from(c.null_count.is_some()));
        b.extend_from_slice(&c.null_count.unwrap_or(0).to_le_bytes());
        put_stat(b, c.min.as_ref());
        put_stat(b, c.max.as_ref());
    }
}

/// Decodes the record at the start of `b`; returns it and its total length.
pub(crate) fn decode_record(b: &[u8]) -> Result<(Record, usize), DecodeError> {
    if b.len() < FRAME_LEN {
        return Err(DecodeError::Incomplete);
    }
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if len == 0 || len > MAX_RECORD {
        return Err(DecodeError::Invalid(format!("bad record length {len}")));
    }
    if b.len() < FRAME_LEN + len {
        return Err(DecodeError::Incomplete);
    }
    let stored = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let body = &b[FRAME_LEN..FRAME_LEN + len];
    if crc32c::crc32c_append(crc32c::crc32c(&b[0..4]), body) != stored {
        return Err(DecodeError::Invalid("record checksum mismatch".into()));
    }
    let mut r = Reader { b: body };
    let record = match r.u8()? {
        KIND_EDIT => {
            let flushed_mark = r.mark()?;
            let add = r.vec(|r| r.part())?;
            let remove = r.vec(|r| r.u64().map(PartId))?;
            Record::Edit(Edit { add, remove, flushed_mark })
        }
        KIND_SNAPSHOT => {
            let flushed_mark = r.mark()?;
            let next_part_id = PartId(r.u64()?);
            let parts = r.vec(|r| r.part())?;
            Record::Snapshot { parts, flushed_mark, next_part_id }
        }
        k => return Err(invalid(format!("unknown record kind {k}"))),
    };
    if !r.b.is_empty() {
        return Err(invalid(format!("{} stray bytes after the record", r.b.len())));
    }
    Ok((record, FRAME_LEN + len))
}

fn invalid(s: String) -> DecodeError {
    DecodeError::Invalid(s)
}

/// Bounds-checked little-endian reads from a checksummed body.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(invalid("record body ends early".into()));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            f => Err(invalid(format!("bad flag byte {f}"))),
        }
    }

    fn mark(&mut self) -> Result<Option<u64>, DecodeError> {
        let present = self.flag()?;
        let v = self.u64()?;
        Ok(present.then_some(v))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| invalid("string is not UTF-8".into()))
    }

    /// A u32 count then that many items; the count is checked against the bytes left so a bad
    /// count cannot allocate much.
    fn vec<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>) -> Result<Vec<T>, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.b.len() {
            return Err(invalid(format!("count {n} exceeds the record")));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }

    fn stat(&mut self) -> Result<Option<Stat>, DecodeError> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(Stat::Int(self.i64()?)),
            2 => Some(Stat::UInt(self.u64()?)),
            3 => Some(Stat::Float(f64::from_bits(self.u64()?))),
            4 => Some(Stat::Str(self.string()?)),
            5 => Some(Stat::Bool(self.flag()?)),
            t => return Err(invalid(format!("unknown statistics tag {t}"))),
        })
    }

    fn part(&mut self) -> Result<PartInfo, DecodeError> {
        let id = PartId(self.u64()?);
        let level = self.u32()?;
        let rows = self.u64()?;
        let file_bytes = self.u64()?;
        let data_bytes = self.u64()?;
        let tail_crc = self.u32()?;
        let first = self.u64()?;
        let last = self.u64()?;
        if first > last {
            return Err(invalid(format!("part {id}: sequence range {first}..={last} is backwards")));
        }
        let has_time = self.flag()?;
        let min_ms = self.i64()?;
        let max_ms = self.i64()?;
        let time = has_time.then_some(TimeRange { min_ms, max_ms });
        let columns = self.vec(|r| {
            let name = r.string()?;
            let has_nulls = r.flag()?;
            let nulls = r.u64()?;
            let min = r.stat()?;
            let max = r.stat()?;
            Ok(ColumnStats { name, min, max, null_count: has_nulls.then_some(nulls) })
        })?;
        Ok(PartInfo { id, level, rows, file_bytes, data_bytes, tail_crc, seq: SeqRange { first, last }, time, columns })
    }
}

#[cfg(test)]
mod tests {
    use sluice_vfs::Rng;

    use super::*;

    pub(crate) fn sample_part(id: u64) -> PartInfo {
        PartInfo {
            id: PartId(id),
            level: 2,
            rows: 1000 + id,
            file_bytes: 4096,
            data_bytes: 4000,
            tail_crc: 0xdead_beef,
            seq: SeqRange::new(id * 10, id * 10 + 9),
            time: Some(TimeRange { min_ms: -5, max_ms: 1_700_000_000_000 }),
            columns: vec![
                ColumnStats {
                    name: "a".into(),
                    min: Some(Stat::Int(-1)),
                    max: Some(Stat::UInt(7)),
                    null_count: Some(3),
                },
                ColumnStats {
                    name: "ß".into(),
                    min: Some(Stat::Str("x".into())),
                    max: Some(Stat::Float(2.5)),
                    null_count: None,
                },
                ColumnStats { name: "b".into(), min: Some(Stat::Bool(true)), max: None, null_count: None },
            ],
        }
    }

    #[test]
    fn records_round_trip() {
        let edit = Edit { add: vec![sample_part(1), sample_part(2)], remove: vec![PartId(9)], flushed_mark: Some(77) };
        let bytes = encode_edit(&edit);
        assert_eq!(decode_record(&bytes), Ok((Record::Edit(edit), bytes.len())));
        let empty = Edit::default();
        let bytes = encode_edit(&empty);
        assert_eq!(decode_record(&bytes), Ok((Record::Edit(empty), bytes.len())));
        let parts = [sample_part(3)];
        let bytes = encode_snapshot(parts.iter(), None, PartId(4));
        let expected = Record::Snapshot { parts: parts.to_vec(), flushed_mark: None, next_part_id: PartId(4) };
        assert_eq!(decode_record(&bytes), Ok((expected, bytes.len())));
        decode_header(&encode_header()).expect("header decodes");
    }

    #[test]
    fn every_prefix_is_incomplete_and_every_flip_is_invalid() {
        let bytes = encode_edit(&Edit { add: vec![sample_part(5)], remove: vec![], flushed_mark: None });
        for n in 0..bytes.len() {
            assert!(decode_record(&bytes[..n]).is_err(), "prefix {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode_record(&b).is_err(), "flip at {i}");
        }
        let h = encode_header();
        for i in 0..HEADER_LEN {
            let mut b = h;
            b[i] ^= 1;
            assert!(decode_header(&b).is_err(), "header flip at {i}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(11);
        for _ in 0..2000 {
            let n = rng.below(200) as usize;
            let mut b = rng.bytes(n);
            if n >= 8 && rng.chance(0.5) {
                // a plausible length with a correct checksum over garbage
                let len = (n - 8) as u32;
                b[0..4].copy_from_slice(&len.to_le_bytes());
                let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..4]), &b[8..]);
                b[4..8].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = decode_record(&b);
            let _ = decode_header(&b);
        }
    }
}
