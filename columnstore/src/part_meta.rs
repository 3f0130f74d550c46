//! The facts a part file carries about itself in its Parquet footer's key-value metadata, so a
//! part is self-describing without the manifest (see `docs/format.md`, "Part files").
//!
//! Key `sluice.part`, value: `key=value` lines, in this order, unknown keys ignored:
//! ```text
//! format=1
//! id=000000000000002a
//! level=0
//! rows=1000
//! seq=5..=900
//! time_column=_tp_time          (absent when there is none)
//! sort_key=device,_tp_time      (column names, `%`, `,` and newlines escaped as %25 %2C %0A)
//! crc_block=65536
//! data_bytes=12345
//! ```
//! Key `sluice.crc32c`: the block checksums (see `checksum.rs`).

use crate::{PartId, SeqRange};

/// Key of the part facts.
pub(crate) const KEY_PART: &str = "sluice.part";
/// Key of the block checksum table.
pub(crate) const KEY_CRC: &str = "sluice.crc32c";
/// Version of the `sluice.part` value.
pub(crate) const PART_FORMAT: u32 = 1;

/// Decoded `sluice.part`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartMeta {
    pub(crate) id: PartId,
    pub(crate) level: u32,
    pub(crate) rows: u64,
    pub(crate) seq: SeqRange,
    pub(crate) time_column: Option<String>,
    pub(crate) sort_key: Vec<String>,
    pub(crate) crc_block: u64,
    pub(crate) data_bytes: u64,
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace(',', "%2C").replace('\n', "%0A")
}

fn unescape(s: &str) -> String {
    s.replace("%0A", "\n").replace("%2C", ",").replace("%25", "%")
}

impl PartMeta {
    pub(crate) fn encode(&self) -> String {
        let mut s = format!(
            "format={PART_FORMAT}\nid={}\nlevel={}\nrows={}\nseq={}..={}\n",
            self.id, self.level, self.rows, self.seq.first, self.seq.last
        );
        if let Some(t) = &self.time_column {
            s.push_str(&format!("time_column={}\n", escape(t)));
        }
        let key: Vec<String> = self.sort_key.iter().map(|k| escape(k)).collect();
        s.push_str(&format!("sort_key={}\n", key.join(",")));
        s.push_str(&format!("crc_block={}\ndata_bytes={}\n", self.crc_block, self.data_bytes));
        s
    }

    pub(crate) fn decode(text: &str) -> Result<Self, String> {
        let mut format = None;
        let (mut id, mut level, mut rows, mut seq) = (None, None, None, None);
        let (mut time_column, mut sort_key, mut crc_block, mut data_bytes) = (None, Vec::new(), None, None);
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').ok_or_else(|| format!("bad line {line:?}"))?;
            let num = |v: &str| v.parse::<u64>().map_err(|_| format!("bad number in {line:?}"));
            match k {
                "format" => format = Some(num(v)?),
                "id" => id = Some(PartId(u64::from_str_radix(v, 16).map_err(|_| format!("bad id in {line:?}"))?)),
                "level" => level = Some(u32::try_from(num(v)?).map_err(|_| format!("bad level {v}"))?),
                "rows" => rows = Some(num(v)?),
                "seq" => {
                    let (a, b) = v.split_once("..=").ok_or_else(|| format!("bad seq {v:?}"))?;
                    seq = Some(SeqRange::new(num(a)?, num(b)?));
                }
                "time_column" => time_column = Some(unescape(v)),
                "sort_key" if !v.is_empty() => sort_key = v.split(',').map(unescape).collect(),
                "crc_block" => crc_block = Some(num(v)?),
                "data_bytes" => data_bytes = Some(num(v)?),
                _ => {}
            }
        }
        match format {
            Some(f) if f == u64::from(PART_FORMAT) => {}
            Some(f) => return Err(format!("unsupported part format {f}")),
            None => return Err("no format line".into()),
        }
        let missing = |what: &str| format!("missing {what}");
        Ok(PartMeta {
            id: id.ok_or_else(|| missing("id"))?,
            level: level.ok_or_else(|| missing("level"))?,
            rows: rows.ok_or_else(|| missing("rows"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
            time_column,
            sort_key,
            crc_block: crc_block.ok_or_else(|| missing("crc_block"))?,
            data_bytes: data_bytes.ok_or_else(|| missing("data_bytes"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_odd_names() {
        let m = PartMeta {
            id: PartId(0xabc),
            level: 3,
            rows: 99,
            seq: SeqRange::new(5, 900),
            time_column: Some("_tp_time".into()),
            sort_key: vec!["a,b".into(), "100%\nx".into(), "c".into()],
            crc_block: 65536,
            data_bytes: 1234,
        };
        let text = m.encode();
        assert!(text.starts_with("format=1\nid=0000000000000abc\n"));
        assert_eq!(PartMeta::decode(&text), Ok(m.clone()));
        let no_key = PartMeta { sort_key: vec![], time_column: None, ..m };
        assert_eq!(PartMeta::decode(&no_key.encode()), Ok(no_key));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(PartMeta::decode("").is_err());
        assert!(PartMeta::decode("format=2\n").is_err());
        assert!(PartMeta::decode("format=1\nid=zz\n").is_err());
        assert!(PartMeta::decode("format=1\nid=1\nlevel=0\nrows=1\n").is_err());
        assert!(PartMeta::decode("no equals sign").is_err());
    }
}
