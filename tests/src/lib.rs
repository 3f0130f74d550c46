//! sluice-tests: helpers shared by the workspace's single integration-test binary (`it/`).
//!
//! The tests themselves live in `it/`, one module per subject (`wal_model.rs`, ...), so that the
//! whole workspace links one test binary.

use sluice_vfs::Rng;

/// Fuzz entry points, one per target of the cargo-fuzz project in `fuzz/`.
pub mod fuzz;

/// The seed of a randomized test: `SLUICE_SEED` from the environment if set (to replay a
/// failure), otherwise `default`. Tests print it on failure.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("SLUICE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A payload that encodes its own identity and length, so a reader can check it exactly.
pub fn payload_for(id: u64, rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = 8 + rng.below(max_len.saturating_sub(8) as u64 + 1) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&id.to_le_bytes());
    while v.len() < len {
        v.push((id as u8).wrapping_add(v.len() as u8));
    }
    v
}
