#!/usr/bin/env python3
"""Reference passkey-retrieval verdicts and key log-probabilities (Tests/EvaluationTests/PasskeyTests.swift).

Run by hand, never by CI (the Swift tests read the committed output and need no Python):

    pip install "transformers>=5" torch safetensors tokenizers
    python Tests/Fixtures/make_passkey_reference.py

Builds two tiny random Hugging Face models whose vocabularies are those of two fixture tokenizers, and saves each
with its tokenizer to `Tests/Fixtures/passkey/<name>/` (config.json, model.safetensors, tokenizer.json):

  llama   rotary, GQA; the SentencePiece-style llama2 fixture tokenizer (BOS template, byte fallback)
  gpt2    learned positions; the byte-level gpt2 fixture tokenizer

For each model, length, depth and trial it writes the prompt exactly as Docs/spec/passkey.md defines it (the same
filler fitting, the same SplitMix64 keys), tokenized by the `tokenizers` library, and records in `reference.json`:
the token ids, where the key starts, the key's log-probabilities (float32 logits, float64 log-softmax), and two
verdicts that must agree: `transformers`' greedy `generate` writing the key, and the argmax at every key position
under teacher forcing (what Extrapolate computes in one pass). For the first trial of each cell it also records the
argmax token at every position, so the tests can check the engine's greedy flags where they are true.
"""
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import randomize, rope  # noqa: E402  (the engine fixtures' weight draw and rope keys)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "passkey")
torch.set_num_threads(1)

# The template (Docs/spec/passkey.md): Landmark Attention's run_test.py, as Position Interpolation and YaRN used it.
INSTRUCTION = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
               "I will quiz you about the important information there.")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
QUESTION = "What is the pass key? The pass key is"
MASK = (1 << 64) - 1


def key(seed, trial):
    """The first SplitMix64 value seeded with seed + trial, as 10000…99999."""
    state = (seed + trial + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return 10000 + (z ^ (z >> 31)) % 90000


def filler_text(count):
    unit = FILLER + " "
    return (unit * (count // len(unit) + 1))[:count] if count > 0 else ""


def prompt(passkey, characters, depth):
    before = int(characters * depth / 100)
    return "\n".join([INSTRUCTION, filler_text(before),
                      f"The pass key is {passkey}. Remember it. {passkey} is the pass key.",
                      filler_text(characters - before), QUESTION])


def fitting(tokenizer, length, passkey, depth):
    """The prompt with the most filler whose pass (every token but the last) is at most `length` positions."""
    def count(characters):
        return len(tokenizer.encode(prompt(passkey, characters, depth) + f" {passkey}").ids) - 1
    if count(0) > length:
        return None
    low, high = 0, 8 * length + 64
    while low < high:
        middle = (low + high + 1) // 2
        if count(middle) <= length:
            low = middle
        else:
            high = middle - 1
    text = prompt(passkey, low, depth)
    ids = tokenizer.encode(text + f" {passkey}").ids
    prompt_ids = tokenizer.encode(text).ids
    assert ids[:len(prompt_ids)] == prompt_ids, "the prompt's tokens must start the prompt-and-key's"
    return low, ids, len(prompt_ids)


MODELS = {
    "llama": (LlamaConfig(vocab_size=1456, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128,
                          bos_token_id=1, eos_token_id=2, **rope(10000.0)), "llama2", [128, 256, 512]),
    "gpt2": (GPT2Config(vocab_size=1200, n_embd=64, n_layer=2, n_head=4, n_positions=512, bos_token_id=1199,
                        eos_token_id=1199), "gpt2", [128, 256, 512]),
}
DEPTHS = [0, 50, 100]
TRIALS = 3
SEED = 0


def write(name, config, tokenizer_name, lengths, seed=7):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    randomize(model, seed)
    model.save_pretrained(folder, safe_serialization=True)
    source = os.path.join(HERE, "tokenizers", tokenizer_name, "tokenizer.json")
    shutil.copy(source, os.path.join(folder, "tokenizer.json"))
    tokenizer = Tokenizer.from_file(source)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    cells = []
    agreed = 0
    for length in lengths:
        for depth in DEPTHS:
            for trial in range(TRIALS):
                passkey = key(SEED, trial)
                fitted = fitting(tokenizer, length, passkey, depth)
                if fitted is None:
                    continue
                characters, ids, key_start = fitted
                tokens = torch.tensor(ids)
                with torch.no_grad():
                    logits = model(tokens[None, :-1]).logits[0].float()
                    generated = model.generate(tokens[None, :key_start], attention_mask=torch.ones(1, key_start,
                                               dtype=torch.long), max_new_tokens=len(ids) - key_start,
                                               do_sample=False, pad_token_id=0)[0, key_start:].tolist()
                logprobs = F.log_softmax(logits.double(), dim=-1)
                positions = range(key_start - 1, len(ids) - 1)
                key_logprobs = [logprobs[p, ids[p + 1]].item() for p in positions]
                argmax = logits.argmax(dim=-1).tolist()
                by_argmax = all(argmax[p] == ids[p + 1] for p in positions)
                by_generate = generated == ids[key_start:]
                agreed += by_argmax == by_generate
                cell = dict(length=length, depth=depth, trial=trial, key=passkey, filler_characters=characters,
                            tokens=ids, key_start=key_start, key_log_probabilities=key_logprobs,
                            retrieved=by_generate, retrieved_by_argmax=by_argmax, generated=generated)
                if trial == 0:
                    cell["argmax"] = argmax
                cells.append(cell)
    reference = dict(source=f"transformers {transformers.__version__}, tokenizers (Tokenizer.from_file)",
                     tokenizer=tokenizer_name, seed=SEED, trials=TRIALS, depths=DEPTHS, lengths=lengths,
                     cells=cells)
    with open(os.path.join(folder, "reference.json"), "w") as out:
        json.dump(reference, out, indent=1)
    print(f"{name}: {len(cells)} prompts, generate and argmax agree on {agreed}; "
          f"{sum(c['retrieved'] for c in cells)} retrieved")


def wilson(successes, trials, z=1.959963984540054):
    """Wilson's score interval (E. B. Wilson, 1927), written from the formula."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * (p * (1 - p) / trials + z * z / (4 * trials * trials)) ** 0.5
    return [max(0.0, centre - half), min(1.0, centre + half)]


if __name__ == "__main__":
    for name, (config, tokenizer_name, lengths) in MODELS.items():
        write(name, config, tokenizer_name, lengths)
    cases = [(k, n) for n in (1, 3, 10, 40) for k in sorted({0, 1, n // 2, n - 1, n})]
    with open(os.path.join(OUT, "wilson.json"), "w") as out:
        json.dump([dict(successes=k, trials=n, interval=wilson(k, n)) for k, n in cases], out, indent=1)
