#!/usr/bin/env bash
# Installs what CI and the test suite need, if missing: cargo-nextest, rustfmt/clippy, the
# Python packages the interop and real-client tests use (pyarrow and duckdb open our Parquet
# parts; psycopg 3 talks to the server), node-postgres for the node client test (into
# tests/clients/node, pinned by its package-lock.json) and, when a JDK is installed, pgjdbc
# (Debian's libpostgresql-jdbc-java). Idempotent: a second run installs nothing.
set -euo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$ci")"

if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
for comp in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${comp}"; then
        rustup component add "$comp"
    fi
done
if ! python3 -c 'import pyarrow, duckdb, psycopg' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check -r "$ci/requirements.txt"
fi
echo "cargo-nextest $(cargo nextest --version | head -1 | awk '{print $2}'), python $(python3 -c 'import pyarrow, duckdb, psycopg; print("pyarrow", pyarrow.__version__, "duckdb", duckdb.__version__, "psycopg", psycopg.__version__)')"

# node-postgres, at the version package-lock.json pins.
node_dir="$root/tests/clients/node"
if command -v npm >/dev/null 2>&1; then
    want=$(cd "$node_dir" && node -p "require('./package-lock.json').packages['node_modules/pg'].version")
    have=$(cd "$node_dir" && node -p "try { require('./node_modules/pg/package.json').version } catch (e) { '' }")
    if [ "$want" != "$have" ]; then
        (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    echo "node $(node --version), pg $want"
else
    echo "install-deps: npm not found: the node-postgres client test cannot run" >&2
fi

# pgjdbc, only where a JDK is installed (the test skips without java).
if command -v java >/dev/null 2>&1; then
    jar=/usr/share/java/postgresql.jar
    if [ ! -f "$jar" ] && command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo -n"
        $sudo apt-get install -y -q libpostgresql-jdbc-java >/dev/null \
            || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q libpostgresql-jdbc-java >/dev/null; }
    fi
    if [ -f "$jar" ]; then
        echo "pgjdbc $jar"
    else
        echo "install-deps: pgjdbc not installed ($jar missing): the pgjdbc client test cannot run" >&2
    fi
fi
