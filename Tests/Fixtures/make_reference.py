#!/usr/bin/env python3
"""Reference log-probabilities for the engine tests.

Run by hand, never by CI (the Swift tests read the committed output and need no Python):

    python -m venv .venv-ref5 && .venv-ref5/bin/pip install "transformers>=5" torch safetensors
    .venv-ref5/bin/python Tests/Fixtures/make_reference.py            # everything
    .venv-ref5/bin/python Tests/Fixtures/make_reference.py mpt-expansion-hf mpt-expansion-mosaic   # named cases only

Writes `Tests/Fixtures/models/<name>/` for every case:

* Hugging Face families (gpt2, opt, bloom 8 and 12 heads, mpt, gpt_neox partial rotary, llama GQA and every
  rope type): a tiny random model built by `transformers`, saved with `save_pretrained` (config.json +
  safetensors; one of them sharded, some in bf16/f16), scored by `transformers` itself.
* Position methods no Hugging Face family has (sinusoidal, T5, KERPLE, FIRE, xPos, Sandwich, NoPE, sliding
  window, interleaved rotary): a small pre-LN transformer written out below from the formulas of
  `Docs/spec/position-encodings.md`, saved as one bare `model.safetensors` whose `__metadata__` carries
  the Extrapolate architecture JSON (key `extrapolate.architecture`).

Each folder gets `reference.json`: the token sequence (several times the trained length), and the reference
log-probability of every token but the first, computed in float32 by the model and log-softmaxed in float64.
Weights are re-drawn with larger scales than the libraries' inits so that attention is far from uniform and
positions matter: a wrong bias, rotation or mask moves the numbers well past the tolerance.
"""
import json
import math
import os
import shutil

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, BloomConfig, Gemma2Config, GemmaConfig, GPT2Config, GPTNeoXConfig,
                          LlamaConfig, MistralConfig, MptConfig, Olmo2Config, OPTConfig, Phi3Config, Qwen2Config,
                          Qwen3Config)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
torch.set_num_threads(1)


def randomize(model, seed):
    """Re-draws every parameter: projections N(0, (1.2/√fan_in)²), embeddings N(0, 0.5²), norm scales
    1 + N(0, 0.2²), biases N(0, 0.2²). Tied tensors are drawn once. Larger projections make attention so peaked
    that a one-ulp difference in a float32 rotary frequency (which transformers itself computes with torch's
    vectorised pow) moves log-probs by 1e-4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                embedding = "emb" in name or "wte" in name or "wpe" in name or "embed" in name
                fan_in = p.shape[0] if type(model).__name__.startswith("GPT2") else p.shape[1]  # Conv1D is [in, out]
                std = 0.5 if embedding else 1.2 / math.sqrt(fan_in)
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def tokens_for(vocab, length, seed=1234):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (length,), generator=g)


def logprobs(logits, tokens):
    """Log-probability of tokens[1:] under logits[:-1] (float32 logits, float64 log-softmax)."""
    lp = F.log_softmax(logits[:-1].double(), dim=-1)
    return lp.gather(1, tokens[1:, None])[:, 0].tolist()


def write_reference(folder, tokens, values, **info):
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(dict(info, tokens=tokens.tolist(), logprobs=values), f)


# ---------------------------------------------------------------------------------------------------------
# Hugging Face families

TINY_LLAMA = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, max_position_embeddings=64)


def rope(theta, scaling=None):
    params = {"rope_type": "default", "rope_theta": theta}
    if scaling:
        params.update(scaling)
    return {"rope_parameters": params}


# name: (config, tokens to score, save options)
HF = {
    "gpt2": (GPT2Config(vocab_size=96, n_positions=256, n_embd=32, n_layer=2, n_head=4), 256, {}),
    "gpt2-bf16": (GPT2Config(vocab_size=96, n_positions=128, n_embd=32, n_layer=2, n_head=4), 128,
                  {"dtype": torch.bfloat16}),
    "opt": (OPTConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                      max_position_embeddings=256, word_embed_proj_dim=32), 256, {}),
    "opt-postln-project": (OPTConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     ffn_dim=64, max_position_embeddings=128, word_embed_proj_dim=16,
                                     do_layer_norm_before=False), 128, {}),
    "bloom-8h": (BloomConfig(vocab_size=96, hidden_size=64, n_layer=2, n_head=8, seq_length=64), 256, {}),
    "bloom-12h": (BloomConfig(vocab_size=96, hidden_size=48, n_layer=2, n_head=12, seq_length=64), 256,
                  {"shard": "20KB"}),
    "mpt": (MptConfig(vocab_size=96, d_model=48, n_heads=12, n_layers=2, max_seq_len=256), 256, {}),  # HF builds ALiBi for max_seq_len only
    # expansion_ratio ≠ 4: transformers' MptMLP ignores the key (always 4 × d_model), MosaicML's own MPTMLP honours
    # it. Checkpoints of both origins carry the same config.json; only the tensor shapes tell them apart.
    "mpt-expansion-hf": (MptConfig(vocab_size=96, d_model=48, n_heads=12, n_layers=2, max_seq_len=256,
                                   expansion_ratio=2), 256, {}),
    "mpt-expansion-mosaic": (MptConfig(vocab_size=96, d_model=48, n_heads=12, n_layers=2, max_seq_len=256,
                                       expansion_ratio=2), 256, {"mosaic_mlp": True}),
    "gpt_neox-partial": (GPTNeoXConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=128, max_position_embeddings=64,
                                       **rope(10000.0, {"partial_rotary_factor": 0.25})), 256, {}),
    "gpt_neox-sequential": (GPTNeoXConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=128, max_position_embeddings=64,
                                          use_parallel_residual=False,
                                          **rope(5000.0, {"partial_rotary_factor": 0.5})), 256, {}),
    # Per-head fused q/k/v in f16, saved as a PyTorch file: the 16-bit matrices a model keeps as stored, read from a
    # torch zip and reordered in their own precision.
    "gpt_neox-f16-bin": (GPTNeoXConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=128, max_position_embeddings=64,
                                       **rope(10000.0, {"partial_rotary_factor": 0.25})), 256,
                         {"dtype": torch.float16, "bin": True}),
    "llama-gqa": (LlamaConfig(**TINY_LLAMA, **rope(10000.0)), 256, {}),
    "llama-f16": (LlamaConfig(**TINY_LLAMA, **rope(10000.0)), 256, {"dtype": torch.float16}),
    "llama-linear": (LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "linear", "factor": 4.0})), 256, {}),
    "llama-dynamic": (LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "dynamic", "factor": 2.0})), 256, {}),
    "llama-yarn": (LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "yarn", "factor": 4.0,
                                                              "original_max_position_embeddings": 64})), 256, {}),
    "llama-llama3": (LlamaConfig(**TINY_LLAMA, **rope(500000.0, {"rope_type": "llama3", "factor": 8.0,
                                                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                                 "original_max_position_embeddings": 16})), 256, {}),
    "llama-longrope": (LlamaConfig(**TINY_LLAMA, **rope(10000.0, {"rope_type": "longrope", "factor": 4.0,
                                                                  "original_max_position_embeddings": 64,
                                                                  "short_factor": [1.0, 1.05, 1.1, 1.2],
                                                                  "long_factor": [0.9, 1.1, 1.3, 1.7]})), 256, {}),
    "llama-mqa-headdim": (LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=8, num_key_value_heads=1, head_dim=16,
                                      max_position_embeddings=64, tie_word_embeddings=True, **rope(10000.0)), 256, {}),
    # Byte vocabulary: runs on the bundled KJV dataset (the README's sweep example).
    "llama-bytes": (LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                tie_word_embeddings=True, **rope(10000.0)), 256, {}),
    # A sliding window of 24 tokens on every layer, 256 tokens scored: most keys fall outside it.
    "mistral-window": (MistralConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                     sliding_window=24, **rope(10000.0)), 256, {}),
    # Biases on q, k and v (none on o), GQA, tied embeddings; Qwen2.5's shape at a tiny size.
    "qwen2": (Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          tie_word_embeddings=True, **rope(1000000.0)), 256, {}),
    # q/k RMSNorm per head (one [head_dim] gain), a head width other than hidden/heads, biases on all four
    # projections (attention_bias; Qwen3's own checkpoints have none).
    "qwen3": (Qwen3Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=24, max_position_embeddings=128,
                          attention_bias=True, tie_word_embeddings=True, **rope(1000000.0)), 256, {}),
    # q/k RMSNorm over all heads of a position, and the block norms after attention and the MLP.
    "olmo2": (Olmo2Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          **rope(500000.0)), 256, {}),
    # Phi-3: fused qkv_proj and gate_up_proj, LongRoPE past original_max_position_embeddings (its long factors at
    # 256 tokens), half of each head rotated, GQA, a 48-token sliding window.
    "phi3": (Phi3Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                        original_max_position_embeddings=64, sliding_window=48, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2,
                        **rope(10000.0, {"rope_type": "longrope", "partial_rotary_factor": 0.5,
                                         "short_factor": [1.0, 1.1, 1.25, 1.5],
                                         "long_factor": [1.2, 1.6, 2.5, 4.0]})), 256, {}),
    # Gemma: the embedding scaled by √hidden, norms applying 1 + w, GeGLU (tanh), one KV head, a wide head.
    "gemma": (GemmaConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=1, head_dim=32, max_position_embeddings=128,
                          **rope(10000.0)), 256, {}),
    # Gemma 2: three layers (sliding, full, sliding: a 48-token window), norms before and after each sublayer,
    # q·k scaled by query_pre_attn_scalar^-1/2, scores and logits soft-capped at caps low enough to bite.
    "gemma2": (Gemma2Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=24, max_position_embeddings=128,
                            query_pre_attn_scalar=32, sliding_window=48, attn_logit_softcapping=4.0,
                            final_logit_softcapping=6.0, **rope(10000.0)), 256, {}),
}


class MosaicMLP(torch.nn.Module):
    """MosaicML llm-foundry's MPTMLP: up and down projections of expansion_ratio × d_model (transformers' MptMLP
    uses 4 × d_model whatever the config says). Same computation otherwise: GELU (erf), no biases, residual added."""

    def __init__(self, config):
        super().__init__()
        hidden = config.expansion_ratio * config.hidden_size
        self.up_proj = torch.nn.Linear(config.hidden_size, hidden, bias=False)
        self.act = torch.nn.GELU(approximate="none")
        self.down_proj = torch.nn.Linear(hidden, config.hidden_size, bias=False)

    def forward(self, hidden_states, residual):
        return self.down_proj(self.act(self.up_proj(hidden_states))) + residual


def write_hf(name, config, length, options, seed):
    if options.get("mosaic_mlp"):
        import transformers.models.mpt.modeling_mpt as mpt
        original, mpt.MptMLP = mpt.MptMLP, MosaicMLP
        try:
            return write_hf(name, config, length, {k: v for k, v in options.items() if k != "mosaic_mlp"}, seed)
        finally:
            mpt.MptMLP = original
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    randomize(model, seed)
    dtype = options.get("dtype")
    if dtype is not None:
        model = model.to(dtype)       # round the weights to the stored precision …
    saved = dict(safe_serialization=True)
    if "shard" in options:
        saved["max_shard_size"] = options["shard"]
    model.save_pretrained(folder, **saved)
    if options.get("bin"):  # transformers 5 writes safetensors only: the state dict as torch.save writes it
        os.remove(os.path.join(folder, "model.safetensors"))
        torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    # Score what a user gets: the saved checkpoint loaded back in float32 (buffers such as rotary frequencies
    # are recomputed in float32 by from_pretrained, not kept in the stored precision).
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    tokens = tokens_for(config.vocab_size, length)
    with torch.no_grad():
        logits = model(tokens[None]).logits[0].float()
    write_reference(folder, tokens, logprobs(logits, tokens), source=f"transformers {transformers.__version__}",
                    model_type=config.model_type, stored_dtype=str(dtype or torch.float32).replace("torch.", ""))
    print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, {length} tokens")


# ---------------------------------------------------------------------------------------------------------
# Position methods without a Hugging Face family: a plain pre-LN transformer, written from the spec.

V, C, LAYERS, H, FF, TRAINED = 64, 32, 2, 4, 64, 32
HS = C // H


def sinusoidal(layout, positions, width):
    p = positions.double()[:, None]
    half = width // 2
    if layout == "vaswani":
        k = torch.arange(half, dtype=torch.float64)
        angle = p * torch.pow(10000.0, -2 * k / width)
        pe = torch.zeros(len(positions), width, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
        return pe.float()
    omega = torch.exp(-torch.arange(half, dtype=torch.float64) * math.log(10000) / (half - 1))
    angle = p * omega
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()


def rotate(x, positions, layout, base=10000.0, scale=None):
    """RoPE over the whole head; `scale[p, k]` multiplies cos and sin of pair k (xPos)."""
    half = x.shape[-1] // 2
    inv = 1.0 / base ** (torch.arange(0, 2 * half, 2, dtype=torch.float32) / (2 * half))
    angle = positions.float()[:, None] * inv[None]                     # [T, half]
    cos, sin = torch.cos(angle), torch.sin(angle)
    if scale is not None:
        cos, sin = cos * scale, sin * scale
    if layout == "halfSplit":
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)


def t5_bucket(relative, buckets, max_distance):
    n = torch.clamp(-relative, min=0)
    exact = buckets // 2
    large = exact + (torch.log(n.float() / exact) / math.log(max_distance / exact) * (buckets - exact)).long()
    large = torch.clamp(large, max=buckets - 1)
    return torch.where(n < exact, n, large)


def alibi_slopes(heads):
    return torch.tensor([2 ** (-8 * (h + 1) / heads) for h in range(heads)])


def logit_bias(method, params, weights, prefix, T):
    """[H, T, T] additive bias for the method, or None."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    d = (i - j).clamp(min=0)
    if method == "alibi":
        return -alibi_slopes(H)[:, None, None] * d[None].float()
    if method == "t5":
        table = weights[f"{params['key']}.weight"]                     # [buckets, H], shared
        return table[t5_bucket(j - i, params["buckets"], params["maxDistance"])].permute(2, 0, 1)
    if method == "kerple":
        r1 = weights[f"{prefix}.kerple.r1"].clamp(min=0.01)[:, None, None]
        r2 = weights[f"{prefix}.kerple.r2"].clamp(min=0.01)[:, None, None]
        if params["kernel"] == "logarithmic":
            return -r1 * torch.log(1 + r2 * d[None].float())
        return -r1 * torch.pow(d[None].float(), r2.clamp(max=2))
    if method == "fire":
        c, mult = weights[f"{prefix}.fire.c"], weights[f"{prefix}.fire.threshold_multiplier"]
        positions = torch.arange(T, dtype=torch.float32)
        threshold = torch.abs(mult * params["initialThreshold"])
        normalizer = torch.maximum(positions, threshold)[:, None]
        x = torch.log(torch.abs(c * d.float()) + 1) / (torch.log(torch.abs(c * normalizer) + 1) + params["epsilon"])
        hidden = F.relu(x[..., None] * weights[f"{prefix}.fire.mlp.0.weight"][:, 0] + weights[f"{prefix}.fire.mlp.0.bias"])
        out = hidden @ weights[f"{prefix}.fire.mlp.2.weight"].T + weights[f"{prefix}.fire.mlp.2.bias"]
        return out.permute(2, 0, 1)
    if method == "sandwich":
        dim = params["dimension"]
        k = torch.arange(1, dim // 2 + 1, dtype=torch.float64)
        omega = torch.pow(10000.0, -2 * k / dim)
        s = torch.cos((j - i).double()[..., None] * omega).sum(-1)     # [T, T]
        heads = torch.arange(1, H + 1, dtype=torch.float64)[:, None, None]
        return ((s[None] - dim / 2) / (heads * 8 / H)).float()
    return None


def layer_norm(x, weights, name):
    return F.layer_norm(x, (x.shape[-1],), weights[f"{name}.weight"], weights[f"{name}.bias"], 1e-5)


def attention(x, weights, prefix, position, window):
    T = x.shape[0]
    qkv = x @ weights[f"{prefix}.qkv.weight"].T + weights[f"{prefix}.qkv.bias"]
    q, k, v = (t.reshape(T, H, HS).transpose(0, 1) for t in qkv.split(C, dim=-1))   # [H, T, HS]
    method, params = position["method"], position.get("parameters", {})
    positions = torch.arange(T)
    if method == "rotary":
        q, k = rotate(q, positions, params["layout"]), rotate(k, positions, params["layout"])
    if method == "xpos":
        zeta = (torch.arange(0, HS, 2, dtype=torch.float32) + params["gamma"] * HS) / ((1 + params["gamma"]) * HS)
        start = -T // 2                                                   # torchscale: -(length) // 2
        centred = torch.arange(start, start + T, dtype=torch.float32)
        scale = zeta[None] ** (centred[:, None] / params["scaleBase"])                    # [T, HS/2]
        q = rotate(q, positions, "interleaved", params["base"], scale)
        k = rotate(k, positions, "interleaved", params["base"], 1 / scale)
    scores = q @ k.transpose(1, 2) / math.sqrt(HS)
    bias = logit_bias(method, params, weights, prefix, T)
    if bias is not None:
        scores = scores + bias
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = j <= i
    if window is not None:
        visible &= j > i - window
    scores = scores.masked_fill(~visible, float("-inf"))
    out = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, C)
    return out @ weights[f"{prefix}.output.weight"].T + weights[f"{prefix}.output.bias"]


def reference_forward(arch, weights, tokens):
    T = len(tokens)
    x = weights["embed.weight"][tokens]
    encoding = arch["layers"][1].get("encoding") if arch["layers"][1]["type"] == "positionEmbedding" else None
    if encoding is not None:
        layout, = encoding["sinusoidal"]["layout"],
        x = x + sinusoidal(layout, torch.arange(T) + encoding["sinusoidal"]["offset"], C)
    attention_node = arch["layers"][-3]["body"][0]["body"][1]
    for n in range(LAYERS):
        p = f"layers.{n}"
        x = x + attention(layer_norm(x, weights, f"{p}.attention_norm"), weights, f"{p}.attention",
                          attention_node["position"], attention_node.get("window"))
        h = layer_norm(x, weights, f"{p}.mlp_norm")
        h = F.gelu(h @ weights[f"{p}.mlp.up.weight"].T + weights[f"{p}.mlp.up.bias"])
        x = x + h @ weights[f"{p}.mlp.down.weight"].T + weights[f"{p}.mlp.down.bias"]
    x = layer_norm(x, weights, "final_norm")
    return x @ weights["embed.weight"].T


def architecture(name, position, encoding=None, window=None, vocabulary=V, width=C, layers=LAYERS, heads=H, hidden=FF,
                 trained=TRAINED, embed_scale=None):
    """Extrapolate architecture JSON of the pre-LN probe shape (the Swift `Architecture.probe` layout)."""
    C, V, LAYERS, H, FF, TRAINED = width, vocabulary, layers, heads, hidden, trained
    attention_node = {"type": "attention", "heads": H, "bias": True, "key": "attention", "layout": "outIn",
                      "position": position,
                      "projections": {"fused": {"qkv": "qkv", "output": "output", "packing": "concatenated"}}}
    if window is not None:
        attention_node["window"] = window
    norm = lambda key: {"type": "layerNorm", "width": C, "epsilon": 1e-5, "bias": True, "affine": True, "key": key}
    nodes = [{"type": "tokenEmbedding", "vocabulary": V, "width": C, "key": "embed"}]
    if embed_scale is not None:
        nodes[0]["scale"] = embed_scale
    if encoding is not None:
        nodes.append({"type": "positionEmbedding", "encoding": encoding, "key": "embed_positions"})
    nodes += [
        {"type": "repeat", "count": LAYERS, "key": "layers", "body": [
            {"type": "residual", "placement": "pre", "key": "", "body": [norm("attention_norm"), attention_node]},
            {"type": "residual", "placement": "pre", "key": "", "body": [
                norm("mlp_norm"),
                {"type": "feedForward", "hidden": FF, "activation": "gelu", "gated": False, "bias": True,
                 "key": "mlp", "names": {"up": "up", "down": "down", "gate": "gate_proj"}, "layout": "outIn"}]},
        ]},
        norm("final_norm"),
        {"type": "unembedding", "tied": True, "bias": False, "key": "lm_head"},
    ]
    return {"formatVersion": 1, "name": name, "trainedLength": TRAINED, "layers": nodes}


def spec_weights(arch, seed):
    g = torch.Generator().manual_seed(seed)
    w = {"embed.weight": torch.randn(V, C, generator=g) * 0.5}
    for n in range(LAYERS):
        p = f"layers.{n}"
        for norm in ("attention_norm", "mlp_norm"):
            w[f"{p}.{norm}.weight"] = 1 + 0.2 * torch.randn(C, generator=g)
            w[f"{p}.{norm}.bias"] = 0.2 * torch.randn(C, generator=g)
        for key, shape in (("attention.qkv", (3 * C, C)), ("attention.output", (C, C)), ("mlp.up", (FF, C)),
                           ("mlp.down", (C, FF))):
            w[f"{p}.{key}.weight"] = torch.randn(shape, generator=g) * 0.3
            w[f"{p}.{key}.bias"] = 0.2 * torch.randn(shape[0], generator=g)
        position = arch["layers"][-3]["body"][0]["body"][1]["position"]
        if position["method"] == "kerple":
            w[f"{p}.attention.kerple.r1"] = 0.1 + torch.rand(H, generator=g)
            w[f"{p}.attention.kerple.r2"] = 0.1 + torch.rand(H, generator=g)
        if position["method"] == "fire":
            hidden = position["parameters"]["hidden"]
            w[f"{p}.attention.fire.mlp.0.weight"] = torch.randn(hidden, 1, generator=g)
            w[f"{p}.attention.fire.mlp.0.bias"] = 0.5 * torch.randn(hidden, generator=g)
            w[f"{p}.attention.fire.mlp.2.weight"] = torch.randn(H, hidden, generator=g) * 0.5
            w[f"{p}.attention.fire.mlp.2.bias"] = 0.2 * torch.randn(H, generator=g)
            w[f"{p}.attention.fire.c"] = torch.tensor([0.1 + 0.05 * n])
            w[f"{p}.attention.fire.threshold_multiplier"] = torch.tensor([1.0 + 0.25 * n])
    w["final_norm.weight"] = 1 + 0.2 * torch.randn(C, generator=g)
    w["final_norm.bias"] = 0.2 * torch.randn(C, generator=g)
    position = arch["layers"][-3]["body"][0]["body"][1]["position"]
    if position["method"] == "t5":
        w[f"{position['parameters']['key']}.weight"] = torch.randn(position["parameters"]["buckets"], H, generator=g)
    return w


SPEC = {
    "spec-nope": architecture("spec-nope", {"method": "nope"}),
    "spec-sinusoidal-fairseq": architecture("spec-sinusoidal-fairseq", {"method": "nope"},
                                            encoding={"sinusoidal": {"layout": "fairseq", "offset": 2}}),
    "spec-sinusoidal-vaswani": architecture("spec-sinusoidal-vaswani", {"method": "nope"},
                                            encoding={"sinusoidal": {"layout": "vaswani", "offset": 0}}),
    "spec-alibi": architecture("spec-alibi", {"method": "alibi", "parameters": {}}),
    "spec-rotary-interleaved": architecture("spec-rotary-interleaved", {"method": "rotary", "parameters": {
        "width": {"fraction": {"_0": 1.0}}, "base": 10000.0, "layout": "interleaved", "scaling": {"none": {}}}}),
    "spec-rotary-window": architecture("spec-rotary-window", {"method": "rotary", "parameters": {
        "width": {"fraction": {"_0": 1.0}}, "base": 10000.0, "layout": "halfSplit", "scaling": {"none": {}}}},
        window=16),
    "spec-t5": architecture("spec-t5", {"method": "t5", "parameters": {
        "buckets": 16, "maxDistance": 48, "bidirectional": False, "shared": True, "key": "relative_attention_bias"}}),
    "spec-kerple-log": architecture("spec-kerple-log", {"method": "kerple", "parameters": {"kernel": "logarithmic"}}),
    "spec-kerple-power": architecture("spec-kerple-power", {"method": "kerple", "parameters": {"kernel": "power"}}),
    "spec-fire": architecture("spec-fire", {"method": "fire", "parameters": {
        "hidden": 16, "initialThreshold": 24.0, "epsilon": 1e-6}}),
    "spec-xpos": architecture("spec-xpos", {"method": "xpos", "parameters": {
        "scaleBase": 64.0, "gamma": 0.4, "base": 10000.0}}),
    "spec-sandwich": architecture("spec-sandwich", {"method": "sandwich", "parameters": {"dimension": HS}}),
}


def write_spec(name, arch, seed, length=4 * TRAINED + 1):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    weights = spec_weights(arch, seed)
    metadata = {"format": "pt", "extrapolate.architecture": json.dumps(arch, sort_keys=True)}
    save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(folder, "model.safetensors"), metadata)
    tokens = tokens_for(V, length)
    with torch.no_grad():
        logits = reference_forward(arch, weights, tokens)
    write_reference(folder, tokens, logprobs(logits, tokens), source="plain PyTorch from the spec formulas",
                    stored_dtype="float32")
    print(f"{name}: {length} tokens")


def write_protocols(names=("gpt2", "llama-gqa")):
    """`models/<name>/protocols.json`: perplexities from the Hugging Face guide's strided loop
    (docs "Perplexity of fixed-length models"), the independent reference for Evaluation's protocols.

    Extrapolate's window of L input tokens [b, b+L) predicts [b+1, b+L] (fairseq's accounting); the guide's
    window [b, end) predicts inside itself, so it is run with max_length = L + 1. Causality makes the extra
    input token irrelevant to the scored predictions for these (length-independent) models."""
    for name in names:
        folder = os.path.join(OUT, name)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        with open(os.path.join(folder, "reference.json")) as f:
            tokens = torch.tensor(json.load(f)["tokens"])
        results = []
        for length, stride, budget in ((64, 64, 255), (64, 16, 255), (48, 48, 200), (100, 7, 255)):
            ids = tokens[: budget + 1][None]
            seq_len = ids.size(1)
            nll_sum, n_tokens, prev_end = 0.0, 0, 0
            for begin in range(0, seq_len, stride):
                end = min(begin + length + 1, seq_len)
                trg_len = end - prev_end
                input_ids = ids[:, begin:end]
                target_ids = input_ids.clone()
                target_ids[:, :-trg_len] = -100
                with torch.no_grad():
                    logits = model(input_ids).logits[0, :-1].double()
                labels = target_ids[0, 1:]
                valid = labels != -100
                # Summed exactly: the guide's `num_valid_tokens - batch_size` weighting undercounts one token per
                # window after the first (its first label is already masked), which would skew the mean slightly.
                nll_sum += float(-F.log_softmax(logits, -1)[valid].gather(1, labels[valid][:, None]).sum())
                n_tokens += int(valid.sum())
                prev_end = end
                if end == seq_len:
                    break
            results.append({"length": length, "stride": stride, "budget": budget, "tokens": n_tokens,
                            "mean_nll": nll_sum / n_tokens})
        with open(os.path.join(folder, "protocols.json"), "w") as f:
            json.dump({"source": f"transformers {transformers.__version__}, HF perplexity guide strided loop",
                       "results": results}, f, indent=1)
        print(f"{name}: protocols {[round(r['mean_nll'], 4) for r in results]}")


def write_sample_tokens():
    """`tokens/random-64.u16`: 1024 uint16 tokens below 64, valid for every fixture model (the README's example)."""
    folder = os.path.join(HERE, "tokens")
    os.makedirs(folder, exist_ok=True)
    tokens_for(V, 1024, seed=4321).to(torch.int32).numpy().astype("<u2").tofile(os.path.join(folder, "random-64.u16"))


if __name__ == "__main__":
    import sys
    only = set(sys.argv[1:])          # names to (re)write; none: everything
    if only:
        for index, (name, (config, length, options)) in enumerate(HF.items()):
            if name in only:
                write_hf(name, config, length, options, seed=100 + index)
        sys.exit(0)
    write_sample_tokens()
    os.makedirs(OUT, exist_ok=True)
    for index, (name, (config, length, options)) in enumerate(HF.items()):
        write_hf(name, config, length, options, seed=100 + index)
    for index, (name, arch) in enumerate(SPEC.items()):
        write_spec(name, arch, seed=200 + index)
    write_protocols()
