#!/usr/bin/env python3
"""Benchmark of the team cache (`cache.remote`) on a real S3 server (moto,
from scripts/test.sh's stores-venv).

  warm     a CI run (CI=true) fills the store; then, in a fresh clone with
           an empty local cache, `bgtask run NAMES` (every result from the
           team cache) against a cold run (no cache at all). Target: warm
           <= 0.15x cold.
  edited   the fresh clone with one file edited: per-file analyzers take
           the other files' results from the team cache.
  slow     a store answering each request 200 ms late (a delaying proxy in
           front of moto), nothing in it: the run against the same run
           with no remote cache. Target: at most 0.3 s slower.
  dead     a store that refuses connections, and one that accepts and
           never answers. Target: at most 1 s slower.

Usage: bench/team_cache.py [--bgtask target/release/bgtask]
         [--project tests/fixtures/projects/python-app] [--names bandit radon]
         [--rounds 5]
       (BGTASK_CACHE_DIR: a tool cache with the analyzers, as
       target/test-cache after scripts/test.sh; BGTASK_TEST_CACHE: where
       stores-venv is, target/test-cache by default)
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as e:  # noqa: BLE001 - any answer, even an error status, means it is up
            if hasattr(e, "code"):
                return
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def delaying_proxy(target_port, delay):
    """Forwards 127.0.0.1:PORT to target_port, holding each chunk the
    client sends for `delay` seconds (each request answered that late)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def pipe(src, dst, hold):
        try:
            while data := src.recv(65536):
                if hold:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            client, _ = srv.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, False), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def silent_server():
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held = []

    def serve():
        while True:
            held.append(srv.accept()[0])

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default=os.path.join(HERE, "..", "target", "release", "bgtask"))
    ap.add_argument("--project", default=os.path.join(HERE, "..", "tests", "fixtures", "projects", "python-app"))
    ap.add_argument("--names", nargs="+", default=["bandit", "radon"])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    venv = os.path.join(os.environ.get("BGTASK_TEST_CACHE", os.path.join(HERE, "..", "target", "test-cache")),
                        "stores-venv", "bin")
    tmp = tempfile.mkdtemp(prefix="bgtask-team-bench.")
    port = free_port()
    moto = subprocess.Popen([os.path.join(venv, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=5)
        base_env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"),
                        BGTASK_DATA_DIR=os.path.join(tmp, "data"), BGTASK_ALLOW_ROOT="1", NO_COLOR="1",
                        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                        AWS_ALLOW_HTTP="true", BGTASK_CACHE_SECRET=SECRET)
        base_env.pop("CI", None)
        os.makedirs(base_env["XDG_RUNTIME_DIR"], mode=0o700)

        def clone(name, url):
            repo = os.path.join(tmp, name)
            shutil.copytree(a.project, repo, ignore=shutil.ignore_patterns(".bgtask", ".git"))
            cfg = {"cache": {"remote": {"url": url, "write": "ci"}}} if url else {}
            with open(os.path.join(repo, ".background-tasks.json"), "w") as f:
                json.dump(cfg, f)
            g = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
            subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
            subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
            subprocess.run([*g, "commit", "-qm", "init"], cwd=repo, check=True)
            return repo

        def timed(repo, endpoint, extra_env=None):
            shutil.rmtree(os.path.join(repo, ".bgtask"), ignore_errors=True)
            env = dict(base_env, AWS_ENDPOINT_URL=endpoint, **(extra_env or {}))
            t0 = time.perf_counter()
            out = subprocess.run([bgtask, "-q", "run", *a.names, "--format", "json"], cwd=repo, env=env,
                                 capture_output=True, text=True)
            took = time.perf_counter() - t0
            report = json.loads(out.stdout)
            return took, report

        moto_url = f"http://127.0.0.1:{port}"
        # warm
        ci = clone("ci", "s3://bench/warm")
        _, filled = timed(ci, moto_url, {"CI": "true"})
        plain = clone("plain", None)
        fresh = clone("fresh", "s3://bench/warm")
        cold = [timed(plain, moto_url)[0] for _ in range(a.rounds)]
        warm = []
        for _ in range(a.rounds):
            took, r = timed(fresh, moto_url)
            assert all(x["cached"] for x in r["runs"] if x["status"] in ("clean", "findings")), r["runs"]
            warm.append(took)
        c, w = statistics.median(cold), statistics.median(warm)
        hits = r["team_cache"]["hits"]
        print(f"{os.path.basename(a.project)} ({' '.join(a.names)}): cold {c * 1000:.0f} ms, fresh clone with a warm "
              f"team cache {w * 1000:.0f} ms = {w / c:.2f}x ({hits} entries from the team cache, "
              f"{len(filled['findings'])} findings)")
        # one file edited in the fresh clone: the others' results per file
        edited = sorted(os.path.relpath(os.path.join(d, f), fresh) for d, _, fs in os.walk(fresh) for f in fs
                        if f.endswith(".py") and ".git" not in d)[0]
        with open(os.path.join(fresh, edited), "a") as f:
            f.write("# edited\n")
        one = []
        for _ in range(a.rounds):
            took, r = timed(fresh, moto_url)
            one.append(took)
        o = statistics.median(one)
        kept = sum(x.get("cached_files", 0) for x in r["runs"])
        print(f"fresh clone, one file edited: {o * 1000:.0f} ms = {o / c:.2f}x ({kept} file results from the team "
              f"cache, {sum(x['invocations'] for x in r['runs'])} processes)")
        # slow: empty prefix, every lookup a miss 200 ms late
        slow_port = delaying_proxy(port, 0.2)
        slow = clone("slow", "s3://bench/empty")
        s = statistics.median(timed(slow, f"http://127.0.0.1:{slow_port}")[0] for _ in range(a.rounds))
        print(f"store answering 200 ms late (all misses): {s * 1000:.0f} ms vs {c * 1000:.0f} ms without a remote "
              f"cache = +{(s - c) * 1000:.0f} ms")
        # dead: refused, and silent
        dead = clone("dead", "s3://bench/dead")
        refused = statistics.median(timed(dead, f"http://127.0.0.1:{free_port()}")[0] for _ in range(a.rounds))
        silent = statistics.median(timed(dead, f"http://127.0.0.1:{silent_server()}")[0] for _ in range(a.rounds))
        print(f"dead store: refusing +{(refused - c) * 1000:.0f} ms, accepting and never answering "
              f"+{(silent - c) * 1000:.0f} ms (vs {c * 1000:.0f} ms)")
    finally:
        moto.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
