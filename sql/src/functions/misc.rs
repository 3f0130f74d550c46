//! `to_type_name`, `format_readable_size`, `format_readable_quantity`, `rand`, `version`.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Float64Type};

use super::{BindFn, FnCtx, arity, cast_to, make_call, want_numeric};
use crate::error::Result;
use crate::expr::{BExpr, ScalarFn, Value};
use crate::scalar::ScalarValue;

pub(crate) const FUNCTIONS: &[(&str, BindFn)] = &[
    ("to_type_name", to_type_name),
    ("format_readable_size", readable),
    ("format_readable_decimal_size", readable),
    ("format_readable_quantity", readable),
    ("rand", rand),
    ("version", version),
];

fn to_type_name(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    let field = Field::new("x", args[0].data_type(), args[0].nullable());
    let name = crate::types::SqlType::from_arrow_field(&field)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| super::type_name(&args[0].data_type()));
    Ok(BExpr::lit(ScalarValue::Utf8(name)))
}

/// ClickHouse's `formatReadableSize`: binary units, two decimals (`4.46 MiB`).
pub fn readable_size(v: f64, base: f64, units: &[&str]) -> String {
    let mut v = v;
    let mut i = 0;
    while v.abs() >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{v:.2}{}", units[i])
}

fn readable(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, 1)?;
    want_numeric(ctx, &args, 0)?;
    let nullable = args[0].nullable();
    let arg = cast_to(args.into_iter().next().unwrap_or(BExpr::lit(ScalarValue::Int64(0))), &DataType::Float64)?;
    let kind = ctx.name.to_string();
    let f = ScalarFn::new(kind.clone(), move |args, rows| {
        let a = args[0].clone().into_array(rows)?;
        let out: StringArray = a
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| {
                v.map(|v| match kind.as_str() {
                    "format_readable_size" => readable_size(
                        v,
                        1024.0,
                        &[" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB", " ZiB", " YiB"],
                    ),
                    "format_readable_decimal_size" => {
                        readable_size(v, 1000.0, &[" B", " KB", " MB", " GB", " TB", " PB", " EB", " ZB", " YB"])
                    }
                    _ => readable_size(
                        v,
                        1000.0,
                        &["", " thousand", " million", " billion", " trillion", " quadrillion"],
                    ),
                })
            })
            .collect();
        Ok(Value::Array(Arc::new(out)))
    });
    make_call(f, vec![arg], DataType::Utf8, nullable)
}

fn rand(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 0, 1)?;
    let seed = ctx.now as u64;
    let f = ScalarFn::new("rand", move |_, rows| {
        let mut x = seed ^ 0x9E37_79B9_7F4A_7C15 ^ (rows as u64);
        let out: UInt32Array = (0..rows)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u32
            })
            .collect();
        Ok(Value::Array(Arc::new(out)))
    })
    .volatile();
    Ok(BExpr::Call { func: f, args: vec![], ty: DataType::UInt32, nullable: false })
}

fn version(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 0, 0)?;
    make_call(
        ScalarFn::new("version", |_, _| {
            Ok(Value::Scalar(ScalarValue::Utf8(env!("CARGO_PKG_VERSION").into()).to_array()))
        }),
        vec![],
        DataType::Utf8,
        false,
    )
}
