//! count, sum, avg, variance, and min/max of primitive and string values. These are the hot
//! accumulators: tight loops over native slices, no per-row allocation or dispatch.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, Float64Array, PrimitiveArray, StringArray, UInt64Array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::*;

use super::{Accumulator, downcast, grow, saved, saved_bools};
use crate::error::{Error, Result};

/// The saved state of a per-group value plus a "seen" flag (sum, min, max): the values as
/// an array of `ty`, the flags as booleans, `num_groups` rows each.
fn save_values_seen<T: ArrowPrimitiveType>(
    vals: &[T::Native],
    seen: &[bool],
    num_groups: usize,
    ty: &DataType,
) -> Vec<ArrayRef> {
    let (mut vals, mut seen) = (vals.to_vec(), seen.to_vec());
    grow(&mut vals, num_groups, T::Native::default());
    grow(&mut seen, num_groups, false);
    let vals = PrimitiveArray::<T>::new(vals.into(), None).with_data_type(ty.clone());
    vec![Arc::new(vals), Arc::new(arrow::array::BooleanArray::from(seen))]
}

/// Reads what [`save_values_seen`] wrote.
fn load_values_seen<T: ArrowPrimitiveType>(state: &[ArrayRef]) -> Result<(Vec<T::Native>, Vec<bool>)> {
    Ok((saved::<T>(state, 0)?.values().to_vec(), saved_bools(state, 1)?))
}

/// Few groups: spread updates over independent lanes so consecutive rows of one group do not
/// wait on each other's store.
const LANES: usize = 4;
/// Up to this many groups use lanes.
const LANE_GROUPS: usize = 64;

/// `count(*)` / `count(x)`.
#[derive(Debug, Clone)]
pub struct CountAcc {
    star: bool,
    counts: Vec<u64>,
}

impl CountAcc {
    /// `star`: count rows, else non-NULL values of the argument.
    pub fn new(star: bool) -> Self {
        CountAcc { star, counts: Vec::new() }
    }
}

impl Accumulator for CountAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.counts, num_groups, 0);
        let nulls = if self.star { None } else { args.first().and_then(|a| a.logical_nulls()) };
        match nulls {
            Some(n) if n.null_count() > 0 => {
                for (i, g) in groups.iter().enumerate() {
                    self.counts[*g as usize] += n.is_valid(i) as u64;
                }
            }
            _ if num_groups == 1 => self.counts[0] += groups.len() as u64,
            _ if num_groups <= LANE_GROUPS => {
                let mut lanes = [[0u64; LANE_GROUPS]; LANES];
                let chunks = groups.chunks_exact(LANES);
                let rest = chunks.remainder();
                for c in chunks {
                    for (l, g) in c.iter().enumerate() {
                        lanes[l][*g as usize] += 1;
                    }
                }
                rest.iter().for_each(|g| lanes[0][*g as usize] += 1);
                for lane in &lanes {
                    for (g, c) in lane.iter().take(num_groups).enumerate() {
                        self.counts[g] += c;
                    }
                }
            }
            _ => groups.iter().for_each(|g| self.counts[*g as usize] += 1),
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<CountAcc>(other)?;
        grow(&mut self.counts, num_groups, 0);
        for (g, c) in other.counts.iter().enumerate() {
            self.counts[map[g] as usize] += c;
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.counts, num_groups, 0);
        Ok(vec![Arc::new(UInt64Array::from(std::mem::take(&mut self.counts)))])
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut c = self.counts.clone();
        grow(&mut c, num_groups, 0);
        Some(vec![Arc::new(UInt64Array::from(c))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.counts = saved::<UInt64Type>(state, 0)?.values().to_vec();
        Ok(())
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// Sum of a primitive type (wrapping on integer overflow, as ClickHouse).
#[derive(Debug)]
pub struct SumAcc<T: ArrowPrimitiveType> {
    sums: Vec<T::Native>,
    seen: Vec<bool>,
    nullable: bool,
    ty: DataType,
}

impl<T: ArrowPrimitiveType> Clone for SumAcc<T> {
    fn clone(&self) -> Self {
        SumAcc { sums: self.sums.clone(), seen: self.seen.clone(), nullable: self.nullable, ty: self.ty.clone() }
    }
}

/// A sum accumulator for result type `ty`.
pub fn sum(ty: &DataType, nullable: bool) -> Result<Box<dyn Accumulator>> {
    Ok(match ty {
        DataType::Int64 => Box::new(SumAcc::<Int64Type> { sums: vec![], seen: vec![], nullable, ty: ty.clone() }),
        DataType::UInt64 => Box::new(SumAcc::<UInt64Type> { sums: vec![], seen: vec![], nullable, ty: ty.clone() }),
        DataType::Float64 => Box::new(SumAcc::<Float64Type> { sums: vec![], seen: vec![], nullable, ty: ty.clone() }),
        DataType::Decimal128(..) => {
            Box::new(SumAcc::<Decimal128Type> { sums: vec![], seen: vec![], nullable, ty: ty.clone() })
        }
        t => return Err(Error::Internal { message: format!("no sum for {t}") }),
    })
}

impl<T: ArrowPrimitiveType> Accumulator for SumAcc<T> {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.sums, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        let a = crate::functions::cast::cast_array(&args[0], &self.ty)?;
        let a = a.as_primitive::<T>();
        let vals = a.values();
        match a.nulls().filter(|n| n.null_count() > 0) {
            None if num_groups == 1 => {
                if let Some(s) = arrow::compute::sum(a) {
                    self.sums[0] = self.sums[0].add_wrapping(s);
                }
                self.seen[0] |= !vals.is_empty();
            }
            None if num_groups <= LANE_GROUPS => {
                let mut lanes = [[T::Native::default(); LANE_GROUPS]; LANES];
                let gc = groups.chunks_exact(LANES);
                let vc = vals.chunks_exact(LANES);
                let (gr, vr) = (gc.remainder(), vc.remainder());
                for (g, v) in gc.zip(vc) {
                    for l in 0..LANES {
                        let s = &mut lanes[l][g[l] as usize];
                        *s = s.add_wrapping(v[l]);
                    }
                }
                for (g, v) in gr.iter().zip(vr) {
                    let s = &mut lanes[0][*g as usize];
                    *s = s.add_wrapping(*v);
                }
                for lane in &lanes {
                    for (g, v) in lane.iter().take(num_groups).enumerate() {
                        self.sums[g] = self.sums[g].add_wrapping(*v);
                    }
                }
                if self.nullable {
                    groups.iter().for_each(|g| self.seen[*g as usize] = true);
                }
            }
            None => {
                for (g, v) in groups.iter().zip(vals.iter()) {
                    let s = &mut self.sums[*g as usize];
                    *s = s.add_wrapping(*v);
                }
                if self.nullable {
                    groups.iter().for_each(|g| self.seen[*g as usize] = true);
                }
            }
            Some(n) => {
                for (i, (g, v)) in groups.iter().zip(vals.iter()).enumerate() {
                    if n.is_valid(i) {
                        let s = &mut self.sums[*g as usize];
                        *s = s.add_wrapping(*v);
                        self.seen[*g as usize] = true;
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<SumAcc<T>>(other)?;
        grow(&mut self.sums, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        for (g, s) in other.sums.iter().enumerate() {
            let t = map[g] as usize;
            self.sums[t] = self.sums[t].add_wrapping(*s);
            self.seen[t] |= other.seen.get(g).copied().unwrap_or(false);
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.sums, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        let nulls = self.nullable.then(|| NullBuffer::from(std::mem::take(&mut self.seen)));
        let a = PrimitiveArray::<T>::new(std::mem::take(&mut self.sums).into(), nulls).with_data_type(self.ty.clone());
        Ok(vec![Arc::new(a)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        Some(save_values_seen::<T>(&self.sums, &self.seen, num_groups, &self.ty))
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        (self.sums, self.seen) = load_values_seen::<T>(state)?;
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// `avg(x)`: NaN for an empty non-nullable input (ClickHouse), NULL if nullable.
#[derive(Debug, Clone)]
pub struct AvgAcc {
    sums: Vec<f64>,
    counts: Vec<u64>,
    nullable: bool,
}

impl AvgAcc {
    /// A fresh state.
    pub fn new(nullable: bool) -> Self {
        AvgAcc { sums: vec![], counts: vec![], nullable }
    }
}

fn f64s(a: &ArrayRef) -> Result<Float64Array> {
    Ok(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().clone(),
        DataType::Boolean => crate::functions::cast::as_f64(&arrow::compute::cast(a, &DataType::UInt8)?)?,
        _ => crate::functions::cast::as_f64(a)?,
    })
}

impl Accumulator for AvgAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.sums, num_groups, 0.0);
        grow(&mut self.counts, num_groups, 0);
        let a = f64s(&args[0])?;
        let vals = a.values();
        match a.nulls().filter(|n| n.null_count() > 0) {
            None if num_groups == 1 => {
                self.sums[0] += arrow::compute::sum(&a).unwrap_or(0.0);
                self.counts[0] += vals.len() as u64;
            }
            None if num_groups <= LANE_GROUPS => {
                let mut sums = [[0f64; LANE_GROUPS]; LANES];
                let mut counts = [[0u64; LANE_GROUPS]; LANES];
                let gc = groups.chunks_exact(LANES);
                let vc = vals.chunks_exact(LANES);
                let (gr, vr) = (gc.remainder(), vc.remainder());
                for (g, v) in gc.zip(vc) {
                    for l in 0..LANES {
                        sums[l][g[l] as usize] += v[l];
                        counts[l][g[l] as usize] += 1;
                    }
                }
                for (g, v) in gr.iter().zip(vr) {
                    sums[0][*g as usize] += v;
                    counts[0][*g as usize] += 1;
                }
                for l in 0..LANES {
                    for g in 0..num_groups {
                        self.sums[g] += sums[l][g];
                        self.counts[g] += counts[l][g];
                    }
                }
            }
            None => {
                for (g, v) in groups.iter().zip(vals.iter()) {
                    self.sums[*g as usize] += v;
                    self.counts[*g as usize] += 1;
                }
            }
            Some(n) => {
                for (i, (g, v)) in groups.iter().zip(vals.iter()).enumerate() {
                    if n.is_valid(i) {
                        self.sums[*g as usize] += v;
                        self.counts[*g as usize] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<AvgAcc>(other)?;
        grow(&mut self.sums, num_groups, 0.0);
        grow(&mut self.counts, num_groups, 0);
        for (g, t) in map.iter().enumerate().take(other.sums.len()) {
            let t = *t as usize;
            self.sums[t] += other.sums[g];
            self.counts[t] += other.counts[g];
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.sums, num_groups, 0.0);
        grow(&mut self.counts, num_groups, 0);
        let out: Float64Array = self
            .sums
            .iter()
            .zip(&self.counts)
            .map(|(s, c)| if *c == 0 && self.nullable { None } else { Some(s / *c as f64) })
            .collect();
        Ok(vec![Arc::new(out)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 16
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let (mut sums, mut counts) = (self.sums.clone(), self.counts.clone());
        grow(&mut sums, num_groups, 0.0);
        grow(&mut counts, num_groups, 0);
        Some(vec![Arc::new(Float64Array::from(sums)), Arc::new(UInt64Array::from(counts))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.sums = saved::<Float64Type>(state, 0)?.values().to_vec();
        self.counts = saved::<UInt64Type>(state, 1)?.values().to_vec();
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// Variance / standard deviation (Welford's method per group, Chan's formula to merge).
#[derive(Debug, Clone)]
pub struct VarAcc {
    sample: bool,
    stddev: bool,
    state: Vec<(u64, f64, f64)>,
}

impl VarAcc {
    /// A fresh state.
    pub fn new(sample: bool, stddev: bool) -> Self {
        VarAcc { sample, stddev, state: vec![] }
    }
}

impl Accumulator for VarAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.state, num_groups, (0, 0.0, 0.0));
        let a = f64s(&args[0])?;
        for (i, g) in groups.iter().enumerate() {
            if a.is_valid(i) {
                let (n, mean, m2) = &mut self.state[*g as usize];
                let x = a.value(i);
                *n += 1;
                let d = x - *mean;
                *mean += d / *n as f64;
                *m2 += d * (x - *mean);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<VarAcc>(other)?;
        grow(&mut self.state, num_groups, (0, 0.0, 0.0));
        for (g, (n2, mean2, m22)) in other.state.iter().enumerate() {
            let (n1, mean1, m21) = &mut self.state[map[g] as usize];
            if *n2 == 0 {
                continue;
            }
            let n = *n1 + n2;
            let d = mean2 - *mean1;
            *m21 += m22 + d * d * (*n1 as f64) * (*n2 as f64) / n as f64;
            *mean1 += d * (*n2 as f64) / n as f64;
            *n1 = n;
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.state, num_groups, (0, 0.0, 0.0));
        let out: Float64Array = self
            .state
            .iter()
            .map(|(n, _, m2)| {
                let d = if self.sample { *n as f64 - 1.0 } else { *n as f64 };
                if d <= 0.0 {
                    return if *n == 0 { None } else { Some(f64::NAN) };
                }
                let v = m2 / d;
                Some(if self.stddev { v.sqrt() } else { v })
            })
            .collect();
        Ok(vec![Arc::new(out)])
    }

    fn size(&self) -> usize {
        self.state.capacity() * 24
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut st = self.state.clone();
        grow(&mut st, num_groups, (0, 0.0, 0.0));
        Some(vec![
            Arc::new(UInt64Array::from_iter_values(st.iter().map(|s| s.0))),
            Arc::new(Float64Array::from_iter_values(st.iter().map(|s| s.1))),
            Arc::new(Float64Array::from_iter_values(st.iter().map(|s| s.2))),
        ])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let (n, a, b) =
            (saved::<UInt64Type>(state, 0)?, saved::<Float64Type>(state, 1)?, saved::<Float64Type>(state, 2)?);
        self.state = (0..n.len()).map(|i| (n.value(i), a.value(i), b.value(i))).collect();
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// min/max of a primitive type.
#[derive(Debug)]
pub struct MinMaxAcc<T: ArrowPrimitiveType> {
    min: bool,
    vals: Vec<T::Native>,
    seen: Vec<bool>,
    nullable: bool,
    ty: DataType,
}

impl<T: ArrowPrimitiveType> Clone for MinMaxAcc<T> {
    fn clone(&self) -> Self {
        MinMaxAcc {
            min: self.min,
            vals: self.vals.clone(),
            seen: self.seen.clone(),
            nullable: self.nullable,
            ty: self.ty.clone(),
        }
    }
}

/// A min or max accumulator for argument type `ty`.
pub fn min_max(ty: &DataType, min: bool, nullable: bool) -> Result<Box<dyn Accumulator>> {
    macro_rules! prim {
        ($t:ty) => {
            Box::new(MinMaxAcc::<$t> { min, vals: vec![], seen: vec![], nullable, ty: ty.clone() })
        };
    }
    Ok(match ty {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Date32 => prim!(Date32Type),
        DataType::Decimal128(..) => prim!(Decimal128Type),
        DataType::Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondType),
        DataType::Utf8 => Box::new(StrMinMaxAcc { min, vals: vec![], nullable }),
        other => Box::new(super::generic::MinMaxGeneric::new(min, other.clone())),
    })
}

impl<T: ArrowPrimitiveType> MinMaxAcc<T> {
    #[inline]
    fn better(&self, new: T::Native, old: T::Native) -> bool {
        if self.min { new.is_lt(old) } else { new.is_gt(old) }
    }
}

impl<T: ArrowPrimitiveType> Accumulator for MinMaxAcc<T> {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.vals, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        let a = crate::functions::cast::cast_array(&args[0], &self.ty)?;
        let a = a.as_primitive::<T>();
        let nulls = a.nulls().cloned();
        for (i, (g, v)) in groups.iter().zip(a.values().iter()).enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let g = *g as usize;
            if !self.seen[g] || self.better(*v, self.vals[g]) {
                self.vals[g] = *v;
                self.seen[g] = true;
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<MinMaxAcc<T>>(other)?;
        grow(&mut self.vals, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        for (g, v) in other.vals.iter().enumerate() {
            if !other.seen[g] {
                continue;
            }
            let t = map[g] as usize;
            if !self.seen[t] || self.better(*v, self.vals[t]) {
                self.vals[t] = *v;
                self.seen[t] = true;
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.vals, num_groups, T::Native::default());
        grow(&mut self.seen, num_groups, false);
        let nulls = self.nullable.then(|| NullBuffer::from(std::mem::take(&mut self.seen)));
        Ok(vec![Arc::new(
            PrimitiveArray::<T>::new(std::mem::take(&mut self.vals).into(), nulls).with_data_type(self.ty.clone()),
        )])
    }

    fn size(&self) -> usize {
        self.vals.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        Some(save_values_seen::<T>(&self.vals, &self.seen, num_groups, &self.ty))
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        (self.vals, self.seen) = load_values_seen::<T>(state)?;
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// min/max of strings.
#[derive(Debug, Clone)]
pub struct StrMinMaxAcc {
    min: bool,
    vals: Vec<Option<String>>,
    nullable: bool,
}

impl StrMinMaxAcc {
    fn offer(&mut self, g: usize, s: &str) {
        let slot = &mut self.vals[g];
        let better = match slot {
            None => true,
            Some(old) => {
                if self.min {
                    s < old.as_str()
                } else {
                    s > old.as_str()
                }
            }
        };
        if better {
            *slot = Some(s.to_string());
        }
    }
}

impl Accumulator for StrMinMaxAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.vals, num_groups, None);
        let a = crate::functions::cast::cast_array(&args[0], &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        for (i, g) in groups.iter().enumerate() {
            if a.is_valid(i) {
                self.offer(*g as usize, a.value(i));
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let mut other = downcast::<StrMinMaxAcc>(other)?;
        grow(&mut self.vals, num_groups, None);
        for (g, v) in other.vals.iter_mut().enumerate() {
            if let Some(s) = v.take() {
                self.offer(map[g] as usize, &s);
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.vals, num_groups, None);
        let nullable = self.nullable;
        let out: StringArray =
            self.vals.iter().map(|v| if nullable { v.as_deref() } else { Some(v.as_deref().unwrap_or("")) }).collect();
        Ok(vec![Arc::new(out)])
    }

    fn size(&self) -> usize {
        self.vals.iter().map(|v| v.as_ref().map_or(0, |s| s.capacity()) + 24).sum()
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut v = self.vals.clone();
        grow(&mut v, num_groups, None);
        Some(vec![Arc::new(StringArray::from(v))])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let a = state
            .first()
            .and_then(|a| a.as_string_opt::<i32>())
            .ok_or_else(|| Error::Internal { message: "saved string min/max is not a string column".into() })?;
        self.vals = a.iter().map(|v| v.map(str::to_string)).collect();
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}
