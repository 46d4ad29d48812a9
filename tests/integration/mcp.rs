//! `bgtask mcp`, driven by the official MCP Python SDK's client (PyPI
//! `mcp`, installed by `scripts/test.sh`): what it lists, `run_analysis`
//! against `bgtask run --format json`, errors as tool results and as
//! protocol errors, progress, cancellation reaching the analyzers, a
//! subscription told of a run, and the same server over HTTP in the
//! dashboard.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::dashboard::Dashboard;
use crate::harness::{Project, bgtask_bin, manifest_dir, running, tool_cache, wait_for};
use crate::notify_servers::available;

fn python() -> Option<PathBuf> {
    let python = tool_cache().join("mcp-venv/bin/python");
    available(
        "the MCP Python SDK",
        python.exists(),
        "pip install mcp==2.3.0 into target/test-cache/mcp-venv (scripts/test.sh does)",
    )
    .then_some(python)
}

fn client_command(p: &Project, python: &PathBuf, scenario: &str, args: &Value) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(manifest_dir().join("tests/mcp/client.py"))
        .arg(scenario)
        .arg(args.to_string())
        .current_dir(p.path())
        .env("BGTASK", bgtask_bin())
        .envs(p.env_vars());
    cmd
}

/// One scenario of the client, to its end: what it printed.
#[track_caller]
fn client(p: &Project, python: &PathBuf, scenario: &str, args: &Value) -> Value {
    let out = client_command(p, python, scenario, args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client {scenario} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn call(p: &Project, python: &PathBuf, tool: &str, arguments: &Value) -> Value {
    client(
        p,
        python,
        "call",
        &json!({"tool": tool, "arguments": arguments}),
    )
}

fn bandit_app() -> Project {
    let p = Project::fixture("python-app");
    p.commit_all("init");
    p
}

#[test]
fn an_agent_sees_the_tools_and_runs_what_bgtask_run_runs() {
    let Some(py) = python() else { return };
    let p = bandit_app();
    let lists = client(&p, &py, "lists", &json!({}));
    let names: Vec<&str> = lists["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "run_analysis",
        "submit",
        "status",
        "queue",
        "history",
        "get_run",
        "get_log",
        "cancel",
        "retry",
        "health",
        "validate_config",
        "list_tasks",
        "explain_finding",
        "pause_automation",
        "resume_automation",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.contains("trust") || n.contains("hook")),
        "an agent must not be able to trust or install hooks: {names:?}"
    );
    for t in lists["tools"].as_array().unwrap() {
        assert!(t["outputSchema"].is_object(), "no outputSchema: {t}");
        assert!(t["description"].as_str().unwrap().len() > 60, "{t}");
    }
    assert_eq!(lists["resources"], json!(["bgtask://status"]));
    assert_eq!(
        lists["prompts"],
        json!(["fix-findings", "review-my-change"])
    );

    // Not trusted: nothing runs, and the agent is told a person must trust.
    let refused = call(
        &p,
        &py,
        "run_analysis",
        &json!({"tasks": ["bandit"], "scope": "project"}),
    );
    assert_eq!(refused["is_error"], true, "{refused}");
    assert!(
        refused["text"].as_str().unwrap().contains("bgtask trust"),
        "{refused}"
    );

    p.bgtask(&["trust", "--yes"]).code(0);
    let got = client(
        &p,
        &py,
        "progress",
        &json!({"tool": "run_analysis", "arguments": {"tasks": ["bandit"], "scope": "project"}}),
    );
    let cli = p.bgtask(&["run", "bandit", "--format", "json"]).json();
    let ours = &got["structured"];
    assert_eq!(got["is_error"], false, "{got}");
    assert_eq!(
        ours["findings"], cli["findings"],
        "the tool's findings are `bgtask run`'s"
    );
    assert_eq!(ours["verdict"], cli["verdict"]);
    assert_eq!(ours["exit_code"], cli["exit_code"]);
    assert!(!ours["findings"].as_array().unwrap().is_empty());
    let progress = got["progress"].as_array().unwrap();
    assert!(
        progress
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").starts_with("bandit")),
        "{progress:?}"
    );
}

#[test]
fn bad_arguments_are_protocol_errors_and_failures_are_tool_errors() {
    let Some(py) = python() else { return };
    let p = bandit_app();
    // Arguments that do not fit the schema: the answer names the field
    // (as a tool error, so the model can correct itself, as the current
    // protocol revision asks); an unknown tool is a protocol error.
    let unknown = client(
        &p,
        &py,
        "raw_error",
        &json!({"tool": "get_run", "arguments": {"run_id": 1, "colour": "red"}}),
    );
    assert_eq!(unknown["is_error"], true, "{unknown}");
    assert!(
        unknown["text"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{unknown}"
    );
    let wrong = client(
        &p,
        &py,
        "raw_error",
        &json!({"tool": "get_run", "arguments": {"run_id": "one"}}),
    );
    assert!(
        wrong["text"].as_str().unwrap().contains("invalid type"),
        "{wrong}"
    );
    let no_tool = client(&p, &py, "raw_error", &json!({"tool": "trust_worktree"}));
    assert!(
        no_tool["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not found"),
        "{no_tool}"
    );

    // The daemon is not running: a tool result that says what to do.
    let down = call(&p, &py, "status", &json!({}));
    assert_eq!(down["is_error"], true, "{down}");
    assert!(
        down["text"].as_str().unwrap().contains("not running"),
        "{down}"
    );
    // Neither do the tasks and the analyzer inventory.
    let tasks = call(&p, &py, "list_tasks", &json!({}));
    let t = &tasks["structured"];
    assert!(
        t["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "security"),
        "{tasks}"
    );
    let bandit = t["analyzers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["analyzer"] == "bandit")
        .unwrap();
    assert_eq!(
        (bandit["applies"].as_bool(), bandit["installed"].as_bool()),
        (Some(true), Some(true)),
        "{bandit}"
    );
    // A config check needs no daemon.
    let check = call(&p, &py, "validate_config", &json!({}));
    assert_eq!(check["structured"]["valid"], true, "{check}");
    p.file(
        ".background-tasks.json",
        "{\"tasks\": {\"x\": {\"analyzers\": [\"nope\"]}}}",
    );
    let bad = call(&p, &py, "validate_config", &json!({}));
    assert_eq!(bad["structured"]["valid"], false, "{bad}");
    assert!(
        bad["structured"]["problems"][0]
            .as_str()
            .unwrap()
            .contains(".background-tasks.json:"),
        "{bad}"
    );
}

#[test]
fn stdout_carries_only_protocol_messages() {
    let p = bandit_app();
    p.bgtask(&["trust", "--yes"]).code(0);
    let mut child = p
        .command(&["mcp"])
        .env("BGTASK_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "run_analysis", "arguments": {"tasks": ["bandit"], "scope": "project"}}}),
    ];
    for m in &messages {
        writeln!(stdin, "{m}").unwrap();
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("a line on stdout that is not protocol ({e}): {line:?}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        let done = v["id"] == 2;
        seen.push(v);
        if done {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        seen.iter()
            .any(|v| v["id"] == 1 && v["result"]["serverInfo"]["name"] == "bgtask")
    );
    let result = &seen.last().unwrap()["result"];
    assert!(
        result["structuredContent"]["findings"].as_array().is_some(),
        "{result}"
    );
    assert!(!out.stderr.is_empty(), "the trace went to stderr");
}

#[test]
fn cancelling_a_run_stops_its_analyzers() {
    let Some(py) = python() else { return };
    let p = Project::jobs(&[("slow", "medium")], "");
    p.file("a.txt", "x\n");
    p.file("hold-slow", "");
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    let got = client(
        &p,
        &py,
        "cancel",
        &json!({"tool": "run_analysis", "after": 3,
                "arguments": {"tasks": ["slow"], "scope": "project", "no_cache": true}}),
    );
    assert_eq!(got["cancelled"], true, "{got}");
    let grandchild: u32 = p.read("grandchild-slow").trim().parse().unwrap();
    let started: u32 = p
        .read("runs.log")
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    wait_for(10, "the analyzer and its child to be stopped", || {
        !running(grandchild) && !running(started)
    });
}

#[test]
fn a_subscribed_status_is_told_of_a_submitted_run() {
    let Some(py) = python() else { return };
    let p = Project::jobs(&[("lint", "medium")], "");
    p.file("a.txt", "x\n");
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    let mut child = client_command(
        &p,
        &py,
        "listen",
        &json!({"uris": ["bgtask://status", "bgtask://findings/a.txt"], "within": 60}),
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.contains("listening"), "{ready}");
    p.bgtask(&["submit", "lint"]).code(0);
    let event = lines.next().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    let v: Value = serde_json::from_str(&event).unwrap();
    assert!(v.to_string().contains("bgtask://status"), "{v}");
    p.wait_idle();

    // The run is in the history, and get_run shows it.
    let history = call(&p, &py, "history", &json!({"limit": 5}));
    let run_id = history["structured"]["runs"][0]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{history}"));
    let run = call(&p, &py, "get_run", &json!({"run_id": run_id}));
    assert_eq!(run["structured"]["run_id"], run_id, "{run}");
    let log = call(&p, &py, "get_log", &json!({"run_id": run_id}));
    assert!(
        log["structured"]["text"]
            .as_str()
            .unwrap()
            .contains("output of lint"),
        "{log}"
    );
    p.stop();
}

#[test]
fn the_dashboard_serves_the_same_tools_over_http() {
    let Some(py) = python() else { return };
    let p = bandit_app();
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    let d = Dashboard::start(&p);
    let mut cmd = client_command(
        &p,
        &py,
        "calls",
        &json!({"calls": [
            {"tool": "status"},
            {"tool": "run_analysis", "arguments": {"tasks": ["bandit"], "scope": "project"}},
        ]}),
    );
    let out = cmd
        .env("MCP_URL", format!("{}/mcp", d.url))
        .env("MCP_TOKEN", &d.token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = &v["results"][0];
    assert_eq!(status["is_error"], false, "{status}");
    assert_eq!(
        status["structured"]["pid"]
            .as_u64()
            .and_then(|x| u32::try_from(x).ok()),
        p.daemon_pid()
    );
    assert!(
        v["results"][1]["structured"]["findings"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
    // Without the token, nothing.
    let (code, _) = crate::dashboard::curl(&["-X", "POST", &format!("{}/mcp", d.url), "-d", "{}"]);
    assert_eq!(code, 401);
    p.stop();
}

#[test]
fn an_agent_reads_a_runs_findings_explains_one_and_pauses_the_automation() {
    let Some(py) = python() else { return };
    let p = Project::fixture("python-app");
    p.config(r#"{"tasks": {"security": {"analyzers": ["bandit"]}}}"#);
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    let submitted = call(&p, &py, "submit", &json!({"tasks": ["security"]}));
    assert_eq!(submitted["is_error"], false, "{submitted}");
    p.wait_idle();
    let history = call(&p, &py, "history", &json!({"task": "security", "limit": 1}));
    let run_id = history["structured"]["runs"][0]["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{history}"));

    let calls = client(
        &p,
        &py,
        "calls",
        &json!({"calls": [
            {"tool": "get_run", "arguments": {"run_id": run_id}},
            {"tool": "get_run", "arguments": {"run_id": run_id, "min_severity": "high", "limit": 1}},
            {"tool": "get_run", "arguments": {"run_id": run_id, "which": "new", "file": "src/app/nowhere.py"}},
            {"tool": "pause_automation", "arguments": {"reason": "renaming the app package"}},
            {"tool": "status"},
            {"tool": "resume_automation"},
        ]}),
    );
    let r = &calls["results"];
    let all = &r[0]["structured"];
    let total = all["total_findings"].as_u64().unwrap();
    assert!(total > 1, "{all}");
    assert_eq!(all["matching"], total);
    // The first run of the task: everything is new.
    assert!(
        all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["new"] == true),
        "{all}"
    );
    let high = &r[1]["structured"];
    assert_eq!(high["findings"].as_array().unwrap().len(), 1, "{high}");
    assert!(
        matches!(
            high["findings"][0]["severity"].as_str(),
            Some("high" | "critical")
        ),
        "{high}"
    );
    assert_eq!(high["omitted"], high["matching"].as_u64().unwrap() - 1);
    assert_eq!(r[2]["structured"]["matching"], 0, "{}", r[2]);
    assert_eq!(r[3]["structured"]["paused"], true, "{}", r[3]);
    let automation = &r[4]["structured"]["automation"];
    assert_eq!(
        automation["reason"], "renaming the app package",
        "{automation}"
    );
    assert!(
        automation["by"].as_str().unwrap().starts_with("agent"),
        "{automation}"
    );
    assert_eq!(r[5]["structured"]["paused"], false, "{}", r[5]);

    // Explain the worst finding: its rule, link, and the code around it.
    let index = high["findings"][0]["index"].as_u64().unwrap();
    let explained = call(
        &p,
        &py,
        "explain_finding",
        &json!({"run_id": run_id, "index": index, "context": 2}),
    );
    let e = &explained["structured"];
    assert_eq!(e["rule"], high["findings"][0]["rule"], "{explained}");
    assert!(
        e["help_uri"].as_str().unwrap().starts_with("https://"),
        "{e}"
    );
    let flagged: Vec<&Value> = e["context"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["flagged"] == true)
        .collect();
    assert_eq!(flagged.len(), 1, "{e}");
    assert_eq!(
        flagged[0]["line"], high["findings"][0]["location"]["line"],
        "{e}"
    );
    let out_of_range = call(
        &p,
        &py,
        "explain_finding",
        &json!({"run_id": run_id, "index": 9999}),
    );
    assert_eq!(out_of_range["is_error"], true, "{out_of_range}");
    p.stop();
}

#[test]
fn new_only_keeps_what_the_change_introduced() {
    let Some(py) = python() else { return };
    let p = Project::fixture("python-app");
    p.config(r#"{"tasks": {"security": {"analyzers": ["bandit"]}}}"#);
    p.commit_all("init");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.bgtask(&["submit", "security"]).code(0);
    p.wait_idle();
    // Move everything down and add one real problem at the top.
    let old = p.read("src/shop/orders.py");
    p.file(
        "src/shop/orders.py",
        &format!("def risky(text):\n    return eval(text)\n\n\n{old}"),
    );
    let args = json!({"tasks": ["bandit"], "files": ["src/shop/orders.py"], "new_only": true});
    let got = call(&p, &py, "run_analysis", &args);
    let s = &got["structured"];
    let rules: Vec<&str> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["B307"], "{got}");
    assert!(s["total_findings"].as_u64().unwrap() > 1, "{got}");
    assert!(
        s["baseline"]
            .as_str()
            .unwrap()
            .starts_with("new since HEAD ("),
        "{got}"
    );
    // The review prompt runs the same analysis on the changed files and
    // hands the model exactly what the change introduced.
    let prompt = client(
        &p,
        &py,
        "prompt",
        &json!({"name": "review-my-change", "arguments": {"tasks": "security"}}),
    );
    let text = prompt["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{prompt}"));
    assert!(text.starts_with("Review my change."), "{text}");
    let json_part = text
        .split("```json\n")
        .nth(1)
        .and_then(|t| t.split("\n```").next())
        .unwrap_or_else(|| panic!("{text}"));
    let body: Value = serde_json::from_str(json_part).unwrap_or_else(|e| panic!("{e}: {text}"));
    let rules: Vec<&str> = body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["B307"], "{body:#}");
    p.stop();
}
