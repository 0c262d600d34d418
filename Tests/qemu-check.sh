#!/usr/bin/env bash
# The engine on CPUs without AVX-512 (and without AVX at all), emulated by qemu-user (Debian: qemu-user):
#   -cpu Haswell   AVX2 + FMA, no AVX-512: our avx2 kernels, OpenBLAS's Haswell kernels
#   -cpu Nehalem   SSE4.2 only: our generic kernels, OpenBLAS's Nehalem kernels
# For each, the engine's reference tests (every fixture family against transformers, max |Δ log-prob| ≤ 1e-4) run
# under emulation, and `extrapolate score` says which kernel sets it chose. Before the kernel sets existed, the
# first attention call died with SIGILL here.
#
#   Tests/qemu-check.sh [FILTER]        # default FILTER: EngineTests (add EvaluationTests for more; ~7 min on Nehalem)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
filter=${1:-EngineTests}
tests=$(find "$root/.build" -path '*debug/ExtrapolatePackageTests.xctest' -type f | head -1)
binary=$(find "$root/.build" -path '*debug/extrapolate' -type f | head -1)
command -v qemu-x86_64 > /dev/null || { echo "qemu-check: qemu-x86_64 not installed (apt-get install qemu-user)" >&2; exit 2; }
[ -n "$tests" ] && [ -n "$binary" ] || { echo "qemu-check: build first (swift build --build-tests)" >&2; exit 2; }
tokens="$root/Tests/Fixtures/tokens/random-64.u16"
for cpu in Haswell Nehalem; do
    sets=$(env -u OPENBLAS_CORETYPE qemu-x86_64 -cpu "$cpu" "$binary" score --checkpoint "$root/Tests/Fixtures/models/mpt" \
        --tokens "$tokens" --length 63 2>&1 | grep '^threads')
    echo "qemu-check: -cpu $cpu: $sets"
    start=$(date +%s)
    summary=$(env -u OPENBLAS_CORETYPE qemu-x86_64 -cpu "$cpu" "$tests" --testing-library swift-testing --filter "$filter" 2>&1 |
        tail -1)
    echo "qemu-check: -cpu $cpu: $summary ($(($(date +%s) - start)) s)"
    [[ $summary == *passed* ]] || { echo "qemu-check: FAILED under -cpu $cpu" >&2; exit 1; }
done
