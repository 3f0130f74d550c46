//! Array basics: `array(...)`/`[...]` literals, `length`, `has`, `index_of`, `arr[i]` (1-based,
//! negative from the end, out of range gives the element type's default as in ClickHouse:
//! here NULL). `array_join` is not supported yet.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, UInt64Array, new_null_array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};

use super::conditional::unify;
use super::{BindFn, FnCtx, arg_error, arity, make_call};
use crate::error::{Error, Result};
use crate::expr::{BExpr, ScalarFn, Value};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] =
    &[("array", array), ("has", has), ("index_of", has), ("array_element", element_fn), ("array_join", array_join)];

fn array_join(ctx: &FnCtx<'_>, _args: Vec<BExpr>) -> Result<BExpr> {
    Err(Error::NotImplemented { feature: format!("{} (ARRAY JOIN)", ctx.name), location: ctx.span.map(|s| s.start) })
}

/// `array(a, b, ...)`: one list per row.
pub fn array(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    let (args, item) = if args.is_empty() { (args, DataType::Null) } else { unify(ctx, args)? };
    let item_nullable = args.iter().any(BExpr::nullable);
    let field = Arc::new(Field::new("item", item.clone(), item_nullable || item == DataType::Null));
    let ty = DataType::List(field.clone());
    let f = ScalarFn::new("array", move |args, rows| {
        let n = args.len();
        let cols = args.iter().map(|a| a.clone().into_array(rows)).collect::<Result<Vec<_>>>()?;
        // Interleave: row r takes element r of each column.
        let values: ArrayRef = if n == 0 {
            new_null_array(&item, 0)
        } else {
            let refs: Vec<&dyn Array> = cols.iter().map(|c| c.as_ref()).collect();
            let idx: Vec<(usize, usize)> = (0..rows).flat_map(|r| (0..n).map(move |c| (c, r))).collect();
            arrow::compute::interleave(&refs, &idx)?
        };
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(n, rows));
        Ok(Value::Array(Arc::new(ListArray::try_new(field.clone(), offsets, values, None)?)))
    });
    make_call(f, args, ty, false)
}

fn item_type(ctx: &FnCtx<'_>, e: &BExpr) -> Result<DataType> {
    match e.data_type() {
        DataType::List(f) => Ok(f.data_type().clone()),
        t => Err(arg_error(ctx, format!("expects an array, got {}", super::type_name(&t)))),
    }
}

/// `length(arr)`.
pub fn array_length(args: Vec<BExpr>) -> Result<BExpr> {
    let nullable = args[0].nullable();
    let f = ScalarFn::new("array_length", |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let l = a.as_list::<i32>();
        let out: UInt64Array = (0..l.len()).map(|i| l.is_valid(i).then(|| l.value_length(i) as u64)).collect();
        Ok(Value::Array(Arc::new(out)))
    });
    make_call(f, args, DataType::UInt64, nullable)
}

/// `has(arr, x)` / `index_of(arr, x)`.
fn has(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let item = item_type(ctx, &args[0])?;
    let mut it = args.into_iter();
    let (Some(arr), Some(x)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    let x = super::cast_to(x, &item)?;
    let index = ctx.name == "index_of";
    let nullable = arr.nullable();
    let f = ScalarFn::new(ctx.name.to_string(), move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let l = a.as_list::<i32>();
        let x = args[1].clone().into_array(rows)?;
        let mut pos: Vec<Option<u64>> = Vec::with_capacity(rows);
        for r in 0..rows {
            if l.is_null(r) {
                pos.push(None);
                continue;
            }
            let v = l.value(r);
            let probe = x.slice(r, 1);
            let eq = arrow::compute::kernels::cmp::not_distinct(&v, &arrow::array::Scalar::new(probe))?;
            pos.push(Some(eq.values().set_indices().next().map(|p| p as u64 + 1).unwrap_or(0)));
        }
        let out: ArrayRef = if index {
            Arc::new(UInt64Array::from(pos))
        } else {
            Arc::new(pos.into_iter().map(|p| p.map(|p| p > 0)).collect::<BooleanArray>())
        };
        Ok(Value::Array(out))
    });
    make_call(f, vec![arr, x], if index { DataType::UInt64 } else { DataType::Boolean }, nullable)
}

fn element_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 2, 2)?;
    let mut it = args.into_iter();
    let (Some(arr), Some(i)) = (it.next(), it.next()) else { return Err(arg_error(ctx, "missing argument")) };
    element(ctx, arr, i)
}

/// `arr[i]`: 1-based; negative counts from the end; out of range is NULL.
pub fn element(ctx: &FnCtx<'_>, arr: BExpr, i: BExpr) -> Result<BExpr> {
    let item = item_type(ctx, &arr)?;
    if !super::is_integer(&i.data_type()) {
        return Err(arg_error(ctx, "the index must be an integer"));
    }
    let i = super::cast_to(i, &DataType::Int64)?;
    let f = ScalarFn::new("array_element", |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let l = a.as_list::<i32>();
        let idx = args[1].clone().into_array(rows)?;
        let idx = idx.as_primitive::<arrow::datatypes::Int64Type>();
        let values = l.values();
        let offsets = l.value_offsets();
        let take: arrow::array::UInt32Array = (0..rows)
            .map(|r| {
                if l.is_null(r) || idx.is_null(r) {
                    return None;
                }
                let (start, len) = (offsets[r] as i64, (offsets[r + 1] - offsets[r]) as i64);
                let k = idx.value(r);
                let p = if k > 0 { k - 1 } else { len + k };
                (k != 0 && (0..len).contains(&p)).then(|| (start + p) as u32)
            })
            .collect();
        Ok(Value::Array(arrow::compute::take(values.as_ref(), &take, None)?))
    });
    make_call(f, vec![arr, i], item, true)
}
