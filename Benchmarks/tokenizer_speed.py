#!/usr/bin/env python3
"""Tokenization throughput: `extrapolate dataset pack --tokenizer` against Hugging Face `tokenizers` (Rust, batch
mode, every core) on the same text, the same tokenizer.json and the same machine, in one run.

    python Benchmarks/tokenizer_speed.py [--binary .build/release/extrapolate] [--repeats 5] [--threads 2]

The text is the bundled King James training split (3.9 MB, decoded from Datasets/kjv/train.tokens.zst) cut into
documents of about 4 KB at blank lines, written as JSON lines. For each tokenizer of Tests/Fixtures/tokenizers
(trained by Tests/Fixtures/make_tokenizers.py) it times, interleaved, `dataset pack` of that file (whole process:
reading, tokenizing, compressing, writing) and `Tokenizer.encode_batch` of the same documents (tokenizing only),
and prints medians in MB/s of input text, the ratio, and whether the ids agree (they must).
Needs `pip install tokenizers` and the zstd CLI.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def documents():
    raw = subprocess.run(
        ["zstd", "-dc", str(ROOT / "Datasets/kjv/train.tokens.zst")], check=True, capture_output=True
    ).stdout
    text = bytes(raw[0::2]).decode("utf-8")
    docs, current = [], []
    size = 0
    for paragraph in text.split("\n\n"):
        current.append(paragraph)
        size += len(paragraph) + 2
        if size > 4096:
            docs.append("\n\n".join(current))
            current, size = [], 0
    if current:
        docs.append("\n\n".join(current))
    return docs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / ".build/release/extrapolate"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    docs = documents()
    megabytes = sum(len(d.encode()) for d in docs) / 1e6
    work = pathlib.Path(tempfile.mkdtemp(prefix="extrapolate-tokenize-"))
    jsonl = work / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    print(f"{len(docs)} documents, {megabytes:.2f} MB of text; {args.threads} threads; medians of {args.repeats}")
    print(f"{'tokenizer':10} {'extrapolate MB/s':>17} {'tokenizers MB/s':>16} {'ratio':>7}  ids")
    for kind in ["gpt2", "neox", "llama3", "llama2", "mistral"]:
        folder = ROOT / f"Tests/Fixtures/tokenizers/{kind}"
        reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
        ours, theirs = [], []
        output = work / f"{kind}.tokens.zst"
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(
                [args.binary, "dataset", "pack", str(jsonl), "--tokenizer", str(folder), "--no-eos", "--level", "1",
                 "--threads", str(args.threads), "-o", str(output)],
                check=True, capture_output=True,
            )
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            encoded = reference.encode_batch(docs)
            theirs.append(time.perf_counter() - start)
        expected = [i for e in encoded for i in e.ids]
        raw = subprocess.run(["zstd", "-dc", str(output)], check=True, capture_output=True).stdout
        width = 4 if reference.get_vocab_size() > 65536 else 2
        got = [int.from_bytes(raw[k:k + width], "little") for k in range(0, len(raw), width)]
        ours_rate, theirs_rate = megabytes / statistics.median(ours), megabytes / statistics.median(theirs)
        print(
            f"{kind:10} {ours_rate:17.2f} {theirs_rate:16.2f} {ours_rate / theirs_rate:6.2f}×  "
            f"{'identical' if got == expected else 'DIFFERENT'} ({len(expected)} ids)"
        )


if __name__ == "__main__":
    main()
