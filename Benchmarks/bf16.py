#!/usr/bin/env python3
"""`--precision bf16` against the exact mode and against PyTorch under bf16 autocast, in one run.

    python3 Benchmarks/bf16.py                                   # gpt2-small, pythia-160m, smollm-135m at 2k and 8k
    python3 Benchmarks/bf16.py --shapes gpt2-small --lengths 2048 --repeats 1
    python3 Benchmarks/bf16.py --real Datasets/demo/alibi/step-2000.safetensors:Datasets/kjv/valid.tokens.zst

Build the release binary first (`swift build -c release --product extrapolate`); the benchmark shapes come from
`Benchmarks/make_models.py` (random weights in the shapes of the real models, written on first use). For every shape
and length it runs, as separate processes in interleaved rounds (so a slow minute on a shared host lands on every
side): `extrapolate score` exact, `extrapolate score --precision bf16`, and `Benchmarks/torch_score.py` with sdpa
attention under `torch.autocast("cpu", dtype=torch.bfloat16)`. tokens/s is the median over rounds. Accuracy comes from
one more pass of each of our modes with every log-probability (`--json`): the relative change of the perplexity and
the largest and mean |Δ log p| per token. `--real CHECKPOINT:TOKENS` adds accuracy rows for trained weights (no
speed). Writes Benchmarks/results/bf16-latest.md and .json. Needs a CPU with AVX512-BF16.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import blas_environment, cpu_name, timed, write_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ours(binary, checkpoint, tokens, length, threads, precision, summary=True):
    command = [binary, "score", "--checkpoint", checkpoint, "--tokens", tokens, "--length", str(length), "--json",
               "--threads", str(threads), "--precision", precision] + (["--summary"] if summary else [])
    return command


def accuracy(binary, checkpoint, tokens, length, threads, env):
    """Relative Δ perplexity and max / mean |Δ log p| of bf16 against the exact mode, on the same window."""
    results = {}
    for precision in ("float32", "bf16"):
        out = subprocess.run(ours(binary, checkpoint, tokens, length, threads, precision, summary=False),
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
        results[precision] = json.loads(out.stdout)
    exact, half = results["float32"], results["bf16"]
    deltas = [abs(a - b) for a, b in zip(exact["logprobs"][1:], half["logprobs"][1:])]
    return {"perplexity": exact["perplexity"], "perplexity_bf16": half["perplexity"],
            "relative_perplexity_change": half["perplexity"] / exact["perplexity"] - 1,
            "max_abs_logprob_change": max(deltas), "mean_abs_logprob_change": sum(deltas) / len(deltas)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="gpt2-small,pythia-160m,smollm-135m")
    parser.add_argument("--lengths", default="2048,8192")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--real", action="append", default=[], help="CHECKPOINT:TOKENS, accuracy only")
    parser.add_argument("--models", default=os.path.join(ROOT, ".build-bench", "models"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "extrapolate"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--output", default=os.path.join(ROOT, "Benchmarks", "results", "bf16-latest"))
    args = parser.parse_args()
    env, chosen = blas_environment(args.binary)
    shapes = [s for s in args.shapes.split(",") if s]
    lengths = [int(n) for n in args.lengths.split(",") if n]
    if shapes:
        subprocess.run([args.python, os.path.join(ROOT, "Benchmarks", "make_models.py"), args.models] + shapes,
                       check=True)
    tokens = os.path.join(args.models, "tokens-49152.u16")
    rows = []
    for shape in shapes:
        folder = os.path.join(args.models, shape)
        for length in lengths:
            sides = {"exact": ours(args.binary, folder, tokens, length, args.threads, "float32"),
                     "bf16": ours(args.binary, folder, tokens, length, args.threads, "bf16")}
            if not args.no_torch:
                sides["autocast"] = [args.python, os.path.join(ROOT, "Benchmarks", "torch_score.py"), folder, tokens,
                                     str(length), "--attention", "sdpa", "--threads", str(args.threads), "--autocast"]
            runs = {side: [] for side in sides}
            errors = {}
            for _ in range(args.repeats):
                for side, command in sides.items():
                    if side in errors:
                        continue
                    result, peak, failure = timed(command, env, 20 << 30, 3600)
                    if failure:
                        errors[side] = failure
                        continue
                    runs[side].append((result.get("tokensPerSecond") or result.get("tokens_per_second"), peak,
                                       result["perplexity"]))
            row = {"shape": shape, "length": length}
            for side in sides:
                if runs[side]:
                    row[side] = {"tokens_per_second": statistics.median(r[0] for r in runs[side]),
                                 "runs": [r[0] for r in runs[side]], "peak_gib": max(r[1] or 0 for r in runs[side]),
                                 "perplexity": runs[side][0][2]}
                else:
                    row[side] = {"error": errors.get(side, "no run")}
            row["accuracy"] = accuracy(args.binary, folder, tokens, length, args.threads, env)
            rows.append(row)
            print(describe(row), flush=True)
    for entry in args.real:
        checkpoint, data = entry.rsplit(":", 1)
        for length in lengths:
            row = {"shape": checkpoint, "length": length, "real": True,
                   "accuracy": accuracy(args.binary, checkpoint, data, length, args.threads, env)}
            rows.append(row)
            print(describe(row), flush=True)
    machine = {"cpu": cpu_name(), "threads": args.threads, "extrapolate_cpu": chosen}
    write_results(args.output, machine, rows, markdown)


def name(row):
    """The shape's name, or a trained checkpoint's run folder and file (`alibi/step-2000.safetensors`)."""
    path = row["shape"].rstrip("/")
    return "/".join(path.split("/")[-2:]) if row.get("real") else os.path.basename(path)


def speed(entry):
    return (entry or {}).get("tokens_per_second")


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


def describe(row):
    a = row["accuracy"]
    text = f"{name(row):32s} {row['length']:6d}"
    if not row.get("real"):
        text += "".join(f"  {side} {speed(row.get(side)) or row.get(side, {}).get('error')}"
                        for side in ("exact", "bf16", "autocast") if side in row)
        text += f"  bf16/exact {ratio(speed(row.get('bf16')), speed(row.get('exact')))}"
        text += f"  bf16/autocast {ratio(speed(row.get('bf16')), speed(row.get('autocast')))}"
    if "error" in a:
        return text + f"  accuracy: {a['error']}"
    return text + (f"  Δppl {100 * a['relative_perplexity_change']:+.3f}%  max|Δlogp| {a['max_abs_logprob_change']:.3g}"
                   f"  mean|Δlogp| {a['mean_abs_logprob_change']:.3g}")


def markdown(machine, rows):
    out = [f"# `--precision bf16` — {machine['cpu']}, {machine['threads']} threads", "",
           "tokens/s: median of the interleaved rounds; PyTorch runs sdpa attention under "
           "`torch.autocast(\"cpu\", dtype=torch.bfloat16)`. Δ: bf16 against the exact mode on the same window.", "",
           "| model | tokens | exact tok/s | bf16 tok/s | autocast tok/s | bf16 / exact | bf16 / autocast | "
           "Δ perplexity | max \\|Δ log p\\| | mean \\|Δ log p\\| |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        a = row["accuracy"]
        cells = [f"{speed(row.get(s)):,.0f}" if speed(row.get(s)) else "—" for s in ("exact", "bf16", "autocast")]
        accuracy_cells = (["—"] * 3 if "error" in a else
                          [f"{100 * a['relative_perplexity_change']:+.3f}%", f"{a['max_abs_logprob_change']:.3g}",
                           f"{a['mean_abs_logprob_change']:.3g}"])
        out.append(f"| {name(row)} | {row['length']:,} | " + " | ".join(cells)
                   + f" | {ratio(speed(row.get('bf16')), speed(row.get('exact')))}"
                   + f" | {ratio(speed(row.get('bf16')), speed(row.get('autocast')))} | " + " | ".join(accuracy_cells)
                   + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
