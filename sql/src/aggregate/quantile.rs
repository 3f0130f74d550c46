//! Exact quantiles. Values are collected per group as `f64`; each requested rank is found with
//! `select_nth_unstable` on a shrinking prefix, so p50 and p99 of one column cost little more
//! than one of them. Several quantile calls over the same argument share one state. Groups are
//! finished in parallel.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Float64Builder, ListBuilder};

use super::{Accumulator, QuantileMethod, downcast};
use crate::error::Result;

/// One output: levels, method, whether it is an array (`quantiles`).
pub type QuantileOut = (Vec<f64>, QuantileMethod, bool);

/// Collected values per group.
#[derive(Debug, Clone)]
pub struct QuantileAcc {
    outs: Vec<QuantileOut>,
    vals: Vec<Vec<f64>>,
    threads: usize,
}

impl QuantileAcc {
    /// A state producing `outs`.
    pub fn new(outs: Vec<QuantileOut>) -> Self {
        QuantileAcc { outs, vals: Vec::new(), threads: 2 }
    }

    /// Threads used to finish groups.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

/// The indices of the sorted values a level needs.
fn needed(level: f64, method: QuantileMethod, n: usize) -> (usize, usize, f64) {
    let last = n - 1;
    match method {
        QuantileMethod::Nearest => {
            let i = if level < 1.0 { ((level * n as f64) as usize).min(last) } else { last };
            (i, i, 0.0)
        }
        QuantileMethod::Inclusive | QuantileMethod::Exclusive => {
            let h = if method == QuantileMethod::Inclusive {
                level * last as f64
            } else {
                (level * (n as f64 + 1.0) - 1.0).clamp(0.0, last as f64)
            };
            let lo = (h.floor() as usize).min(last);
            let hi = (lo + 1).min(last);
            (lo, hi, h - lo as f64)
        }
    }
}

/// Evaluates every (level, method) on one group's values (reordering them).
fn evaluate(values: &mut [f64], asks: &[(f64, QuantileMethod)]) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return vec![f64::NAN; asks.len()];
    }
    let mut ranks: BTreeMap<usize, f64> = BTreeMap::new();
    let plans: Vec<_> = asks.iter().map(|(l, m)| needed(*l, *m, n)).collect();
    for (lo, hi, _) in &plans {
        ranks.insert(*lo, 0.0);
        ranks.insert(*hi, 0.0);
    }
    let mut end = n;
    let mut prev: Option<usize> = None;
    let keys: Vec<usize> = ranks.keys().rev().copied().collect();
    for k in keys {
        let v = if prev == Some(k + 1) {
            // The k-th smallest is the largest of the k + 1 values left of the previous rank.
            let (mut best, mut at) = (values[0], 0);
            for (i, x) in values[..=k].iter().enumerate() {
                if x.total_cmp(&best).is_gt() {
                    best = *x;
                    at = i;
                }
            }
            values.swap(at, k);
            best
        } else {
            let (_, v, _) = values[..end].select_nth_unstable_by(k, |a, b| a.total_cmp(b));
            *v
        };
        ranks.insert(k, v);
        end = k;
        prev = Some(k);
    }
    plans
        .iter()
        .map(|(lo, hi, frac)| {
            let (a, b) = (ranks[lo], ranks[hi]);
            if *frac == 0.0 { a } else { a + frac * (b - a) }
        })
        .collect()
}

impl Accumulator for QuantileAcc {
    fn update(&mut self, args: &[ArrayRef], groups: &[u32], num_groups: usize) -> Result<()> {
        if self.vals.len() < num_groups {
            self.vals.resize_with(num_groups, Vec::new);
        }
        let a: Float64Array = match args[0].data_type() {
            arrow::datatypes::DataType::Float64 => arrow::array::AsArray::as_primitive(&args[0]).clone(),
            _ => crate::functions::cast::as_f64(&crate::functions::cast::cast_array(
                &args[0],
                crate::functions::value_type(args[0].data_type()),
            )?)?,
        };
        let vals = a.values();
        if num_groups == 1 && a.null_count() == 0 {
            self.vals[0].extend(vals.iter().filter(|v| !v.is_nan()));
            return Ok(());
        }
        for (i, (g, v)) in groups.iter().zip(vals.iter()).enumerate() {
            if a.is_valid(i) && !v.is_nan() {
                self.vals[*g as usize].push(*v);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn Accumulator>, map: &[u32], num_groups: usize) -> Result<()> {
        let other = downcast::<QuantileAcc>(other)?;
        if self.vals.len() < num_groups {
            self.vals.resize_with(num_groups, Vec::new);
        }
        for (g, mut v) in other.vals.into_iter().enumerate() {
            let t = &mut self.vals[map[g] as usize];
            if t.len() < v.len() {
                std::mem::swap(t, &mut v);
            }
            t.extend_from_slice(&v);
        }
        Ok(())
    }

    fn finish(&mut self, num_groups: usize) -> Result<Vec<ArrayRef>> {
        if self.vals.len() < num_groups {
            self.vals.resize_with(num_groups, Vec::new);
        }
        let asks: Vec<(f64, QuantileMethod)> =
            self.outs.iter().flat_map(|(levels, m, _)| levels.iter().map(move |l| (*l, *m))).collect();
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); self.vals.len()];
        let total: usize = self.vals.iter().map(Vec::len).sum();
        if self.threads > 1 && total > 100_000 && self.vals.len() > 1 {
            // Hand out groups, largest first, to the threads.
            let mut order: Vec<usize> = (0..self.vals.len()).collect();
            order.sort_by_key(|g| std::cmp::Reverse(self.vals[*g].len()));
            let mut buckets: Vec<Vec<(usize, Vec<f64>)>> = (0..self.threads).map(|_| Vec::new()).collect();
            let mut load = vec![0usize; self.threads];
            for g in order {
                let t = (0..self.threads).min_by_key(|t| load[*t]).unwrap_or(0);
                load[t] += self.vals[g].len();
                buckets[t].push((g, std::mem::take(&mut self.vals[g])));
            }
            let asks = &asks;
            let done: Vec<Vec<(usize, Vec<f64>)>> = std::thread::scope(|s| {
                let handles: Vec<_> = buckets
                    .into_iter()
                    .map(|b| {
                        s.spawn(move || b.into_iter().map(|(g, mut v)| (g, evaluate(&mut v, asks))).collect::<Vec<_>>())
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
            });
            for (g, r) in done.into_iter().flatten() {
                results[g] = r;
            }
        } else {
            for (g, v) in self.vals.iter_mut().enumerate() {
                results[g] = evaluate(v, &asks);
            }
        }
        if results.iter().any(|r| r.len() != asks.len()) {
            return Err(crate::error::Error::Internal { message: "a quantile worker failed".into() });
        }
        let mut out = Vec::new();
        let mut at = 0;
        for (levels, _, array) in &self.outs {
            if *array {
                let mut b = ListBuilder::new(Float64Builder::new());
                for r in &results {
                    b.values().append_slice(&r[at..at + levels.len()]);
                    b.append(true);
                }
                out.push(Arc::new(b.finish()) as ArrayRef);
            } else {
                out.push(Arc::new(Float64Array::from(results.iter().map(|r| r[at]).collect::<Vec<_>>())) as ArrayRef);
            }
            at += levels.len();
        }
        self.vals = Vec::new();
        Ok(out)
    }

    fn size(&self) -> usize {
        self.vals.iter().map(|v| v.capacity() * 8 + 24).sum()
    }

    fn save(&self, num_groups: usize) -> Option<Vec<ArrayRef>> {
        let mut v = self.vals.clone();
        super::grow(&mut v, num_groups, Vec::new());
        let list = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Float64Type, _, _>(
            v.iter().map(|g| Some(g.iter().map(|x| Some(*x)).collect::<Vec<_>>())),
        );
        Some(vec![Arc::new(list)])
    }

    fn load(&mut self, state: &[ArrayRef]) -> Result<()> {
        let l = super::saved_list(state, 0)?;
        self.vals = (0..l.len())
            .map(|i| {
                let v = l.value(i);
                crate::functions::cast::as_f64(&v).map(|f| f.values().to_vec())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_definitions() {
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        let r = evaluate(&mut v, &[(0.5, QuantileMethod::Inclusive), (0.99, QuantileMethod::Inclusive)]);
        assert_eq!(r[0], 5.5);
        assert!((r[1] - 9.91).abs() < 1e-9);
        let mut v: Vec<f64> = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(evaluate(&mut v, &[(0.5, QuantileMethod::Nearest)]), vec![3.0]);
        let mut v: Vec<f64> = vec![];
        assert!(evaluate(&mut v, &[(0.5, QuantileMethod::Inclusive)])[0].is_nan());
    }
}
