#!/usr/bin/env python3
"""PyTorch's eager training step on the same model, data and thread count as `extrapolate train`.

    torch_train.py probe TOKENS --steps 12 --threads 2                # Datasets/demo/train.py's probe (ALiBi), batch 32 × 64
    torch_train.py HF_FOLDER TOKENS --length 512 --batch 4 --steps 6  # a transformers model (sdpa attention)
    ... --compile                                                     # torch.compile the model first

One step: forward, mean cross-entropy, backward, clip_grad_norm_(1.0), AdamW (β 0.9/0.95, weight decay 0.1 on
matrices), as train.py does. Windows of LENGTH + 1 tokens at random starts (seed 1234). Prints JSON: tokens per
second (median over the steps after the first two), the step times, and the loss of the last step.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_tokens(path):
    import zstandard
    with open(path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    return torch.from_numpy(np.frombuffer(raw, dtype="<u2").astype(np.int64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("tokens")
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    if args.model == "probe":
        sys.path.insert(0, os.path.join(ROOT, "Datasets", "demo"))
        import train
        model = train.Probe("alibi")
        forward = lambda x: model(x)
        named = [(k, p) for k, p in model.p.items()]
    else:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa")
        model.train()
        for module in model.modules():       # dropout off: extrapolate train has none
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        forward = lambda x: model(x).logits
        named = list(model.named_parameters())
    if args.compile:
        forward = torch.compile(forward)
    decay = [p for _, p in named if p.dim() >= 2]
    rest = [p for _, p in named if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=2e-4, betas=(0.9, 0.95))
    data = read_tokens(args.tokens)
    generator = torch.Generator().manual_seed(1234)
    times, loss = [], None
    for _ in range(args.steps):
        starts = torch.randint(0, len(data) - args.length - 1, (args.batch,), generator=generator)
        batch = torch.stack([data[s:s + args.length + 1] for s in starts.tolist()])
        started = time.perf_counter()
        logits = forward(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        optimizer.step()
        times.append(time.perf_counter() - started)
    measured = times[2:] if len(times) > 2 else times
    print(json.dumps({"tokensPerSecond": args.batch * args.length / statistics.median(measured),
                      "stepSeconds": times, "loss": float(loss), "perplexity": 0}))


if __name__ == "__main__":
    main()
