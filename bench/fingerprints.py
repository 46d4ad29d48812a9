#!/usr/bin/env python3
"""Fingerprints on a real project's history (issue 14, item 1).

Replays consecutive commits of a Python project that touched Python files,
runs `bgtask run bandit --format json` at each, and for every pair of
consecutive commits follows each finding whose own line the commit did not
touch (`git diff -U0` maps its line number across the commit). Of those
that bandit still reports at the mapped line, it counts how many keep:

  fingerprint (strict)  the finding at the mapped line has the same
                        `fingerprint` (hash:occurrence)
  fingerprint (set)     the fingerprint is among the new commit's
                        (what set membership sees)
  path+line+rule        a finding with the same path, line and rule
                        (identity by position, for comparison)

  tiered matching       paired with the finding at the mapped line by a
                        mirror of `analyze/identity.rs`'s `compare`

Findings in files the commit renamed are counted apart: their fingerprint
holds the path by design, and matching follows renames through
`git diff -M` instead (tiered matching is given git's renames). Target:
100 % for the fingerprint.

Usage:
  bench/fingerprints.py --repo /path/to/a/clone/or/mirror [--commits 50]
                        [--until REV] [--bgtask target/debug/bgtask] [--cache DIR]
                        [--json bench-results/fingerprints.json]

The repository is cloned into a temporary directory (the source is never
touched). bandit must be in the tool cache (scripts/test.sh fills
target/test-cache).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def commits(repo: Path, n: int, until: str) -> list[str]:
    """The n + 1 first-parent commits up to `until` that touched Python
    files, oldest first."""
    out = git(repo, "rev-list", "--first-parent", f"-n{n + 1}", until, "--", "*.py")
    return list(reversed(out.split()))


def diff_map(repo: Path, a: str, b: str) -> tuple[dict, dict, set]:
    """Hunks per old path, renames old → new, deleted paths (Python files)."""
    out = git(repo, "diff", "-M", "-U0", "--no-color", "--no-ext-diff", a, b, "--", "*.py")
    hunks: dict[str, list[tuple[int, int, int, int]]] = {}
    renames: dict[str, str] = {}
    deleted: set[str] = set()
    old = new = None
    for line in out.splitlines():
        if line.startswith("diff --git "):
            old = new = None
        elif line.startswith("rename from "):
            old = line[len("rename from "):]
        elif line.startswith("rename to "):
            new = line[len("rename to "):]
            renames[old] = new
        elif line.startswith("--- "):
            old = None if line == "--- /dev/null" else line[len("--- a/"):]
        elif line.startswith("+++ "):
            if line == "+++ /dev/null" and old:
                deleted.add(old)
        elif (m := HUNK.match(line)) and old:
            s, c, t, d = m.group(1), m.group(2), m.group(3), m.group(4)
            hunks.setdefault(old, []).append(
                (int(s), 1 if c is None else int(c), int(t), 1 if d is None else int(d))
            )
    return hunks, renames, deleted


def map_line(hunks: list[tuple[int, int, int, int]], line: int) -> int | None:
    """The line's number after the commit; None when the commit touched it."""
    delta = 0
    for s, c, _t, d in hunks:
        if c == 0:
            # Lines inserted after old line s.
            if line <= s:
                break
            delta += d
        else:
            if line < s:
                break
            if line < s + c:
                return None
            delta += d - c
    return line + delta


def findings_at(repo: Path, commit: str, bgtask: str, env: dict) -> list[dict]:
    git(repo, "checkout", "-q", "-f", commit)
    git(repo, "clean", "-q", "-fdx", "-e", ".bgtask")
    run = subprocess.run(
        [bgtask, "run", "bandit", "--format", "json", "--offline"],
        cwd=repo, capture_output=True, text=True, env=env,
    )
    if run.returncode not in (0, 1):
        sys.exit(f"bgtask failed at {commit} ({run.returncode}): {run.stderr[-2000:]}")
    report = json.loads(run.stdout)
    status = [r["status"] for r in report["runs"] if r["analyzer"] == "bandit"]
    if status and status[0] not in ("clean", "findings", "partial"):
        sys.exit(f"bandit at {commit}: {status[0]}: {report['runs']}")
    return [
        f for f in report["findings"]
        if f.get("location", {}).get("line") and f["location"]["path"].endswith(".py")
    ]


def tiered(before: list[dict], after: list[dict], renames: dict) -> dict[int, int]:
    """A mirror of `analyze/identity.rs`'s `compare` over the reports'
    identities (stable id; line + context + scope; line + scope; line;
    message + scope for findings without a line; the fingerprint): for each
    finding of `before` (an index) the one of `after` it pairs with."""
    def key(f: dict, tier: str, path: str):
        i = f.get("identity") or {}
        if tier == "fingerprint":
            return ("fp", f["fingerprint"])
        if tier == "stable":
            ev = i.get("stable")
        elif i.get("stable"):
            return None
        elif tier == "exact":
            ev = i.get("line") and (i["line"], i.get("context"), i.get("scope"))
        elif tier == "line_scope":
            ev = i.get("line") and (i["line"], i.get("scope"))
        elif tier == "line":
            ev = i.get("line")
        else:
            ev = None if i.get("line") else (i.get("message"), i.get("scope"))
        return ev and (f["analyzer"], f["rule"], path, ev)

    order = lambda fs: sorted(range(len(fs)), key=lambda k: (fs[k]["location"]["line"], k))  # noqa: E731
    paired: dict[int, int] = {}
    taken: set[int] = set()
    for tier in ("stable", "exact", "line_scope", "line", "message", "fingerprint"):
        open_: dict = {}
        for i in order(before):
            if i not in paired:
                p = before[i]["location"]["path"]
                if (k := key(before[i], tier, renames.get(p, p))) is not None:
                    open_.setdefault(k, []).append(i)
        for j in order(after):
            if j in taken:
                continue
            k = key(after[j], tier, after[j]["location"]["path"])
            if k in open_ and open_[k]:
                paired[open_[k].pop(0)] = j
                taken.add(j)
    return paired


def compare(before: list[dict], after: list[dict], diff: tuple) -> dict:
    hunks, renames, deleted = diff
    by_place: dict[tuple, list[dict]] = {}
    for f in after:
        loc = f["location"]
        by_place.setdefault((loc["path"], loc["line"], f["rule"]), []).append(f)
    fingerprints = {f["fingerprint"] for f in after}
    c = dict(eligible=0, moved=0, strict=0, strict_moved=0, set=0, position=0,
             position_moved=0, tiered=0, touched=0, gone=0, renamed=0,
             renamed_tiered=0, unreported=0)
    pairs = tiered(before, after, renames)
    for n, f in enumerate(before):
        path, line, rule = f["location"]["path"], f["location"]["line"], f["rule"]
        if path in deleted:
            c["gone"] += 1
            continue
        new_path = renames.get(path, path)
        new_line = map_line(hunks.get(path, []), line)
        if new_line is None:
            c["touched"] += 1
            continue
        there = by_place.get((new_path, new_line, rule), [])
        if not there:
            # bandit no longer reports it though its line is as it was.
            c["unreported"] += 1
            continue
        # Paired by the tiers with the finding at its mapped place.
        followed = n in pairs and any(g is after[pairs[n]] for g in there)
        if new_path != path:
            c["renamed"] += 1
            c["renamed_tiered"] += followed
            continue
        moved = new_line != line
        c["eligible"] += 1
        c["moved"] += moved
        c["tiered"] += followed
        if any(g["fingerprint"] == f["fingerprint"] for g in there):
            c["strict"] += 1
            c["strict_moved"] += moved
        c["set"] += f["fingerprint"] in fingerprints
        if (path, line, rule) in by_place:
            c["position"] += 1
            c["position_moved"] += moved
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="a git repository (a bare mirror will do)")
    ap.add_argument("--commits", type=int, default=50)
    ap.add_argument("--until", default="HEAD", help="the last commit replayed")
    ap.add_argument("--bgtask", default=str(ROOT / "target" / "debug" / "bgtask"))
    ap.add_argument("--cache", default=os.environ.get("BGTASK_TEST_CACHE", str(ROOT / "target" / "test-cache")))
    ap.add_argument("--json", help="write the totals here")
    args = ap.parse_args()
    args.bgtask = str(Path(args.bgtask).resolve())
    env = dict(os.environ, BGTASK_CACHE_DIR=args.cache, NO_COLOR="1")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", args.repo, str(repo)], check=True)
        ids = commits(repo, args.commits, args.until)
        print(f"{len(ids) - 1} commit pairs, {ids[0][:10]}..{ids[-1][:10]}", file=sys.stderr)
        started = time.monotonic()
        total: dict[str, int] = {}
        previous = findings_at(repo, ids[0], args.bgtask, env)
        for a, b in zip(ids, ids[1:]):
            current = findings_at(repo, b, args.bgtask, env)
            c = compare(previous, current, diff_map(repo, a, b))
            for k, v in c.items():
                total[k] = total.get(k, 0) + v
            previous = current
        findings = len(previous)
    elapsed = time.monotonic() - started
    pct = lambda n, d: f"{100 * n / d:.2f} % ({n}/{d})" if d else "—"  # noqa: E731
    e, m = total["eligible"], total["moved"]
    print(f"findings at the last commit: {findings}; {elapsed:.0f} s")
    print(f"followed across a commit that did not touch their line: {e} ({m} of them moved)")
    print(f"  fingerprint (strict):  {pct(total['strict'], e)}   moved: {pct(total['strict_moved'], m)}")
    print(f"  fingerprint (set):     {pct(total['set'], e)}")
    print(f"  path+line+rule:        {pct(total['position'], e)}   moved: {pct(total['position_moved'], m)}")
    print(f"  tiered matching:       {pct(total['tiered'], e)}")
    print(f"in renamed files: {total['renamed']}, followed by tiered matching with git's renames: "
          f"{pct(total['renamed_tiered'], total['renamed'])}")
    print(f"not followed: line touched {total['touched']}, file deleted {total['gone']}, "
          f"no longer reported {total['unreported']}")
    if args.json:
        out = dict(total, findings=findings, pairs=len(ids) - 1, first=ids[0], last=ids[-1])
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
