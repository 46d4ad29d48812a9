#!/usr/bin/env python3
"""Benchmark of `bgtask mcp` (issue: MCP for AI coding agents), with raw
JSON-RPC over the server's stdio (no client library in the measurement).

  start      spawn `bgtask mcp`, `initialize`, `notifications/initialized`,
             `tools/list`: the time from spawn to the `tools/list` answer
             (process start included). Target <= 50 ms.
  get_run    a recorded run with 10 000 findings (a custom SARIF-emitting
             analyzer run by the daemon): `get_run` time and payload size,
             with the default limit and with limit 1000 (capped by size).
             Targets <= 50 ms and <= 256 KB.
  analysis   `run_analysis` on a cached project vs `bgtask run` for the same
             work (bandit on tests/fixtures/projects/python-app, cache warm):
             medians. Target: within 10 ms.

Usage: bench/mcp.py [--bgtask target/release/bgtask] [--rounds 20]
       (BGTASK_CACHE_DIR must point at a tool cache with bandit, as
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


def session(bgtask, repo, env):
    p = subprocess.Popen([bgtask, "mcp"], cwd=repo, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def ask(id_, method, params=None):
        msg = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            msg["params"] = params
        p.stdin.write(json.dumps(msg) + "\n")
        p.stdin.flush()
        while True:
            line = p.stdout.readline()
            v = json.loads(line)
            if v.get("id") == id_:
                return v, len(line)

    ask(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "bench", "version": "1"}})
    p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    p.stdin.flush()
    return p, ask


def scratch(tmp, name):
    repo = os.path.join(tmp, name)
    env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), BGTASK_DATA_DIR=os.path.join(tmp, "data"),
               BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
    return repo, env


def git_init(repo):
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "init"], cwd=repo, check=True)


def bench_start(bgtask, tmp, rounds):
    repo, env = scratch(tmp, "start")
    os.makedirs(repo)
    git_init_empty = subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    del git_init_empty
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        p, ask = session(bgtask, repo, env)
        ask(1, "tools/list")
        times.append((time.perf_counter() - t0) * 1000)
        p.stdin.close()
        p.wait()
    print(f"start → tools/list: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms ({rounds} rounds)")


def bench_get_run(bgtask, tmp, rounds):
    repo, env = scratch(tmp, "big")
    os.makedirs(os.path.join(repo, "bin"))
    with open(os.path.join(repo, "bin", "many.py"), "w") as f:
        f.write("""import json, sys
results = [{"ruleId": f"R{i % 50}", "level": "warning", "message": {"text": f"finding {i} in a.txt"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.txt"},
                           "region": {"startLine": i + 1, "startColumn": 1}}}]} for i in range(10000)]
print(json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "many"}}, "results": results}]}))
""")
    with open(os.path.join(repo, "a.txt"), "w") as f:
        f.write("x\n" * 10000)
    with open(os.path.join(repo, ".background-tasks.json"), "w") as f:
        json.dump({"tasks": {"many": {"analyzers": ["many"]}},
                   "analyzers": {"many": {"command": "python3", "args": ["bin/many.py"], "mode": "project",
                                          "parser": "sarif", "cache": False}}}, f)
    git_init(repo)
    run = lambda *a: subprocess.run([bgtask, *a], cwd=repo, env=env, check=True, capture_output=True, text=True)
    run("trust", "--yes")
    run("start")
    try:
        run("submit", "many")
        for _ in range(300):
            h = json.loads(run("history", "--json").stdout)
            runs = h.get("runs", h) if isinstance(h, dict) else h
            if runs and runs[0]["verdict"] != "running":
                break
            time.sleep(0.1)
        run_id = runs[0]["run_id"]
        p, ask = session(bgtask, repo, env)
        for limit in (None, 1000):
            args = {"run_id": run_id} if limit is None else {"run_id": run_id, "limit": limit}
            times, size, shown = [], 0, 0
            for i in range(rounds):
                t0 = time.perf_counter()
                v, size = ask(10 + i, "tools/call", {"name": "get_run", "arguments": args})
                times.append((time.perf_counter() - t0) * 1000)
                s = v["result"].get("structuredContent") or exit(f"get_run failed: {v}")
                shown = len(s["findings"])
            print(f"get_run (10 000 findings, limit {limit or 'default'}): median {statistics.median(times):.1f} ms, "
                  f"{shown} findings returned, {s['omitted']} omitted, message {size / 1024:.0f} KB")
        p.stdin.close()
        p.wait()
    finally:
        run("stop")


def bench_analysis(bgtask, tmp, rounds):
    repo, env = scratch(tmp, "app")
    shutil.copytree(os.path.join(HERE, "..", "tests", "fixtures", "projects", "python-app"), repo)
    git_init(repo)
    run = lambda *a: subprocess.run([bgtask, *a], cwd=repo, env=env, capture_output=True, text=True)
    run("trust", "--yes")
    run("run", "bandit", "--format", "json")  # warm the cache
    cli = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run("run", "bandit", "--format", "json")
        cli.append((time.perf_counter() - t0) * 1000)
    p, ask = session(bgtask, repo, env)
    ours = []
    for i in range(rounds):
        t0 = time.perf_counter()
        ask(100 + i, "tools/call", {"name": "run_analysis", "arguments": {"tasks": ["bandit"], "scope": "project"}})
        ours.append((time.perf_counter() - t0) * 1000)
    p.stdin.close()
    p.wait()
    print(f"cached bandit: `bgtask run` median {statistics.median(cli):.1f} ms (a process each), "
          f"run_analysis median {statistics.median(ours):.1f} ms (in a running server)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default=os.path.join(HERE, "..", "target", "release", "bgtask"))
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    tmp = tempfile.mkdtemp(prefix="bgtask-mcp-bench.")
    try:
        bench_start(bgtask, tmp, a.rounds)
        bench_get_run(bgtask, tmp, a.rounds)
        bench_analysis(bgtask, tmp, a.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
