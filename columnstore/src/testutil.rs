//! Test data and environments shared by the unit tests.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, LargeStringArray, ListArray, MapArray,
    StringArray, StructArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_vfs::{FileSystem, RealFs, Rng, SimFs};

use crate::ReadBackend;

/// A place to write parts: a file system, a directory on it, a backend to read with.
pub(crate) struct Env {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    pub(crate) backend: ReadBackend,
    pub(crate) sim: Option<SimFs>,
    _tmp: Option<tempfile::TempDir>,
}

impl Env {
    pub(crate) fn sim(seed: u64) -> Env {
        let sim = SimFs::new(seed);
        let dir = PathBuf::from("/shard/parts");
        sim.create_dir_all(&dir).expect("mkdir");
        Env { fs: sim.shared(), dir, backend: ReadBackend::Pread, sim: Some(sim), _tmp: None }
    }

    pub(crate) fn real(backend: ReadBackend) -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("parts");
        std::fs::create_dir_all(&dir).expect("mkdir");
        Env { fs: RealFs::shared(), dir, backend, sim: None, _tmp: Some(tmp) }
    }

    /// One environment per backend: simulated + pread, real + pread, real + mmap.
    pub(crate) fn all(seed: u64) -> Vec<Env> {
        vec![Env::sim(seed), Env::real(ReadBackend::Pread), Env::real(ReadBackend::Mmap)]
    }
}

pub(crate) fn ts_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A typical event stream: time, a low-cardinality device, a kind, a measurement, a counter,
/// a flag, and a unique row id (to check which rows come back).
pub(crate) fn event_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("_tp_time", ts_ms(), false),
        Field::new("device", DataType::Utf8, false),
        Field::new("kind", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        Field::new("value", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("row_id", DataType::UInt64, false),
    ]))
}

/// `n` events sorted by time starting at `t0`, with row ids from `first_id`.
pub(crate) fn events(rng: &mut Rng, n: usize, t0: i64, first_id: u64) -> RecordBatch {
    let mut t = t0;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        t += rng.below(3) as i64;
        times.push(t);
    }
    let devices: Vec<String> = (0..n).map(|_| format!("device-{:04}", rng.below(1000))).collect();
    const KINDS: [&str; 4] = ["click", "view", "buy", "error"];
    let kinds: DictionaryArray<Int32Type> =
        (0..n).map(|_| (!rng.chance(0.05)).then(|| KINDS[rng.below(4) as usize])).collect();
    let values: Float64Array = (0..n)
        .map(|_| match rng.below(50) {
            0 => None,
            1 => Some(f64::NAN),
            2 => Some(-0.0),
            _ => Some((rng.below(2000) as f64) / 10.0 - 50.0),
        })
        .collect();
    let ns: Int64Array = (0..n).map(|_| (!rng.chance(0.1)).then(|| rng.below(1_000_000) as i64 - 500_000)).collect();
    let oks: BooleanArray = (0..n).map(|_| (!rng.chance(0.1)).then(|| rng.chance(0.5))).collect();
    let ids: UInt64Array = (first_id..first_id + n as u64).collect::<Vec<_>>().into();
    RecordBatch::try_new(
        event_schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
            Arc::new(StringArray::from(devices)),
            Arc::new(kinds),
            Arc::new(values),
            Arc::new(ns),
            Arc::new(oks),
            Arc::new(ids),
        ],
    )
    .expect("valid event batch")
}

/// A batch with a column of every type a part supports (unsorted; `k` is a row number).
pub(crate) fn all_types(rng: &mut Rng, n: usize) -> RecordBatch {
    let opt = |rng: &mut Rng| !rng.chance(0.1);
    let mut cols: Vec<(&str, ArrayRef)> = vec![("k", Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())))];
    cols.push(("i8", Arc::new((0..n).map(|_| opt(rng).then(|| rng.next_u64() as i8)).collect::<Int8Array>())));
    cols.push(("i16", Arc::new((0..n).map(|_| Some(rng.next_u64() as i16)).collect::<Int16Array>())));
    cols.push(("i32", Arc::new((0..n).map(|_| opt(rng).then(|| rng.next_u64() as i32)).collect::<Int32Array>())));
    cols.push(("u8", Arc::new((0..n).map(|_| Some(rng.next_u64() as u8)).collect::<UInt8Array>())));
    cols.push(("u16", Arc::new((0..n).map(|_| Some(rng.next_u64() as u16)).collect::<UInt16Array>())));
    cols.push(("u32", Arc::new((0..n).map(|_| opt(rng).then(|| rng.next_u64() as u32)).collect::<UInt32Array>())));
    cols.push(("u64", Arc::new((0..n).map(|_| Some(rng.next_u64())).collect::<UInt64Array>())));
    cols.push((
        "f32",
        Arc::new((0..n).map(|_| opt(rng).then(|| rng.below(1000) as f32 / 7.0)).collect::<Float32Array>()),
    ));
    let dec: Decimal128Array = (0..n).map(|_| opt(rng).then(|| rng.next_u64() as i64 as i128 * 1000)).collect();
    cols.push(("dec", Arc::new(dec.with_precision_and_scale(38, 4).expect("valid decimal"))));
    cols.push(("b", Arc::new((0..n).map(|_| opt(rng).then(|| rng.chance(0.3))).collect::<BooleanArray>())));
    let strs: Vec<Option<String>> = (0..n)
        .map(|_| {
            opt(rng).then(|| {
                let reps = rng.below(5) as usize;
                "é".repeat(reps) + &rng.below(100).to_string()
            })
        })
        .collect();
    cols.push(("s", Arc::new(StringArray::from(strs.clone()))));
    cols.push(("ls", Arc::new(LargeStringArray::from(strs))));
    let bins: Vec<Option<Vec<u8>>> = (0..n)
        .map(|_| {
            opt(rng).then(|| {
                let len = rng.below(10) as usize;
                rng.bytes(len)
            })
        })
        .collect();
    cols.push(("bin", Arc::new(BinaryArray::from_iter(bins))));
    let fixed: Vec<Vec<u8>> = (0..n).map(|_| rng.bytes(16)).collect();
    cols.push(("uuid", Arc::new(FixedSizeBinaryArray::try_from_iter(fixed.into_iter()).expect("fixed"))));
    cols.push(("d", Arc::new((0..n).map(|_| Some(rng.below(30000) as i32)).collect::<Date32Array>())));
    cols.push((
        "t_us",
        Arc::new(
            TimestampMicrosecondArray::from((0..n).map(|_| rng.next_u64() as i64 >> 8).collect::<Vec<_>>())
                .with_timezone("Europe/Berlin"),
        ),
    ));
    cols.push((
        "t_ns",
        Arc::new(TimestampNanosecondArray::from(
            (0..n).map(|_| opt(rng).then(|| rng.next_u64() as i64)).collect::<Vec<_>>(),
        )),
    ));
    let dict: DictionaryArray<Int32Type> =
        (0..n).map(|_| opt(rng).then(|| ["a", "bb", "ccc"][rng.below(3) as usize])).collect();
    cols.push(("lc", Arc::new(dict)));
    // list<int64>
    let mut offsets = vec![0i32];
    let mut items = Vec::new();
    for _ in 0..n {
        let len = rng.below(4) as usize;
        for _ in 0..len {
            items.push(rng.below(100) as i64);
        }
        offsets.push(items.len() as i32);
    }
    let item_field = Arc::new(Field::new("item", DataType::Int64, true));
    let list = ListArray::new(
        item_field,
        OffsetBuffer::new(offsets.clone().into()),
        Arc::new(Int64Array::from(items.clone())),
        None,
    );
    cols.push(("list", Arc::new(list)));
    // map<utf8, int64> with the same shape
    let keys: Vec<String> = (0..items.len()).map(|i| format!("k{i}")).collect();
    let entries = StructArray::from(vec![
        (Arc::new(Field::new("keys", DataType::Utf8, false)), Arc::new(StringArray::from(keys)) as ArrayRef),
        (Arc::new(Field::new("values", DataType::Int64, true)), Arc::new(Int64Array::from(items)) as ArrayRef),
    ]);
    let entries_field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
    let map =
        MapArray::try_new(entries_field, OffsetBuffer::new(offsets.into()), entries, None, false).expect("valid map");
    cols.push(("map", Arc::new(map)));
    // struct<x: int32, y: utf8>
    let st = StructArray::new(
        Fields::from(vec![Field::new("x", DataType::Int32, true), Field::new("y", DataType::Utf8, true)]),
        vec![
            Arc::new((0..n).map(|_| Some(rng.below(10) as i32)).collect::<Int32Array>()),
            Arc::new(StringArray::from((0..n).map(|i| Some(format!("y{i}"))).collect::<Vec<_>>())),
        ],
        None,
    );
    cols.push(("st", Arc::new(st)));
    let fields: Vec<Field> = cols.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).expect("valid all-types batch")
}

/// All batches as one.
pub(crate) fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(schema, batches).expect("batches share the schema")
}

/// The benchmark's event table (`shared/bench/peers.py`): sequential `id`, increasing `ts`
/// (exponential gaps over one day), Zipf `user_id` over 100k users, 8 event types, Zipf `url`
/// over 1000 URLs, log-normal `value` rounded to cents. Same distributions, not the same bytes.
pub(crate) fn bench_events(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let uni = |rng: &mut Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let zipf_cdf = |n: usize, s: f64| {
        let mut c = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 1..=n {
            acc += (i as f64).powf(-s);
            c.push(acc);
        }
        let total = acc;
        c.iter_mut().for_each(|x| *x /= total);
        c
    };
    let users = zipf_cdf(100_000, 1.1);
    let urls_cdf = zipf_cdf(1000, 1.0);
    let mut perm: Vec<u64> = (0..100_000).collect();
    for i in (1..perm.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    let words = [
        "red", "blue", "fast", "smart", "mini", "pro", "max", "eco", "retro", "ultra", "shoe", "lamp", "phone",
        "chair", "watch", "bag", "desk", "kettle", "jacket", "cable",
    ];
    let secs = ["products", "category", "blog", "help", "cart", "account", "search", "deals"];
    let urls: Vec<String> = (0..1000)
        .map(|i| {
            let n = 1 + i % 3;
            let w: Vec<&str> = (0..n).map(|_| words[rng.below(20) as usize]).collect();
            format!("https://shop.example.com/{}/{}-{i:04}", secs[i % 8], w.join("-"))
        })
        .collect();
    let types = ["view", "click", "scroll", "add_to_cart", "search", "purchase", "signup", "logout"];
    let probs = [0.40, 0.25, 0.12, 0.08, 0.07, 0.04, 0.03, 0.01];
    let mut ts = Vec::with_capacity(rows);
    let mut cum = 0.0f64;
    let mut gaps = Vec::with_capacity(rows);
    for _ in 0..rows {
        gaps.push(-uni(&mut rng).ln());
    }
    let total: f64 = gaps.iter().sum::<f64>() - gaps[0];
    let scale = (86_400_000.0 - 1.0) / total;
    for (i, g) in gaps.iter().enumerate() {
        if i > 0 {
            cum += g;
        }
        ts.push(1_704_067_200_000 + (cum * scale).floor() as i64);
    }
    let pick = |rng: &mut Rng, cdf: &[f64]| {
        let u = uni(rng);
        cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
    };
    let user: Vec<u64> = (0..rows).map(|_| 1_000_000 + perm[pick(&mut rng, &users)]).collect();
    let et: Vec<&str> = (0..rows)
        .map(|_| {
            let u = uni(&mut rng);
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    return types[i];
                }
            }
            types[7]
        })
        .collect();
    let url: Vec<&str> = (0..rows).map(|_| urls[pick(&mut rng, &urls_cdf)].as_str()).collect();
    let value: Vec<f64> = (0..rows)
        .map(|_| {
            let (u1, u2) = (uni(&mut rng), uni(&mut rng));
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            ((3.0 + z).exp() * 100.0).round() / 100.0
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
        Field::new("user_id", DataType::UInt64, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from((0..rows as u64).collect::<Vec<_>>())),
        Arc::new(TimestampMillisecondArray::from(ts)),
        Arc::new(UInt64Array::from(user)),
        Arc::new(StringArray::from(et)),
        Arc::new(StringArray::from(url)),
        Arc::new(Float64Array::from(value)),
    ];
    RecordBatch::try_new(schema, cols).expect("batch")
}
