#!/usr/bin/env python3
"""`extrapolate train` against PyTorch's eager training step (and torch.compile where it runs), in one run.

    python3 Benchmarks/training.py                          # the probe at L = 64; GPT-2 small at L = 512 and 2,048
    python3 Benchmarks/training.py --cases probe --steps 20

Build the release binary first (`swift build -c release --product extrapolate`). Every case runs both sides as
separate processes on the same model, data (Datasets/kjv/train.tokens.zst) and thread count, in interleaved rounds
(--repeats), each a few steps; tokens/s is the median over the steps after the first two (ours from train.jsonl,
PyTorch's from Benchmarks/torch_train.py), then the median over rounds. Peak memory is the largest resident set
(`/usr/bin/time -v`). The probe is Datasets/demo/train.py's model (ALiBi) with batch 32 × 64; GPT-2 small starts from
the same random weights on both sides (Benchmarks/make_models.py). "matmul share" is the time the step's matrix
products would take at the speed of OpenBLAS sgemm measured in this run (6 FLOPs per weight per token for the
projections and the head, and attention's products: 2·T·C per token and layer forward, twice that backward), as a
share of our measured step: what is left outside the products. Writes Benchmarks/results/training-latest.md/.json.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import blas_environment, cpu_name, sgemm_gflops, timed, write_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "Datasets", "kjv", "train.tokens.zst")
# name: (model, length, batch, steps, matmul parameters, layers, width)
CASES = {
    "probe": ("probe", 64, 32, 12, 3 * (3 * 96 * 96 + 96 * 96 + 2 * 96 * 384) + 256 * 96, 3, 96),
    "gpt2-512": ("gpt2-small", 512, 4, 6, 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 50257 * 768, 12, 768),
    "gpt2-2048": ("gpt2-small", 2048, 1, 5, 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 50257 * 768, 12, 768),
}


def ours(binary, model, models, length, batch, steps, threads, out):
    source = ["--preset", "probe-alibi"] if model == "probe" else ["--checkpoint", os.path.join(models, model)]
    return [binary, "train", *source, "--data", DATA, "--length", str(length), "--batch", str(batch), "--steps",
            str(steps), "--threads", str(threads), "--save-every", str(steps), "--out", out]


def ours_speed(out):
    with open(os.path.join(out, "train.jsonl")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    speeds = [line["tokensPerSecond"] for line in lines[2:]] or [line["tokensPerSecond"] for line in lines]
    return statistics.median(speeds), lines[-1]["loss"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="steps per run (default: per case)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile")
    parser.add_argument("--models", default=os.path.join(ROOT, ".build-bench", "models"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "extrapolate"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--output", default=os.path.join(ROOT, "Benchmarks", "results", "training-latest"))
    args = parser.parse_args()
    env, chosen = blas_environment(args.binary)
    cases = [c for c in args.cases.split(",") if c]
    shapes = sorted({CASES[c][0] for c in cases} - {"probe"})
    if shapes:
        subprocess.run([args.python, os.path.join(ROOT, "Benchmarks", "make_models.py"), args.models] + shapes,
                       check=True)
    sgemm, core = sgemm_gflops(args.threads)
    rows = []
    for case in cases:
        model, length, batch, steps, matmul, layers, width = CASES[case]
        steps = args.steps or steps
        torch_model = "probe" if model == "probe" else os.path.join(args.models, model)
        torch_command = [args.python, os.path.join(ROOT, "Benchmarks", "torch_train.py"), torch_model, DATA,
                         "--length", str(length), "--batch", str(batch), "--steps", str(steps), "--threads",
                         str(args.threads)]
        sides = {"extrapolate": None, "torch": torch_command}
        if args.compile:
            sides["torch.compile"] = torch_command + ["--compile"]
        runs = {side: [] for side in sides}
        errors = {}
        for _ in range(args.repeats):
            for side, command in sides.items():
                if side in errors:
                    continue
                out = tempfile.mkdtemp(prefix="train-bench-")
                try:
                    if side == "extrapolate":
                        command = ours(args.binary, model, args.models, length, batch, steps, args.threads, out)
                    result, peak, failure = timed(command, env, 20 << 30, 7200)
                    if failure:
                        errors[side] = failure
                        continue
                    speed, loss = ours_speed(out) if side == "extrapolate" else (result["tokensPerSecond"],
                                                                                  result["loss"])
                    runs[side].append((speed, peak, loss))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
        row = {"case": case, "length": length, "batch": batch, "steps": steps}
        for side in sides:
            if runs[side]:
                row[side] = {"tokens_per_second": statistics.median(r[0] for r in runs[side]),
                             "runs": [r[0] for r in runs[side]], "peak_gib": max(r[1] or 0 for r in runs[side]),
                             "loss": runs[side][-1][2]}
            else:
                row[side] = {"error": errors.get(side, "no run")}
        tokens = batch * length
        flops = 6 * matmul * tokens + 3 * 2 * length * width * layers * tokens
        ours_speed_value = row["extrapolate"].get("tokens_per_second")
        if ours_speed_value:
            row["matmul_share"] = (flops / (sgemm * 1e9)) / (tokens / ours_speed_value)
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine = {"cpu": cpu_name(), "threads": args.threads, "extrapolate_cpu": chosen, "sgemm_gflops": sgemm,
               "openblas_core": core}
    write_results(args.output, machine, rows, markdown)


def markdown(machine, rows):
    lines = [f"# Training: extrapolate train vs PyTorch ({machine['cpu']}, {machine['threads']} threads)", "",
             f"OpenBLAS sgemm here: {machine['sgemm_gflops']:.0f} GFLOP/s ({machine['openblas_core']}).", "",
             "| case | L | batch | extrapolate tok/s | PyTorch tok/s | ratio | torch.compile tok/s | peak GiB (ours / torch) | matmul share |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for row in rows:
        a, b, c = row["extrapolate"], row["torch"], row.get("torch.compile", {})
        speed = lambda e: f"{e['tokens_per_second']:,.0f}" if "tokens_per_second" in e else e.get("error", "—")
        ratio = (f"{a['tokens_per_second'] / b['tokens_per_second']:.2f}×"
                 if "tokens_per_second" in a and "tokens_per_second" in b else "—")
        peaks = f"{a.get('peak_gib', 0):.2f} / {b.get('peak_gib', 0):.2f}"
        share = f"{row['matmul_share']:.0%}" if "matmul_share" in row else "—"
        lines.append(f"| {row['case']} | {row['length']:,} | {row['batch']} | {speed(a)} | {speed(b)} | {ratio} | "
                     f"{speed(c) if c else 'not run'} | {peaks} | {share} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
