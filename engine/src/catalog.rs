//! The catalog: every stream's definition, persisted crash-safely in one file
//! (`<data-dir>/catalog/catalog.bin`, replaced atomically; format in `docs/format.md`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use sluice_vfs::FileSystem;

use crate::options::{StreamSettings, Ttl};
use crate::stream_def::{ColumnDef, StreamDef};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"SLUICECT";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 16;

/// The file name of the catalog inside `<data-dir>/catalog/`.
pub const CATALOG_FILE: &str = "catalog.bin";

/// Writes the catalog holding `streams` (atomically replacing the old one).
pub(crate) fn store(fs: &dyn FileSystem, dir: &Path, streams: &[Arc<StreamDef>]) -> Result<()> {
    let bytes = encode(streams)?;
    let path = dir.join(CATALOG_FILE);
    sluice_vfs::atomic_write(fs, &path, &bytes).map_err(|e| Error::io("write catalog", &path, e))
}

/// Reads the catalog; an absent file is an empty catalog.
pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<StreamDef>> {
    let path = dir.join(CATALOG_FILE);
    if !fs.exists(&path) {
        return Ok(Vec::new());
    }
    let bytes = fs.open_read(&path).and_then(|f| f.read_all()).map_err(|e| Error::io("read catalog", &path, e))?;
    decode(&bytes, &path)
}

fn encode(streams: &[Arc<StreamDef>]) -> Result<Vec<u8>> {
    let mut w = Writer::default();
    w.u32(streams.len() as u32);
    for s in streams {
        w.str(&s.name);
        let schema = Schema::new(s.columns.iter().map(|c| c.field.clone()).collect::<Vec<_>>());
        w.bytes(&schema_ipc(&schema)?);
        w.u32(s.columns.len() as u32);
        for c in &s.columns {
            let flags = u8::from(c.default.is_some())
                | (u8::from(c.default_sql.is_some()) << 1)
                | (u8::from(c.comment.is_some()) << 2);
            w.u8(flags);
            if let Some(d) = &c.default {
                w.bytes(&value_ipc(&c.field, d)?);
            }
            if let Some(sql) = &c.default_sql {
                w.str(sql);
            }
            if let Some(cm) = &c.comment {
                w.str(cm);
            }
        }
        w.u32(s.sort_key.len() as u32);
        for k in &s.sort_key {
            w.str(k);
        }
        match &s.ttl {
            Some(t) => {
                w.u8(1);
                w.str(&t.column);
                w.u64(t.interval_ms);
            }
            None => w.u8(0),
        }
        let settings = s.settings.to_pairs();
        w.u32(settings.len() as u32);
        for (k, v) in &settings {
            w.str(k);
            w.str(v);
        }
        w.u32(s.extra.len() as u32);
        for (k, v) in &s.extra {
            w.str(k);
            w.str(v);
        }
    }
    let body = w.0;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    Ok(out)
}

fn decode(bytes: &[u8], path: &Path) -> Result<Vec<StreamDef>> {
    let corrupted =
        |offset: usize, reason: String| Error::Corrupted { file: path.to_path_buf(), offset: offset as u64, reason };
    if bytes.len() < HEADER_LEN + 4 || &bytes[..8] != MAGIC {
        return Err(corrupted(0, "not a sluice catalog (bad magic or too short)".into()));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(corrupted(8, format!("unsupported catalog version {version} (this build reads {VERSION})")));
    }
    if bytes[10] != 0 || bytes[11] != 0 {
        return Err(corrupted(10, "reserved header bytes are not zero".into()));
    }
    let len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    if bytes.len() != HEADER_LEN + len + 4 {
        return Err(corrupted(12, format!("body length {len} does not match the file size {}", bytes.len())));
    }
    let body = &bytes[HEADER_LEN..HEADER_LEN + len];
    let crc = u32::from_le_bytes(bytes[HEADER_LEN + len..].try_into().map_err(|_| corrupted(0, "short".into()))?);
    if crc32c::crc32c(body) != crc {
        return Err(corrupted(HEADER_LEN + len, "checksum mismatch".into()));
    }
    let mut r = Reader { buf: body, pos: 0, path };
    let n = r.u32()?;
    let mut out = Vec::with_capacity(n.min(4096) as usize);
    for _ in 0..n {
        let name = r.str()?;
        let schema = read_schema(r.bytes()?).map_err(|e| r.err(format!("schema of '{name}': {e}")))?;
        let ncols = r.u32()? as usize;
        if ncols != schema.fields().len() {
            return Err(r.err(format!("stream '{name}': {ncols} column entries for {} fields", schema.fields().len())));
        }
        let mut columns = Vec::with_capacity(ncols);
        for f in schema.fields() {
            let flags = r.u8()?;
            let default = if flags & 1 != 0 {
                Some(read_value(r.bytes()?).map_err(|e| r.err(format!("default of '{}': {e}", f.name())))?)
            } else {
                None
            };
            let default_sql = if flags & 2 != 0 { Some(r.str()?) } else { None };
            let comment = if flags & 4 != 0 { Some(r.str()?) } else { None };
            columns.push(ColumnDef { field: f.as_ref().clone(), default, default_sql, comment });
        }
        let nsort = r.u32()?;
        let mut sort_key = Vec::new();
        for _ in 0..nsort {
            sort_key.push(r.str()?);
        }
        let ttl = match r.u8()? {
            0 => None,
            _ => Some(Ttl { column: r.str()?, interval_ms: r.u64()? }),
        };
        let nset = r.u32()?;
        let mut pairs = Vec::new();
        for _ in 0..nset {
            pairs.push((r.str()?, r.str()?));
        }
        let settings = StreamSettings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| r.err(format!("settings of '{name}': {e}")))?;
        let nextra = r.u32()?;
        let mut extra = std::collections::BTreeMap::new();
        for _ in 0..nextra {
            let k = r.str()?;
            extra.insert(k, r.str()?);
        }
        out.push(StreamDef { name, columns, sort_key, ttl, settings, extra });
    }
    Ok(out)
}

fn schema_ipc(schema: &Schema) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, schema)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

fn value_ipc(field: &Field, value: &ArrayRef) -> Result<Vec<u8>> {
    let schema = Arc::new(Schema::new(vec![Field::new("v", field.data_type().clone(), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![value.clone()])?;
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, &schema)?;
    w.write(&batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

fn read_schema(bytes: &[u8]) -> std::result::Result<Arc<Schema>, arrow::error::ArrowError> {
    crate::batch_codec::guard(|| Ok(StreamReader::try_new(Cursor::new(bytes), None)?.schema()))
}

fn read_value(bytes: &[u8]) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    crate::batch_codec::guard(|| {
        let mut r = StreamReader::try_new(Cursor::new(bytes), None)?;
        match r.next() {
            Some(b) => Ok(b?.column(0).clone()),
            None => Err(arrow::error::ArrowError::IpcError("default value batch missing".into())),
        }
    })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: String) -> Error {
        Error::Corrupted { file: PathBuf::from(self.path), offset: (HEADER_LEN + self.pos) as u64, reason }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!("entry needs {n} bytes, {} left", self.buf.len() - self.pos)));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::DataType;

    fn sample() -> Vec<Arc<StreamDef>> {
        let mut a = StreamDef::new(
            "events",
            vec![
                ColumnDef::new("id", DataType::UInt64, false),
                ColumnDef::new("n", DataType::Int32, true).with_default(Arc::new(Int32Array::from(vec![7]))),
            ],
        )
        .normalize()
        .expect("valid");
        a.columns[1].comment = Some("a number".into());
        a.ttl = Some(Ttl { column: "_tp_time".into(), interval_ms: 3_600_000 });
        a.settings.shards = 3;
        a.extra.insert("order_by_sql".into(), "_tp_time".into());
        let b = StreamDef::new("b", vec![ColumnDef::new("s", DataType::Utf8, true)]).normalize().expect("valid");
        vec![Arc::new(a), Arc::new(b)]
    }

    #[test]
    fn round_trip() {
        let defs = sample();
        let bytes = encode(&defs).expect("encode");
        let back = decode(&bytes, Path::new("c")).expect("decode");
        assert_eq!(back.len(), 2);
        assert_eq!(&back[0], defs[0].as_ref());
        assert_eq!(&back[1], defs[1].as_ref());
    }

    #[test]
    fn damage_is_corrupted_never_a_panic() {
        let bytes = encode(&sample()).expect("encode");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x41;
            assert!(matches!(decode(&b, Path::new("c")), Err(Error::Corrupted { .. })), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n], Path::new("c")).is_err());
        }
    }
}
