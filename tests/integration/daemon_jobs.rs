//! Jobs in the daemon against the real binary: crash recovery, overflow,
//! coalescing, retries, permanent failures, quarantine, cancel, memory
//! limits (RELIABILITY 1, 5, 6, 7, 8, 12).

use serde_json::Value;

use crate::harness::{Project, running, signal, wait_for};

fn kill9(pid: u32) {
    signal(pid, libc::SIGKILL);
    wait_for(10, "the daemon to die", || !running(pid));
}

fn starts(p: &Project, task: &str) -> usize {
    p.job_log()
        .iter()
        .filter(|l| *l == &format!("start {task}"))
        .count()
}

fn submit_json(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["submit", "--json"];
    all.extend_from_slice(args);
    let run = p.bgtask(&all);
    run.json()
}

/// RELIABILITY 1: kill -9 with one job running and three queued.
#[test]
fn kill_9_with_jobs_queued_and_running_loses_nothing() {
    let tasks = [
        ("first", "medium"),
        ("lo", "low"),
        ("mid", "medium"),
        ("hi", "high"),
    ];
    let p = Project::jobs(&tasks, "");
    p.file("hold-first", "");
    let pid = p.start();
    p.bgtask(&["submit", "first"]).code(0);
    wait_for(20, "the first job to hold", || {
        p.read("grandchild-first").trim().parse::<u32>().is_ok()
    });
    for t in ["lo", "mid", "hi"] {
        p.bgtask(&["submit", t]).code(0);
    }
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    let order: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["task"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["hi", "mid", "lo"], "highest priority first");
    // That waiting for a busy worker costs no wakeups is checked on a
    // paused clock (`daemon::loop_tests`).
    let grandchild: u32 = p.read("grandchild-first").trim().parse().unwrap();
    kill9(pid);
    assert!(
        running(grandchild),
        "kill -9 leaves the analyzer's group behind"
    );

    p.start();
    wait_for(10, "the leftover group to be killed", || {
        !running(grandchild)
    });
    let log = p.daemon_log();
    // The grandchild, and the loop's short `sleep` if one was running.
    assert!(
        log.contains(
            "was left running by an earlier daemon; 1 leftover process(es) killed; it runs again"
        ) || log.contains(
            "was left running by an earlier daemon; 2 leftover process(es) killed; it runs again"
        ),
        "{log}"
    );
    // The re-run of `first` holds again; let it go once it has started.
    wait_for(20, "first to run again", || starts(&p, "first") == 2);
    std::fs::remove_file(p.path().join("hold-first")).unwrap();
    p.settle(30);
    let after: Vec<String> = p
        .job_log()
        .into_iter()
        .filter(|l| l.starts_with("start ") && l != "start first")
        .collect();
    assert_eq!(
        after,
        ["start hi", "start mid", "start lo"],
        "the queued ran in priority order"
    );
    assert_eq!(
        starts(&p, "first"),
        2,
        "the interrupted job ran exactly once more"
    );
    assert_eq!(
        p.sql("SELECT task, state FROM jobs ORDER BY id"),
        ["first|done", "lo|done", "mid|done", "hi|done"]
    );
    let verdicts = p.sql("SELECT task, verdict FROM runs WHERE task = 'first' ORDER BY id");
    assert_eq!(verdicts[0], "first|interrupted: the daemon stopped");
    assert_eq!(verdicts.len(), 2);
    p.stop();
}

/// The kill -9 loop: triggers accepted just before each kill all run.
#[test]
fn kill_9_loop_never_loses_an_accepted_job() {
    let names: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let tasks: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "medium")).collect();
    let p = Project::jobs(&tasks, "");
    for n in &names {
        p.file(&format!("hold-{n}"), "");
    }
    for round in 0..3 {
        let started = p.job_log().len();
        let pid = p.start();
        for n in &names[round * 2..round * 2 + 2] {
            p.bgtask(&["submit", n]).code(0);
        }
        // Kill once a job of this round is really running.
        wait_for(20, "a job to start", || p.job_log().len() > started);
        kill9(pid);
    }
    for n in &names {
        std::fs::remove_file(p.path().join(format!("hold-{n}"))).unwrap();
    }
    p.start();
    p.settle(60);
    // t0 was running at the first two kills: re-run once after the first,
    // then left alone (a job that keeps dying with the daemon might be the
    // cause). t1 was running at the third kill and re-ran. The rest were
    // only ever queued and ran once.
    let log = p.job_log();
    let count = |s: &str| log.iter().filter(|l| *l == s).count();
    assert_eq!((count("start t0"), count("end t0 0")), (2, 0), "{log:?}");
    assert_eq!((count("start t1"), count("end t1 0")), (2, 1), "{log:?}");
    for n in &names[2..] {
        assert_eq!(
            (count(&format!("start {n}")), count(&format!("end {n} 0"))),
            (1, 1),
            "{log:?}"
        );
    }
    assert_eq!(
        p.sql("SELECT task, state, note FROM jobs WHERE state != 'done'"),
        [
            "t0|dead|interrupted twice (the daemon died during its run and during the re-run); not retried"
        ]
    );
    // History and status say so, with the way back.
    let history: Value = p.bgtask(&["history", "--task", "t0", "--json"]).json();
    let verdict = history[0]["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("dead: interrupted twice") && verdict.contains("`bgtask retry "),
        "{history:#}"
    );
    let status = p.bgtask(&["status"]).stdout;
    assert!(status.contains("dead: interrupted twice"), "{status}");
    let run_id = history[0]["run_id"].to_string();
    p.bgtask(&["retry", &run_id]).code(0);
    wait_for(20, "the retried t0", || {
        p.job_log().contains(&"end t0 0".to_owned())
    });
    assert_eq!(
        p.sql("SELECT count(*) FROM jobs WHERE state = 'done'"),
        ["6"],
        "the five, and t0 retried"
    );
    p.stop();
}

/// RELIABILITY 5: a full queue drops the lowest-priority, oldest queued
/// job and records it; the running job is never dropped.
#[test]
fn a_full_queue_drops_the_lowest_oldest_and_records_it() {
    let tasks = [
        ("run", "low"),
        ("a", "low"),
        ("b", "low"),
        ("c", "high"),
        ("d", "low"),
    ];
    let p = Project::jobs(&tasks, r#""max_queue_size": 2"#);
    p.file("hold-run", "");
    p.start();
    p.bgtask(&["submit", "run"]).code(0);
    wait_for(20, "the running job", || starts(&p, "run") == 1);
    assert_eq!(submit_json(&p, &["a"])[0]["outcome"], "queued");
    assert_eq!(submit_json(&p, &["b"])[0]["outcome"], "queued");
    assert_eq!(submit_json(&p, &["c"])[0]["outcome"], "queued");
    assert_eq!(
        p.sql("SELECT task, state, note FROM jobs WHERE state = 'dropped'"),
        ["a|dropped|dropped: overflow (the queue was full at 2 waiting jobs)"]
    );
    // The oldest of the lowest goes, even when a newer one of the same
    // priority is the one arriving.
    let d = p.bgtask(&["submit", "d"]);
    assert!(d.stdout.contains("d: job"), "{}", d.stdout);
    let dropped = p.sql("SELECT task FROM jobs WHERE state = 'dropped' ORDER BY id");
    assert_eq!(dropped, ["a", "b"]);
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    let waiting: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["task"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["c", "d"]);
    assert_eq!(
        p.status()["running_jobs"][0]["task"],
        "run",
        "the running job stays"
    );
    std::fs::remove_file(p.path().join("hold-run")).unwrap();
    p.settle(30);
    assert_eq!(starts(&p, "a") + starts(&p, "b"), 0);
    p.stop();
}

/// RELIABILITY 6: a storm of triggers makes at most one waiting and one
/// running job per task; waiting duplicates merge their files.
#[test]
fn a_trigger_storm_coalesces_per_task() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], "");
    for i in 0..40 {
        p.file(&format!("src/f{i}.txt"), "x");
    }
    p.file("hold-a", "");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "a to hold", || starts(&p, "a") == 1);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (p, outcomes) = (&p, &outcomes);
            s.spawn(move || {
                for i in (t..40).step_by(4) {
                    let f = format!("src/f{i}.txt");
                    let task = if i % 2 == 0 { "a" } else { "b" };
                    let v = submit_json(p, &[task, "--files", &f]);
                    outcomes
                        .lock()
                        .unwrap()
                        .push(v[0]["outcome"].as_str().unwrap().to_owned());
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    assert_eq!(outcomes.len(), 40);
    assert_eq!(
        outcomes.iter().filter(|o| *o == "rerun_after").count(),
        1,
        "{outcomes:?}"
    );
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    let entries = queue.as_array().unwrap();
    assert_eq!(entries.len(), 2, "one waiting job per task: {queue:#}");
    for e in entries {
        assert_eq!(e["files"], 20, "{e:#}");
    }
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    p.settle(30);
    assert_eq!((starts(&p, "a"), starts(&p, "b")), (2, 1));
    assert_eq!(p.sql("SELECT count(*) FROM jobs"), ["3"]);
    p.stop();
}

/// RELIABILITY 7: transient failures are retried with backoff, each attempt
/// in history, then the job is dead with the stderr tail.
#[test]
fn transient_failures_are_retried_then_dead() {
    let p = Project::jobs(
        &[("a", "medium")],
        r#""max_retries": 2, "retry_delay": "50ms""#,
    );
    p.file("exit-a", "2");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(30);
    assert_eq!(starts(&p, "a"), 3, "one run and two retries");
    let history: Value = p.bgtask(&["history", "--json"]).json();
    let attempts: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [2, 1, 0], "newest first");
    let job = p.sql("SELECT state, attempt, replace(note, char(10), ' ') FROM jobs");
    assert_eq!(job.len(), 1);
    assert!(job[0].starts_with("dead|2|"), "{job:?}");
    assert!(
        job[0].contains("a failed with 2"),
        "the stderr tail is kept: {job:?}"
    );
    p.stop();
}

/// RELIABILITY 7: a newer trigger supersedes a pending retry.
#[test]
fn a_newer_trigger_supersedes_a_pending_retry() {
    let p = Project::jobs(
        &[("a", "medium")],
        r#""max_retries": 3, "retry_delay": "30s""#,
    );
    p.file("exit-a", "2");
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "the retry wait", || {
        p.sql("SELECT state FROM jobs") == ["retry_wait"]
    });
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    assert_eq!(queue[0]["state"], "retry_wait", "{queue:#}");
    assert!(queue[0]["ready_in_s"].as_f64().unwrap() > 0.0, "{queue:#}");
    std::fs::remove_file(p.path().join("exit-a")).unwrap();
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    assert_eq!(
        starts(&p, "a"),
        2,
        "the new trigger ran at once, the retry never did"
    );
    let jobs = p.sql("SELECT state, attempt FROM jobs ORDER BY id");
    assert_eq!(jobs.last().unwrap(), "done|0", "{jobs:?}");
    p.stop();
}

/// RELIABILITY 8: exit 126/127 are permanent: no retry.
#[test]
fn permanent_failures_are_not_retried() {
    let p = Project::jobs(
        &[("a", "medium"), ("b", "medium")],
        r#""max_retries": 3, "retry_delay": "50ms""#,
    );
    p.file("exit-a", "127").file("exit-b", "126");
    p.start();
    p.bgtask(&["submit", "a", "b"]).code(0);
    p.settle(20);
    assert_eq!((starts(&p, "a"), starts(&p, "b")), (1, 1));
    assert_eq!(p.sql("SELECT state FROM jobs"), ["failed", "failed"]);
    p.stop();
}

/// RELIABILITY 8: an analyzer that keeps crashing is quarantined; `retry`
/// lifts it.
#[test]
fn a_crashing_analyzer_is_quarantined_until_retry() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file("exit-a", "3");
    p.start();
    for i in 1..=5 {
        p.bgtask(&["submit", "a"]).code(0);
        p.settle(20);
        assert_eq!(starts(&p, "a"), i);
    }
    let s = p.status();
    assert_eq!(s["quarantined"], serde_json::json!(["job-a"]), "{s:#}");
    let health: Value = p.bgtask(&["health", "--json"]).json();
    let q = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "quarantine")
        .unwrap();
    assert_eq!(q["level"], "warning", "{health:#}");
    assert!(
        p.daemon_log()
            .contains("quarantined after 5 crashes in a row")
    );

    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    assert_eq!(starts(&p, "a"), 5, "a quarantined analyzer does not run");
    let run_id = p.sql("SELECT max(id) FROM runs")[0].clone();
    std::fs::remove_file(p.path().join("exit-a")).unwrap();
    let retried = p.bgtask(&["retry", &run_id]);
    retried.code(0);
    p.settle(20);
    assert_eq!(starts(&p, "a"), 6, "retry lifted the quarantine");
    assert_eq!(p.status()["quarantined"], serde_json::json!([]));
    p.stop();
}

#[test]
fn cancel_a_waiting_and_a_running_job() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], r#""max_retries": 3"#);
    p.file("hold-a", "");
    p.start();
    let a = submit_json(&p, &["a"])[0]["job_id"].as_i64().unwrap();
    wait_for(20, "a to hold", || {
        p.read("grandchild-a").trim().parse::<u32>().is_ok()
    });
    let grandchild: u32 = p.read("grandchild-a").trim().parse().unwrap();
    let b = submit_json(&p, &["b"])[0]["job_id"].as_i64().unwrap();
    let run = p.bgtask(&["cancel", &b.to_string()]);
    run.code(0);
    assert_eq!(
        run.stdout.trim(),
        format!("cancelled job {b} (it was waiting)")
    );
    let run = p.bgtask(&["cancel", &a.to_string()]);
    run.code(0);
    assert_eq!(
        run.stdout.trim(),
        format!("cancelled job {a} (it was running)")
    );
    wait_for(10, "the job's processes to die", || !running(grandchild));
    p.settle(10);
    assert_eq!(
        p.sql("SELECT state FROM jobs ORDER BY id"),
        ["cancelled", "cancelled"]
    );
    assert_eq!(
        (starts(&p, "a"), starts(&p, "b")),
        (1, 0),
        "not retried, not run"
    );
    let again = p.bgtask(&["cancel", &a.to_string()]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("is not waiting or running"),
        "{}",
        again.stderr
    );
    let missing = p.bgtask(&["cancel", "9999"]);
    assert!(missing.stderr.contains("no job 9999"), "{}", missing.stderr);
    p.stop();
}

/// Issue item 9 / RELIABILITY 12: over its memory limit a job is killed as
/// `oom` and not retried; its peak RSS is recorded.
#[test]
fn a_job_over_its_memory_limit_is_killed_and_not_retried() {
    let p = Project::empty();
    p.script("eat-memory.py").config(
        r#"{"execution": {"max_retries": 3, "retry_delay": "50ms"}, "resource_limits": {"max_memory_mb": 64},
            "daemon": {"max_rss_mb": 100000},
            "tasks": {"hog": {"analyzers": ["hog"]}},
            "analyzers": {"hog": {"command": "./bin/eat-memory.py", "mode": "project", "parser": "exit-code"}}}"#,
    );
    p.start();
    p.bgtask(&["submit", "hog"]).code(0);
    p.settle(60);
    assert_eq!(p.sql("SELECT state FROM jobs"), ["failed"]);
    let runs = p.sql("SELECT count(*), max(peak_rss_kb) FROM runs");
    let (count, peak) = runs[0].split_once('|').unwrap();
    assert_eq!(count, "1", "not retried");
    assert!(
        peak.parse::<u64>().unwrap() >= 64 * 1024,
        "peak RSS recorded: {peak}"
    );
    let run_id = p.sql("SELECT id FROM runs")[0].clone();
    let report: Value = p.bgtask(&["show", &run_id, "--format", "json"]).json();
    assert_eq!(report["runs"][0]["status"], "oom", "{report:#}");
    p.stop();
}

/// Issue item 9: while the daemon's own memory is over `max_rss_mb`, new
/// jobs wait (and `status` says why); raising the limit lets them run.
#[test]
fn jobs_wait_while_the_daemon_is_over_its_memory_threshold() {
    let p = Project::jobs(&[("a", "medium")], "");
    let config = p.read(".background-tasks.json");
    p.config(&config.replace(r#""max_rss_mb": 100000"#, r#""max_rss_mb": 1"#));
    p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(10, "the hold to show", || p.status()["holding"].is_string());
    let s = p.status();
    assert!(
        s["holding"]
            .as_str()
            .unwrap()
            .contains("over daemon.max_rss_mb 1"),
        "{s:#}"
    );
    assert_eq!(s["queue_depth"], 1);
    assert!(p.bgtask(&["status"]).stdout.contains("new jobs wait"));
    // How often a held-back queue is looked at is checked on a paused
    // clock (`daemon::loop_tests`); here, that nothing started meanwhile.
    // (Each `status` is a turn of the loop, which looks at the queue.)
    let turns = p.status()["loop_turns"].as_u64().unwrap();
    assert!(p.status()["loop_turns"].as_u64().unwrap() > turns);
    assert_eq!(starts(&p, "a"), 0, "held back");
    p.config(&config);
    p.settle(20);
    assert_eq!(starts(&p, "a"), 1);
    assert!(p.status()["holding"].is_null());
    p.stop();
}

/// RELIABILITY 1–2: kill -9 in the middle of a storm of triggers. The
/// database is intact, and every trigger the daemon acknowledged is there
/// after the restart.
#[test]
fn kill_9_during_a_trigger_storm_keeps_every_acknowledged_trigger() {
    use std::io::{Read, Write};
    let p = Project::jobs(&[("a", "medium")], "");
    for i in 0..2000 {
        p.file(&format!("src/f{i}.txt"), "");
    }
    p.file("hold-a", "");
    let pid = p.start();
    let socket = p.socket();
    let acked = std::thread::scope(|s| {
        let storm = s.spawn(|| {
            let mut acked = Vec::new();
            let Ok(mut conn) = std::os::unix::net::UnixStream::connect(&socket) else {
                return acked;
            };
            for i in 0..2000 {
                let body = format!(
                    r#"{{"v":1,"body":{{"op":"submit","tasks":["a"],"files":["src/f{i}.txt"],"priority":null,"source":{{"kind":"manual","command":"storm"}},"debounce":false}}}}"#
                );
                let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
                frame.extend_from_slice(body.as_bytes());
                let mut len = [0u8; 4];
                if conn.write_all(&frame).is_err() || conn.read_exact(&mut len).is_err() {
                    break;
                }
                let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
                if conn.read_exact(&mut reply).is_err() {
                    break;
                }
                if String::from_utf8_lossy(&reply).contains(r#""kind":"submitted""#) {
                    acked.push(format!("src/f{i}.txt"));
                }
            }
            acked
        });
        std::thread::sleep(std::time::Duration::from_millis(150));
        kill9(pid);
        storm.join().unwrap()
    });
    assert!(acked.len() > 10, "the storm got going: {}", acked.len());
    assert!(acked.len() < 2000, "the kill landed mid-storm");
    assert_eq!(p.sql("PRAGMA integrity_check"), ["ok"]);
    p.start();
    let saved: std::collections::BTreeSet<String> = p
        .sql("SELECT CAST(path AS TEXT) FROM job_files")
        .into_iter()
        .collect();
    for f in &acked {
        assert!(saved.contains(f), "{f} was acknowledged but is not saved");
    }
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    p.settle(30);
    p.stop();
}

/// Adaptive priority: a task whose last runs failed moves up the queue,
/// and `queue` says why.
#[test]
fn repeated_failures_raise_a_task_and_queue_says_why() {
    let p = Project::jobs(&[("a", "low"), ("b", "medium"), ("block", "medium")], "");
    p.file("exit-a", "3");
    p.start();
    for i in 1..=3 {
        p.bgtask(&["submit", "a"]).code(0);
        p.settle(20);
        assert_eq!(starts(&p, "a"), i);
    }
    p.file("hold-block", "");
    p.bgtask(&["submit", "block"]).code(0);
    wait_for(20, "block to hold", || starts(&p, "block") == 1);
    p.bgtask(&["submit", "b", "a"]).code(0);
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    let a = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["task"] == "a")
        .unwrap();
    assert_eq!(a["score"], 150, "low (100) + 50: {queue:#}");
    assert_eq!(a["why"], "+50: the last 3 runs failed");
    assert_eq!(queue[0]["task"], "b", "medium (200) still goes first");
    let text = p.bgtask(&["queue"]);
    assert!(
        text.stdout
            .contains("priority adjusted +50: the last 3 runs failed"),
        "{}",
        text.stdout
    );
    std::fs::remove_file(p.path().join("hold-block")).unwrap();
    p.settle(20);
    p.stop();
}
