//! Model tests of the write-ahead log: seeded random sequences of appends, syncs, crashes,
//! injected faults, reopens, reads and truncations on the simulated file system, checked
//! against a plain in-memory model. A failure prints the seed; replay it with
//! `SLUICE_SEED=<seed> cargo nextest run wal_model`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sluice_tests::{payload_for, seed_from_env};
use sluice_vfs::{Crash, Rng, SimFs};
use sluice_wal::{Codec, Durability, Error, SeqNo, Wal, WalOptions};

const DIR: &str = "/data/s/0/wal";

/// One record as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    seq: u64,
    count: u32,
    payload: Vec<u8>,
}

struct Model {
    /// Records in the log, in order, from `first` on. Only acknowledged ones, plus unacknowledged
    /// ones that recovery showed to have survived.
    recs: Vec<Rec>,
    first: u64,
    next: u64,
}

fn options(fs: &SimFs, durability: Durability, rng: &mut Rng) -> WalOptions {
    let codec = [Codec::None, Codec::Lz4, Codec::Zstd][rng.below(3) as usize];
    WalOptions::default().fs(fs.shared()).durability(durability).codec(codec).segment_bytes(4096 + rng.below(8192))
}

fn read_back(wal: &Wal, from: u64) -> Result<Vec<Rec>, Error> {
    wal.reader(SeqNo(from))?.map(|r| r.map(|r| Rec { seq: r.seq.0, count: r.count, payload: r.payload })).collect()
}

/// After a crash or failure: the log must hold every record of the model, then possibly some of
/// the `in_flight` records as a contiguous prefix, and nothing else.
fn reconcile(wal: &Wal, model: &mut Model, in_flight: &[Rec], seed: u64, step: usize) {
    let got = read_back(wal, model.first).unwrap_or_else(|e| panic!("seed {seed} step {step}: read failed: {e}"));
    assert!(
        got.len() >= model.recs.len(),
        "seed {seed} step {step}: lost acknowledged records: have {}, model {}",
        got.len(),
        model.recs.len()
    );
    assert_eq!(&got[..model.recs.len()], &model.recs[..], "seed {seed} step {step}: acknowledged records differ");
    let extra = &got[model.recs.len()..];
    assert!(extra.len() <= in_flight.len(), "seed {seed} step {step}: records that were never appended");
    assert_eq!(
        extra,
        &in_flight[..extra.len()],
        "seed {seed} step {step}: surviving unacknowledged records are not a prefix"
    );
    model.recs.extend_from_slice(extra);
    if let Some(r) = extra.last() {
        model.next = r.seq + r.count as u64;
    }
    assert_eq!(wal.next_seq().0, model.next, "seed {seed} step {step}: next sequence number");
}

fn run_model(seed: u64, durability: Durability, steps: usize) {
    let mut rng = Rng::new(seed);
    let fs = SimFs::new(seed ^ 0x5eed);
    let crash_kind = match durability {
        Durability::Fsync => Crash::PowerLossTorn,
        _ => Crash::Process,
    };
    let mut wal = Some(Wal::open(DIR, options(&fs, durability, &mut rng)).expect("open"));
    let mut model = Model { recs: Vec::new(), first: 0, next: 0 };
    let mut ids = 0u64;
    for step in 0..steps {
        let w = wal.as_ref().expect("open log");
        match rng.below(100) {
            // append and wait
            0..=54 => {
                ids += 1;
                let payload = payload_for(ids, &mut rng, 600);
                let count = 1 + rng.below(4) as u32;
                let seq = w.append_n(payload.clone(), count).unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                assert_eq!(seq.0, model.next, "seed {seed} step {step}");
                model.recs.push(Rec { seq: seq.0, count, payload });
                model.next += count as u64;
            }
            // read from a random position
            55..=64 => {
                if model.recs.is_empty() {
                    continue;
                }
                let i = rng.below(model.recs.len() as u64) as usize;
                let got = read_back(w, model.recs[i].seq).expect("read");
                assert_eq!(got, model.recs[i..], "seed {seed} step {step}: read from {}", model.recs[i].seq);
            }
            // explicit sync
            65..=69 => w.sync().expect("sync"),
            // submit a few without waiting, then crash
            70..=77 => {
                let mut in_flight = Vec::new();
                let mut tickets = Vec::new();
                for _ in 0..rng.range(1, 5) {
                    ids += 1;
                    let payload = payload_for(ids, &mut rng, 600);
                    let t = w.submit(payload.clone(), 1).expect("submit");
                    in_flight.push(Rec { seq: t.seq().0, count: 1, payload });
                    tickets.push(t);
                }
                // wait for a random prefix of them: those are acknowledged
                let acked = rng.below(tickets.len() as u64 + 1) as usize;
                for t in tickets.drain(..acked) {
                    t.wait().expect("ack");
                }
                let (acked_recs, pending) = in_flight.split_at(acked);
                model.recs.extend_from_slice(acked_recs);
                if let Some(r) = acked_recs.last() {
                    model.next = r.seq + 1;
                }
                fs.crash(crash_kind);
                drop(wal.take());
                drop(tickets);
                let w = Wal::open(DIR, options(&fs, durability, &mut rng))
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: reopen after crash: {e}"));
                reconcile(&w, &mut model, pending, seed, step);
                wal = Some(w);
            }
            // injected write or sync failure: the log poisons; acknowledged records survive
            78..=82 => {
                if rng.chance(0.5) {
                    fs.fail_write_after(rng.below(3));
                } else {
                    fs.fail_sync_after(rng.below(3));
                }
                let mut in_flight = Vec::new();
                for _ in 0..6 {
                    ids += 1;
                    let payload = payload_for(ids, &mut rng, 300);
                    let expected_seq = model.next + in_flight.len() as u64;
                    match w.append(payload.clone()) {
                        Ok(seq) => {
                            assert_eq!(seq.0, expected_seq);
                            model.recs.push(Rec { seq: seq.0, count: 1, payload });
                            model.next += 1;
                        }
                        Err(Error::Poisoned { .. }) => {
                            in_flight.push(Rec { seq: expected_seq, count: 1, payload });
                            break;
                        }
                        Err(e) => panic!("seed {seed} step {step}: unexpected error {e}"),
                    }
                }
                fs.clear_faults();
                let poisoned = !in_flight.is_empty();
                if poisoned {
                    assert!(w.append(b"refused".to_vec()).is_err(), "seed {seed}: poisoned log accepted a write");
                }
                if poisoned && durability == Durability::Os && rng.chance(0.5) {
                    fs.crash(Crash::Process);
                } else if poisoned && durability == Durability::Fsync {
                    fs.crash(Crash::PowerLossTorn);
                }
                drop(wal.take());
                let w = Wal::open(DIR, options(&fs, durability, &mut rng))
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: reopen after fault: {e}"));
                reconcile(&w, &mut model, &in_flight, seed, step);
                wal = Some(w);
            }
            // clean reopen
            83..=87 => {
                drop(wal.take());
                let w = Wal::open(DIR, options(&fs, durability, &mut rng)).expect("reopen");
                reconcile(&w, &mut model, &[], seed, step);
                wal = Some(w);
            }
            // truncation under a pin
            88..=94 => {
                let pin = if model.recs.is_empty() {
                    model.next
                } else {
                    model.recs[rng.below(model.recs.len() as u64) as usize].seq
                };
                w.set_pin(Some(SeqNo(pin)));
                let target = model.first + rng.below(model.next - model.first + 1);
                w.truncate_before(SeqNo(target)).expect("truncate");
                let first = w.first_seq().0;
                assert!(first <= pin.max(model.first), "seed {seed} step {step}: retention passed the pin");
                assert!(first <= target.max(model.first), "seed {seed} step {step}: removed too much");
                model.recs.retain(|r| r.seq >= first);
                model.first = first;
                let got = read_back(w, first).expect("read after truncate");
                assert_eq!(got, model.recs, "seed {seed} step {step}: after truncation");
                if first > 0 {
                    assert!(matches!(w.reader(SeqNo(first - 1)), Err(Error::Truncated { .. })));
                }
            }
            // power loss with everything acknowledged (Fsync) / process crash (Os)
            _ => {
                fs.crash(crash_kind);
                drop(wal.take());
                let w = Wal::open(DIR, options(&fs, durability, &mut rng)).expect("reopen after crash");
                reconcile(&w, &mut model, &[], seed, step);
                wal = Some(w);
            }
        }
    }
    let w = wal.take().expect("open log");
    assert_eq!(read_back(&w, model.first).expect("final read"), model.recs, "seed {seed}: final state");
}

#[test]
fn wal_model_fsync_power_loss() {
    let base = seed_from_env(0xA11CE);
    for i in 0..12 {
        run_model(base + i, Durability::Fsync, 250);
    }
}

#[test]
fn wal_model_os_process_crash() {
    let base = seed_from_env(0xB0B);
    for i in 0..12 {
        run_model(base + i, Durability::Os, 250);
    }
}

#[test]
fn wal_concurrent_appenders_read_back_exactly_once_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wal");
    let opts = WalOptions::default().durability(Durability::Fsync).segment_bytes(64 << 10);
    let wal = Arc::new(Wal::open(&path, opts.clone()).expect("open"));
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 400;
    // a subscriber follows the appends live
    let mut sub = wal.subscribe(SeqNo(0)).expect("subscribe");
    let follower = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while (seen.len() as u64) < THREADS * PER_THREAD {
            match sub.recv_timeout(Duration::from_secs(30)).expect("recv") {
                Some(r) => seen.push(r),
                None => panic!("subscriber timed out after {} records", seen.len()),
            }
        }
        seen
    });
    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(t);
                let mut last = None;
                for i in 0..PER_THREAD {
                    let mut p = payload_for(t * 1_000_000 + i, &mut rng, 200);
                    p.push(t as u8);
                    let seq = wal.append(p).expect("append");
                    assert!(last < Some(seq), "a thread's own appends are ordered");
                    last = Some(seq);
                }
            })
        })
        .collect();
    for a in appenders {
        a.join().expect("appender");
    }
    let stats = wal.stats();
    assert_eq!(stats.next_seq, SeqNo(THREADS * PER_THREAD));
    assert!(stats.batches <= stats.appends);
    let live = follower.join().expect("follower");
    drop(wal);
    let wal = Wal::open(&path, opts).expect("reopen");
    let all: Vec<_> = wal.reader(SeqNo(0)).expect("reader").collect::<Result<_, _>>().expect("read");
    assert_eq!(all, live, "live subscription and read-back agree");
    let mut ids = HashSet::new();
    let mut per_thread_last = vec![None; THREADS as usize];
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, SeqNo(i as u64), "sequence numbers are dense and ordered");
        let id = u64::from_le_bytes(r.payload[..8].try_into().expect("8 bytes"));
        assert!(ids.insert(id), "record {id} read twice");
        let t = *r.payload.last().expect("thread byte") as usize;
        assert!(per_thread_last[t] < Some(id), "thread {t}'s records out of order");
        per_thread_last[t] = Some(id);
    }
    assert_eq!(ids.len() as u64, THREADS * PER_THREAD);
}

#[test]
fn wal_reader_sees_nothing_half_written_under_concurrent_appends() {
    let fs = SimFs::new(77);
    let wal = Arc::new(Wal::open(DIR, WalOptions::default().fs(fs.shared()).segment_bytes(8192)).expect("open"));
    let w = wal.clone();
    let writer = std::thread::spawn(move || {
        let mut rng = Rng::new(1);
        for id in 0..2000u64 {
            w.append(payload_for(id, &mut rng, 500)).expect("append");
        }
    });
    // The subscription reads while the writer writes and rolls segments; every record it
    // returns must be whole and in order.
    let mut sub = wal.subscribe(SeqNo(0)).expect("subscribe");
    let mut check = Rng::new(1);
    for id in 0..2000u64 {
        let r = sub.recv_timeout(Duration::from_secs(30)).expect("read").expect("record before timeout");
        assert_eq!(r.payload, payload_for(id, &mut check, 500), "record {id}");
    }
    writer.join().expect("writer");
}
