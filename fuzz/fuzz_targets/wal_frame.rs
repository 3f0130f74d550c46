//! Fuzz target `wal_frame`: see `sluice_tests::fuzz::wal_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: sluice_tests::fuzz::init_fuzzer(), |data: &[u8]| sluice_tests::fuzz::fuzz_one(sluice_tests::fuzz::wal_frame, data));
