#!/usr/bin/env bash
# A/B of the fused attention kernel: builds Sources/CKernels at a git revision (default HEAD) and as it is in the
# work tree as two shared libraries, then times ck_attention_rows of one head on the same random inputs,
# alternating the two builds, and prints the min and median of each and their ratio (B = work tree). For changes to
# the C kernels, where a whole `score` run is too noisy to show a few per cent.
#
#   Benchmarks/kernels/attention_ab.sh [REV] [LENGTH] [HEAD_WIDTH] [ALIBI 0|1] [REPEATS]
#   Benchmarks/kernels/attention_ab.sh 43e09d6 4096 64 0 21
#
# The kernel set is the best this CPU has; EXTRAPOLATE_KERNELS=avx2|generic forces another, as in the engine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rev="${1:-HEAD}" length="${2:-4096}" width="${3:-64}" alibi="${4:-0}" repeats="${5:-21}"
if ! command -v clang >/dev/null; then echo "attention_ab.sh: clang not found (it ships with the Swift toolchain)" >&2; exit 2; fi
if (( repeats > 64 )); then echo "attention_ab.sh: at most 64 repeats" >&2; exit 2; fi
if ! git -C "$root" rev-parse --quiet --verify "$rev^{commit}" >/dev/null; then
    echo "attention_ab.sh: '$rev' is not a commit of this repository (try HEAD, a hash or a tag)" >&2; exit 2
fi
for number in "$length" "$width" "$alibi" "$repeats"; do
    [[ "$number" =~ ^[0-9]+$ ]] || { echo "attention_ab.sh: '$number' is not a whole number; usage in the header" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a"
git -C "$root" archive "$rev" Sources/CKernels | tar -x -C "$work/a"
flags=(-O3 -ffp-contract=fast -Wno-psabi -std=gnu11 -fPIC -shared)   # as Package.swift builds CKernels
build() { clang "${flags[@]}" -I"$1/include" -I"$1" "$1"/*.c -o "$2" -lm; }
build "$work/a/Sources/CKernels" "$work/a.so"
build "$root/Sources/CKernels" "$work/b.so"
clang -O2 -I"$root/Sources/CKernels/include" "$root/Benchmarks/kernels/attention_ab.c" -o "$work/ab" -ldl -lm
echo "A = Sources/CKernels at $rev, B = the work tree; length $length, head width $width, ALiBi $alibi, 1 thread"
cd "$work" && ./ab ./a.so ./b.so "$length" "$width" "$alibi" "$repeats"
