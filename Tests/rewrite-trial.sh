#!/usr/bin/env bash
# A nanoGPT run that rewrites ckpt.pt in place every second, under the daemon with its default --quiet-seconds (10):
# every save must be evaluated once (run by hand; needs python3 with torch, and a debug or release build).
#
#   Tests/rewrite-trial.sh [SAVES] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
saves=${1:-4}
seconds=${2:-1}
binary=$(ls -t "$root"/.build/release/extrapolate "$root"/.build/debug/extrapolate 2>/dev/null | head -1 || true)
[ -x "$binary" ] || { echo "rewrite-trial: build first (swift build)" >&2; exit 2; }
python3 -c 'import torch' 2>/dev/null || { echo "rewrite-trial: needs python3 with torch (pip install torch)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null; rm -rf "$work"' EXIT
# 40,000 random tokens of the model's 96-token vocabulary, little-endian uint16.
python3 -c "import random,struct; random.seed(1); open('$work/tokens.u16','wb').write(struct.pack('<40000H', *[random.randrange(96) for _ in range(40000)]))"
mkdir -p "$work/runs/nano"
EXTRAPOLATE_KEEP_BLAS_CORETYPE=1 "$binary" watch "$work/runs" --data "$work/tokens.u16" --lengths 1x,2x \
    --store "$work/state/results.sqlite" 2> "$work/daemon.log" &
daemon=$!
sleep 2
python3 "$root/Tests/rewrite-trial.py" "$work/runs/nano" "$seconds" 300 "$saves" 100
for _ in $(seq 1 120); do
    done=$("$binary" status --store "$work/state/results.sqlite" --json 2>/dev/null |
        python3 -c 'import json,sys; print(sum(c["state"] == "done" for r in json.load(sys.stdin)["runs"] for c in r["checkpoints"]))')
    [ "$done" -ge "$saves" ] && break
    sleep 1
done
"$binary" status --store "$work/state/results.sqlite" | grep -v '^note'
"$binary" results --store "$work/state/results.sqlite" --run nano | grep -v '^note'
steps=$("$binary" results --store "$work/state/results.sqlite" --run nano --json |
    python3 -c 'import json,sys; print(sorted({r["step"] for r in json.load(sys.stdin)}))')
expected=$(python3 -c "print(list(range(300, 300 + 100 * $saves, 100)))")
echo "steps evaluated: $steps (saved: $expected)"
[ "$steps" = "$expected" ] && echo "rewrite-trial: every save was evaluated" || { echo "rewrite-trial: FAILED" >&2; exit 1; }
