//! Accumulators that can also take rows back ([`Accumulator::retract`]): count, sum, avg, min
//! and max over a changing input (a streaming aggregation over a `versioned_kv` stream, where
//! a new version of a key retracts the old row, or over a changelog with `_tp_delta = -1`).
//! min/max keep a multiset of the values per group (in Arrow's order-preserving row encoding),
//! so the extreme is known again after the current one is retracted.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use super::{Accumulator, AggCall, AggKind, grow};
use crate::error::{Error, Result};
use crate::functions::value_type;

/// A retractable accumulator for `call`, or NotImplemented for aggregates that cannot take
/// rows back.
pub fn create(call: &AggCall) -> Result<Box<dyn Accumulator>> {
    let arg_type = call.args.first().map(|a| value_type(&a.data_type()).clone()).unwrap_or(DataType::Null);
    Ok(match &call.kind {
        AggKind::CountStar => Box::new(Count { star: true, counts: vec![] }),
        AggKind::Count => Box::new(Count { star: false, counts: vec![] }),
        AggKind::Sum => {
            Box::new(Sum { ty: call.ty.clone(), float: call.ty.is_floating(), ints: vec![], floats: vec![], n: vec![] })
        }
        AggKind::Avg => Box::new(Avg { sums: vec![], counts: vec![] }),
        AggKind::Min | AggKind::Max => Box::new(MinMax {
            min: call.kind == AggKind::Min,
            conv: Arc::new(RowConverter::new(vec![SortField::new(arg_type.clone())])?),
            ty: arg_type,
            sets: vec![],
        }),
        _ => {
            return Err(Error::NotImplemented {
                feature: format!(
                    "{} over rows that change (versioned_kv/changelog input); count, sum, avg, min and max are supported",
                    call.name
                ),
                location: None,
            });
        }
    })
}

#[derive(Debug, Clone)]
struct Count {
    star: bool,
    counts: Vec<i64>,
}

impl Count {
    fn add(&mut self, args: &[ArrayRef], groups: &[u32], n: usize, s: i64) {
        grow(&mut self.counts, n, 0);
        let nulls = if self.star { None } else { args.first().and_then(|a| a.logical_nulls()) };
        for (i, g) in groups.iter().enumerate() {
            if nulls.as_ref().is_none_or(|nb| nb.is_valid(i)) {
                self.counts[*g as usize] += s;
            }
        }
    }
}

impl Accumulator for Count {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, 1);
        Ok(())
    }
    fn retract(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, -1);
        Ok(())
    }
    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], n: usize) -> Result<()> {
        let o = super::downcast::<Count>(other)?;
        grow(&mut self.counts, n, 0);
        for (g, c) in o.counts.iter().enumerate() {
            self.counts[map[g] as usize] += c;
        }
        Ok(())
    }
    fn finish(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.counts, n, 0);
        let a = arrow::array::UInt64Array::from_iter_values(self.counts.iter().map(|c| (*c).max(0) as u64));
        Ok(vec![Arc::new(a)])
    }
    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }

    fn save(&self, n: usize) -> Option<Vec<ArrayRef>> {
        let mut c = self.counts.clone();
        grow(&mut c, n, 0);
        Some(vec![Arc::new(Int64Array::from(c))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.counts = super::saved::<arrow::datatypes::Int64Type>(state, 0)?.values().to_vec();
        Ok(())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Clone)]
struct Sum {
    ty: DataType,
    float: bool,
    ints: Vec<i128>,
    floats: Vec<f64>,
    /// Non-NULL values per group (NULL sum when none).
    n: Vec<i64>,
}

impl Sum {
    fn add(&mut self, args: &[ArrayRef], groups: &[u32], n: usize, s: i64) -> Result<()> {
        grow(&mut self.n, n, 0);
        if self.float {
            grow(&mut self.floats, n, 0.0);
            let a = crate::functions::cast::as_f64(&args[0])?;
            for (i, g) in groups.iter().enumerate() {
                if a.is_valid(i) {
                    self.floats[*g as usize] += s as f64 * a.value(i);
                    self.n[*g as usize] += s;
                }
            }
        } else {
            grow(&mut self.ints, n, 0);
            let a = arrow::compute::cast(&args[0], &DataType::Decimal128(38, 0))
                .or_else(|_| arrow::compute::cast(&args[0], &DataType::Int64))?;
            let vals: Vec<Option<i128>> = match a.data_type() {
                DataType::Decimal128(..) => {
                    let d = a.as_any().downcast_ref::<arrow::array::Decimal128Array>().expect("decimal");
                    d.iter().collect()
                }
                _ => {
                    let d = a.as_any().downcast_ref::<Int64Array>().expect("int64");
                    d.iter().map(|v| v.map(i128::from)).collect()
                }
            };
            for (i, g) in groups.iter().enumerate() {
                if let Some(v) = vals[i] {
                    self.ints[*g as usize] += s as i128 * v;
                    self.n[*g as usize] += s;
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for Sum {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, 1)
    }
    fn retract(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, -1)
    }
    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], n: usize) -> Result<()> {
        let o = super::downcast::<Sum>(other)?;
        grow(&mut self.n, n, 0);
        grow(&mut self.ints, n, 0);
        grow(&mut self.floats, n, 0.0);
        for (g, t) in map.iter().enumerate().take(o.n.len()) {
            let t = *t as usize;
            self.n[t] += o.n[g];
            self.ints[t] += o.ints.get(g).copied().unwrap_or(0);
            self.floats[t] += o.floats.get(g).copied().unwrap_or(0.0);
        }
        Ok(())
    }
    fn finish(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.n, n, 0);
        grow(&mut self.ints, n, 0);
        grow(&mut self.floats, n, 0.0);
        let a: ArrayRef = if self.float {
            Arc::new(Float64Array::from_iter((0..n).map(|g| (self.n[g] > 0).then_some(self.floats[g]))))
        } else {
            Arc::new(
                arrow::array::Decimal128Array::from_iter((0..n).map(|g| (self.n[g] > 0).then_some(self.ints[g])))
                    .with_precision_and_scale(38, 0)?,
            )
        };
        Ok(vec![arrow::compute::cast(&a, &self.ty)?])
    }
    fn size(&self) -> usize {
        self.ints.capacity() * 16 + self.floats.capacity() * 8 + self.n.capacity() * 8
    }

    fn save(&self, n: usize) -> Option<Vec<ArrayRef>> {
        let (mut i, mut f, mut c) = (self.ints.clone(), self.floats.clone(), self.n.clone());
        grow(&mut i, n, 0);
        grow(&mut f, n, 0.0);
        grow(&mut c, n, 0);
        let i = arrow::array::Decimal128Array::from(i).with_precision_and_scale(38, 0).ok()?;
        Some(vec![Arc::new(i), Arc::new(Float64Array::from(f)), Arc::new(Int64Array::from(c))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let d = state
            .first()
            .and_then(|a| a.as_any().downcast_ref::<arrow::array::Decimal128Array>())
            .ok_or_else(|| Error::Internal { message: "saved sum state".into() })?;
        self.ints = d.values().to_vec();
        self.floats = crate::functions::cast::as_f64(
            state.get(1).ok_or_else(|| Error::Internal { message: "saved sum state".into() })?,
        )?
        .values()
        .to_vec();
        self.n = super::saved::<arrow::datatypes::Int64Type>(state, 2)?.values().to_vec();
        Ok(())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Clone)]
struct Avg {
    sums: Vec<f64>,
    counts: Vec<i64>,
}

impl Avg {
    fn add(&mut self, args: &[ArrayRef], groups: &[u32], n: usize, s: i64) -> Result<()> {
        grow(&mut self.sums, n, 0.0);
        grow(&mut self.counts, n, 0);
        let a = crate::functions::cast::as_f64(&args[0])?;
        for (i, g) in groups.iter().enumerate() {
            if a.is_valid(i) {
                self.sums[*g as usize] += s as f64 * a.value(i);
                self.counts[*g as usize] += s;
            }
        }
        Ok(())
    }
}

impl Accumulator for Avg {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, 1)
    }
    fn retract(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, -1)
    }
    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], n: usize) -> Result<()> {
        let o = super::downcast::<Avg>(other)?;
        grow(&mut self.sums, n, 0.0);
        grow(&mut self.counts, n, 0);
        for (g, t) in map.iter().enumerate().take(o.sums.len()) {
            let t = *t as usize;
            self.sums[t] += o.sums[g];
            self.counts[t] += o.counts[g];
        }
        Ok(())
    }
    fn finish(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.sums, n, 0.0);
        grow(&mut self.counts, n, 0);
        let a =
            Float64Array::from_iter((0..n).map(|g| (self.counts[g] > 0).then(|| self.sums[g] / self.counts[g] as f64)));
        Ok(vec![Arc::new(a)])
    }
    fn size(&self) -> usize {
        self.sums.capacity() * 16
    }

    fn save(&self, n: usize) -> Option<Vec<ArrayRef>> {
        let (mut s, mut c) = (self.sums.clone(), self.counts.clone());
        grow(&mut s, n, 0.0);
        grow(&mut c, n, 0);
        Some(vec![Arc::new(Float64Array::from(s)), Arc::new(Int64Array::from(c))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.sums = crate::functions::cast::as_f64(
            state.first().ok_or_else(|| Error::Internal { message: "saved avg state".into() })?,
        )?
        .values()
        .to_vec();
        self.counts = super::saved::<arrow::datatypes::Int64Type>(state, 1)?.values().to_vec();
        Ok(())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Clone)]
struct MinMax {
    min: bool,
    conv: Arc<RowConverter>,
    ty: DataType,
    /// Per group: value (row encoding) -> how many times it is present.
    sets: Vec<BTreeMap<Box<[u8]>, u64>>,
}

impl MinMax {
    fn add(&mut self, args: &[ArrayRef], groups: &[u32], n: usize, retract: bool) -> Result<()> {
        grow(&mut self.sets, n, BTreeMap::new());
        let a = crate::functions::cast::cast_array(&args[0], value_type(args[0].data_type()))?;
        let rows = self.conv.convert_columns(std::slice::from_ref(&a))?;
        for (i, g) in groups.iter().enumerate() {
            if a.is_null(i) {
                continue;
            }
            let set = &mut self.sets[*g as usize];
            let key: Box<[u8]> = rows.row(i).as_ref().into();
            if retract {
                if let Some(c) = set.get_mut(&key) {
                    *c -= 1;
                    if *c == 0 {
                        set.remove(&key);
                    }
                }
            } else {
                *set.entry(key).or_insert(0) += 1;
            }
        }
        Ok(())
    }
}

impl Accumulator for MinMax {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, false)
    }
    fn retract(&mut self, args: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        self.add(args, groups, n, true)
    }
    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], n: usize) -> Result<()> {
        let o = super::downcast::<MinMax>(other)?;
        grow(&mut self.sets, n, BTreeMap::new());
        for (g, set) in o.sets.into_iter().enumerate() {
            let t = &mut self.sets[map[g] as usize];
            for (k, c) in set {
                *t.entry(k).or_insert(0) += c;
            }
        }
        Ok(())
    }
    fn finish(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.sets, n, BTreeMap::new());
        let parser = self.conv.parser();
        let mut rows = self.conv.empty_rows(n, 64);
        let mut valid = Vec::with_capacity(n);
        // Groups without a value get a placeholder row and a NULL.
        let placeholder: Option<Box<[u8]>> = self.sets.iter().find_map(|s| s.keys().next().cloned());
        for s in &self.sets {
            let pick = if self.min { s.keys().next() } else { s.keys().next_back() };
            valid.push(pick.is_some());
            if let Some(k) = pick.or(placeholder.as_ref()) {
                rows.push(parser.parse(k));
            }
        }
        if placeholder.is_none() {
            // No group has any value: all NULL.
            return Ok(vec![arrow::array::new_null_array(&self.ty, n)]);
        }
        let vals = self.conv.convert_rows(&rows)?.remove(0);
        let mask = arrow::array::BooleanArray::from(valid);
        let nulls = arrow::compute::nullif(&vals, &arrow::compute::not(&mask)?)?;
        Ok(vec![nulls])
    }
    fn size(&self) -> usize {
        self.sets.iter().map(|s| s.len() * 48).sum()
    }

    fn save(&self, n: usize) -> Option<Vec<ArrayRef>> {
        let mut keys = arrow::array::ListBuilder::new(arrow::array::BinaryBuilder::new());
        let mut counts = arrow::array::ListBuilder::new(arrow::array::UInt64Builder::new());
        for g in 0..n {
            if let Some(set) = self.sets.get(g) {
                for (k, c) in set {
                    keys.values().append_value(k);
                    counts.values().append_value(*c);
                }
            }
            keys.append(true);
            counts.append(true);
        }
        Some(vec![Arc::new(keys.finish()), Arc::new(counts.finish())])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        use arrow::array::AsArray;
        let bad = || Error::Internal { message: "saved min/max multiset".into() };
        let (keys, counts) = (super::saved_list(state, 0)?, super::saved_list(state, 1)?);
        self.sets = (0..keys.len())
            .map(|g| {
                let k = keys.value(g);
                let c = counts.value(g);
                let (k, c) = (
                    k.as_binary_opt::<i32>().ok_or_else(bad)?,
                    c.as_primitive_opt::<arrow::datatypes::UInt64Type>().ok_or_else(bad)?,
                );
                Ok((0..k.len()).map(|i| (Box::from(k.value(i)), c.value(i))).collect())
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}
