//! What the daemon keeps and shows, against the real binary: spooled
//! events, hot reload, live logs, history/show/metrics/health/cleanup, a
//! corrupt state file and a full disk (RELIABILITY 3, 4, 19, 21).

use std::process::Stdio;

use serde_json::Value;

use crate::harness::{Project, wait_for};

fn spool_line(task: &str) -> String {
    format!(
        r#"{{"tasks": ["{task}"], "files": null, "priority": null, "source": {{"kind": "manual", "command": "git commit"}}, "debounce": false}}"#
    )
}

/// RELIABILITY 19: events spooled while the daemon was down run at start;
/// a bad line (not JSON, not UTF-8, an unknown task) is skipped with its
/// line number, and the lines after it still run.
#[test]
fn spooled_events_run_at_start() {
    let p = Project::jobs(&[("a", "medium"), ("b", "low")], "");
    let mut spool = format!("{}\nnot json at all\n", spool_line("a")).into_bytes();
    spool.extend_from_slice(b"\xff\xfe{\n");
    spool.extend_from_slice(format!("{}\n{}\n", spool_line("nope"), spool_line("b")).as_bytes());
    std::fs::create_dir_all(p.path().join(".bgtask")).unwrap();
    std::fs::write(p.path().join(".bgtask/spool.jsonl"), spool).unwrap();
    p.start();
    p.settle(30);
    assert_eq!(p.job_log(), ["start a", "end a 0", "start b", "end b 0"]);
    assert_eq!(p.read(".bgtask/spool.jsonl"), "", "the spool is consumed");
    let log = p.daemon_log();
    for line in ["line=2", "line=3", "line=4"] {
        assert!(log.contains(line), "{line} not reported:\n{log}");
    }
    assert!(log.contains("unknown task `nope`"), "{log}");
    let history: Value = p.bgtask(&["history", "--json"]).json();
    assert_eq!(history[0]["trigger"], "manual: git commit");
    // A hook that found no socket just before the daemon bound it spools
    // after the first drain: the daemon looks again shortly after start.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path().join(".bgtask/spool.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", spool_line("a")).as_bytes()).unwrap();
    wait_for(15, "the late spooled event to run", || {
        p.job_log().iter().filter(|l| *l == "end a 0").count() == 2
    });
    p.stop();
}

/// Issue item 6 / RELIABILITY 21: a bad config on disk keeps the last good
/// one in use, marked stale; a good one applies without a restart.
#[test]
fn hot_reload_keeps_the_last_good_config() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();
    p.file(
        ".background-tasks.json",
        "{\"tasks\": {\"a\": {\"analyzers\": [\"job-a\"],}}}",
    );
    wait_for(10, "the config to go stale", || {
        p.status()["config"]["stale"] == true
    });
    let s = p.status();
    let problems = s["config"]["problems"].to_string();
    assert!(problems.contains(".background-tasks.json:1:"), "{problems}");
    let text = p.bgtask(&["status"]);
    assert!(text.stdout.contains("STALE"), "{}", text.stdout);
    // The last good config still runs jobs.
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    assert_eq!(p.job_log(), ["start a", "end a 0"]);

    p.write_jobs_config(&[("a", "medium"), ("b", "high")], "");
    wait_for(10, "the good config to apply", || {
        p.status()["config"]["stale"] == false
    });
    p.bgtask(&["submit", "b"]).code(0);
    p.settle(20);
    assert!(
        p.job_log().contains(&"end b 0".to_owned()),
        "{:?}",
        p.job_log()
    );
    assert_eq!(p.status()["pid"], pid, "no restart");
    // `bgtask reload` answers with what happened.
    let r = p.bgtask(&["reload"]);
    r.code(0);
    p.stop();
}

/// An editor (or `git stash pop`) leaves the config empty for a moment
/// while rewriting it: that is not reported as an invalid config.
#[test]
fn a_config_briefly_empty_while_rewritten_is_not_called_invalid() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let good = p.read(".background-tasks.json");
    let reloads = || {
        p.sql("SELECT message FROM events WHERE kind = 'config'")
            .iter()
            .filter(|m| m.contains("reloaded"))
            .count()
    };
    let before = reloads();
    std::fs::write(p.path().join(".background-tasks.json"), "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(p.path().join(".background-tasks.json"), &good).unwrap();
    wait_for(10, "the reload", || reloads() > before);
    let events = p.sql("SELECT message FROM events WHERE kind = 'config'");
    assert!(!events.iter().any(|m| m.contains("invalid")), "{events:?}");
    assert_eq!(p.status()["config"]["stale"], false);
    p.stop();
}

/// `logs --follow` streams a running job's output until it ends.
#[test]
fn logs_follow_streams_a_running_job() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file("hold-a", "");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "a to hold", || {
        p.read("grandchild-a").trim().parse::<u32>().is_ok()
    });
    let run_id = p.status()["running_jobs"][0]["run_id"].to_string();
    // A running run shows its elapsed time, no exit code yet.
    let status = p.bgtask(&["status"]).stdout;
    let line = status
        .lines()
        .find(|l| l.contains(&format!("run {run_id} ")))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        line.trim_end().ends_with("s  running") && !line.contains("exit"),
        "{line}"
    );
    let now = p.bgtask(&["logs", &run_id]);
    now.code(0);
    assert!(
        now.stdout.contains("==> job-a <==") && now.stdout.contains("output of a"),
        "{}",
        now.stdout
    );
    assert!(now.stdout.contains("still running"), "{}", now.stdout);
    let follow = p
        .command(&["logs", &run_id, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    let out = follow.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("output of a"), "{text}");
    assert!(!text.contains("still running"), "{text}");
    let missing = p.bgtask(&["logs", "999"]);
    assert!(missing.stderr.contains("no run 999"), "{}", missing.stderr);
    p.stop();
}

/// history, show (every format), metrics, health and cleanup over IPC.
#[test]
fn history_show_metrics_health_and_cleanup() {
    let p = Project::jobs(&[("a", "medium"), ("b", "low")], "");
    p.file("exit-b", "1");
    p.start();
    p.bgtask(&["submit", "a", "b"]).code(0);
    p.settle(30);
    let history: Value = p.bgtask(&["history", "--json"]).json();
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let b = runs.iter().find(|r| r["task"] == "b").unwrap();
    assert_eq!(b["findings"], 1, "{b:#}");
    let only_a: Value = p.bgtask(&["history", "--task", "a", "--json"]).json();
    assert_eq!(only_a.as_array().unwrap().len(), 1);
    assert_eq!(only_a[0]["trigger"], "manual: bgtask submit a b");
    let text = p.bgtask(&["history"]);
    text.code(0);
    assert!(
        text.stdout.contains(" a ") || text.stdout.contains("a "),
        "{}",
        text.stdout
    );

    let run_b = b["run_id"].to_string();
    let report: Value = p.bgtask(&["show", &run_b, "--format", "json"]).json();
    assert_eq!(report["findings"][0]["analyzer"], "job-b");
    let sarif: Value = p.bgtask(&["show", &run_b, "--format", "sarif"]).json();
    assert_eq!(sarif["version"], "2.1.0");
    let junit = p.bgtask(&["show", &run_b, "--format", "junit"]);
    assert!(junit.stdout.contains("<testsuites"), "{}", junit.stdout);
    let markdown = p.bgtask(&["show", &run_b, "--format", "markdown"]);
    assert!(
        markdown.stdout.starts_with("### ") && markdown.stdout.contains("job-b"),
        "{}",
        markdown.stdout
    );
    let console = p.bgtask(&["show", &run_b]);
    assert!(console.stdout.contains("job-b"), "{}", console.stdout);
    let missing = p.bgtask(&["show", "999"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("no run 999"), "{}", missing.stderr);

    let metrics: Value = p.bgtask(&["metrics", "--json"]).json();
    let tasks = metrics["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{metrics:#}");
    for t in tasks {
        assert_eq!(t["runs"], 1);
        assert!(t["mean_ms"].as_u64().unwrap() > 0, "{t:#}");
    }
    assert_eq!(metrics["workers"], 1);
    let text = p.bgtask(&["metrics"]);
    text.code(0);
    assert!(text.stdout.contains("100.0% ok"), "{}", text.stdout);

    let health = p.bgtask(&["health", "--json"]);
    health.code(0);
    let names: Vec<String> = health.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        "queue",
        "failures",
        "stuck",
        "disk",
        "database",
        "config",
        "quarantine",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let cleaned = p.bgtask(&["cleanup", "--json"]);
    cleaned.code(0);
    assert_eq!(cleaned.json()["runs"], 0, "nothing is old enough");
    p.stop();
}

/// Retention: reports and findings go after `results_days`, the run rows
/// (metrics) after `metrics_days`, run logs after `logs_days`.
#[test]
fn cleanup_follows_the_retention_settings() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file("exit-a", "1");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    p.stop();
    let run_id = p.sql("SELECT id FROM runs")[0].clone();
    assert_eq!(p.sql("SELECT count(*) FROM findings"), ["1"]);
    let age = |days: i64| {
        p.sql(&format!(
            "UPDATE runs SET started_ms = started_ms - {}",
            days * 24 * 3600 * 1000
        ));
    };
    age(10);
    p.start();
    let cleaned = p.bgtask(&["cleanup", "--json"]);
    cleaned.code(0);
    let shown = p.bgtask(&["show", &run_id]);
    assert!(
        shown.stderr.contains("removed by retention"),
        "{}",
        shown.stderr
    );
    assert_eq!(p.sql("SELECT count(*) FROM findings"), ["0"]);
    let history: Value = p.bgtask(&["history", "--json"]).json();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "metrics outlive reports"
    );
    p.stop();

    age(30);
    let logs = p.path().join(".bgtask/logs/runs").join(&run_id);
    assert!(logs.exists());
    let touched = std::process::Command::new("touch")
        .args(["-d", "40 days ago"])
        .arg(&logs)
        .status()
        .unwrap();
    assert!(touched.success());
    p.start();
    p.bgtask(&["cleanup"]).code(0);
    assert_eq!(p.sql("SELECT count(*) FROM runs"), ["0"]);
    assert!(!logs.exists(), "old run logs are removed");
    p.stop();
}

/// RELIABILITY 3: a corrupt or non-SQLite state file is moved aside, the
/// daemon starts empty and says so once.
#[test]
fn a_corrupt_state_file_is_moved_aside() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file(".bgtask/state.db", &"this is not a database ".repeat(500));
    p.start();
    let aside: Vec<_> = std::fs::read_dir(p.path().join(".bgtask"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.db.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    let log = p.daemon_log();
    assert_eq!(
        log.matches("was corrupt and was moved to").count(),
        1,
        "{log}"
    );
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    p.stop();
    // A truncated database (a crash mid-copy, say) is moved aside too.
    let db = p.path().join(".bgtask/state.db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    let _ = std::fs::remove_file(p.path().join(".bgtask/state.db-wal"));
    p.start();
    p.bgtask(&["status"]).code(0);
    p.stop();
}

/// RELIABILITY 4: a full disk under `.bgtask` → a typed error for the
/// submit, the daemon stays up and reports itself degraded, and catches
/// up once space is back.
#[test]
fn a_full_disk_degrades_without_losing_work() {
    let Some((p, small)) = small_disk() else {
        return;
    };
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    // Fill the filesystem.
    let filler = small.fill();
    let run = p.bgtask(&["submit", "b"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("could not save it"), "{}", run.stderr);
    let s = p.status();
    assert!(
        s["degraded"].as_str().unwrap().contains("could not"),
        "{s:#}"
    );
    assert_eq!(s["health"]["level"], "error", "{s:#}");
    let text = p.bgtask(&["status"]);
    assert!(text.stdout.contains("DEGRADED"), "{}", text.stdout);
    // The job still runs from memory.
    wait_for(20, "b to run", || {
        p.job_log().contains(&"end b 0".to_owned())
    });
    std::fs::remove_file(&filler).unwrap();
    // The next write catches up.
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "the degraded state to clear", || {
        p.status()["degraded"].is_null()
    });
    p.settle(20);
    p.stop();
}

/// Tasks in `history --json`, newest first.
fn history_tasks(p: &Project) -> Vec<String> {
    let history: Value = p.bgtask(&["history", "--json"]).json();
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task"].as_str().unwrap().to_owned())
        .collect()
}

/// RELIABILITY 28: a run made while the disk was full reaches `history`
/// once space returns, and DEGRADED clears within 5 s of it with nothing
/// else happening.
#[test]
fn reliability_28_a_healed_disk_clears_degraded_and_history_is_complete() {
    let Some((p, small)) = small_disk() else {
        return;
    };
    p.start();
    p.bgtask(&["submit", "b"]).code(0);
    wait_for(20, "b to run", || {
        p.job_log().contains(&"end b 0".to_owned())
    });
    let filler = small.fill();
    // Queued before the disk filled: it runs while nothing can be written.
    p.file("hold-a", "");
    let _ = p.bgtask(&["submit", "a"]);
    wait_for(20, "the store to fail", || {
        !p.status()["degraded"].is_null()
    });
    let _ = std::fs::remove_file(p.path().join("hold-a"));
    wait_for(20, "a to run", || {
        p.job_log().contains(&"end a 0".to_owned())
    });
    std::fs::remove_file(&filler).unwrap();
    let healed = std::time::Instant::now();
    wait_for(20, "the degraded state to clear", || {
        p.status()["degraded"].is_null()
    });
    assert!(
        healed.elapsed() < std::time::Duration::from_secs(5),
        "DEGRADED cleared {:?} after space returned",
        healed.elapsed()
    );
    wait_for(10, "a's run in history", || {
        history_tasks(&p).contains(&"a".to_owned())
    });
    p.stop();
}

/// RELIABILITY 28: `rm -rf .bgtask` under a running daemon is noticed,
/// the database recreated with the history the daemon held, the next runs
/// recorded in it, and the whole survives a restart; said once.
#[test]
fn reliability_28_a_deleted_state_directory_is_recreated_with_its_history() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], "");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "a to run", || history_tasks(&p) == ["a"]);
    // Gone at once, as `rm -rf` ends: the daemon may write into it while a
    // recursive delete walks it.
    let gone = p.path().join("gone.bgtask");
    std::fs::rename(p.path().join(".bgtask"), &gone).unwrap();
    std::fs::remove_dir_all(&gone).unwrap_or_default();
    p.bgtask(&["submit", "b"]).code(0);
    wait_for(20, "b in history", || history_tasks(&p) == ["b", "a"]);
    assert!(p.path().join(".bgtask/state.db").is_file());
    assert!(p.path().join(".bgtask/.gitignore").is_file());
    let events = p.sql("SELECT message FROM events WHERE kind = 'health'");
    assert_eq!(
        events
            .iter()
            .filter(|m| m.contains("was deleted under the daemon"))
            .count(),
        1,
        "{events:?}"
    );
    p.stop();
    p.start();
    assert_eq!(history_tasks(&p), ["b", "a"], "kept across a restart");
    p.stop();
}

/// A jobs project whose `.bgtask` is a 2 MB tmpfs (as root; `None`
/// otherwise), unmounted when the guard goes.
fn small_disk() -> Option<(Project, Unmount)> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot mount a small filesystem to fill up");
        return None;
    }
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], "");
    let state = p.path().join(".bgtask");
    std::fs::create_dir_all(&state).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&state)
        .status()
        .unwrap();
    assert!(mounted.success());
    Some((p, Unmount(state)))
}

struct Unmount(std::path::PathBuf);

impl Unmount {
    /// Fills the small filesystem; the file to remove to free it.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "count=100"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status();
        filler
    }
}

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A report over the request frame cap (1 MiB) still comes back from
/// `show`: answers may be larger than requests.
#[test]
fn show_returns_a_report_larger_than_a_request_frame() {
    let p = Project::empty();
    p.file("src/a.txt", "x\n").config(
        r#"{"daemon": {"max_rss_mb": 100000},
            "tasks": {"many": {"analyzers": ["many"]}},
            "analyzers": {"many": {"command": "sh", "mode": "project", "parser": "regex",
              "args": ["-c", "i=0; while [ $i -lt 8000 ]; do i=$((i+1)); echo \"src/a.txt:$i: finding number $i, padded to make the report large enough\"; done"],
              "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
              "exit_codes": {"ok": [0]}, "cache": false}}}"#,
    );
    p.start();
    p.bgtask(&["submit", "many"]).code(0);
    p.settle(60);
    let run = p.sql("SELECT id, length(report) FROM runs")[0].clone();
    let (run_id, size) = run.split_once('|').unwrap();
    assert!(
        size.parse::<usize>().unwrap() > 1024 * 1024,
        "report of {size} bytes"
    );
    let shown = p.bgtask(&["show", run_id, "--format", "json"]);
    shown.code(0);
    assert_eq!(shown.json()["findings"].as_array().unwrap().len(), 8000);
    p.stop();
}
