#!/usr/bin/env bash
# Fuzz smoke: runs every cargo-fuzz target for SECONDS (default 60) each, on nightly.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: SANITIZER (default none; `address` is slower to build and run),
# CARGO_TARGET_DIR (default fuzz/target), JOBS (libFuzzer workers per target, default 1).
# New inputs go to fuzz/.work/corpus/<target>/ (not committed); the seeds in
# fuzz/corpus/<target>/ are read, never written. Crashes land in fuzz/artifacts/<target>/,
# where `cargo test -p sluice-tests --test integration fuzz_corpus` replays them on stable.
# Prints a summary line per target and exits non-zero if any target crashed.
set -euo pipefail

cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(wal_frame manifest part sql pgwire http_ingest)
fi
SANITIZER="${SANITIZER:-none}"
JOBS="${JOBS:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "run.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

FLAGS=(-O -a --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")
cargo +nightly fuzz build "${FLAGS[@]}"

PARALLEL=()
if [ "$JOBS" -gt 1 ]; then
    PARALLEL=(-jobs="$JOBS" -workers="$JOBS")
fi
mkdir -p .work/logs
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p ".work/corpus/$t" "artifacts/$t"
    before=$(ls "artifacts/$t" | wc -l)
    log=".work/logs/$t.log"
    start=$(date +%s)
    set +e
    cargo +nightly fuzz run "${FLAGS[@]}" "$t" ".work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -rss_limit_mb=4096 -timeout=20 \
        -print_final_stats=1 "${PARALLEL[@]}" >"$log" 2>&1
    rc=$?
    set -e
    took=$(( $(date +%s) - start ))
    after=$(ls "artifacts/$t" | wc -l)
    # Executions: libFuzzer's final stats, or (after a crash, which has none) the last status line.
    execs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    if [ "$execs" = 0 ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
        execs="${execs:-0}"
    fi
    echo "$t: ${took}s (limit ${SECONDS_PER_TARGET}s), $execs executions, $((after - before)) new crash(es), exit $rc (log: fuzz/$log)"
    if [ "$rc" -ne 0 ] || [ "$after" -ne "$before" ]; then
        failed=1
    fi
done
exit $failed
