//! Automation paused by hand (`bgtask pause`, `bgtask resume`, the
//! dashboard's `pause` and `resume`) against a real daemon with its file
//! watcher: saves are queued but held while work asked for runs, the held
//! job runs on resume, the pause outlives a restart, and the event stream
//! tells of both.

use serde_json::Value;

use crate::dashboard::{Dashboard, project_id};
use crate::events::Stream;
use crate::harness::{Project, wait_for};

const WATCH: &str =
    r#""triggers": {"file_watch": {"debounce": "200ms"}, "git_hooks": {"autostart": false}}"#;

/// A trusted project: `lint` runs on saves, `manual` only when asked.
fn watched() -> Project {
    let p = Project::triggered(&[("lint", r#"["save"]"#), ("manual", "[]")], WATCH);
    p.file("a.py", "a = 1\n");
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p
}

/// Waits until the daemon holds `n` jobs for the pause, with nothing in
/// its intake or being resolved: every trigger so far was routed.
#[track_caller]
fn wait_held(p: &Project, n: u64) -> Value {
    let mut last = Value::Null;
    wait_for(30, &format!("{n} held job(s)"), || {
        last = p.status();
        last["automation"]["held"] == n && last["intake"] == 0 && last["resolving"] == false
    });
    last
}

#[test]
fn a_paused_daemon_holds_saves_runs_what_is_asked_and_resumes() {
    let p = watched();
    p.start();
    p.wait_watching();
    let mut events = Stream::open(&p, &["--after", "0"]);
    let paused = p.bgtask(&[
        "pause",
        "--reason",
        "big refactor",
        "--by",
        "tester",
        "--json",
    ]);
    let v = paused.code(0).json();
    assert_eq!(
        (&v["paused"], &v["reason"], &v["by"], &v["held"]),
        (
            &Value::Bool(true),
            &Value::from("big refactor"),
            &Value::from("tester"),
            &Value::from(0)
        ),
        "{v:#}"
    );
    let told = events.until("the pause", |e| e["event"] == "automation_paused");
    assert_eq!(told["reason"], "big refactor");
    p.file("a.py", "a = 2\n");
    wait_held(&p, 1);
    let queue = p.bgtask(&["queue", "--json"]).json();
    assert_eq!(queue[0]["task"], "lint", "{queue:#}");
    assert_eq!(queue[0]["state"], "held");
    assert_eq!(
        queue[0]["held"], "automation paused by tester: big refactor",
        "{queue:#}"
    );
    let said = p.bgtask(&["queue"]);
    assert!(
        said.stdout
            .contains("held: automation paused by tester: big refactor"),
        "{}",
        said.stdout
    );
    let status = p.bgtask(&["status"]);
    assert!(
        status.stdout.contains("automation paused since ")
            && status
                .stdout
                .contains(": big refactor (by tester), 1 job held"),
        "{}",
        status.stdout
    );
    // Work asked for runs; with one worker, the held save (queued first)
    // would have run before it.
    p.bgtask(&["submit", "manual"]).code(0);
    wait_for(30, "the submitted run", || {
        let s = p.status();
        !p.records().is_empty() && s["running_jobs"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(p.records(), ["manual [a.py]"]);
    assert_eq!(wait_held(&p, 1)["queue_depth"], 1);
    let resumed = p.bgtask(&["resume"]);
    assert!(
        resumed.code(0).stdout.contains("1 held job starts now"),
        "{}",
        resumed.stdout
    );
    events.until("the resume", |e| {
        e["event"] == "automation_resumed" && e["held"] == 1
    });
    assert_eq!(p.wait_records(2), ["manual [a.py]", "lint [a.py]"]);
    assert!(p.status()["automation"].is_null());
    p.stop();
}

#[test]
fn the_pause_outlives_a_restart_and_needs_a_running_daemon() {
    let p = watched();
    p.start();
    p.wait_watching();
    p.bgtask(&["pause", "-r", "release freeze"]).code(0);
    p.file("a.py", "a = 3\n");
    wait_held(&p, 1);
    p.stop();
    let down = p.bgtask(&["pause", "-r", "again"]);
    down.code(4);
    assert!(down.stderr.contains("`bgtask start`"), "{}", down.stderr);
    p.bgtask(&["resume"]).code(4);
    p.start();
    let s = wait_held(&p, 1);
    assert_eq!(s["automation"]["reason"], "release freeze", "{s:#}");
    assert!(p.records().is_empty(), "{:?}", p.records());
    p.bgtask(&["resume", "--json"]).code(0);
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    p.stop();
}

#[test]
fn the_dashboard_pauses_and_resumes() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let (code, v) = d.post(
        &format!("/api/v1/projects/{id}/pause"),
        r#"{"reason": "big refactor"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (&v["paused"], &v["by"]),
        (&Value::Bool(true), &Value::from("dashboard"))
    );
    let (_, s) = d.get(&format!("/api/v1/projects/{id}/status"));
    assert_eq!(s["automation"]["reason"], "big refactor", "{s:#}");
    assert_eq!(p.status()["automation"]["by"], "dashboard");
    // Work asked for from the page still runs.
    let (_, v) = d.post(
        &format!("/api/v1/projects/{id}/submit"),
        r#"{"tasks": ["a"]}"#,
    );
    assert_eq!(v["jobs"][0]["outcome"], "queued", "{v}");
    p.settle(30);
    assert_eq!(p.sql("SELECT count(*) FROM runs"), ["1"]);
    let (code, v) = d.post(
        &format!("/api/v1/projects/{id}/pause"),
        r#"{"reason": "x", "bogus": 1}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.post(
        &format!("/api/v1/projects/{id}/pause"),
        &format!(r#"{{"reason": "{}"}}"#, "x".repeat(1001)),
    );
    assert_eq!(
        (code, &v["error"]["code"]),
        (400, &Value::from("invalid")),
        "{v}"
    );
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/resume"), "{}");
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (&v["paused"], &v["held"]),
        (&Value::Bool(false), &Value::from(0))
    );
    let (_, s) = d.get(&format!("/api/v1/projects/{id}/status"));
    assert!(s["automation"].is_null(), "{s:#}");
    p.stop();
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/resume"), "{}");
    assert_eq!(
        (code, &v["error"]["code"]),
        (503, &Value::from("daemon_down")),
        "{v}"
    );
}
