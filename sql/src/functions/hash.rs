//! Hash functions. `city_hash64` is CityHash64 v1.0.2 as ClickHouse bundles it: strings hash
//! their bytes, integers go through ClickHouse's `intHash64`, several arguments are combined with
//! `Hash128to64`. `xx_hash64` is XXH64 with seed 0. `weak_hash32` is a fast 32-bit hash whose
//! values are NOT those of ClickHouse (which depend on its hash-table internals).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, UInt64Type};

use super::{BindFn, FnCtx, arg_error, arity, make_call, value_type};
use crate::error::Result;
use crate::expr::{BExpr, ScalarFn, Value};

pub(crate) const FUNCTIONS: &[(&str, BindFn)] =
    &[("city_hash64", hash_fn), ("xx_hash64", hash_fn), ("weak_hash32", hash_fn), ("int_hash64", hash_fn)];

const K0: u64 = 0xc3a5c85c97cb3127;
const K1: u64 = 0xb492b66fbe98f273;
const K2: u64 = 0x9ae16a3b2f90404f;
const K3: u64 = 0xc949d7c7509e6557;

fn fetch64(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(b)
}

fn fetch32(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[i..i + 4]);
    u32::from_le_bytes(b) as u64
}

fn rotate(v: u64, shift: u32) -> u64 {
    if shift == 0 { v } else { v.rotate_right(shift) }
}

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

/// CityHash's `Hash128to64`.
pub fn hash128_to_64(lo: u64, hi: u64) -> u64 {
    const MUL: u64 = 0x9ddfea08eb382d69;
    let mut a = (lo ^ hi).wrapping_mul(MUL);
    a ^= a >> 47;
    let mut b = (hi ^ a).wrapping_mul(MUL);
    b ^= b >> 47;
    b.wrapping_mul(MUL)
}

fn hash_len16(u: u64, v: u64) -> u64 {
    hash128_to_64(u, v)
}

fn hash_len0to16(s: &[u8]) -> u64 {
    let len = s.len();
    if len > 8 {
        let a = fetch64(s, 0);
        let b = fetch64(s, len - 8);
        return hash_len16(a, (b.wrapping_add(len as u64)).rotate_right(len as u32)) ^ b;
    }
    if len >= 4 {
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4));
    }
    if len > 0 {
        let (a, b, c) = (s[0] as u32, s[len >> 1] as u32, s[len - 1] as u32);
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        return shift_mix((y as u64).wrapping_mul(K2) ^ (z as u64).wrapping_mul(K3)).wrapping_mul(K2);
    }
    K2
}

fn hash_len17to32(s: &[u8]) -> u64 {
    let len = s.len();
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(K2);
    let d = fetch64(s, len - 16).wrapping_mul(K0);
    hash_len16(
        rotate(a.wrapping_sub(b), 43).wrapping_add(rotate(c, 30)).wrapping_add(d),
        a.wrapping_add(rotate(b ^ K3, 20)).wrapping_sub(c).wrapping_add(len as u64),
    )
}

fn weak_hash_len32_with_seeds(s: &[u8], i: usize, mut a: u64, mut b: u64) -> (u64, u64) {
    let (w, x, y, z) = (fetch64(s, i), fetch64(s, i + 8), fetch64(s, i + 16), fetch64(s, i + 24));
    a = a.wrapping_add(w);
    b = rotate(b.wrapping_add(a).wrapping_add(z), 21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(rotate(a, 44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

fn hash_len33to64(s: &[u8]) -> u64 {
    let len = s.len();
    let mut z = fetch64(s, 24);
    let mut a = fetch64(s, 0).wrapping_add((len as u64).wrapping_add(fetch64(s, len - 16)).wrapping_mul(K0));
    let mut b = rotate(a.wrapping_add(z), 52);
    let mut c = rotate(a, 37);
    a = a.wrapping_add(fetch64(s, 8));
    c = c.wrapping_add(rotate(a, 7));
    a = a.wrapping_add(fetch64(s, 16));
    let vf = a.wrapping_add(z);
    let vs = b.wrapping_add(rotate(a, 31)).wrapping_add(c);
    a = fetch64(s, 16).wrapping_add(fetch64(s, len - 32));
    z = fetch64(s, len - 8);
    b = rotate(a.wrapping_add(z), 52);
    c = rotate(a, 37);
    a = a.wrapping_add(fetch64(s, len - 24));
    c = c.wrapping_add(rotate(a, 7));
    a = a.wrapping_add(fetch64(s, len - 16));
    let wf = a.wrapping_add(z);
    let ws = b.wrapping_add(rotate(a, 31)).wrapping_add(c);
    let r = shift_mix(vf.wrapping_add(ws).wrapping_mul(K2).wrapping_add(wf.wrapping_add(vs).wrapping_mul(K0)));
    shift_mix(r.wrapping_mul(K0).wrapping_add(vs)).wrapping_mul(K2)
}

/// CityHash64 v1.0.2 of `s`.
pub fn city_hash64(s: &[u8]) -> u64 {
    let len = s.len();
    if len <= 16 {
        return hash_len0to16(s);
    }
    if len <= 32 {
        return hash_len17to32(s);
    }
    if len <= 64 {
        return hash_len33to64(s);
    }
    let mut x = fetch64(s, 0);
    let mut y = fetch64(s, len - 16) ^ K1;
    let mut z = fetch64(s, len - 56) ^ K0;
    let mut v = weak_hash_len32_with_seeds(s, len - 64, len as u64, y);
    let mut w = weak_hash_len32_with_seeds(s, len - 32, (len as u64).wrapping_mul(K1), K0);
    z = z.wrapping_add(shift_mix(v.1).wrapping_mul(K1));
    x = rotate(z.wrapping_add(x), 39).wrapping_mul(K1);
    y = rotate(y, 33).wrapping_mul(K1);
    let mut remaining = (len - 1) & !63;
    let mut i = 0;
    loop {
        x = rotate(x.wrapping_add(y).wrapping_add(v.0).wrapping_add(fetch64(s, i + 16)), 37).wrapping_mul(K1);
        y = rotate(y.wrapping_add(v.1).wrapping_add(fetch64(s, i + 48)), 42).wrapping_mul(K1);
        x ^= w.1;
        y ^= v.0;
        z = rotate(z ^ w.0, 33);
        v = weak_hash_len32_with_seeds(s, i, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(s, i + 32, z.wrapping_add(w.1), y);
        std::mem::swap(&mut z, &mut x);
        i += 64;
        remaining -= 64;
        if remaining == 0 {
            break;
        }
    }
    hash_len16(
        hash_len16(v.0, w.0).wrapping_add(shift_mix(y).wrapping_mul(K1)).wrapping_add(z),
        hash_len16(v.1, w.1).wrapping_add(x),
    )
}

/// ClickHouse's `intHash64`.
pub fn int_hash64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    x
}

const P1: u64 = 11400714785074694791;
const P2: u64 = 14029467366897019727;
const P3: u64 = 1609587929392839161;
const P4: u64 = 9650029242287828579;
const P5: u64 = 2870177450012600261;

fn xx_round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

fn xx_merge(acc: u64, val: u64) -> u64 {
    (acc ^ xx_round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

/// XXH64 with seed 0.
pub fn xx_hash64(s: &[u8]) -> u64 {
    let len = s.len();
    let mut i = 0;
    let mut h = if len >= 32 {
        let (mut v1, mut v2, mut v3, mut v4) = (P1.wrapping_add(P2), P2, 0u64, 0u64.wrapping_sub(P1));
        while i + 32 <= len {
            v1 = xx_round(v1, fetch64(s, i));
            v2 = xx_round(v2, fetch64(s, i + 8));
            v3 = xx_round(v3, fetch64(s, i + 16));
            v4 = xx_round(v4, fetch64(s, i + 24));
            i += 32;
        }
        let h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        xx_merge(xx_merge(xx_merge(xx_merge(h, v1), v2), v3), v4)
    } else {
        P5
    };
    h = h.wrapping_add(len as u64);
    while i + 8 <= len {
        h ^= xx_round(0, fetch64(s, i));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        i += 8;
    }
    if i + 4 <= len {
        h ^= fetch32(s, i).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        i += 4;
    }
    while i < len {
        h ^= (s[i] as u64).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
        i += 1;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// Hashes of one argument column.
fn column_hashes(a: &ArrayRef, kind: &str) -> Result<Vec<u64>> {
    let t = value_type(a.data_type()).clone();
    let n = a.len();
    if super::is_string(&t) {
        let s = super::cast::cast_array(a, &DataType::Utf8)?;
        let s = s.as_string::<i32>();
        return Ok((0..n)
            .map(|i| {
                let b = if s.is_null(i) { &[][..] } else { s.value(i).as_bytes() };
                match kind {
                    "xx_hash64" => xx_hash64(b),
                    _ => city_hash64(b),
                }
            })
            .collect());
    }
    let v: ArrayRef = match &t {
        DataType::Timestamp(..) => Arc::new(super::cast::timestamp_ticks(a)?),
        DataType::Float32 | DataType::Float64 => {
            let f = super::cast::as_f64(a)?;
            Arc::new(f.iter().map(|x| x.map(|x| x.to_bits())).collect::<UInt64Array>())
        }
        _ => a.clone(),
    };
    let u = arrow::compute::cast(&arrow::compute::cast(&v, &DataType::Int64).unwrap_or(v.clone()), &DataType::UInt64)
        .or_else(|_| arrow::compute::cast(&v, &DataType::UInt64))?;
    let u = u.as_primitive::<UInt64Type>();
    Ok((0..n).map(|i| if u.is_null(i) { 0 } else { u.value(i) }).map(int_hash64).collect())
}

fn hash_fn(ctx: &FnCtx<'_>, args: Vec<BExpr>) -> Result<BExpr> {
    arity(ctx, &args, 1, usize::MAX)?;
    for (i, a) in args.iter().enumerate() {
        let t = a.data_type();
        if !(super::is_string(&t) || super::is_numeric(&t) || super::is_temporal(&t) || t == DataType::Boolean) {
            return Err(arg_error(ctx, format!("cannot hash argument {} of type {}", i + 1, super::type_name(&t))));
        }
    }
    let kind = ctx.name.to_string();
    let ty = if kind == "weak_hash32" { DataType::UInt32 } else { DataType::UInt64 };
    let f = ScalarFn::new(kind.clone(), move |args, rows| {
        let mut acc: Option<Vec<u64>> = None;
        for a in args {
            let h = column_hashes(&a.clone().into_array(rows)?, &kind)?;
            acc = Some(match acc {
                None => h,
                Some(prev) => prev.iter().zip(h).map(|(p, c)| hash128_to_64(*p, c)).collect(),
            });
        }
        let h = acc.unwrap_or_default();
        let out: ArrayRef = if kind == "weak_hash32" {
            Arc::new(UInt32Array::from(h.iter().map(|v| (*v ^ (*v >> 32)) as u32).collect::<Vec<_>>()))
        } else {
            Arc::new(UInt64Array::from(h))
        };
        Ok(Value::Array(out))
    });
    make_call(f, args, ty, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(city_hash64(b""), 11_160_318_154_034_397_263);
        assert_eq!(xx_hash64(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xx_hash64(b"a"), 0xD24E_C4F1_A98C_6E5B);
        // Long inputs take every code path without panicking.
        for n in [1, 3, 4, 8, 9, 16, 17, 32, 33, 64, 65, 200] {
            let s = vec![b'x'; n];
            let _ = (city_hash64(&s), xx_hash64(&s));
        }
    }
}
