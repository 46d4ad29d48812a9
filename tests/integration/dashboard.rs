//! `bgtask dashboard`: the HTTP API against real daemons, driven by curl
//! (a real HTTP client): list, submit, history, a run's report, the event
//! stream as SSE; and who may talk to it (token, Host, Origin, body size).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Project;

/// A running dashboard and how to reach it.
pub struct Dashboard {
    child: Child,
    pub url: String,
    pub token: String,
}

impl Dashboard {
    pub fn start(p: &Project) -> Dashboard {
        Dashboard::start_with(p, &["--port", "0"], Stdio::null(), String::new)
    }

    /// `bgtask dashboard --no-open --json` and `args`, its stderr to
    /// `stderr`; `said` tells what went wrong if it prints no address.
    pub(crate) fn start_with(
        p: &Project,
        args: &[&str],
        stderr: Stdio,
        said: impl FnOnce() -> String,
    ) -> Dashboard {
        let mut all = vec!["dashboard", "--no-open", "--json"];
        all.extend_from_slice(args);
        let mut child = p
            .command(&all)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}\n{}", said()));
        Dashboard {
            child,
            url: v["url"].as_str().unwrap().to_owned(),
            token: v["token"].as_str().unwrap().to_owned(),
        }
    }

    /// `curl` with the token, and whatever else `args` says; the status
    /// and the body.
    pub(crate) fn curl(&self, args: &[&str]) -> (u16, String) {
        let auth = format!("Authorization: Bearer {}", self.token);
        let mut all = vec!["-H", auth.as_str()];
        all.extend_from_slice(args);
        curl(&all)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        json(self.curl(&[&format!("{}{path}", self.url)]))
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.post_with(path, body, &[])
    }

    /// [`Dashboard::post`] with more curl arguments (say, an `Origin`
    /// header, or a longer `--max-time`).
    pub(crate) fn post_with(&self, path: &str, body: &str, extra: &[&str]) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        json(self.curl(&args))
    }
}

/// A status and its body as JSON (the body as a string if it is not).
pub(crate) fn json((code, body): (u16, String)) -> (u16, Value) {
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl silently; the HTTP status (0: no HTTP answer) and the body.
/// It gives up after 20 s; a `--max-time` in `args` wins (curl takes the
/// last one given).
pub(crate) fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The only project the dashboard lists (the test's own).
pub fn project_id(d: &Dashboard) -> String {
    let (code, v) = d.get("/api/v1/projects");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["projects"].as_array().unwrap().len(), 1, "{v:#}");
    v["projects"][0]["id"].as_str().unwrap().to_owned()
}

/// `curl -N` on the event stream: each SSE event's name and data.
fn sse(d: &Dashboard, path: &str) -> (Child, mpsc::Receiver<(String, Value)>) {
    sse_after(d, path, None)
}

/// [`sse`], resuming after the cursor `last` (`Last-Event-ID`).
fn sse_after(
    d: &Dashboard,
    path: &str,
    last: Option<&str>,
) -> (Child, mpsc::Receiver<(String, Value)>) {
    let mut curl = Command::new("curl");
    curl.args([
        "-s",
        "-N",
        "-H",
        &format!("Authorization: Bearer {}", d.token),
    ]);
    if let Some(last) = last {
        curl.args(["-H", &format!("Last-Event-ID: {last}")]);
    }
    let mut child = curl
        .arg(format!("{}{path}", d.url))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                e.clone_into(&mut event);
            } else if let Some(data) = line.strip_prefix("data: ") {
                let v = serde_json::from_str(data).unwrap_or(Value::Null);
                if tx.send((event.clone(), v)).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
}

#[track_caller]
fn until(
    rx: &mpsc::Receiver<(String, Value)>,
    what: &str,
    done: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((e, v)) if done(&e, &v) => return v,
            Ok(other) => seen.push(other),
            Err(e) => panic!("no {what} ({e}); saw {seen:#?}"),
        }
    }
}

#[test]
fn the_api_submits_and_the_stream_shows_the_job_finish() {
    let p = Project::jobs(&[("a", "medium"), ("b", "low")], "");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let (_, v) = d.get(&format!("/api/v1/projects/{id}"));
    assert_eq!(v["daemon"], "up", "{v:#}");
    assert_eq!(v["status"]["tasks"], serde_json::json!(["a", "b"]));
    let (mut stream, rx) = sse(&d, &format!("/api/v1/events?project={id}"));
    until(&rx, "the daemon up", |e, _| e == "daemon_up");
    p.file("hold-a", "");
    let (code, v) = d.post(
        &format!("/api/v1/projects/{id}/submit"),
        r#"{"tasks": ["a", "b"]}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["jobs"][0]["outcome"], "queued");
    // b waits behind a (one worker): the CLI sees the API's job.
    until(&rx, "a started", |e, v| {
        e == "job_started" && v["task"] == "a"
    });
    let queue = p.bgtask(&["queue", "--json"]).json();
    assert_eq!(queue[0]["task"], "b", "{queue:#}");
    let b_job = v["jobs"][1]["job_id"].as_i64().unwrap();
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/jobs/{b_job}/cancel"), "{}");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["was"], "waiting");
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    let done = until(&rx, "a's end", |e, v| {
        e == "job_finished" && v["task"] == "a"
    });
    assert_eq!(done["project"], id.as_str());
    assert_eq!(done["state"], "done");
    let run = done["run_id"].as_i64().unwrap();
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/{run}"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["report"]["verdict"], "no findings");
    let (_, v) = d.get(&format!("/api/v1/projects/{id}/history?limit=1"));
    assert_eq!(v["runs"][0]["run_id"], run);
    assert_eq!(v["runs"][0]["trigger"], "manual: dashboard");
    let (_, older) = d.get(&format!("/api/v1/projects/{id}/history?before={run}"));
    assert!(
        older["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["run_id"].as_i64() < Some(run))
    );
    let _ = stream.kill();
    let _ = stream.wait();
}

#[test]
fn a_daemon_stopped_started_and_forgotten_and_what_the_worktree_says() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let (mut stream, rx) = sse(&d, &format!("/api/v1/events?project={id}"));
    let first = until(&rx, "the daemon up", |e, _| e == "daemon_up");
    // What the worktree itself says: trust, as `bgtask trust --diff`.
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/trust"));
    assert_eq!(code, 200, "{v}");
    let cli: Value = p.bgtask(&["trust", "--status", "--json"]).json();
    assert_eq!(
        v["tasks"]["a"]["state"], cli["a"]["state"],
        "{v:#}\n{cli:#}"
    );
    assert!(
        v["tasks"]["a"]["runs"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{v:#}"
    );
    // The config on disk, as `bgtask config validate` sees it.
    let (_, v) = d.get(&format!("/api/v1/projects/{id}/config"));
    assert_eq!(v["valid"], true, "{v}");
    let good = p.read(".background-tasks.json");
    std::fs::write(
        p.path().join(".background-tasks.json"),
        "{\"tasks\": {\"a\": 1}}",
    )
    .unwrap();
    let (_, v) = d.get(&format!("/api/v1/projects/{id}/config"));
    assert_eq!(v["valid"], false, "{v}");
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains(".background-tasks.json:1:"),
        "{v}"
    );
    p.config(&good);
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/notifications?limit=5"));
    assert_eq!(code, 200, "{v}");
    assert!(v["deliveries"].is_array(), "{v}");
    // A stopped daemon: the stream says so, the API answers 503.
    p.stop();
    until(&rx, "the daemon down", |e, _| e == "daemon_down");
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/status"));
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "daemon_down");
    let (_, v) = d.get("/api/v1/projects");
    assert_eq!(v["projects"][0]["daemon"], "down");
    // Started again from the API: `bgtask start` in its worktree.
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/start"), "{}");
    assert_eq!(code, 200, "{v}");
    assert!(
        v["started"].as_str().unwrap().contains("started (pid"),
        "{v}"
    );
    let again = until(&rx, "the daemon up again", |e, _| e == "daemon_up");
    assert_ne!(again["epoch"], first["epoch"], "another daemon");
    // A browser coming back with the first daemon's cursor gets the new
    // daemon's events from its first one.
    let cursor = format!("{id}.{}.5", first["epoch"]);
    let (mut resumed, rx2) = sse_after(&d, &format!("/api/v1/events?project={id}"), Some(&cursor));
    let up = until(&rx2, "the new daemon up", |e, _| e == "daemon_up");
    assert_eq!(up["epoch"], again["epoch"]);
    until(&rx2, "the new daemon's first event", |e, v| {
        e != "daemon_up" && v["seq"] == 1
    });
    let _ = resumed.kill();
    let _ = resumed.wait();
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/activity"), "{}");
    assert_eq!(code, 200, "{v}");
    p.stop();
    let (code, v) = d.post(&format!("/api/v1/projects/{id}/forget"), "{}");
    assert_eq!((code, &v["forgot"]), (200, &Value::Bool(true)), "{v}");
    let (_, v) = d.get("/api/v1/projects");
    assert_eq!(v["projects"], serde_json::json!([]));
    p.bgtask(&["dashboard", "--forget", &id]).code(64);
    let _ = stream.kill();
    let _ = stream.wait();
}

#[test]
fn only_the_token_holder_on_this_host_gets_in() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let d = Dashboard::start(&p);
    project_id(&d);
    let projects = format!("{}/api/v1/projects", d.url);
    assert_eq!(curl(&[&projects]).0, 401, "no token");
    assert_eq!(
        curl(&["-H", "Authorization: Bearer nope", &projects]).0,
        401
    );
    let (code, body) = d.curl(&["-H", "Host: attacker.example:80", &projects]);
    assert_eq!(code, 403, "DNS rebinding: {body}");
    assert!(body.contains("forbidden_host"), "{body}");
    // The printed address sets a cookie and drops the token from the URL.
    let (code, headers) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{}/?token={}", d.url, d.token),
    ]);
    assert_eq!(code, 303);
    let cookie = format!("bgtask_token={}", d.token);
    assert!(
        headers.contains(&format!("{cookie}; HttpOnly; SameSite=Strict")),
        "{headers}"
    );
    let (code, page) = curl(&["-H", &format!("Cookie: {cookie}"), &format!("{}/", d.url)]);
    assert_eq!(code, 200);
    assert!(page.contains("<title>bgtask</title>"));
    p.stop();
}

#[test]
fn changes_need_this_origin_and_bad_input_gets_a_json_error() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let cookie = format!("bgtask_token={}", d.token);
    // A change with the cookie alone needs this origin (CSRF).
    let submit = format!("{}/api/v1/projects/{id}/submit", d.url);
    let post = |extra: &[&str]| {
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"tasks": ["a"]}"#,
        ];
        args.extend_from_slice(extra);
        args.push(&submit);
        curl(&args)
    };
    let with_cookie = format!("Cookie: {cookie}");
    assert_eq!(post(&["-H", &with_cookie]).0, 403, "cookie, no Origin");
    assert_eq!(
        post(&["-H", &with_cookie, "-H", "Origin: http://attacker.example"]).0,
        403
    );
    let origin = format!("Origin: {}", d.url);
    assert_eq!(
        post(&["-H", &with_cookie, "-H", &origin]).0,
        200,
        "the page itself"
    );
    let bearer = format!("Authorization: Bearer {}", d.token);
    assert_eq!(
        post(&["-H", &bearer, "-H", "Origin: http://attacker.example"]).0,
        403
    );
    // Bad input: JSON errors with the status that fits.
    let (code, v) = d.post(
        &format!("/api/v1/projects/{id}/submit"),
        r#"{"tasks": ["a"], "bogus": 1}"#,
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("bogus"),
        "{v}"
    );
    let (code, v) = d.get("/api/v1/projects/0123456789abcdef/status");
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (code, _) = d.get(&format!("/api/v1/projects/{id}/runs/x"));
    assert_eq!(code, 400);
    let big = p.path().join("big.json");
    std::fs::write(&big, vec![b' '; 10 * 1024 * 1024]).unwrap();
    let (code, body) = d.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", big.display()),
        &submit,
    ]);
    assert_eq!(code, 413, "{body}");
    // A second dashboard finds this one.
    let again = p.bgtask(&["dashboard", "--json"]);
    again.code(0);
    let v: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["reused"], true);
    assert_eq!(v["url"], d.url.as_str());
    p.stop();
}

#[test]
fn a_runs_output_streams_while_it_runs_and_stays_after() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file("hold-a", "");
    p.start();
    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let (_, v) = d.post(
        &format!("/api/v1/projects/{id}/submit"),
        r#"{"tasks": ["a"]}"#,
    );
    assert_eq!(v["jobs"][0]["outcome"], "queued", "{v}");
    let mut run = 0;
    crate::harness::wait_for(20, "a to run", || {
        let (_, s) = d.get(&format!("/api/v1/projects/{id}/status"));
        run = s["running_jobs"][0]["run_id"].as_i64().unwrap_or(0);
        run > 0
    });
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/{run}"));
    assert_eq!(code, 400, "no report while it runs: {v}");
    let (mut tail, rx) = sse(
        &d,
        &format!("/api/v1/projects/{id}/runs/{run}/log?follow=1"),
    );
    let chunk = until(&rx, "its output", |e, v| {
        e == "chunk"
            && v["data"]
                .as_str()
                .is_some_and(|d| d.contains("output of a"))
    });
    assert_eq!(chunk["analyzer"], "job-a");
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    let end = until(&rx, "the end", |e, _| e == "end");
    assert_eq!(end["finished"], true);
    assert!(
        tail.wait().unwrap().success(),
        "the stream ends with the run"
    );
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/{run}/log"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["finished"], true);
    assert!(
        v["logs"]["job-a"].as_str().unwrap().contains("output of a"),
        "{v}"
    );
    let (code, v) = d.get(&format!("/api/v1/projects/{id}/runs/999/log?follow=1"));
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    p.stop();
}

#[test]
fn the_openapi_document_is_served() {
    let p = Project::jobs(&[("a", "medium")], "");
    let d = Dashboard::start(&p);
    let (code, doc) = d.get("/api/v1/openapi.json");
    assert_eq!(code, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::harness::manifest_dir().join("schema/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        doc == committed,
        "the served document is not schema/openapi.json"
    );
}
