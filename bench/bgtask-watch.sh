#!/bin/sh
# bench/bgtask-watch.sh ROOT ACTION [DEBOUNCE]
# The bgtask candidate for the shared watcher harness (save_latency.py,
# tree_footprint.py, storm.py): makes ACTION the one analyzer of a task
# triggered by saves and checkouts in ROOT, trusts ROOT, and runs the daemon
# in the foreground (the harness stops it with SIGTERM). The config is kept
# out of git (.git/info/exclude) so checkouts do not see it.
set -eu
root=$1
action=$2
debounce=${3:-50ms}
bin=${BGTASK_BIN:-bgtask}
cd "$root"
printf '{"tasks": {"bench": {"analyzers": ["action"], "triggers": ["save", "checkout", "commit"]}},
 "analyzers": {"action": {"command": "%s", "mode": "project", "files": ["*"], "parser": "exit-code", "cache": false}},
 "triggers": {"file_watch": {"debounce": "%s"}, "git_hooks": {"autostart": false}},
 "resource_limits": {"nice": 0},
 "daemon": {"health_interval": null, "cleanup_interval": null}}\n' "$action" "$debounce" > .background-tasks.json
if [ -d .git ]; then
  mkdir -p .git/info
  grep -qx '.background-tasks.json' .git/info/exclude 2>/dev/null || echo '.background-tasks.json' >> .git/info/exclude
  grep -qx '.bgtask/' .git/info/exclude 2>/dev/null || echo '.bgtask/' >> .git/info/exclude
fi
"$bin" trust --yes >/dev/null
exec "$bin" start --foreground --allow-root
