//! Report formats: SARIF against the 2.1.0 schema and GitHub's rules,
//! JUnit, GitHub annotations, Markdown, JSON shards merged.

use serde_json::Value;

use crate::harness::{Project, rules_lines};

fn sarif_validator() -> jsonschema::Validator {
    // The official schema's `run.language` pattern has a stray `]` that the
    // validator's regex engine rejects; bgtask never writes `language`, so
    // that one pattern is replaced by its intent and everything else is kept.
    let text = include_str!("../fixtures/sarif-schema-2.1.0.json").replace(
        "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$",
        "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$",
    );
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft7::new(&schema).unwrap()
}

pub(crate) fn check_sarif(doc: &Value) {
    let validator = sarif_validator();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");
    // What GitHub code scanning adds to the schema.
    let runs = doc["runs"].as_array().unwrap();
    let mut names: Vec<&str> = runs
        .iter()
        .map(|r| r["tool"]["driver"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "one run per tool");
    for run in runs {
        let results = run["results"]
            .as_array()
            .expect("results is always present");
        let rules: Vec<&str> = run["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
            assert!(
                rule["shortDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
        }
        for r in results {
            assert!(rules.contains(&r["ruleId"].as_str().unwrap()));
            assert!(
                r["partialFingerprints"]["primaryLocationLineHash"]
                    .as_str()
                    .is_some_and(|h| !h.is_empty())
            );
            for loc in r["locations"].as_array().unwrap() {
                let pl = &loc["physicalLocation"];
                let uri = pl["artifactLocation"]["uri"].as_str().unwrap();
                assert!(
                    !uri.starts_with('/') && !uri.contains("://"),
                    "relative uri: {uri}"
                );
                for k in ["startLine", "startColumn", "endLine", "endColumn"] {
                    if let Some(v) = pl["region"].get(k) {
                        assert!(v.as_u64().unwrap() >= 1, "{k} must be >= 1 in {r:#}");
                    }
                }
            }
        }
    }
}

#[test]
fn sarif_is_valid_and_github_ready() {
    let p = Project::fixture("python-app");
    let out = p.path().join("results.sarif");
    let run = p.bgtask(&[
        "run",
        "bandit",
        "pylint",
        "radon",
        "pytest",
        "profile",
        "--format",
        "sarif",
        "--output",
        out.to_str().unwrap(),
    ]);
    run.code(1);
    assert!(run.stderr.contains("report written to"), "{}", run.stderr);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    check_sarif(&doc);
    let bandit = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"]["driver"]["name"] == "bandit")
        .unwrap();
    assert_eq!(bandit["results"].as_array().unwrap().len(), 8);
    let b602 = bandit["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "B602")
        .unwrap();
    assert_eq!(b602["properties"]["security-severity"], "8.0");
    // The clean profile run is present with an empty result list.
    let profile = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"]["driver"]["name"] == "profile")
        .unwrap();
    assert_eq!(profile["results"], serde_json::json!([]));
}

#[test]
fn sarif_of_dependency_findings_and_odd_paths_is_valid() {
    let p = Project::empty();
    p.script("count-runs.sh").file("dir with space/ü.txt", "x\n").file("a.txt", "x\n").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}, "exit_codes": {"ok": [0]}}}}"#,
    );
    let doc: Value = serde_json::from_str(
        &p.bgtask(&["run", "counter", "--format", "sarif"])
            .code(0)
            .stdout,
    )
    .unwrap();
    check_sarif(&doc);
    let uris: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(uris, ["a.txt", "dir%20with%20space/%C3%BC.txt"]);
}

#[test]
fn junit_and_github_annotations() {
    let p = Project::fixture("python-app");
    let junit = p.bgtask(&["run", "bandit", "pytest", "--format", "junit"]);
    junit.code(1);
    let xml = &junit.stdout;
    assert!(xml.starts_with("<?xml"));
    // 8 bandit findings + 1 pytest failure; only the high ones fail with the default threshold.
    assert!(
        xml.contains("<testsuite name=\"bandit\" tests=\"8\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testsuite name=\"pytest\" tests=\"1\" failures=\"1\""),
        "{xml}"
    );
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases = 0;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == "testcase" =>
            {
                cases += 1;
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(cases, 9);

    let gh = p.bgtask(&["run", "bandit", "--format", "github"]);
    gh.code(1);
    assert!(
        gh.stdout
            .contains("::error file=src/shop/orders.py,line=17,endLine=17,col=5,"),
        "{}",
        gh.stdout
    );
    assert!(
        gh.stdout
            .lines()
            .filter(|l| l.starts_with("::notice "))
            .count()
            >= 6
    );
}

/// `--format markdown`: the verdict, the table by task and severity, and
/// each finding linked to its line at `HEAD` in the `origin` remote's web
/// pages.
#[test]
fn markdown_summary_links_findings_to_the_remote() {
    let p = Project::fixture("python-app");
    p.git(&[
        "remote",
        "add",
        "origin",
        "https://github.com/example/app.git",
    ]);
    p.commit_all("fixture");
    let head = p.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let out = p
        .command(&["run", "bandit", "--format", "markdown"])
        // Outside GitHub Actions, whatever runs these tests.
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_SHA")
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{md}");
    assert!(
        md.starts_with("### ❌ bgtask: 1 finding at or above the threshold (fails on high)\n"),
        "{md}"
    );
    assert!(md.contains("8 findings from 1 analyzer in "), "{md}");
    assert!(
        md.contains("no baseline: every finding counts as new"),
        "{md}"
    );
    assert!(
        md.contains("| task | severity | new | fixed | total |\n|:--|:--|--:|--:|--:|\n"),
        "{md}"
    );
    assert!(md.contains("| `bandit` | high | 1 | — | 1 |"), "{md}");
    let link = format!(
        "- **high** [`src/shop/orders.py:17`](https://github.com/example/app/blob/{head}/src/shop/orders.py#L17) bandit `B602`: "
    );
    assert!(md.contains(&link), "{link}\n{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("- **")).count(), 8);
}

#[test]
fn shard_reports_merge_into_the_full_result() {
    let p = Project::fixture("python-app");
    let full = p
        .bgtask(&["run", "bandit", "pylint", "--format", "json", "--no-cache"])
        .json();
    for k in 1..=2 {
        let out = format!("shard{k}.json");
        p.bgtask(&[
            "run",
            "bandit",
            "pylint",
            "--format",
            "json",
            "--shard",
            &format!("{k}/2"),
            "--output",
            &out,
        ]);
    }
    let merged = p.bgtask(&[
        "report",
        "merge",
        "shard1.json",
        "shard2.json",
        "--format",
        "json",
    ]);
    merged.code(1);
    let merged = merged.json();
    for a in ["bandit", "pylint"] {
        assert_eq!(rules_lines(&merged, a), rules_lines(&full, a), "{a}");
    }
    assert_eq!(merged["exit_code"], full["exit_code"]);
    let sarif: Value = serde_json::from_str(
        &p.bgtask(&[
            "report",
            "merge",
            "shard1.json",
            "shard2.json",
            "--format",
            "sarif",
        ])
        .stdout,
    )
    .unwrap();
    check_sarif(&sarif);
    let bad = p
        .file("bad.json", "{\"schema\": 1}")
        .bgtask(&["report", "merge", "bad.json"]);
    bad.code(65);
    assert!(bad.stderr.contains("bad.json:1:"), "{}", bad.stderr);
}

const SNAPSHOT_CONFIG: &str = r#"{
  "tasks": { "check": { "analyzers": ["counter", "emit", "broken", "ghost"], "fail_on": "high" } },
  "analyzers": {
    "counter": { "command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
      "parser": "regex", "regex": { "pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$", "rule": "CR1" },
      "exit_codes": { "ok": [0] }, "default_severity": "low" },
    "emit": { "command": "./bin/emit-sarif.sh", "files": ["*.txt"], "args": ["{output}", "{files}"], "output": "file",
      "parser": "sarif", "category": "security" },
    "broken": { "command": "./bin/broken-tool.sh", "mode": "project", "parser": "exit-code" },
    "ghost": { "command": "ghost-analyzer-that-does-not-exist", "mode": "project", "parser": "exit-code",
      "install": { "hint": "pip install ghost-analyzer" } }
  }
}"#;

fn snapshot_project() -> Project {
    let p = Project::empty();
    p.script("count-runs.sh")
        .script("emit-sarif.sh")
        .script("broken-tool.sh")
        .config(SNAPSHOT_CONFIG);
    p.file("notes.txt", "TODO\n")
        .file("docs/plan.txt", "TODO\n")
        .file(".gitignore", "runs.log\n");
    p
}

#[test]
fn console_report_snapshot() {
    let p = snapshot_project();
    let run = p.bgtask(&["run", "check"]);
    run.code(2);
    insta::with_settings!({ filters => vec![(r"\d+(\.\d+)?(ms|s)\b", "[time]")] }, {
        insta::assert_snapshot!(run.stdout);
    });
}

#[test]
fn sarif_report_snapshot_and_user_sarif_analyzer() {
    let p = snapshot_project();
    let run = p.bgtask(&["run", "check", "--format", "sarif"]);
    run.code(2);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    check_sarif(&doc);
    // The user's SARIF tool was read: its security-severity 7.5 is high.
    let report = p.bgtask(&["run", "emit", "--format", "json"]).json();
    let sev: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(sev, ["high", "high"]);
    insta::with_settings!({ filters => vec![(r#""durationMs": \d+"#, r#""durationMs": "[ms]""#)] }, {
        insta::assert_snapshot!(run.stdout);
    });
}

/// A failed or missing analyzer has its run in the SARIF file, marked
/// unsuccessful with the reason, so a code-scanning upload never looks
/// clean when a scan did not happen.
#[test]
fn sarif_keeps_failed_and_missing_analyzers_as_unsuccessful_runs() {
    let p = Project::empty();
    p.file("a.txt", "x\n").config(
        r#"{"analyzers": {
            "broken": {"command": "sh", "mode": "project", "args": ["-c", "echo 'cannot reach the advisory service' >&2; exit 3"],
                       "parser": "exit-code", "exit_codes": {"ok": [0]}},
            "missing": {"command": "bgtask-no-such-tool", "mode": "project", "parser": "exit-code"}}}"#,
    );
    let run = p.bgtask(&["run", "broken", "missing", "--format", "sarif"]);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    check_sarif(&doc);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{doc:#}");
    for r in runs {
        let invocation = &r["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false, "{r:#}");
        let note = &invocation["toolExecutionNotifications"][0];
        assert_eq!(note["level"], "error", "{r:#}");
        assert!(!note["message"]["text"].as_str().unwrap().is_empty());
        assert_eq!(r["results"], serde_json::json!([]));
    }
}

/// At a terminal a big report starts with the summary and shows the 40
/// worst findings, then says how many more and how to see them; `--all`
/// (and a pipe) print every one.
#[test]
fn a_terminal_gets_the_summary_and_the_worst_findings_first() {
    let p = Project::empty();
    p.script("count-runs.sh").config(
        r#"{"analyzers": {"counter": {"command": "./bin/count-runs.sh", "files": ["*.txt"], "args": ["{root}/runs.log", "{files}"],
            "parser": "regex", "regex": {"pattern": "^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$"}, "exit_codes": {"ok": [0]}}}}"#,
    );
    for i in 0..60 {
        p.file(&format!("f{i:02}.txt"), "x\n");
    }
    let at_terminal = |extra: &str| {
        let out = std::process::Command::new("script")
            .args([
                "-qec",
                &format!("{} run counter {extra}", crate::harness::bgtask_bin()),
                "/dev/null",
            ])
            .current_dir(p.path())
            .env("BGTASK_DATA_DIR", p.data_dir())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let short = at_terminal("");
    assert!(short.contains("the 40 worst findings:"), "{short}");
    assert!(short.contains("20 more — `bgtask run … --all`"), "{short}");
    assert_eq!(short.matches("looked at f").count(), 40, "{short}");
    let summary_at = short.find("counter").unwrap();
    assert!(
        summary_at < short.find("the 40 worst").unwrap(),
        "summary first"
    );
    let all = at_terminal("--all");
    assert_eq!(all.matches("looked at f").count(), 60);
    let piped = p.bgtask(&["run", "counter"]);
    assert_eq!(piped.stdout.matches("looked at f").count(), 60);
}
