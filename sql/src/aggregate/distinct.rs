//! `count(DISTINCT ...)`, `uniq`, `uniq_exact`: exact per-group hash sets. Integer-like values
//! are kept as their 64-bit pattern; strings and several arguments as bytes (Arrow row format).
//! `uniq` is exact here (ClickHouse's is approximate above 65536 values per group).

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use arrow::datatypes::{DataType, UInt64Type};
use arrow::row::{RowConverter, SortField};
use hashbrown::HashSet;

use super::{Accumulator, downcast, grow};
use crate::error::Result;
use crate::exec::u64_table::U64Table;
use crate::expr::BExpr;
use crate::functions::value_type;

/// A deterministic fast hasher.
pub type Hasher = ahash::RandomState;

/// The hasher used by every hash table of the executor.
pub fn hasher() -> Hasher {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

#[derive(Debug, Clone)]
enum Sets {
    Words(Vec<U64Table>),
    Bytes(Vec<HashSet<Box<[u8]>, Hasher>>),
}

/// Exact distinct count per group.
#[derive(Debug)]
pub struct DistinctAcc {
    words: bool,
    sets: Sets,
    converter: Option<RowConverter>,
    bytes: usize,
}

fn is_word(t: &DataType) -> bool {
    let t = value_type(t);
    t.is_integer() || t.is_floating() || matches!(t, DataType::Date32 | DataType::Timestamp(..) | DataType::Boolean)
}

impl Clone for DistinctAcc {
    /// The row converter is rebuilt on the next update (it encodes the same bytes).
    fn clone(&self) -> Self {
        DistinctAcc { words: self.words, sets: self.sets.clone(), converter: None, bytes: self.bytes }
    }
}

impl DistinctAcc {
    /// A state for these arguments.
    pub fn new(args: &[BExpr]) -> Self {
        let words = args.len() == 1 && is_word(&args[0].data_type());
        DistinctAcc {
            words,
            sets: if words { Sets::Words(vec![]) } else { Sets::Bytes(vec![]) },
            converter: None,
            bytes: 0,
        }
    }

    fn word_values(a: &ArrayRef) -> Result<UInt64Array> {
        let a = crate::functions::cast::cast_array(a, value_type(a.data_type()))?;
        Ok(match a.data_type() {
            DataType::UInt64 => a.as_primitive::<UInt64Type>().clone(),
            DataType::Float32 | DataType::Float64 => {
                let f = crate::functions::cast::as_f64(&a)?;
                f.iter().map(|v| v.map(|v| (v + 0.0).to_bits())).collect()
            }
            DataType::Timestamp(..) => {
                let t = crate::functions::cast::timestamp_ticks(&a)?;
                t.iter().map(|v| v.map(|v| v as u64)).collect()
            }
            DataType::Date32 | DataType::Boolean => {
                let i = arrow::compute::cast(&a, &DataType::Int64)?;
                arrow::compute::cast(&i, &DataType::UInt64).map(|u| u.as_primitive::<UInt64Type>().clone()).or_else(
                    |_| {
                        Ok::<_, arrow::error::ArrowError>(
                            i.as_primitive::<arrow::datatypes::Int64Type>()
                                .iter()
                                .map(|v| v.map(|v| v as u64))
                                .collect(),
                        )
                    },
                )?
            }
            _ => {
                let i = arrow::compute::cast(&a, &DataType::Int64)?;
                i.as_primitive::<arrow::datatypes::Int64Type>().iter().map(|v| v.map(|v| v as u64)).collect()
            }
        })
    }
}

impl Accumulator for DistinctAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        match &mut self.sets {
            Sets::Words(sets) => {
                if sets.len() < num_groups {
                    sets.resize_with(num_groups, || U64Table::with_capacity(4));
                }
                let v = Self::word_values(&args[0])?;
                let vals = v.values();
                match v.nulls().filter(|n| n.null_count() > 0) {
                    None if num_groups == 1 => {
                        let s = &mut sets[0];
                        vals.iter().for_each(|x| {
                            s.get_or_insert(*x, || 0);
                        });
                    }
                    None => groups.iter().zip(vals.iter()).for_each(|(g, x)| {
                        sets[*g as usize].get_or_insert(*x, || 0);
                    }),
                    Some(n) => {
                        for (i, (g, x)) in groups.iter().zip(vals.iter()).enumerate() {
                            if n.is_valid(i) {
                                sets[*g as usize].get_or_insert(*x, || 0);
                            }
                        }
                    }
                }
            }
            Sets::Bytes(sets) => {
                if sets.len() < num_groups {
                    sets.resize_with(num_groups, || HashSet::with_hasher(hasher()));
                }
                let cols = args
                    .iter()
                    .map(|a| crate::functions::cast::cast_array(a, value_type(a.data_type())))
                    .collect::<Result<Vec<_>>>()?;
                // NULL in any argument: the row is not counted.
                let valid: Vec<bool> = (0..groups.len()).map(|i| cols.iter().all(|c| c.is_valid(i))).collect();
                if cols.len() == 1 && cols[0].data_type() == &DataType::Utf8 {
                    let s = cols[0].as_string::<i32>();
                    for (i, g) in groups.iter().enumerate() {
                        if valid[i] {
                            let set = &mut sets[*g as usize];
                            let v = s.value(i).as_bytes();
                            if !set.contains(v) {
                                self.bytes += v.len() + 24;
                                set.insert(v.into());
                            }
                        }
                    }
                } else {
                    if self.converter.is_none() {
                        let fields = cols.iter().map(|c| SortField::new(c.data_type().clone())).collect();
                        self.converter = Some(RowConverter::new(fields)?);
                    }
                    let Some(conv) = self.converter.as_ref() else { return Ok(()) };
                    let rows = conv.convert_columns(&cols)?;
                    for (i, g) in groups.iter().enumerate() {
                        if valid[i] {
                            let set = &mut sets[*g as usize];
                            let v = rows.row(i);
                            let b = v.as_ref();
                            if !set.contains(b) {
                                self.bytes += b.len() + 24;
                                set.insert(b.into());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<DistinctAcc>(other)?;
        self.bytes += other.bytes;
        match (&mut self.sets, other.sets) {
            (Sets::Words(a), Sets::Words(b)) => {
                if a.len() < num_groups {
                    a.resize_with(num_groups, || U64Table::with_capacity(4));
                }
                for (g, mut s) in b.into_iter().enumerate() {
                    let t = &mut a[map[g] as usize];
                    if t.len() < s.len() {
                        std::mem::swap(t, &mut s);
                    }
                    for (k, _) in s.iter() {
                        t.get_or_insert(k, || 0);
                    }
                }
            }
            (Sets::Bytes(a), Sets::Bytes(b)) => {
                if a.len() < num_groups {
                    a.resize_with(num_groups, || HashSet::with_hasher(hasher()));
                }
                for (g, s) in b.into_iter().enumerate() {
                    a[map[g] as usize].extend(s);
                }
            }
            _ => return Err(crate::error::Error::Internal { message: "distinct state kinds differ".into() }),
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        let mut counts: Vec<u64> = match &self.sets {
            Sets::Words(s) => s.iter().map(|s| s.len() as u64).collect(),
            Sets::Bytes(s) => s.iter().map(|s| s.len() as u64).collect(),
        };
        grow(&mut counts, num_groups, 0);
        let _ = self.words;
        Ok(vec![Arc::new(UInt64Array::from(counts))])
    }

    fn size(&self) -> usize {
        match &self.sets {
            Sets::Words(s) => s.iter().map(U64Table::size).sum::<usize>() + s.len() * 48,
            Sets::Bytes(s) => self.bytes + s.iter().map(|s| s.capacity() * 17).sum::<usize>(),
        }
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let list: ArrayRef = match &self.sets {
            Sets::Words(sets) => {
                let mut b = arrow::array::ListBuilder::new(arrow::array::UInt64Builder::new());
                for g in 0..num_groups {
                    if let Some(t) = sets.get(g) {
                        t.iter().for_each(|(k, _)| b.values().append_value(k));
                    }
                    b.append(true);
                }
                Arc::new(b.finish())
            }
            Sets::Bytes(sets) => {
                let mut b = arrow::array::ListBuilder::new(arrow::array::BinaryBuilder::new());
                for g in 0..num_groups {
                    if let Some(t) = sets.get(g) {
                        t.iter().for_each(|k| b.values().append_value(k));
                    }
                    b.append(true);
                }
                Arc::new(b.finish())
            }
        };
        Some(vec![list])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let bad = || crate::error::Error::Internal { message: "saved distinct state is not a list".into() };
        let l = super::saved_list(state, 0)?;
        match &mut self.sets {
            Sets::Words(sets) => {
                *sets = (0..l.len())
                    .map(|g| {
                        let v = l.value(g);
                        let v = v.as_primitive_opt::<UInt64Type>().ok_or_else(bad)?;
                        let mut t = U64Table::with_capacity(v.len().max(4));
                        v.values().iter().for_each(|k| {
                            t.get_or_insert(*k, || 0);
                        });
                        Ok(t)
                    })
                    .collect::<Result<_>>()?;
            }
            Sets::Bytes(sets) => {
                self.bytes = 0;
                *sets = (0..l.len())
                    .map(|g| {
                        let v = l.value(g);
                        let v = v.as_binary_opt::<i32>().ok_or_else(bad)?;
                        let mut t = HashSet::with_hasher(hasher());
                        for k in v.iter().flatten() {
                            self.bytes += k.len();
                            t.insert(Box::from(k));
                        }
                        Ok(t)
                    })
                    .collect::<Result<_>>()?;
            }
        }
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}
