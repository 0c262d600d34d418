#!/usr/bin/env python3
"""Random-weight checkpoints of real model shapes, and a random token file, for timing and memory runs.

    .venv/bin/pip install torch transformers safetensors numpy
    .venv/bin/python Benchmarks/make_models.py [OUT [SHAPE …]]    # default: .build-bench/models, every shape

Each shape is written with `save_pretrained` to OUT/SHAPE/ (config.json + model.safetensors, fp32), next to
OUT/tokens-49152.u16: 140,000 random uint16 token ids below 49,152 (every vocabulary here is at least that large).

    gpt2-small    GPT-2 small: 12 layers, 12 heads, width 768, learned positions (table raised to 65,536 rows
                  so the model is defined at every benchmark length; trained length stays 1024)
    mpt-125m      MPT-125M-like: ALiBi, 12 layers, 12 heads, width 768 (max_seq_len raised to 65,536: transformers
                  builds MPT's ALiBi bias only up to it, so PyTorch could not run past it otherwise)
    pythia-160m   Pythia-160m: GPT-NeoX, rotary on 25% of each head, parallel residual, 2048
    bloom-560m    BLOOM-560m: ALiBi, 24 layers, 16 heads, width 1024, 2048
    smollm-135m   a Llama-family geometry with GQA and a large vocabulary (SmolLM-135M's): width 576, 30 layers,
                  9 query / 3 key-value heads of width 64, SwiGLU 1536, vocabulary 49,152 (tied), rotary base 1e5,
                  2048
    mpt-125m-512  mpt-125m's weights declared trained at 512 tokens, for the 1×–16× sweep (prefix sharing)

Nothing here runs at build or test time, and nothing it writes is committed.
"""
import os
import sys

import numpy as np
import torch
import transformers as tf

SHAPES = {
    # GPT-2 small; n_positions is the table size, and Extrapolate reads it as the trained length, so the
    # table is made long enough for 64k tokens (the default 1024 rows would make every longer length unsupported).
    "gpt2-small": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(n_positions=65536)),
    "mpt-125m": lambda: tf.MptForCausalLM(tf.MptConfig(d_model=768, n_heads=12, n_layers=12, expansion_ratio=4,
                                                       max_seq_len=65536, vocab_size=50432)),
    "pythia-160m": lambda: tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, rotary_pct=0.25,
        max_position_embeddings=2048, vocab_size=50304, use_parallel_residual=True, tie_word_embeddings=False)),
    "bloom-560m": lambda: tf.BloomForCausalLM(tf.BloomConfig(hidden_size=1024, n_layer=24, n_head=16,
                                                             vocab_size=250880, seq_length=2048)),
    "smollm-135m": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(
        hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, head_dim=64,
        intermediate_size=1536, vocab_size=49152, rope_theta=100000.0, max_position_embeddings=2048,
        tie_word_embeddings=True, rms_norm_eps=1e-5)),
    "mpt-125m-512": lambda: tf.MptForCausalLM(tf.MptConfig(d_model=768, n_heads=12, n_layers=12, expansion_ratio=4,
                                                           max_seq_len=512, vocab_size=50432)),
}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build-bench", "models")
    names = sys.argv[2:] or list(SHAPES)
    for name in names:
        if name not in SHAPES:
            sys.exit(f"unknown shape '{name}'; known: {', '.join(SHAPES)}")
    os.makedirs(out, exist_ok=True)
    tokens = os.path.join(out, "tokens-49152.u16")
    if not os.path.exists(tokens):
        np.random.default_rng(0).integers(0, 49152, size=140000, dtype=np.uint16).tofile(tokens)
    for name in names:
        folder = os.path.join(out, name)
        if os.path.exists(os.path.join(folder, "config.json")):
            continue
        torch.manual_seed(0)
        model = SHAPES[name]()
        model.save_pretrained(folder, safe_serialization=True)
        print(f"{folder}: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)


if __name__ == "__main__":
    main()
