//! The result cache: nothing changed → no analyzer process.

use crate::harness::{Project, run_of};

fn project() -> Project {
    let p = Project::empty();
    p.script("count-runs.sh").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
            "exit_codes": {"ok": [0]}, "config_files": ["counter.cfg"]}}}"#,
    );
    p.file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("counter.cfg", "v1\n");
    p
}

fn runs(p: &Project) -> usize {
    p.read("runs.log").lines().count()
}

#[test]
fn second_run_spawns_nothing_and_reports_the_same_findings_as_cached() {
    let p = project();
    let first = p
        .bgtask(&["run", "counter", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(runs(&p), 1);
    let second = p
        .bgtask(&["run", "counter", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(runs(&p), 1, "the analyzer ran again");
    assert_eq!(run_of(&second, "counter")["cached"], true);
    assert_eq!(run_of(&second, "counter")["invocations"], 0);
    assert_eq!(first["findings"], second["findings"]);
    let console = p.bgtask(&["run", "counter"]);
    assert!(console.stdout.contains("cached"), "{}", console.stdout);
}

#[test]
fn content_config_and_no_cache_invalidate() {
    let p = project();
    p.bgtask(&["run", "counter"]).code(0);
    p.file("a.txt", "changed\n");
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(runs(&p), 2, "content change");
    p.file("counter.cfg", "v2\n");
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(runs(&p), 3, "tool config change");
    p.bgtask(&["run", "counter", "--no-cache"]).code(0);
    assert_eq!(runs(&p), 4, "--no-cache");
    // The definition itself is part of the key.
    let cfg = p
        .read(".background-tasks.json")
        .replace("\"exit_codes\"", "\"description\": \"x\", \"exit_codes\"");
    p.config(&cfg);
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(runs(&p), 5, "definition change");
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(runs(&p), 5);
}

#[test]
fn state_lives_in_a_gitignored_dot_bgtask() {
    let p = project();
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(p.read(".bgtask/.gitignore"), "*\n");
    let status = p.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains(".bgtask"), "{status}");
}
