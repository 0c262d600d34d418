#!/usr/bin/env bash
# Fleet throughput: (checkpoint, length) results per minute on the demo runs with 1, 2, 3 … workers sharing one
# PostgreSQL store, each worker on one thread, beside one discoverer (watch --no-evaluate). A throw-away cluster is
# started unless EXTRAPOLATE_TEST_POSTGRES names a server.
#
#   Benchmarks/fleet-throughput.sh [WORKER COUNTS…]     # default: 1 2 3
#
# Prints one line per count: results, seconds from the first claim to the last result, results per minute, and the
# ratio to one worker measured in the same run. Build first (swift build -c release, or swift build).
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-1 2 3}")
[ $# -eq 0 ] && counts=(1 2 3)
# The newer of the release and debug builds (or $EXTRAPOLATE_BINARY).
binary=${EXTRAPOLATE_BINARY:-$(ls -t .build/release/extrapolate .build/debug/extrapolate 2>/dev/null | head -1)}
settings=(--data Datasets/kjv/valid.tokens.zst --lengths 1x,2x,4x,8x,16x --budget 4096)

admin=${EXTRAPOLATE_TEST_POSTGRES:-}
if [ -z "$admin" ]; then
    cluster=$(mktemp -d "${TMPDIR:-/tmp}/extrapolate-bench-pg.XXXXXX")
    trap 'Scripts/postgres-cluster stop "$cluster"' EXIT
    admin=$(Scripts/postgres-cluster start "$cluster")
fi
base=${admin%%\?*}
base=${base%/*}
baseline=""
for count in "${counts[@]}"; do
    db="bench_$(date +%s%N)"
    psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
    url="$base/$db?sslmode=disable"
    logs=$(mktemp -d)
    "$binary" watch Datasets/demo --no-evaluate --store "$url" --quiet-seconds 0 "${settings[@]}" 2>"$logs/discoverer" &
    discoverer=$!
    expected=$((15 * 5))
    # Jobs are queued before the workers start, so the clock measures evaluation alone.
    until [ "$(psql "$url" -Atc "SELECT count(*) FROM jobs" 2>/dev/null || echo 0)" = 15 ]; do sleep 0.2; done
    start=$(date +%s.%N)
    pids=()
    for i in $(seq "$count"); do
        "$binary" worker --store "$url" --threads 1 2>"$logs/worker$i" &
        pids+=($!)
    done
    until [ "$(psql "$url" -Atc "SELECT count(*) FROM results")" = "$expected" ]; do sleep 0.2; done
    end=$(date +%s.%N)
    kill "${pids[@]}" "$discoverer" 2>/dev/null || true
    wait 2>/dev/null || true
    seconds=$(echo "$end - $start" | bc -l)
    rate=$(echo "$expected * 60 / $seconds" | bc -l)
    [ -z "$baseline" ] && baseline=$rate
    printf '%d worker(s): %d results in %.1f s: %.0f per minute (%.2f× one worker)\n' \
        "$count" "$expected" "$seconds" "$rate" "$(echo "$rate / $baseline" | bc -l)"
    psql "$admin" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
    rm -rf "$logs"
done
