#!/usr/bin/env python3
"""Reference fixtures for the Architecture tests, generated with Hugging Face `transformers`.

Run by hand, never by CI (the Swift tests read the committed output and need no Python):

    python -m venv .venv-ref5 && .venv-ref5/bin/pip install "transformers>=5" torch safetensors
    python -m venv .venv-ref4 && .venv-ref4/bin/pip install "transformers==4.46.3" torch safetensors
    .venv-ref5/bin/python Tests/Fixtures/make_configs.py     # configs/<name>/     (rope_parameters form)
    .venv-ref4/bin/python Tests/Fixtures/make_configs.py     # configs/<name>-v4/  (rope_scaling / rope_theta form)

For every config it writes `config.json` (saved by the config class itself) and `expected.json` with what
transformers makes of it: the tensors `save_pretrained` writes (tiny configs: read back from the
safetensors header), the parameter count (meta device, tied weights counted once), and for rotary
models the inverse frequencies and attention factor at 1x and 4x the trained length.
It also writes `reference/t5_buckets.json` and `reference/alibi_slopes.json` from transformers' own functions.
"""
import json
import os
import struct
import sys
import tempfile

import torch
import transformers
from transformers import (AutoModelForCausalLM, BloomConfig, Gemma2Config, GemmaConfig, GPT2Config, GPTNeoXConfig,
                          LlamaConfig, MistralConfig, MptConfig, Olmo2Config, OPTConfig, Phi3Config, Qwen2Config,
                          Qwen3Config)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

V5 = int(transformers.__version__.split(".")[0]) >= 5
SUFFIX = "" if V5 else "-v4"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "configs")


def rope(theta, scaling=None, fraction=None, neox=False):
    """RoPE kwargs in the form this transformers version writes."""
    if V5:
        params = {"rope_type": "default", "rope_theta": theta}
        if fraction is not None:
            params["partial_rotary_factor"] = fraction
        if scaling:
            params.update(scaling)
        return {"rope_parameters": params}
    kwargs = {}
    if neox:
        kwargs["rotary_emb_base"] = theta
        if fraction is not None:
            kwargs["rotary_pct"] = fraction
    else:
        kwargs["rope_theta"] = theta
    if scaling:
        kwargs["rope_scaling"] = dict(scaling)
    return kwargs


TINY_LLAMA = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, max_position_embeddings=64)
LONG = [0.9, 1.1, 1.3, 1.7]  # longrope lists: head_dim 8 -> 4 pairs

TINY = {
    "gpt2-tiny": GPT2Config(vocab_size=96, n_positions=64, n_embd=32, n_layer=2, n_head=4),
    "opt-tiny": OPTConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                          max_position_embeddings=64, word_embed_proj_dim=32),
    "opt-postln-project": OPTConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    ffn_dim=64, max_position_embeddings=64, word_embed_proj_dim=16,
                                    do_layer_norm_before=False),
    "bloom-8h": BloomConfig(vocab_size=96, hidden_size=64, n_layer=2, n_head=8),
    "bloom-12h": BloomConfig(vocab_size=96, hidden_size=96, n_layer=2, n_head=12),
    "mpt-12h": MptConfig(vocab_size=96, d_model=96, n_heads=12, n_layers=2, max_seq_len=64),
    "mpt-biasmax16": MptConfig(vocab_size=96, d_model=64, n_heads=8, n_layers=2, max_seq_len=64,
                               attn_config={"alibi": True, "alibi_bias_max": 16}),
    "gpt_neox-partial": GPTNeoXConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=64,
                                      **rope(10000.0, fraction=0.25, neox=True)),
    "gpt_neox-sequential": GPTNeoXConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=128, max_position_embeddings=64, use_parallel_residual=False,
                                         **rope(5000.0, fraction=0.5, neox=True)),
    "llama-gqa": LlamaConfig(**TINY_LLAMA, **rope(10000.0)),
    "llama-linear": LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "linear", "factor": 4.0})),
    "llama-dynamic": LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "dynamic", "factor": 2.0})),
    "llama-yarn": LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "yarn", "factor": 4.0,
                                                           "original_max_position_embeddings": 64})),
    "llama-llama3": LlamaConfig(**TINY_LLAMA, **rope(500000.0, {"rope_type": "llama3", "factor": 8.0,
                                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                              "original_max_position_embeddings": 16})),
    "llama-longrope": LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "longrope", "factor": 4.0,
                                                               "original_max_position_embeddings": 64,
                                                               "short_factor": [1.0] * 4, "long_factor": LONG})),
    "llama-headdim": LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=8, num_key_value_heads=4, head_dim=16,
                                 max_position_embeddings=64, tie_word_embeddings=True, **rope(10000.0)),
    "mistral-window": MistralConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                    num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64,
                                    sliding_window=16, **rope(10000.0)),
    "qwen2-bias": Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                              num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64,
                              tie_word_embeddings=True, **rope(1000000.0)),
}

FULL = {
    "gpt2-small": GPT2Config(),
    "opt-350m-like": OPTConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096,
                               word_embed_proj_dim=512, do_layer_norm_before=False),
    "bloom-560m-like": BloomConfig(vocab_size=250880, hidden_size=1024, n_layer=24, n_head=16),
    "mpt-125m-like": MptConfig(d_model=768, n_heads=12, n_layers=12, max_seq_len=2048, vocab_size=50368),
    "pythia-160m-like": GPTNeoXConfig(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                      intermediate_size=3072, **rope(10000.0, fraction=0.25, neox=True)),
    "llama-3.1-8b-like": LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                     max_position_embeddings=131072,
                                     **rope(500000.0, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                       "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 8192})),
    # Mistral-7B-v0.1's shape (its config sets max_position_embeddings 32768 and a 4096-token window).
    "mistral-7b-like": MistralConfig(max_position_embeddings=32768, sliding_window=4096, **rope(10000.0)),
    # Qwen2.5-7B's shape: biases on q, k, v; 28 layers; 4 KV heads.
    "qwen2.5-7b-like": Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                   num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                                   **rope(1000000.0)),
    # Qwen3-8B's shape: per-head q/k norm, head_dim 128, 8 KV heads, 36 layers.
    "qwen3-8b-like": Qwen3Config(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                                 num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                 max_position_embeddings=40960, **rope(1000000.0)),
    # OLMo-2-7B's shape: q/k norm over all heads, norms after the sublayers.
    "olmo2-7b-like": Olmo2Config(vocab_size=100352, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                                 rms_norm_eps=1e-6, **rope(500000.0)),
    # Phi-3-mini-128k's shape: fused qkv_proj and gate_up_proj, LongRoPE from 4k to 128k (48 factors each; the
    # shipped ones are measured, these are a ramp of the same length and range).
    "phi3-mini-128k-like": Phi3Config(vocab_size=32064, hidden_size=3072, intermediate_size=8192,
                                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                       max_position_embeddings=131072, original_max_position_embeddings=4096,
                                       sliding_window=262144, pad_token_id=32000, bos_token_id=1, eos_token_id=32000,
                                       **rope(10000.0, {"rope_type": "longrope",
                                                        "short_factor": [1.0 + 0.05 * i for i in range(48)],
                                                        "long_factor": [1.0 + 1.5 * i for i in range(48)]})),
    # Gemma-2B's shape: one KV head, head_dim 256, a 256k vocabulary.
    "gemma-2b-like": GemmaConfig(vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                                 num_attention_heads=8, num_key_value_heads=1, head_dim=256,
                                 max_position_embeddings=8192, **rope(10000.0)),
    # Gemma-2-9B's shape: alternating 4096-token windows, soft caps 50 and 30, query_pre_attn_scalar 256.
    "gemma2-9b-like": Gemma2Config(vocab_size=256000, hidden_size=3584, intermediate_size=14336,
                                   num_hidden_layers=42, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                                   max_position_embeddings=8192, query_pre_attn_scalar=256, sliding_window=4096,
                                   **rope(10000.0)),
}


def safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {name: info["shape"] for name, info in header.items()}


def trained_length(config):
    for key in ("n_positions", "max_position_embeddings", "max_seq_len", "seq_length"):
        if hasattr(config, key) and isinstance(getattr(config, key), int):
            return getattr(config, key)
    return 2048


def rope_reference(config, model):
    """Inverse frequencies and attention factor transformers uses at 1x and 4x the trained length."""
    modules = [m for n, m in model.named_modules() if n.endswith("rotary_emb")]
    if not modules:
        return None
    if V5:
        params = config.rope_parameters
        rope_type = params.get("rope_type", "default")
    else:
        scaling = getattr(config, "rope_scaling", None) or {}
        rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    out = []
    length = trained_length(config)
    for n in (length, 4 * length):
        if rope_type == "default":
            inv_freq, factor = modules[0].inv_freq, getattr(modules[0], "attention_scaling", 1.0)
        else:
            inv_freq, factor = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu", seq_len=n)
        out.append({"length": n, "inverse_frequencies": [float(x) for x in inv_freq],
                    "attention_factor": float(factor)})
    return out


def write(name, config, tiny):
    folder = os.path.join(OUT, name + SUFFIX)
    os.makedirs(folder, exist_ok=True)
    config.save_pretrained(folder)
    expected = {"model_type": config.model_type, "transformers": transformers.__version__}
    torch.manual_seed(0)
    if tiny:
        model = AutoModelForCausalLM.from_config(config)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            expected["tensors"] = safetensors_header(os.path.join(tmp, "model.safetensors"))
        expected["rope"] = rope_reference(config, model)
    else:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    expected["parameter_count"] = sum(p.numel() for p in model.parameters())
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print(f"{name + SUFFIX}: {expected['parameter_count']:,} parameters")


def write_references():
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor
    from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor
    from transformers.models.t5.modeling_t5 import T5Attention
    folder = os.path.join(HERE, "reference")
    os.makedirs(folder, exist_ok=True)
    buckets = []
    relative = torch.arange(-300, 301)
    for bidirectional in (False, True):
        for num_buckets, max_distance in ((32, 128), (64, 256), (16, 64)):
            values = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional,
                                                           num_buckets=num_buckets, max_distance=max_distance)
            buckets.append({"bidirectional": bidirectional, "buckets": num_buckets, "max_distance": max_distance,
                            "relative": relative.tolist(), "bucket": values.tolist()})
    with open(os.path.join(folder, "t5_buckets.json"), "w") as f:
        json.dump(buckets, f)
    slopes = []
    for heads in range(1, 33):
        mask = torch.ones(1, 2)
        bloom = build_alibi_tensor(mask, heads, torch.float64)[:, 0, 1].tolist()  # slope * position 1
        entry = {"heads": heads, "bloom": bloom, "mpt": {}}
        for bias_max in (8, 16):
            mpt = build_mpt_alibi_tensor(heads, 2, bias_max)  # slope * (j - (T-1)) at j = 0 -> -slope
            entry["mpt"][str(bias_max)] = (-mpt.reshape(heads, 2)[:, 0]).double().tolist()
        slopes.append(entry)
    with open(os.path.join(folder, "alibi_slopes.json"), "w") as f:
        json.dump(slopes, f)


if __name__ == "__main__":
    only = set(sys.argv[1:])  # names to (re)write; none: everything
    for name, config in TINY.items():
        if not only or name in only:
            write(name, config, tiny=True)
    for name, config in FULL.items():
        if not only or name in only:
            write(name, config, tiny=False)
    if only:
        sys.exit(0)
    if V5:
        write_references()
    sys.exit(0)
