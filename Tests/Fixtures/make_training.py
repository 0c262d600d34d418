#!/usr/bin/env python3
"""Reference optimisation for the training tests: torch.optim.AdamW and a 20-step PyTorch training run.

Run by hand after make_gradients.py, never by CI (the Swift tests read the committed output):

    .venv-ref5/bin/python Tests/Fixtures/make_training.py

For each case (spec-t5: a shared 2-D T5 table, tied head; gpt2: Conv1D matrices, learned positions) it writes into
`Tests/Fixtures/models/<name>/`:

* `adamw-steps.safetensors`: the checkpoint's weights after STEPS_WITH_GIVEN_GRADIENT AdamW steps that each take the
  gradient in `gradients.safetensors` (torch's own) — clipped to norm 1 by `clip_grad_norm_`, weight decay 0.1 on
  parameters of two or more dimensions, 0 on the rest, betas (0.9, 0.95), lr 1e-3: the optimiser alone.
* `training-curve.json`: 20 steps of training from the checkpoint's weights with `Datasets/demo/train.py`'s recipe
  (AdamW as above at peak lr 2e-3, warm-up 5 steps then cosine to 0 at step 20, clipping at 1), each step on BATCH
  windows of LENGTH + 1 reference tokens at the recorded starts: the loss and gradient norm of every step.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference  # noqa: E402

OUT = make_reference.OUT
STEPS_WITH_GIVEN_GRADIENT = 3
CURVE_STEPS, WARMUP, PEAK_LR, BATCH, LENGTH = 20, 5, 2e-3, 4, 32
torch.set_num_threads(1)


def read(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def optimizer(named, lr):
    decay = [p for _, p in named if p.dim() >= 2]
    rest = [p for _, p in named if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def adamw_steps(name):
    folder = os.path.join(OUT, name)
    weights, _ = read(os.path.join(folder, "model.safetensors"))
    gradients, _ = read(os.path.join(folder, "gradients.safetensors"))
    params = {k: torch.nn.Parameter(v.clone()) for k, v in weights.items()}
    opt = optimizer(list(params.items()), 1e-3)
    for _ in range(STEPS_WITH_GIVEN_GRADIENT):
        for k, p in params.items():
            p.grad = gradients[k].clone()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
    save_file({k: p.detach().contiguous() for k, p in params.items()}, os.path.join(folder, "adamw-steps.safetensors"),
              {"steps": str(STEPS_WITH_GIVEN_GRADIENT), "source": f"torch {torch.__version__} optim.AdamW"})
    print(f"{name}: {STEPS_WITH_GIVEN_GRADIENT} AdamW steps")


def model_and_loss(name):
    """The case's parameters (named as its checkpoint) and a function window -> mean NLL."""
    folder = os.path.join(OUT, name)
    if name.startswith("spec-"):
        weights, metadata = read(os.path.join(folder, "model.safetensors"))
        arch = json.loads(metadata["extrapolate.architecture"])
        params = {k: torch.nn.Parameter(v) for k, v in weights.items()}
        return list(params.items()), lambda w: F.cross_entropy(
            make_reference.reference_forward(arch, params, w[:-1]).double(), w[1:])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    return list(model.named_parameters()), lambda w: F.cross_entropy(model(w[None, :-1]).logits[0].double(), w[1:])


def curve(name):
    folder = os.path.join(OUT, name)
    with open(os.path.join(folder, "reference.json")) as f:
        tokens = torch.tensor(json.load(f)["tokens"])
    named, loss_of = model_and_loss(name)
    opt = optimizer(named, PEAK_LR)
    generator = torch.Generator().manual_seed(7)
    steps = []
    for step in range(1, CURVE_STEPS + 1):
        lr = PEAK_LR * min(step / WARMUP, 0.5 * (1 + math.cos(math.pi * min(step, CURVE_STEPS) / CURVE_STEPS)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(tokens) - LENGTH - 1, (BATCH,), generator=generator).tolist()
        opt.zero_grad(set_to_none=True)
        loss = sum(loss_of(tokens[s:s + LENGTH + 1]) for s in starts) / BATCH
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        opt.step()
        steps.append({"step": step, "starts": starts, "loss": float(loss.detach()), "gradientNorm": float(norm),
                      "learningRate": lr})
    with open(os.path.join(folder, "training-curve.json"), "w") as f:
        json.dump({"source": f"torch {torch.__version__}, make_training.py", "length": LENGTH, "batch": BATCH,
                   "warmup": WARMUP, "peakLearningRate": PEAK_LR, "steps": steps}, f, indent=1)
    print(f"{name}: losses {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}")


if __name__ == "__main__":
    for case in ("spec-t5", "gpt2"):
        adamw_steps(case)
        curve(case)
