#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser with libFuzzer (Docs/reliability.md has the campaign and its findings).
#
#   Tests/fuzz/run.sh TARGET [SECONDS|-runs=N] [libFuzzer flags…]   # one target; default 60 seconds
#   Tests/fuzz/run.sh all [SECONDS|-runs=N]                          # every target in turn (CI: a few seconds each)
#   Tests/fuzz/run.sh keep TARGET                                    # merge new coverage into Tests/fuzz/corpus/TARGET
#   Tests/fuzz/run.sh list                                           # the targets
#   EXTRAPOLATE_FUZZ_CONFIGURATION=release Tests/fuzz/run.sh …      # optimised harness, for campaigns
#
# Builds the harness first (EXTRAPOLATE_FUZZ=1 swift build --product extrapolate-fuzz, in .build-fuzz: the project's
# modules with -sanitize=fuzzer,address; 4–6 minutes the first time). Each target starts from its seeds
# (Tests/fuzz/corpus/TARGET, written by Tests/fuzz/make_seeds.py) and its dictionary (Tests/fuzz/dict/TARGET.dict);
# what it learns grows in .build-fuzz/corpus/TARGET. A crash, a hang (-timeout 10 s), a leak, or an input that makes a
# parser hold more than 64 × its size + 64 MiB (EXTRAPOLATE_FUZZ_ALLOCATION) stops the run with the input written to
# .build-fuzz/findings/TARGET/; minimise it (-minimize_crash=1) and keep it in Tests/fuzz/regressions/TARGET/, which
# `swift test` replays (FuzzRegressionTests). Prints one line per target: executions, coverage, corpus, outcome.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
targets=(safetensors shard-index config-json architecture-json tokens-zst zip pickle torch toml tokenizer-json api http)
# debug (CI: quicker to build) or release (campaigns: 4–15 times the executions a second; ~8 minutes to build)
configuration=${EXTRAPOLATE_FUZZ_CONFIGURATION:-debug}

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
[[ $# -ge 1 ]] || usage
case $1 in
    list) printf '%s\n' "${targets[@]}"; exit 0 ;;
    -h | --help) usage ;;
esac

swiftc=$(readlink -f "$(command -v swiftc)")
runtime=$(ls -d "$(dirname "$swiftc")"/../lib/clang/*/lib/linux 2> /dev/null | head -1)
[[ -f $runtime/libclang_rt.fuzzer_no_main-x86_64.a ]] || {
    echo "run.sh: no libFuzzer runtime beside $swiftc (lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a)" >&2
    exit 2
}
echo "building the fuzz harness (.build-fuzz)…" >&2
EXTRAPOLATE_FUZZ=1 EXTRAPOLATE_FUZZ_RUNTIME=$runtime \
    swift build -c "$configuration" --product extrapolate-fuzz --build-path .build-fuzz 2>&1 | grep -E "error|Compiling Fuzz|Build of" >&2 || true
binary=.build-fuzz/$configuration/extrapolate-fuzz
[[ -x $binary ]] || { echo "run.sh: the harness did not build (see above)" >&2; exit 2; }
# Foundation's String(contentsOfFile:) keeps 4 KiB when it reads an empty file (once per read; not ours to fix):
# known leaks listed there are not findings.
export LSAN_OPTIONS="suppressions=$root/Tests/fuzz/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_stack_use_after_return=0:allocator_may_return_null=0"

known() { local t; for t in "${targets[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

fuzz() {  # TARGET BUDGET [flags…]
    local target=$1 budget=$2
    shift 2
    known "$target" || { echo "run.sh: no target '$target' (Tests/fuzz/run.sh list)" >&2; exit 64; }
    local work=.build-fuzz/corpus/$target artifacts=.build-fuzz/findings/$target log
    mkdir -p "$work" "$artifacts"
    log=$(mktemp)
    local limit=(-max_total_time="$budget")
    [[ $budget == -runs=* ]] && limit=("$budget")
    local dict=()
    [[ -f Tests/fuzz/dict/$target.dict ]] && dict=(-dict="Tests/fuzz/dict/$target.dict")
    # The server frees a request's memory on its own threads after answering, so libFuzzer's per-input leak check
    # (run whenever an input's mallocs and frees differ) would scan the heap after every request: three quarters of
    # the time. For api and http, leaks are checked once, when the process ends (LeakSanitizer at exit).
    local leaks=()
    [[ $target == api || $target == http ]] && leaks=(-detect_leaks=0)
    local status=0
    EXTRAPOLATE_FUZZ_TARGET=$target "$binary" "${limit[@]}" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "${leaks[@]}" "$@" "$work" "Tests/fuzz/corpus/$target" \
        > "$log" 2>&1 || status=$?
    local runs cov corpus
    runs=$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
    corpus=$(ls "$work" | wc -l)
    if [[ $status -eq 0 ]]; then
        printf '%-18s %12s executions  %6s edges  %6s inputs learnt  ok\n' "$target" "$runs" "$cov" "$corpus"
    else
        printf '%-18s %12s executions  %6s edges  FAILED (status %s): %s\n' "$target" "$runs" "$cov" "$status" \
            "$(ls -t "$artifacts" | head -1)"
        grep -E "ERROR|Fatal error|SUMMARY|bytes live" "$log" | head -5 >&2
        echo "full log: $log" >&2
        return 1
    fi
    rm -f "$log"
}

case $1 in
    all)
        budget=${2:-60}
        failed=0
        for target in "${targets[@]}"; do fuzz "$target" "$budget" || failed=1; done
        exit $failed
        ;;
    keep)
        target=${2:?keep TARGET}
        known "$target" || { echo "run.sh: no target '$target'" >&2; exit 64; }
        EXTRAPOLATE_FUZZ_TARGET=$target "$binary" -merge=1 -timeout=10 "Tests/fuzz/corpus/$target" \
            ".build-fuzz/corpus/$target" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
        du -sh "Tests/fuzz/corpus/$target"
        ;;
    *)
        target=$1
        budget=${2:-60}
        shift $(($# >= 2 ? 2 : 1))
        fuzz "$target" "$budget" "$@"
        ;;
esac
