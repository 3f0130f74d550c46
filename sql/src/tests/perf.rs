//! The peers' Q1..Q10 on a 10M-row in-memory event table, 2 threads.
//!
//! `cargo test -p sluice-sql --release -- --ignored perf --nocapture`
//! (`SLUICE_PERF_ROWS` changes the row count; `SLUICE_PERF_STRINGS=plain` uses Utf8 instead of
//! dictionary columns).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::ast::Statement;
use crate::context::{ExecContext, QueryOptions};
use crate::memtable::{MemCatalog, MemTable};
use crate::{parse_statement, plan_query};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(1e-300), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut c: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let mut acc = 0.0;
    for x in c.iter_mut() {
        acc += *x;
        *x = acc;
    }
    c.iter_mut().for_each(|x| *x /= acc);
    c
}

fn sample(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|x| *x < u).min(cdf.len() - 1)
}

pub(crate) const EVENT_TYPES: [&str; 8] =
    ["view", "click", "scroll", "add_to_cart", "search", "purchase", "signup", "logout"];
const EVENT_PROBS: [f64; 8] = [0.40, 0.25, 0.12, 0.08, 0.07, 0.04, 0.03, 0.01];

/// Builds the event table: `rows` rows in partitions of 256k rows, batches of 64k rows.
pub(crate) fn events(rows: usize, dictionary: bool) -> MemTable {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let user_cdf = zipf_cdf(100_000, 1.1);
    let url_cdf = zipf_cdf(1000, 1.0);
    let mut perm: Vec<u64> = (0..100_000).collect();
    for i in (1..perm.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let sections = ["products", "category", "blog", "help", "cart", "account", "search", "deals"];
    let words = ["red", "blue", "fast", "smart", "mini", "pro", "max", "eco", "retro", "ultra"];
    let urls: Vec<String> = (0..1000)
        .map(|i| {
            format!("https://shop.example.com/{}/{}-{}-{:04}", sections[i % 8], words[i % 10], words[(i / 10) % 10], i)
        })
        .collect();
    let mut ev_cdf = [0.0; 8];
    let mut acc = 0.0;
    for (i, p) in EVENT_PROBS.iter().enumerate() {
        acc += p;
        ev_cdf[i] = acc;
    }
    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let str_type = if dictionary { dict_type } else { DataType::Utf8 };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("user_id", DataType::UInt64, false),
        Field::new("event_type", str_type.clone(), false),
        Field::new("url", str_type, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let start: i64 = 1_704_067_200_000;
    let mean_gap = 86_400_000.0 / rows as f64;
    let mut t = start as f64;
    let part_rows = 262_144;
    let batch_rows = 65_536;
    let mut parts = Vec::new();
    let mut id = 0usize;
    while id < rows {
        let ev_values: ArrayRef = Arc::new(StringArray::from(EVENT_TYPES.to_vec()));
        let url_values: ArrayRef = Arc::new(StringArray::from(urls.iter().map(String::as_str).collect::<Vec<_>>()));
        let mut batches = Vec::new();
        let part_end = (id + part_rows).min(rows);
        while id < part_end {
            let n = batch_rows.min(part_end - id);
            let mut ids = Vec::with_capacity(n);
            let mut ts = Vec::with_capacity(n);
            let mut users = Vec::with_capacity(n);
            let mut evs = Vec::with_capacity(n);
            let mut us = Vec::with_capacity(n);
            let mut vals = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(id as u64);
                t += -mean_gap * rng.unit().max(1e-12).ln();
                ts.push((t as i64).min(start + 86_399_999));
                users.push(1_000_000 + perm[sample(&user_cdf, rng.unit())]);
                let u = rng.unit();
                evs.push(ev_cdf.iter().position(|c| u < *c).unwrap_or(7) as i32);
                us.push(sample(&url_cdf, rng.unit()) as i32);
                vals.push(((3.0 + rng.normal()).exp() * 100.0).round() / 100.0);
                id += 1;
            }
            let strings = |keys: Vec<i32>, values: &ArrayRef| -> ArrayRef {
                let d =
                    DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), values.clone()).expect("dictionary");
                if dictionary { Arc::new(d) } else { arrow::compute::cast(&d, &DataType::Utf8).expect("cast") }
            };
            let cols: Vec<ArrayRef> = vec![
                Arc::new(UInt64Array::from(ids)),
                Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
                Arc::new(UInt64Array::from(users)),
                strings(evs, &ev_values),
                strings(us, &url_values),
                Arc::new(Float64Array::from(vals)),
            ];
            batches.push(RecordBatch::try_new(schema.clone(), cols).expect("batch"));
        }
        parts.push(batches);
    }
    MemTable::new("events", schema, parts).expect("table")
}

pub(crate) const QUERIES: [(&str, &str, f64); 10] = [
    ("Q1", "SELECT count(*) FROM events", 0.7),
    ("Q2", "SELECT count(*) FROM events WHERE event_type = 'click'", 2.8),
    (
        "Q3",
        "SELECT event_type, count(*) AS n, sum(value) AS total, avg(value) AS mean FROM events GROUP BY event_type ORDER BY event_type",
        23.2,
    ),
    ("Q4", "SELECT user_id, count(*) AS n FROM events GROUP BY user_id ORDER BY n DESC, user_id LIMIT 10", 45.9),
    ("Q5", "SELECT to_start_of_minute(ts) AS minute, count(*) AS n FROM events GROUP BY minute ORDER BY minute", 39.0),
    ("Q6", "SELECT count(DISTINCT user_id) FROM events", 35.6),
    (
        "Q7",
        "SELECT count(*) AS n, avg(value) AS mean FROM events WHERE ts >= to_datetime64('2024-01-01 12:00:00', 3, 'UTC') AND ts < to_datetime64('2024-01-01 12:14:24', 3, 'UTC')",
        1.5,
    ),
    (
        "Q8",
        "SELECT event_type, quantileExactInclusive(0.5)(value) AS p50, quantileExactInclusive(0.99)(value) AS p99 FROM events GROUP BY event_type ORDER BY event_type",
        131.1,
    ),
    (
        "Q9",
        "SELECT url, sum(value) AS total FROM events WHERE event_type = 'purchase' GROUP BY url ORDER BY total DESC, url LIMIT 10",
        8.1,
    ),
    ("Q10", "SELECT * FROM events WHERE id = {point}", 1.1),
];

fn time_query(catalog: &MemCatalog, sql: &str, reps: usize) -> (f64, usize) {
    let opts = QueryOptions { plain_stream_is_table: true, ..Default::default() };
    let ctx = ExecContext::with_threads(2);
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..reps + 1 {
        let t0 = Instant::now();
        let Ok(Statement::Query(q)) = parse_statement(sql) else { panic!("{sql}") };
        let plan = plan_query(&q, catalog, &opts).unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows = plan.execute(&ctx).expect("execute").map(|b| b.expect("batch").num_rows()).sum();
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], rows)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored perf --nocapture"]
fn perf() {
    let n: usize = std::env::var("SLUICE_PERF_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dictionary = std::env::var("SLUICE_PERF_STRINGS").map(|v| v != "plain").unwrap_or(true);
    let t0 = Instant::now();
    let table = events(n, dictionary);
    println!(
        "built {n} rows ({}) in {:.1}s",
        if dictionary { "dictionary strings" } else { "plain strings" },
        t0.elapsed().as_secs_f64()
    );
    let catalog = MemCatalog::new();
    catalog.register(Arc::new(table));
    let point = n * 7 / 10 + 7;
    println!("| query | sluice ms (median of 5) | best peer ms | ratio | rows |");
    println!("|---|---:|---:|---:|---:|");
    let mut total = 0.0;
    let only = std::env::var("SLUICE_PERF_QUERIES").unwrap_or_default();
    let reps: usize = std::env::var("SLUICE_PERF_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    for (name, sql, peer) in QUERIES {
        if !only.is_empty() && !only.split(',').any(|q| q == name) {
            continue;
        }
        let sql = sql.replace("{point}", &point.to_string());
        let (ms, rows) = time_query(&catalog, &sql, reps);
        total += ms;
        println!("| {name} | {ms:.2} | {peer} | {:.2} | {rows} |", ms / peer);
    }
    println!("| sum | {total:.1} | 288.4 (best per query) | | |");
    for (i, sql) in
        std::env::var("SLUICE_PERF_SQL").unwrap_or_default().split(';').filter(|s| !s.trim().is_empty()).enumerate()
    {
        let (ms, rows) = time_query(&catalog, sql, reps);
        println!("| extra{i} | {ms:.2} | | | {rows} | {sql}");
    }
}
