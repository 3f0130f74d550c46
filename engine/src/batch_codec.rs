//! How a batch of rows becomes one WAL record and back: a version byte, then an Arrow IPC
//! stream (schema + one batch). The schema travels with every record so that records written
//! before an `ALTER STREAM` still decode; [`crate::ingest::conform`] adapts them to the
//! current columns on replay.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::Error;

/// Version of the record body.
const BODY_VERSION: u8 = 1;

/// Encodes one batch as a WAL payload.
pub(crate) fn encode(batch: &RecordBatch) -> crate::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    buf.push(BODY_VERSION);
    let mut w = StreamWriter::try_new(&mut buf, batch.schema_ref())?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// Decodes a WAL payload written by [`encode`]. `what` names the record in errors.
pub(crate) fn decode(payload: &[u8], what: impl Fn() -> (std::path::PathBuf, u64)) -> crate::Result<RecordBatch> {
    let corrupted = |reason: String| {
        let (file, offset) = what();
        Error::Corrupted { file, offset, reason }
    };
    match payload.first() {
        Some(&BODY_VERSION) => {}
        Some(v) => return Err(corrupted(format!("unknown WAL record body version {v}"))),
        None => return Err(corrupted("empty WAL record".into())),
    }
    let batch = guard(|| {
        let mut reader = StreamReader::try_new(Cursor::new(&payload[1..]), None)?;
        reader.next().unwrap_or_else(|| Err(ArrowError::IpcError("the record holds no batch".into())))
    })
    .map_err(|e| corrupted(format!("WAL record is not a valid Arrow IPC batch: {e}")))?;
    Ok(batch)
}

/// Runs an Arrow IPC decode, turning a panic inside arrow (it does not validate every offset
/// of malformed input before slicing) into an error. Our records are checksummed, so this only
/// matters for damage the checksum cannot see.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, ArrowError>) -> Result<T, ArrowError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(ArrowError::IpcError("malformed Arrow IPC data".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn round_trip_and_garbage() {
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            ],
        )
        .expect("batch");
        let bytes = encode(&batch).expect("encode");
        let back = decode(&bytes, || ("f".into(), 0)).expect("decode");
        assert_eq!(back, batch);
        let mut rng = sluice_vfs::Rng::new(1);
        for _ in 0..2000 {
            let mut b = bytes.clone();
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.below(256) as u8;
            let cut = rng.below(b.len() as u64 + 1) as usize;
            let _ = decode(&b[..cut], || ("f".into(), 0));
        }
    }
}
