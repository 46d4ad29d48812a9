#!/usr/bin/env python3
"""Benchmark of per-file cache entries (`cache_per_file`, bandit and radon
have it): after a full run filled the cache, one file is edited and
`bgtask run NAMES` runs again. With per-file entries only that file is
analysed; without them (the flag turned off in the config) the analyzer's
whole run misses. Both against a run with no cache at all.

Usage: bench/per_file.py [--bgtask target/release/bgtask]
         [--project tests/fixtures/projects/python-app] [--names bandit radon]
         [--rounds 5]
       (BGTASK_CACHE_DIR: a tool cache with the analyzers, as
       target/test-cache after scripts/test.sh)
"""

import argparse
import json
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
    ap.add_argument("--project", default=os.path.join(HERE, "..", "tests", "fixtures", "projects", "python-app"))
    ap.add_argument("--names", nargs="+", default=["bandit", "radon"])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    tmp = tempfile.mkdtemp(prefix="bgtask-per-file-bench.")
    env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), BGTASK_DATA_DIR=os.path.join(tmp, "data"),
               BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    env.pop("CI", None)
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    try:
        def copy(name, per_file):
            repo = os.path.join(tmp, name)
            shutil.copytree(a.project, repo, ignore=shutil.ignore_patterns(".bgtask", ".git"))
            cfg = {} if per_file else {"analyzers": {n: {"cache_per_file": False} for n in a.names}}
            with open(os.path.join(repo, ".background-tasks.json"), "w") as f:
                json.dump(cfg, f)
            return repo

        def run(repo, *extra):
            t0 = time.perf_counter()
            out = subprocess.run([bgtask, "-q", "run", *a.names, "--format", "json", *extra], cwd=repo, env=env,
                                 capture_output=True, text=True)
            took = time.perf_counter() - t0
            return took, json.loads(out.stdout)

        on, off = copy("on", True), copy("off", False)
        files = sorted(os.path.relpath(os.path.join(d, f), on) for d, _, fs in os.walk(on) for f in fs
                       if f.endswith(".py") and ".bgtask" not in d)
        cold = [run(on, "--no-cache")[0] for _ in range(a.rounds)]
        times = {on: [], off: []}
        findings = {}
        for repo in (on, off):
            run(repo)  # fill the cache
        for i in range(a.rounds):
            edited = files[(i * 7) % len(files)]
            for repo in (on, off):
                with open(os.path.join(repo, edited), "a") as f:
                    f.write(f"# edit {i}\n")
                took, report = run(repo)
                times[repo].append(took)
                findings[repo] = len(report["findings"])
                if repo == on:
                    spawned = sum(r["invocations"] for r in report["runs"])
                    kept = sum(r.get("cached_files", 0) for r in report["runs"])
        c = statistics.median(cold)
        t_on, t_off = statistics.median(times[on]), statistics.median(times[off])
        assert findings[on] == findings[off], findings
        print(f"{os.path.basename(os.path.abspath(a.project))} ({' '.join(a.names)}; {len(files)} Python files, "
              f"{findings[on]} findings): no cache {c * 1000:.0f} ms; one file edited: per-file entries "
              f"{t_on * 1000:.0f} ms = {t_on / c:.2f}x ({spawned} processes, {kept} file results kept), "
              f"whole-run entries only {t_off * 1000:.0f} ms = {t_off / c:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
