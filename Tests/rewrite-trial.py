#!/usr/bin/env python3
"""A resumed nanoGPT run that saves ckpt.pt in place every SECONDS (run by hand by Tests/rewrite-trial.sh).

    python3 Tests/rewrite-trial.py OUT_DIR [SECONDS] [FIRST_ITER] [SAVES] [EVERY]

Trains nanoGPT's GPT (model.py's classes, as re-declared by Tests/Fixtures/make_torch_checkpoints.py) on random
tokens of a 96-token vocabulary and saves exactly what nanoGPT's train.py saves — {model, optimizer, model_args,
iter_num, best_val_loss, config} with torch.save over OUT_DIR/ckpt.pt — at iterations FIRST_ITER, FIRST_ITER + EVERY,
… (SAVES of them), SECONDS apart. Prints each iter_num as it is saved.
"""
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).parent / "Fixtures"))
from make_torch_checkpoints import GPT, VOCAB  # noqa: E402

out = pathlib.Path(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
first = int(sys.argv[3]) if len(sys.argv) > 3 else 300
saves = int(sys.argv[4]) if len(sys.argv) > 4 else 4
every = int(sys.argv[5]) if len(sys.argv) > 5 else 100
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model_args = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, bias=True, vocab_size=VOCAB, dropout=0.0)
model = GPT(model_args)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
data = torch.randint(0, VOCAB, (8, 33))
for save in range(saves):
    started = time.time()
    for _ in range(5):  # a few real steps between saves, so every save holds different weights
        loss = F.cross_entropy(model(data[:, :-1]).reshape(-1, VOCAB), data[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    iter_num = first + save * every
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "model_args": model_args,
                  "iter_num": iter_num, "best_val_loss": loss.detach(), "config": {"out_dir": str(out)}}
    torch.save(checkpoint, out / "ckpt.pt")
    print(f"saved iter {iter_num}", flush=True)
    if save + 1 < saves:
        time.sleep(max(0.0, seconds - (time.time() - started)))
