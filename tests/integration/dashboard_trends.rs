//! The project page's plots over time: `GET …/trends` by curl against a
//! real daemon and dashboard after real runs (new and fixed findings, a
//! failing task, the daemon stopped), and the plots drawn in a real
//! headless Chromium (`tests/browser/trends.py`).

use std::process::Command;

use serde_json::Value;

use crate::dashboard::Dashboard;
use crate::harness::{Project, manifest_dir};

/// `todo` finds TODO comments (a second each time), `broken` always fails.
fn project() -> Project {
    let p = Project::empty();
    p.config(
        r#"{"daemon": {"max_rss_mb": 100000}, "execution": {"max_retries": 0},
            "tasks": {"todo": {"analyzers": ["todo"]}, "broken": {"analyzers": ["broken"]}},
            "analyzers": {
              "todo": {"command": "sh", "mode": "batch", "files": ["*.py"],
                "args": ["-c", "sleep 0.2; grep -Hn TODO \"$@\"", "todo", "{files}"],
                "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"},
                "exit_codes": {"ok": [0, 1]}, "cache": false},
              "broken": {"command": "sh", "mode": "project", "args": ["-c", "exit 7"],
                "parser": "regex", "regex": {"pattern": "^(?P<message>.*)$"},
                "exit_codes": {"ok": [0, 1]}, "cache": false}}}"#,
    );
    p.file("app.py", "x = 1  # TODO: one\ny = 2  # TODO: two\n");
    p
}

/// `bgtask submit` and wait until every job ended.
fn run(p: &Project, task: &str) {
    p.bgtask(&["submit", task]).code(0);
    p.settle(30);
}

/// GET with the token: the status and the JSON body.
fn get(d: &Dashboard, path: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "20", "-H"])
        .arg(format!("Authorization: Bearer {}", d.token))
        .arg(format!("{}{path}", d.url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

/// The sum of a field over a series' points.
fn sum(points: &Value, field: &str) -> u64 {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_u64().unwrap())
        .sum()
}

/// The findings of a series' last point, all severities.
fn open_findings(points: &Value) -> u64 {
    let last = points.as_array().unwrap().last().unwrap();
    let by = last["findings"].as_object().unwrap();
    by.values().map(|n| n.as_u64().unwrap()).sum()
}

#[test]
fn trends_count_runs_new_and_fixed_findings_and_failures_with_or_without_the_daemon() {
    let p = project();
    p.start();
    let d = Dashboard::start(&p);
    let (_, v) = get(&d, "/api/v1/projects");
    let id = v["projects"][0]["id"].as_str().unwrap().to_owned();
    run(&p, "todo");
    // The second run: "two" fixed, "three" new.
    p.file("app.py", "x = 1  # TODO: one\nz = 3  # TODO: three\n");
    run(&p, "todo");
    run(&p, "broken");
    let (code, t) = get(&d, &format!("/api/v1/projects/{id}/trends?days=1"));
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["bucket_ms"], 3_600_000, "a day goes by the hour");
    let tasks: Vec<&str> = t["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["todo", "broken"], "{t:#}");
    let todo = &t["tasks"][0]["points"];
    assert_eq!(sum(todo, "runs"), 2, "{t:#}");
    assert_eq!((sum(todo, "new"), sum(todo, "fixed")), (3, 1), "{t:#}");
    assert_eq!(open_findings(todo), 2, "one and three: {t:#}");
    let first = &todo[0];
    assert!(first["duration_p50_ms"].as_u64().unwrap() >= 200, "{first}");
    assert!(first["duration_p95_ms"].as_u64() >= first["duration_p50_ms"].as_u64());
    assert_eq!(first["ok_rate"], 1.0);
    let broken = &t["tasks"][1]["points"];
    assert_eq!(broken[0]["ok_rate"], 0.0, "{t:#}");
    assert_eq!(sum(&t["total"], "runs"), 3);
    // One task; and the same from the file with the daemon stopped.
    let (_, one) = get(
        &d,
        &format!("/api/v1/projects/{id}/trends?task=todo&days=1"),
    );
    assert_eq!(one["tasks"].as_array().unwrap().len(), 1, "{one:#}");
    assert_eq!(one["tasks"][0]["points"], *todo);
    p.stop();
    let (code, again) = get(&d, &format!("/api/v1/projects/{id}/trends?days=1"));
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["tasks"], t["tasks"]);
    let (code, days) = get(&d, &format!("/api/v1/projects/{id}/trends"));
    assert_eq!((code, days["bucket_ms"].as_u64()), (200, Some(86_400_000)));
    // Bad input: 400 naming the field; an unknown project: 404.
    for (query, field) in [
        ("bogus=1", "bogus"),
        ("days=400", "days"),
        ("days=0", "days"),
        ("bucket=week", "bucket"),
        ("utc_offset_min=5000", "utc_offset_min"),
    ] {
        let (code, v) = get(&d, &format!("/api/v1/projects/{id}/trends?{query}"));
        assert_eq!(code, 400, "{query}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
    let (code, _) = get(&d, "/api/v1/projects/nope/trends");
    assert_eq!(code, 404);
}

#[test]
fn the_project_page_draws_the_plots_with_captions_and_no_console_errors() {
    let Some((python, chromium)) = crate::dashboard_browser::browser() else {
        return;
    };
    let p = project();
    p.start();
    run(&p, "todo");
    p.file("app.py", "x = 1  # TODO: one\n");
    run(&p, "todo");
    let d = Dashboard::start(&p);
    let shots = manifest_dir().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new(&python)
        .arg(manifest_dir().join("tests/browser/trends.py"))
        .args([&d.url, &d.token])
        .arg(&shots)
        .envs(p.env_vars())
        .env("BGTASK_CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    for shot in ["trends", "trends-dark-narrow"] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
