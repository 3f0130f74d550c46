//! Fuzz target `sql`: see `sluice_tests::fuzz::sql`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: sluice_tests::fuzz::init_fuzzer(), |data: &[u8]| sluice_tests::fuzz::fuzz_one(sluice_tests::fuzz::sql, data));
