//! Accumulators that keep [`ScalarValue`]s: any/any_last, arg_min/arg_max, group_array and
//! min/max of types without a specialised accumulator. They are simple rather than fast.

use std::any::Any;
use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, new_null_array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};

use super::{Accumulator, downcast, grow};
use crate::catalog::compare_scalars;
use crate::error::Result;
use crate::scalar::ScalarValue;

fn to_array(vals: &[Option<ScalarValue>], ty: &DataType) -> Result<ArrayRef> {
    if vals.is_empty() {
        return Ok(new_null_array(ty, 0));
    }
    let parts = vals
        .iter()
        .map(|v| match v {
            Some(v) => v.to_array_of(ty),
            None => Ok(new_null_array(ty, 1)),
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    Ok(arrow::compute::concat(&refs)?)
}

/// Column `i` of a saved state.
fn saved_column(state: &[ArrayRef], i: usize) -> Result<&ArrayRef> {
    state
        .get(i)
        .ok_or_else(|| crate::error::Error::Internal { message: format!("saved aggregate state: no column {i}") })
}

/// An array's values as scalars (NULL as `None`): the inverse of [`to_array`].
fn scalars(a: &ArrayRef) -> Result<Vec<Option<ScalarValue>>> {
    (0..a.len())
        .map(|i| if a.is_null(i) { Ok(None) } else { ScalarValue::try_from_array(a.as_ref(), i).map(Some) })
        .collect()
}

fn values(a: &ArrayRef) -> Result<ArrayRef> {
    crate::functions::cast::cast_array(a, crate::functions::value_type(a.data_type()))
}

/// `any(x)` / `any_last(x)`.
#[derive(Debug, Clone)]
pub struct AnyAcc {
    last: bool,
    ty: DataType,
    vals: Vec<Option<ScalarValue>>,
}

impl AnyAcc {
    /// A fresh state.
    pub fn new(last: bool, ty: DataType) -> Self {
        AnyAcc { last, ty, vals: vec![] }
    }
}

impl Accumulator for AnyAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.vals, num_groups, None);
        let a = values(&args[0])?;
        for (i, g) in groups.iter().enumerate() {
            let slot = &mut self.vals[*g as usize];
            if a.is_valid(i) && (self.last || slot.is_none()) {
                *slot = Some(ScalarValue::try_from_array(a.as_ref(), i)?);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<AnyAcc>(other)?;
        grow(&mut self.vals, num_groups, None);
        for (g, v) in other.vals.into_iter().enumerate() {
            let slot = &mut self.vals[map[g] as usize];
            if v.is_some() && (self.last || slot.is_none()) {
                *slot = v;
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.vals, num_groups, None);
        Ok(vec![to_array(&self.vals, &self.ty)?])
    }

    fn size(&self) -> usize {
        self.vals.capacity() * 48
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut v = self.vals.clone();
        grow(&mut v, num_groups, None);
        to_array(&v, &self.ty).ok().map(|a| vec![a])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.vals = scalars(saved_column(state, 0)?)?;
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// min/max of any comparable type.
#[derive(Debug, Clone)]
pub struct MinMaxGeneric {
    min: bool,
    ty: DataType,
    vals: Vec<Option<ScalarValue>>,
}

impl MinMaxGeneric {
    /// A fresh state.
    pub fn new(min: bool, ty: DataType) -> Self {
        MinMaxGeneric { min, ty, vals: vec![] }
    }

    fn offer(&mut self, g: usize, v: ScalarValue) {
        let want = if self.min { Ordering::Less } else { Ordering::Greater };
        let slot = &mut self.vals[g];
        if slot.as_ref().is_none_or(|old| compare_scalars(&v, old) == Some(want)) {
            *slot = Some(v);
        }
    }
}

impl Accumulator for MinMaxGeneric {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.vals, num_groups, None);
        let a = values(&args[0])?;
        for (i, g) in groups.iter().enumerate() {
            if a.is_valid(i) {
                let v = ScalarValue::try_from_array(a.as_ref(), i)?;
                self.offer(*g as usize, v);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<MinMaxGeneric>(other)?;
        grow(&mut self.vals, num_groups, None);
        for (g, v) in other.vals.into_iter().enumerate() {
            if let Some(v) = v {
                self.offer(map[g] as usize, v);
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.vals, num_groups, None);
        Ok(vec![to_array(&self.vals, &self.ty)?])
    }

    fn size(&self) -> usize {
        self.vals.capacity() * 48
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut v = self.vals.clone();
        grow(&mut v, num_groups, None);
        to_array(&v, &self.ty).ok().map(|a| vec![a])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        self.vals = scalars(saved_column(state, 0)?)?;
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}

/// `arg_min(arg, val)` / `arg_max(arg, val)`.
#[derive(Debug, Clone)]
pub struct ArgAcc {
    min: bool,
    ty: DataType,
    best: Vec<Option<(ScalarValue, ScalarValue)>>,
}

impl ArgAcc {
    /// A fresh state; `ty` is the type of `arg`.
    pub fn new(min: bool, ty: DataType) -> Self {
        ArgAcc { min, ty, best: vec![] }
    }

    fn offer(&mut self, g: usize, arg: ScalarValue, val: ScalarValue) {
        let want = if self.min { Ordering::Less } else { Ordering::Greater };
        let slot = &mut self.best[g];
        if slot.as_ref().is_none_or(|(_, old)| compare_scalars(&val, old) == Some(want)) {
            *slot = Some((arg, val));
        }
    }
}

impl Accumulator for ArgAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        grow(&mut self.best, num_groups, None);
        let a = values(&args[0])?;
        let v = values(&args[1])?;
        for (i, g) in groups.iter().enumerate() {
            if v.is_valid(i) {
                let val = ScalarValue::try_from_array(v.as_ref(), i)?;
                let arg = ScalarValue::try_from_array(a.as_ref(), i)?;
                self.offer(*g as usize, arg, val);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<ArgAcc>(other)?;
        grow(&mut self.best, num_groups, None);
        for (g, b) in other.best.into_iter().enumerate() {
            if let Some((a, v)) = b {
                self.offer(map[g] as usize, a, v);
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        grow(&mut self.best, num_groups, None);
        let vals: Vec<Option<ScalarValue>> = self.best.iter().map(|b| b.as_ref().map(|(a, _)| a.clone())).collect();
        Ok(vec![to_array(&vals, &self.ty)?])
    }

    fn size(&self) -> usize {
        self.best.capacity() * 96
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut best = self.best.clone();
        grow(&mut best, num_groups, None);
        let args: Vec<Option<ScalarValue>> = best.iter().map(|b| b.as_ref().map(|(a, _)| a.clone())).collect();
        let vals: Vec<Option<ScalarValue>> = best.iter().map(|b| b.as_ref().map(|(_, v)| v.clone())).collect();
        let val_ty = vals.iter().flatten().next().map_or(DataType::Null, ScalarValue::data_type);
        Some(vec![to_array(&args, &self.ty).ok()?, to_array(&vals, &val_ty).ok()?])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let (args, vals) = (saved_column(state, 0)?, scalars(saved_column(state, 1)?)?);
        // A group is present when it has a value (its arg may be NULL).
        self.best = vals
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| Ok((ScalarValue::try_from_array(args.as_ref(), i)?, v))).transpose())
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

/// `group_array([max])(x)` / `group_uniq_array(x)`.
#[derive(Debug, Clone)]
pub struct GroupArrayAcc {
    max: Option<usize>,
    distinct: bool,
    ty: DataType,
    lists: Vec<Vec<ScalarValue>>,
    items: usize,
}

impl GroupArrayAcc {
    /// A fresh state.
    pub fn new(max: Option<usize>, distinct: bool, ty: DataType) -> Self {
        GroupArrayAcc { max, distinct, ty, lists: vec![], items: 0 }
    }

    fn push(&mut self, g: usize, v: ScalarValue) {
        let l = &mut self.lists[g];
        if self.max.is_some_and(|m| l.len() >= m) || (self.distinct && l.contains(&v)) {
            return;
        }
        l.push(v);
        self.items += 1;
    }
}

impl Accumulator for GroupArrayAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        if self.lists.len() < num_groups {
            self.lists.resize_with(num_groups, Vec::new);
        }
        let a = values(&args[0])?;
        for (i, g) in groups.iter().enumerate() {
            // ClickHouse's groupArray skips NULLs.
            if a.is_valid(i) {
                let v = ScalarValue::try_from_array(a.as_ref(), i)?;
                self.push(*g as usize, v);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<GroupArrayAcc>(other)?;
        if self.lists.len() < num_groups {
            self.lists.resize_with(num_groups, Vec::new);
        }
        for (g, l) in other.lists.into_iter().enumerate() {
            for v in l {
                self.push(map[g] as usize, v);
            }
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        if self.lists.len() < num_groups {
            self.lists.resize_with(num_groups, Vec::new);
        }
        let flat: Vec<Option<ScalarValue>> = self.lists.iter().flat_map(|l| l.iter().cloned().map(Some)).collect();
        let values = to_array(&flat, &self.ty)?;
        let offsets = OffsetBuffer::from_lengths(self.lists.iter().map(Vec::len));
        let field = Arc::new(Field::new("item", self.ty.clone(), true));
        Ok(vec![Arc::new(ListArray::try_new(field, offsets, values, None)?)])
    }

    fn size(&self) -> usize {
        self.items * 48 + self.lists.capacity() * 24
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        self.clone().finish(num_groups).ok()
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let l = super::saved_list(state, 0)?;
        // group_array keeps no NULLs.
        self.lists =
            (0..l.len()).map(|g| Ok(scalars(&l.value(g))?.into_iter().flatten().collect())).collect::<Result<_>>()?;
        self.items = self.lists.iter().map(Vec::len).sum();
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn boxed_clone(&self) -> Box<dyn Accumulator> {
        Box::new(self.clone())
    }
}
