#!/usr/bin/env python3
"""Benchmark of the bgtask daemon (issue: the daemon).

Measures, against a real daemon in a scratch git repository:

  triggers/s   Submit requests accepted over IPC from C concurrent clients
               (separate processes), each on one connection, request after
               request, and again with a new connection per trigger (what a
               hook does). Three file patterns: the same file every time, a
               rotating set of 100 files, and a new file every trigger.
               Target: >= 5000/s from 4 clients.
  status       round trip of `bgtask status` (the whole CLI process) and of
               a raw Status request on an open connection; median and p95.
               Target: <= 5 ms median. With watchman installed, `watchman
               version` (its CLI's round trip to its daemon) is measured in
               the same rounds for comparison.
  idle         the daemon's RSS and CPU over an idle window after the work
               has drained (default 60 s); watchman's alongside when
               installed.

Usage:
  bench/daemon.py [--bgtask target/release/bgtask] [--clients 4]
                  [--triggers 20000] [--status-runs 200] [--idle 60]
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIG = {
    "execution": {"max_concurrent_tasks": 1},
    "triggers": {"file_watch": {"debounce": "1s"}},
    "tasks": {"check": {"analyzers": ["noop"]}},
    "analyzers": {
        "noop": {"command": "true", "mode": "project", "parser": "exit-code", "cache": False}
    },
}


def frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(sock: socket.socket) -> dict:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return json.loads(body)


def submit(i: int, pattern: str) -> dict:
    if pattern == "same":
        files = ["src/app.py"]
    elif pattern == "rotating":
        files = [f"src/m{i % 100}.py"]
    else:
        files = [f"src/new{i}.py"]
    return {
        "v": 1,
        "body": {
            "op": "submit",
            "tasks": ["check"],
            "files": files,
            "priority": None,
            "source": {"kind": "manual", "command": "bench"},
            "debounce": True,
        },
    }


def client(args):
    sock_path, start, count, pattern, per_connection, barrier = args
    barrier.wait()
    ok = 0
    if per_connection:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
    for i in range(start, start + count):
        if not per_connection:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
        s.sendall(frame(submit(i, pattern)))
        reply = read_frame(s)
        if reply["body"].get("kind") == "submitted":
            ok += 1
        if not per_connection:
            s.close()
    return ok


def throughput(sock_path: str, clients: int, total: int, pattern: str, per_connection: bool, offset: int) -> float:
    per = total // clients
    with multiprocessing.Manager() as m:
        barrier = m.Barrier(clients + 1)
        with multiprocessing.Pool(clients) as pool:
            work = [(sock_path, offset + c * per, per, pattern, per_connection, barrier) for c in range(clients)]
            res = pool.map_async(client, work)
            barrier.wait()
            t0 = time.perf_counter()
            accepted = sum(res.get())
            took = time.perf_counter() - t0
    if accepted != per * clients:
        sys.exit(f"only {accepted} of {per * clients} triggers accepted")
    return accepted / took


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def proc_stat(pid: int):
    """RSS (KiB), CPU (ns) and wakeups (voluntary context switches, all
    threads) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    cpu_ns, wakeups = 0, 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            cpu_ns += int(f.read().split()[0])
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            wakeups += next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches:"))
    return rss, cpu_ns, wakeups


def watchman_setup(tmp: Path, repo: Path):
    exe = shutil.which("watchman")
    if not exe:
        return None
    state = tmp / "watchman"
    state.mkdir()
    env = dict(os.environ, WATCHMAN_CONFIG_FILE=str(state / "none.json"))
    sock = state / "sock"
    base = [exe, "--sockname", str(sock), "--statefile", str(state / "state"), "--logfile", str(state / "log"), "--pidfile", str(state / "pid")]
    subprocess.run(base + ["watch", str(repo)], env=env, check=True, capture_output=True)
    pid = int((state / "pid").read_text().strip())
    return base, env, pid


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bgtask", default=str(ROOT / "target" / "release" / "bgtask"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--triggers", type=int, default=20000)
    ap.add_argument("--status-runs", type=int, default=200)
    ap.add_argument("--idle", type=int, default=60)
    args = ap.parse_args()
    exe = Path(args.bgtask).resolve()
    if not exe.exists():
        sys.exit(f"{exe} not found: cargo build --release")

    tmp = Path(tempfile.mkdtemp(prefix="bgtask-bench-"))
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700)
    repo = tmp / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("x = 1\n")
    (repo / ".background-tasks.json").write_text(json.dumps(CONFIG))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
    env.pop("BGTASK_LOG", None)

    def bg(*a, check=True):
        return subprocess.run([str(exe), *a], cwd=repo, env=env, capture_output=True, text=True, check=check)

    print(bg("start").stdout.strip(), file=sys.stderr)
    wm = None
    try:
        status = json.loads(bg("status", "--json").stdout)
        pid = status["pid"]
        sock_path = str(next((runtime / "bgtask").glob("*.sock")))
        rss_start, _, _ = proc_stat(pid)

        rows = []
        offset = 0
        for pattern in ["same", "rotating", "unique"]:
            for per_connection in [True, False]:
                rate = throughput(sock_path, args.clients, args.triggers, pattern, per_connection, offset)
                offset += args.triggers
                rows.append((pattern, "one per client" if per_connection else "one per trigger", rate))
                print(f"  {pattern:9} {rows[-1][1]:16} {rate:9.0f} triggers/s", file=sys.stderr)
        rss_peak, _, _ = proc_stat(pid)
        queue = json.loads(bg("queue", "--json").stdout)

        # Status round trips, interleaved with watchman's when installed.
        wm = watchman_setup(tmp, repo)
        cli, raw, wm_cli = [], [], []
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        for _ in range(args.status_runs):
            t0 = time.perf_counter()
            bg("status")
            cli.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            s.sendall(frame({"v": 1, "body": {"op": "status"}}))
            read_frame(s)
            raw.append(time.perf_counter() - t0)
            if wm:
                t0 = time.perf_counter()
                subprocess.run(wm[0] + ["version"], env=wm[1], capture_output=True, check=True)
                wm_cli.append(time.perf_counter() - t0)
        s.close()

        # Idle: wait for the queue to drain, then watch.
        deadline = time.time() + 120
        while time.time() < deadline:
            st = json.loads(bg("status", "--json").stdout)
            if st["queue_depth"] == 0 and not st["running_jobs"]:
                break
            time.sleep(0.5)
        time.sleep(2)
        rss0, cpu0, wake0 = proc_stat(pid)
        w0 = proc_stat(wm[2]) if wm else None
        time.sleep(args.idle)
        rss1, cpu1, wake1 = proc_stat(pid)
        w1 = proc_stat(wm[2]) if wm else None
        history = json.loads(bg("history", "--json", "--limit", "1000").stdout)
    finally:
        bg("stop", check=False)
        if wm:
            subprocess.run(wm[0] + ["shutdown-server"], env=wm[1], capture_output=True)

    ms = lambda v: f"{v * 1000:.2f}"
    print()
    print(f"## bgtask daemon ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {bg('--version').stdout.strip()})")
    print()
    print(f"Triggers accepted over IPC from {args.clients} concurrent clients ({args.triggers} per row; target >= 5000/s):")
    print()
    print("| files per trigger | connection | triggers/s |")
    print("|---|---|---|")
    for pattern, conn, rate in rows:
        print(f"| {pattern} | {conn} | {rate:,.0f} |")
    print()
    print(f"{len(history)} job(s) ran for {args.triggers * len(rows)} triggers (coalescing); {len(queue)} waiting at the end of the storm. Daemon RSS {rss_start / 1024:.1f} MiB at start, {rss_peak / 1024:.1f} MiB after the storm.")
    print()
    print(f"Status round trip, {args.status_runs} rounds interleaved (target <= 5 ms median):")
    print()
    print("| client | median ms | p95 ms |")
    print("|---|---|---|")
    print(f"| `bgtask status` (CLI process) | {ms(statistics.median(cli))} | {ms(pct(cli, 0.95))} |")
    print(f"| raw Status request, open connection | {ms(statistics.median(raw))} | {ms(pct(raw, 0.95))} |")
    if wm_cli:
        print(f"| `watchman version` (CLI process) | {ms(statistics.median(wm_cli))} | {ms(pct(wm_cli, 0.95))} |")
    print()
    print(f"Idle over {args.idle} s:")
    print()
    print("| daemon | RSS MiB | CPU ms | wakeups |")
    print("|---|---|---|---|")
    print(f"| bgtask | {rss1 / 1024:.1f} | {(cpu1 - cpu0) / 1e6:.1f} | {wake1 - wake0} |")
    if wm:
        print(f"| watchman (watching the same repo) | {w1[0] / 1024:.1f} | {(w1[1] - w0[1]) / 1e6:.1f} | {w1[2] - w0[2]} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
