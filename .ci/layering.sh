#!/usr/bin/env bash
# The layering check: dependencies point one way, server -> engine -> {sql, wal, columnstore},
# and the async/network stack lives in `server` only. Uses the normal (non-dev) dependency tree.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail=0
deps() { cargo tree --locked -e normal -p "$1" --prefix none --format '{p}' | awk '{print $1}' | sort -u; }

for crate in sluice-vfs sluice-wal sluice-columnstore sluice-sql sluice; do
    d=$(deps "$crate")
    for banned in tokio pgwire axum hyper; do
        if grep -qx "$banned" <<<"$d"; then
            echo "layering: $crate depends on $banned (only sluice-server may)"; fail=1
        fi
    done
done
for crate in sluice-wal sluice-columnstore sluice-sql; do
    d=$(deps "$crate" | grep -vx "$crate" || true)
    for other in sluice-wal sluice-columnstore sluice-sql sluice sluice-server; do
        if grep -qx "$other" <<<"$d"; then
            echo "layering: $crate depends on $other (wal, columnstore and sql are independent leaves)"; fail=1
        fi
    done
done
d=$(deps sluice | grep -vx sluice || true)
if grep -qx sluice-server <<<"$d"; then
    echo "layering: the engine depends on the server"; fail=1
fi
[ "$fail" = 0 ] && echo "layering: ok (server -> engine -> {sql, wal, columnstore} -> vfs; tokio only in server)"
exit "$fail"
