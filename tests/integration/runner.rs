//! Misbehaving analyzers through `bgtask run` (RELIABILITY 9–14).

use std::time::{Duration, Instant};

use crate::harness::{Project, run_of, running};

fn pids(p: &Project) -> Vec<u32> {
    p.read("pids")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect()
}

fn dead_soon(pid: u32) -> bool {
    (0..100).any(|_| {
        let alive = running(pid);
        if alive {
            std::thread::sleep(Duration::from_millis(10));
        }
        !alive
    })
}

#[test]
fn timeout_kills_an_analyzer_that_ignores_sigterm_and_its_grandchild() {
    let p = Project::empty();
    p.script("ignore-sigterm.sh").config(
        r#"{"execution": {"kill_grace": "500ms"},
            "analyzers": {"stubborn": {"command": "./bin/ignore-sigterm.sh", "mode": "project", "args": ["{root}/pids"], "parser": "exit-code", "timeout": "1s"}}}"#,
    );
    let started = Instant::now();
    let run = p.bgtask(&["run", "stubborn", "--format", "json"]);
    let took = started.elapsed();
    run.code(2);
    let report = run.json();
    let r = run_of(&report, "stubborn");
    assert_eq!(r["status"], "timeout");
    assert!(
        r["reason"].as_str().unwrap().contains("timed out after 1s"),
        "{r:#}"
    );
    assert!(took < Duration::from_secs(3), "slot freed late: {took:?}");
    for pid in pids(&p) {
        assert!(dead_soon(pid), "pid {pid} outlived the run");
    }
}

#[test]
fn grandchildren_do_not_outlive_the_run_even_after_setsid() {
    let p = Project::empty();
    p.script("grandchildren.sh").config(
        r#"{"analyzers": {"leaky": {"command": "./bin/grandchildren.sh", "mode": "project", "args": ["{root}/pids"], "parser": "exit-code"}}}"#,
    );
    let started = Instant::now();
    let run = p.bgtask(&["run", "leaky", "--format", "json"]);
    run.code(0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a grandchild held the pipes"
    );
    assert_eq!(run_of(&run.json(), "leaky")["status"], "clean");
    for pid in pids(&p) {
        assert!(dead_soon(pid), "pid {pid} outlived the run");
    }
}

#[test]
fn a_2_gb_flood_without_newlines_is_capped_and_memory_stays_flat() {
    let p = Project::empty();
    p.script("flood.sh").config(
        r#"{"analyzers": {"flood": {"command": "./bin/flood.sh", "mode": "project", "args": ["2147483648"], "parser": "exit-code", "exit_codes": {"ok": [], "findings": [0]}}}}"#,
    );
    let mut child = p
        .command(&["run", "flood", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0u64;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(hwm) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kb = peak_kb.max(hwm.split_whitespace().nth(1).unwrap().parse().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let report: serde_json::Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    let f = &report["findings"][0];
    // The finding quotes the end of the output, never the whole flood.
    assert!(
        f["message"].as_str().unwrap().chars().count() < 1000,
        "{}",
        f["message"]
    );
    assert!(f["message"].as_str().unwrap().contains("flood done"));
    assert!(
        peak_kb < 64 * 1024,
        "bgtask peaked at {peak_kb} KiB while 2 GiB went through"
    );
}

#[test]
fn analyzers_get_no_stdin_and_no_terminal() {
    let p = Project::empty();
    p.script("read-stdin.sh").config(
        r#"{"analyzers": {"reader": {"command": "./bin/read-stdin.sh", "mode": "project", "parser": "exit-code"}}}"#,
    );
    let report = p
        .bgtask(&["run", "reader", "--format", "json"])
        .code(0)
        .json();
    assert_eq!(run_of(&report, "reader")["status"], "clean");
}

#[test]
fn a_memory_eater_is_killed_at_the_limit() {
    let p = Project::empty();
    p.script("eat-memory.py").config(
        r#"{"resource_limits": {"max_memory_mb": 200},
            "analyzers": {"hog": {"command": "./bin/eat-memory.py", "mode": "project", "parser": "exit-code"}}}"#,
    );
    let run = p.bgtask(&["run", "hog", "--format", "json"]);
    run.code(2);
    let r = run.json();
    let hog = run_of(&r, "hog");
    assert_eq!(hog["status"], "oom");
    assert!(hog["peak_rss_kb"].as_u64().unwrap() > 200 * 1024);
    assert!(
        hog["reason"]
            .as_str()
            .unwrap()
            .contains("over the memory limit of 200 MiB")
    );
}

#[test]
fn git_variables_are_scrubbed_and_colour_is_off() {
    let p = Project::empty()
        .env("GIT_DIR", "/nonexistent/.git")
        .env("GIT_INDEX_FILE", ".git/index.lock")
        .env("GIT_AUTHOR_NAME", "someone")
        .env("FORCE_COLOR", "1");
    p.script("print-env.sh").config(
        r#"{"analyzers": {"env": {"command": "./bin/print-env.sh", "mode": "project", "parser": "regex",
            "regex": {"pattern": "^env:1: (?P<message>.*)$"}, "exit_codes": {"ok": [0]}, "cache": false}}}"#,
    );
    let report = p.bgtask(&["run", "env", "--format", "json"]).json();
    let msgs: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["NO_COLOR=1", "BGTASK=0"]);
}

#[test]
fn long_file_lists_are_split_into_batches_and_merged() {
    let p = Project::empty();
    p.script("count-runs.sh").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"},
            "exit_codes": {"ok": [0]}, "batch_size": 2}}}"#,
    );
    for i in 0..5 {
        p.file(&format!("f{i}.txt"), "x\n");
    }
    p.file("-starts-with-dash.txt", "x\n");
    let report = p
        .bgtask(&["run", "counter", "--format", "json"])
        .code(0)
        .json();
    let r = run_of(&report, "counter");
    assert_eq!(r["invocations"], 3);
    assert_eq!(r["files"], 6);
    assert_eq!(p.read("runs.log").lines().count(), 3);
    let paths: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "-starts-with-dash.txt",
            "f0.txt",
            "f1.txt",
            "f2.txt",
            "f3.txt",
            "f4.txt"
        ]
    );
}

#[test]
fn a_missing_tool_is_not_installed_with_a_hint_never_clean_or_failed() {
    let p = Project::empty();
    p.file("a.py", "x = 1\n").config(
        r#"{"tasks": {"check": {"analyzers": ["ghost"]}},
            "analyzers": {"ghost": {"command": "ghost-analyzer-that-does-not-exist", "files": ["*.py"], "args": ["{files}"],
              "parser": "exit-code", "install": {"hint": "pip install ghost-analyzer"}}}}"#,
    );
    let run = p.bgtask(&["run", "check"]);
    run.code(0);
    assert!(run.stdout.contains("not installed"), "{}", run.stdout);
    assert!(
        run.stdout.contains("install: pip install ghost-analyzer"),
        "{}",
        run.stdout
    );
    let report = p.bgtask(&["run", "check", "--format", "json"]).json();
    assert_eq!(run_of(&report, "ghost")["status"], "not_installed");
    p.bgtask(&["run", "check", "--strict-tools"]).code(3);
    let named = p.bgtask(&["run", "ghost"]);
    named.code(3);
    assert!(
        named
            .stdout
            .contains("not installed (named explicitly): ghost"),
        "{}",
        named.stdout
    );
}

#[test]
fn a_tool_whose_version_probe_fails_is_not_installed() {
    let p = Project::empty();
    p.file("a.txt", "x\n").file(
        "bin/half-installed.sh",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ModuleNotFoundError: No module named halfmod' >&2; exit 1; fi\nexit 0\n",
    );
    std::fs::set_permissions(
        p.path().join("bin/half-installed.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    p.config(
        r#"{"analyzers": {"half": {"command": "./bin/half-installed.sh", "version": {"args": ["--version"]}, "mode": "project",
            "parser": "exit-code", "install": {"hint": "pip install halfmod"}}}}"#,
    );
    let run = p.bgtask(&["run", "half", "--format", "json"]);
    run.code(3);
    let r = run.json();
    let half = run_of(&r, "half");
    assert_eq!(half["status"], "not_installed");
    let reason = half["reason"].as_str().unwrap();
    assert!(reason.starts_with("pip install halfmod ("), "{reason}");
    assert!(reason.contains("No module named halfmod"), "{reason}");
}

#[test]
fn ctrl_c_stops_analyzers_gracefully_and_exits_130() {
    let p = Project::empty();
    p.script("ignore-sigterm.sh").config(
        r#"{"execution": {"kill_grace": "300ms"},
            "analyzers": {"stubborn": {"command": "./bin/ignore-sigterm.sh", "mode": "project", "args": ["{root}/pids"], "parser": "exit-code"}}}"#,
    );
    let child = p
        .command(&["run", "stubborn", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the analyzer is running, then interrupt bgtask.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.read("pids").is_empty() {
        assert!(Instant::now() < deadline, "analyzer never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run_of(&report, "stubborn")["status"], "cancelled");
    for pid in pids(&p) {
        assert!(dead_soon(pid), "pid {pid} outlived the interrupted run");
    }
}

#[test]
fn odd_file_names_and_a_symlinked_root() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::empty();
    p.script("count-runs.sh").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}, "exit_codes": {"ok": [0]}}}}"#,
    );
    p.file("plain.txt", "x\n")
        .file("deep/a/b/c/d/e/f/g.txt", "x\n")
        .file("-rf.txt", "x\n");
    std::fs::write(
        p.path().join(std::ffi::OsStr::from_bytes(b"latin\xe9.txt")),
        "x\n",
    )
    .unwrap();
    std::fs::write(p.path().join("new\nline.txt"), "x\n").unwrap();
    let link = tempfile::tempdir().unwrap();
    let linked = link.path().join("repo");
    std::os::unix::fs::symlink(p.path(), &linked).unwrap();
    let out = p
        .command(&[
            "-C",
            linked.to_str().unwrap(),
            "run",
            "counter",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = run_of(&report, "counter");
    assert_eq!(r["status"], "findings");
    assert_eq!(r["files"], 5, "every file was passed to the tool");
    let paths: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["path"].as_str().unwrap())
        .collect();
    for want in [
        "-rf.txt",
        "deep/a/b/c/d/e/f/g.txt",
        "latin\u{fffd}.txt",
        "plain.txt",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert_eq!(p.read("runs.log").lines().count(), 1);
}

#[test]
fn analyzers_run_in_parallel_up_to_the_limit() {
    let p = Project::empty();
    p.script("stamp.sh").config(
        r#"{"tasks": {"both": {"analyzers": ["one", "two", "three"]}},
            "analyzers": {
              "one": {"command": "./bin/stamp.sh", "mode": "project", "args": ["{root}/stamps"], "parser": "exit-code", "cache": false},
              "two": {"command": "./bin/stamp.sh", "mode": "project", "args": ["{root}/stamps"], "parser": "exit-code", "cache": false},
              "three": {"command": "./bin/stamp.sh", "mode": "project", "args": ["{root}/stamps"], "parser": "exit-code", "cache": false}}}"#,
    );
    let most_at_once = |p: &Project| {
        let spans: Vec<(u128, u128)> = p
            .read("stamps")
            .lines()
            .map(|l| {
                let mut it = l.split_whitespace().map(|n| n.parse::<u128>().unwrap());
                (it.next().unwrap(), it.next().unwrap())
            })
            .collect();
        assert_eq!(spans.len(), 3);
        spans
            .iter()
            .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
            .max()
            .unwrap()
    };
    p.bgtask(&["run", "both", "-j", "2"]).code(0);
    assert_eq!(most_at_once(&p), 2, "two at a time with -j 2");
    std::fs::remove_file(p.path().join("stamps")).unwrap();
    p.bgtask(&["run", "both", "-j", "1"]).code(0);
    assert_eq!(most_at_once(&p), 1, "one at a time with -j 1");
}
