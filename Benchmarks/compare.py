#!/usr/bin/env python3
"""Extrapolate against PyTorch + transformers on the same machine, weights and tokens, in one run.

Run through `Benchmarks/run` (which builds the release binary and the Python environment first):

    Benchmarks/run                                   # every shape, 512 … 16k (+ 32k, 64k for Extrapolate)
    Benchmarks/run --shapes gpt2-small --lengths 512,2048,8192 --no-long
    Benchmarks/run --quick                           # gpt2-small and mpt-125m at 512 and 2048: a few minutes

For every shape and length it runs `extrapolate score --summary --json` and `Benchmarks/torch_score.py`
(sdpa and eager attention) as separate processes under `/usr/bin/time -v`, so each one's peak resident
memory is its own. It measures OpenBLAS `sgemm` GFLOP/s with the same library and thread count, estimates
each pass's FLOPs from the checkpoint's shapes, and writes `Benchmarks/results/latest.md` and `latest.json`:
tokens/s (median of --repeats rounds; each round runs every side once, interleaved), the Extrapolate / PyTorch ratio, the fraction of `sgemm` speed achieved, the
peak memory, and the perplexity both computed — so speed never hides a different answer.
"""
import argparse
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = ["gpt2-small", "mpt-125m", "pythia-160m", "bloom-560m", "smollm-135m"]


def sgemm_gflops(threads, size=(2048, 3072, 768), repeats=5):
    """Best-of-N GFLOP/s of OpenBLAS cblas_sgemm (row-major A·Bᵀ, the engine's projection shape)."""
    blas = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
    blas.openblas_set_num_threads(ctypes.c_int(threads))
    blas.openblas_get_corename.restype = ctypes.c_char_p
    core = blas.openblas_get_corename().decode()
    m, n, k = size
    a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, k), dtype=np.float32)
    c = np.zeros((m, n), dtype=np.float32)
    p = lambda x: x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        # CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112
        blas.cblas_sgemm(101, 111, 112, m, n, k, ctypes.c_float(1), p(a), k, p(b), k, ctypes.c_float(0), p(c), n)
        best = min(best, time.perf_counter() - started)
    return 2.0 * m * n * k / best / 1e9, core


TORCH_GEMM = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
m, n, k = (int(v) for v in sys.argv[2:5])
a, b = torch.randn(m, k), torch.randn(n, k)
best = float("inf")
with torch.inference_mode():
    for _ in range(int(sys.argv[5])):
        started = time.perf_counter()
        a @ b.T
        best = min(best, time.perf_counter() - started)
print(2.0 * m * n * k / best / 1e9)
"""


def torch_gemm_gflops(python, threads, size=(2048, 3072, 768), repeats=5):
    """Best-of-N GFLOP/s of PyTorch's own fp32 matrix product (MKL/oneDNN) on the same shape, in its own process:
    the speed PyTorch's projections can reach, so the table shows how much of a ratio is left to win."""
    try:
        out = subprocess.run([python, "-c", TORCH_GEMM, str(threads), *map(str, size), str(repeats)],
                             capture_output=True, text=True, check=True, timeout=600)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def tensor_shapes(folder):
    """name → shape of every tensor in the folder's safetensors file(s), from the headers alone."""
    shapes = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as f:
                size = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(size))
            shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


def flops_per_pass(folder, length):
    """Matrix-product FLOPs of one causal pass of `length` tokens: 2 per weight of every projection and of the
    vocabulary head, and per layer 2·2·width·(length+1)/2 per token for q·k and p·v over the causal triangle."""
    config = json.load(open(os.path.join(folder, "config.json")))
    vocab = config["vocab_size"]
    width = config.get("n_embd") or config.get("d_model") or config.get("hidden_size")
    layers = config.get("n_layer") or config.get("n_layers") or config.get("num_hidden_layers")
    matrices = 0
    for name, shape in tensor_shapes(folder).items():
        if len(shape) != 2 or vocab in shape or "wpe" in name or "position" in name:
            continue                                          # embeddings and position tables are look-ups
        matrices += shape[0] * shape[1]
    per_token = 2 * matrices + 2 * vocab * width + layers * 2 * width * (length + 1)
    return per_token * length


class PeakWatcher:
    """Kills a process tree whose resident memory passes `limit` bytes (PyTorch eager at 16k asks for 20+ GiB)."""

    def __init__(self, process, limit):
        self.process, self.limit, self.exceeded = process, limit, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def tree(self, pid):
        pids = [pid]
        try:
            for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
                pids += self.tree(int(child))
        except OSError:
            pass
        return pids

    def resident(self):
        total = 0
        for pid in self.tree(self.process.pid):
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def run(self):
        while self.process.poll() is None:
            if self.resident() > self.limit:
                self.exceeded = True
                for pid in reversed(self.tree(self.process.pid)):
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
                return
            time.sleep(0.2)


def timed(command, env, memory_limit, timeout):
    """Runs `command` under /usr/bin/time -v; returns (parsed JSON of its stdout or None, peak GiB, failure)."""
    process = subprocess.Popen(["/usr/bin/time", "-v"] + command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    watcher = PeakWatcher(process, memory_limit)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return None, None, f"timed out after {timeout} s"
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    peak_gib = int(peak.group(1)) / 2**20 if peak else None
    if watcher.exceeded:
        return None, peak_gib, f"out of memory (over {memory_limit / 2**30:.0f} GiB)"
    if process.returncode != 0:
        lines = [l for l in err.splitlines() if l.strip() and not l.startswith("\t") and "Command" not in l]
        message = lines[-1] if lines else f"exit {process.returncode}"
        if "does not support an attention implementation" in message:
            message = "not offered by transformers for this model"
        return None, peak_gib, message.split(". ")[0][:100]
    match = re.search(r"\{.*\}", out, re.S)
    return (json.loads(match.group(0)) if match else None), peak_gib, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--lengths", default="512,1024,2048,4096,8192,16384")
    parser.add_argument("--long", default="32768,65536", help="Extrapolate alone, on --long-shapes")
    parser.add_argument("--no-long", action="store_true")
    parser.add_argument("--long-shapes", default="gpt2-small", help="shapes the --long lengths run on ('all': every one)")
    parser.add_argument("--eager-max", type=int, default=16384, help="longest length PyTorch eager is tried at")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per point below 8k (median); 1 above")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", type=float, default=20, help="GiB a PyTorch run may use before it is killed")
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--models", default=os.path.join(ROOT, ".build-bench", "models"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "extrapolate"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--output", default=os.path.join(ROOT, "Benchmarks", "results", "latest"))
    parser.add_argument("--quick", action="store_true", help="gpt2-small and mpt-125m at 512 and 2048, one repeat")
    parser.add_argument("--render", action="store_true", help="only rewrite OUTPUT.md from OUTPUT.json")
    args = parser.parse_args()
    if args.render:
        with open(args.output + ".json") as f:
            saved = json.load(f)
        with open(args.output + ".md", "w") as f:
            f.write(markdown(saved["machine"], saved["rows"]))
        return
    if args.quick:
        args.shapes, args.lengths, args.no_long, args.repeats = "gpt2-small,mpt-125m", "512,2048", True, 1

    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes + ([] if args.long_shapes == "all" else args.long_shapes.split(","))
               if s and s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape {', '.join(unknown)}; known: {', '.join(SHAPES)} (and 'all' for --long-shapes)")
    lengths = [int(n) for n in args.lengths.split(",") if n]
    long_lengths = [] if args.no_long else [int(n) for n in args.long.split(",") if n]
    env, chosen = blas_environment(args.binary)
    if chosen.get("blasCoreType"):
        os.environ["OPENBLAS_CORETYPE"] = chosen["blasCoreType"]
    env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    subprocess.run([args.python, os.path.join(ROOT, "Benchmarks", "make_models.py"), args.models] + shapes, check=True)
    tokens = os.path.join(args.models, "tokens-49152.u16")

    # The machine's speed drifts on shared hosts: both matrix-product rates are probed before every shape and at
    # the end, and the best of all probes is the reference (a slow probe would flatter the "of sgemm" column).
    probes = {"sgemm": [], "torch": []}

    def probe():
        rate, name = sgemm_gflops(args.threads)
        probes["sgemm"].append(rate)
        torch_rate = torch_gemm_gflops(args.python, args.threads)
        if torch_rate:
            probes["torch"].append(torch_rate)
        print(f"OpenBLAS sgemm ({name}, {args.threads} threads): {rate:.0f} GFLOP/s; "
              f"PyTorch matmul: {torch_rate or 0:.0f} GFLOP/s", flush=True)
        return name

    core = probe()
    rows = []
    for index, shape in enumerate(shapes):
        if index > 0:
            probe()
        folder = os.path.join(args.models, shape)
        long_here = long_lengths if args.long_shapes == "all" or shape in args.long_shapes.split(",") else []
        for length in lengths + long_here:
            repeats = args.repeats if length < 8192 else 1
            row = {"shape": shape, "length": length}
            sides = ["extrapolate"]
            if length not in long_lengths:
                sides.append("sdpa")
                if length > args.eager_max:
                    row["eager"] = {"skipped": f"longer than --eager-max {args.eager_max}"}
                else:
                    sides.append("eager")
            # Rounds interleave the sides (ours, sdpa, eager, ours, …) so a slow minute on a shared machine
            # lands on all of them instead of on whichever happened to run then.
            runs = {side: [] for side in sides}
            for _ in range(repeats):
                for side in sides:
                    if side in row:                     # failed in an earlier round
                        continue
                    if side == "extrapolate":
                        command = [args.binary, "score", "--checkpoint", folder, "--tokens", tokens, "--length",
                                   str(length), "--summary", "--json", "--threads", str(args.threads)]
                        limit = 1 << 62
                    else:
                        command = [args.python, os.path.join(ROOT, "Benchmarks", "torch_score.py"), folder, tokens,
                                   str(length), "--attention", side, "--threads", str(args.threads), "--repeats", "1"]
                        limit = int(args.memory_limit * 2**30)
                    result, peak, failure = timed(command, env, limit, args.timeout)
                    if failure:
                        row[side] = {"error": failure, "peak_gib": peak}
                        if side == "extrapolate":
                            row["extrapolate_error"] = failure
                        continue
                    speed_ = result["tokensPerSecond"] if side == "extrapolate" else result["tokens_per_second"]
                    runs[side].append((speed_, result["perplexity"], peak, result))
            for side, done in runs.items():
                if side in row or not done:
                    continue
                # Ours keeps which kernel sets ran (OpenBLAS' core and our own), from its JSON result.
                kept = ({k: done[0][3][k] for k in ("blasCore", "kernels") if k in done[0][3]} if side == "extrapolate"
                        else done[0][3])
                row[side] = dict(kept, tokens_per_second=statistics.median(r[0] for r in done),
                                 perplexity=done[0][1], peak_gib=max(r[2] for r in done), runs=[r[0] for r in done])
                row[side].pop("seconds", None)
            if row.get("extrapolate", {}).get("tokens_per_second"):
                row["extrapolate"]["gflops"] = (flops_per_pass(folder, length)
                                                * row["extrapolate"]["tokens_per_second"] / length / 1e9)
            else:
                row.pop("extrapolate", None)
            row["flops_per_token"] = flops_per_pass(folder, length) / length
            rows.append(row)
            print(line(row), flush=True)

    probe()
    gflops = max(probes["sgemm"])
    for row in rows:
        if row.get("extrapolate"):
            row["extrapolate"]["sgemm_fraction"] = row["extrapolate"]["gflops"] / gflops
        best = reference(row)
        if best and row.get("flops_per_token"):
            # The ratio an engine would reach running every FLOP at the full sgemm rate: PyTorch's achieved rate
            # bounds what any OpenBLAS-based engine can win at this point.
            row["ceiling"] = gflops / (row["flops_per_token"] * best / 1e9)
    machine = {"cpu": cpu_name(), "threads": args.threads, "openblas_core": core, "extrapolate_cpu": chosen,
               "sgemm_gflops": gflops,
               "sgemm_probes": probes["sgemm"], "torch_matmul_gflops": max(probes["torch"], default=None),
               "torch_matmul_probes": probes["torch"],
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "platform": platform.platform()}
    write_results(args.output, machine, rows, markdown)


def blas_environment(binary):
    """The environment to run every side in, and what `extrapolate cpu --json` decided: the OpenBLAS kernels this
    CPU should run are decided in one place, the binary (Docs/engine.md)."""
    env = dict(os.environ)
    chosen = json.loads(subprocess.run([binary, "cpu", "--json"], check=True, capture_output=True, text=True).stdout)
    if chosen.get("blasCoreType"):
        env["OPENBLAS_CORETYPE"] = chosen["blasCoreType"]
    return env, chosen


def write_results(output, machine, rows, render):
    """OUTPUT.json (machine and rows) and OUTPUT.md (`render(machine, rows)`)."""
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output + ".json", "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=2)
    with open(output + ".md", "w") as f:
        f.write(render(machine, rows))
    print(f"wrote {output}.md and {output}.json")


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def speed(entry):
    return entry.get("tokens_per_second") if entry else None


def reference(row):
    """PyTorch's best tokens/s at this point: sdpa where transformers offers it, else eager."""
    candidates = [speed(row.get(a)) for a in ("sdpa", "eager")]
    candidates = [c for c in candidates if c]
    return max(candidates) if candidates else None


def cell(entry):
    if entry is None:
        return "—"
    if entry.get("tokens_per_second"):
        return f"{entry['tokens_per_second']:,.0f}"
    return entry.get("skipped") and "not run" or (entry.get("error") or "failed")


def line(row):
    ours = row.get("extrapolate")
    text = f"{row['shape']:12s} {row['length']:6d}  extrapolate {cell(ours) if ours else row.get('extrapolate_error')}"
    for attention in ("sdpa", "eager"):
        if attention in row:
            text += f"  {attention} {cell(row[attention])}"
    best = reference(row)
    if ours and best:
        text += f"  ratio {ours['tokens_per_second'] / best:.2f}"
    return text


def kernel_sets(machine, rows):
    """What ran: the kernel sets every Extrapolate run reported (OpenBLAS core and ours), and what `extrapolate cpu`
    decided for this CPU."""
    ran = sorted({(r["extrapolate"].get("blasCore"), r["extrapolate"].get("kernels"))
                  for r in rows if r.get("extrapolate") and r["extrapolate"].get("kernels")})
    text = "".join(f" Extrapolate ran OpenBLAS {blas} kernels and its own {ours} kernels." for blas, ours in ran)
    cpu = machine.get("extrapolate_cpu")
    if cpu:
        text += (f" `extrapolate cpu`: CPU level {cpu.get('cpuLevel')} (3: AVX-512), our kernels {cpu.get('kernels')}, "
                 f"OpenBLAS chose {cpu.get('blasCore')}"
                 + (f", raised to {cpu['blasCoreType']} for every run" if cpu.get("blasCoreType") else "") + ".")
    return text


def markdown(machine, rows):
    out = [f"# Extrapolate vs PyTorch — {machine['date']}", "",
           f"{machine['cpu']}, {machine['threads']} threads; OpenBLAS core {machine['openblas_core']}, "
           f"`sgemm` {machine['sgemm_gflops']:.0f} GFLOP/s ({machine['threads']} threads); PyTorch's own matrix "
           f"product {machine.get('torch_matmul_gflops') or 0:.0f} GFLOP/s on the same shape (best of "
           f"{len(machine.get('sgemm_probes', [1]))} probes through the run; they ranged "
           f"{min(machine.get('sgemm_probes', [0])):.0f}–{max(machine.get('sgemm_probes', [0])):.0f} for sgemm). "
           "Batch 1, fp32, one causal "
           "pass with loss; tokens/s is the median of the timed runs; peak is the process's maximum resident set."
           + kernel_sets(machine, rows), "",
           "| shape | tokens | Extrapolate tok/s | PyTorch sdpa | PyTorch eager | ratio | ceiling | of sgemm | peak (ours / sdpa / eager, GiB) | perplexity (ours / PyTorch) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for row in rows:
        ours, best = row.get("extrapolate"), reference(row)
        ratio = f"{ours['tokens_per_second'] / best:.2f}×" if ours and best else "—"
        if ours and not best and any("memory" in (row.get(a, {}).get("error") or "") for a in ("sdpa", "eager")):
            ratio = "PyTorch OOM"
        fraction = f"{100 * ours['sgemm_fraction']:.0f}%" if ours else "—"
        ceiling = f"{row['ceiling']:.2f}×" if row.get("ceiling") else "—"
        peaks = " / ".join(f"{row[k]['peak_gib']:.2f}" if row.get(k, {}).get("peak_gib")
                           and (row[k].get("tokens_per_second") or "memory" in (row[k].get("error") or "")) else "—"
                           for k in ("extrapolate", "sdpa", "eager"))
        torch_ppl = next((row[a]["perplexity"] for a in ("sdpa", "eager") if row.get(a, {}).get("perplexity")), None)
        ppl = (f"{ours['perplexity']:.6g} / {torch_ppl:.6g}" if ours and torch_ppl
               else (f"{ours['perplexity']:.6g} / —" if ours else "—"))
        out.append(f"| {row['shape']} | {row['length']:,} | {cell(ours) if ours else row.get('extrapolate_error', '—')} | "
                   f"{cell(row.get('sdpa'))} | {cell(row.get('eager'))} | {ratio} | {ceiling} | {fraction} | {peaks} | {ppl} |")
    out += ["", "ratio: Extrapolate ÷ the faster PyTorch attention at that point. ceiling: the ratio a pass running "
            "every one of its FLOPs at the full `sgemm` rate would reach — PyTorch's own efficiency bounds what any "
            "engine on these kernels can win. of sgemm: the pass's matrix-product FLOPs (projections, vocabulary head, "
            "q·k and p·v over the causal triangle) per second, as a fraction of the `sgemm` rate above.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
