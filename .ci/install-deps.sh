#!/usr/bin/env bash
# Installs what CI and the test suite need, if missing: cargo-nextest, rustfmt/clippy, and the
# Python packages the interop tests use (pyarrow and duckdb open our Parquet parts).
set -euo pipefail

if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
for comp in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${comp}"; then
        rustup component add "$comp"
    fi
done
if ! python3 -c 'import pyarrow, duckdb' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "${BASH_SOURCE[0]}")/requirements.txt"
fi
echo "cargo-nextest $(cargo nextest --version | head -1 | awk '{print $2}'), python $(python3 -c 'import pyarrow, duckdb; print("pyarrow", pyarrow.__version__, "duckdb", duckdb.__version__)')"
