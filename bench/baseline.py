#!/usr/bin/env python3
"""Benchmark of `bgtask run --new-only --baseline-ref` (hold the line).

On a fixture project (tests/fixtures/projects/python-app by default) in a
scratch repository with a `main` and a `feature` branch: the median wall
time of a plain cached `bgtask run TASK --format json` against the same
run with `--baseline-ref main` once its baseline is cached (the merge
base analysed on the first run only). Target: <= 1.1x.

Usage: bench/baseline.py [--bgtask target/release/bgtask] [--task bandit]
       [--project tests/fixtures/projects/python-app] [--rounds 20]
       (BGTASK_CACHE_DIR must point at a tool cache with the analyzers)
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default=os.path.join(HERE, "..", "target", "release", "bgtask"))
    ap.add_argument("--task", default="bandit")
    ap.add_argument("--project", default=os.path.join(HERE, "..", "tests", "fixtures", "projects", "python-app"))
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bgtask-baseline-bench.")
    repo = os.path.join(tmp, "repo")
    shutil.copytree(a.project, repo)
    env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), BGTASK_DATA_DIR=os.path.join(tmp, "data"),
               BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    git = lambda *args: subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b", *args], cwd=repo,
                                       check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "main")
    git("checkout", "-q", "-b", "feature")
    with open(os.path.join(repo, "added.py"), "w") as f:
        f.write("def risky(text):\n    return eval(text)\n")
    git("add", "-A")
    git("commit", "-qm", "feature")
    bgtask = os.path.abspath(a.bgtask)

    def timed(*extra):
        t0 = time.perf_counter()
        subprocess.run([bgtask, "-q", "run", a.task, "--format", "json", *extra], cwd=repo, env=env,
                       capture_output=True)
        return (time.perf_counter() - t0) * 1000

    try:
        timed()
        first = timed("--baseline-ref", "main")
        plain = [timed() for _ in range(a.rounds)]
        held = [timed("--baseline-ref", "main") for _ in range(a.rounds)]
        p, h = statistics.median(plain), statistics.median(held)
        print(f"{a.task} on {os.path.basename(a.project)}: plain cached run {p:.1f} ms, "
              f"--baseline-ref main (baseline cached) {h:.1f} ms = {h / p:.2f}x; "
              f"first --baseline-ref run (merge base analysed) {first:.0f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
