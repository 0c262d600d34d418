#!/usr/bin/env python3
"""Train short, test long: the demo probes, one per position method, trained at L = 64 on the KJV sample.

Run by hand from the repository root (CI never trains):

    python -m venv .venv && .venv/bin/pip install torch safetensors numpy zstandard
    .venv/bin/python Datasets/demo/train.py                # all five methods, about 3 minutes each on 2 cores
    .venv/bin/python Datasets/demo/train.py alibi rotary   # some of them

Every method gets the same model (Extrapolate's `probe` preset: byte vocabulary, width 96, 3 pre-LN layers of
4 heads, feed-forward 384, tied embeddings scaled by √96 on input and initialised with std 96^-0.5, as fairseq's
transformer_lm, the paper's code, does), the same data order, seed, optimizer and steps, as in the paper's
comparisons. Only the position method differs:

    sinusoidal  fairseq layout added to the embeddings, positions from 2 (the paper's baseline)
    rotary      half-split RoPE over the whole head, base 10000
    t5          T5 bias, 32 buckets, max distance 128, one table shared by all layers
    alibi       ALiBi with the paper's slopes
    nope        nothing (the control)

Checkpoints are written at steps 500, 1000 and 2000 to `Datasets/demo/<method>/step-<n>.safetensors` in fp16,
with the Extrapolate architecture JSON in the safetensors metadata (`extrapolate.architecture`), so
`extrapolate sweep --checkpoint Datasets/demo/alibi/step-2000.safetensors …` needs no config.json. This is the
path any PyTorch user can follow: name the tensors as `extrapolate inspect` lists them, put the JSON in the
metadata. The position helpers come from the engine's reference script, so training and the engine's golden
tests share one transcription of the spec.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Fixtures"))
from make_reference import alibi_slopes, architecture, rotate, sinusoidal, t5_bucket  # noqa: E402

VOCAB, WIDTH, LAYERS, HEADS, HIDDEN, L = 256, 96, 3, 4, 384, 64
HS = WIDTH // HEADS
STEPS, BATCH, LR, WARMUP, SEED = int(os.environ.get("PROBE_STEPS", 2000)), 32, 2e-3, 100, 1234
SAVE_AT = tuple(sorted({s for s in (500, 1000, 2000) if s < STEPS} | {STEPS}))   # PROBE_STEPS=20: a quick smoke run
REFERENCE_TARGETS = 4096

POSITIONS = {
    "sinusoidal": ({"method": "nope"}, {"sinusoidal": {"layout": "fairseq", "offset": 2}}),
    "rotary": ({"method": "rotary", "parameters": {"width": {"fraction": {"_0": 1.0}}, "base": 10000.0,
                                                   "layout": "halfSplit", "scaling": {"none": {}}}}, None),
    "t5": ({"method": "t5", "parameters": {"buckets": 32, "maxDistance": 128, "bidirectional": False, "shared": True,
                                           "key": "relative_attention_bias"}}, None),
    "alibi": ({"method": "alibi", "parameters": {}}, None),
    "nope": ({"method": "nope"}, None),
}


def read_tokens(path):
    """All tokens of a .tokens.zst file: `zstd -d` of it is the raw little-endian tokens (Docs/token-format.md)."""
    import zstandard
    with open(path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    return torch.from_numpy(np.frombuffer(raw, dtype="<u2").astype(np.int64))


class Probe(torch.nn.Module):
    def __init__(self, method):
        super().__init__()
        self.method = method
        p = {"embed.weight": torch.randn(VOCAB, WIDTH) * WIDTH ** -0.5}
        for n in range(LAYERS):
            for norm in ("attention_norm", "mlp_norm"):
                p[f"layers.{n}.{norm}.weight"] = torch.ones(WIDTH)
                p[f"layers.{n}.{norm}.bias"] = torch.zeros(WIDTH)
            for key, shape in (("attention.qkv", (3 * WIDTH, WIDTH)), ("attention.output", (WIDTH, WIDTH)),
                               ("mlp.up", (HIDDEN, WIDTH)), ("mlp.down", (WIDTH, HIDDEN))):
                std = 0.02 / math.sqrt(2 * LAYERS) if key in ("attention.output", "mlp.down") else 0.02
                p[f"layers.{n}.{key}.weight"] = torch.randn(shape) * std
                p[f"layers.{n}.{key}.bias"] = torch.zeros(shape[0])
        p["final_norm.weight"] = torch.ones(WIDTH)
        p["final_norm.bias"] = torch.zeros(WIDTH)
        if method == "t5":
            p["relative_attention_bias.weight"] = torch.zeros(32, HEADS)
        self.p = torch.nn.ParameterDict({k.replace(".", "/"): torch.nn.Parameter(v) for k, v in p.items()})

    def w(self, name):
        return self.p[name.replace(".", "/")]

    def norm(self, x, name):
        return F.layer_norm(x, (WIDTH,), self.w(f"{name}.weight"), self.w(f"{name}.bias"), 1e-5)

    def bias(self, T):
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        if self.method == "alibi":
            return -alibi_slopes(HEADS)[:, None, None] * (i - j).clamp(min=0)[None].float()
        if self.method == "t5":
            return self.w("relative_attention_bias.weight")[t5_bucket(j - i, 32, 128)].permute(2, 0, 1)
        return None

    def forward(self, tokens):                                    # tokens [B, T]
        B, T = tokens.shape
        x = self.w("embed.weight")[tokens] * math.sqrt(WIDTH)
        if self.method == "sinusoidal":
            x = x + sinusoidal("fairseq", torch.arange(T) + 2, WIDTH)
        positions = torch.arange(T)
        bias = self.bias(T)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for n in range(LAYERS):
            h = self.norm(x, f"layers.{n}.attention_norm")
            qkv = F.linear(h, self.w(f"layers.{n}.attention.qkv.weight"), self.w(f"layers.{n}.attention.qkv.bias"))
            q, k, v = (t.reshape(B, T, HEADS, HS).transpose(1, 2) for t in qkv.split(WIDTH, dim=-1))
            if self.method == "rotary":
                q, k = rotate(q, positions, "halfSplit"), rotate(k, positions, "halfSplit")
            scores = q @ k.transpose(-1, -2) / math.sqrt(HS)
            if bias is not None:
                scores = scores + bias
            scores = scores.masked_fill(~mask, float("-inf"))
            a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, WIDTH)
            x = x + F.linear(a, self.w(f"layers.{n}.attention.output.weight"), self.w(f"layers.{n}.attention.output.bias"))
            h = self.norm(x, f"layers.{n}.mlp_norm")
            h = F.gelu(F.linear(h, self.w(f"layers.{n}.mlp.up.weight"), self.w(f"layers.{n}.mlp.up.bias")))
            x = x + F.linear(h, self.w(f"layers.{n}.mlp.down.weight"), self.w(f"layers.{n}.mlp.down.bias"))
        return self.norm(x, "final_norm") @ self.w("embed.weight").T


def save(model, method, step, valid, folder):
    position, encoding = POSITIONS[method]
    arch = architecture(f"probe-{method}", position, encoding=encoding, vocabulary=VOCAB, width=WIDTH, layers=LAYERS,
                        heads=HEADS, hidden=HIDDEN, trained=L, embed_scale=math.sqrt(WIDTH))
    tensors = {k.replace("/", "."): v.detach().to(torch.float16).contiguous() for k, v in model.p.items()}
    metadata = {"format": "pt", "extrapolate.architecture": json.dumps(arch, sort_keys=True),
                "extrapolate.trainedLength": str(L), "extrapolate.step": str(step),
                "extrapolate.training": f"train.py: {STEPS} steps, batch {BATCH}x{L}, AdamW lr {LR}, seed {SEED}, KJV bytes",
                "extrapolate.referenceNLL": json.dumps(reference_nll(model, tensors, valid))}
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, f"step-{step}.safetensors"), metadata)


def reference_nll(model, tensors, valid):
    """This script's own mean NLL of the saved (fp16-rounded) weights on the validation split's first
    REFERENCE_TARGETS targets, in nonoverlapping windows of L under the paper's accounting (window [b, b+L)
    predicts [b+1, b+L]), per window length. The engine must reproduce these (Tests/EvaluationTests)."""
    saved = Probe(model.method)
    with torch.no_grad():
        for k, v in tensors.items():
            saved.w(k).copy_(v.to(torch.float32))
        result = {}
        for length in (L, 4 * L):
            inputs = valid[:REFERENCE_TARGETS].reshape(-1, length)
            targets = valid[1:REFERENCE_TARGETS + 1].reshape(-1, length)
            logprobs = saved(inputs).double().log_softmax(-1).gather(-1, targets[..., None])
            result[str(length)] = -logprobs.mean().item()
    return {"targets": REFERENCE_TARGETS, "meanNLL": result}


def train(method, data, valid):
    torch.manual_seed(SEED)
    model = Probe(method)
    decay = [p for k, p in model.p.items() if p.dim() >= 2]
    rest = [p for k, p in model.p.items() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=LR, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(SEED)           # same batches for every method
    started = time.time()
    for step in range(1, STEPS + 1):
        lr = LR * min(step / WARMUP, 0.5 * (1 + math.cos(math.pi * min(step, STEPS) / STEPS)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(data) - L - 1, (BATCH,), generator=generator)
        batch = torch.stack([data[s:s + L + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 250 == 0 or step == 1:
            with torch.no_grad():
                v = valid[: 64 * (L + 1)].reshape(64, L + 1)
                val = F.cross_entropy(model(v[:, :-1]).reshape(-1, VOCAB), v[:, 1:].reshape(-1)).item()
            print(f"{method:10s} step {step:5d}  loss {loss.item():.3f}  valid {val:.3f} nats "
                  f"({val / math.log(2):.3f} bits/byte)  {time.time() - started:.0f} s", flush=True)
        if step in SAVE_AT:
            save(model, method, step, valid, os.path.join(ROOT, "Datasets", "demo", method))


if __name__ == "__main__":
    torch.set_num_threads(2)
    train_tokens = read_tokens(os.path.join(ROOT, "Datasets", "kjv", "train.tokens.zst"))
    valid_tokens = read_tokens(os.path.join(ROOT, "Datasets", "kjv", "valid.tokens.zst"))
    for name in sys.argv[1:] or list(POSITIONS):
        train(name, train_tokens, valid_tokens)
