//! CLI conventions: help with examples, completions, man page, usage errors.

use crate::harness::Project;

#[test]
fn every_command_has_help_with_examples() {
    let p = Project::empty();
    for cmd in [
        vec!["run"],
        vec!["init"],
        vec!["doctor"],
        vec!["tools", "install"],
        vec!["tools", "list"],
        vec!["config", "validate"],
        vec!["config", "schema"],
        vec!["report", "merge"],
        vec!["completions"],
        vec!["man"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let run = p.bgtask(&args);
        run.code(0);
        assert!(
            run.stdout.contains("Example"),
            "{cmd:?} help has no examples:\n{}",
            run.stdout
        );
    }
    let top = p.bgtask(&["--help"]);
    assert!(top.stdout.contains("Exit codes"), "{}", top.stdout);
}

#[test]
fn completions_and_man_page() {
    let p = Project::empty();
    let bash = p.bgtask(&["completions", "bash"]);
    bash.code(0);
    assert!(bash.stdout.contains("bgtask") && bash.stdout.len() > 1000);
    let man = p.bgtask(&["man"]);
    man.code(0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH bgtask"),
        "{}",
        &man.stdout[..200]
    );
}

#[test]
fn usage_errors_exit_64() {
    let p = Project::empty();
    p.bgtask(&["run"]).code(64);
    p.bgtask(&["run", "all", "--changed", "--staged"]).code(64);
    p.bgtask(&["run", "all", "--shard", "3/2"]).code(64);
    let unknown = p.bgtask(&["run", "nope"]);
    unknown.code(64);
    assert!(
        unknown.stderr.contains(
            "unknown task or analyzer `nope`; tasks: all, code, complexity, security, tests"
        ),
        "{}",
        unknown.stderr
    );
    let typo = p.bgtask(&["run", "secrity"]);
    typo.code(64);
    assert!(
        typo.stderr
            .contains("unknown task or analyzer `secrity` (did you mean `security`?)"),
        "{}",
        typo.stderr
    );
    p.git(&["commit", "-q", "--allow-empty", "-m", "one"]);
    let since = p.bgtask(&["run", "all", "--since", "nope"]);
    since.code(64);
    assert!(
        since.stderr.contains("unknown revision `nope`"),
        "{}",
        since.stderr
    );
}

/// A reader that goes away (`| head`) ends every command quietly, with
/// the code a shell gives a process SIGPIPE ended.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let p = Project::empty();
    for args in [
        &["completions", "fish"][..],
        &["completions", "zsh"],
        &["man"],
        &["config", "schema"],
    ] {
        // The reader is gone before the command starts, so its first
        // write fails however fast it is.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = p
            .command(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(141), "{args:?}: {status:?} {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Daemon requests for something that does not exist are usage errors
/// (64), like an unknown name to `run`, with the nearest task suggested.
#[test]
fn unknown_runs_jobs_and_tasks_exit_64() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    for args in [
        &["show", "999"][..],
        &["logs", "999"],
        &["cancel", "999"],
        &["retry", "999"],
        &["submit", "foo"],
    ] {
        let run = p.bgtask(args);
        assert_eq!(run.code, 64, "{args:?}: {}", run.stderr);
    }
    let typo = p.bgtask(&["submit", "b"]);
    assert!(typo.stderr.contains("unknown task `b`"), "{}", typo.stderr);
    let typo = p.bgtask(&["submit", "al"]);
    assert!(
        typo.stderr.contains("(did you mean `all`?)"),
        "{}",
        typo.stderr
    );
    p.stop();
}

#[test]
fn doctor_reports_what_applies_and_what_is_installed() {
    let p = Project::fixture("python-app");
    let run = p.bgtask(&["doctor", "--json"]);
    run.code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let row = |name: &str| {
        doc["analyzers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["analyzer"] == name)
            .unwrap()
            .clone()
    };
    let bandit = row("bandit");
    assert_eq!(bandit["applies"], true);
    assert_eq!(bandit["installed"], true);
    assert_eq!(bandit["version"], "1.9.4");
    assert_eq!(bandit["origin"], "managed");
    assert_eq!(row("eslint")["applies"], false);
    assert_eq!(doc["default_config"], true);
    let text = p.bgtask(&["doctor"]);
    assert!(text.stdout.contains("bandit"), "{}", text.stdout);
}
