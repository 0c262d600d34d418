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


# --- fairseq's transformer_lm, re-declared (same module names as fairseq's TransformerDecoder) ------------------

def fairseq_sinusoidal(num, dim, padding_idx):
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float) * -scale)
    table = torch.arange(num, dtype=torch.float).unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(table), torch.cos(table)], dim=1).view(num, -1)
    table[padding_idx, :] = 0
    return table


class FairseqAttention(nn.Module):
    def __init__(self, dim, heads, alibi):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.heads, self.alibi = heads, alibi

    def forward(self, x):
        T, C = x.shape
        h, d = self.heads, C // self.heads
        q = (self.q_proj(x) * d ** -0.5).view(T, h, d).transpose(0, 1)
        k = self.k_proj(x).view(T, h, d).transpose(0, 1)
        v = self.v_proj(x).view(T, h, d).transpose(0, 1)
        weights = q @ k.transpose(1, 2)
        if self.alibi:
            slopes = torch.tensor([2 ** (-8 * (i + 1) / h) for i in range(h)])
            distance = torch.arange(T).view(T, 1) - torch.arange(T).view(1, T)
            weights = weights - slopes.view(h, 1, 1) * distance.clamp(min=0).float()
        weights = weights.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        return self.out_proj((weights.softmax(-1) @ v).transpose(0, 1).reshape(T, C))


class FairseqLayer(nn.Module):
    def __init__(self, dim, heads, ffn, pre, alibi, act):
        super().__init__()
        self.self_attn = FairseqAttention(dim, heads, alibi)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre, self.act = pre, act

    def forward(self, x):
        if self.pre:
            x = x + self.self_attn(self.self_attn_layer_norm(x))
            return x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))


class FairseqDecoder(nn.Module):
    def __init__(self, vocab, dim, layers, heads, ffn, pre, positions, alibi, act):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim, padding_idx=1)
        self.embed_scale = math.sqrt(dim)
        self.positions = positions
        if positions == "sinusoidal":
            self.embed_positions = nn.Module()
            self.embed_positions.register_buffer("_float_tensor", torch.FloatTensor(1))
        self.layers = nn.ModuleList([FairseqLayer(dim, heads, ffn, pre, alibi, act) for _ in range(layers)])
        self.layer_norm = nn.LayerNorm(dim) if pre else None
        self.output_projection = nn.Linear(dim, vocab, bias=False)
        self.output_projection.weight = self.embed_tokens.weight  # share_decoder_input_output_embed
        self.register_buffer("version", torch.Tensor([3]))
        for p in self.parameters():
            nn.init.normal_(p, std=0.2)

    def forward(self, tokens):
        x = self.embed_scale * self.embed_tokens(tokens)
        if self.positions == "sinusoidal":
            table = fairseq_sinusoidal(len(tokens) + 2, x.shape[1], 1)
            x = x + table[2: len(tokens) + 2]
        for layer in self.layers:
            x = layer(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.output_projection(x)


class FairseqLM(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.decoder = FairseqDecoder(**kwargs)

    def forward(self, tokens):
        return self.decoder(tokens[0]).unsqueeze(0)


def fairseq(name, alibi, seed):
    import argparse
    torch.manual_seed(seed)
    pre, positions, act = (True, "none", "gelu") if alibi else (False, "sinusoidal", "relu")
    model = FairseqLM(vocab=VOCAB, dim=32, layers=2, heads=4, ffn=64, pre=pre, positions=positions, alibi=alibi,
                      act=nn.GELU() if act == "gelu" else nn.ReLU())
    settings = dict(_name="transformer_lm", decoder_embed_dim=32, decoder_layers=2, decoder_attention_heads=4,
                    decoder_ffn_embed_dim=64, decoder_normalize_before=pre, decoder_learned_pos=False,
                    no_token_positional_embeddings=alibi, share_decoder_input_output_embed=True,
                    activation_fn=act, tokens_per_sample=32, max_target_positions=32, adaptive_input=False,
                    no_scale_embedding=False, dropout=0.1)
    if alibi:
        settings["alibi"] = True
    state = {
        # fairseq >= 0.10 saves cfg as a plain dict (OmegaConf.to_container); older versions saved args.
        "cfg": {"model": settings, "task": {"_name": "language_modeling", "tokens_per_sample": 32}} if alibi else None,
        "args": None if alibi else argparse.Namespace(arch="transformer_lm", **settings),
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "CrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 3.2}, "num_updates": 1500}],
        "extra_state": {"epoch": 3, "train_iterator": {"epoch": 3, "iterations_in_epoch": 10}, "val_loss": 3.2},
    }
    folder = MODELS / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "checkpoint_3_1500.pt")
    tokens = torch.randint(0, VOCAB, (32,), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    write_reference(folder, tokens, log_probs(model.eval(), tokens), f"torch {torch.__version__} (fairseq transformer_lm, re-declared)")


def composer():
    """A Composer checkpoint of a Hugging Face model, laid out as Composer's Trainer saves it."""
    source = MODELS / "gpt2"
    reference = json.loads((source / "reference.json").read_text())
    weights = load_file(source / "model.safetensors")
    config = json.loads((source / "config.json").read_text())
    state = {
        "state": {
            "model": {"model." + k: v for k, v in weights.items()},
            "optimizers": {"DecoupledAdamW": {"state": {}, "param_groups": []}},
            "timestamp": {"epoch": 1, "batch": 20, "sample": 160, "token": 10240},
            "integrations": {"huggingface": {
                "model": {"config": {"class": "transformers.models.gpt2.configuration_gpt2.GPT2Config",
                                     "content": config}},
                "tokenizer": {}}},
            "run_name": "composer-gpt2",
        },
        "rng": [{"python": 1, "torch": torch.get_rng_state()}],
    }
    folder = MODELS / "composer-gpt2"
    folder.mkdir(exist_ok=True)
    torch.save(state, folder / "ep1-ba20-rank0.pt")
    write_reference(folder, reference["tokens"], reference["logprobs"], reference["source"] + " (gpt2 fixture's weights)")


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


def empty_tensors():
    """A state dict with tensors that have a dimension of 0, as real checkpoints hold (an unused buffer, an empty
    bias): torch.save writes a [0, 5] tensor with strides (5, 1), whose span must count as nothing, not -1 element."""
    folder = HERE / "torch-empty"
    folder.mkdir(exist_ok=True)
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "e": torch.empty(0, 5),
             "s": torch.empty(3, 0), "z": torch.empty(0)}
    torch.save(state, folder / "model.pt")
    torch.save(state, folder / "legacy.pt", _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    if "--empty" in __import__("sys").argv:
        empty_tensors()
        raise SystemExit(0)
    nanogpt("nanogpt", bias=True)
    nanogpt("nanogpt-nobias-compiled", bias=False, compiled=True, seed=1)
    nanogpt("nanogpt-legacy", bias=True, legacy=True, seed=2)
    gpt2_bin()
    fairseq("fairseq-sinusoidal", alibi=False, seed=3)
    fairseq("fairseq-alibi", alibi=True, seed=4)
    composer()
    if "--hostile" in __import__("sys").argv:
        hostile()
    print("wrote nanogpt*, gpt2-bin*, fairseq-*, composer-gpt2 (and hostile/ with --hostile)")
