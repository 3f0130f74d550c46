#!/usr/bin/env bash
# Long runs of the kill -9 test (tests/it/crash.rs): builds the server binary, then runs the
# test with SLUICE_CRASH_ROUNDS. CI runs the same test with 20 rounds.
#
#   tests/crash/run.sh --rounds 1000            # a random seed (printed)
#   tests/crash/run.sh --rounds 20 --seed 42    # replay a seed from a failure message
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rounds=20
seed=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

# --workspace --tests: the same features as the test build below, so nothing is built twice.
cargo build --workspace --bins --tests
export SLUICE_CRASH_ROUNDS=$rounds
if [ -n "$seed" ]; then export SLUICE_CRASH_SEED=$seed; fi
# cargo test, not nextest: the CI profile would stop a long run after 120 s.
exec cargo test --workspace --test integration -- crash::crash_kill9_server_keeps_acknowledged_rows --exact --nocapture
