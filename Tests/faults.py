#!/usr/bin/env python3
"""Faults, with real processes: the daemon (`extrapolate watch`) meets each fault below and must end with every
result an undisturbed run gets, once, and a store that opens; `extrapolate train` meets a full disk and must end
with the checkpoints an undisturbed run writes. Prints one line per trial and a table at the end.

    Tests/faults.py                 # the short form (what .ci/run runs): every fault, few trials each
    Tests/faults.py --full          # the campaign of Docs/reliability.md: 100 power-loss copies, 1,000 runs, …
    Tests/faults.py --only power-loss,unreadable-run
    EXTRAPOLATE_BINARY=.build/release/extrapolate Tests/faults.py --full

Needs the extrapolate binary (swift build) and, for some trials, root: a tmpfs for the full disk, an unprivileged
user for the unreadable folder (a trial that cannot run says why and counts as skipped, never as passed). Python's
standard library only.
"""
import argparse
import importlib.machinery
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "Datasets/kjv/valid.tokens.zst")
DEMO = os.path.join(ROOT, "Datasets/demo")
QUICK = ["--data", DATA, "--lengths", "1x,2x", "--budget", "512", "--bootstrap", "20", "--threads", "1",
         "--quiet-seconds", "0", "--log-level", "warning"]
# Enough work that an instant picked at random lands inside an evaluation or a write.
LONG = ["--data", DATA, "--lengths", "1x,2x,4x,8x,16x", "--budget", "8192", "--bootstrap", "100", "--threads", "2",
        "--quiet-seconds", "0", "--log-level", "warning"]


def binary():
    explicit = os.environ.get("EXTRAPOLATE_BINARY")
    if explicit:
        return explicit
    path = os.path.join(ROOT, ".build/debug/extrapolate")
    if not os.path.exists(path):
        sys.exit("faults.py: build first (swift build)")
    return path


EXE = binary()


class Skip(Exception):
    """A trial that cannot run here (not root, no tmpfs): said, never counted as passed."""


def fail(message):
    raise AssertionError(message)


def run(arguments, timeout=600, user=None, check=True):
    command = [EXE] + arguments
    if user:
        command = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", "--"] + command
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        fail(f"{' '.join(arguments[:3])}… exited {done.returncode}: {done.stderr.strip()[-600:]}")
    return done


def demo_runs(folder):
    runs = os.path.join(folder, "runs")
    shutil.copytree(DEMO, runs)
    for extra in os.listdir(runs):
        if not os.path.isdir(os.path.join(runs, extra)):
            os.remove(os.path.join(runs, extra))
    return runs


def results(store):
    """(checkpoint file name, run, series, length) → perplexity, from `extrapolate results --json`."""
    rows = json.loads(run(["results", "--store", store, "--json"]).stdout)
    table = {}
    for row in rows:
        if row.get("outcome", "evaluated") != "evaluated":
            continue
        key = (row["run"], os.path.basename(row["checkpoint"]), row["series"], row["length"])
        if key in table:
            fail(f"two results for {key}")
        table[key] = row["perplexity"]
    return table


def same(got, want, what):
    if got != want:
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        differ = [k for k in want if k in got and got[k] != want[k]][:3]
        fail(f"{what}: {len(got)} results, expected {len(want)}; missing {missing} extra {extra} differ {differ}")


REFERENCES = {}


def reference(settings):
    """An undisturbed run's results with these settings (computed once per settings)."""
    key = tuple(settings)
    if key not in REFERENCES:
        with tempfile.TemporaryDirectory() as folder:
            runs = demo_runs(folder)
            store = os.path.join(folder, "reference.sqlite")
            run(["watch", runs, "--store", store, "--once"] + settings)
            REFERENCES[key] = results(store)
    return REFERENCES[key]


def integrity(store):
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        fail(f"integrity_check of {store}: {verdict}")


# MARK: the trials


def power_loss(folder, trials):
    """Copies of the database and its WAL taken at random instants while the daemon writes (the process stopped with
    SIGSTOP for the copy: the files hold exactly what was written, a transaction possibly half-way). Every copy
    passes integrity_check, reads, and — resumed — ends with the undisturbed run's results, each once."""
    want = reference(LONG)
    runs = demo_runs(folder)
    store = os.path.join(folder, "live.sqlite")
    process = subprocess.Popen([EXE, "watch", runs, "--store", store, "--once"] + LONG,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    copies = []
    gap = 0.6 if trials <= 5 else 0.12  # the full form takes about 100 copies of a ten-second run
    while process.poll() is None and len(copies) < trials:
        time.sleep(random.uniform(0.02, gap))
        if not os.path.exists(store):
            continue
        process.send_signal(signal.SIGSTOP)
        try:
            copy = os.path.join(folder, f"copy-{len(copies):03d}.sqlite")
            shutil.copyfile(store, copy)
            if os.path.exists(store + "-wal"):
                shutil.copyfile(store + "-wal", copy + "-wal")
            copies.append(copy)
        finally:
            process.send_signal(signal.SIGCONT)
    process.wait()
    if not copies:
        fail("the daemon finished before a copy was taken")
    partial = 0
    for copy in copies:
        integrity(copy)
        got = results(copy)  # every stored row decodes
        if any(key not in want or want[key] != value for key, value in got.items()):
            fail(f"{copy} holds a result the undisturbed run does not")
        partial += len(got) < len(want)
        run(["watch", runs, "--store", copy, "--once"] + LONG)
        same(results(copy), want, f"{os.path.basename(copy)} resumed")
    return f"{len(copies)} copies ({partial} mid-run): each passed integrity_check and resumed to the {len(want)} results"


def disk_full(folder, trials):
    """The store's filesystem (a 256 KiB tmpfs) fills up; the serving daemon says so and keeps running, backing off;
    the filesystem grows and every result is stored once."""
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    mount = os.path.join(folder, "small")
    os.makedirs(mount)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mount], capture_output=True).returncode:
        raise Skip("cannot mount a tmpfs here (a container without CAP_SYS_ADMIN)")
    try:
        want = reference(QUICK)
        runs = demo_runs(folder)
        store = os.path.join(mount, "results.sqlite")
        log = open(os.path.join(folder, "log"), "w")
        process = subprocess.Popen([EXE, "watch", runs, "--store", store] + QUICK, stdout=log, stderr=log)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and process.poll() is None:
                time.sleep(0.2)
                if "full" in open(os.path.join(folder, "log")).read():
                    break
            time.sleep(2)  # it keeps running, backing off
            said = open(os.path.join(folder, "log")).read()
            if "full" not in said:
                fail(f"no word of a full disk within 60 s (exit {process.poll()}): {said[-400:]}")
            if process.poll() is not None:
                fail(f"the daemon exited on a full disk (status {process.returncode}) instead of waiting")
            subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
            deadline = time.time() + 300
            while time.time() < deadline and len(results_or_empty(store)) < len(want):
                if process.poll() is not None:
                    fail(f"after the disk grew the daemon exited {process.returncode}")
                time.sleep(0.5)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        integrity(store)
        same(results(store), want, "after the disk grew")
        line = next(l for l in said.splitlines() if "full" in l)
        return f"said «…{line.strip()[-110:]}», kept running; grown, all {len(want)} results stored once"
    finally:
        subprocess.run(["umount", "-l", mount], capture_output=True)


def train_disk_full(folder, trials):
    """`extrapolate train` saving onto a full filesystem (a tmpfs with room for one checkpoint and the run's state,
    not two checkpoints): one line names the file and the cause, the previous checkpoint and the state stay intact,
    and once the filesystem grows `--resume` ends with the uninterrupted run's final checkpoint, byte for byte."""
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    train = ["train", "--preset", "probe-alibi", "--data", os.path.join(ROOT, "Datasets/kjv/train.tokens.zst"),
             "--steps", "8", "--batch", "2", "--save-every", "2", "--threads", "1"]
    whole = os.path.join(folder, "whole")
    run(train + ["--out", whole])
    checkpoint = os.path.getsize(os.path.join(whole, "step-2.safetensors"))
    state = os.path.getsize(os.path.join(whole, "train-state.safetensors"))
    mount = os.path.join(folder, "small")
    os.makedirs(mount)
    size = (checkpoint + state + checkpoint // 2) // 4096 * 4096
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], capture_output=True).returncode:
        raise Skip("cannot mount a tmpfs here (a container without CAP_SYS_ADMIN)")
    try:
        out = os.path.join(mount, "run")
        done = run(train + ["--out", out], check=False)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        if done.returncode == 0:
            fail("train succeeded on a filesystem too small for its second checkpoint")
        said = lines[-1] if lines else ""
        if "step-4.safetensors" not in said or "space" not in said:
            fail(f"the last line does not name step-4.safetensors and the lack of space: {done.stderr[-600:]}")
        with open(os.path.join(out, "step-2.safetensors"), "rb") as a, \
                open(os.path.join(whole, "step-2.safetensors"), "rb") as b:
            if a.read() != b.read():
                fail("step-2.safetensors changed when step 4 could not be saved")
        left = sorted(name for name in os.listdir(out) if name not in ("step-2.safetensors", "train-state.safetensors",
                                                                         "train.jsonl"))
        if left:
            fail(f"left behind after the failed save: {left}")
        subprocess.run(["mount", "-o", f"remount,size={size * 8}", mount], check=True)
        run(["train", "--resume", "--data", os.path.join(ROOT, "Datasets/kjv/train.tokens.zst"), "--threads", "1",
             "--out", out])
        with open(os.path.join(out, "step-8.safetensors"), "rb") as a, \
                open(os.path.join(whole, "step-8.safetensors"), "rb") as b:
            if a.read() != b.read():
                fail("after --resume on the grown filesystem, step-8.safetensors differs from the uninterrupted run's")
        return f"said «…{said.strip()[-100:]}»; step 2 and the state intact; resumed to the same step 8"
    finally:
        subprocess.run(["umount", "-l", mount], capture_output=True)


def unreadable_run(folder, trials):
    """One run folder made unreadable (the daemon runs as an unprivileged user): a warning names it, the other runs
    are evaluated, its checkpoints are not marked gone; readable again, it is evaluated."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to run the daemon as an unprivileged user")
    want = reference(QUICK)
    os.chmod(folder, 0o755)
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    # The data beside the runs: the checkout may sit in a folder only its owner can enter (mktemp -d makes 0700).
    data = shutil.copy(DATA, os.path.join(folder, "valid.tokens.zst"))
    quick = [data if value == DATA else value for value in QUICK]
    subprocess.run(["chown", "-R", "nobody:nogroup", folder], check=True)
    alibi = os.path.join(runs, "alibi")
    os.chmod(alibi, 0)  # unreadable from the start: the other runs are evaluated, a warning names it
    second = run(["watch", runs, "--store", store, "--once"] + quick, user="nobody")
    if "cannot read a folder" not in second.stderr or alibi not in second.stderr:
        fail(f"no warning naming {alibi}: {second.stderr[-400:]}")
    others = {k: v for k, v in want.items() if k[0] != "alibi"}
    same(results(store), others, "with alibi unreadable")
    os.chmod(alibi, 0o755)  # readable again: evaluated
    run(["watch", runs, "--store", store, "--once"] + quick, user="nobody")
    same(results(store), want, "after the folder read again")
    os.chmod(alibi, 0)  # unreadable once more: nothing under it is marked gone
    run(["watch", runs, "--store", store, "--once"] + quick, user="nobody")
    status = json.loads(run(["status", "--store", store, "--json", "--all"]).stdout)
    if "runs" not in status or any(r["summary"]["checkpoints"].get("gone") for r in status["runs"]):
        fail("checkpoints under the unreadable folder were marked gone")
    same(results(store), want, "with alibi unreadable again")
    warning = next(l for l in second.stderr.splitlines() if "cannot read a folder" in l)
    return f"warned «…{warning.strip()[-100:]}»; the others evaluated; readable again, evaluated; nothing marked gone"


def symlink_loop(folder, trials):
    """A run folder replaced by a symlink loop, and a link back to the watched folder: the scan ends, and every
    checkpoint is evaluated once."""
    want = reference(QUICK)
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    shutil.rmtree(os.path.join(runs, "nope"))
    os.symlink("nope", os.path.join(runs, "nope"))  # a link to itself
    os.symlink(runs, os.path.join(runs, "back"))  # a cycle through the watched folder
    started = time.time()
    done = run(["watch", runs, "--store", store, "--once"] + QUICK, timeout=120)
    got = results(store)
    expected = {k: v for k, v in want.items() if k[0] != "nope"}
    if {(k[0], k[1], k[2], k[3]) for k in got} - {k for k in expected} - {k for k in got if k[0] == "back"}:
        fail("unexpected results")
    for key, value in expected.items():
        if got.get(key) != value:
            fail(f"{key}: {got.get(key)} != {value}")
    return f"scan ended in {time.time() - started:.1f} s; {len(got)} results, none twice ({done.stderr.count('warning')} warnings)"


def future_mtime(folder, trials):
    """A checkpoint whose modification time is an hour ahead (the clock jumped back after it was written, or a file
    server's clock is ahead): evaluated after the quiet period, not an hour later."""
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    later = time.time() + 3600
    for name in os.listdir(os.path.join(runs, "alibi")):
        os.utime(os.path.join(runs, "alibi", name), (later, later))
    settings = [a if a != "0" or i == 0 or QUICK[i - 1] != "--quiet-seconds" else "2" for i, a in enumerate(QUICK)]
    started = time.time()
    run(["watch", runs, "--store", store, "--once"] + settings, timeout=120)
    took = time.time() - started
    got = [k for k in results(store) if k[0] == "alibi"]
    if len(got) != 6:
        fail(f"{len(got)} alibi results, expected 6")
    return f"files dated +1 h evaluated in {took:.1f} s (quiet period 2 s)"


def clock_step(folder, trials):
    """The wall clock steps back an hour inside the running daemon (Tests/clock-step.c, preloaded), then forward
    again; checkpoints written after each step are evaluated within seconds, every result once. The daemon polls
    (--poll-only): its rescans and quiet periods run on the steady clock, not the wall clock."""
    want = reference(QUICK)
    shim = os.path.join(folder, "clock-step.so")
    built = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(ROOT, "Tests/clock-step.c")],
                           capture_output=True, text=True)
    if built.returncode != 0:
        raise Skip(f"cannot build the clock shim with gcc: {built.stderr.strip()[-300:]}")
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    step = os.path.join(folder, "step")
    open(step, "w").write("0")
    held = {name: os.path.join(folder, name) for name in ["step-2000.safetensors", "step-1000.safetensors"]}
    for name, path in held.items():
        shutil.move(os.path.join(runs, "alibi", name), path)
    # QUICK's settings (so the results are the reference's), a quiet period, info logs, polling only.
    settings = QUICK[:QUICK.index("--quiet-seconds")] + ["--quiet-seconds", "1", "--log-level", "info",
                                                         "--poll-only", "--rescan-seconds", "2"]
    log_path = os.path.join(folder, "log")
    log = open(log_path, "w")
    environment = dict(os.environ, LD_PRELOAD=shim, CLOCK_STEP_FILE=step)
    process = subprocess.Popen([EXE, "watch", runs, "--store", store] + settings, stdout=log, stderr=log,
                               env=environment)
    try:
        def wait_for(count, what):
            started = time.time()
            while time.time() < started + 120:
                if len(results_or_empty(store)) >= count:
                    return time.time() - started
                if process.poll() is not None:
                    fail(f"the daemon exited {process.returncode}: {open(log_path).read()[-500:]}")
                time.sleep(0.2)
            fail(f"{what}: {len(results_or_empty(store))} results after 120 s, expected {count}")
        wait_for(26, "before the step")
        taken = []
        for offset, name in [(-3600, "step-1000.safetensors"), (0, "step-2000.safetensors")]:
            open(step, "w").write(str(offset))
            time.sleep(0.5)
            shutil.move(held[name], os.path.join(runs, "alibi", name))
            taken.append(wait_for(26 + 2 * (len(taken) + 1), f"a checkpoint written after a step of {offset} s"))
        same(results(store), want, "after the clock steps")
        stamps = [line[:19] for line in open(log_path) if line[:4].isdigit()]
        real_hour = time.strftime("%Y-%m-%dT%H", time.gmtime(time.time() - 3600))
        if not any(stamp.startswith(real_hour) for stamp in stamps):
            fail(f"the daemon's log never shows the stepped clock (stamps {stamps[:2]}…{stamps[-2:]})")
        return (f"clock stepped back 1 h: the next checkpoint evaluated {taken[0]:.1f} s later; stepped forward "
                f"again: {taken[1]:.1f} s; all {len(want)} results once")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def empty_checkpoint(folder, trials):
    """A 0-byte checkpoint: recorded with its reason, the rest evaluated; written for real later, evaluated."""
    want = reference(QUICK)
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    target = os.path.join(runs, "alibi", "step-2000.safetensors")
    real = open(target, "rb").read()
    open(target, "wb").close()
    run(["watch", runs, "--store", store, "--once"] + QUICK)
    status = run(["status", "--store", store]).stdout
    if "step-2000" not in status:
        fail(f"status does not list the empty checkpoint: {status[-500:]}")
    open(target, "wb").write(real)
    run(["watch", runs, "--store", store, "--once"] + QUICK)
    same(results(store), want, "after the checkpoint was written")
    line = next((l for l in status.splitlines() if "step-2000" in l), "")
    return f"status said «{line.strip()[:100]}»; written later, evaluated"


def many_files(folder, trials):
    """10,000 files appear at once in a watched run folder beside a new checkpoint, while the daemon serves: the
    checkpoint is evaluated, the daemon stays responsive."""
    count = 10_000 if trials > 5 else 2_000
    runs = demo_runs(folder)
    store = os.path.join(folder, "results.sqlite")
    moved = os.path.join(folder, "later.safetensors")
    shutil.move(os.path.join(runs, "alibi", "step-2000.safetensors"), moved)
    log = open(os.path.join(folder, "log"), "w")
    process = subprocess.Popen([EXE, "watch", runs, "--store", store] + QUICK, stdout=log, stderr=log)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(results_or_empty(store)) < 28:
            time.sleep(0.3)
        started = time.time()
        for i in range(count):
            open(os.path.join(runs, "alibi", f"events-{i:05d}.log"), "w").close()
        shutil.move(moved, os.path.join(runs, "alibi", "step-2000.safetensors"))
        while time.time() < started + 180:
            if len(results_or_empty(store)) >= 30:
                break
            if process.poll() is not None:
                fail(f"the daemon exited {process.returncode}")
            time.sleep(0.3)
        took = time.time() - started
        if len(results_or_empty(store)) < 30:
            fail(f"the new checkpoint was not evaluated within 180 s of {count} files")
        rss = int(open(f"/proc/{process.pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024
        return f"{count:,} files + 1 checkpoint: evaluated {took:.1f} s later; RSS {rss} MB"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def results_or_empty(store):
    try:
        return results(store)
    except Exception:
        return {}


def thousand_runs(folder, trials):
    """A watched folder of 1,000 runs (one checkpoint each, hard links of one file): every version registered, the
    one content evaluated once per length, the scan and the pass timed."""
    count = 1000 if trials > 5 else 200
    runs = os.path.join(folder, "runs")
    source = os.path.join(DEMO, "alibi", "step-500.safetensors")
    for i in range(count):
        os.makedirs(os.path.join(runs, f"run-{i:04d}"))
        os.link(source, os.path.join(runs, f"run-{i:04d}", "step-500.safetensors")) if os.stat(source).st_dev == os.stat(folder).st_dev else shutil.copyfile(source, os.path.join(runs, f"run-{i:04d}", "step-500.safetensors"))
    store = os.path.join(folder, "results.sqlite")
    started = time.time()
    run(["watch", runs, "--store", store, "--once"] + QUICK, timeout=1800)
    took = time.time() - started
    status = json.loads(run(["status", "--store", store, "--json"]).stdout)
    runs_seen = len(status["runs"])
    got = results(store)
    if len(got) != 2 * count:
        fail(f"{len(got)} results, expected {2 * count}")
    started = time.time()
    run(["watch", runs, "--store", store, "--once"] + QUICK, timeout=600)
    again = time.time() - started
    return f"{count} runs: first pass {took:.1f} s, {len(got)} results ({runs_seen} runs in status); a second pass {again:.1f} s"


def daemon_scale():
    """Benchmarks/daemon_scale as a module: its generator of distinct tiny checkpoints."""
    loader = importlib.machinery.SourceFileLoader("daemon_scale", os.path.join(ROOT, "Benchmarks/daemon_scale"))
    return loader.load_module()


def memory(folder, trials):
    """The daemon's resident memory over a run of tiny checkpoints, ten lengths each (1,000 checkpoints and 10,000
    results in the full form): after the first tenth it stays flat. The full form writes the curve to
    Docs/reliability/rss.svg."""
    count = 1000 if trials > 5 else 150
    runs = os.path.join(folder, "runs")
    daemon_scale().generate(runs, count, 10)
    store = os.path.join(folder, "results.sqlite")
    lengths = ",".join(f"{k}x" for k in range(1, 11))
    settings = ["--data", DATA, "--lengths", lengths, "--budget", "256", "--bootstrap", "20", "--threads", "1",
                "--quiet-seconds", "0", "--log-level", "error"]
    process = subprocess.Popen([EXE, "watch", runs, "--store", store] + settings, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    samples = []  # (seconds, results, RSS MB)
    started = time.time()
    try:
        while time.time() < started + 3600:
            if process.poll() is not None:
                fail(f"the daemon exited {process.returncode}")
            rss = int(open(f"/proc/{process.pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024
            done = 0
            if os.path.exists(store):
                try:
                    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
                        done = db.execute("SELECT count(*) FROM results").fetchone()[0]
                except sqlite3.Error:
                    done = samples[-1][1] if samples else 0
            samples.append((time.time() - started, done, rss))
            if done >= 10 * count:
                break
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    if samples[-1][1] < 10 * count:
        fail(f"{samples[-1][1]} of {10 * count} results after an hour")
    tenth = next(s for s in samples if s[1] >= count)  # a tenth of the results: caches warm
    peak_after = max(s[2] for s in samples if s[1] >= count)
    growth = peak_after - tenth[2]
    per_result = growth * 1024 / max(samples[-1][1] - tenth[1], 1)
    if growth > 24:
        fail(f"RSS grew {growth:.0f} MB after the first tenth ({per_result:.1f} KB per result)")
    if trials > 5:
        write_rss_svg(samples, count, os.path.join(ROOT, "Docs/reliability/rss.svg"))
    return (f"{count} checkpoints, {samples[-1][1]:,} results in {samples[-1][0]:.0f} s: RSS {tenth[2]:.0f} MB at a "
            f"tenth, at most {peak_after:.0f} MB after ({growth:+.1f} MB, {per_result:.2f} KB per result)")


def write_rss_svg(samples, count, path):
    """RSS (MB) against results stored: a plain SVG line chart."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    width, height, left, bottom = 640, 320, 56, 40
    most = max(s[1] for s in samples) or 1
    top = max(s[2] for s in samples) * 1.15
    x = lambda done: left + (width - left - 16) * done / most
    y = lambda mb: height - bottom - (height - bottom - 16) * mb / top
    points = " ".join(f"{x(d):.1f},{y(m):.1f}" for _, d, m in samples)
    ticks = "".join(
        f'<text x="{x(most * i / 4):.0f}" y="{height - bottom + 16}" text-anchor="middle">{int(most * i / 4):,}</text>'
        for i in range(5))
    yticks = "".join(
        f'<text x="{left - 6}" y="{y(top * i / 5) + 4:.0f}" text-anchor="end">{top * i / 5:.0f}</text>'
        f'<line x1="{left}" x2="{width - 16}" y1="{y(top * i / 5):.1f}" y2="{y(top * i / 5):.1f}" stroke="#eee"/>'
        for i in range(6))
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>{yticks}
<line x1="{left}" x2="{left}" y1="16" y2="{height - bottom}" stroke="#333"/>
<line x1="{left}" x2="{width - 16}" y1="{height - bottom}" y2="{height - bottom}" stroke="#333"/>{ticks}
<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
<text x="{(width + left) / 2}" y="{height - 6}" text-anchor="middle">results stored ({count:,} checkpoints × 10 lengths)</text>
<text x="14" y="{(height - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 {(height - bottom) / 2})">daemon RSS (MB)</text>
</svg>
"""
    open(path, "w").write(svg)


TRIALS = {
    "power-loss": power_loss,
    "disk-full": disk_full,
    "train-disk-full": train_disk_full,
    "unreadable-run": unreadable_run,
    "symlink-loop": symlink_loop,
    "future-mtime": future_mtime,
    "clock-step": clock_step,
    "empty-checkpoint": empty_checkpoint,
    "many-files": many_files,
    "thousand-runs": thousand_runs,
    "memory": memory,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the campaign (100 power-loss copies, 10,000 files, …)")
    parser.add_argument("--only", help="comma-separated trials: " + ", ".join(TRIALS))
    arguments = parser.parse_args()
    chosen = arguments.only.split(",") if arguments.only else list(TRIALS)
    unknown = [name for name in chosen if name not in TRIALS]
    if unknown:
        parser.error(f"no trial {', '.join(unknown)}; known: {', '.join(TRIALS)}")
    trials = 100 if arguments.full else 5
    random.seed(int(os.environ.get("FAULTS_SEED", time.time())))
    outcomes, failed = [], False
    for name in chosen:
        folder = tempfile.mkdtemp(prefix=f"extrapolate-fault-{name}-")
        started = time.time()
        try:
            outcome = TRIALS[name](folder, trials)
            verdict = "passed"
        except Skip as reason:
            outcome, verdict = str(reason), "skipped"
        except (AssertionError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as error:
            outcome, verdict, failed = str(error), "FAILED", True
        finally:
            subprocess.run(["chmod", "-R", "u+rwx", folder], capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)
        line = f"{name:17} {verdict:8} {time.time() - started:6.1f} s  {outcome}"
        print(line, flush=True)
        outcomes.append(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
