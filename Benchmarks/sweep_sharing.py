#!/usr/bin/env python3
"""Whole-sweep time with and without exact prefix sharing, and proof that the numbers are the same.

    swift build -c release --product extrapolate
    python Benchmarks/make_models.py .build-bench/models mpt-125m-512     # needs torch, transformers
    python Benchmarks/sweep_sharing.py [--shape mpt-125m-512] [--lengths 1x,2x,4x,8x,16x] [--repeats 3]

Each round runs `extrapolate sweep --json` twice as separate processes, once as it is (shorter lengths take the
windows that are prefixes of longer ones from the longer pass) and once with `--no-prefix-sharing`, interleaved so a
slow minute lands on both. It prints the median wall time of each, the speed-up, the windows shared at each length
and the largest relative difference between the two sweeps' perplexities, Σ NLL and per-window NLL (the target is
1e-9; on one machine and thread count they are bit for bit equal). Results go to `Benchmarks/results/sharing.json`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def relative(a, b):
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="mpt-125m-512")
    parser.add_argument("--lengths", default="1x,2x,4x,8x,16x")
    parser.add_argument("--budget", type=int, help="targets per length (default: 4 × the longest, the sweep's own)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=os.path.join(ROOT, ".build-bench", "models"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "extrapolate"))
    parser.add_argument("--output", default=os.path.join(ROOT, "Benchmarks", "results", "sharing.json"))
    args = parser.parse_args()

    folder = os.path.join(args.models, args.shape)
    tokens = os.path.join(args.models, "tokens-49152.u16")
    if not os.path.exists(os.path.join(folder, "config.json")) or not os.path.exists(tokens):
        sys.exit(f"sweep_sharing.py: no model {folder} (or no {tokens}); write it first with "
                 f"`python Benchmarks/make_models.py {args.models} {args.shape}`")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"sweep_sharing.py: no binary at {args.binary}; build it with "
                 "`swift build -c release --product extrapolate`")
    env = dict(os.environ)
    chosen = json.loads(subprocess.run([args.binary, "cpu", "--json"], check=True, capture_output=True, text=True).stdout)
    if chosen.get("blasCoreType"):
        env["OPENBLAS_CORETYPE"] = chosen["blasCoreType"]
    command = [args.binary, "sweep", "--checkpoint", folder, "--data", tokens, "--lengths", args.lengths, "--bootstrap", "0",
               "--threads", str(args.threads), "--json"]
    if args.budget:
        command += ["--budget", str(args.budget)]
    runs = {"shared": [], "unshared": []}
    results = {}
    for round_ in range(args.repeats):
        for side in runs:
            started = time.monotonic()
            done = subprocess.run(command + ([] if side == "shared" else ["--no-prefix-sharing"]), env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"sweep_sharing.py: `{' '.join(done.args)}` failed:\n{done.stderr.strip()}")
            runs[side].append(time.monotonic() - started)
            results[side] = json.loads(done.stdout)
            print(f"round {round_ + 1} {side}: {runs[side][-1]:.1f} s", flush=True)

    shared, unshared = (results[s]["points"] for s in ("shared", "unshared"))
    rows, worst = [], 0.0
    for a, b in zip(shared, unshared):
        x, y = a.get("result"), b.get("result")
        if not x or not y:
            continue
        worst_here = max([relative(x["perplexity"], y["perplexity"]), relative(x["nllSum"], y["nllSum"])]
                         + [relative(u["nll"], v["nll"]) for u, v in zip(x["windows"], y["windows"])])
        worst = max(worst, worst_here)
        rows.append({"length": a["length"], "windows": len(x["windows"]), "shared": x.get("sharedWindows") or 0,
                     "perplexity": x["perplexity"], "unshared_perplexity": y["perplexity"],
                     "largest_relative_difference": worst_here,
                     "seconds": x["seconds"], "unshared_seconds": y["seconds"]})
    medians = {side: statistics.median(times) for side, times in runs.items()}
    summary = {"shape": args.shape, "lengths": args.lengths, "threads": args.threads, "blas_core": chosen,
               "seconds": medians, "runs": runs, "speedup": medians["unshared"] / medians["shared"],
               "largest_relative_difference": worst, "points": rows}
    print(f"\n{args.shape}, {args.lengths}, {args.threads} threads: {medians['unshared']:.1f} s without sharing, "
          f"{medians['shared']:.1f} s with: {summary['speedup']:.2f}× (median of {args.repeats})")
    print("| length | windows | shared | perplexity (shared / every window) | largest relative difference | "
          "seconds (shared / every window) |")
    print("|---:|---:|---:|---|---:|---|")
    for r in rows:
        print(f"| {r['length']:,} | {r['windows']} | {r['shared']} | {r['perplexity']:.9g} / "
              f"{r['unshared_perplexity']:.9g} | {r['largest_relative_difference']:.1e} | "
              f"{r['seconds']:.1f} / {r['unshared_seconds']:.1f} |")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
