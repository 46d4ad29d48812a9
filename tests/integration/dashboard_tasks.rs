//! Tasks edited from the dashboard's API (what `bgtask task` does): each
//! edit lands in the personal `.background-tasks.local.json`, never in the
//! committed config; it is checked first (422 with every problem, nothing
//! written); the running daemon reloads it; the CLI sees the same.

use serde_json::Value;

use crate::dashboard::{Dashboard, project_id};
use crate::harness::{Project, wait_for};

const COMMITTED: &str = r#"{"tasks": {"lint": {"analyzers": ["todo"], "triggers": ["save"]}},
  "analyzers": {"todo": {"command": "true", "mode": "project", "parser": "exit-code"}}}"#;

fn task<'a>(tasks: &'a Value, key: &str) -> &'a Value {
    tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or(&Value::Null)
}

#[test]
fn tasks_are_edited_in_the_personal_file_checked_first_and_reloaded() {
    let p = Project::empty();
    p.config(COMMITTED);
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let base = format!("/api/v1/projects/{id}/tasks");

    let (code, v) = d.get(&base);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        task(&v, "lint")["defined_in"],
        serde_json::json!(["committed"])
    );
    assert_eq!(task(&v, "lint")["enabled"], true);

    let (code, v) = d.post(&format!("{base}/lint/disable"), "{}");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["task"]["enabled"], false, "{v}");
    assert_eq!(
        v["task"]["defined_in"],
        serde_json::json!(["committed", "personal"])
    );
    assert_eq!(
        p.read(".background-tasks.json"),
        COMMITTED,
        "the committed file is never rewritten"
    );
    let local: Value = serde_json::from_str(&p.read(".background-tasks.local.json")).unwrap();
    assert_eq!(
        local,
        serde_json::json!({"tasks": {"lint": {"enabled": false}}})
    );

    let extra = r#"{"task": {"analyzers": ["todo"], "triggers": ["commit"], "priority": "low"}}"#;
    let (code, v) = d.post(&format!("{base}/extra"), extra);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["task"]["priority"], "low", "{v}");
    wait_for(20, "the daemon to reload the personal file", || {
        let (_, project) = d.get(&format!("/api/v1/projects/{id}"));
        project["status"]["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "extra"))
    });

    // An edit that would break the config: every problem, nothing written.
    let before = p.read(".background-tasks.local.json");
    let broken = r#"{"task": {"analyzers": ["nope"], "triggers": ["save"]}}"#;
    let (code, v) = d.post(&format!("{base}/broken"), broken);
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"]["code"], "config_invalid", "{v}");
    let problem = v["error"]["problems"][0].as_str().unwrap();
    assert!(
        problem.contains(".background-tasks.local.json:")
            && problem.contains("/tasks/broken/analyzers/0"),
        "{problem}"
    );
    assert_eq!(p.read(".background-tasks.local.json"), before);

    refused(&d, &base);

    // The merged config says what the daemon runs by; the CLI agrees.
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/config"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["effective"]["."]["tasks"]["lint"]["enabled"], false,
        "{v}"
    );
    let listed = p.bgtask(&["task", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(task(&listed, "lint")["enabled"], false);
    assert_eq!(
        task(&listed, "extra")["defined_in"],
        serde_json::json!(["personal"])
    );

    let (code, v) = d.post(&format!("{base}/extra/delete"), "{}");
    assert_eq!(code, 200, "{v}");
    assert!(v["task"].is_null(), "{v}");
    let listed: Value =
        serde_json::from_str(&p.bgtask(&["task", "list", "--json"]).stdout).unwrap();
    assert!(task(&listed, "extra").is_null());
}

/// What the API refuses: deleting a committed task (409), an unknown task
/// (404), an unknown field (400 naming it).
fn refused(d: &Dashboard, base: &str) {
    let (code, v) = d.post(&format!("{base}/lint/delete"), "{}");
    assert_eq!(code, 409, "a committed task can only be disabled: {v}");
    let (code, v) = d.post(&format!("{base}/nope/enable"), "{}");
    assert_eq!(code, 404, "{v}");
    let (code, v) = d.post(&format!("{base}/extra"), r#"{"task": {}, "bogus": 1}"#);
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("bogus"),
        "{v}"
    );
}

#[test]
fn the_cli_edits_tasks_and_names_what_it_refuses() {
    let p = Project::empty();
    p.config(COMMITTED);
    let r = p.bgtask(&[
        "task",
        "set",
        "mine",
        r#"{"analyzers": ["todo"], "triggers": ["save"]}"#,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(p.read(".background-tasks.local.json").contains("\"mine\""));
    let r = p.bgtask(&["task", "set", "mine", "{\"analyzers\": "]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("line 1, column"), "{}", r.stderr);
    let r = p.bgtask(&[
        "task",
        "set",
        "bad",
        r#"{"analyzers": ["nope"], "triggers": ["save"]}"#,
    ]);
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(r.stderr.contains("unknown analyzer `nope`"), "{}", r.stderr);
    let r = p.bgtask(&["task", "delete", "lint"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("disable it"), "{}", r.stderr);
    let r = p.bgtask(&["task", "disable", "lint"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = p.bgtask(&["task", "list"]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("lint") && l.contains(" off ")),
        "{}",
        r.stdout
    );
    assert_eq!(p.read(".background-tasks.json"), COMMITTED);
}

/// Trusting from the dashboard names what the person saw: a stale or
/// missing confirmation trusts nothing.
#[test]
fn trust_from_the_dashboard_needs_the_confirmation_of_what_was_shown() {
    let p = Project::empty();
    p.config(COMMITTED);
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let trust = format!("/api/v1/projects/{id}/trust");
    let (code, shown) = d.get(&trust);
    assert_eq!(code, 200, "{shown}");
    assert_eq!(shown["tasks"]["lint"]["state"], "untrusted", "{shown}");
    let (code, v) = d.post(&trust, "{}");
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.post(&trust, r#"{"confirm": "0000"}"#);
    assert_eq!(code, 409, "{v}");
    // What a task runs changes after the page showed it: nothing trusted.
    p.config(&COMMITTED.replace(r#""command": "true""#, r#""command": "false""#));
    let stale = serde_json::json!({"confirm": shown["confirm"]}).to_string();
    let (code, v) = d.post(&trust, &stale);
    assert_eq!(code, 409, "{v}");
    let status: Value = p.bgtask(&["trust", "--status", "--json"]).json();
    assert_eq!(status["lint"]["state"], "untrusted", "{status}");

    let (_, shown) = d.get(&trust);
    let fresh = serde_json::json!({"confirm": shown["confirm"]}).to_string();
    let (code, v) = d.post(&trust, &fresh);
    assert_eq!(code, 200, "{v}");
    let status: Value = p.bgtask(&["trust", "--status", "--json"]).json();
    assert_eq!(status["lint"]["state"], "trusted", "{status}");
    wait_for(20, "the daemon to see the trust", || {
        let (_, project) = d.get(&format!("/api/v1/projects/{id}"));
        project["status"]["untrusted"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
}
