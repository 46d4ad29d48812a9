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

/// An analyzer whose files are independent (`cache_per_file`) re-runs only
/// the changed file, and a one-file run meets a whole run's entries.
#[test]
fn per_file_entries_rerun_only_the_changed_file() {
    let p = project();
    let cfg = p.read(".background-tasks.json").replace(
        "\"config_files\"",
        "\"cache_per_file\": true, \"config_files\"",
    );
    p.config(&cfg);
    let first = p
        .bgtask(&["run", "counter", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(p.read("runs.log.args").lines().last(), Some("a.txt b.txt"));
    p.file("a.txt", "changed\n");
    let second = p
        .bgtask(&["run", "counter", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(p.read("runs.log.args").lines().last(), Some("a.txt"));
    let counter = run_of(&second, "counter");
    assert_eq!(
        (
            &counter["cached"],
            &counter["cached_files"],
            &counter["files"]
        ),
        (&false.into(), &1.into(), &2.into()),
        "{counter:#}"
    );
    let said = |report: &serde_json::Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {}", f["location"]["path"], f["message"]))
            .collect()
    };
    assert_eq!(said(&first), said(&second), "b.txt's kept");
    assert_eq!(first["findings"][1], second["findings"][1], "as it was");
    let console = p.bgtask(&["run", "counter", "--files", "b.txt", "--no-cache"]);
    assert_eq!(runs(&p), 3, "{}", console.stdout);
    // A run over one file (a save) finds that file's entry.
    let one = p
        .bgtask(&["run", "counter", "--files", "a.txt", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(runs(&p), 3, "{one:#}");
    assert_eq!(run_of(&one, "counter")["cached"], true);
    assert_eq!(one["findings"].as_array().map(Vec::len), Some(1));
    // The tool's config file is in every file's key.
    p.file("counter.cfg", "v2\n");
    p.bgtask(&["run", "counter"]).code(0);
    assert_eq!(p.read("runs.log.args").lines().last(), Some("a.txt b.txt"));
    // A definition without the flag keeps whole-run entries only.
    let plain = project();
    plain.bgtask(&["run", "counter"]).code(0);
    plain.file("a.txt", "changed\n");
    plain.bgtask(&["run", "counter"]).code(0);
    assert_eq!(
        plain.read("runs.log.args").lines().last(),
        Some("a.txt b.txt")
    );
}

#[test]
fn cache_per_file_on_a_project_analyzer_is_a_config_error() {
    let p = Project::empty();
    p.config(
        r#"{"analyzers": {"suite": {"command": "true", "mode": "project", "cache_per_file": true,
            "parser": "regex", "regex": {"pattern": "(?P<message>.*)"}}}}"#,
    );
    let out = p.bgtask(&["run", "suite"]);
    out.code(78);
    assert!(
        out.stderr.contains("cache_per_file") && out.stderr.contains("batch"),
        "{}",
        out.stderr
    );
}
