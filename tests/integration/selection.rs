//! `--changed`, `--staged`, `--since`, `--files`.

use crate::harness::{Project, run_of};

fn analysed(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["path"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn project() -> Project {
    let p = Project::empty();
    p.script("count-runs.sh").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}, "exit_codes": {"ok": [0]}, "cache": false}}}"#,
    );
    p.file(".gitignore", "runs.log\n")
        .file("a.txt", "a\n")
        .file("b.txt", "b\n")
        .file("c d.txt", "c\n");
    p.commit_all("base");
    p
}

#[test]
fn changed_staged_since_and_files() {
    let p = project();
    let r = p
        .bgtask(&["run", "counter", "--changed", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(run_of(&r, "counter")["status"], "not_applicable");

    p.file("a.txt", "changed\n").file("new é.txt", "n\n");
    let r = p
        .bgtask(&["run", "counter", "--changed", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(analysed(&r), ["a.txt", "new é.txt"]);
    assert_eq!(r["scope"], "changed files (2)");

    p.git(&["add", "a.txt"]);
    let r = p
        .bgtask(&["run", "counter", "--staged", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(analysed(&r), ["a.txt"]);

    p.git(&["checkout", "-q", "-b", "feature"]);
    p.commit_all("feature work");
    p.file("c d.txt", "edited\n");
    let r = p
        .bgtask(&["run", "counter", "--since", "main", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(analysed(&r), ["a.txt", "c d.txt", "new é.txt"]);

    let r = p
        .bgtask(&[
            "run",
            "counter",
            "--files",
            "b.txt",
            "missing.txt",
            "--format",
            "json",
        ])
        .code(0)
        .json();
    assert_eq!(analysed(&r), ["b.txt"]);
}

#[test]
fn changed_outside_git_is_a_usage_error() {
    let p = Project::empty();
    std::fs::remove_dir_all(p.path().join(".git")).unwrap();
    let run = p.bgtask(&["run", "all", "--changed"]);
    run.code(64);
    assert!(
        run.stderr.contains("--changed needs a git repository"),
        "{}",
        run.stderr
    );
}
