//! A run as the dashboard shows it: which findings are new and which the
//! run fixed, by the rule its notification used (the latest earlier run
//! that looked at each file).

use serde_json::Value;

use crate::dashboard::{Dashboard, project_id};
use crate::harness::Project;

const TODO: &str = r#"{"daemon": {"max_rss_mb": 100000},
    "tasks": {"todo": {"analyzers": ["todo"]}},
    "analyzers": {"todo": {"command": "sh", "mode": "batch", "files": ["*.py"],
      "args": ["-c", "grep -Hn TODO \"$@\"", "todo", "{files}"],
      "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"},
      "exit_codes": {"ok": [0, 1]}, "cache": false}}}"#;

/// Runs `todo` by hand and waits for it: its run id.
fn run_todo(p: &Project) -> i64 {
    p.bgtask(&["submit", "todo"]).code(0);
    p.settle(30);
    let runs: Value = p.bgtask(&["history", "--json", "--limit", "1"]).json();
    runs[0]["run_id"].as_i64().unwrap()
}

#[test]
fn a_run_marks_its_new_findings_and_lists_what_it_fixed() {
    let p = Project::empty();
    p.config(TODO);
    p.file("a.py", "x = 1  # TODO: one\ny = 2  # TODO: two\n");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);

    let first = run_todo(&p);
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/{first}"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["marks"]["first_run"], true, "{v:#}");
    assert_eq!(v["marks"]["new"], serde_json::json!([0, 1]));

    p.file("a.py", "x = 1  # TODO: one\ny = 2\nz = 3  # TODO: three\n");
    let second = run_todo(&p);
    assert!(second > first);
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/{second}"));
    assert_eq!(code, 200, "{v}");
    let marks = &v["marks"];
    assert_eq!(marks["first_run"], false, "{v:#}");
    let new: Vec<&str> = marks["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            v["report"]["findings"][usize::try_from(i.as_u64().unwrap()).unwrap()]["message"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(new.len(), 1, "{marks:#}");
    assert!(new[0].contains("TODO: three"), "{new:?}");
    let fixed = marks["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1, "{marks:#}");
    assert!(
        fixed[0]["message"].as_str().unwrap().contains("TODO: two"),
        "{marks:#}"
    );
    assert_eq!(fixed[0]["path"], "a.py");
    p.stop();
}
