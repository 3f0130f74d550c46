//! Block checksums of a part's data region.
//!
//! Parquet (as written by parquet-rs) carries no page checksums, so the writer computes a crc32c
//! of every `block`-byte block of the file's data region (bytes `0..data_end`: magic and row
//! groups, everything before the page index and footer) and stores the list in the footer's
//! key-value metadata (`sluice.crc32c`, 8 hex digits per block). Readers check each block the
//! first time any byte of it is read, so a flipped bit in a page is an error, not a wrong answer.
//! The page index and footer (`data_end..len`) are covered by [`crate::PartInfo::tail_crc`].

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Block size used by new parts.
pub(crate) const BLOCK_BYTES: u64 = 64 * 1024;

/// Computes block checksums while the writer streams bytes out, then the tail checksum.
#[derive(Debug)]
pub(crate) struct ChecksumBuilder {
    block: u64,
    pos: u64,
    current: u32,
    crcs: Vec<u32>,
    /// Set once the data region is finished: `(data_end, crc of the bytes after it)`.
    tail: Option<(u64, u32)>,
}

impl ChecksumBuilder {
    pub(crate) fn new(block: u64) -> Self {
        ChecksumBuilder { block, pos: 0, current: 0, crcs: Vec::new(), tail: None }
    }

    pub(crate) fn update(&mut self, mut buf: &[u8]) {
        if let Some((_, crc)) = &mut self.tail {
            *crc = crc32c::crc32c_append(*crc, buf);
            self.pos += buf.len() as u64;
            return;
        }
        while !buf.is_empty() {
            let room = (self.block - self.pos % self.block) as usize;
            let n = room.min(buf.len());
            self.current = crc32c::crc32c_append(self.current, &buf[..n]);
            self.pos += n as u64;
            buf = &buf[n..];
            if self.pos.is_multiple_of(self.block) {
                self.crcs.push(self.current);
                self.current = 0;
            }
        }
    }

    /// Ends the data region at the current position; returns `(data_end, block crcs)`.
    pub(crate) fn finish_data(&mut self) -> (u64, Vec<u32>) {
        if self.tail.is_none() {
            if !self.pos.is_multiple_of(self.block) {
                self.crcs.push(self.current);
            }
            self.tail = Some((self.pos, 0));
        }
        (self.pos, self.crcs.clone())
    }

    /// crc32c of the bytes written after [`ChecksumBuilder::finish_data`].
    pub(crate) fn tail_crc(&self) -> u32 {
        self.tail.map_or(0, |(_, crc)| crc)
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }
}

/// Encodes block checksums as 8 lower-case hex digits each.
pub(crate) fn encode_hex(crcs: &[u32]) -> String {
    let mut s = String::with_capacity(crcs.len() * 8);
    for c in crcs {
        s.push_str(&format!("{c:08x}"));
    }
    s
}

/// The checksums of a part being read, and which blocks were already checked.
#[derive(Debug)]
pub(crate) struct BlockTable {
    block: u64,
    data_end: u64,
    crcs: Vec<u32>,
    verified: Vec<AtomicU64>,
}

impl BlockTable {
    /// Parses the table; `Err` says why it is not valid for a data region of `data_end` bytes.
    pub(crate) fn decode(block: u64, data_end: u64, hex: &str) -> Result<Self, String> {
        if block == 0 || block > (1 << 30) {
            return Err(format!("bad checksum block size {block}"));
        }
        let expected = data_end.div_ceil(block);
        if hex.len() as u64 != expected * 8 {
            return Err(format!(
                "checksum table has {} hex digits, {} expected for {data_end} data bytes",
                hex.len(),
                expected * 8
            ));
        }
        let mut crcs = Vec::with_capacity(expected as usize);
        for chunk in hex.as_bytes().chunks(8) {
            let s = std::str::from_utf8(chunk).map_err(|_| "checksum table is not ASCII")?;
            crcs.push(u32::from_str_radix(s, 16).map_err(|_| "checksum table is not hex")?);
        }
        let words = crcs.len().div_ceil(64);
        Ok(BlockTable { block, data_end, crcs, verified: (0..words).map(|_| AtomicU64::new(0)).collect() })
    }

    /// Indices of the blocks overlapping `start..end` (clipped to the data region).
    pub(crate) fn blocks_overlapping(&self, start: u64, end: u64) -> Range<usize> {
        let end = end.min(self.data_end);
        if start >= end {
            return 0..0;
        }
        (start / self.block) as usize..end.div_ceil(self.block) as usize
    }

    /// Byte range of block `i`.
    pub(crate) fn block_range(&self, i: usize) -> Range<u64> {
        let start = i as u64 * self.block;
        start..(start + self.block).min(self.data_end)
    }

    pub(crate) fn is_verified(&self, i: usize) -> bool {
        self.verified[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
    }

    /// Checks block `i` against its bytes (exactly [`BlockTable::block_range`]`(i)`).
    pub(crate) fn verify(&self, i: usize, bytes: &[u8]) -> Result<(), String> {
        let range = self.block_range(i);
        if bytes.len() as u64 != range.end - range.start {
            return Err(format!("block {i} is short: {} bytes", bytes.len()));
        }
        let actual = crc32c::crc32c(bytes);
        if actual != self.crcs[i] {
            return Err(format!(
                "checksum mismatch in block {i} (bytes {}..{}): stored {:08x}, computed {actual:08x}",
                range.start, range.end, self.crcs[i]
            ));
        }
        self.verified[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_table_agree() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = ChecksumBuilder::new(64);
        for chunk in data.chunks(37) {
            b.update(chunk);
        }
        let (end, crcs) = b.finish_data();
        b.update(b"footer");
        assert_eq!(end, 1000);
        assert_eq!(b.tail_crc(), crc32c::crc32c(b"footer"));
        assert_eq!(b.position(), 1006);
        let t = BlockTable::decode(64, end, &encode_hex(&crcs)).expect("valid table");
        assert_eq!(t.blocks_overlapping(60, 130), 0..3);
        assert_eq!(t.blocks_overlapping(1000, 2000), 0..0);
        assert_eq!(t.block_range(15), 960..1000);
        for i in 0..16 {
            let r = t.block_range(i);
            assert!(!t.is_verified(i));
            t.verify(i, &data[r.start as usize..r.end as usize]).expect("block matches");
            assert!(t.is_verified(i));
        }
        let mut bad = data[0..64].to_vec();
        bad[3] ^= 1;
        assert!(t.verify(0, &bad).is_err());
        assert!(t.verify(0, &bad[..10]).is_err());
    }

    #[test]
    fn bad_tables_are_rejected() {
        assert!(BlockTable::decode(64, 100, "0000000").is_err());
        assert!(BlockTable::decode(64, 100, "00000000zzzzzzzz").is_err());
        assert!(BlockTable::decode(0, 100, "").is_err());
        assert!(BlockTable::decode(64, 0, "").is_ok());
    }
}
