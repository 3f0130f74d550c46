//! Byte layout of segment headers and record frames (see `docs/format.md`, "WAL").
//!
//! Segment header, 32 bytes, little endian:
//! ```text
//!  0  magic        8  b"SLUICEWL"
//!  8  version      u16 = 1
//! 10  header_len   u16 = 32
//! 12  reserved     u32 = 0
//! 16  first_seq    u64  sequence number of the segment's first record (also its file name)
//! 24  reserved     u32 = 0
//! 28  crc32c       u32  over bytes 0..28
//! ```
//! Frame, 36-byte header then `len` payload bytes:
//! ```text
//!  0  len          u32  payload bytes as stored (after compression)
//!  4  crc32c       u32  crc32c(payload) extended with header bytes 0..4 and 8..36
//!  8  seq          u64  first sequence number of the record
//! 16  count        u32  sequence numbers the record covers (>= 1)
//! 20  codec        u8   0 none, 1 lz4 (block), 2 zstd
//! 21  flags        u8   0 (reserved)
//! 22  reserved     u16  0
//! 24  raw_len      u32  payload bytes after decompression
//! 28  timestamp_ms u64  wall-clock time the writer wrote the record
//! ```

use crate::Codec;

/// Magic bytes at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLUICEWL";
/// Current segment format version.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = 36;
/// Largest payload (stored or decompressed) a frame may carry: 256 MiB.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Why bytes are not a valid header or frame. Decoding never panics on any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than a header (or than the header says the frame has).
    Incomplete,
    /// The bytes are there but are not a valid frame/header.
    Invalid(String),
}

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the segment's first record.
    pub first_seq: u64,
}

impl SegmentHeader {
    /// Encodes the 32-byte header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(b: &[u8]) -> Result<Self, FrameError> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(FrameError::Incomplete);
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err(FrameError::Invalid("bad magic (not a sluice WAL segment)".into()));
        }
        let crc = u32_at(b, 28);
        if crc32c::crc32c(&b[0..28]) != crc {
            return Err(FrameError::Invalid("segment header checksum mismatch".into()));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(FrameError::Invalid(format!(
                "unsupported WAL format version {version} (this build reads {FORMAT_VERSION})"
            )));
        }
        let header_len = u16::from_le_bytes([b[10], b[11]]);
        if header_len as usize != SEGMENT_HEADER_LEN {
            return Err(FrameError::Invalid(format!("bad segment header length {header_len}")));
        }
        if b[12..16] != [0; 4] || b[24..28] != [0; 4] {
            return Err(FrameError::Invalid("reserved segment header bytes are not zero".into()));
        }
        Ok(SegmentHeader { first_seq: u64_at(b, 16) })
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Stored payload length.
    pub len: u32,
    /// Checksum (see the module docs for what it covers).
    pub crc: u32,
    /// First sequence number.
    pub seq: u64,
    /// Sequence numbers covered.
    pub count: u32,
    /// Payload codec.
    pub codec: Codec,
    /// Decompressed payload length.
    pub raw_len: u32,
    /// Write time, ms since the epoch.
    pub timestamp_ms: u64,
}

impl FrameHeader {
    /// Total frame size on disk.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + self.len as u64
    }

    /// Sequence number after this record.
    pub fn end_seq(&self) -> u64 {
        self.seq.saturating_add(self.count as u64)
    }

    /// Encodes the header, computing the checksum from the payload's own crc32c.
    pub fn encode(&self, payload_crc: u32) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20] = self.codec.id();
        b[24..28].copy_from_slice(&self.raw_len.to_le_bytes());
        b[28..36].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        let crc = frame_crc(payload_crc, &b);
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and sanity-checks a header (the checksum is checked with the payload, by
    /// [`FrameHeader::verify`]).
    pub fn decode(b: &[u8]) -> Result<Self, FrameError> {
        if b.len() < FRAME_HEADER_LEN {
            return Err(FrameError::Incomplete);
        }
        let len = u32_at(b, 0);
        let count = u32_at(b, 16);
        let codec = Codec::from_id(b[20]).ok_or_else(|| FrameError::Invalid(format!("unknown codec id {}", b[20])))?;
        let raw_len = u32_at(b, 24);
        if b[21] != 0 || b[22] != 0 || b[23] != 0 {
            return Err(FrameError::Invalid("reserved frame bytes are not zero".into()));
        }
        if len as usize > MAX_PAYLOAD || raw_len as usize > MAX_PAYLOAD {
            return Err(FrameError::Invalid(format!(
                "frame length {len} (raw {raw_len}) exceeds the maximum {MAX_PAYLOAD}"
            )));
        }
        if count == 0 {
            return Err(FrameError::Invalid("frame covers zero sequence numbers".into()));
        }
        if codec == Codec::None && raw_len != len {
            return Err(FrameError::Invalid("uncompressed frame with raw_len != len".into()));
        }
        Ok(FrameHeader {
            len,
            crc: u32_at(b, 4),
            seq: u64_at(b, 8),
            count,
            codec,
            raw_len,
            timestamp_ms: u64_at(b, 28),
        })
    }

    /// True when `payload` (exactly `len` bytes) and the header bytes `hb` match the checksum.
    pub fn verify(&self, hb: &[u8], payload: &[u8]) -> bool {
        hb.len() >= FRAME_HEADER_LEN
            && payload.len() == self.len as usize
            && frame_crc(crc32c::crc32c(payload), hb) == self.crc
    }

    /// Decompresses a verified payload.
    pub fn decode_payload(&self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        let raw_len = self.raw_len as usize;
        let out = match self.codec {
            Codec::None => payload.to_vec(),
            Codec::Lz4 => {
                lz4_flex::block::decompress(payload, raw_len).map_err(|e| FrameError::Invalid(format!("lz4: {e}")))?
            }
            Codec::Zstd => {
                zstd::bulk::decompress(payload, raw_len).map_err(|e| FrameError::Invalid(format!("zstd: {e}")))?
            }
        };
        if out.len() != raw_len {
            return Err(FrameError::Invalid(format!(
                "payload decompressed to {} bytes, header says {raw_len}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Decodes one whole frame from `buf` (header + payload), checking the checksum and
/// decompressing. Used by tests and by the fuzz target; never panics.
pub fn decode_frame(buf: &[u8]) -> Result<(FrameHeader, Vec<u8>), FrameError> {
    let h = FrameHeader::decode(buf)?;
    let end = FRAME_HEADER_LEN + h.len as usize;
    if buf.len() < end {
        return Err(FrameError::Incomplete);
    }
    if !h.verify(&buf[..FRAME_HEADER_LEN], &buf[FRAME_HEADER_LEN..end]) {
        return Err(FrameError::Invalid("frame checksum mismatch".into()));
    }
    let payload = h.decode_payload(&buf[FRAME_HEADER_LEN..end])?;
    Ok((h, payload))
}

/// Compresses `raw` with `codec`; returns the codec actually used (compression that does not
/// shrink the payload is dropped) and the bytes to store.
pub fn compress(codec: Codec, zstd_level: i32, raw: Vec<u8>) -> (Codec, Vec<u8>) {
    let packed = match codec {
        Codec::None => return (Codec::None, raw),
        Codec::Lz4 => lz4_flex::block::compress(&raw),
        Codec::Zstd => match zstd::bulk::compress(&raw, zstd_level) {
            Ok(p) => p,
            Err(_) => return (Codec::None, raw),
        },
    };
    if packed.len() < raw.len() { (codec, packed) } else { (Codec::None, raw) }
}

fn frame_crc(payload_crc: u32, hb: &[u8]) -> u32 {
    let c = crc32c::crc32c_append(payload_crc, &hb[0..4]);
    crc32c::crc32c_append(c, &hb[8..FRAME_HEADER_LEN])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_vfs::Rng;

    fn frame(codec: Codec, seq: u64, payload: &[u8]) -> Vec<u8> {
        let (codec, stored) = compress(codec, 1, payload.to_vec());
        let h = FrameHeader {
            len: stored.len() as u32,
            crc: 0,
            seq,
            count: 3,
            codec,
            raw_len: payload.len() as u32,
            timestamp_ms: 42,
        };
        let mut out = h.encode(crc32c::crc32c(&stored)).to_vec();
        out.extend_from_slice(&stored);
        out
    }

    #[test]
    fn round_trip_every_codec() {
        let compressible: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        let random = Rng::new(5).bytes(3000);
        for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
            for payload in [&b""[..], b"x", &compressible[..], &random[..]] {
                let buf = frame(codec, 77, payload);
                let (h, got) = decode_frame(&buf).expect("valid frame");
                assert_eq!(got, payload, "{codec}");
                assert_eq!((h.seq, h.count, h.timestamp_ms), (77, 3, 42));
                assert_eq!(h.end_seq(), 80);
            }
        }
        // compressible data really is compressed
        let lz = frame(Codec::Lz4, 0, &compressible);
        assert!(lz.len() < compressible.len() / 2);
        let zs = frame(Codec::Zstd, 0, &compressible);
        assert!(zs.len() < compressible.len() / 2);
    }

    /// Found by the `wal_frame` fuzz target: non-zero reserved bytes with a matching checksum
    /// were accepted (and so the header did not re-encode to its bytes).
    #[test]
    fn segment_header_reserved_bytes_must_be_zero() {
        let good = SegmentHeader { first_seq: 5 }.encode();
        assert_eq!(SegmentHeader::decode(&good), Ok(SegmentHeader { first_seq: 5 }));
        for at in [12, 15, 24, 27] {
            let mut b = good;
            b[at] = 1;
            let crc = crc32c::crc32c(&b[0..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(SegmentHeader::decode(&b), Err(FrameError::Invalid(_))), "byte {at}");
        }
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let buf = frame(Codec::None, 9, b"hello world, this is a record");
        for i in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode_frame(&b).is_err(), "bit {i} flip not detected");
        }
    }

    #[test]
    fn truncated_frames_are_incomplete() {
        let buf = frame(Codec::Lz4, 1, b"abcdefabcdefabcdefabcdef");
        for n in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..n]).err(), Some(FrameError::Incomplete), "len {n}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(0xfeed);
        for i in 0..20_000 {
            let n = rng.below(200) as usize;
            let mut b = rng.bytes(n);
            if i % 3 == 0 && b.len() >= FRAME_HEADER_LEN {
                // plausible headers: small lengths and a known codec, to reach deeper code
                b[0..4].copy_from_slice(&((n - FRAME_HEADER_LEN) as u32).to_le_bytes());
                b[20] = (i % 3) as u8;
                b[21..24].fill(0);
                b[16] = 1;
            }
            let _ = decode_frame(&b);
            let _ = SegmentHeader::decode(&b);
        }
        // a valid checksum over garbage compressed data must not panic either
        for codec in [Codec::Lz4, Codec::Zstd] {
            for _ in 0..2000 {
                let n = rng.below(64) as usize;
                let stored = rng.bytes(n);
                let h = FrameHeader {
                    len: stored.len() as u32,
                    crc: 0,
                    seq: 0,
                    count: 1,
                    codec,
                    raw_len: rng.below(1000) as u32,
                    timestamp_ms: 0,
                };
                let mut b = h.encode(crc32c::crc32c(&stored)).to_vec();
                b.extend_from_slice(&stored);
                let _ = decode_frame(&b);
            }
        }
    }

    #[test]
    fn segment_header_round_trip_and_damage() {
        let h = SegmentHeader { first_seq: 123_456 };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut d = b;
            d[i] ^= 0x40;
            assert!(SegmentHeader::decode(&d).is_err(), "byte {i}");
        }
        assert_eq!(SegmentHeader::decode(&b[..10]), Err(FrameError::Incomplete));
    }
}
