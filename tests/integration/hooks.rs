//! Git hooks against real git: installation (chaining, hooksPath,
//! worktrees, submodules), every kind of commit, the spool and autostart,
//! the kill switches, gating (RELIABILITY 19, 23).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Project, wait_for};

const NO_WATCH: &str = r#""triggers": {"file_watch": {"enabled": false}}"#;

fn lint_project() -> Project {
    let p = Project::triggered(&[("lint", r#"["commit", "merge"]"#)], NO_WATCH);
    p.commit_all("setup");
    p
}

#[test]
fn install_chains_an_existing_hook_is_idempotent_and_uninstall_restores_it() {
    let p = lint_project();
    let theirs = "#!/bin/sh\necho theirs >> \"$PWD/theirs.log\"\nexit 3\n";
    let hook = p.path().join(".git/hooks/post-commit");
    std::fs::write(&hook, theirs).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o750)).unwrap();

    let run = p.bgtask(&["install-hooks", "--no-start"]);
    run.code(0);
    assert!(
        run.stdout
            .contains("installed post-commit; the hook that was there runs first"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("trusted this worktree"),
        "{}",
        run.stdout
    );
    // The hook is the fast client itself (no shell on a commit), found
    // beside the binary that installed it.
    let fast = std::path::Path::new(crate::harness::bgtask_bin()).with_file_name("bgtask-hook");
    assert_eq!(std::fs::read_link(&hook).unwrap(), fast);
    let chained = p.path().join(".git/hooks/post-commit.bgtask-chained");
    assert_eq!(std::fs::read_to_string(&chained).unwrap(), theirs);

    assert_reinstall_is_up_to_date(&p);
    assert_chained_hooks_run_first(&p, &hook);
    p.file("a.py", "x = 1\n");
    p.commit_all("one");
    assert_eq!(p.read("theirs.log").lines().count(), 2);
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);

    assert_uninstall_restores(&p, &hook, theirs);
    p.stop();
}

/// A second `install-hooks` changes nothing: every hook is up to date.
fn assert_reinstall_is_up_to_date(p: &Project) {
    let again = p.bgtask(&["install-hooks", "--no-start"]);
    again.code(0);
    for h in [
        "post-commit",
        "post-merge",
        "post-checkout",
        "post-rewrite",
        "pre-push",
    ] {
        assert!(
            again.stdout.contains(&format!("{h} is up to date")),
            "{}",
            again.stdout
        );
    }
}

/// The hook that was there before runs first and its exit code is the
/// hook's; a hook git feeds on stdin passes it on to the earlier one.
fn assert_chained_hooks_run_first(p: &Project, hook: &std::path::Path) {
    // Their hook runs first, its exit code is what the shim returns.
    let direct = Command::new(hook)
        .current_dir(p.path())
        .env("BGTASK", "0")
        .status()
        .unwrap();
    assert_eq!(direct.code(), Some(3));
    // A hook git feeds on stdin passes it on to the earlier hook.
    let push = p.path().join(".git/hooks/pre-push.bgtask-chained");
    std::fs::write(&push, "#!/bin/sh\ncat > \"$PWD/pushed.log\"\n").unwrap();
    std::fs::set_permissions(&push, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(p.path().join(".git/hooks/pre-push"))
        .args(["origin", "url"])
        .current_dir(p.path())
        .env("BGTASK", "0")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"refs/heads/main 1111 refs/heads/main 2222\n",
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        p.read("pushed.log"),
        "refs/heads/main 1111 refs/heads/main 2222\n"
    );
    std::fs::remove_file(&push).unwrap();
}

/// `uninstall-hooks` puts the earlier hook back exactly, mode included,
/// and leaves nothing of its own behind.
fn assert_uninstall_restores(p: &Project, hook: &std::path::Path, theirs: &str) {
    let run = p.bgtask(&["uninstall-hooks"]);
    run.code(0);
    assert!(
        run.stdout
            .contains("removed post-commit and put back the hook it replaced"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(hook).unwrap(), theirs);
    let mode = std::fs::metadata(hook).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "restored exactly, mode included");
    let left: Vec<String> = std::fs::read_dir(p.path().join(".git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sample"))
        .collect();
    assert_eq!(left, ["post-commit"]);
}

#[test]
fn a_local_hooks_path_is_honoured_and_a_global_one_refused_unless_forced() {
    let p = lint_project();
    p.git(&["config", "core.hooksPath", ".githooks"]);
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    assert!(p.path().join(".githooks/post-commit").is_file());
    assert!(!p.path().join(".git/hooks/post-commit").exists());

    let global_dir = tempfile::tempdir().unwrap();
    let gitconfig = global_dir.path().join("gitconfig");
    let shared = global_dir.path().join("shared-hooks");
    std::fs::write(
        &gitconfig,
        format!("[core]\n\thooksPath = {}\n", shared.display()),
    )
    .unwrap();
    let q = Project::triggered(&[("lint", r#"["commit"]"#)], NO_WATCH)
        .env("GIT_CONFIG_GLOBAL", gitconfig.to_str().unwrap());
    let refused = q.bgtask(&["install-hooks", "--no-start"]);
    refused.code(64);
    assert!(
        refused.stderr.contains("global git config"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(!shared.exists());
    q.bgtask(&["install-hooks", "--force", "--no-start"])
        .code(0);
    assert!(shared.join("post-commit").is_file());

    // A hooks directory the repository tracks (a team's .githooks): the
    // shims would be committed with this machine's paths.
    let t = lint_project();
    t.file(".team-hooks/pre-commit.sh", "#!/bin/sh\nexit 0\n");
    t.commit_all("team hooks");
    t.git(&["config", "core.hooksPath", ".team-hooks"]);
    let refused = t.bgtask(&["install-hooks", "--no-start"]);
    refused.code(64);
    assert!(
        refused
            .stderr
            .contains("a directory this repository tracks")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert!(!t.path().join(".team-hooks/post-commit").exists());
    t.bgtask(&["install-hooks", "--force", "--no-start"])
        .code(0);
    assert!(t.path().join(".team-hooks/post-commit").is_file());
}

#[test]
fn every_kind_of_commit_runs_its_files_once() {
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let mut n = 0;
    let mut expect = |p: &Project, line: &str| {
        n += 1;
        let got = p.wait_records(n);
        assert_eq!(got[n - 1], line, "{got:#?}");
    };
    // A plain commit (autostarts the daemon).
    p.file("a.py", "x = 1\n")
        .file("sp ace ü.py", "y = 2\n")
        .file("notes.md", "");
    p.commit_all("one");
    expect(&p, "lint [a.py] [sp ace ü.py]");
    // commit -a, and commit <path>.
    p.file("a.py", "x = 2\n").file("sp ace ü.py", "y = 3\n");
    p.git(&["commit", "-q", "-a", "-m", "two"]);
    expect(&p, "lint [a.py] [sp ace ü.py]");
    p.file("a.py", "x = 3\n").file("b.py", "b = 1\n");
    p.git(&["add", "b.py"]);
    p.git(&["commit", "-q", "-m", "three", "--", "a.py"]);
    expect(&p, "lint [a.py]");
    // --amend (b.py is still staged): post-commit and post-rewrite, one run.
    p.git(&["commit", "-q", "--amend", "-m", "three again"]);
    expect(&p, "lint [a.py] [b.py]");
    // A merge.
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.file("c.py", "c = 1\n");
    p.commit_all("feature");
    expect(&p, "lint [c.py]");
    p.git(&["checkout", "-q", "main"]);
    p.git(&["merge", "-q", "--no-ff", "-m", "merge", "feature"]);
    expect(&p, "lint [c.py]");
    // A cherry-pick of two commits: one run.
    p.git(&["checkout", "-q", "-b", "picks", "main~1"]);
    p.file("d.py", "d = 1\n");
    p.commit_all("d");
    expect(&p, "lint [d.py]");
    p.file("e.py", "e = 1\n");
    p.commit_all("e");
    expect(&p, "lint [e.py]");
    p.git(&["checkout", "-q", "main"]);
    p.git(&["cherry-pick", "picks~1", "picks"]);
    expect(&p, "lint [d.py] [e.py]");
    // A rebase of five commits: one run.
    p.git(&["checkout", "-q", "-b", "topic", "main~2"]);
    for i in 0..5 {
        p.file(&format!("t{i}.py"), "t = 1\n");
        p.commit_all(&format!("t{i}"));
        expect(&p, &format!("lint [t{i}.py]"));
    }
    p.git(&["rebase", "-q", "main"]);
    expect(&p, "lint [t0.py] [t1.py] [t2.py] [t3.py] [t4.py]");
    assert_eq!(p.sql("SELECT count(*) FROM intake"), ["0"]);
    p.stop();
}

#[test]
fn pull_rebase_is_one_run() {
    let p = lint_project();
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("origin.git");
    p.git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    p.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    p.git(&["fetch", "-q", "origin"]);
    p.git(&["branch", "-q", "--set-upstream-to=origin/main"]);
    let other = remote.path().join("other");
    p.git(&[
        "clone",
        "-q",
        bare.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    std::fs::write(other.join("theirs.py"), "t = 1\n").unwrap();
    p.git_in(&other, &["add", "-A"]);
    p.git_in(&other, &["commit", "-q", "-m", "theirs"]);
    p.git_in(&other, &["push", "-q", "origin", "main"]);

    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("mine.py", "m = 1\n");
    p.commit_all("mine");
    assert_eq!(p.wait_records(1), ["lint [mine.py]"]);
    p.git(&["pull", "-q", "--rebase"]);
    let got = p.wait_records(2);
    assert_eq!(got[1], "lint [mine.py]", "the rebased commit; {got:?}");
    p.stop();
}

#[test]
fn a_hook_with_the_daemon_down_spools_and_the_work_runs_after_start() {
    let p = Project::triggered(
        &[("lint", r#"["commit"]"#)],
        r#""triggers": {"file_watch": {"enabled": false}, "git_hooks": {"autostart": false}}"#,
    );
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("a.py", "x = 1\n");
    p.commit_all("one");
    let spool = p.read(".bgtask/spool.jsonl");
    assert_eq!(spool.lines().count(), 1, "{spool}");
    assert!(
        spool.contains(r#""op":"hook""#) && spool.contains("post-commit"),
        "{spool}"
    );
    assert!(p.daemon_pid().is_none(), "autostart is off");
    p.start();
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    assert_eq!(p.read(".bgtask/spool.jsonl"), "");
    p.stop();
}

#[test]
fn the_kill_switch_and_skipped_tasks() {
    let p = Project::triggered(
        &[("lint", r#"["commit"]"#), ("tests", r#"["commit"]"#)],
        NO_WATCH,
    );
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("a.py", "x = 1\n");
    p.git(&["add", "-A"]);
    let out = p
        .git_command(p.path(), &["commit", "-q", "-m", "off"])
        .env("BGTASK", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    // A hook hands its event over before it exits: nothing came.
    assert_eq!(p.status()["arrivals"], 0);
    assert!(!p.path().join(".bgtask/spool.jsonl").exists());
    assert_eq!(p.sql("SELECT count(*) FROM jobs"), ["0"]);
    p.file("a.py", "x = 2\n");
    p.git(&["add", "-A"]);
    let out = p
        .git_command(p.path(), &["commit", "-q", "-m", "skip"])
        .env("BGTASK_SKIP", "tests")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    p.stop();
}

#[test]
fn a_gui_client_with_a_minimal_path_still_reaches_the_daemon() {
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.file("a.py", "x = 1\n");
    p.git(&["add", "-A"]);
    let status = json_status(&p);
    let runtime = p.xdg_runtime().to_str().unwrap().to_owned();
    let data = p.data_dir().to_str().unwrap().to_owned();
    let out = Command::new("env")
        .args([
            "-i",
            "PATH=/usr/bin:/bin",
            &format!("XDG_RUNTIME_DIR={runtime}"),
            &format!("BGTASK_DATA_DIR={data}"),
            "GIT_AUTHOR_NAME=t",
            "GIT_AUTHOR_EMAIL=t@t",
            "GIT_COMMITTER_NAME=t",
            "GIT_COMMITTER_EMAIL=t@t",
            "git",
            "commit",
            "-q",
            "-m",
            "gui",
        ])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    assert_eq!(
        json_status(&p)["pid"],
        status["pid"],
        "the same daemon took it"
    );
    p.stop();
}

fn json_status(p: &Project) -> serde_json::Value {
    p.status()
}

/// `git commit 2>&1 | cat` must not wait for a daemon the hook started.
#[test]
fn a_piped_commit_does_not_wait_for_the_daemon_it_starts() {
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("a.py", "x = 1\n");
    p.git(&["add", "-A"]);
    let cmd = p.git_command(p.path(), &[]);
    let mut sh = Command::new("sh");
    sh.args(["-c", "git commit -q -m piped 2>&1 | cat"])
        .current_dir(p.path())
        .stdout(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let started = Instant::now();
    let mut child = sh.spawn().unwrap();
    wait_for(20, "the piped commit to return", || {
        child.try_wait().unwrap().is_some()
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(p.wait_records(1), ["lint [a.py]"]);
    assert!(p.daemon_pid().is_some(), "the hook started the daemon");
    p.stop();
}

#[test]
fn linked_worktrees_share_the_hooks_and_each_has_its_daemon_and_submodules_their_own() {
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let wt_dir = tempfile::tempdir().unwrap();
    let wt = wt_dir.path().join("linked");
    p.git(&["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()]);
    assert!(
        !wt.join(".git").is_dir(),
        "a linked worktree, using the common hooks"
    );
    // Trust is per worktree: this one was not trusted yet.
    p.bgtask_in(&wt, &["trust", "--yes"]).code(0);
    std::fs::write(wt.join("w.py"), "w = 1\n").unwrap();
    p.git_in(&wt, &["add", "w.py"]);
    p.git_in(&wt, &["commit", "-q", "-m", "in the linked worktree"]);
    wait_for(20, "the linked worktree's run", || {
        std::fs::read_to_string(wt.join("record.log")).is_ok_and(|t| t == "lint [w.py]\n")
    });
    assert!(
        p.records().is_empty(),
        "the main worktree's daemon did not run it"
    );
    p.bgtask_in(&wt, &["stop"]).code(0);

    // A submodule has hooks of its own.
    let sub_src = tempfile::tempdir().unwrap();
    let sub_repo = sub_src.path().join("lib");
    std::fs::create_dir(&sub_repo).unwrap();
    p.git_in(&sub_repo, &["init", "-q", "-b", "main"]);
    p.git_in(&sub_repo, &["commit", "-q", "--allow-empty", "-m", "lib"]);
    p.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub_repo.to_str().unwrap(),
        "lib",
    ]);
    let sub = p.path().join("lib");
    std::fs::create_dir_all(sub.join("bin")).unwrap();
    std::fs::copy(p.path().join("bin/record.sh"), sub.join("bin/record.sh")).unwrap();
    std::fs::copy(
        p.path().join(".background-tasks.json"),
        sub.join(".background-tasks.json"),
    )
    .unwrap();
    p.bgtask_in(&sub, &["install-hooks", "--no-start"]).code(0);
    assert!(
        p.path()
            .join(".git/modules/lib/hooks/post-commit")
            .is_file()
    );
    std::fs::write(sub.join("s.py"), "s = 1\n").unwrap();
    p.git_in(&sub, &["add", "s.py"]);
    p.git_in(&sub, &["commit", "-q", "-m", "in the submodule"]);
    wait_for(20, "the submodule's run", || {
        std::fs::read_to_string(sub.join("record.log")).is_ok_and(|t| t == "lint [s.py]\n")
    });
    p.bgtask_in(&sub, &["stop"]).code(0);
}

/// A project whose `gate` task (triggered by `kind`) finds every line with
/// `BAD` in Python files, high, and whose `blocking` hook runs it.
fn gate_project(kind: &str, hooks: &str, blocking: &str) -> Project {
    let p = Project::empty();
    p.config(&format!(
        r#"{{
          "tasks": {{"gate": {{"analyzers": ["no-bad"], "triggers": ["{kind}"], "fail_on": "high"}}}},
          "analyzers": {{"no-bad": {{
            "command": "grep", "files": ["*.py"], "args": ["-n", "-H", "BAD", "{{files}}"],
            "parser": "regex",
            "regex": {{"pattern": "^(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"}},
            "default_severity": "high",
            "exit_codes": {{"ok": [1], "findings": [0]}},
            "cache": false
          }}}},
          "triggers": {{"file_watch": {{"enabled": false}}, "git_hooks": {{"hooks": {hooks}, "blocking": ["{blocking}"], "autostart": false}}}}
        }}"#
    ));
    p
}

/// A blocking pre-commit fails the commit on findings and never touches
/// the index or the working tree.
#[test]
fn a_blocking_pre_commit_fails_on_findings_and_leaves_the_index_alone() {
    let p = gate_project("commit", r#"["post-commit"]"#, "pre-commit");
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let shim = p.read(".git/hooks/pre-commit");
    assert!(shim.contains("hook --gate pre-commit"), "{shim}");

    p.file("ok.py", "fine = 1\n").file("bad.py", "x = 'BAD'\n");
    p.git(&["add", "ok.py", "bad.py"]);
    let before = p.git(&["status", "--porcelain"]);
    let out = p
        .git_command(p.path(), &["commit", "-m", "with a finding"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the commit was refused:\n{stderr}");
    assert!(stderr.contains("bad.py"), "the finding is shown:\n{stderr}");
    assert!(stderr.contains("stop the pre-commit"), "{stderr}");
    assert_eq!(
        p.git(&["status", "--porcelain"]),
        before,
        "index and tree untouched"
    );
    assert_eq!(p.git(&["rev-list", "--count", "HEAD"]).trim(), "1");

    p.file("bad.py", "x = 'good'\n");
    p.git(&["add", "bad.py"]);
    let out = p
        .git_command(p.path(), &["commit", "-q", "-m", "clean"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(p.git(&["rev-list", "--count", "HEAD"]).trim(), "2");
    // BGTASK=0 skips the gate.
    p.file("bad.py", "x = 'BAD'\n");
    p.git(&["add", "bad.py"]);
    let out = p
        .git_command(p.path(), &["commit", "-q", "-m", "skipped"])
        .env("BGTASK", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn doctor_says_whether_the_hooks_are_present_and_current_in_every_worktree() {
    let p = lint_project();
    let before = p.bgtask(&["doctor", "--json"]).json();
    let hooks = &before["background"]["hooks"][0]["hooks"];
    assert_eq!(
        hooks[0],
        serde_json::json!(["post-commit", "missing"]),
        "{before:#}"
    );
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let wt_dir = tempfile::tempdir().unwrap();
    let wt = wt_dir.path().join("linked");
    p.git(&["worktree", "add", "-q", wt.to_str().unwrap()]);
    let text = p.bgtask(&["doctor"]).stdout;
    assert!(text.contains("hooks    "), "{text}");
    assert!(text.contains("shared by"), "{text}");
    assert!(
        !text.contains("stale") && !text.contains("missing"),
        "{text}"
    );
    // A hook left by another bgtask binary is stale.
    let hook = p.path().join(".git/hooks/post-merge");
    std::fs::remove_file(&hook).unwrap();
    std::os::unix::fs::symlink("/old/place/bgtask-hook", &hook).unwrap();
    let text = p.bgtask(&["doctor"]).stdout;
    assert!(text.contains("post-merge stale"), "{text}");
    assert!(text.contains("run `bgtask install-hooks`"), "{text}");
    let again = p.bgtask(&["install-hooks", "--no-start"]);
    assert!(
        again.stdout.contains("refreshed post-merge"),
        "{}",
        again.stdout
    );
    let after = p.bgtask(&["doctor", "--json"]).json();
    let all_current = after["background"]["hooks"][0]["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h[1] == "current");
    assert!(all_current, "{after:#}");
    let _ = p.bgtask_in(&wt, &["stop"]);
}

/// A blocking pre-push checks the files of the commits being pushed.
#[test]
fn a_blocking_pre_push_checks_the_pushed_commits() {
    let p = gate_project("push", r#"["pre-push"]"#, "pre-push");
    p.file("old.py", "x = 'BAD but already pushed'\n");
    p.commit_all("setup");
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("origin.git");
    p.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    p.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    p.git(&["push", "-q", "origin", "main"]);
    p.bgtask(&["install-hooks", "--no-start"]).code(0);

    p.file("new.py", "y = 'BAD'\n");
    p.commit_all("bad");
    let out = p
        .git_command(p.path(), &["push", "-q", "origin", "main"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push was refused:\n{stderr}");
    assert!(stderr.contains("new.py"), "{stderr}");
    assert!(
        !stderr.contains("old.py:"),
        "only the pushed commits' files: {stderr}"
    );

    p.file("new.py", "y = 'good'\n");
    p.commit_all("fixed");
    let out = p
        .git_command(p.path(), &["push", "-q", "origin", "main"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Uninstalling the hooks says what still runs by itself (the daemon, on
/// saves, in a trusted worktree) and can end both.
#[test]
fn uninstall_says_what_still_runs_and_can_stop_and_revoke() {
    let p = lint_project();
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let pid = p.start();
    let run = p.bgtask(&["uninstall-hooks"]);
    run.code(0);
    assert!(
        run.stderr.contains(&format!(
            "the daemon (pid {pid}) still runs and this worktree is still trusted"
        )),
        "{}",
        run.stderr
    );
    assert!(p.daemon_pid().is_some());
    let run = p.bgtask(&["uninstall-hooks", "--stop", "--revoke"]);
    run.code(0);
    assert!(run.stdout.contains("stopped"), "{}", run.stdout);
    assert!(run.stderr.contains("no longer trusted"), "{}", run.stderr);
    assert!(!run.stderr.contains("still"), "{}", run.stderr);
    assert!(p.daemon_pid().is_none());
    let trust = p.bgtask(&["trust", "--status", "--json"]).json();
    assert!(
        trust
            .as_object()
            .unwrap()
            .values()
            .all(|t| t["state"] == "untrusted"),
        "{trust}"
    );
}

fn commit(p: &Project, msg: &str) -> std::process::Output {
    p.git_command(p.path(), &["commit", "-q", "-m", msg])
        .output()
        .unwrap()
}

/// A gate judges what is being committed: a file whose staged content has
/// a finding and whose working copy does not is refused, the reverse
/// passes, and neither the index nor the working tree is touched.
#[test]
fn a_gate_judges_the_staged_content_of_a_partly_staged_file() {
    let p = gate_project("commit", r#"["post-commit"]"#, "pre-commit");
    p.file("a.py", "x = 1\n");
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("a.py", "x = 'BAD'\n");
    p.git(&["add", "a.py"]);
    p.file("a.py", "x = 'good'\n");
    let before = p.git(&["status", "--porcelain"]);
    let out = commit(&p, "staged BAD");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused:\n{stderr}");
    assert!(
        stderr.contains("a.py partly staged: judging the staged content"),
        "{stderr}"
    );
    assert_eq!(p.git(&["status", "--porcelain"]), before, "untouched");
    assert_eq!(p.read("a.py"), "x = 'good'\n");
    assert_eq!(p.git(&["show", ":a.py"]), "x = 'BAD'\n");
    // The reverse: the staged content is clean, the working copy is not.
    p.file("a.py", "x = 2\n");
    p.git(&["add", "a.py"]);
    p.file("a.py", "x = 'BAD'\n");
    let out = commit(&p, "staged clean");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.read("a.py"), "x = 'BAD'\n");
}

/// A finding in a file the commit does not touch (a test that was already
/// failing, found by a project-wide analyzer) is shown but does not block.
#[test]
fn a_gate_counts_only_the_findings_in_the_files_being_committed() {
    let p = Project::empty();
    p.config(
        r#"{
          "tasks": {"gate": {"analyzers": ["no-bad-anywhere"], "triggers": ["commit"], "fail_on": "high"}},
          "analyzers": {"no-bad-anywhere": {
            "command": "grep", "mode": "project", "files": ["*.py"],
            "args": ["-rn", "-H", "--include=*.py", "BAD", "."],
            "parser": "regex",
            "regex": {"pattern": "^(?:\\./)?(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"},
            "default_severity": "high",
            "exit_codes": {"ok": [1], "findings": [0]},
            "cache": false
          }},
          "triggers": {"file_watch": {"enabled": false}, "git_hooks": {"hooks": ["post-commit"], "blocking": ["pre-commit"], "autostart": false}}
        }"#,
    );
    p.file("old.py", "x = 'BAD'\n");
    p.commit_all("an old finding");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("new.py", "y = 1\n");
    p.git(&["add", "new.py"]);
    let out = commit(&p, "unrelated");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "not blocked:\n{stderr}");
    assert!(
        stderr.contains("1 finding(s) in files this pre-commit does not touch do not block it"),
        "{stderr}"
    );
    p.file("new.py", "y = 'BAD'\n");
    p.git(&["add", "new.py"]);
    let out = commit(&p, "a new finding");
    assert!(!out.status.success(), "blocked by its own finding");
}

/// With the built-in tasks, switching branches analyses what the switch
/// changed: `code` and `security` run for the checkout (and `tests` for a
/// merge), so the findings shown are the branch's.
#[test]
fn a_branch_checkout_with_the_built_in_tasks_runs_code_and_security() {
    let p = Project::empty();
    p.file("a.py", "x = 1\n");
    // The built-in tasks, without the watcher (whose saves of the same
    // files would race the hook for the same jobs).
    p.file(
        ".background-tasks.local.json",
        r#"{"triggers": {"file_watch": {"enabled": false}}}"#,
    );
    p.file(".gitignore", ".background-tasks.local.json\n");
    p.commit_all("setup");
    p.git(&["checkout", "-q", "-b", "feature"]);
    p.file(
        "b.py",
        "import subprocess\nsubprocess.call('ls', shell=True)\n",
    );
    p.commit_all("feature");
    p.git(&["checkout", "-q", "main"]);
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.start();
    p.git(&["checkout", "-q", "feature"]);
    let checkout_tasks = || -> Vec<String> {
        let history = p.bgtask(&["history", "--json"]).json();
        let mut tasks: Vec<String> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["trigger"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("hook: post-checkout"))
                    && r["verdict"] != "running"
            })
            .map(|r| r["task"].as_str().unwrap().to_owned())
            .collect();
        tasks.sort();
        tasks.dedup();
        tasks
    };
    wait_for(90, "the checkout's runs", || {
        checkout_tasks() == ["code", "security"]
    });
    p.stop();
}

/// A hook in a worktree nobody trusted (a fresh `git worktree add`) keeps
/// its event in the spool and starts no daemon, which would run nothing.
#[test]
fn an_untrusted_worktree_spools_its_hooks_and_starts_no_daemon() {
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    let wt_dir = tempfile::tempdir().unwrap();
    let wt = wt_dir.path().join("linked");
    p.git(&["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()]);
    let spool = std::fs::read_to_string(wt.join(".bgtask/spool.jsonl")).unwrap_or_default();
    assert!(
        spool.contains("post-checkout"),
        "the event is kept: {spool}"
    );
    assert!(
        !wt.join(".bgtask/logs/daemon.log").exists(),
        "no daemon was started"
    );
    p.bgtask_in(&wt, &["status"]).code(4);
    // Trusted, the next hook starts it.
    p.bgtask_in(&wt, &["trust", "--yes"]).code(0);
    std::fs::write(wt.join("w.py"), "w = 1\n").unwrap();
    p.git_in(&wt, &["add", "w.py"]);
    p.git_in(&wt, &["commit", "-q", "-m", "trusted now"]);
    wait_for(20, "the linked worktree's daemon", || {
        p.bgtask_in(&wt, &["status"]).code == 0
    });
    p.bgtask_in(&wt, &["stop"]).code(0);
}

/// A hook's autostart that fails (as root without --allow-root) is on
/// record where people look: `status` and `doctor`.
#[test]
fn a_failed_autostart_is_shown_by_status_and_doctor() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the autostart would not be refused");
        return;
    }
    let p = lint_project();
    p.bgtask(&["install-hooks", "--no-start"]).code(0);
    p.file("a.py", "a = 1\n");
    p.git(&["add", "a.py"]);
    let out = p
        .git_command(p.path(), &["commit", "-q", "-m", "one"])
        .env_remove("BGTASK_ALLOW_ROOT")
        .output()
        .unwrap();
    assert!(out.status.success());
    wait_for(20, "the refused start to be recorded", || {
        p.path().join(".bgtask/autostart-failure.txt").exists()
    });
    let status = p.bgtask(&["status"]);
    status.code(4);
    assert!(
        status.stdout.contains("a hook could not start it at")
            && status.stdout.contains("--allow-root"),
        "{}",
        status.stdout
    );
    let doctor = p.bgtask(&["doctor"]).stdout;
    assert!(doctor.contains("a hook could not start it"), "{doctor}");
    // Started by hand, the old failure is history.
    p.start();
    p.stop();
    assert!(!p.bgtask(&["status"]).stdout.contains("could not start"));
}

/// `install-hooks` says saves start the work from now on: so it starts the
/// daemon (saves are watched only while it runs) and says how it comes
/// back at login.
#[test]
fn install_hooks_starts_the_daemon_so_saves_are_watched_at_once() {
    let p = lint_project();
    let run = p.bgtask(&["install-hooks"]);
    run.code(0);
    assert!(run.stdout.contains("started (pid"), "{}", run.stdout);
    assert!(
        run.stderr.contains("`bgtask service install`"),
        "{}",
        run.stderr
    );
    p.bgtask(&["status"]).code(0);
    p.stop();
    // Untrusted, it would run nothing: not started.
    let q = lint_project();
    let run = q.bgtask(&["install-hooks", "--no-trust"]);
    run.code(0);
    assert!(!run.stdout.contains("started"), "{}", run.stdout);
    q.bgtask(&["status"]).code(4);
}
