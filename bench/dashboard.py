#!/usr/bin/env python3
"""Benchmark of `bgtask dashboard` (issue: the web dashboard and HTTP API).

Against a real daemon and dashboard (release build) in a scratch git
repository:

  api        GET /api/v1/projects/{id}/status and /history?limit=50 with
             100 000 runs in the store (written straight into SQLite while
             the daemon is stopped), over one keep-alive connection;
             median and p95. Targets: <= 5 ms and <= 20 ms. Also
             …/trends (the project page's plots: the default 14 days, all
             100 000 runs, by day; and the last day by the hour), target
             <= 20 ms median; with --findings N each run has N findings
             (drifting: one new and one fixed every 10 runs of a task) and a
             job, one in five of them on two files only.
  page       the page's size (target <= 150 KB).
  fan-out    50 SSE clients at once while 1 000 jobs run: every client must
             see every job's `job_finished` (no event lost); the delay from
             an event's `at_ms` to its arrival at a client (median, p95);
             the dashboard's peak RSS (target <= 30 MB).

Usage:
  bench/dashboard.py [--bgtask target/release/bgtask] [--runs 100000]
                     [--findings 0] [--clients 50] [--jobs 1000]
                     [--requests 300]

bench/dashboard_latency.py builds its store with `scratch` from here.
"""

import argparse
import http.client
import json
import os
import re
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def scratch(bgtask, runs, findings=0, tmp=None):
    """A scratch repository with a daemon (stopped) whose store holds `runs`
    runs of tasks t0..t3 (one a second, up to now), each with `findings`
    findings; the repository, its environment and a runner of bgtask."""
    tmp = tmp or tempfile.mkdtemp(prefix="bgtask-dash-bench.")
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), BGTASK_DATA_DIR=os.path.join(tmp, "data"),
               BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    run = lambda *args: subprocess.run([bgtask, *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    tasks = {f"t{i}": {"analyzers": ["ok"]} for i in range(4)}
    tasks["slow"] = {"analyzers": ["slow"]}
    with open(os.path.join(repo, ".background-tasks.json"), "w") as f:
        json.dump({"execution": {"max_concurrent_tasks": 2, "max_queue_size": 100000},
                   "daemon": {"max_rss_mb": 100000},
                   "tasks": tasks,
                   "analyzers": {"ok": {"command": "true", "mode": "project", "parser": "exit-code", "cache": False},
                                 "slow": {"command": "sleep", "args": ["0.3"], "mode": "project", "parser": "exit-code",
                                          "cache": False}}}, f)
    run("trust", "--yes")
    run("start")
    run("stop")
    db = sqlite3.connect(os.path.join(repo, ".bgtask", "state.db"))
    now = int(time.time() * 1000)
    report = json.dumps({"verdict": "no findings"})
    # Run and job ids from past any the daemon made.
    base = max(db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0],
               db.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0]) + 1
    db.executemany(
        "INSERT INTO runs (id, job_id, task, attempt, trigger, started_ms, duration_ms, wait_ms, exit_code, verdict,"
        " findings, ok, peak_rss_kb, cpu_ms, report) VALUES (?, ?, ?, 0, 'save', ?, 120, 5, 0, 'no findings', ?, 1,"
        " 9000, 40, ?)",
        ((base + i, base + i, f"t{i % 4}", now - (runs - i) * 1000, findings, report) for i in range(runs)))
    if findings:
        sevs = ["critical", "high", "medium", "low", "info"]
        db.executemany(
            "INSERT INTO jobs (id, task, dedup_key, priority, score, state, project, trigger, attempt, enqueued_ms,"
            " not_before_ms) VALUES (?, ?, 'k', 'normal', 0, 'done', ?, 'save', 0, 0, 0)",
            ((base + i, f"t{i % 4}", int(i % 5 != 0)) for i in range(runs)))
        db.executemany(
            "INSERT INTO job_files (job_id, path) VALUES (?, CAST(? AS BLOB))",
            ((base + i, f"src/m{(i // 4 + k) % 20}.py") for i in range(0, runs, 5) for k in range(2)))
        db.executemany(
            "INSERT INTO findings (run_id, analyzer, rule, severity, path, line, message, fingerprint)"
            " VALUES (?, 'ok', 'R1', ?, ?, 1, 'a finding', ?)",
            ((base + i, sevs[(i // 40 + k) % 5], f"src/m{(i // 40 + k) % 20}.py", f"t{i % 4}:{i // 40 + k}")
             for i in range(runs) for k in range(findings)))
    db.commit()
    db.close()
    return repo, env, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default="target/release/bgtask")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--findings", type=int, default=0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=300)
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    repo, env, run = scratch(bgtask, a.runs, a.findings)
    run("start")
    dash = subprocess.Popen([bgtask, "dashboard", "--port", "0", "--no-open", "--json"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, text=True)
    info = json.loads(dash.stdout.readline())
    host = info["url"].removeprefix("http://")
    auth = {"Authorization": f"Bearer {info['token']}", "Host": host}
    conn = http.client.HTTPConnection(host)

    def get(path):
        conn.request("GET", path, headers=auth)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return body

    pid = json.loads(get("/api/v1/projects"))["projects"][0]["id"]
    print(f"# {a.runs} runs in the store ({a.findings} findings each); {a.requests} requests each, interleaved, "
          "one keep-alive connection\n")
    print("| request | median ms | p95 ms |\n|---|---|---|")
    times = {"status": [], "history?limit=50": [], "trends": [], "trends?days=1": []}
    for _ in range(a.requests):
        for name in times:
            t = time.perf_counter()
            get(f"/api/v1/projects/{pid}/{name}")
            times[name].append((time.perf_counter() - t) * 1000)
    for name, xs in times.items():
        print(f"| GET …/{name} | {statistics.median(xs):.2f} | {pct(xs, 95):.2f} |")
    trends = json.loads(get(f"/api/v1/projects/{pid}/trends"))
    print(f"\n…/trends: {sum(p['runs'] for p in trends['total'])} runs in {len(trends['total'])} buckets "
          f"of {trends['bucket_ms'] // 3_600_000} h.")
    page = len(get("/"))
    for name in re.findall(r'/assets/([\w.]+)', get("/").decode()):
        page += len(get(f"/assets/{name}"))
    print(f"\nThe page: {page} bytes (its HTML, scripts and styles).\n")

    # Fan-out: every client counts every job's end.
    seen = [0] * a.clients
    delays = [[] for _ in range(a.clients)]
    ready = threading.Barrier(a.clients + 1)

    def client(i):
        c = http.client.HTTPConnection(host, timeout=120)
        c.request("GET", f"/api/v1/events?project={pid}", headers=auth)
        r = c.getresponse()
        event = None
        first = True
        while True:
            line = r.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
                if first and event == "daemon_up":
                    first = False
                    ready.wait()
            elif line.startswith("data: ") and event == "job_finished":
                d = json.loads(line[6:])
                delays[i].append(time.time() * 1000 - d["at_ms"])
                seen[i] += 1
                if seen[i] >= a.jobs:
                    return

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.monotonic()
    tasks = [f"t{i % 4}" for i in range(4)]
    submitted = 0
    while submitted < a.jobs:
        if submitted + 4 > a.jobs:
            tasks = tasks[: a.jobs - submitted]
        # One submit per task at a time: a waiting job takes in more triggers.
        out = json.loads(subprocess.run([bgtask, "submit", "--json", *tasks], cwd=repo, env=env, capture_output=True,
                                        text=True).stdout or "[]")
        submitted += sum(1 for j in out if j.get("outcome") in ("queued", "rerun_after"))
    peak = 0.0
    for t in threads:
        while t.is_alive():
            t.join(0.2)
            peak = max(peak, rss_mb(dash.pid))
            if time.monotonic() - started > 300:
                break
    took = time.monotonic() - started
    all_delays = [d for ds in delays for d in ds]
    lost = sum(max(0, a.jobs - s) for s in seen)
    print(f"{a.clients} SSE clients, {a.jobs} jobs in {took:.1f} s: {lost} job ends not seen by some client; "
          f"event → client median {statistics.median(all_delays):.1f} ms, p95 {pct(all_delays, 95):.1f} ms; "
          f"dashboard peak RSS {max(peak, rss_mb(dash.pid)):.1f} MiB")
    dash.terminate()
    run("stop")


if __name__ == "__main__":
    main()
