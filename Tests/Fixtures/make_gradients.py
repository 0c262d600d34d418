#!/usr/bin/env python3
"""Reference gradients for the training tests: torch.autograd on the reference models of make_reference.py.

Run by hand, never by CI (the Swift tests read the committed output and need no Python):

    .venv-ref5/bin/python Tests/Fixtures/make_gradients.py            # every case
    .venv-ref5/bin/python Tests/Fixtures/make_gradients.py gpt2 spec-t5   # named cases only

For each case writes `Tests/Fixtures/models/<name>/gradients.safetensors`: d(mean NLL)/d(parameter) for every tensor
of the checkpoint, under the checkpoint's own name and in its stored shape, for one window of the folder's
reference tokens: the first LENGTH tokens predict the LENGTH tokens after each (the evaluation's window, and a
training step's). The metadata carries the window (`tokens`, JSON), `length`, the mean NLL (`loss`) and the source.

Hugging Face families run through `transformers` itself (eager attention, eval mode: no dropout), position methods
without a family through make_reference.py's plain PyTorch model written from the spec formulas. The negative
log-likelihood is taken in float64 from the float32 logits, as the reference log-probabilities are.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference  # noqa: E402

OUT = make_reference.OUT
LENGTH = 100  # past one 64-row tile of the backward pass, and past every sliding window
RENAMED = {"embed_out.weight": "lm_head.weight"}
torch.set_num_threads(1)

# Every layer kind the backward pass covers: learned and sinusoidal positions, LayerNorm and RMSNorm (plain, 1 + w,
# on q/k per head and over all heads), pre-, post-norm and parallel residuals, fused (concatenated and per-head) and
# separate q/k/v, GQA and MQA, GELU (erf, tanh), ReLU and SwiGLU/GeGLU, tied and untied heads, soft caps, windows,
# and every position method.
HF_CASES = ["gpt2", "opt", "opt-postln-project", "bloom-8h", "mpt", "gpt_neox-partial", "gpt_neox-sequential",
            "llama-gqa", "llama-mqa-headdim", "mistral-window", "qwen2", "qwen3", "olmo2", "phi3", "gemma", "gemma2"]
SPEC_CASES = ["spec-nope", "spec-sinusoidal-fairseq", "spec-sinusoidal-vaswani", "spec-alibi",
              "spec-rotary-interleaved", "spec-rotary-window", "spec-t5", "spec-kerple-log", "spec-kerple-power",
              "spec-xpos", "spec-sandwich", "spec-fire"]


def window(folder):
    with open(os.path.join(folder, "reference.json")) as f:
        tokens = torch.tensor(json.load(f)["tokens"])
    return tokens[: LENGTH + 1]


def nll(logits, tokens):
    return F.cross_entropy(logits.double(), tokens[1:])


def stored_names(folder):
    path = os.path.join(folder, "model.safetensors")
    with safe_open(path, "pt") as f:
        return list(f.keys())


def write(folder, gradients, tokens, loss, source):
    metadata = {"tokens": json.dumps(tokens.tolist()), "length": str(LENGTH), "loss": repr(float(loss.detach())),
                "source": source}
    save_file({k: v.contiguous() for k, v in gradients.items()}, os.path.join(folder, "gradients.safetensors"),
              metadata)
    print(f"{os.path.basename(folder)}: {len(gradients)} tensors, loss {float(loss):.6f}")


def hf_case(name):
    folder = os.path.join(OUT, name)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    tokens = window(folder)
    loss = nll(model(tokens[None, :LENGTH]).logits[0], tokens)
    loss.backward()
    parameters = dict(model.named_parameters())
    state = {k: v for k, v in model.state_dict(keep_vars=True).items()}
    gradients = {}
    for stored in stored_names(folder):
        # transformers 5 holds GPT-NeoX's stored `embed_out` as `lm_head` (the engine's Binder.renamed).
        parameter = parameters.get(RENAMED.get(stored, stored))
        if parameter is None:
            parameter = state.get(stored)
        if parameter is None:        # the base model's names (`h.0…` for `transformer.h.0…`)
            matches = [p for n, p in parameters.items() if n.endswith("." + stored)]
            parameter = matches[0] if len(matches) == 1 else None
        if parameter is None or parameter.grad is None:
            raise SystemExit(f"{name}: no gradient for stored tensor {stored}")
        gradients[stored] = parameter.grad.detach().clone()
    write(folder, gradients, tokens, loss, f"torch {torch.__version__} autograd, transformers {transformers.__version__}")


def spec_case(name):
    folder = os.path.join(OUT, name)
    path = os.path.join(folder, "model.safetensors")
    with safe_open(path, "pt") as f:
        arch = json.loads(f.metadata()["extrapolate.architecture"])
        weights = {k: f.get_tensor(k).requires_grad_(True) for k in f.keys()}
    tokens = window(folder)
    loss = nll(make_reference.reference_forward(arch, weights, tokens[:LENGTH]), tokens)
    loss.backward()
    write(folder, {k: w.grad for k, w in weights.items()}, tokens, loss,
          f"torch {torch.__version__} autograd, make_reference.py's spec model")


if __name__ == "__main__":
    only = set(sys.argv[1:])
    for case in HF_CASES:
        if not only or case in only:
            hf_case(case)
    for case in SPEC_CASES:
        if not only or case in only:
            spec_case(case)
