#!/usr/bin/env python3
"""Tokens/s at 1 and 2 threads on the benchmark shapes: speed-up, efficiency and the serial share of a pass.

    python3 Benchmarks/make_models.py .build-bench/models          # once (needs torch, transformers)
    swift build -c release --product extrapolate
    python3 Benchmarks/thread_scaling.py [--models .build-bench/models] [--lengths 2048,8192] [--repeats 3]

Each point runs `extrapolate score --summary --json --threads N` in its own process, the thread counts interleaved
round by round (a slow minute on a shared machine hits both), and keeps the median tokens/s of the pass. With
speed-up S at n = 2 threads, Amdahl's law gives the serial share s = 2/S − 1 (the part of the pass no second thread
shortens: serial code, and time the threads wait on each other or on memory), and the speed-up s predicts at n
threads, 1 / (s + (1 − s)/n). Prints a Markdown table; `--json FILE` keeps the raw runs.
"""
import argparse
import json
import os
import statistics
import sys

from scoring import score

SHAPES = ["gpt2-small", "smollm-135m", "pythia-160m", "mpt-125m", "bloom-560m"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=".build-bench/models")
    parser.add_argument("--binary", default=".build/release/extrapolate")
    parser.add_argument("--lengths", default="2048,8192")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    tokens = os.path.join(args.models, "tokens-49152.u16")
    runs, rows = [], []
    for shape in args.shapes.split(","):
        for length in (int(n) for n in args.lengths.split(",")):
            speeds = {1: [], 2: []}
            perplexities = set()
            for _ in range(args.repeats):
                for threads in (1, 2):
                    speed, perplexity = score(args.binary, os.path.join(args.models, shape), tokens, length,
                                              ["--threads", str(threads)])
                    speeds[threads].append(speed)
                    perplexities.add(round(perplexity, 3))
                    runs.append(dict(shape=shape, length=length, threads=threads, tokens_per_s=speed,
                                     perplexity=perplexity))
            one, two = statistics.median(speeds[1]), statistics.median(speeds[2])
            speedup = two / one
            serial = max(2 / speedup - 1, 0.0)
            predicted = {n: 1 / (serial + (1 - serial) / n) for n in (32, 64)}
            rows.append((shape, length, one, two, speedup, speedup / 2, serial, predicted[32], predicted[64],
                         len(perplexities) == 1))
            print(f"{shape} {length}: {one:.1f} → {two:.1f} tok/s", file=sys.stderr, flush=True)
    print("| shape | tokens | 1 thread tok/s | 2 threads tok/s | speed-up | efficiency | serial share | "
          "Amdahl at 32 | at 64 | perplexity equal |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape, length, one, two, speedup, efficiency, serial, p32, p64, same in rows:
        print(f"| {shape} | {length:,} | {one:.1f} | {two:.1f} | {speedup:.2f}× | {efficiency:.0%} | {serial:.1%} | "
              f"{p32:.1f}× | {p64:.1f}× | {'yes' if same else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
