#!/usr/bin/env python3
"""Benchmark of `bgtask run` (issue: the analyzer engine).

For each fixture project (Python, JavaScript, Rust) it measures, in
alternating rounds on the same warm caches:

  manual   the same tools bgtask runs, started by hand one after another
           (the argv of bgtask's built-in definitions)
  bgtask   `bgtask run all --offline --no-cache` (parallel, isolated)
  cached   `bgtask run all --offline` right after: nothing changed

and prints medians and the ratios bgtask/manual and cached/bgtask (target
<= 0.05). Network analyzers are left out (--offline) because they measure
the network, not bgtask.

Usage:
  bench/engine.py [--rounds 5] [--bgtask target/release/bgtask] [--cache DIR]

The analyzers must be in the tool cache (scripts/test.sh fills
target/test-cache; `bgtask tools install --all` fills the user cache).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "projects"


def manual_commands(project: str, tools: Path, out: Path) -> list[list[str]]:
    venv = tools / "tools" / "venv" / "bin"
    node = tools / "tools" / "node" / "node_modules" / ".bin"
    if project == "python-app":
        py = ["src/shop/__init__.py", "src/shop/orders.py", "src/shop/util.py", "tests/test_util.py"]
        return [
            [str(venv / "bandit"), "-q", "-f", "json", "-o", str(out / "b.json"), "--", *py],
            [str(venv / "pylint"), "--output-format=json2", f"--output={out / 'p.json'}", "--persistent=n", *py],
            [str(venv / "radon"), "cc", "-j", "-s", "--", *py],
            [str(venv / "pytest"), "-q", f"--junitxml={out / 't.xml'}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"],
        ]
    if project == "js-app":
        return [
            [str(node / "eslint"), "-f", "json", "-o", str(out / "e.json"), "--no-error-on-unmatched-pattern", "--", "src/clean.js", "src/index.js"],
            ["npm", "run", "--if-present", "test"],
        ]
    if project == "rust-crate":
        return [
            ["cargo", "clippy", "--all-targets", "--message-format=json", "--color", "never"],
            ["cargo", "test", "--no-fail-fast", "--color", "never"],
        ]
    raise ValueError(project)


def timed(cmds: list[list[str]], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    for c in cmds:
        subprocess.run(c, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bgtask", default=str(ROOT / "target" / "release" / "bgtask"))
    ap.add_argument("--cache", default=os.environ.get("BGTASK_TEST_CACHE", str(ROOT / "target" / "test-cache")))
    args = ap.parse_args()
    bgtask = Path(args.bgtask)
    cache = Path(args.cache)
    if not bgtask.exists():
        sys.exit(f"{bgtask} not found: cargo build --release")
    if not (cache / "tools" / "venv" / "bin" / "bandit").exists():
        sys.exit(f"no analyzers in {cache}: run scripts/test.sh or `bgtask tools install --all`")

    rows = []
    totals = {"manual": [], "bgtask": [], "cached": []}
    with tempfile.TemporaryDirectory(prefix="bgtask-bench-") as tmp:
        tmp = Path(tmp)
        for project in ["python-app", "js-app", "rust-crate"]:
            work = tmp / project
            shutil.copytree(FIXTURES / project, work)
            subprocess.run(["git", "init", "-q"], cwd=work, check=True)
            out = tmp / f"{project}-out"
            out.mkdir()
            env = dict(os.environ, BGTASK_CACHE_DIR=str(cache), NO_COLOR="1", CARGO_TARGET_DIR=str(work / "target"))
            manual = manual_commands(project, cache, out)
            run_all = [str(bgtask), "-q", "run", "all", "--offline", "--format", "json", "--output", str(out / "r.json")]
            # Warm-up: compile the Rust fixture, fill the version cache, page in the tools.
            timed(manual, work, env)
            timed([run_all + ["--no-cache"]], work, env)
            samples = {"manual": [], "bgtask": [], "cached": []}
            for r in range(args.rounds):
                order = ["manual", "bgtask"] if r % 2 == 0 else ["bgtask", "manual"]
                for which in order:
                    if which == "manual":
                        samples["manual"].append(timed(manual, work, env))
                    else:
                        samples["bgtask"].append(timed([run_all + ["--no-cache"]], work, env))
                        samples["cached"].append(timed([run_all], work, env))
            med = {k: statistics.median(v) for k, v in samples.items()}
            for k in totals:
                totals[k].append(med[k])
            rows.append((project, len(manual), med))

    floor = statistics.median(timed([["true"]], ROOT, dict(os.environ)) for _ in range(20))

    def fmt(s: float) -> str:
        return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"

    print(f"\n`bgtask run all --offline`, {args.rounds} alternating rounds per project after one warm-up, medians; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}.\n")
    print("| project | tools run by hand, one after another | bgtask, no cache | bgtask / by hand | bgtask, cached | cached / no cache |")
    print("|---|---|---|---|---|---|")
    for project, n, m in rows:
        print(f"| {project} ({n} tools) | {fmt(m['manual'])} | {fmt(m['bgtask'])} | {m['bgtask'] / m['manual']:.2f} | "
              f"{fmt(m['cached'])} | {m['cached'] / m['bgtask']:.3f} |")
    t = {k: sum(v) for k, v in totals.items()}
    print(f"| all three | {fmt(t['manual'])} | {fmt(t['bgtask'])} | {t['bgtask'] / t['manual']:.2f} | "
          f"{fmt(t['cached'])} | {t['cached'] / t['bgtask']:.3f} |")
    print(f"\nHarness floor: starting `true` the same way takes {floor * 1000:.1f} ms (included in every figure above).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
