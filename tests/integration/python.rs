//! Python analyzers through `bgtask run`, checked against what the tools
//! themselves report on the same files.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Project, rules_lines, run_of, tool};

const PY_FILES: &[&str] = &[
    "src/shop/__init__.py",
    "src/shop/orders.py",
    "src/shop/util.py",
    "tests/test_util.py",
];

fn tool_json(p: &Project, cmd: &str, args: &[&str]) -> Value {
    let out = Command::new(tool(cmd))
        .args(args)
        .current_dir(p.path())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{cmd}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn findings_match_what_bandit_pylint_and_radon_report() {
    let p = Project::fixture("python-app");
    let run = p.bgtask(&[
        "run",
        "bandit",
        "pylint",
        "radon",
        "--format",
        "json",
        "--no-cache",
    ]);
    run.code(1);
    let report = run.json();

    let mut args = vec!["-q", "-f", "json"];
    args.extend(PY_FILES);
    let bandit = tool_json(&p, "bandit", &args);
    let mut want: Vec<(String, u64)> = bandit["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["test_id"].as_str().unwrap().to_owned(),
                r["line_number"].as_u64().unwrap(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(rules_lines(&report, "bandit"), want);
    assert_eq!(want.len(), 8, "the fixture's known bandit findings");

    let mut args = vec!["--output-format=json2", "--persistent=n"];
    args.extend(PY_FILES);
    let pylint = tool_json(&p, "pylint", &args);
    let mut want: Vec<(String, u64)> = pylint["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["messageId"].as_str().unwrap().to_owned(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(rules_lines(&report, "pylint"), want);
    assert!(
        want.iter().any(|(r, l)| r == "W0611" && *l == 2),
        "unused import os"
    );

    let mut args = vec!["cc", "-j", "-s"];
    args.extend(PY_FILES);
    let radon = tool_json(&p, "radon", &args);
    let mut want: Vec<(String, u64)> = radon
        .as_object()
        .unwrap()
        .values()
        .flat_map(|blocks| blocks.as_array().cloned().unwrap_or_default())
        .filter(|b| b["complexity"].as_u64().unwrap() >= 11)
        .map(|b| {
            (
                "cyclomatic-complexity".to_owned(),
                b["lineno"].as_u64().unwrap(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(rules_lines(&report, "radon"), want);
    assert_eq!(want, [("cyclomatic-complexity".to_owned(), 20)]);

    // Columns are 1-based and paths repo-relative.
    let b602 = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "B602")
        .unwrap();
    assert_eq!(
        b602["location"],
        serde_json::json!({"path": "src/shop/orders.py", "line": 17, "column": 5, "end_line": 17, "end_column": 64})
    );
    assert_eq!(b602["severity"], "high");
    assert_eq!(run_of(&report, "bandit")["tool"]["version"], "1.9.4");
}

#[test]
fn a_failing_pytest_test_is_a_finding_on_its_assert_line() {
    let p = Project::fixture("python-app");
    let report = p
        .bgtask(&["run", "pytest", "--format", "json"])
        .code(1)
        .json();
    assert_eq!(
        rules_lines(&report, "pytest"),
        [("test-failure".to_owned(), 9)]
    );
    let run = run_of(&report, "pytest");
    assert_eq!(run["status"], "findings");
    assert_eq!(
        run["tests"],
        serde_json::json!({"total": 3, "failed": 1, "errors": 0, "skipped": 0})
    );
    let f = &report["findings"][0];
    assert_eq!(
        f["message"],
        "tests.test_util::test_is_even_fails failed: assert False"
    );
    assert_eq!(f["location"]["path"], "tests/test_util.py");
}

#[test]
fn bandit_errors_make_the_run_partial_although_bandit_exits_0_or_1() {
    let p = Project::fixture("python-app");
    p.file("src/shop/broken.py", "def broken(:\n    pass\n");
    let report = p
        .bgtask(&["run", "bandit", "pylint", "--format", "json"])
        .json();
    let bandit = run_of(&report, "bandit");
    assert_eq!(bandit["status"], "partial");
    let reason = bandit["reason"].as_str().unwrap();
    assert!(
        reason.contains("src/shop/broken.py: syntax error"),
        "{reason}"
    );
    // Findings in the other files are kept.
    assert_eq!(rules_lines(&report, "bandit").len(), 8);
    // pylint reports the syntax error as an error finding instead.
    assert!(rules_lines(&report, "pylint").contains(&("E0001".to_owned(), 1)));
}

#[test]
fn pylint_usage_error_bit_32_is_a_tool_error() {
    let p = Project::fixture("python-app");
    p.config(r#"{"analyzers": {"pylint": {"args": ["--output-format=json2", "--output={output}", "--no-such-option", "{files}"]}}}"#);
    let run = p.bgtask(&["run", "pylint", "--format", "json"]);
    run.code(2);
    let r = run.json();
    let pylint = run_of(&r, "pylint");
    assert_eq!(pylint["status"], "tool_error");
    assert_eq!(pylint["exit_code"], 32);
    assert!(
        pylint["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-option"),
        "{pylint:#}"
    );
}

#[test]
fn pip_audit_offline_is_never_clean() {
    let p = Project::fixture("python-app");
    let run = p.bgtask(&["run", "pip-audit", "--format", "json"]);
    let report = run.json();
    let audit = run_of(&report, "pip-audit");
    let status = audit["status"].as_str().unwrap();
    // Here the vulnerability service is unreachable, so pip-audit skips every
    // dependency and still says "No known vulnerabilities found": it audited
    // nothing, which is a tool error, never a ✓.
    assert!(matches!(status, "tool_error" | "findings"), "{audit:#}");
    if status == "tool_error" {
        let reason = audit["reason"].as_str().unwrap();
        assert!(
            reason.contains("could not audit any dependency"),
            "{reason}"
        );
        run.code(2);
        let text = p.bgtask(&["run", "pip-audit"]);
        assert!(!text.stdout.contains('✓'), "{}", text.stdout);
    }
    assert_eq!(audit["network"], true);
    // --offline skips it with a reason.
    let report = p
        .bgtask(&["run", "pip-audit", "--format", "json", "--offline"])
        .json();
    assert_eq!(run_of(&report, "pip-audit")["status"], "not_applicable");
}

/// With no network at all (a network namespace with nothing in it) or a
/// proxy that is down, a dependency audit says so at once instead of
/// spending the tool's retries (20 s for pip-audit), and is never clean.
#[test]
fn an_audit_without_network_says_so_at_once() {
    let p = Project::fixture("python-app");
    p.file(
        "package-lock.json",
        &std::fs::read_to_string(
            crate::harness::manifest_dir().join("tests/fixtures/projects/js-app/package-lock.json"),
        )
        .unwrap(),
    );
    p.file("package.json", r#"{"name": "app", "version": "1.0.0"}"#);
    let args = [
        "run",
        "pip-audit",
        "npm-audit",
        "--format",
        "json",
        "--no-cache",
    ];
    let in_namespace = {
        let cmd = p.command(&args);
        let mut wrapped = Command::new("unshare");
        wrapped
            .arg("--net")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(p.path());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
    };
    let mut dead_proxy = p.command(&args);
    dead_proxy
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for (what, mut cmd, expect) in [
        ("no route", in_namespace, "no network route"),
        (
            "dead proxy",
            dead_proxy,
            "the proxy in $HTTPS_PROXY, 127.0.0.1:9",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = cmd.output().unwrap();
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{what}: {stdout}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        for analyzer in ["pip-audit", "npm-audit"] {
            let run = run_of(&report, analyzer);
            assert_eq!(run["status"], "tool_error", "{what}: {run:#}");
            let reason = run["reason"].as_str().unwrap();
            assert!(reason.contains(expect), "{what}: {reason}");
            assert!(reason.contains("--offline"), "{what}: {reason}");
        }
        // Nothing was started: the whole run is the check (budget 5 s;
        // the tools' own retries take 20 s).
        assert!(took.as_secs() < 5, "{what}: {took:?}");
    }
}

#[test]
fn unittest_suites_through_xmlrunner_reports() {
    let p = Project::empty();
    p.file(
        "test_math.py",
        "import unittest\n\n\nclass MathTest(unittest.TestCase):\n    def test_ok(self):\n        self.assertEqual(1 + 1, 2)\n\n    def test_wrong(self):\n        self.assertEqual(1 + 1, 3)\n",
    );
    let run = p.bgtask(&["run", "unittest", "--format", "json"]);
    run.code(1);
    let report = run.json();
    let r = run_of(&report, "unittest");
    assert_eq!(r["status"], "findings");
    assert_eq!(r["tests"]["total"], 2);
    assert_eq!(r["tests"]["failed"], 1);
    let f = &report["findings"][0];
    assert!(
        f["message"].as_str().unwrap().contains("test_wrong failed"),
        "{f:#}"
    );
}

/// Test counts as the runner counts them: failed, errors and skipped apart.
#[test]
fn pytest_counts_failed_errors_and_skipped_apart() {
    let p = Project::empty();
    p.file(
        "tests/test_mixed.py",
        "import pytest\n\n\
         @pytest.fixture\ndef broken():\n    raise RuntimeError('no database')\n\n\
         def test_ok():\n    assert True\n\n\
         def test_fail():\n    assert 1 == 2\n\n\
         def test_error(broken):\n    pass\n\n\
         @pytest.mark.skip(reason='later')\ndef test_skip():\n    pass\n",
    );
    let run = p.bgtask(&["run", "pytest"]);
    assert!(
        run.stdout
            .contains("4 tests: 1 passed, 1 failed, 1 error, 1 skipped"),
        "{}",
        run.stdout
    );
}

/// A test module pytest cannot import is a tool error that says why and
/// where, not a failed test.
#[test]
fn a_pytest_collection_error_says_why_and_where() {
    let p = Project::empty();
    p.file(
        "tests/test_calc.py",
        "import nonexistent_mod\n\ndef test_a():\n    assert True\n",
    );
    let run = p.bgtask(&["run", "pytest", "--format", "json"]);
    run.code(2);
    let report = run.json();
    let pytest = run_of(&report, "pytest");
    assert_eq!(pytest["status"], "tool_error", "{pytest:#}");
    assert_eq!(
        pytest["reason"],
        "could not collect tests/test_calc.py:1: ModuleNotFoundError: No module named 'nonexistent_mod'"
    );
    assert!(report["findings"].as_array().unwrap().is_empty());
    let text = p.bgtask(&["run", "pytest"]);
    assert!(
        text.stdout.contains("No module named 'nonexistent_mod'"),
        "{}",
        text.stdout
    );
}

/// Tools that import the project run against its environment. Without
/// one, third-party imports are one environment problem (`partial`, naming
/// the modules), not high findings, and the suite cannot be collected (a
/// tool error that says why); with a real `.venv` holding the dependency,
/// the managed pylint and pytest see it.
#[test]
fn python_tools_run_against_the_projects_environment() {
    let p = Project::empty();
    p.file(
        "app.py",
        "\"\"\"App.\"\"\"\nimport depmod\n\n\ndef value():\n    \"\"\"The value.\"\"\"\n    return depmod.VALUE\n",
    );
    p.file(
        "tests/test_app.py",
        "\"\"\"Tests.\"\"\"\nimport depmod\n\n\ndef test_value():\n    \"\"\"It is one.\"\"\"\n    assert depmod.VALUE == 1\n",
    );
    let run = p.bgtask(&["run", "pylint", "pytest", "--format", "json"]);
    let report = run.json();
    let pylint = run_of(&report, "pylint");
    assert_eq!(pylint["status"], "partial", "{pylint:#}");
    let reason = pylint["reason"].as_str().unwrap();
    assert!(
        reason.contains("pylint could not import 1 module (depmod)"),
        "{reason}"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "E0401"),
        "{report:#}"
    );
    let pytest = run_of(&report, "pytest");
    assert_eq!(pytest["status"], "tool_error", "{pytest:#}");
    assert!(
        pytest["reason"]
            .as_str()
            .unwrap()
            .contains("No module named 'depmod'"),
        "{pytest:#}"
    );

    // A real virtual environment with the dependency installed.
    let site = make_venv(&p, ".venv");
    std::fs::write(
        site.join("depmod.py"),
        "\"\"\"A dependency.\"\"\"\nVALUE = 1\n",
    )
    .unwrap();
    let run = p.bgtask(&["run", "pylint", "pytest", "--format", "json"]);
    let report = run.json();
    let pylint = run_of(&report, "pylint");
    assert!(
        matches!(pylint["status"].as_str(), Some("clean" | "findings")),
        "{pylint:#}"
    );
    assert_eq!(run_of(&report, "pytest")["status"], "clean", "{report:#}");
    let doctor = p.bgtask(&["doctor", "--json"]).json();
    let row = environment_of(&doctor, "pylint");
    assert!(row.ends_with("(.venv in the project)"), "{row}");
}

/// uv's `$UV_PROJECT_ENVIRONMENT` names the project's environment when it
/// is not `.venv`; `doctor` says which one the Python tools see and why.
#[test]
fn uv_project_environment_is_the_projects_environment() {
    let p = Project::empty();
    p.file("app.py", "\"\"\"App.\"\"\"\n");
    p.file("uv.lock", "version = 1\n");
    make_venv(&p, "envs/dev");
    let out = p
        .command(&["doctor", "--json"])
        .env("UV_PROJECT_ENVIRONMENT", "envs/dev")
        .output()
        .unwrap();
    let doctor: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = environment_of(&doctor, "pylint");
    assert!(
        row.contains("envs/dev") && row.ends_with("($UV_PROJECT_ENVIRONMENT (uv))"),
        "{row}"
    );
    // Without it, nothing is found and doctor says so.
    let doctor = p.bgtask(&["doctor", "--json"]).json();
    let row = environment_of(&doctor, "pylint");
    assert!(row.starts_with("no project environment"), "{row}");
}

/// A real virtual environment (`python3 -m venv`) at `dir` in the project;
/// its `site-packages`.
fn make_venv(p: &Project, dir: &str) -> std::path::PathBuf {
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip", dir])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::read_dir(p.path().join(dir).join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages")
}

/// What `doctor --json` says about the Python environment `analyzer` sees.
fn environment_of(doctor: &serde_json::Value, analyzer: &str) -> String {
    doctor["analyzers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["analyzer"] == analyzer)
        .and_then(|r| r["environment"].as_str())
        .unwrap_or_else(|| panic!("{doctor:#}"))
        .to_owned()
}
