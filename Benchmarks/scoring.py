"""One `extrapolate score --summary --json` run, for the benchmark scripts that compare runs (binary_ab.py,
thread_scaling.py): tokens/s of the pass and the perplexity."""
import json
import subprocess


def score(binary, model, tokens, length, extra=()):
    command = [binary, "score", "--checkpoint", model, "--tokens", tokens, "--length", str(length), "--summary",
               "--json", *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    return result["tokensPerSecond"], result["perplexity"]
