//! The file watcher against real files and real git: saves, atomic saves,
//! bursts, ignored trees, a 10 000-file checkout, analyzers writing into
//! the tree, commits without hooks, a low watch limit (RELIABILITY 6, 24).

use std::time::Duration;

use crate::harness::{Project, wait_for};

const WATCH: &str =
    r#""triggers": {"file_watch": {"debounce": "200ms"}, "git_hooks": {"autostart": false}}"#;

fn watched_project(tasks: &[(&str, &str)]) -> Project {
    let p = Project::triggered(tasks, WATCH);
    p.file("a.py", "a = 1\n").file("b.py", "b = 1\n");
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p
}

#[test]
fn a_save_an_atomic_save_and_a_burst_are_one_run_each() {
    let p = watched_project(&[("lint", r#"["save"]"#)]);
    p.start();
    let w = p.wait_watching();
    assert_eq!(w["state"], "watching", "{w}");
    p.file("a.py", "a = 2\n");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    // An editor's atomic save: write a temporary file, rename it over.
    p.file("b.py.saving", "b = 2\n");
    std::fs::rename(p.path().join("b.py.saving"), p.path().join("b.py")).unwrap();
    assert_eq!(p.wait_records(2)[1], "lint [b.py]");
    // 50 writes in 100 ms over five files.
    for i in 0..50 {
        p.file(&format!("burst{}.py", i % 5), &format!("n = {i}\n"));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        p.wait_records(3)[2],
        "lint [burst0.py] [burst1.py] [burst2.py] [burst3.py] [burst4.py]"
    );
    // A new directory with files in it.
    p.file("pkg/deep/er/c.py", "c = 1\n");
    assert_eq!(p.wait_records(4)[3], "lint [pkg/deep/er/c.py]");
    p.stop();
}

#[test]
fn ignored_trees_get_no_watches_and_never_trigger() {
    let p = watched_project(&[("lint", r#"["save"]"#)]);
    p.file(".gitignore", "record.log\nruns.log\nbuild/\n");
    for i in 0..100 {
        p.file(&format!("node_modules/pkg{i}/lib/index.py"), "");
        p.file(&format!("build/out{i}/gen.py"), "");
    }
    p.start();
    let w = p.wait_watching();
    let watched = w["watched"].as_u64().unwrap();
    assert!(watched < 10, "no watches in ignored trees: {w}");
    p.file("node_modules/pkg1/lib/index.py", "x = 1\n");
    p.file("build/out1/gen.py", "x = 1\n");
    p.file("node_modules/new/thing.py", "x = 1\n");
    p.file(".venv/lib/site.py", "x = 1\n");
    p.file("src/__pycache__/a.cpython-311.pyc", "x");
    p.file("a.py~", "backup");
    p.file(".a.py.swp", "swap");
    // The one save that counts comes right after: had any of those been
    // taken, the run would name it too, or a second run would follow.
    p.file("a.py", "a = 3\n");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    p.stop();
}

#[test]
fn an_analyzer_writing_into_the_tree_does_not_retrigger_itself() {
    let p = watched_project(&[("tests", r#"["save"]"#)]);
    // Like a test runner: caches, bytecode, coverage data, a report.
    p.file(
        "bin/record.sh",
        "#!/bin/sh\nname=\"$1\"; dir=\"$2\"; shift 2\nline=\"$name\"; for f in \"$@\"; do line=\"$line [$f]\"; done\n\
         printf '%s\\n' \"$line\" >> \"$dir/record.log\"\n\
         mkdir -p \"$dir/.pytest_cache/v\" \"$dir/__pycache__\" \"$dir/htmlcov\"\n\
         echo x > \"$dir/.pytest_cache/v/last\"; echo x > \"$dir/__pycache__/a.cpython-311.pyc\"\n\
         echo x > \"$dir/.coverage\"; echo x > \"$dir/htmlcov/index.py\"; echo x > \"$dir/report.xml\"\n",
    );
    std::process::Command::new("chmod")
        .args(["+x", p.path().join("bin/record.sh").to_str().unwrap()])
        .status()
        .unwrap();
    // What the task runs changed: trust it again.
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.wait_watching();
    p.file("a.py", "a = 2\n");
    // Exactly one, with the daemon seen idle after the watcher's window.
    let got = p.wait_records(1);
    assert_eq!(got, ["tests [a.py]"], "one run, not a loop");
    p.stop();
}

#[test]
fn a_commit_from_a_client_without_hooks_is_noticed() {
    let p = watched_project(&[("lint", r#"["commit"]"#)]);
    p.start();
    p.wait_watching();
    p.file("a.py", "a = 5\n").file("new.py", "n = 1\n");
    p.commit_all("no hooks here");
    assert_eq!(p.wait_records(1), ["lint [a.py] [new.py]"]);
    let history = p.bgtask(&["history", "--json"]).json();
    assert_eq!(history[0]["trigger"], "head moved", "{history}");
    p.stop();
}

/// Without hooks, what moved HEAD (its reflog) says which tasks run: a
/// branch switch starts the checkout tasks, not the commit ones.
#[test]
fn a_branch_switch_from_a_client_without_hooks_is_a_checkout() {
    let p = watched_project(&[("lint", r#"["commit"]"#), ("tests", r#"["checkout"]"#)]);
    p.git(&["checkout", "-q", "-b", "topic"]);
    p.file(
        "a.py", "a = 6
",
    );
    p.commit_all("on topic");
    p.git(&["checkout", "-q", "-"]);
    p.start();
    p.wait_watching();
    p.git(&["checkout", "-q", "topic"]);
    assert_eq!(p.wait_records(1), ["tests [a.py]"]);
    p.stop();
}

/// A checkout's analysis starts from the files the watcher saw git write;
/// git's own list, read after, brings the ones it does not watch.
#[test]
fn a_checkout_starts_from_what_the_watcher_saw_and_git_adds_what_it_did_not() {
    let p = Project::triggered(
        &[("tests", r#"["checkout"]"#)],
        r#""triggers": {"file_watch": {"debounce": "200ms", "exclude_paths": ["vendor/**"]}, "git_hooks": {"autostart": false}}"#,
    );
    p.file("a.py", "a = 1\n").file("vendor/v.py", "v = 1\n");
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.git(&["checkout", "-q", "-b", "topic"]);
    p.file("a.py", "a = 2\n").file("vendor/v.py", "v = 2\n");
    p.commit_all("on topic");
    p.git(&["checkout", "-q", "-"]);
    p.start();
    p.wait_watching();
    p.git(&["checkout", "-q", "topic"]);
    let got = p.wait_records(2);
    assert_eq!(
        got,
        ["tests [a.py]", "tests [vendor/v.py]"],
        "{}",
        p.daemon_log()
    );
    std::thread::sleep(Duration::from_secs(1));
    p.wait_idle();
    assert_eq!(p.records().len(), 2, "nothing more after the checkout");
    p.stop();
}

/// DESIGN: one run per affected task after a checkout of 10 000 files,
/// with the hooks installed too (the post-checkout hook and the watcher
/// both see it).
#[test]
fn a_checkout_of_ten_thousand_files_is_one_run_per_task() {
    let p = Project::triggered(
        &[
            ("lint", r#"["save", "checkout"]"#),
            ("tests", r#"["checkout"]"#),
        ],
        r#""triggers": {"file_watch": {"debounce": "300ms"}}"#,
    );
    let generate = |marker: &str| {
        for d in 0..100 {
            let dir = p.path().join(format!("src/d{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..100 {
                std::fs::write(dir.join(format!("m{f}.py")), format!("v = '{marker}'\n")).unwrap();
            }
        }
    };
    generate("main");
    p.commit_all("main");
    p.git(&["checkout", "-q", "-b", "storm"]);
    generate("storm");
    p.commit_all("storm");
    p.git(&["checkout", "-q", "main"]);
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    let w = p.wait_watching();
    assert!(w["watched"].as_u64().unwrap() >= 100, "{w}");
    p.git(&["checkout", "-q", "storm"]);
    let got = p.wait_records(2);
    let lint: Vec<&String> = got.iter().filter(|l| l.starts_with("lint ")).collect();
    let tests: Vec<&String> = got.iter().filter(|l| l.starts_with("tests ")).collect();
    assert_eq!(
        (lint.len(), tests.len()),
        (1, 1),
        "{:#?}\n{}",
        got.iter()
            .map(|l| l.chars().take(120).collect::<String>())
            .collect::<Vec<_>>(),
        p.daemon_log()
    );
    assert_eq!(
        lint[0].matches(" [src/").count(),
        10_000,
        "every changed file, once"
    );
    std::thread::sleep(Duration::from_secs(2));
    p.wait_idle();
    assert_eq!(p.records().len(), 2, "nothing more after the checkout");
    p.stop();
}

/// RELIABILITY 24: a watch limit too low for the tree (in a user namespace
/// of its own) degrades to polling, says which limit and how to raise it,
/// and still sees saves.
#[test]
fn a_low_watch_limit_degrades_to_polling_with_the_fix() {
    let p = watched_project(&[("lint", r#"["save"]"#)]);
    for i in 0..30 {
        p.file(&format!("pkg{i}/m.py"), "m = 1\n");
    }
    let probe = std::process::Command::new("unshare")
        .args(["-U", "-r", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no unprivileged user namespaces here (unshare -U -r failed)");
        return;
    }
    let mut cmd = p.command(&[]);
    let bin = crate::harness::bgtask_bin();
    cmd = {
        let mut c = std::process::Command::new("unshare");
        c.args([
            "-U",
            "-r",
            "sh",
            "-c",
            &format!(
                "echo 10 > /proc/sys/user/max_inotify_watches && exec {bin} start --foreground"
            ),
        ])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    };
    let mut daemon = cmd.spawn().unwrap();
    let w = p.wait_watching();
    assert_eq!(w["state"], "degraded", "{w}");
    let msg = w["message"].as_str().unwrap();
    assert!(msg.contains("max_inotify_watches=10"), "{msg}");
    assert!(
        msg.contains("sudo sysctl fs.inotify.max_user_watches="),
        "{msg}"
    );
    assert!(w["polled"].as_u64().unwrap() > 0, "{w}");
    // Saves in polled directories are still seen (within the poll
    // interval), as well as in watched ones: every file shows up in a run.
    for i in 0..30 {
        p.file(&format!("pkg{i}/m.py"), "m = 2\n");
    }
    wait_for(30, "runs covering all 30 files", || {
        let all = p.records().join(" ");
        (0..30).all(|i| all.contains(&format!("[pkg{i}/m.py]")))
    });
    let health = p.bgtask(&["status"]);
    assert!(health.stdout.contains("degraded"), "{}", health.stdout);
    p.bgtask(&["stop"]).code(0);
    let _ = daemon.wait();
}

/// `bgtask watch`: the daemon in the terminal, one line per result on
/// stdout; `logs --follow` ends with the run's notification line.
#[test]
fn watch_mode_prints_a_line_per_result_and_logs_follow_ends_with_it() {
    let p = Project::triggered(&[("lint", r#"["save"]"#)], WATCH);
    let config = p.read(".background-tasks.json").replace(
        r#""triggers": ["save"]}"#,
        r#""triggers": ["save"], "notify": {"on_complete": true}}"#,
    );
    p.config(&config);
    p.file("a.py", "a = 1\n");
    p.commit_all("setup");
    let out_path = p.path().join("watch.out");
    let mut watch = p
        .command(&["watch", "--trust"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    p.wait_watching();
    let banner = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        banner.contains("watching ") && banner.contains("save: lint"),
        "{banner}"
    );
    p.file("a.py", "a = 2\n");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    wait_for(10, "the result line", || {
        std::fs::read_to_string(&out_path).is_ok_and(|t| t.lines().count() >= 2)
    });
    let text = std::fs::read_to_string(&out_path).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(line.contains("INFO") && line.contains("lint"), "{text}");
    let follow = p.bgtask(&["logs", "1", "--follow"]);
    follow.code(0);
    assert!(
        follow.stdout.lines().last().unwrap().contains("lint"),
        "{}",
        follow.stdout
    );
    p.bgtask(&["stop"]).code(0);
    let _ = watch.wait();
}

/// Where inotify cannot see other machines' changes (a network
/// filesystem; forced here with `BGTASK_WATCH=poll`), the tree is polled,
/// and saves still run.
#[test]
fn a_polled_tree_still_sees_saves() {
    let p = watched_project(&[("lint", r#"["save"]"#)]).env("BGTASK_WATCH", "poll");
    p.start();
    let w = p.wait_watching();
    assert_eq!(w["state"], "polling", "{w}");
    assert_eq!(w["watched"], 0, "{w}");
    assert!(
        w["message"].as_str().unwrap().contains("polling every 2s"),
        "{w}"
    );
    p.file("a.py", "a = 9\n");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    p.stop();
}

/// The daemon keeps the project's file list between jobs (a save does not
/// walk the whole tree before its analyzer starts): files that appear, go,
/// or leave with their directory are in the next job's list exactly as a
/// fresh walk has them.
#[test]
fn the_kept_file_list_follows_creates_deletes_and_moved_directories() {
    let p = Project::empty();
    p.file("a.py", "")
        .file("pkg/b.py", "")
        .file("pkg/sub/c.py", "");
    p.config(
        r#"{"tasks": {"count": {"analyzers": ["count"], "triggers": ["save"]}},
            "analyzers": {"count": {"command": "true", "mode": "project", "files": ["*.py"],
              "parser": "exit-code", "cache": false}},
            "triggers": {"file_watch": {"debounce": "100ms"}, "git_hooks": {"autostart": false}}}"#,
    );
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.wait_watching();
    let files_seen = |runs: usize| -> u64 {
        let mut report = serde_json::Value::Null;
        wait_for(20, &format!("run {runs} to end"), || {
            let shown = p.bgtask(&["show", &runs.to_string(), "--format", "json"]);
            if shown.code == 0 {
                report = shown.json();
            }
            shown.code == 0
        });
        report["runs"][0]["files"].as_u64().unwrap()
    };
    let walked = || -> u64 {
        let report: serde_json::Value = p.bgtask(&["run", "count", "--format", "json"]).json();
        report["runs"][0]["files"].as_u64().unwrap()
    };
    p.file("a.py", "a = 1\n");
    assert_eq!(files_seen(1), 3);
    p.file("pkg/d.py", "");
    assert_eq!(files_seen(2), 4);
    std::fs::remove_file(p.path().join("a.py")).unwrap();
    assert_eq!(files_seen(3), 3);
    // A directory renamed out of the tree is one event for the directory.
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(p.path().join("pkg/sub"), outside.path().join("sub")).unwrap();
    assert_eq!(files_seen(4), 2);
    assert_eq!(walked(), 2);
    // And one moved in brings its files.
    std::fs::rename(outside.path().join("sub"), p.path().join("back")).unwrap();
    assert_eq!(files_seen(5), 3);
    assert_eq!(walked(), 3);
    p.stop();
}
