//! eslint and npm through `bgtask run`.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Project, rules_lines, run_of, tool};

#[test]
fn eslint_findings_match_eslint_itself() {
    let p = Project::fixture("js-app");
    let run = p.bgtask(&["run", "eslint", "--format", "json", "--no-cache"]);
    run.code(1);
    let report = run.json();
    let out = Command::new(tool("eslint"))
        .args(["-f", "json", "src/clean.js", "src/index.js"])
        .current_dir(p.path())
        .output()
        .unwrap();
    let eslint: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want: Vec<(String, u64)> = eslint
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["messages"].as_array().cloned().unwrap_or_default())
        .map(|m| {
            (
                m["ruleId"].as_str().unwrap().to_owned(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(rules_lines(&report, "eslint"), want);
    assert_eq!(want.len(), 4);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "no-unused-vars")
        .unwrap();
    assert_eq!(f["location"]["path"], "src/index.js");
    assert_eq!(f["location"]["column"], 7);
    assert_eq!(f["severity"], "high");
}

/// Files the project's eslint config ignores stay ignored when a file list
/// names them (a save, a commit): eslint's "File ignored" warning is not a
/// finding.
#[test]
fn eslint_ignores_stay_authoritative_for_named_files() {
    let p = Project::fixture("js-app");
    let config = p.read("eslint.config.js").replace(
        "export default [",
        "export default [\n  { ignores: [\"vendor/**\"] },",
    );
    p.file("eslint.config.js", &config);
    p.file("vendor/lib.js", "var unused = 1;\neval('1');\n");
    let run = p.bgtask(&[
        "run",
        "eslint",
        "--format",
        "json",
        "--no-cache",
        "--files",
        "vendor/lib.js",
        "src/clean.js",
    ]);
    let report = run.json();
    let eslint = run_of(&report, "eslint");
    assert_eq!(eslint["status"], "clean", "{report:#}");
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    run.code(0);
}

#[test]
fn eslint_exit_2_on_a_broken_config_is_a_tool_error() {
    let p = Project::fixture("js-app");
    p.file("eslint.config.js", "throw new Error('config exploded');\n");
    let run = p.bgtask(&["run", "eslint", "--format", "json"]);
    run.code(2);
    let report = run.json();
    let eslint = run_of(&report, "eslint");
    assert_eq!(eslint["status"], "tool_error");
    assert_eq!(eslint["exit_code"], 2);
    assert!(
        eslint["reason"]
            .as_str()
            .unwrap()
            .contains("config exploded"),
        "{eslint:#}"
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn eslint_without_a_config_does_not_apply() {
    let p = Project::fixture("js-app");
    std::fs::remove_file(p.path().join("eslint.config.js")).unwrap();
    let report = p
        .bgtask(&["run", "code", "--format", "json"])
        .code(0)
        .json();
    let eslint = run_of(&report, "eslint");
    assert_eq!(eslint["status"], "not_applicable");
    assert!(
        eslint["reason"]
            .as_str()
            .unwrap()
            .contains("eslint.config.js")
    );
}

#[test]
fn npm_audit_endpoint_failure_is_a_tool_error_not_clean() {
    let p = Project::fixture("js-app");
    let run = p.bgtask(&["run", "npm-audit", "--format", "json"]);
    let report = run.json();
    let audit = run_of(&report, "npm-audit");
    // Here the registry refuses the advisory endpoint; with a working one the
    // lockfile's single dependency has no known advisories.
    match audit["status"].as_str().unwrap() {
        "tool_error" => {
            run.code(2);
            let reason = audit["reason"].as_str().unwrap();
            assert!(
                reason.contains("npm audit could not get advisories"),
                "{reason}"
            );
        }
        "clean" => {
            run.code(0);
        }
        other => panic!("unexpected npm audit status {other}: {audit:#}"),
    }
}

/// A test script that cannot find its dependencies (no `node_modules`) is
/// a tool error that says so, not a failed test.
#[test]
fn npm_test_without_its_dependencies_is_a_tool_error() {
    let p = Project::empty();
    p.file(
        "package.json",
        r#"{"name": "x", "version": "1.0.0", "scripts": {"test": "node test.js"}}"#,
    );
    p.file("test.js", "require('left-pad');\n");
    p.file("index.js", "module.exports = 1;\n");
    let run = p.bgtask(&["run", "npm-test", "--format", "json"]);
    let report = run.json();
    let npm = run_of(&report, "npm-test");
    assert_eq!(npm["status"], "tool_error", "{npm:#}");
    assert!(
        npm["reason"]
            .as_str()
            .unwrap()
            .contains("Cannot find module 'left-pad'"),
        "{npm:#}"
    );
    assert!(report["findings"].as_array().unwrap().is_empty());
    // A failing test stays a finding.
    p.file("test.js", "process.exit(1);\n");
    let report = p
        .bgtask(&["run", "npm-test", "--format", "json", "--no-cache"])
        .json();
    assert_eq!(run_of(&report, "npm-test")["status"], "findings");
}
