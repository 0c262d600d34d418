#!/usr/bin/env python3
"""Two builds of extrapolate on the same shapes, interleaved: did a change slow the exact pass, or change a number?

    git worktree add /tmp/old REVISION && (cd /tmp/old && swift build -c release --product extrapolate)
    swift build -c release --product extrapolate
    python3 Benchmarks/binary_ab.py --a /tmp/old/.build/release/extrapolate --b .build/release/extrapolate \\
        [--models .build-bench/models] [--shapes gpt2-small,…] [--lengths 2048] [--rounds 5] [--weights stored]

Round by round it runs `score --summary --json` with A then B, then B then A (alternating which goes first, so a
slow minute or a warm cache favours neither), on the same model, tokens and thread count. Per point it prints each
side's median tokens/s, the ratio of medians B/A, the range of the per-round ratios, and whether the perplexities
are the same to the last digit JSON carries (an exact change must keep them). `--extra` passes options to B only
(`--weights stored` on B against A's fp32 load, say).
"""
import argparse
import os
import statistics

from scoring import score


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--models", default=".build-bench/models")
    parser.add_argument("--shapes", default="gpt2-small,smollm-135m,pythia-160m,mpt-125m,bloom-560m")
    parser.add_argument("--lengths", default="2048")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--extra", default="", help="options for B only, e.g. '--weights stored'")
    args = parser.parse_args()
    tokens = os.path.join(args.models, "tokens-49152.u16")
    print("| shape | tokens | A tok/s | B tok/s | B/A (medians) | per-round B/A | perplexity A = B |")
    print("|---|---:|---:|---:|---:|---|---|")
    for shape in args.shapes.split(","):
        model = os.path.join(args.models, shape)
        for length in (int(n) for n in args.lengths.split(",")):
            a, b, ratios, same = [], [], [], True
            for round_ in range(args.rounds):
                order = [("a", args.a, []), ("b", args.b, args.extra.split())]
                if round_ % 2:
                    order.reverse()
                speeds, perplexities = {}, {}
                for side, binary, extra in order:
                    speeds[side], perplexities[side] = score(binary, model, tokens, length, extra)
                a.append(speeds["a"])
                b.append(speeds["b"])
                ratios.append(speeds["b"] / speeds["a"])
                same = same and perplexities["a"] == perplexities["b"]
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"| {shape} | {length:,} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} | {min(ratios):.3f}–{max(ratios):.3f} "
                  f"| {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
