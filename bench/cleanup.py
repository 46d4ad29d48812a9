#!/usr/bin/env python3
"""Benchmark of process cleanup (RELIABILITY 9, 10, 27).

Runs, against a real daemon in a scratch git repository, the analyzer of
tests/fixtures/bin/escape.sh: it ignores SIGTERM and leaves a `setsid`
grandchild that ignores it too (and has a child of its own). Every process
it starts carries ESCAPE_MARKER=<repo> in its environment, which is how
survivors are counted.

  timeout   task_timeout 2 s, kill_grace 1 s; per round: the run's duration
            (runs.duration_ms), the time from the timeout to the slot being
            free (duration - 2 s; the budget is grace + 1 s = 2 s), and the
            marked processes alive once the job is recorded as ended.
  kill -9   per round: the daemon is killed with SIGKILL while the job runs
            (after its escaped grandchild was recorded), started again, and
            the marked processes alive before and after the restart counted.
  cost      the daemon's CPU time while a job runs (the /proc passes every
            200 ms), with N idle extra processes on the machine.

Usage:
  bench/cleanup.py [--bgtask target/release/bgtask] [--rounds 5]
                   [--extra 1000] [--window 10] [--parts timeout,kill9,cost]
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def marked(repo):
    name = os.path.basename(repo)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        for kv in env:
            if kv.startswith(b"ESCAPE_MARKER=") and kv.endswith(name.encode()):
                found.append(int(pid))
                break
    return found


def wait(secs, what, cond):
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.02)


class Repo:
    def __init__(self, bgtask, timeout):
        self.bgtask = bgtask
        self.dir = tempfile.mkdtemp(prefix="bgtask-cleanup-")
        self.env = dict(os.environ)
        rt = os.path.join(self.dir, ".rt")
        os.makedirs(rt, mode=0o700)
        self.env.update({"XDG_RUNTIME_DIR": rt, "BGTASK_ALLOW_ROOT": "1"})
        subprocess.run(["git", "init", "-q", "-b", "main", self.dir], check=True)
        os.makedirs(os.path.join(self.dir, "bin"))
        shutil.copy(os.path.join(ROOT, "tests/fixtures/bin/escape.sh"), os.path.join(self.dir, "bin"))
        config = {
            "execution": {"kill_grace": "1s", "max_retries": 0},
            "daemon": {"max_rss_mb": 100000},
            "tasks": {"stubborn": {"analyzers": ["stubborn"]}},
            "analyzers": {"stubborn": {"command": "./bin/escape.sh", "mode": "project", "args": ["{root}"],
                                       "parser": "exit-code", "timeout": timeout, "cache": False}},
        }
        with open(os.path.join(self.dir, ".background-tasks.json"), "w") as f:
            json.dump(config, f)

    def run(self, *args):
        return subprocess.run([self.bgtask, *args], cwd=self.dir, env=self.env,
                              capture_output=True, text=True)

    def sql(self, q):
        c = sqlite3.connect(os.path.join(self.dir, ".bgtask/state.db"))
        try:
            return c.execute(q).fetchall()
        finally:
            c.close()

    def pid(self):
        out = self.run("status", "--json")
        return json.loads(out.stdout).get("pid") if out.returncode == 0 else None

    def escaped(self):
        path = os.path.join(self.dir, "escaped")
        wait(20, "the grandchild", lambda: os.path.exists(path))
        with open(path) as f:
            return int(f.read().strip())

    def close(self):
        self.run("stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def timeout_rounds(args):
    print("timeout: task_timeout 2 s, kill_grace 1 s")
    after = []
    for i in range(args.rounds):
        r = Repo(args.bgtask, "2s")
        r.run("start")
        r.run("submit", "stubborn")
        r.escaped()
        wait(20, "the job to end", lambda: r.sql(
            "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == [(0,)])
        left = len(marked(r.dir))
        ms = r.sql("SELECT duration_ms FROM runs")[0][0]
        after.append(ms - 2000)
        print(f"  round {i + 1}: run {ms} ms, timeout to slot free {ms - 2000} ms, {left} process(es) left")
        r.close()
        left_after_stop = len(marked(r.dir))
        if left or left_after_stop:
            print(f"  ! {left} left at the end, {left_after_stop} after stop")
    print(f"  timeout to slot free: median {statistics.median(after)} ms, max {max(after)} ms (budget 2000)")


def kill9_rounds(args):
    print("kill -9 while the job runs, then start again")
    survivors = 0
    for i in range(args.rounds):
        r = Repo(args.bgtask, "60s")
        r.run("start")
        pid = r.pid()
        r.run("submit", "stubborn")
        g = r.escaped()
        wait(10, "the grandchild to be recorded", lambda: r.sql(
            f"SELECT count(*) FROM processes WHERE pid = {g}") == [(1,)])
        os.kill(pid, signal.SIGKILL)
        wait(10, "the daemon to die", lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z")
        before = len(marked(r.dir))
        os.rename(os.path.join(r.dir, "bin/escape.sh"), os.path.join(r.dir, "bin/gone.sh"))
        r.run("start")
        wait(10, "the recovery", lambda: "earlier daemon" in open(
            os.path.join(r.dir, ".bgtask/logs/daemon.log")).read())
        left = len(marked(r.dir))
        survivors += left
        print(f"  round {i + 1}: {before} process(es) alive after the kill, {left} after the restart")
        r.close()
    print(f"  survivors after {args.rounds} kills: {survivors}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cost(args):
    hz = os.sysconf("SC_CLK_TCK")
    extra = [subprocess.Popen(["sleep", "600"]) for _ in range(args.extra)]
    try:
        total = sum(1 for p in os.listdir("/proc") if p.isdigit())
        r = Repo(args.bgtask, "600s")
        r.run("start")
        pid = r.pid()
        time.sleep(1)
        t0 = cpu_ticks(pid)
        time.sleep(args.window)
        idle = (cpu_ticks(pid) - t0) / hz
        r.run("submit", "stubborn")
        r.escaped()
        time.sleep(0.5)
        t0 = cpu_ticks(pid)
        time.sleep(args.window)
        busy = (cpu_ticks(pid) - t0) / hz
        print(f"cost: {total} processes on the machine; daemon CPU over {args.window} s: "
              f"idle {idle * 1000:.0f} ms, while a job runs {busy * 1000:.0f} ms "
              f"({busy / args.window * 100:.1f}% of a core)")
        r.close()
    finally:
        for p in extra:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default=os.path.join(ROOT, "target/release/bgtask"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--extra", type=int, default=1000)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--parts", default="timeout,kill9,cost")
    args = ap.parse_args()
    args.bgtask = os.path.abspath(args.bgtask)
    parts = args.parts.split(",")
    if "timeout" in parts:
        timeout_rounds(args)
    if "kill9" in parts:
        kill9_rounds(args)
    if "cost" in parts:
        cost(args)


if __name__ == "__main__":
    main()
