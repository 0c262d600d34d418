"""Train a tiny byte-level Llama (rotary) that retrieves passkeys at its trained length, for the passkey heatmaps.

The demo probes (Datasets/demo) were trained on text only and retrieve nothing at any length; this model is trained
on the passkey task itself, with the exact prompt Extrapolate builds (Sources/Evaluation/Passkey.swift: Landmark
Attention's template, filler cut in characters, the key at a depth), at lengths up to L = 320 bytes. So it retrieves
at 1x, and what happens at 2x and 4x — with the checkpoint as it is, or under a rotary extension — is the
length-extrapolation question passkey retrieval asks.

    python3 Datasets/passkey/train_retriever.py --out /tmp/retriever            # about 25 minutes on one core
    extrapolate passkey --checkpoint /tmp/retriever --bytes --lengths 1x,2x,4x --extensions linear,yarn --svg p.svg

Writes config.json and model.safetensors (transformers' save_pretrained; max_position_embeddings = 320 is the
trained length Extrapolate reads). Generated weights stay out of git.
"""

import argparse
import random

import torch
from transformers import LlamaConfig, LlamaForCausalLM

INSTRUCTION = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
               "I will quiz you about the important information there.")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
QUESTION = "What is the pass key? The pass key is"


def filler(count):
    unit = FILLER + " "
    return "".join(unit[i % len(unit)] for i in range(count))


def prompt(key, characters, depth):
    before = int(characters * depth / 100)
    key_line = f"The pass key is {key}. Remember it. {key} is the pass key."
    return "\n".join([INSTRUCTION, filler(before), key_line, filler(characters - before), QUESTION])


def example(length, rng):
    """Bytes of one prompt and its key, at most length + 1 bytes, and where the key starts."""
    key = rng.randrange(10000, 100000)
    bare = len(prompt(key, 0, 0).encode()) + 6
    characters = rng.randrange(0, max(1, length + 1 - bare))
    text = prompt(key, characters, rng.uniform(0, 100))
    data = list((text + f" {key}").encode())
    return data, len(text.encode()) + 1  # the key's digits start after the space


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--length", type=int, default=320)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # beside other work on a 2-core machine; more threads barely help a model this small
    rng = random.Random(args.seed)
    config = LlamaConfig(
        vocab_size=256, hidden_size=128, intermediate_size=512, num_hidden_layers=args.layers, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=args.length, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.steps, pct_start=0.05)
    for step in range(args.steps):
        batch = [example(args.length, rng) for _ in range(args.batch)]
        width = max(len(data) for data, _ in batch)
        ids = torch.zeros(args.batch, width, dtype=torch.long)
        labels = torch.full((args.batch, width), -100, dtype=torch.long)
        for row, (data, start) in enumerate(batch):
            ids[row, : len(data)] = torch.tensor(data)
            # The key's digits are the targets (and, at a tenth of the weight, the rest of the text).
            labels[row, start : len(data)] = torch.tensor(data[start:])
        logits = model(input_ids=ids).logits[:, :-1]
        targets = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1), ignore_index=-100)
        text = ids[:, 1:].clone()
        text[targets != -100] = -100
        for row, (data, _) in enumerate(batch):
            text[row, len(data) - 1 :] = -100
        loss = loss + 0.1 * torch.nn.functional.cross_entropy(
            logits.reshape(-1, 256), text.reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps - 1:
            with torch.no_grad():
                hits = (logits.argmax(-1) == targets) | (targets == -100)
                exact = hits.all(dim=1).float().mean().item()
            print(f"step {step} loss {loss.item():.4f} exact {exact:.2f}", flush=True)
    model.save_pretrained(args.out, safe_serialization=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
