#!/usr/bin/env python3
"""Writes the fuzz seeds: Tests/fuzz/corpus/TARGET/seed-*, small valid (and a few nearly valid) inputs per target.

Seeds are committed; run this again only to change them (`python3 Tests/fuzz/make_seeds.py`). It needs `torch` for
the PyTorch seeds and `zstandard`-free Python otherwise: `.tokens.zst` seeds are written by the `extrapolate` binary
(`dataset pack`), built first (`swift build`). Each seed stays under 4 KiB, libFuzzer's default input size, except where
a format cannot be that small.
"""
import io
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

root = pathlib.Path(__file__).resolve().parent
repo = root.parent.parent
fixtures = repo / "Tests" / "Fixtures"
corpus = root / "corpus"


def seed(target, name, data):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / f"seed-{name}").write_bytes(data)


def safetensors(tensors, metadata=None):
    header, offset, body = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def main():
    if corpus.exists():
        shutil.rmtree(corpus)
    # safetensors: each dtype the reader converts, metadata, an empty file, a header only.
    f32 = struct.pack("<4f", 1, -2, 3.5, 0)
    seed("safetensors", "f32", safetensors({"w": ("F32", [2, 2], f32)}, {"format": "pt"}))
    seed("safetensors", "f16-bf16", safetensors({"a": ("F16", [2], b"\x00\x3c\x00\xc0"), "b": ("BF16", [2], b"\x80\x3f\x00\x40")}))
    seed("safetensors", "i64-bool", safetensors({"i": ("I64", [1], struct.pack("<q", 7)), "m": ("BOOL", [2], b"\x01\x00")}))
    seed("safetensors", "scalar-empty", safetensors({"s": ("F32", [], struct.pack("<f", 2)), "e": ("F32", [0, 3], b"")}))
    seed("safetensors", "no-tensors", safetensors({}, {"architecture": "{}"}))
    # shard index: names the two shards FuzzTarget writes (a.weight, b.weight), and variations.
    index = {"metadata": {"total_size": 32}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}
    seed("shard-index", "two", json.dumps(index))
    seed("shard-index", "one", json.dumps({"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}}))
    seed("shard-index", "missing", json.dumps({"weight_map": {"c.weight": "model-00003-of-00003.safetensors"}}))
    seed("shard-index", "escape", json.dumps({"weight_map": {"a.weight": "../model-00001-of-00002.safetensors"}}))
    # config.json: one per family the importers know.
    families = {}
    for config in sorted((fixtures / "configs").glob("*/config.json")):
        data = json.loads(config.read_text())
        families.setdefault(data.get("model_type"), (config.parent.name, config.read_bytes()))
    for config in sorted((fixtures / "models").glob("*/config.json")):
        data = json.loads(config.read_text())
        families.setdefault(data.get("model_type"), (config.parent.name, config.read_bytes()))
    for model_type, (name, data) in sorted(families.items()):
        seed("config-json", name, data)
    # architecture JSON: what the spec fixtures carry in their safetensors metadata.
    for weights in sorted((fixtures / "models").glob("spec-*/model.safetensors"))[:8]:
        raw = weights.read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        metadata = json.loads(raw[8 : 8 + length]).get("__metadata__", {})
        if "extrapolate.architecture" in metadata:
            seed("architecture-json", weights.parent.name, metadata["extrapolate.architecture"])
    # PyTorch: torch.save of small state dicts (zip), the legacy format, and the hostile fixtures that are small.
    import torch

    def saved(obj, legacy=False):
        buffer = io.BytesIO()
        torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
        return buffer.getvalue()

    state = {"w": torch.arange(4, dtype=torch.float32).reshape(2, 2), "b": torch.ones(2, dtype=torch.float16)}
    nested = {"model": {"x": torch.zeros(3, dtype=torch.bfloat16)}, "iter_num": 5, "args": {"lr": 0.1, "name": "run"}}
    for name, obj in {"state": state, "nested": nested}.items():
        zipped = saved(obj)
        seed("torch", name, zipped)
        seed("zip", name, zipped)
        seed("torch", name + "-legacy", saved(obj, legacy=True))
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            pickle_name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            seed("pickle", name, archive.read(pickle_name))
    for hostile in ["huge-storage.pt", "os-system.pt"]:
        data = (fixtures / "hostile" / hostile).read_bytes()
        seed("torch", hostile, data)
        seed("zip", hostile, data)
    seed("pickle", "protocol2-list", b"\x80\x02]q\x00(K\x01K\x02e.")
    seed("pickle", "dict", b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01u.")
    # TOML: the shipped example and small variants.
    seed("toml", "example", (repo / "Service" / "watch.example.toml").read_bytes())
    seed("toml", "minimal", '[evaluation]\ndata = "valid.tokens.zst"\n[[runs]]\nfolder = "runs"\n')
    seed("toml", "types", 'a = 1\nb = 1.5e3\nc = "x\\ty"\nd = [1, 2, [3]]\ne = true\n[t.u]\nf = { g = 1 }\n')
    seed("toml", "report", '[report]\ntime = "03:00"\nnotify-command = "true"\nnotify-timeout = 5\n[alerts]\nratio = 4\n')
    # tokenizer.json: tiny byte-level BPE, metaspace, and added tokens.
    vocab = {chr(c) if chr(c).isalnum() else f"<0x{c:02X}>": i for i, c in enumerate(range(97, 123))}
    vocab.update({"th": 26, "the": 27, "<|endoftext|>": 28})
    byte_level = {
        "version": "1.0",
        "added_tokens": [{"id": 28, "content": "<|endoftext|>", "special": True, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": ["t h", "th e"]},
    }
    seed("tokenizer-json", "byte-level", json.dumps(byte_level))
    metaspace = dict(byte_level)
    metaspace["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    metaspace["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    metaspace["model"] = {"type": "BPE", "vocab": vocab, "merges": [["t", "h"]], "byte_fallback": True, "unk_token": None}
    seed("tokenizer-json", "metaspace", json.dumps(metaspace))
    split = dict(byte_level)
    split["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\d{1,3}"}, "behavior": "Isolated", "invert": False}, {"type": "Digits", "individual_digits": True}]}
    split["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [28], "tokens": ["<|endoftext|>"]}}}
    seed("tokenizer-json", "split-template", json.dumps(split))
    # HTTP requests: every route, with and without the token, bodies and odd queries.
    token = "fuzz-token"
    requests = [
        "GET /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /api/results?run=alibi&format=csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /api/curves?newest=true HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /api/positions?checkpoint=2 HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /api/compare?a=2&b=4 HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /api/runs/rotary%%20run/checkpoints HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "POST /api/worker HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"paused\":true}" % token,
        "POST /api/checkpoints/1/requeue HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n" % token,
        "GET /?token=%s HTTP/1.1\r\n\r\n" % token,
        "GET /run/alibi?hide=a,b HTTP/1.1\r\nCookie: extrapolate_token=%s\r\n\r\n" % token,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % token,
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /api/version HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n",
        "POST /api/worker HTTP/1.1\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pau\r\n0\r\n\r\n" % token,
    ]
    for number, request in enumerate(requests):
        seed("http", f"{number:02}", request)  # through a socket and SwiftNIO's parser
        seed("api", f"{number:02}", request)  # straight to the router
    # .tokens.zst: packed by extrapolate itself from a few texts (byte-level).
    binary = repo / ".build" / "debug" / "extrapolate"
    if not binary.exists():
        sys.exit("build extrapolate first (swift build): it writes the .tokens.zst seeds")
    with tempfile.TemporaryDirectory() as scratch:
        for name, text, frame in [("short", "hello world\n", 16), ("frames", "abcdefghij" * 40, 64), ("docs", "one\n\ntwo\n\nthree\n", 4)]:
            source = pathlib.Path(scratch) / f"{name}.txt"
            source.write_text(text)
            out = pathlib.Path(scratch) / f"{name}.tokens.zst"
            subprocess.run([str(binary), "dataset", "pack", str(source), "--output", str(out), "--tokens-per-frame", str(frame)], check=True, capture_output=True)
            seed("tokens-zst", name, out.read_bytes())
    for target in sorted(os.listdir(corpus)):
        files = list((corpus / target).iterdir())
        print(f"{target}: {len(files)} seeds, largest {max(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
