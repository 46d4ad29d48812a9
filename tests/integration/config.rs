//! Config errors, validation, schema and `init`.

use crate::harness::Project;

#[test]
fn invalid_config_lists_every_problem_with_its_place_and_exits_78() {
    let p = Project::empty();
    p.config(
        r#"{
  "tasks": {
    "security": { "analyzers": ["bandit", "no-such-tool"], "priority": "urgent" },
    "nightly": { "analyzers": ["bandit"], "schedule": "61 * * * *", "timeout": "soon" }
  },
  "execution": { "max_concurrent_tasks": "two" },
  "analyzers": { "mine": { "command": "x", "parser": "regex", "files": ["[bad"] } }
}"#,
    );
    let run = p.bgtask(&["run", "all"]);
    run.code(78);
    let file = p.path().join(".background-tasks.json");
    let text = run.stderr.replace(&file.display().to_string(), "CONFIG");
    insta::assert_snapshot!(text);
    // The same through `config validate`, as JSON for editors.
    let v = p.bgtask(&["config", "validate", "--json"]);
    v.code(78);
    let doc: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["problems"].as_array().unwrap().len(), 7);
}

#[test]
fn syntax_errors_trailing_commas_and_duplicate_tasks() {
    let p = Project::empty();
    p.config("{\n  \"tasks\": {\n    \"a\": {\"analyzers\": [\"bandit\"]},\n  }\n}\n");
    let run = p.bgtask(&["config", "validate"]);
    run.code(78);
    assert!(
        run.stderr
            .contains(".background-tasks.json:3:35: invalid JSON: trailing commas are not allowed"),
        "{}",
        run.stderr
    );
    p.config(
        "{\"tasks\": {\"a\": {\"analyzers\": [\"bandit\"]}, \"a\": {\"analyzers\": [\"pylint\"]}}}",
    );
    let run = p.bgtask(&["config", "validate"]);
    run.code(78);
    assert!(
        run.stderr
            .contains(":1:44: /tasks/a: duplicate key `a` (first defined on line 1)"),
        "{}",
        run.stderr
    );
}

#[test]
fn local_overrides_merge_over_the_repo_config_and_problems_name_the_right_file() {
    let p = Project::empty();
    p.config(r#"{"tasks": {"lint": {"analyzers": ["pylint"], "fail_on": "high"}}}"#);
    p.file(
        ".background-tasks.local.json",
        r#"{"tasks": {"lint": {"fail_on": "low"}}}"#,
    );
    let ok = p.bgtask(&["config", "validate"]);
    ok.code(0);
    assert!(
        ok.stdout.contains(".background-tasks.json + "),
        "{}",
        ok.stdout
    );
    p.file(
        ".background-tasks.local.json",
        r#"{"tasks": {"lint": {"fail_on": "sometimes"}}}"#,
    );
    let bad = p.bgtask(&["config", "validate"]);
    bad.code(78);
    assert!(
        bad.stderr.contains(
            ".background-tasks.local.json:1:32: /tasks/lint/fail_on: unknown variant `sometimes`"
        ),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_literal_smtp_password_is_rejected() {
    let p = Project::empty();
    p.config(r#"{"notifications": {"email": {"enabled": false, "password": "hunter2"}}}"#);
    let run = p.bgtask(&["config", "validate"]);
    run.code(78);
    assert!(
        run.stderr
            .contains("/notifications/email/password: a literal `password` is not allowed"),
        "{}",
        run.stderr
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let p = Project::empty();
    let run = p.bgtask(&["config", "schema"]);
    run.code(0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/background-tasks.schema.json"
    ))
    .unwrap();
    assert_eq!(run.stdout, committed);
}

#[test]
fn init_writes_tasks_for_the_languages_found() {
    let p = Project::fixture("python-app");
    let run = p.bgtask(&["init"]);
    run.code(0);
    let cfg: serde_json::Value = serde_json::from_str(&p.read(".background-tasks.json")).unwrap();
    let tasks = cfg["tasks"].as_object().unwrap();
    let list = |t: &str| {
        tasks[t]["analyzers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("security"), ["bandit", "pip-audit"]);
    assert_eq!(list("code"), ["pylint"]);
    assert_eq!(list("complexity"), ["radon", "profile"]);
    assert_eq!(list("tests"), ["pytest"]);
    p.bgtask(&["config", "validate"]).code(0);
    let again = p.bgtask(&["init"]);
    again.code(64);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // -q: nothing but errors.
    let empty = Project::empty();
    let quiet = empty.bgtask(&["-q", "init"]);
    quiet.code(0);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    assert!(empty.path().join(".background-tasks.json").exists());
}
