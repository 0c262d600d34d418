#!/usr/bin/env python3
"""A random-weight GPT-2-small (124M) checkpoint and a random token file, for timing and memory runs.

    .venv/bin/pip install torch transformers safetensors
    .venv/bin/python Benchmarks/make_gpt2_small.py /tmp/gpt2-small       # writes config.json, model.safetensors,
                                                                           # tokens.u16 (70,000 uint16 tokens)
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/time -v .build/release/extrapolate score \\
        --checkpoint /tmp/gpt2-small --tokens /tmp/gpt2-small/tokens.u16 --length 65536 --summary

GPT-2's learned position table has 1024 rows, so the config raises n_positions to 65,536 to make the model
defined at that length; every other size is GPT-2 small's (12 layers, 12 heads, width 768, vocab 50,257).
Nothing is generated at build or test time, and nothing here is committed.
"""
import os
import sys

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpt2-small"
positions = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(n_positions=positions))
model.save_pretrained(out, safe_serialization=True)
rng = np.random.default_rng(0)
rng.integers(0, 50257, size=positions + 4464, dtype=np.uint16).tofile(os.path.join(out, "tokens.u16"))
print(f"{out}: {sum(p.numel() for p in model.parameters()):,} parameters, n_positions {positions}")
