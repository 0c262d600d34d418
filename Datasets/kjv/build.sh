#!/usr/bin/env bash
# Rebuilds Datasets/kjv/{train,valid}.tokens.zst from Debian's bible-kjv-text package (KJV text, public domain).
#   bash Datasets/kjv/build.sh          (from the repository root; installs bible-kjv if missing, needs root for that)
# Each of the 66 books is one document; books 10, 20, …, 60 (2 Samuel, Proverbs, Amos, Matthew, Philippians,
# 1 Peter) are the validation split, the other 60 the training split. Tokens are UTF-8 bytes (vocabulary 256),
# no end-of-document token (document starts are in the metadata).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v bible >/dev/null || apt-get install -y -qq bible-kjv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# `bible` wraps at COLUMNS; pin it so the text (and the checksum) does not depend on the terminal.
COLUMNS=80 bible -l80 "gen1:1-rev22:21" > "$work/kjv.txt"
# Split at each book's first chapter header ("Genesis 1", "1 Samuel 1", "Song of Solomon 1", …).
awk -v dir="$work" '/^[^ ].* 1$/ { n++; file = sprintf("%s/book%02d.txt", dir, n) } n > 0 { print > file }' "$work/kjv.txt"
[ "$(ls "$work"/book*.txt | wc -l)" -eq 66 ] || { echo "expected 66 books" >&2; exit 1; }
train=() valid=()
for n in $(seq 1 66); do
    file=$(printf "%s/book%02d.txt" "$work" "$n")
    if [ $((n % 10)) -eq 0 ]; then valid+=("$file"); else train+=("$file"); fi
done
version=$(dpkg-query -W -f='${Version}' bible-kjv-text 2>/dev/null || echo unknown)
swift build -q --product extrapolate
for split in train valid; do
    declare -n files=$split
    .build/debug/extrapolate dataset pack "${files[@]}" --from text --output "Datasets/kjv/$split.tokens.zst" \
        --tokenizer-name bytes --level 19
done
echo "bible-kjv-text $version"
