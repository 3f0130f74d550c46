//! `versioned_kv` streams: reads keep the latest row per primary key, the one with the greatest
//! version column; on a tie the later arrival (greater `_tp_sn`) wins. A key's rows share a
//! shard (the primary key is the sharding key), so arrival order is well defined.
//!
//! Merges drop versions superseded by a newer row of the same key among the merged parts;
//! reads (`table(s)`, the start of a streaming read) dedup what is left.

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::Int64Type;
use arrow::row::{RowConverter, SortField};

use crate::stream_def::TP_SN;
use crate::{Error, Result};

/// For keyed streams: merges keep only the latest row of each key among the merged parts.
pub(crate) fn merge_dedup(def: &crate::stream_def::StreamDef) -> Option<sluice_columnstore::Dedup> {
    let s = &def.settings;
    s.is_versioned_kv().then(|| sluice_columnstore::Dedup {
        keys: s.primary_key.clone(),
        version: s.version_column().to_string(),
        seq: TP_SN.to_string(),
    })
}

struct Best {
    version: Box<[u8]>,
    sn: i64,
    batch: usize,
    row: usize,
}

/// The latest row per key of `batches` (each holds the key columns, `version` and `_tp_sn`),
/// in arrival order of the winners; `None` for no rows.
pub(crate) fn latest_per_key(batches: &[RecordBatch], keys: &[String], version: &str) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(None) };
    let schema = first.schema();
    let col = |name: &str| {
        schema.index_of(name).map_err(|_| Error::Internal(format!("versioned_kv read lacks column '{name}'")))
    };
    let key_idx = keys.iter().map(|k| col(k)).collect::<Result<Vec<_>>>()?;
    let (ver_idx, sn_idx) = (col(version)?, col(TP_SN)?);
    let key_conv =
        RowConverter::new(key_idx.iter().map(|i| SortField::new(schema.field(*i).data_type().clone())).collect())?;
    let ver_conv = RowConverter::new(vec![SortField::new(schema.field(ver_idx).data_type().clone())])?;
    let mut best: HashMap<Box<[u8]>, Best> = HashMap::new();
    for (bi, b) in batches.iter().enumerate() {
        let key_rows = key_conv.convert_columns(&key_idx.iter().map(|i| b.column(*i).clone()).collect::<Vec<_>>())?;
        let ver_rows = ver_conv.convert_columns(&[b.column(ver_idx).clone()])?;
        let sn = b.column(sn_idx).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let (v, s) = (ver_rows.row(r), sn.value(r));
            match best.get_mut(key_rows.row(r).as_ref()) {
                Some(e) => {
                    if (v.as_ref(), s) > (e.version.as_ref(), e.sn) {
                        *e = Best { version: v.as_ref().into(), sn: s, batch: bi, row: r };
                    }
                }
                None => {
                    best.insert(
                        key_rows.row(r).as_ref().into(),
                        Best { version: v.as_ref().into(), sn: s, batch: bi, row: r },
                    );
                }
            }
        }
    }
    let mut winners: Vec<(i64, usize, usize)> = best.into_values().map(|b| (b.sn, b.batch, b.row)).collect();
    winners.sort_unstable();
    let idx: Vec<(usize, usize)> = winners.into_iter().map(|(_, b, r)| (b, r)).collect();
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    Ok(Some(interleave_record_batch(&refs, &idx)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(keys: &[&str], versions: &[i64], sns: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
            Field::new(TP_SN, DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(versions.to_vec())),
                Arc::new(Int64Array::from(sns.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn greatest_version_wins_then_later_arrival() {
        let a = batch(&["x", "y", "x"], &[5, 1, 3], &[0, 1, 2]);
        let b = batch(&["y", "z", "x"], &[1, 7, 5], &[3, 4, 5]);
        let out = latest_per_key(&[a, b], &["k".to_string()], "v").expect("dedup").expect("rows");
        let k = out.column(0).as_string::<i32>();
        let sn = out.column(2).as_primitive::<Int64Type>();
        let got: Vec<(String, i64)> = (0..out.num_rows()).map(|i| (k.value(i).to_string(), sn.value(i))).collect();
        // x: versions 5 (sn 0) and 5 (sn 5) tie -> sn 5; y: 1 and 1 -> sn 3; z: sn 4.
        assert_eq!(got, vec![("y".into(), 3), ("z".into(), 4), ("x".into(), 5)]);
    }
}
