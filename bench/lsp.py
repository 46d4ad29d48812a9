#!/usr/bin/env python3
"""Benchmark of `bgtask lsp` (issue: hold the line): the time from a
daemon run finishing to its diagnostics reaching the editor.

A scratch repository with one task whose analyzer (a Python script
emitting SARIF) reports each line holding `TODO`. The daemon runs; a
client speaking LSP over `bgtask lsp`'s stdio (Content-Length framing, no
library in the measurement) opens the file. Each round appends a TODO
line (on disk, and to the editor's text with `didChange`), queues the
task (`bgtask submit`) and waits for `publishDiagnostics` with one more
diagnostic. The latency is from the daemon's `job_finished` event (its
`at_ms`, the daemon's clock when the run was recorded and published) to
the arrival of those diagnostics (this machine's clock). Target: p50
<= 100 ms.

Usage: bench/lsp.py [--bgtask target/release/bgtask] [--rounds 30]
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import tempfile
import threading
import time

ANALYZER = """import json, sys
lines = open("a.py").read().splitlines()
results = [{"ruleId": "TODO", "level": "warning", "message": {"text": "a TODO is left"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"},
                           "region": {"startLine": i + 1}}}]}
           for i, l in enumerate(lines) if "TODO" in l]
print(json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "todo"}}, "results": results}]}))
"""


class Lsp:
    """`bgtask lsp` with a reader thread: notifications into a queue, with
    their arrival time (ms since the epoch)."""

    def __init__(self, bgtask, repo, env):
        self.p = subprocess.Popen([bgtask, "lsp"], cwd=repo, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.p.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(out.read(length))
            self.q.put((time.time() * 1000, body))

    def send(self, msg):
        data = json.dumps(dict(msg, jsonrpc="2.0")).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.p.stdin.flush()

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        while True:
            at, msg = self.q.get(timeout=max(0.01, deadline - time.time()))
            if pred(msg):
                return at, msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default="target/release/bgtask")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    bgtask = os.path.abspath(args.bgtask)
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        os.makedirs(os.path.join(repo, "bin"))
        env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), BGTASK_DATA_DIR=os.path.join(tmp, "data"),
                   BGTASK_ALLOW_ROOT="1", NO_COLOR="1")
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
        with open(os.path.join(repo, "bin", "todo.py"), "w") as f:
            f.write(ANALYZER)
        text = "import os\n# TODO first\n"
        with open(os.path.join(repo, "a.py"), "w") as f:
            f.write(text)
        with open(os.path.join(repo, ".background-tasks.json"), "w") as f:
            json.dump({"tasks": {"todo": {"analyzers": ["todo"], "triggers": []}},
                       "analyzers": {"todo": {"command": "python3", "args": ["bin/todo.py"], "mode": "project",
                                              "parser": "sarif", "cache": False}}}, f)
        git = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)

        def run(*a):
            return subprocess.run([bgtask, *a], cwd=repo, env=env, check=True, capture_output=True, text=True)

        run("trust", "--yes")
        run("start")
        events = subprocess.Popen([bgtask, "events", "--json", "--task", "todo"], cwd=repo, env=env,
                                  stdout=subprocess.PIPE, text=True)
        finished = queue.Queue()

        def follow():
            for line in events.stdout:
                v = json.loads(line)
                if v.get("event") == "job_finished":
                    finished.put(v)

        threading.Thread(target=follow, daemon=True).start()
        lsp = Lsp(bgtask, repo, env)
        try:
            uri = "file://" + os.path.realpath(os.path.join(repo, "a.py"))
            lsp.send({"id": 1, "method": "initialize", "params": {
                "processId": os.getpid(), "rootUri": "file://" + os.path.realpath(repo), "capabilities": {},
                "initializationOptions": {"analyzeOnOpen": False}}})
            lsp.wait(lambda m: m.get("id") == 1)
            lsp.send({"method": "initialized", "params": {}})
            lsp.send({"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": uri, "languageId": "python", "version": 1, "text": text}}})
            run("submit", "todo")
            finished.get(timeout=60)
            published = lambda n: lambda m: (m.get("method") == "textDocument/publishDiagnostics"
                                             and len(m["params"]["diagnostics"]) == n)
            lsp.wait(published(1))
            latencies = []
            for i in range(args.rounds):
                text += f"# TODO {i}\n"
                with open(os.path.join(repo, "a.py"), "w") as f:
                    f.write(text)
                lsp.send({"method": "textDocument/didChange", "params": {
                    "textDocument": {"uri": uri, "version": i + 2}, "contentChanges": [{"text": text}]}})
                run("submit", "todo")
                done = finished.get(timeout=60)
                at, _ = lsp.wait(published(i + 2))
                latencies.append(at - done["at_ms"])
            latencies.sort()
            p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
            print(f"run finished -> diagnostics in the editor ({args.rounds} runs): "
                  f"p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms")
        finally:
            lsp.p.kill()
            events.kill()
            run("stop")


if __name__ == "__main__":
    main()
