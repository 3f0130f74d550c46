//! Group-key interning for the hash aggregate: maps each input row to a dense group id.
//!
//! Specialised paths: no keys (one group); one integer-like key (a `u64` hash map); one string
//! key, plain or dictionary-encoded (a byte arena; dictionary batches intern each dictionary
//! value once and map rows through the keys, reusing the mapping while batches share their
//! dictionary); anything else through Arrow's row format.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Int32Type, Int64Type, UInt64Type};
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;

use super::u64_table::U64Table;

use crate::aggregate::distinct::{Hasher, hasher};
use crate::error::{Error, Result};
use crate::functions::cast::{cast_array, timestamp_from_i64, timestamp_ticks};
use crate::functions::value_type;

/// Interned group keys.
pub enum GroupKeys {
    /// No GROUP BY: everything is group 0.
    Single,
    /// One integer-like key.
    Int(IntKeys),
    /// One string key.
    Str(StrKeys),
    /// Several keys or other types.
    Rows(RowKeys),
}

impl std::fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupKeys::Single => "Single",
            GroupKeys::Int(_) => "Int",
            GroupKeys::Str(_) => "Str",
            GroupKeys::Rows(_) => "Rows",
        })
    }
}

fn int_like(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Date32 | DataType::Timestamp(..) | DataType::Boolean)
}

impl GroupKeys {
    /// Keys of these types (the group expressions' types).
    pub fn new(types: &[DataType]) -> Result<Self> {
        Ok(match types {
            [] => GroupKeys::Single,
            [t] if int_like(t) => {
                GroupKeys::Int(IntKeys { map: U64Table::default(), keys: Vec::new(), null_group: None, ty: t.clone() })
            }
            [t] if matches!(value_type(t), DataType::Utf8) => GroupKeys::Str(StrKeys {
                table: HashTable::new(),
                hashes: Vec::new(),
                offsets: vec![0],
                bytes: Vec::new(),
                null_group: None,
                ty: t.clone(),
                hasher: hasher(),
                dict: None,
                gid_of_slot: Vec::new(),
            }),
            _ => {
                let fields = types.iter().map(|t| SortField::new(value_type(t).clone())).collect();
                let converter = RowConverter::new(fields)?;
                let rows = converter.empty_rows(0, 0);
                GroupKeys::Rows(RowKeys {
                    converter,
                    rows,
                    table: HashTable::new(),
                    hashes: Vec::new(),
                    types: types.to_vec(),
                    hasher: hasher(),
                })
            }
        })
    }

    /// Number of groups so far.
    pub fn len(&self) -> usize {
        match self {
            GroupKeys::Single => 1,
            GroupKeys::Int(k) => k.keys.len() + k.null_group.is_some() as usize,
            GroupKeys::Str(k) => k.hashes.len() + k.null_group.is_some() as usize,
            GroupKeys::Rows(k) => k.hashes.len(),
        }
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `out` to the group of each row of `cols`.
    pub fn intern(&mut self, cols: &[ArrayRef], rows: usize, out: &mut Vec<u32>) -> Result<()> {
        match self {
            // `out` is only ever zeros here: just fix its length.
            GroupKeys::Single => {
                if out.len() > rows {
                    out.truncate(rows);
                } else {
                    out.resize(rows, 0);
                }
            }
            GroupKeys::Int(k) => {
                out.clear();
                k.intern(&cols[0], out)?
            }
            GroupKeys::Str(k) => {
                out.clear();
                k.intern(&cols[0], out)?
            }
            GroupKeys::Rows(k) => {
                out.clear();
                k.intern(cols, out)?
            }
        }
        Ok(())
    }

    /// The key columns of every group, in group order.
    pub fn arrays(&self) -> Result<Vec<ArrayRef>> {
        match self {
            GroupKeys::Single => Ok(vec![]),
            GroupKeys::Int(k) => Ok(vec![k.array()?]),
            GroupKeys::Str(k) => Ok(vec![k.array()?]),
            GroupKeys::Rows(k) => k.arrays(),
        }
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        match self {
            GroupKeys::Single => 0,
            GroupKeys::Int(k) => k.map.size() + k.keys.capacity() * 8,
            GroupKeys::Str(k) => k.table.capacity() * 5 + k.hashes.capacity() * 16 + k.bytes.capacity(),
            GroupKeys::Rows(k) => k.table.capacity() * 5 + k.hashes.capacity() * 8 + k.rows.size(),
        }
    }
}

/// One integer-like key, stored as its 64-bit pattern.
#[derive(Debug)]
pub struct IntKeys {
    map: U64Table,
    keys: Vec<u64>,
    null_group: Option<u32>,
    ty: DataType,
}

impl IntKeys {
    fn next_id(&self) -> u32 {
        (self.keys.len() + self.null_group.is_some() as usize) as u32
    }

    fn intern(&mut self, col: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        match col.data_type() {
            DataType::UInt64 => {
                let a = col.as_primitive::<UInt64Type>();
                self.run(a.values().iter().copied(), a.nulls(), out);
            }
            DataType::Int64 => {
                let a = col.as_primitive::<Int64Type>();
                self.run(a.values().iter().map(|v| *v as u64), a.nulls(), out);
            }
            DataType::Timestamp(..) => {
                let a = timestamp_ticks(col)?;
                self.run(a.values().iter().map(|v| *v as u64), a.nulls(), out);
            }
            _ => {
                let c = cast_array(col, value_type(col.data_type()))?;
                let c = arrow::compute::cast(&c, &DataType::Int64)?;
                let a = c.as_primitive::<Int64Type>();
                self.run(a.values().iter().map(|v| *v as u64), a.nulls(), out);
            }
        }
        Ok(())
    }

    #[inline]
    fn run(&mut self, vals: impl Iterator<Item = u64>, nulls: Option<&arrow::buffer::NullBuffer>, out: &mut Vec<u32>) {
        let mut last: Option<(u64, u32)> = None;
        for (i, v) in vals.enumerate() {
            if nulls.is_some_and(|n| n.is_null(i)) {
                let g = match self.null_group {
                    Some(g) => g,
                    None => {
                        let g = self.next_id();
                        self.null_group = Some(g);
                        g
                    }
                };
                out.push(g);
                continue;
            }
            // Sorted or clustered keys repeat: skip the hash lookup.
            if let Some((lv, lg)) = last
                && lv == v
            {
                out.push(lg);
                continue;
            }
            let next = self.next_id();
            let (g, inserted) = self.map.get_or_insert(v, || next);
            if inserted {
                self.keys.push(v);
            }
            last = Some((v, g));
            out.push(g);
        }
    }

    fn array(&self) -> Result<ArrayRef> {
        let mut vals: Vec<Option<i64>> = self.keys.iter().map(|v| Some(*v as i64)).collect();
        if let Some(g) = self.null_group {
            vals.insert(g as usize, None);
        }
        let t = value_type(&self.ty).clone();
        let out: ArrayRef = match &t {
            DataType::UInt64 => {
                let mut v: Vec<Option<u64>> = self.keys.iter().map(|v| Some(*v)).collect();
                if let Some(g) = self.null_group {
                    v.insert(g as usize, None);
                }
                Arc::new(UInt64Array::from(v))
            }
            DataType::Timestamp(unit, tz) => timestamp_from_i64(Int64Array::from(vals), *unit, tz.clone()),
            _ => arrow::compute::cast(&(Arc::new(Int64Array::from(vals)) as ArrayRef), &t)?,
        };
        cast_array(&out, &self.ty)
    }
}

/// One string key in a byte arena.
#[derive(Debug)]
pub struct StrKeys {
    table: HashTable<u32>,
    hashes: Vec<u64>,
    offsets: Vec<usize>,
    bytes: Vec<u8>,
    null_group: Option<u32>,
    ty: DataType,
    hasher: Hasher,
    /// The last dictionary seen and its value -> group mapping. The dictionary's values are kept
    /// alive here: comparing buffer addresses is only sound while the buffer cannot be freed and
    /// its address reused by the next batch's (different) dictionary.
    dict: Option<(ArrayRef, Vec<u32>)>,
    /// The group id of each arena slot (the NULL group has no slot).
    gid_of_slot: Vec<u32>,
}

impl StrKeys {
    fn next_id(&self) -> u32 {
        (self.hashes.len() + self.null_group.is_some() as usize) as u32
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }

    fn null(&mut self) -> u32 {
        match self.null_group {
            Some(g) => g,
            None => {
                let g = self.next_id();
                self.null_group = Some(g);
                g
            }
        }
    }

    fn intern_str(&mut self, s: &[u8]) -> u32 {
        let h = self.hasher.hash_one(s);
        let (offsets, bytes) = (&self.offsets, &self.bytes);
        if let Some(slot) = self.table.find(h, |slot| &bytes[offsets[*slot as usize]..offsets[*slot as usize + 1]] == s)
        {
            return self.gid_of_slot[*slot as usize];
        }
        let slot = self.hashes.len() as u32;
        let g = self.next_id();
        self.hashes.push(h);
        self.gid_of_slot.push(g);
        self.bytes.extend_from_slice(s);
        self.offsets.push(self.bytes.len());
        let hashes = &self.hashes;
        self.table.insert_unique(h, slot, |s| hashes[*s as usize]);
        g
    }

    fn intern(&mut self, col: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        if let Some(dict) = col.as_dictionary_opt::<Int32Type>() {
            let values = dict.values();
            let values = values
                .as_string_opt::<i32>()
                .ok_or_else(|| Error::Internal { message: "dictionary of non-strings".into() })?;
            let len = values.len();
            let same = |held: &ArrayRef| {
                held.as_string_opt::<i32>().is_some_and(|h| {
                    h.len() == len
                        && h.values().as_ptr() == values.values().as_ptr()
                        && h.offsets().as_ptr() == values.offsets().as_ptr()
                })
            };
            let mut lut = match self.dict.take() {
                Some((held, lut)) if same(&held) => lut,
                _ => vec![u32::MAX; len],
            };
            let keys = dict.keys();
            out.resize(keys.len(), 0);
            let nulls = keys.nulls().filter(|n| n.null_count() > 0).cloned();
            for (i, (o, k)) in out.iter_mut().zip(keys.values().iter()).enumerate() {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    *o = self.null();
                    continue;
                }
                let k = *k as usize;
                let g = *lut.get(k).ok_or_else(|| Error::Internal { message: "dictionary key out of range".into() })?;
                *o = if g != u32::MAX {
                    g
                } else {
                    let g = if values.is_null(k) { self.null() } else { self.intern_str(values.value(k).as_bytes()) };
                    lut[k] = g;
                    g
                };
            }
            self.dict = Some((dict.values().clone(), lut));
            return Ok(());
        }
        let s = cast_array(col, &DataType::Utf8)?;
        let s = s.as_string::<i32>();
        out.reserve(s.len());
        for i in 0..s.len() {
            let g = if s.is_null(i) { self.null() } else { self.intern_str(s.value(i).as_bytes()) };
            out.push(g);
        }
        Ok(())
    }

    fn array(&self) -> Result<ArrayRef> {
        let n = self.hashes.len() + self.null_group.is_some() as usize;
        let mut v: Vec<Option<&str>> = vec![None; n];
        for slot in 0..self.hashes.len() {
            let s = std::str::from_utf8(self.key(slot)).map_err(|e| Error::Internal { message: e.to_string() })?;
            v[self.gid_of_slot[slot] as usize] = Some(s);
        }
        let a: ArrayRef = Arc::new(StringArray::from(v));
        cast_array(&a, &self.ty)
    }
}

/// Several keys (or other types) in Arrow's row format.
#[derive(Debug)]
pub struct RowKeys {
    converter: RowConverter,
    rows: Rows,
    table: HashTable<u32>,
    hashes: Vec<u64>,
    types: Vec<DataType>,
    hasher: Hasher,
}

impl RowKeys {
    fn intern(&mut self, cols: &[ArrayRef], out: &mut Vec<u32>) -> Result<()> {
        let cols = cols.iter().map(|c| cast_array(c, value_type(c.data_type()))).collect::<Result<Vec<_>>>()?;
        let batch_rows = self.converter.convert_columns(&cols)?;
        out.reserve(batch_rows.num_rows());
        for r in batch_rows.iter() {
            let bytes = r.as_ref();
            let h = self.hasher.hash_one(bytes);
            let rows = &self.rows;
            if let Some(g) = self.table.find(h, |g| rows.row(*g as usize).as_ref() == bytes) {
                out.push(*g);
                continue;
            }
            let g = self.hashes.len() as u32;
            self.rows.push(r);
            self.hashes.push(h);
            let hashes = &self.hashes;
            self.table.insert_unique(h, g, |g| hashes[*g as usize]);
            out.push(g);
        }
        Ok(())
    }

    fn arrays(&self) -> Result<Vec<ArrayRef>> {
        let cols = self.converter.convert_rows(self.rows.iter())?;
        cols.iter().zip(&self.types).map(|(c, t)| cast_array(c, t)).collect()
    }
}
