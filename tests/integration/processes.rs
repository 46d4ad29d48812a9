//! Nothing of a job outlives it (RELIABILITY 27): analyzers that ignore
//! SIGTERM and leave `setsid` grandchildren that ignore it too, on every
//! path a job ends by — timeout, cancel, shutdown, the next start after a
//! kill -9 — and a fork storm. The fixtures mark every process they start
//! with `ESCAPE_MARKER=<project dir>` in its environment; the tests count
//! the processes carrying it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Project, running, signal, wait_for};

/// Live processes whose environment carries this project's marker.
fn marked(p: &Project) -> Vec<u32> {
    let name = p.path().file_name().unwrap().to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let ours = env.split(|b| *b == 0).any(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.starts_with("ESCAPE_MARKER=") && kv.ends_with(&name)
        });
        if ours && running(pid) {
            found.push(pid);
        }
    }
    found
}

/// Fails if any marked process is still alive after `secs`.
#[track_caller]
fn none_left_within(p: &Project, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = marked(p);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the job outlived it: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon project whose task `stubborn` runs `escape.sh` with a 2 s
/// timeout and a 1 s kill grace (the issue's repro).
fn stubborn() -> Project {
    let p = Project::empty();
    p.script("escape.sh").config(
        r#"{"execution": {"kill_grace": "1s", "max_retries": 0}, "daemon": {"max_rss_mb": 100000},
            "tasks": {"stubborn": {"analyzers": ["stubborn"]}},
            "analyzers": {"stubborn": {"command": "./bin/escape.sh", "mode": "project", "args": ["{root}"],
                                       "parser": "exit-code", "timeout": "2s", "cache": false}}}"#,
    );
    p
}

fn submit(p: &Project) -> i64 {
    let run = p.bgtask(&["submit", "--json", "stubborn"]);
    run.code(0);
    let jobs: Value = run.json();
    jobs[0]["job_id"].as_i64().unwrap()
}

/// Waits for the escaped grandchild to run; returns its pid.
fn escaped(p: &Project) -> u32 {
    wait_for(20, "the grandchild to escape", || {
        p.read("escaped").trim().parse::<u32>().is_ok()
    });
    p.read("escaped").trim().parse().unwrap()
}

#[test]
fn reliability_27_a_timed_out_job_leaves_no_process_and_frees_its_slot_in_time() {
    let p = stubborn();
    p.start();
    submit(&p);
    let grandchild = escaped(&p);
    p.settle(20);
    assert!(
        !running(grandchild),
        "the escaped grandchild outlived its job"
    );
    none_left_within(&p, 1);
    let duration: u64 = p.sql("SELECT duration_ms FROM runs")[0].parse().unwrap();
    assert!(
        duration <= 2_000 + 1_000 + 1_000,
        "the slot was freed after {duration} ms, over timeout + grace + 1 s"
    );
    p.stop();
    none_left_within(&p, 1);
}

#[test]
fn reliability_27_cancel_leaves_no_process() {
    let p = stubborn();
    p.start();
    let job = submit(&p);
    escaped(&p);
    p.bgtask(&["cancel", &job.to_string()]).code(0);
    wait_for(10, "the job to end", || {
        p.sql("SELECT state FROM jobs") == ["cancelled"]
    });
    none_left_within(&p, 1);
    p.stop();
}

#[test]
fn reliability_27_stop_with_the_job_running_leaves_no_process() {
    let p = stubborn();
    let pid = p.start();
    submit(&p);
    escaped(&p);
    p.stop();
    assert!(!running(pid));
    none_left_within(&p, 1);
}

#[test]
fn reliability_27_the_start_after_a_kill_9_kills_what_the_job_left() {
    let p = stubborn();
    // Long enough that the job still runs when the daemon is killed.
    p.config(
        &p.read(".background-tasks.json")
            .replace(r#""2s""#, r#""60s""#),
    );
    let pid = p.start();
    submit(&p);
    let grandchild = escaped(&p);
    // Recorded before it can outlive a crash.
    wait_for(10, "the escaped grandchild to be recorded", || {
        p.sql(&format!(
            "SELECT count(*) FROM processes WHERE pid = {grandchild} AND kind = 'process'"
        )) == ["1"]
    });
    signal(pid, libc::SIGKILL);
    wait_for(10, "the daemon to die", || !running(pid));
    assert!(running(grandchild), "kill -9 leaves the escaped grandchild");
    // One more escapee, born with no daemon to record it: found by the
    // token it inherited.
    p.file("late", "");
    wait_for(10, "the late escapee", || {
        p.read("late-pid").trim().parse::<u32>().is_ok()
    });
    let late: u32 = p.read("late-pid").trim().parse().unwrap();
    assert!(running(late));
    // The re-run would start the analyzer again: it finds no tool now.
    std::fs::rename(p.path().join("bin/escape.sh"), p.path().join("bin/gone.sh")).unwrap();
    p.start();
    wait_for(10, "the recovery", || {
        p.daemon_log()
            .contains("was left running by an earlier daemon")
    });
    none_left_within(&p, 2);
    p.stop();
}

#[test]
fn reliability_27_a_fork_storm_of_200_grandchildren_leaves_no_process() {
    let p = Project::empty();
    p.script("fork-storm.sh").config(
        r#"{"analyzers": {"storm": {"command": "./bin/fork-storm.sh", "mode": "project", "args": ["{root}", "200"],
                                    "parser": "exit-code", "cache": false}}}"#,
    );
    let run = p.bgtask(&["run", "storm", "--format", "json"]);
    run.code(0);
    assert_eq!(p.read("stormed").trim(), "ok");
    none_left_within(&p, 1);
}

#[test]
fn reliability_27_bgtask_run_leaves_no_process_after_a_timeout() {
    let p = Project::empty();
    p.script("escape.sh").config(
        r#"{"execution": {"kill_grace": "1s"},
            "analyzers": {"stubborn": {"command": "./bin/escape.sh", "mode": "project", "args": ["{root}"],
                                       "parser": "exit-code", "timeout": "2s", "cache": false}}}"#,
    );
    let started = Instant::now();
    let run = p.bgtask(&["run", "stubborn", "--format", "json"]);
    let took = started.elapsed();
    run.code(2);
    assert_eq!(
        crate::harness::run_of(&run.json(), "stubborn")["status"],
        "timeout"
    );
    assert!(!p.read("escaped").is_empty(), "the grandchild escaped");
    none_left_within(&p, 1);
    assert!(took < Duration::from_secs(5), "slot freed late: {took:?}");
}

#[test]
fn doctor_says_how_processes_are_cleaned_up() {
    let p = Project::empty();
    let doc: Value = p.bgtask(&["doctor", "--json"]).json();
    let how = doc["background"]["process_cleanup"].as_str().unwrap();
    assert!(how.starts_with("process tracking"), "{how}");
    let text = p.bgtask(&["doctor"]).stdout;
    assert!(
        text.contains("analyzer processes: process tracking"),
        "{text}"
    );
}
