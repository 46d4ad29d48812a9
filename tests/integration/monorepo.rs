//! Monorepos: a `.background-tasks.json` below the worktree's top makes a
//! project of its own, served by the worktree's one daemon.

use serde_json::Value;

use crate::harness::{Project, copy_dir, manifest_dir, wait_for};

/// A Python service and a Node package below a top that is no project.
fn monorepo() -> Project {
    let p = Project::empty();
    for (dir, fixture) in [("services/api", "python-app"), ("packages/web", "js-app")] {
        let to = p.path().join(dir);
        std::fs::create_dir_all(&to).unwrap();
        copy_dir(
            &manifest_dir().join("tests/fixtures/projects").join(fixture),
            &to,
        );
    }
    p.file("README.md", "# two projects\n");
    p
}

fn config_of(p: &Project, dir: &str) -> Value {
    serde_json::from_str(&p.read(&format!("{dir}/.background-tasks.json")))
        .unwrap_or_else(|e| panic!("{dir}'s config: {e}"))
}

fn analyzers(config: &Value) -> Vec<String> {
    let mut out: Vec<String> = config["tasks"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|t| t["analyzers"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn init_writes_one_config_per_project() {
    let p = monorepo();
    let out = p.bgtask(&["init"]).code(0).stdout.clone();
    assert!(out.contains("found 2 projects"), "{out}");
    let api = analyzers(&config_of(&p, "services/api"));
    let web = analyzers(&config_of(&p, "packages/web"));
    assert!(api.contains(&"bandit".to_owned()), "{api:?}");
    assert!(api.contains(&"pylint".to_owned()), "{api:?}");
    assert!(
        !api.iter().any(|a| a.starts_with("npm") || a == "eslint"),
        "{api:?}"
    );
    assert!(web.contains(&"eslint".to_owned()), "{web:?}");
    assert!(!web.contains(&"bandit".to_owned()), "{web:?}");
    assert!(
        !p.path().join(".background-tasks.json").exists(),
        "nothing applies to the top's own files: {out}"
    );
    // Each validates, and a run in a project uses its config.
    for dir in ["services/api", "packages/web"] {
        p.bgtask_in(&p.path().join(dir), &["config", "validate"])
            .code(0);
    }
    let single = p
        .bgtask(&["init", "--single", "--stdout"])
        .code(0)
        .stdout
        .clone();
    let single: Value = serde_json::from_str(&single).unwrap();
    let all = analyzers(&single);
    assert!(
        all.contains(&"bandit".to_owned()) && all.contains(&"eslint".to_owned()),
        "{all:?}"
    );
}

/// A project's config recording each run in its own `record.log`.
fn record_config(p: &Project, dir: &str, task: &str, glob: &str) {
    let root = p.path().join(dir);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(
        manifest_dir().join("tests/fixtures/bin/record.sh"),
        root.join("bin/record.sh"),
    )
    .unwrap();
    p.file(
        &format!("{dir}/.background-tasks.json"),
        &format!(
            r#"{{"execution": {{"max_retries": 0}},
                "tasks": {{"{task}": {{"analyzers": ["rec"], "triggers": ["save"]}}}},
                "analyzers": {{"rec": {{"command": "./bin/record.sh", "files": ["{glob}"],
                  "args": ["{task}", "{{root}}", "{{files}}"], "parser": "exit-code", "cache": false}}}},
                "triggers": {{"file_watch": {{"debounce": "100ms"}}, "git_hooks": {{"autostart": false}}}}}}"#
        ),
    );
}

fn records(p: &Project, dir: &str) -> Vec<String> {
    p.read(&format!("{dir}/record.log"))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn wait_records(p: &Project, dir: &str, n: usize) -> Vec<String> {
    wait_for(30, &format!("{n} runs in {dir}"), || {
        records(p, dir).len() >= n
    });
    p.wait_idle();
    std::thread::sleep(std::time::Duration::from_secs(1));
    p.wait_idle();
    let got = records(p, dir);
    assert_eq!(got.len(), n, "{dir}: {got:#?}\n{}", p.daemon_log());
    got
}

#[test]
fn one_daemon_serves_every_project_and_a_save_goes_to_the_innermost() {
    let p = Project::empty();
    p.file(".gitignore", "record.log\n");
    record_config(&p, ".", "top", "*.py");
    record_config(&p, "services/api", "check", "*.py");
    record_config(&p, "packages/web", "check", "*.js");
    p.file("tool.py", "")
        .file("services/api/app.py", "")
        .file("packages/web/index.js", "");
    p.commit_all("setup");
    let api = p.path().join("services/api");
    // From inside a project, trust and start are the worktree's.
    let trusted = p
        .bgtask_in(&api, &["trust", "--yes"])
        .code(0)
        .stdout
        .clone();
    assert!(trusted.contains("services/api:check"), "{trusted}");
    assert!(trusted.contains("packages/web:check"), "{trusted}");
    p.bgtask_in(&api, &["start"]).code(0);
    p.wait_watching();

    p.file("services/api/app.py", "x = 1\n");
    assert_eq!(wait_records(&p, "services/api", 1), ["check [app.py]"]);
    p.file("tool.py", "y = 1\n");
    assert_eq!(wait_records(&p, ".", 1), ["top [tool.py]"]);
    p.file("packages/web/index.js", "let z = 1;\n");
    assert_eq!(wait_records(&p, "packages/web", 1), ["check [index.js]"]);
    assert_eq!(
        records(&p, "services/api").len(),
        1,
        "nothing else ran there"
    );

    // What the daemon shows names the project.
    let history = p.bgtask(&["history", "--json"]).code(0).json();
    let mut tasks: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, ["packages/web:check", "services/api:check", "top"]);
    let status = p.bgtask_in(&api, &["status"]).code(0).stdout.clone();
    assert!(status.contains("services/api:check"), "{status}");

    // In a project, a plain task name is that project's; `run` there uses
    // its nearest config.
    let submitted = p
        .bgtask_in(&api, &["submit", "check"])
        .code(0)
        .stdout
        .clone();
    assert!(submitted.contains("services/api:check"), "{submitted}");
    assert_eq!(wait_records(&p, "services/api", 2)[1], "check [app.py]");
    p.bgtask_in(&api, &["run", "check"]).code(0);
    assert_eq!(records(&p, "services/api").len(), 3);

    // A project's config is watched too, and trusted by its own lines:
    // changing what it runs stops that task alone.
    let text = p.read("services/api/.background-tasks.json");
    let reloads = || p.daemon_log().matches("config reloaded").count();
    let before = reloads();
    p.file(
        "services/api/.background-tasks.json",
        &text.replace(r#""args": ["check""#, r#""args": ["changed""#),
    );
    wait_for(20, "the project's config to be reloaded", || {
        reloads() > before
    });
    p.file("services/api/app.py", "x = 2\n");
    p.file("tool.py", "y = 2\n");
    assert_eq!(wait_records(&p, ".", 2)[1], "top [tool.py]");
    assert_eq!(records(&p, "services/api").len(), 3, "untrusted now");
    let diff = p.bgtask(&["trust", "--diff"]).code(0).stdout.clone();
    assert!(
        diff.contains("services/api:check: changed since trusted"),
        "{diff}"
    );
    assert!(diff.contains("top: trusted"), "{diff}");
    p.bgtask(&["trust", "--yes"]).code(0);
    p.file("services/api/app.py", "x = 3\n");
    assert_eq!(wait_records(&p, "services/api", 4)[3], "changed [app.py]");
    p.stop();
}

/// A blocking pre-commit runs each project's gate on that project's staged
/// files, in its directory.
#[test]
fn a_blocking_pre_commit_gates_each_project_on_its_own_files() {
    let p = Project::empty();
    p.config(
        r#"{"tasks": {"manual": {"analyzers": ["bandit"], "triggers": []}},
            "triggers": {"file_watch": {"enabled": false},
              "git_hooks": {"hooks": ["post-commit"], "blocking": ["pre-commit"], "autostart": false}}}"#,
    );
    p.file(
        "services/api/.background-tasks.json",
        r#"{"tasks": {"gate": {"analyzers": ["no-bad"], "triggers": ["commit"], "fail_on": "high"}},
            "analyzers": {"no-bad": {
              "command": "grep", "files": ["*.py"], "args": ["-n", "-H", "BAD", "{files}"],
              "parser": "regex",
              "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+):(?P<message>.*)$"},
              "default_severity": "high",
              "exit_codes": {"ok": [1], "findings": [0]},
              "cache": false}}}"#,
    );
    p.commit_all("setup");
    p.bgtask(&["install-hooks", "--no-start"]).code(0);

    // Outside the project, nothing gates.
    p.file("bad.py", "x = 'BAD'\n");
    p.git(&["add", "bad.py"]);
    p.git(&["commit", "-q", "-m", "top"]);

    p.file("services/api/ok.py", "fine = 1\n")
        .file("services/api/bad.py", "x = 'BAD'\n");
    p.git(&["add", "services"]);
    let out = p
        .git_command(p.path(), &["commit", "-m", "with a finding"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the commit was refused:\n{stderr}");
    assert!(stderr.contains("running services/api:gate"), "{stderr}");
    assert!(
        stderr.contains("bad.py") && stderr.contains("x = 'BAD'"),
        "the finding is shown:\n{stderr}"
    );
    assert!(stderr.contains("stop the pre-commit"), "{stderr}");

    p.file("services/api/bad.py", "x = 'good'\n");
    p.git(&["add", "services"]);
    p.git(&["commit", "-q", "-m", "clean"]);
    assert_eq!(p.git(&["rev-list", "--count", "HEAD"]).trim(), "3");
}
