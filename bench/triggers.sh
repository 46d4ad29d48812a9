#!/usr/bin/env bash
# bench/triggers.sh [hooks|save|tree|storm|all]
# bgtask's triggers measured side by side with the anchors, in one run each,
# with the shared harness (../shared/bench, or $BENCH_DIR):
#   hooks  git commit cost with bgtask's hooks vs none, a plain shell hook,
#          lefthook, prek, pre-commit, husky (hyperfine; also `2>&1 | cat`)
#   save   save -> analyzer start beside inotifywait, watchexec, watchman, entr
#   tree   the watcher on the 100 000-file tree: ready, idle RSS/CPU, watches,
#          and a low watch limit, beside watchexec, watchman and pruned inotifywait
#   storm  a git checkout of 10 000 files: runs per checkout, time to quiet
# Results go to bench-results/ (the harness's); the tables are printed.
# Needs a release build (cargo build --release) and the anchors the harness
# README lists (hyperfine, watchman, entr, inotify-tools, watchexec, lefthook,
# husky, pre-commit, prek).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
export BGTASK_BIN=${BGTASK_BIN:-$repo/target/release/bgtask}
[ -x "$BGTASK_BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
export PATH="$(dirname "$BGTASK_BIN"):$PATH"
export BGTASK_ALLOW_ROOT=1
rt=$(mktemp -d /tmp/bgtask-bench-rt.XXXXXX)
chmod 700 "$rt"
export XDG_RUNTIME_DIR=$rt BGTASK_DATA_DIR=$rt/data
trap 'rm -rf "$rt"' EXIT
watch="$repo/bench/bgtask-watch.sh"
what=${1:-all}
tag=${TAG:-bgtask}

if [[ $what == hooks || $what == all ]]; then
  BGTASK_HOOK_SETUP="bgtask install-hooks >/dev/null && bgtask start >/dev/null" \
  BGTASK_HOOK_TEARDOWN="bgtask stop" \
  BGTASK_HOOK_VERIFY='bgtask status --json | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)[\"arrivals\"] >= 1 else 1)"' \
  RUNS=${RUNS:-30} ROUNDS=${ROUNDS:-3} ONLY=${ONLY_HOOKS:-none,shell,bg-detached,lefthook-bin,prek,pre-commit,husky} \
  TAG=$tag "$bench/hook_overhead.sh"
fi
if [[ $what == save || $what == all ]]; then
  "$bench/save_latency.py" --tag "$tag" --only inotifywait-loop,watchexec-50ms,watchman-trigger,entr \
    --candidate bgtask --debounce-ms 50 --cmd "$watch {root} {action} 50ms"
fi
if [[ $what == tree || $what == all ]]; then
  "$bench/tree_footprint.py" --tag "$tag" --only watchexec,watchman,inotifywait-pruned \
    --candidate bgtask --measure-comm bgtask \
    --ready-regex 'watcher ready' --cmd "$watch {root} {action} 50ms"
fi
if [[ $what == storm || $what == all ]]; then
  "$bench/storm.py" --tag "$tag" --only none,watchexec,watchman-trigger \
    --candidate bgtask --measure-comm bgtask --cmd "$watch {root} {action} 100ms"
fi
