//! sluice-benches: criterion micro benchmarks named `<crate>_<thing>` (see `benches/`), and from
//! issue F the `sluice-bench` harness that speaks the peer benchmark's JSON contract.
//!
//! This library holds what the benchmarks share: a generator of the peer benchmark's event
//! table (`../shared/bench/peers.py`: id, ts, user_id, event_type, url, value) with the same
//! shape and distributions, so micro benchmarks run on realistic data without Python.

use std::sync::Arc;

use sluice::arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use sluice::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_vfs::Rng;

/// 2024-01-01T00:00:00Z in ms, as in peers.py.
pub const START_MS: i64 = 1_704_067_200_000;
const SPAN_MS: i64 = 86_400_000;
const EVENT_TYPES: [&str; 8] = ["view", "click", "scroll", "add_to_cart", "search", "purchase", "signup", "logout"];
const EVENT_CUM: [f64; 8] = [0.40, 0.65, 0.77, 0.85, 0.92, 0.96, 0.99, 1.0];
const SECTIONS: [&str; 8] = ["products", "category", "blog", "help", "cart", "account", "search", "deals"];
const WORDS: [&str; 20] = [
    "red", "blue", "fast", "smart", "mini", "pro", "max", "eco", "retro", "ultra", "shoe", "lamp", "phone", "chair",
    "watch", "bag", "desk", "kettle", "jacket", "cable",
];

/// Bytes of all files under `dir` (storage figures of the benchmarks).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => n += dir_bytes(&e.path()),
            Ok(m) => n += m.len(),
            Err(_) => {}
        }
    }
    n
}

/// The event table's schema (`ts` is a naive ms timestamp, as peers.py writes it).
pub fn event_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
        Field::new("user_id", DataType::UInt64, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Rows `first..first+rows` of a `total`-row event table (timestamps spread over one day).
pub fn event_batch(first: u64, rows: usize, total: u64, seed: u64) -> RecordBatch {
    let mut rng = Rng::new(seed ^ first);
    let urls: Vec<String> = (0..1000)
        .map(|i| {
            let n = 1 + i % 3;
            let w: Vec<&str> = (0..n).map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()]).collect();
            format!("https://shop.example.com/{}/{}-{i:04}", SECTIONS[i % 8], w.join("-"))
        })
        .collect();
    let ids: Vec<u64> = (first..first + rows as u64).collect();
    let ts: Vec<i64> =
        ids.iter().map(|i| START_MS + (*i as i128 * SPAN_MS as i128 / total.max(1) as i128) as i64).collect();
    // Zipf-like draws by inverse transform on a power law.
    let mut zipf = |n: u64, s: f64| -> u64 {
        let u = (rng.below(1 << 30) as f64 + 0.5) / (1u64 << 30) as f64;
        ((n as f64).powf(u * (1.0 - 1.0 / s.max(1.01))) as u64).min(n - 1)
    };
    let users: Vec<u64> = (0..rows).map(|_| 1_000_000 + zipf(100_000, 1.1)).collect();
    let url_idx: Vec<usize> = (0..rows).map(|_| zipf(1000, 1.0) as usize).collect();
    let mut rng2 = Rng::new(seed.wrapping_add(first).wrapping_mul(31));
    let events: Vec<&str> = (0..rows)
        .map(|_| {
            let u = rng2.below(1_000_000) as f64 / 1e6;
            EVENT_TYPES[EVENT_CUM.iter().position(|c| u < *c).unwrap_or(7)]
        })
        .collect();
    let values: Vec<f64> = (0..rows).map(|_| (rng2.below(50_000) as f64) / 100.0).collect();
    RecordBatch::try_new(
        event_schema(),
        vec![
            Arc::new(UInt64Array::from(ids)),
            Arc::new(TimestampMillisecondArray::from(ts)),
            Arc::new(UInt64Array::from(users)),
            Arc::new(StringArray::from(events)),
            Arc::new(StringArray::from(url_idx.iter().map(|i| urls[*i].as_str()).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(values)),
        ],
    )
    .expect("event batch matches its schema")
}
