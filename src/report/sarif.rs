//! SARIF 2.1.0, valid against the OASIS schema and shaped for GitHub code
//! scanning: one run per analyzer (distinct `tool.driver.name`), `results:
//! []` for a clean run, repo-relative percent-encoded URIs under
//! `%SRCROOT%`, lines and columns ≥ 1, `ruleId` with a `rules[]` entry
//! carrying `shortDescription`, `partialFingerprints` and
//! `security-severity` on security rules.
//!
//! `partialFingerprints` come from the finding's identity
//! (`analyze/identity.rs`): `primaryLocationLineHash` in CodeQL's
//! `hash:occurrence` form, the hash of the flagged line without whitespace
//! (the fingerprint for findings without a line), and `bgtask/v1`, the
//! fingerprint bgtask itself compares by. With a baseline in play each
//! result has its `baselineState`, `new` or `unchanged`, and the baseline's
//! findings no longer there are results too, `absent`, in their analyzer's
//! run.
//!
//! Only analyzers that actually completed (clean, findings, partial) get a
//! run: an empty run for a tool that failed or was missing would tell code
//! scanning that every earlier alert of that tool was fixed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{BaselineState, Report};
use crate::analyze::{Finding, RunStatus, Severity};
use crate::config::raw::Category;
use crate::event::AnalyzerRun;

const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's 0–10 scale for ranking security alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A result to write: a finding and, with a baseline in play, its
/// `baselineState`.
type Entry<'a> = (&'a Finding, Option<&'static str>);

pub fn render(report: &Report) -> String {
    let runs: Vec<Value> = report
        .runs
        .iter()
        // Every analyzer that ran or should have: a failed one must not
        // look clean to a code-scanning upload. Only "does not apply" is
        // left out.
        .filter(|r| r.status != RunStatus::NotApplicable)
        .map(|r| run(r, &results_of(report, &r.analyzer)))
        .collect();
    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": runs,
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("SARIF serializes");
    s.push('\n');
    s
}

/// One analyzer's results: its findings, then the baseline's findings of it
/// that are absent now.
fn results_of<'a>(report: &'a Report, analyzer: &str) -> Vec<Entry<'a>> {
    let baseline = report.baseline.as_ref();
    let state = |i: usize| {
        baseline.map(|c| match c.states.get(i) {
            Some(BaselineState::Unchanged) => "unchanged",
            _ => "new",
        })
    };
    let mut out: Vec<Entry<'a>> = report
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.analyzer == analyzer)
        .map(|(i, f)| (f, state(i)))
        .collect();
    if let Some(c) = baseline {
        out.extend(
            c.absent
                .iter()
                .filter(|f| f.analyzer == analyzer)
                .map(|f| (f, Some("absent"))),
        );
    }
    out
}

fn run(r: &AnalyzerRun, findings: &[Entry<'_>]) -> Value {
    let security = matches!(r.category, Category::Security | Category::Audit);
    // One rule per rule id, described by its name or first message.
    let mut rules: BTreeMap<&str, (&Finding, Severity)> = BTreeMap::new();
    for (f, _) in findings {
        let e = rules.entry(f.rule.as_str()).or_insert((f, f.severity));
        e.1 = e.1.max(f.severity);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rules_json: Vec<Value> = rules
        .iter()
        .map(|(id, (f, worst))| rule(r.category, security, id, f, *worst))
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|(f, state)| {
            let mut res = result(f, index[f.rule.as_str()]);
            if let Some(state) = state {
                res["baselineState"] = json!(state);
            }
            res
        })
        .collect();
    let mut driver = json!({
        "name": r.analyzer,
        "rules": rules_json,
    });
    if let Some(v) = r.tool.as_ref().and_then(|t| t.version.as_ref()) {
        driver["version"] = json!(v);
    }
    let succeeded = matches!(
        r.status,
        RunStatus::Clean | RunStatus::Findings | RunStatus::Partial
    );
    let mut invocation = json!({ "executionSuccessful": succeeded });
    if let Some(code) = r.exit_code {
        invocation["exitCode"] = json!(code);
    }
    let reason = r
        .reason
        .clone()
        .or_else(|| (!succeeded).then(|| format!("{}: {}", r.analyzer, r.status.as_str())));
    if let Some(reason) = reason {
        let level = if succeeded { "warning" } else { "error" };
        invocation["toolExecutionNotifications"] =
            json!([{ "level": level, "message": { "text": reason } }]);
    }
    json!({
        "tool": { "driver": driver },
        "invocations": [invocation],
        "originalUriBaseIds": { "%SRCROOT%": { "description": { "text": "The repository root" } } },
        "results": results,
        "properties": { "bgtask": { "status": r.status.as_str(), "cached": r.cached, "durationMs": r.duration_ms } },
    })
}

/// A `rules[]` entry, described by `f`, the first finding of the rule.
fn rule(category: Category, security: bool, id: &str, f: &Finding, worst: Severity) -> Value {
    let short = f
        .rule_name
        .clone()
        .unwrap_or_else(|| first_sentence(&f.message));
    let mut rule = json!({
        "id": id,
        "shortDescription": { "text": short },
        "defaultConfiguration": { "level": level(worst) },
        "properties": { "tags": [category_tag(category)] },
    });
    if let Some(name) = &f.rule_name {
        rule["name"] = json!(name);
    }
    if let Some(help) = &f.help_uri {
        rule["helpUri"] = json!(help);
    }
    if security {
        rule["properties"]["security-severity"] = json!(security_severity(worst));
        let tag = category_tag(category);
        rule["properties"]["tags"] = if tag == "security" {
            json!(["security"])
        } else {
            json!([tag, "security"])
        };
    }
    rule
}

/// `partialFingerprints`: CodeQL's `primaryLocationLineHash` (the flagged
/// line's hash and the occurrence; the fingerprint for findings without a
/// line and for those the tool's own id tells apart) and bgtask's own
/// fingerprint.
fn partial_fingerprints(f: &Finding) -> Value {
    let line_hash = f
        .identity
        .as_ref()
        .filter(|id| id.stable.is_none())
        .and_then(|id| Some(format!("{}:{}", id.line.as_ref()?, id.occurrence)))
        .unwrap_or_else(|| f.fingerprint.clone());
    json!({ "primaryLocationLineHash": line_hash, "bgtask/v1": f.fingerprint })
}

fn category_tag(c: Category) -> &'static str {
    match c {
        Category::Security => "security",
        Category::Audit => "dependencies",
        Category::Lint => "lint",
        Category::Complexity => "maintainability",
        Category::Test => "tests",
        Category::Custom => "custom",
    }
}

fn first_sentence(s: &str) -> String {
    let end = s.find(". ").map_or(s.len(), |i| i + 1);
    let t = &s[..end];
    if t.chars().count() > 120 {
        format!("{}…", t.chars().take(119).collect::<String>())
    } else {
        t.to_owned()
    }
}

fn result(f: &Finding, rule_index: usize) -> Value {
    let mut res = json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": if f.message.is_empty() { f.rule.clone() } else { f.message.clone() } },
        "partialFingerprints": partial_fingerprints(f),
        "properties": { "severity": f.severity.as_str() },
    });
    if let Some(loc) = &f.location {
        let start_line = loc.line.unwrap_or(1).max(1);
        let mut region = json!({ "startLine": start_line });
        if let Some(c) = loc.column.filter(|c| *c >= 1) {
            region["startColumn"] = json!(c);
        }
        let end_line = loc.end_line.filter(|e| *e >= start_line);
        if let Some(e) = end_line {
            region["endLine"] = json!(e);
        }
        // An end column only makes sense after the start on a one-line region.
        let same_line = end_line.is_none_or(|e| e == start_line);
        if let Some(ec) = loc.end_column.filter(|ec| *ec >= 1) {
            let after_start = loc.column.is_none_or(|c| ec > c);
            if !same_line || after_start {
                region["endColumn"] = json!(ec);
            }
        }
        res["locations"] = json!([{
            "physicalLocation": {
                "artifactLocation": { "uri": crate::git::encode_path(&loc.path), "uriBaseId": "%SRCROOT%" },
                "region": region,
            }
        }]);
    }
    if let Some(p) = &f.package {
        res["properties"]["package"] = json!(p.name);
        if let Some(v) = &p.version {
            res["properties"]["packageVersion"] = json!(v);
        }
        if !p.fixed_in.is_empty() {
            res["properties"]["fixedIn"] = json!(p.fixed_in);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::analyze::Location;
    use crate::analyze::identity::{Source, identify};
    use crate::report::{Comparison, Policy};

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(
            crate::git::encode_path("src/a b/ü.py"),
            "src/a%20b/%C3%BC.py"
        );
        assert_eq!(crate::git::encode_path("x-1_~.py"), "x-1_~.py");
    }

    fn validator() -> jsonschema::Validator {
        // The official schema's `run.language` pattern has a stray `]` the
        // validator's regex engine rejects; bgtask never writes `language`.
        let text = include_str!("../../tests/fixtures/sarif-schema-2.1.0.json").replace(
            "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$",
            "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$",
        );
        jsonschema::draft7::new(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    /// bandit's run with two findings in `a.py`, fingerprinted from its text.
    fn report() -> Report {
        let mut run = AnalyzerRun::skipped(
            "bandit",
            Category::Security,
            vec!["security".into()],
            RunStatus::Findings,
            String::new(),
        );
        run.reason = None;
        run.findings = vec![
            Finding::new("bandit", "B307", Severity::Medium, "Use of eval").at(Location::at(
                "a.py",
                2,
                Some(5),
            )),
            Finding::new("bandit", "B105", Severity::Low, "Hard-coded password")
                .at(Location::at("a.py", 3, None)),
        ];
        let text = "def f(s):\n    eval(s)\n    password = 'x'\n";
        let sources = HashMap::from([("a.py".to_owned(), Source::new("a.py", text))]);
        identify(&mut run.findings, &sources);
        Report::new(
            "/repo".into(),
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            None,
            Policy {
                fail_on: None,
                strict_tools: false,
                tasks: Vec::new(),
                explicit: Vec::new(),
            },
            vec![run],
        )
    }

    fn results(doc: &Value) -> Vec<(String, Option<String>)> {
        doc["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["ruleId"].as_str().unwrap().to_owned(),
                    r["baselineState"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn partial_fingerprints_and_baseline_states_are_schema_valid() {
        let validator = validator();
        let mut report = report();
        let doc: Value = serde_json::from_str(&render(&report)).unwrap();
        assert!(validator.is_valid(&doc), "{doc:#}");
        let first = &doc["runs"][0]["results"][0];
        let id = report.findings[0].identity.clone().unwrap();
        assert_eq!(
            first["partialFingerprints"],
            json!({
                "primaryLocationLineHash": format!("{}:0", id.line.unwrap()),
                "bgtask/v1": report.findings[0].fingerprint,
            })
        );
        assert!(results(&doc).iter().all(|(_, state)| state.is_none()));
        // Against a baseline that had the password and a finding now gone.
        let mut gone = Finding::new("bandit", "B602", Severity::High, "shell=True")
            .at(Location::at("b.py", 4, None));
        gone.fingerprint = "0123456789abcdef:0".into();
        let baseline = vec![report.findings[1].clone(), gone];
        report.baseline = Some(Comparison::of(
            ".bgtask-baseline.json",
            &baseline,
            &report,
            &HashMap::new(),
        ));
        let doc: Value = serde_json::from_str(&render(&report)).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let mut wrong = doc.clone();
        wrong["runs"][0]["results"][0]["baselineState"] = json!("gone");
        assert!(!validator.is_valid(&wrong), "the schema checks the states");
        let state = |s: &str| Some(s.to_owned());
        assert_eq!(
            results(&doc),
            [
                ("B307".to_owned(), state("new")),
                ("B105".to_owned(), state("unchanged")),
                ("B602".to_owned(), state("absent")),
            ]
        );
        let rules: Vec<&str> = doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(rules, ["B105", "B307", "B602"]);
    }

    #[test]
    fn first_sentence_is_short() {
        assert_eq!(
            first_sentence("Use of assert. Removed in -O."),
            "Use of assert."
        );
        assert_eq!(first_sentence("one"), "one");
    }
}
