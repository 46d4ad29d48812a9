//! Notifications from the real daemon: new findings only (identities
//! against the previous run, edits around a finding not making it new), `min_severity` per channel, the console
//! lines, the JSON log with rotation, retention and a full disk, missing
//! analyzers told once per start, an invalid config, and the delivery log
//! (`bgtask notifications`). Desktop and email against real servers are in
//! `notify_desktop.rs` and `notify_email.rs`.

use serde_json::Value;

use crate::harness::{Project, wait_for};

/// A project-mode analyzer that reports whatever `findings.txt` says:
/// `path:line: severity: message [RULE]`.
pub const SCAN: &str = r#""scan": {"command": "sh", "mode": "project", "files": ["*.py"],
    "args": ["-c", "cat findings.txt"], "parser": "regex",
    "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<severity>\\w+): (?P<message>.*) \\[(?P<rule>\\w+)\\]$"},
    "severity": {"critical": "critical", "high": "high", "medium": "medium", "low": "low"},
    "exit_codes": {"ok": [0]}, "cache": false}"#;

pub const APP: &str = "password = 'hunter2'\nimport pickle\neval(input())\nprint('ok')\n";

pub const HIGH_1: &str = "src/app.py:1: high: Possible hardcoded password [B105]";
pub const MEDIUM_2: &str =
    "src/app.py:2: medium: Consider possible security implications of pickle [B403]";
pub const CRITICAL_3: &str = "src/app.py:3: critical: Use of eval on input [B307]";

/// The config of a project with the `scan` task; `notify` is the task's
/// policy, `notifications` the section's content.
pub fn scan_config(notify: &str, notifications: &str) -> String {
    format!(
        r#"{{"daemon": {{"max_rss_mb": 100000}}, "execution": {{"max_retries": 0}},
            "tasks": {{"scan": {{"analyzers": ["scan"], "notify": {{{notify}}}}}}},
            "analyzers": {{{SCAN}}},
            "notifications": {{{notifications}}}}}"#
    )
}

pub fn scan_project(notify: &str, notifications: &str) -> Project {
    let p = Project::empty();
    p.file("src/app.py", APP)
        .file("findings.txt", "")
        .config(&scan_config(notify, notifications));
    p
}

/// Runs `scan` once with these findings; returns its run id.
pub fn scan(p: &Project, findings: &[&str]) -> i64 {
    let mut text = findings.join("\n");
    text.push('\n');
    p.file("findings.txt", &text);
    p.bgtask(&["submit", "scan"]).code(0);
    p.settle(30);
    p.sql("SELECT max(id) FROM runs")[0].parse().unwrap()
}

/// The JSON log's lines.
pub fn jsonl(p: &Project, rel: &str) -> Vec<Value> {
    p.read(rel)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn log_titles(p: &Project) -> Vec<String> {
    jsonl(p, ".bgtask/logs/notifications.jsonl")
        .iter()
        .map(|v| v["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The delivery log, oldest first.
pub fn deliveries(p: &Project) -> Vec<Value> {
    let run = p.bgtask(&["notifications", "--json", "--limit", "1000"]);
    run.code(0);
    let mut rows = run.json().as_array().unwrap().clone();
    rows.reverse();
    rows
}

/// `(channel, outcome, title)` of the delivery log, oldest first.
pub fn outcomes(p: &Project) -> Vec<(String, String, String)> {
    deliveries(p)
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (s("channel"), s("outcome"), s("title"))
        })
        .collect()
}

#[test]
fn new_findings_only_by_default_and_min_severity_per_channel() {
    let p = scan_project("", "");
    p.start();
    let r1 = scan(&p, &[HIGH_1, MEDIUM_2]);
    let first = format!("scan: 2 new findings (1 high, 1 medium) · bgtask show {r1}");
    wait_for(20, "the first notification", || {
        p.daemon_log().contains(&first)
    });
    // One line on the console (the daemon's stdout, here its log), plain.
    assert!(
        p.daemon_log().contains(&format!("ERROR    {first}")),
        "{}",
        p.daemon_log()
    );

    let r2 = scan(&p, &[HIGH_1, CRITICAL_3]);
    wait_for(20, "the second notification", || log_titles(&p).len() == 2);
    // Nothing new: no notification.
    let r3 = scan(&p, &[HIGH_1, CRITICAL_3]);
    // Report everything from now on, and only critical ones to the file.
    p.config(&scan_config(
        r#""new_only": false"#,
        r#""file": {"min_severity": "critical"}"#,
    ));
    p.bgtask(&["reload"]).code(0);
    let r4 = scan(&p, &[HIGH_1, CRITICAL_3]);
    let r5 = scan(&p, &[HIGH_1]);
    let fifth = format!("scan: 1 finding (1 high), 0 new, 1 fixed · bgtask show {r5}");
    wait_for(20, "the fifth run's console line", || {
        p.daemon_log().contains(&fifth)
    });
    assert_eq!(
        log_titles(&p),
        [
            "scan: 2 new findings (1 high, 1 medium)",
            "scan: 1 new finding (1 critical), 1 fixed",
            "scan: 2 findings (1 critical, 1 high), 0 new",
        ],
        "run {r3} had nothing new; run {r5} was only an error, below the file's critical"
    );
    assert_log_lines(&p, r1, r2, r4);
    assert_deliveries(&p, r4);
    p.stop();
}

/// Findings keep their identity through edits around them: lines inserted
/// above and the code reindented into a function make nothing new; the
/// flagged line copied into a new function above it makes one new finding,
/// the copy, though the copy now has the fingerprint the original had.
#[test]
fn edits_around_findings_are_not_new_and_a_copied_line_is() {
    let p = scan_project("", "");
    p.start();
    let r1 = scan(&p, &[HIGH_1, CRITICAL_3]);
    wait_for(20, "the first notification", || log_titles(&p).len() == 1);
    let main = "def main():\n    password = 'hunter2'\n    import pickle\n    eval(input())\n    print('ok')\n";
    p.file("src/app.py", &format!("import os\n\n{main}"));
    let eval = |line: u32| format!("src/app.py:{line}: critical: Use of eval on input [B307]");
    let password =
        |line: u32| format!("src/app.py:{line}: high: Possible hardcoded password [B105]");
    let r2 = scan(&p, &[&password(4), &eval(6)]);
    p.file(
        "src/app.py",
        &format!("import os\n\ndef other():\n    eval(input())\n\n{main}"),
    );
    let r3 = scan(&p, &[&eval(4), &password(7), &eval(9)]);
    wait_for(20, "the copy's notification", || log_titles(&p).len() == 2);
    assert_eq!(
        log_titles(&p),
        [
            "scan: 2 new findings (1 critical, 1 high)",
            "scan: 1 new finding (1 critical)"
        ],
        "run {r2} had nothing new"
    );
    let copy = &jsonl(&p, ".bgtask/logs/notifications.jsonl")[1];
    assert_eq!(copy["run_id"], r3);
    assert_eq!(
        copy["top_findings"][0]["location"], "src/app.py:4",
        "{copy}"
    );
    assert!(r1 < r2);
    p.stop();
}

/// The JSON log's lines for runs 1, 2 and 4: event, severity, run, counts
/// and the worst finding first.
fn assert_log_lines(p: &Project, r1: i64, r2: i64, r4: i64) {
    let lines = jsonl(p, ".bgtask/logs/notifications.jsonl");
    let l = &lines[0];
    assert_eq!(l["event"], "issues_found");
    assert_eq!(l["severity"], "error");
    assert_eq!(l["task"], "scan");
    assert_eq!(l["run_id"], r1);
    assert_eq!(l["counts"]["new"], 2);
    assert_eq!(l["top_findings"][0]["rule"], "B105", "worst first");
    assert_eq!(l["top_findings"][0]["location"], "src/app.py:1");
    assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
    assert_eq!(lines[1]["severity"], "critical");
    assert_eq!(lines[1]["run_id"], r2);
    assert_eq!(lines[1]["counts"]["fixed"], 1);
    assert_eq!(lines[2]["run_id"], r4);
}

/// The delivery log: no desktop here, said once, and the jobs ran on; every
/// console and file delivery recorded, and `bgtask notifications` shows them.
fn assert_deliveries(p: &Project, r4: i64) {
    // No desktop here: the channel said so once and the jobs ran on.
    let log = outcomes(p);
    let desktop: Vec<_> = log.iter().filter(|(c, _, _)| c == "desktop").collect();
    assert_eq!(desktop.len(), 1, "{log:?}");
    assert_eq!(desktop[0].1, "disabled");
    let count = |channel: &str| {
        log.iter()
            .filter(|(c, o, _)| c == channel && o == "delivered")
            .count()
    };
    assert_eq!((count("console"), count("file")), (4, 3), "{log:?}");
    let error = &deliveries(p)
        .into_iter()
        .find(|d| d["channel"] == "desktop")
        .unwrap()["error"];
    assert!(
        error.as_str().unwrap().contains("no D-Bus session bus"),
        "{error}"
    );
    assert_eq!(
        p.sql("SELECT count(*) FROM jobs WHERE state != 'done'"),
        ["0"]
    );
    let shown = p.bgtask(&["notifications"]);
    shown.code(0);
    assert!(
        shown.stdout.contains(&format!(
            "file     delivered critical issues_found (run {r4}): scan: 2 findings"
        )),
        "{}",
        shown.stdout
    );
}

#[test]
fn missing_analyzers_are_told_once_per_start_and_a_bad_config_once() {
    let p = Project::empty();
    let config = r#"{"daemon": {"max_rss_mb": 100000},
        "tasks": {"lint": {"analyzers": ["ghost"]}},
        "analyzers": {"ghost": {"command": "bgtask-no-such-tool", "mode": "project", "parser": "exit-code"}}}"#;
    p.config(config);
    p.start();
    let unavailable = |p: &Project| {
        jsonl(p, ".bgtask/logs/notifications.jsonl")
            .into_iter()
            .filter(|l| l["event"] == "analyzers_unavailable")
            .count()
    };
    for _ in 0..2 {
        p.bgtask(&["submit", "lint"]).code(0);
        p.settle(20);
    }
    wait_for(20, "the missing analyzer notification", || {
        unavailable(&p) == 1
    });
    let line = &jsonl(&p, ".bgtask/logs/notifications.jsonl")[0];
    assert_eq!(line["severity"], "warning");
    assert_eq!(line["title"], "not installed, skipped by lint: ghost");

    // A broken config is told once, and the daemon keeps going.
    p.config("{\"tasks\": {\"lint\": {\"analyzers\": [\"ghost\"],}}}");
    p.bgtask(&["reload"]).code(78);
    wait_for(20, "the invalid config notification", || {
        jsonl(&p, ".bgtask/logs/notifications.jsonl")
            .iter()
            .any(|l| l["event"] == "config_invalid")
    });
    let bad = jsonl(&p, ".bgtask/logs/notifications.jsonl")
        .into_iter()
        .find(|l| l["event"] == "config_invalid")
        .unwrap();
    assert_eq!(bad["severity"], "error");
    assert!(
        bad["details"][0]
            .as_str()
            .unwrap()
            .contains(".background-tasks.json:1:"),
        "{bad}"
    );
    p.config(config);
    p.stop();
    p.start();
    p.bgtask(&["submit", "lint"]).code(0);
    p.settle(20);
    wait_for(20, "the notification of the new start", || {
        unavailable(&p) == 2
    });
    p.stop();
}

#[test]
fn the_json_log_rotates_at_its_size_and_drops_old_files() {
    let p = scan_project(
        "",
        r#""file": {"max_size_mb": 1, "max_files": 3, "retention_days": 7}"#,
    );
    let logs = p.path().join(".bgtask/logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Nearly 1 MiB already, a rotated file past retention, one past max_files.
    let line = format!("{{\"filler\":\"{}\"}}\n", "x".repeat(1000));
    std::fs::write(logs.join("notifications.jsonl"), line.repeat(1034)).unwrap();
    std::fs::write(logs.join("notifications.jsonl.2"), &line).unwrap();
    std::fs::write(logs.join("notifications.jsonl.5"), &line).unwrap();
    let status = std::process::Command::new("touch")
        .args(["-d", "30 days ago"])
        .arg(logs.join("notifications.jsonl.2"))
        .status()
        .unwrap();
    assert!(status.success());
    p.start();
    wait_for(20, "retention at start", || {
        !logs.join("notifications.jsonl.2").exists() && !logs.join("notifications.jsonl.5").exists()
    });
    let r = scan(&p, &[HIGH_1]);
    wait_for(20, "the notification", || {
        logs.join("notifications.jsonl.1").exists()
    });
    let current = jsonl(&p, ".bgtask/logs/notifications.jsonl");
    assert_eq!(current.len(), 1, "a fresh file after rotation");
    assert_eq!(current[0]["run_id"], r);
    let rotated = std::fs::metadata(logs.join("notifications.jsonl.1"))
        .unwrap()
        .len();
    assert_eq!(rotated, line.len() as u64 * 1034, "the old file, whole");
    p.stop();
}

/// A full disk under the JSON log never fails a job: the delivery is
/// recorded as failed with the OS's reason.
#[test]
fn a_full_disk_under_the_json_log_never_fails_a_job() {
    let root = unsafe { libc::geteuid() } == 0;
    // As root: a real 64 KiB tmpfs, filled. Otherwise /dev/full, which
    // answers every write with ENOSPC.
    let path = if root {
        "full/notifications.jsonl"
    } else {
        "/dev/full"
    };
    let p = scan_project("", &format!(r#""file": {{"path": "{path}"}}"#));
    let _unmount = root.then(|| {
        let dir = p.path().join("full");
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount a tmpfs");
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=4k", "count=100"])
            .arg(format!("of={}", dir.join("filler").display()))
            .stderr(std::process::Stdio::null())
            .status();
        Unmount(dir)
    });
    p.start();
    let r = scan(&p, &[HIGH_1]);
    wait_for(20, "the failed delivery", || {
        outcomes(&p).iter().any(|(c, _, _)| c == "file")
    });
    let file = deliveries(&p)
        .into_iter()
        .find(|d| d["channel"] == "file")
        .unwrap();
    assert_eq!(file["outcome"], "failed");
    assert!(
        file["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{file}"
    );
    assert_eq!(
        p.sql(&format!(
            "SELECT verdict != 'running' FROM runs WHERE id = {r}"
        )),
        ["1"]
    );
    assert_eq!(p.sql("SELECT state FROM jobs"), ["done"]);
    // The console still had it.
    assert!(p.daemon_log().contains("scan: 1 new finding (1 high)"));
    p.stop();
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_health_check_getting_worse_is_a_notification() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium"), ("c", "medium")], "");
    let config = p.read(".background-tasks.json").replace(
        r#""daemon": {"max_rss_mb": 100000}"#,
        r#""daemon": {"max_rss_mb": 100000, "health_interval": "1s", "queue_warning": 1}"#,
    );
    p.config(&config);
    p.file("hold-a", "");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "a to run", || p.read("runs.log").contains("start a"));
    p.bgtask(&["submit", "b", "c"]).code(0);
    wait_for(20, "the health alert", || {
        jsonl(&p, ".bgtask/logs/notifications.jsonl")
            .iter()
            .any(|l| l["event"] == "health_alert")
    });
    let alert = jsonl(&p, ".bgtask/logs/notifications.jsonl")
        .into_iter()
        .find(|l| l["event"] == "health_alert")
        .unwrap();
    assert_eq!(alert["severity"], "error", "{alert}");
    assert_eq!(alert["title"], "daemon health is error");
    assert!(
        alert["details"][0]
            .as_str()
            .unwrap()
            .contains("2 waiting jobs (warning at 1)"),
        "{alert}"
    );
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    p.settle(30);
    p.stop();
}

#[test]
fn held_jobs_make_one_resource_notification() {
    // A memory limit the daemon is always over: every job is held.
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], "");
    let config = p.read(".background-tasks.json").replace(
        r#""daemon": {"max_rss_mb": 100000}"#,
        r#""daemon": {"max_rss_mb": 1}"#,
    );
    p.config(&config);
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "the resource notification", || {
        !jsonl(&p, ".bgtask/logs/notifications.jsonl").is_empty()
    });
    p.bgtask(&["submit", "b"]).code(0);
    // Another held job, and the loop looking again at what holds them:
    // still one.
    let turns = p.status()["loop_turns"].as_u64().unwrap();
    wait_for(20, "the loop to look again", || {
        let s = p.status();
        s["holding"].is_string() && s["loop_turns"].as_u64().unwrap() >= turns + 3
    });
    let lines = jsonl(&p, ".bgtask/logs/notifications.jsonl");
    assert_eq!(lines.len(), 1, "one while the jobs stay held: {lines:?}");
    assert_eq!(lines[0]["event"], "high_resource_usage");
    assert_eq!(lines[0]["severity"], "warning");
    assert!(
        lines[0]["details"][0]
            .as_str()
            .unwrap()
            .contains("over daemon.max_rss_mb 1"),
        "{}",
        lines[0]
    );
    assert_eq!(p.read("runs.log"), "", "nothing ran");
    p.stop();
}
