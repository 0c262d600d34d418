#!/usr/bin/env python3
"""PyTorch checkpoint fixtures, written by real PyTorch the way trainers write them (run by hand, not by CI).

    pip install torch safetensors numpy
    python3 Tests/Fixtures/make_torch_checkpoints.py

Writes, under Tests/Fixtures/models/ (where the engine's reference test loads every folder):
- nanogpt/ckpt.pt: nanoGPT's GPT (model.py's classes re-declared below), trained a few steps, saved exactly as
  nanoGPT's train.py saves: {model, optimizer, model_args, iter_num, best_val_loss, config};
- nanogpt-nobias-compiled/ckpt.pt: bias=False, keys prefixed `_orig_mod.` as a torch.compile'd model's are;
- nanogpt-legacy/ckpt.pt: the first, with _use_new_zipfile_serialization=False (the pre-1.6 format);
- gpt2-bin/: the gpt2 fixture's weights as pytorch_model.bin (one weight stored as a transposed, non-contiguous
  view) with its config.json and its transformers reference;
- gpt2-bin-sharded/: the same in two shards with pytorch_model.bin.index.json.
Each gets reference.json: the per-token log-probabilities PyTorch computes for the same weights.

And under Tests/Fixtures/hostile/ the files a reader must refuse without side effects: a pickle whose REDUCE calls
os.system (it would create /tmp/extrapolate-pwned), a 100,000-deep nesting, a storage declaring 2^60 elements, a
truncated zip.
"""
import io
import json
import math
import pathlib
import shutil
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

HERE = pathlib.Path(__file__).parent
MODELS = HERE / "models"
HOSTILE = HERE / "hostile"
VOCAB = 96


# --- nanoGPT's model.py, re-declared (same module names, so the same state-dict keys) ---------------------------

class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        self.n_head, self.n_embd = c["n_head"], c["n_embd"]

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c["n_embd"], bias=c["bias"])
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c["n_embd"], bias=c["bias"])
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab_size"], c["n_embd"]),
            wpe=nn.Embedding(c["block_size"], c["n_embd"]),
            drop=nn.Dropout(0.0),
            h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
            ln_f=LayerNorm(c["n_embd"], bias=c["bias"]),
        ))
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT
        self.apply(self._init)

    def _init(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.2)
            if isinstance(module, nn.Linear) and module.bias is not None:
                torch.nn.init.normal_(module.bias, std=0.05)

    def forward(self, idx):
        t = idx.size(1)
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(t))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def log_probs(model, tokens):
    with torch.no_grad():
        logits = model(torch.tensor([tokens]))[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    return [lp[i, tokens[i + 1]].item() for i in range(len(tokens) - 1)]


def write_reference(folder, tokens, logprobs, source, dtype="float32"):
    (folder / "reference.json").write_text(json.dumps(
        {"source": source, "model_type": folder.name, "stored_dtype": dtype, "tokens": tokens, "logprobs": logprobs}))


def nanogpt(name, bias, compiled=False, legacy=False, seed=0):
    torch.manual_seed(seed)
    model_args = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, bias=bias, vocab_size=VOCAB, dropout=0.0)
    model = GPT(model_args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, VOCAB, (4, 33))
    steps = 3 * (seed + 1)  # a few real steps, so the optimizer has state as in a real run (iter_num differs per file)
    for _ in range(steps):
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), data[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = model.state_dict()
    if compiled:
        state = {"_orig_mod." + k: v for k, v in state.items()}
    checkpoint = {
        "model": state,
        "optimizer": optimizer.state_dict(),
        "model_args": model_args,
        "iter_num": steps,
        "best_val_loss": loss.detach(),
        "config": {"batch_size": 4, "learning_rate": 1e-3, "dataset": "random", "compile": compiled},
    }
    folder = MODELS / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, folder / "ckpt.pt", _use_new_zipfile_serialization=not legacy)
    tokens = torch.randint(0, VOCAB, (32,), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    write_reference(folder, tokens, log_probs(model.eval(), tokens), f"torch {torch.__version__} (nanoGPT model.py)")


def gpt2_bin():
    source = MODELS / "gpt2"
    reference = json.loads((source / "reference.json").read_text())
    weights = load_file(source / "model.safetensors")
    # One weight as a non-contiguous view (a transpose of a contiguous copy): torch.save keeps its strides.
    name = "transformer.h.0.mlp.c_fc.weight"
    weights[name] = weights[name].t().contiguous().t()
    assert not weights[name].is_contiguous()
    single = MODELS / "gpt2-bin"
    single.mkdir(exist_ok=True)
    torch.save(weights, single / "pytorch_model.bin")
    shutil.copy(source / "config.json", single / "config.json")
    write_reference(single, reference["tokens"], reference["logprobs"], reference["source"] + " (gpt2 fixture's weights)")
    sharded = MODELS / "gpt2-bin-sharded"
    sharded.mkdir(exist_ok=True)
    names = sorted(weights)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for index, part in enumerate(halves, start=1):
        shard = f"pytorch_model-{index:05d}-of-00002.bin"
        torch.save({n: weights[n] for n in part}, sharded / shard)
        weight_map.update({n: shard for n in part})
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copy(source / "config.json", sharded / "config.json")
    write_reference(sharded, reference["tokens"], reference["logprobs"], reference["source"] + " (gpt2 fixture's weights)")


class Pwned:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/extrapolate-pwned",))


def hostile():
    HOSTILE.mkdir(exist_ok=True)
    torch.save({"model": {"w": torch.zeros(2)}, "payload": Pwned()}, HOSTILE / "os-system.pt")
    # 100,000 nested lists: MARK after MARK, never closed.
    (HOSTILE / "deep-nesting.pt").write_bytes(b"\x80\x02" + b"(" * 100_000 + b"]" + b"." )
    # A storage that declares 2^60 float elements.
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
        entries = {info.filename: z.read(info.filename) for info in z.infolist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    # The numel is pickled as BININT1 4; make it LONG1 8 bytes of 2^60 in the persistent id.
    data = entries[pkl]
    marker = b"X\x03\x00\x00\x00cpuq"
    at = data.index(b"cpu")
    # after 'cpu' and its memo put comes K\x04 (BININT1 4): replace with LONG1 2^60
    i = data.index(b"K\x04", at)
    entries[pkl] = data[:i] + b"\x8a\x08" + (1 << 60).to_bytes(8, "little") + data[i + 2:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for n, content in entries.items():
            z.writestr(n, content)
    (HOSTILE / "huge-storage.pt").write_bytes(out.getvalue())
    whole = (MODELS / "nanogpt" / "ckpt.pt").read_bytes()
    (HOSTILE / "truncated.pt").write_bytes(whole[: len(whole) // 2])


if __name__ == "__main__":
    nanogpt("nanogpt", bias=True)
    nanogpt("nanogpt-nobias-compiled", bias=False, compiled=True, seed=1)
    nanogpt("nanogpt-legacy", bias=True, legacy=True, seed=2)
    gpt2_bin()
    hostile()
    print("wrote nanogpt, nanogpt-nobias-compiled, nanogpt-legacy, gpt2-bin, gpt2-bin-sharded and hostile/")
