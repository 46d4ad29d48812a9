#!/usr/bin/env python3
"""Benchmark: an event from the daemon to the browser's DOM (issue: the web
dashboard; target <= 50 ms median).

A real daemon and dashboard (release build) in a scratch git repository
whose store holds --runs runs (as bench/dashboard.py builds it), and the
project page open in a real headless Chromium (Debian's, driven by
Playwright: run this with the browser tests' venv). --samples times, one at
a time: `bgtask submit slow` (a job of 0.3 s); the daemon publishes
`job_queued` with its time (`at_ms`, read here from the event stream), and
a MutationObserver in the page notes when the job first shows in the
page's queue or running table (`performance.timeOrigin + performance.now()`,
the same wall clock). The delay is the difference: SSE delivery, the page's
redraw policy, its API requests (status through the daemon, queue,
history) and the DOM update. Median and p95.

Usage:
  target/test-cache/browser-venv/bin/python bench/dashboard_latency.py \\
      [--bgtask target/release/bgtask] [--runs 100000] [--samples 50]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dashboard import pct, scratch  # noqa: E402

# Notes, for each job id shown in the running or queue table, when it
# first appeared.
OBSERVE = """() => {
  window.__seen = {};
  const scan = () => {
    const t = performance.timeOrigin + performance.now();
    for (const table of document.querySelectorAll('#view table')) {
      const head = table.rows[0] ? table.rows[0].textContent : '';
      if (!/elapsed|priority/.test(head)) continue;
      for (const row of [...table.rows].slice(1)) {
        const job = row.cells[0].textContent.trim();
        if (!(job in window.__seen)) window.__seen[job] = t;
      }
    }
  };
  new MutationObserver(scan).observe(document.getElementById('view'), {childList: true, subtree: true});
}"""


def events(host, auth, pid, queued, finished):
    """Reads the event stream: each job's `job_queued` time, and its end."""
    c = http.client.HTTPConnection(host, timeout=600)
    c.request("GET", f"/api/v1/events?project={pid}", headers=auth)
    r = c.getresponse()
    event = None
    while True:
        line = r.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            d = json.loads(line[6:])
            if event == "job_queued":
                queued[d["job_id"]] = d["at_ms"]
            elif event == "job_finished":
                finished.add(d["job_id"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bgtask", default="target/release/bgtask")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--chromium", default=os.environ.get("BGTASK_CHROMIUM", "/usr/bin/chromium"))
    a = ap.parse_args()
    bgtask = os.path.abspath(a.bgtask)
    repo, env, run = scratch(bgtask, a.runs)
    run("start")
    dash = subprocess.Popen([bgtask, "dashboard", "--port", "0", "--no-open", "--json"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(dash.stdout.readline())
        url, host = info["url"], info["url"].removeprefix("http://")
        auth = {"Authorization": f"Bearer {info['token']}", "Host": host}
        c = http.client.HTTPConnection(host)
        c.request("GET", "/api/v1/projects", headers=auth)
        pid = json.loads(c.getresponse().read())["projects"][0]["id"]
        queued, finished = {}, set()
        threading.Thread(target=events, args=(host, auth, pid, queued, finished), daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{url}/?token={info['token']}#/p/{pid}")
            expect(page.get_by_role("heading", name="Run a task")).to_be_visible()
            expect(page.locator("#live")).to_have_text("live")
            page.evaluate(OBSERVE)
            jobs = []
            for _ in range(a.samples):
                out = json.loads(run("submit", "--json", "slow").stdout)
                job = out[0]["job_id"]
                jobs.append(job)
                deadline = time.monotonic() + 30
                while job not in finished and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.4)  # the page settles between samples
            seen = page.evaluate("() => window.__seen")
            browser.close()
    finally:
        dash.terminate()
        run("stop")
    delays = [seen[str(j)] - queued[j] for j in jobs if str(j) in seen and j in queued]
    missed = len(jobs) - len(delays)
    print(f"{len(delays)} jobs ({missed} not seen), {a.runs} runs in the store: job_queued → in the page's DOM "
          f"median {statistics.median(delays):.1f} ms, p95 {pct(delays, 95):.1f} ms, "
          f"min {min(delays):.1f} ms, max {max(delays):.1f} ms")


if __name__ == "__main__":
    main()
