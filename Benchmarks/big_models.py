#!/usr/bin/env python3
"""7B-class checkpoints on a CPU node: write them, then measure load time, peak memory and tokens/s.

    python3 Benchmarks/big_models.py write OUT SHAPE        # OUT/SHAPE/: config.json + sharded bf16 safetensors
    python3 Benchmarks/big_models.py run OUT SHAPE [--lengths 2048,4096] [--binary .build/release/extrapolate]
    python3 Benchmarks/big_models.py both OUT SHAPE ...     # write, run, then delete the weights

Shapes (random bf16 weights, normal with std 0.02, norms at 1; Hugging Face layout and names, shards of at most
5 GB and a model.safetensors.index.json, as `save_pretrained` writes them):

    llama-2-7b    Llama-2-7B: 32 layers, width 4096, 32 heads, SwiGLU 11008, vocabulary 32,000, trained at 4,096
    mistral-7b    Mistral-7B-v0.1: 32 layers, width 4096, 32 query / 8 key-value heads, SwiGLU 14336,
                  vocabulary 32,000, a 4,096-token sliding window, trained at 32,768 (max_position_embeddings)
    tiny-llama    the Llama-2-7B config at 2 layers and width 256 (checks this script in seconds)

`run` scores --length tokens of OUT/tokens-32000.u16 (random ids, written beside the models) with
`extrapolate score --summary --json` under `/usr/bin/time -v`, one process per length, and prints load seconds,
tokens/s of the pass, peak RSS, the stored weight bytes and what the engine estimated beforehand. Needs only
numpy (no torch): 13.5 GB of bf16 is written tensor by tensor, never held whole.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

SHAPES = {
    "llama-2-7b": dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=4096, intermediate_size=11008,
        num_attention_heads=32, num_key_value_heads=32, num_hidden_layers=32, vocab_size=32000,
        max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu",
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, initializer_range=0.02, torch_dtype="bfloat16"),
    "mistral-7b": dict(
        architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=4096, intermediate_size=14336,
        num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32, vocab_size=32000,
        max_position_embeddings=32768, sliding_window=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
        hidden_act="silu", tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, initializer_range=0.02,
        torch_dtype="bfloat16"),
}
SHAPES["tiny-llama"] = dict(SHAPES["llama-2-7b"], hidden_size=256, intermediate_size=688, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=4)
SHARD_BYTES = 5_000_000_000


def tensors(config):
    """(name, shape) in the order save_pretrained writes them."""
    c, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    h, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hs = c // h
    yield "model.embed_tokens.weight", (v, c)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (c,)
        yield p + "self_attn.q_proj.weight", (h * hs, c)
        yield p + "self_attn.k_proj.weight", (kv * hs, c)
        yield p + "self_attn.v_proj.weight", (kv * hs, c)
        yield p + "self_attn.o_proj.weight", (c, h * hs)
        yield p + "post_attention_layernorm.weight", (c,)
        yield p + "mlp.gate_proj.weight", (f, c)
        yield p + "mlp.up_proj.weight", (f, c)
        yield p + "mlp.down_proj.weight", (c, f)
    yield "model.norm.weight", (c,)
    yield "lm_head.weight", (v, c)


def bf16(name, shape, rng):
    """Random bf16 bits: N(0, 0.02) rounded to nearest even; norm weights are 1."""
    if len(shape) == 1:
        return np.full(shape, 0x3F80, dtype=np.uint16)
    bits = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def write(out, shape):
    config = SHAPES[shape]
    folder = os.path.join(out, shape)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    shards, current, size = [], [], 0
    for name, dims in tensors(config):
        nbytes = 2 * int(np.prod(dims))
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append((name, dims))
        size += nbytes
    shards.append(current)
    rng = np.random.default_rng(0)
    weight_map, total = {}, 0
    for index, shard in enumerate(shards):
        file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, dims in shard:
            nbytes = 2 * int(np.prod(dims))
            header[name] = {"dtype": "BF16", "shape": list(dims), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        with open(os.path.join(folder, file), "wb") as f:
            f.write(len(encoded).to_bytes(8, "little"))
            f.write(encoded)
            for name, dims in shard:
                f.write(bf16(name, dims, rng).tobytes())
        total += offset
        print(f"{shape}: wrote {file} ({offset / 1e9:.2f} GB)", file=sys.stderr)
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tokens = os.path.join(out, "tokens-32000.u16")
    if not os.path.exists(tokens):
        np.random.default_rng(1).integers(0, 32000, size=70000, dtype=np.uint16).tofile(tokens)
    return total


def run(out, shape, lengths, binary, threads, precisions=("float32",)):
    folder = os.path.join(out, shape)
    stored = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".safetensors"))
    rows = []
    for length, precision in [(length, precision) for length in lengths for precision in precisions]:
        command = ["/usr/bin/time", "-v", binary, "score", "--checkpoint", folder,
                   "--tokens", os.path.join(out, "tokens-32000.u16"), "--length", str(length), "--summary", "--json",
                   "--precision", precision]
        if threads:
            command += ["--threads", str(threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"{shape} at {length}: extrapolate failed")
        result = json.loads(done.stdout)
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) * 1024
        estimate = next((n for n in result.get("notes", []) if n.startswith("weights held")), "")
        rows.append(dict(shape=shape, length=length, load_s=result["loadSeconds"], pass_s=result["seconds"],
                         tokens_per_s=result["tokensPerSecond"], peak_rss_gb=peak / 1e9, stored_gb=stored / 1e9,
                         over_stored_gb=(peak - stored) / 1e9, perplexity=result["perplexity"], engine=estimate,
                         threads=result.get("threads"), precision=precision))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["write", "run", "both"])
    parser.add_argument("out")
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("--lengths", default="2048,4096")
    parser.add_argument("--binary", default=".build/release/extrapolate")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--precisions", default="float32", help="float32 and/or bf16, each run at every length")
    args = parser.parse_args()
    if args.action in ("write", "both"):
        write(args.out, args.shape)
    if args.action in ("run", "both"):
        run(args.out, args.shape, [int(n) for n in args.lengths.split(",")], args.binary, args.threads,
            args.precisions.split(","))
    if args.action == "both":
        shutil.rmtree(os.path.join(args.out, args.shape))


if __name__ == "__main__":
    main()
