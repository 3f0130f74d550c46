//! sluice-benches: criterion micro benchmarks named `<crate>_<thing>` (see `benches/`), and from
//! issue F the `sluice-bench` harness that speaks the peer benchmark's JSON contract.
