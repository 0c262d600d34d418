#!/usr/bin/env bash
# The daemon survives kill -9: TRIALS times, `extrapolate watch` is started on the demo runs and killed with SIGKILL
# at a random moment of its evaluation, then restarted; at the end every (checkpoint, series, length) has exactly one
# result, equal to an uninterrupted run's.
#
#   Tests/kill-test.sh [TRIALS] [BINARY] [BUDGET] [TASKS]   # by hand: Tests/kill-test.sh 50 .build/release/extrapolate
#
# TRIALS defaults to 50, BUDGET (targets per length) to 16384 and TASKS to perplexity; with
# TASKS=perplexity,passkey each checkpoint's passkey job (bytes, 3 trials, depths 0/50/100) is killed too, and its
# cells are compared as well. The Swift tests run 5 trials on 4096 with both tasks (DaemonProcesses in
# Tests/ServiceTests). Prints the trials, how many kills landed
# mid-evaluation, and the time lost to restarts (all trials' time minus the uninterrupted run's).
set -euo pipefail
trials=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${2:-$root/.build/debug/extrapolate}
budget=${3:-16384}
tasks=${4:-perplexity}
[ -x "$binary" ] || { echo "kill-test: no executable at $binary (swift build first)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/extrapolate-kill-XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$root/Datasets/demo" "$work/runs"
rm -f "$work/runs/train.py"
data="$root/Datasets/kjv/valid.tokens.zst"
# Enough work per checkpoint that kills land inside evaluations: the standard grid, a 16k-token span.
watch=(watch "$work/runs" --data "$data" --budget "$budget" --bootstrap 100 --quiet-seconds 0 --threads 2 --log-level error)
if [[ $tasks == *passkey* ]]; then
    watch+=(--tasks "$tasks" --bytes --trials 3 --depths 0,50,100)
fi
now() { date +%s.%N; }

start=$(now)
"$binary" "${watch[@]}" --store "$work/reference.sqlite" --once > /dev/null
reference=$(echo "$(now) - $start" | bc)

mid=0
early=0
unopened=0
start=$(now)
for ((trial = 1; trial <= trials; trial++)); do
    "$binary" "${watch[@]}" --store "$work/killed.sqlite" > /dev/null 2>&1 &
    pid=$!
    # A random moment: one trial in four within the first 0.3 s (start-up: opening and migrating the store, discovery,
    # hashing), the others spread over about twice the uninterrupted run, so every kill has work to interrupt.
    permille=$((RANDOM % 1000))
    if ((RANDOM % 4 == 0)); then
        early=$((early + 1))
        sleep "$(echo "scale=3; $permille / 1000 * 0.3" | bc)"
    else
        sleep "$(echo "scale=3; 0.2 + $permille / 1000 * 2 * $reference / $trials" | bc)"
    fi
    kill -9 "$pid"
    wait "$pid" 2> /dev/null || true  # 137: killed
    # A job left `running` in the store: the kill landed inside an evaluation. A kill before the store was
    # created (or while its first migrations ran) leaves nothing to read yet.
    state=""
    if [[ -f $work/killed.sqlite ]]; then
        state=$("$binary" status --store "$work/killed.sqlite" --json 2> /dev/null) || unopened=$((unopened + 1))
    fi
    if [[ $state == *'"running"'* ]]; then
        mid=$((mid + 1))
    fi
done
"$binary" "${watch[@]}" --store "$work/killed.sqlite" --once > /dev/null
killed=$(echo "$(now) - $start" | bc)

# Every column but the times (found by name in the header): the seconds an evaluation took, a passkey cell's
# tokens per second and when it was stored.
table() {
    local csv keep
    csv=$("$binary" results --store "$1" --csv "${@:2}")
    keep=$(head -1 <<< "$csv" | tr , '\n' | grep -nvE '^(seconds|tokens_per_second|finished)$' | cut -d: -f1 | paste -sd,)
    # The reason column of a passkey cell quotes a comma; no kept column after it is cut wrongly, as every row has it.
    cut -d, -f"$keep" <<< "$csv" | sort
}
table "$work/reference.sqlite" > "$work/reference.csv"
table "$work/killed.sqlite" > "$work/killed.csv"
if [[ $tasks == *passkey* ]]; then
    table "$work/reference.sqlite" --task passkey >> "$work/reference.csv"
    table "$work/killed.sqlite" --task passkey >> "$work/killed.csv"
fi
rows=$(grep -cvE '^run,(checkpoint|step),' "$work/reference.csv")  # all but the header lines
if ! diff -u "$work/reference.csv" "$work/killed.csv" > "$work/diff.txt"; then
    head -40 "$work/diff.txt" >&2
    echo "kill-test: FAILED: results after $trials kills differ from the uninterrupted run's" >&2
    exit 1
fi
echo "kill-test: $trials trials ($early within 0.3 s of a start, $mid found a job running); $rows results identical to the uninterrupted run's, none twice"
echo "kill-test: the store could not be read right after $unopened of the kills (a kill before its first migration); every restart opened it"
printf 'kill-test: uninterrupted %.1f s; with kills and restarts %.1f s; lost to restarts %.1f s (%.2f s per kill)\n' \
    "$reference" "$killed" "$(echo "$killed - $reference" | bc)" "$(echo "($killed - $reference) / ($mid + ($mid == 0))" | bc -l)"
