#!/usr/bin/env python3
"""Benchmark of `bgtask run --shard K/N`: balanced by recorded time vs path hash.

A scratch repository with a skewed project: FILES files analysed by a
per-file analyzer that sleeps UNIT ms per line of what it is given, one
file HEAVY times the others. For each shard count N:

  path hash  every shard at the first commit: nothing recorded yet (and
             records of the commit being analysed are not used), so the
             split is the path hash
  balanced   every shard at the next commit: the times the first pass
             recorded in the result cache, longest first onto the least
             loaded shard

Each shard runs with `--no-cache` and its time is the analyzer's wall
time in the JSON report. Prints, per N, the slowest shard over the mean
(1.00 is a perfect split; the heavy file alone bounds it from below when
it exceeds the mean) for both, and the bound.

With --project DIR (a real project) and --names (analyzers or tasks),
the same on that project's files: each shard's time is the wall time of
its `bgtask run … --no-cache`.

Usage:
  bench/shards.py [--bgtask target/release/bgtask] [--shards 2,3,4]
                  [--files 30] [--heavy 10] [--unit-ms 20] [--rounds 3]
                  [--project DIR --names bandit radon]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SLOW = """#!/bin/sh
lines=$(cat "$@" | wc -l)
sleep "$(awk "BEGIN { print $lines * $UNIT / 1000 }")"
for f in "$@"; do echo "$f:1: looked at $f"; done
"""

CONFIG = {
    "analyzers": {
        "slow": {
            "command": "./bin/slow.sh",
            "files": ["*.txt"],
            "args": ["{files}"],
            "parser": "regex",
            "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
            "exit_codes": {"ok": [0]},
        }
    }
}


def make_repo(repo: Path, files: int, heavy: int, unit_ms: int):
    (repo / "bin").mkdir(parents=True)
    (repo / "bin" / "slow.sh").write_text(SLOW.replace("$UNIT", str(unit_ms)))
    (repo / "bin" / "slow.sh").chmod(0o755)
    (repo / ".background-tasks.json").write_text(json.dumps(CONFIG))
    line = "x" * 2000 + "\n"
    (repo / "src").mkdir()
    for i in range(files):
        (repo / "src" / f"m{i:03}.txt").write_text(line * (heavy if i == files // 2 else 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default=str(ROOT / "target" / "release" / "bgtask"))
    ap.add_argument("--shards", default="2,3,4")
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--heavy", type=int, default=10, help="the heavy file costs this many times the others")
    ap.add_argument("--unit-ms", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="repeats per N; the median is printed")
    ap.add_argument("--project", help="a real project to shard instead of the skewed fixture")
    ap.add_argument("--names", nargs="+", default=["bandit", "radon"], help="with --project: what to run")
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    tmp = Path(tempfile.mkdtemp(prefix="bgtask-shards-bench."))
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp / "run"), BGTASK_DATA_DIR=str(tmp / "data"),
               BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)

    def git(repo, *args):
        subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b", *args], cwd=repo, check=True,
                       capture_output=True)

    def shard_times(repo, n):
        times = []
        for k in range(1, n + 1):
            out = subprocess.run([bgtask, "-q", "run", "slow", "--no-cache", "--format", "json", "--shard", f"{k}/{n}"],
                                 cwd=repo, env=env, capture_output=True, text=True)
            report = json.loads(out.stdout)
            times.append(next(r["duration_ms"] for r in report["runs"] if r["analyzer"] == "slow"))
        return times

    def skew(times):
        return max(times) / statistics.mean(times)

    def wall_times(repo, n):
        times = []
        for k in range(1, n + 1):
            t0 = time.perf_counter()
            subprocess.run([bgtask, "-q", "run", *a.names, "--no-cache", "--format", "json", "--shard", f"{k}/{n}"],
                           cwd=repo, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
        return times

    if a.project:
        try:
            for n in [int(s) for s in a.shards.split(",")]:
                hashed, balanced = [], []
                for r in range(a.rounds):
                    repo = tmp / f"real-{n}-{r}"
                    shutil.copytree(a.project, repo, ignore=shutil.ignore_patterns(".git", ".bgtask"))
                    git(repo, "init", "-q", "-b", "main")
                    git(repo, "add", "-A")
                    git(repo, "commit", "-qm", "first")
                    first = wall_times(repo, n)
                    hashed.append(skew(first))
                    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
                    balanced.append(skew(wall_times(repo, n)))
                    shutil.rmtree(repo, ignore_errors=True)
                print(f"{Path(a.project).name} ({' '.join(a.names)}), {n} shards, {sum(first):.1f} s in all: "
                      f"slowest/mean path hash {statistics.median(hashed):.2f}, balanced {statistics.median(balanced):.2f}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return

    total = (a.files - 1 + a.heavy) * a.unit_ms
    print(f"{a.files} files, one {a.heavy}x the others, {total} ms of analysis in all")
    try:
        for n in [int(s) for s in a.shards.split(",")]:
            hashed, balanced = [], []
            for r in range(a.rounds):
                repo = tmp / f"repo-{n}-{r}"
                make_repo(repo, a.files, a.heavy, a.unit_ms)
                git(repo, "init", "-q", "-b", "main")
                git(repo, "add", "-A")
                git(repo, "commit", "-qm", "first")
                hashed.append(skew(shard_times(repo, n)))
                git(repo, "commit", "-q", "--allow-empty", "-m", "second")
                balanced.append(skew(shard_times(repo, n)))
                shutil.rmtree(repo, ignore_errors=True)
            bound = max(1.0, a.heavy * a.unit_ms / (total / n))
            print(f"{n} shards: slowest/mean path hash {statistics.median(hashed):.2f}, "
                  f"balanced {statistics.median(balanced):.2f} (best possible {bound:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
