#!/usr/bin/env python3
"""The PyTorch side of the side-by-side benchmark: one causal pass with loss, batch 1, as a researcher's loop does.

    python Benchmarks/torch_score.py MODEL_DIR TOKENS.u16 LENGTH --attention sdpa|eager [--threads 2] [--repeats 1]
                                     [--autocast]

Loads the Hugging Face folder in float32, reads the first LENGTH tokens, and times one pass over them plus
the loss of tokens 1…LENGTH−1 under `torch.inference_mode()` — what `extrapolate score --length LENGTH` computes.
A 128-token pass first warms up thread pools and kernels; with --repeats > 1 one full pass is a warm-up too. Prints one JSON
line: tokens/s (median of the timed calls), the mean NLL and perplexity transformers reports, the attention
implementation and thread count. --autocast runs the pass under `torch.autocast("cpu", dtype=torch.bfloat16)` (the
weights stay fp32; matrix products run in bf16), the reference of `extrapolate --precision bf16`. Peak memory is measured from outside (`/usr/bin/time -v`) by the harness.
"""
import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("tokens")
    parser.add_argument("length", type=int)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32, attn_implementation=args.attention)
    model.eval()
    ids = torch.from_numpy(np.fromfile(args.tokens, dtype="<u2")[: args.length].astype(np.int64))[None]
    times, nll = [], None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast)
    with torch.inference_mode(), autocast:
        model(ids[:, : min(128, args.length)])      # a short warm-up: thread pools and kernels initialised
        for _ in range(args.repeats + (1 if args.repeats > 1 else 0)):
            started = time.perf_counter()
            logits = model(ids).logits
            loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:], reduction="mean")
            times.append(time.perf_counter() - started)
            nll = loss.item()
            del logits
    timed = times[1:] if len(times) > 1 else times
    seconds = statistics.median(timed)
    print(json.dumps({"tokens_per_second": args.length / seconds, "seconds": seconds, "mean_nll": nll,
                      "perplexity": math.exp(nll), "attention": args.attention, "autocast": args.autocast, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
