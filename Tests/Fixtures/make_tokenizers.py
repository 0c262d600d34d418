#!/usr/bin/env python3
"""Reference tokenizers and the ids `tokenizers` gives for test texts (Tests/TokenDataTests/TokenizerTests.swift).

Trains small BPE tokenizers of each kind Extrapolate reads with the `tokenizers` package on the bundled King James
text, saves each as `Tests/Fixtures/tokenizers/<kind>/tokenizer.json`, and records the reference ids in
`reference.json` beside it:

  gpt2     byte-level BPE: ByteLevel pre-tokenizer (GPT-2 regex), <|endoftext|>
  neox     the same with an NFC normalizer and ByteLevel add_prefix_space (GPT-NeoX / Pythia style)
  llama3   Split(Llama-3 regex, isolated) + ByteLevel(use_regex=false), ignore_merges, a BOS template
  llama2   SentencePiece-style BPE: Prepend("▁") + Replace(" ", "▁") normalizers, byte_fallback, <unk>, <s> template
  mistral  SentencePiece-style BPE with the Metaspace pre-tokenizer (prepend_scheme "first"), byte_fallback

Usage: python Tests/Fixtures/make_tokenizers.py   (needs `pip install tokenizers==0.23.*` and the zstd CLI)

With --real it also builds, into Tests/Fixtures/tokenizers/real-llama2 and real-mistral (ignored by git: 3.5 MB
each), the two SentencePiece-style pipelines over a real vocabulary: Mistral 7B v0.1's (32,000 pieces, merges
extracted as transformers' converter does), from the SentencePiece model that `pip install mistral_common` ships
(also needs sentencepiece, protobuf and transformers). The Swift tests check every real-* folder present.
"""
import base64
import json
import pathlib
import subprocess

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests/Fixtures/tokenizers"

GPT2_PATTERN = None  # ByteLevel(use_regex=True) carries it
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)


def kjv_text(split):
    raw = subprocess.run(
        ["zstd", "-dc", str(ROOT / f"Datasets/kjv/{split}.tokens.zst")], check=True, capture_output=True
    ).stdout
    return bytes(raw[0::2]).decode("utf-8")  # uint16 little-endian byte tokens


# Unicode edge cases, each as the reference sees it (a str; invalid UTF-8 is decoded with replacement first).
EDGE_CASES = [
    "Hello world! It's 2024; they'll say I'd've been THERE'S and WE'LL.",
    "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF lines\r\n\r\n   \n",
    "numbers: 1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ⅷ ½",
    "combining: e\u0301 (e + acute) vs \u00e9, A\u030a, ﬁ ligature, Ｆｕｌｌｗｉｄｔｈ, ℌ",
    "emoji: 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🙂🙃",
    "CJK: 日本語のテキスト、中文文本。한국어 텍스트",
    "RTL: שלום עולם and مرحبا بالعالم mixed with English",
    "specials in text: <|endoftext|> <s> </s> <unk> <|begin_of_text|> end",
    "punctuation!!! ... --- ??? (parens) [brackets] {braces} \"quotes\" 'single' `tick` @#$%^&*",
    "mixed\u00a0no-break\u2003em-space\u200bzero-width\u3000ideographic space",
    "",
    " ",
    "a",
    "In the beginning God created the heaven and the earth.",
]
INVALID_UTF8 = [b"valid \xff\xfe invalid \xc3\x28 bytes \xe2\x82 end", b"\x80lone continuation and \xf0\x9f\x98"]


def byte_level(kind):
    tokenizer = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "neox":
        tokenizer.normalizer = normalizers.NFC()
    if kind == "llama3":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=(kind == "neox"))
    tokenizer.decoder = decoders.ByteLevel()
    specials = {"gpt2": ["<|endoftext|>"], "neox": ["<|endoftext|>", "<|padding|>"]}.get(
        kind, ["<|begin_of_text|>", "<|end_of_text|>"]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1200, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator([kjv_text("train")], trainer=trainer)
    if kind == "llama3":
        bos = tokenizer.token_to_id("<|begin_of_text|>")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B", special_tokens=[("<|begin_of_text|>", bos)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def sentencepiece_style(kind):
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if kind == "llama2":
        tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    # Train with words split at the ▁ (as SentencePiece does; one unsplit 4 MB "word" would take hours), then keep
    # the kind's own pipeline and add the 256 byte tokens as Llama-2 has them.
    final_pre_tokenizer = tokenizer.pre_tokenizer
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.train_from_iterator([kjv_text("train")], trainer=trainer)
    tokenizer.pre_tokenizer = final_pre_tokenizer
    spec = json.loads(tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return tokenizer


def real_vocabularies(texts):
    import os
    import mistral_common
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    model = os.path.join(os.path.dirname(mistral_common.__file__), "data/tokenizer.model.v1")
    extracted = SentencePieceExtractor(model).extract(None)
    for kind in ["llama2", "mistral"]:
        tokenizer = Tokenizer(
            models.BPE(vocab=extracted["vocab"], merges=extracted["merges"], unk_token="<unk>", fuse_unk=True, byte_fallback=True)
        )
        tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ["<unk>", "<s>", "</s>"]])
        if kind == "llama2":
            tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        else:
            tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
        )
        write(tokenizer, OUT / f"real-{kind}", texts, [])


def write(tokenizer, folder, texts, invalid):
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    cases = []
    for text in texts:
        cases.append(
            {
                "text": text,
                "ids": tokenizer.encode(text).ids,
                "idsWithoutSpecialTokens": tokenizer.encode(text, add_special_tokens=False).ids,
            }
        )
    for raw in invalid:
        text = raw.decode("utf-8", errors="replace")
        cases.append(
            {
                "bytes": base64.b64encode(raw).decode(),
                "ids": tokenizer.encode(text).ids,
                "idsWithoutSpecialTokens": tokenizer.encode(text, add_special_tokens=False).ids,
            }
        )
    reference = {"generator": "Tests/Fixtures/make_tokenizers.py", "tokenizers": __import__("tokenizers").__version__, "cases": cases}
    (folder / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=0) + "\n")
    print(folder.name, tokenizer.get_vocab_size(), "tokens;", sum(len(c["ids"]) for c in cases), "reference ids")


def main():
    import sys
    validation = kjv_text("valid")
    texts = EDGE_CASES + [validation[:20000]]
    for kind in ["gpt2", "neox", "llama3", "llama2", "mistral"]:
        tokenizer = byte_level(kind) if kind in ["gpt2", "neox", "llama3"] else sentencepiece_style(kind)
        write(tokenizer, OUT / kind, texts, INVALID_UTF8)
    if "--real" in sys.argv:
        real_vocabularies(texts)


if __name__ == "__main__":
    main()
