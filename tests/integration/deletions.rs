//! Deleted and renamed files are triggers like saves: the tasks that
//! looked at them run (a per-file analyzer spawns nothing for a file that
//! is gone), and their findings end — fixed in history and notifications —
//! instead of staying "current" forever.

use serde_json::Value;

use crate::harness::{Project, wait_for};

/// A task whose analyzer reports one finding per `.txt` file it is given,
/// started by commits, checkouts and (when `watch`) saves.
fn project(watch: bool) -> Project {
    let p = Project::empty();
    p.script("count-runs.sh");
    p.file(".gitignore", "runs.log\n");
    let file_watch = if watch {
        r#"{"enabled": true, "debounce": "100ms"}"#
    } else {
        r#"{"enabled": false}"#
    };
    p.config(&format!(
        r#"{{"daemon": {{"max_rss_mb": 100000}}, "execution": {{"max_retries": 0, "max_concurrent_tasks": 1}},
            "tasks": {{"scan": {{"analyzers": ["counter"], "triggers": ["commit", "checkout", "save"]}}}},
            "analyzers": {{"counter": {{"command": "./bin/count-runs.sh", "files": ["*.txt"],
              "args": ["{{root}}/runs.log", "{{files}}"], "parser": "regex",
              "regex": {{"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}},
              "exit_codes": {{"ok": [0]}}, "cache": false}}}},
            "triggers": {{"file_watch": {file_watch}}}}}"#
    ));
    p
}

fn history(p: &Project) -> Vec<Value> {
    p.bgtask(&["history", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits for the `n`th run to be recorded; returns the console line the
/// daemon printed for it (`scan: … fixed · bgtask show N`).
fn wait_run(p: &Project, n: usize) -> String {
    let id = wait_recorded(p, n);
    let show = format!("bgtask show {id}");
    let mut line = String::new();
    wait_for(
        20,
        &format!("the console line of run {id}:\n{}", p.daemon_log()),
        || {
            p.daemon_log()
                .lines()
                .rev()
                .find(|l| l.contains(&show))
                .unwrap_or_default()
                .clone_into(&mut line);
            !line.is_empty()
        },
    );
    line
}

/// Waits for the `n`th run to be recorded; its id.
fn wait_recorded(p: &Project, n: usize) -> i64 {
    wait_for(30, &format!("run {n}"), || {
        history(p).len() >= n && history(p)[0]["verdict"] != "running"
    });
    history(p)[0]["run_id"].as_i64().unwrap()
}

/// Paths with findings in the newest run's report.
fn finding_paths(p: &Project) -> Vec<String> {
    let id = history(p)[0]["run_id"].to_string();
    let report = p.bgtask(&["show", &id, "--format", "json"]).json();
    let mut paths: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    paths
}

fn spawns(p: &Project) -> usize {
    p.read("runs.log").lines().count()
}

#[test]
fn git_rm_and_git_mv_end_the_old_paths_findings() {
    let p = project(false);
    p.file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("c.txt", "c\n");
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("a.txt", "a2\n");
    p.commit_all("touch a");
    wait_run(&p, 1);
    assert_eq!(finding_paths(&p), ["a.txt"]);

    // `git rm`: the task runs, no analyzer is spawned for the gone file,
    // and b's finding (from the run that looked at it) ends.
    p.file("b.txt", "b2\n");
    p.commit_all("touch b");
    wait_run(&p, 2);
    let before = spawns(&p);
    p.git(&["rm", "-q", "b.txt"]);
    p.git(&["commit", "-q", "-m", "remove b"]);
    let line = wait_run(&p, 3);
    assert_eq!(spawns(&p), before, "nothing to spawn for a deleted file");
    assert!(line.contains("1 fixed"), "{line}");
    assert!(finding_paths(&p).is_empty());

    // `git mv`: the new path is analysed, nothing stays under the old
    // one, and the finding continues there (git's rename detection):
    // neither fixed nor new.
    p.git(&["mv", "a.txt", "renamed.txt"]);
    p.git(&["commit", "-q", "-m", "rename a"]);
    let id = wait_recorded(&p, 4);
    assert_eq!(finding_paths(&p), ["renamed.txt"]);
    // Nothing changed, so the console says nothing of the run (a run with
    // news gets its line within milliseconds, as the ones above).
    std::thread::sleep(std::time::Duration::from_secs(1));
    let log = p.daemon_log();
    assert!(!log.contains(&format!("bgtask show {id}")), "{log}");
    p.stop();
}

#[test]
fn a_checkout_of_a_branch_without_the_file_ends_its_findings() {
    let p = project(false);
    p.file("a.txt", "a\n");
    p.commit_all("setup");
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.file("extra.txt", "x\n");
    p.commit_all("extra");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("extra.txt", "x2\n");
    p.commit_all("touch extra");
    wait_run(&p, 1);
    assert_eq!(finding_paths(&p), ["extra.txt"]);
    p.git(&["checkout", "-q", "main"]);
    let line = wait_run(&p, 2);
    assert!(line.contains("1 fixed"), "{line}");
    assert!(finding_paths(&p).is_empty());
    p.stop();
}

#[test]
fn deleting_a_file_in_the_editor_ends_its_findings() {
    let p = project(true);
    p.file("a.txt", "a\n");
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.wait_watching();
    p.file("a.txt", "a2\n");
    wait_run(&p, 1);
    assert_eq!(finding_paths(&p), ["a.txt"]);
    std::fs::remove_file(p.path().join("a.txt")).unwrap();
    let line = wait_run(&p, 2);
    assert!(line.contains("1 fixed"), "{line}");
    p.stop();
}
