#!/usr/bin/env bash
# The peer benchmark with sluice as the third column: installs the Python packages, builds
# sluice-bench in release mode, and runs ../shared/bench/peers.py at 1M and 10M rows.
# Results (JSON + markdown) land in bench/results/. Takes ~10 minutes at 10M rows on 2 cores.
#   ROWS="1000000" bash bench/run-peers.sh     # only the 1M run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PEERS=${PEERS:-../shared/bench/peers.py}
ROWS=${ROWS:-"1000000 10000000"}
python3 -m pip install --quiet --disable-pip-version-check duckdb==2.0.1 chdb==4.4.0 pyarrow==26.0.1 numpy
cargo build --release --locked -p sluice-benches --bin sluice-bench
mkdir -p bench/results
for rows in $ROWS; do
    python3 "$PEERS" --rows "$rows" --external "sluice=$PWD/target/release/sluice-bench" \
        --out-dir bench/results --tag sluice
done
