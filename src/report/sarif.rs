//! SARIF 2.1.0, valid against the OASIS schema and shaped for GitHub code
//! scanning: one run per analyzer (distinct `tool.driver.name`), `results:
//! []` for a clean run, repo-relative percent-encoded URIs under
//! `%SRCROOT%`, lines and columns ≥ 1, `ruleId` with a `rules[]` entry
//! carrying `shortDescription`, `partialFingerprints.primaryLocationLineHash`,
//! and `security-severity` on security rules.
//!
//! Only analyzers that actually completed (clean, findings, partial) get a
//! run: an empty run for a tool that failed or was missing would tell code
//! scanning that every earlier alert of that tool was fixed.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::model::Report;
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

/// RFC 3986 path encoding: unreserved characters and `/` stay.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub fn render(report: &Report) -> String {
    let runs: Vec<Value> = report
        .runs
        .iter()
        // Every analyzer that ran or should have: a failed one must not
        // look clean to a code-scanning upload. Only "does not apply" is
        // left out.
        .filter(|r| r.status != RunStatus::NotApplicable)
        .map(|r| run(r, &report.findings_of(&r.analyzer).collect::<Vec<_>>()))
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

fn run(r: &AnalyzerRun, findings: &[&Finding]) -> Value {
    let security = matches!(r.category, Category::Security | Category::Audit);
    // One rule per rule id, described by its name or first message.
    let mut rules: BTreeMap<&str, (&Finding, Severity)> = BTreeMap::new();
    for f in findings {
        let e = rules.entry(f.rule.as_str()).or_insert((f, f.severity));
        e.1 = e.1.max(f.severity);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rules_json: Vec<Value> = rules
        .iter()
        .map(|(id, (f, worst))| {
            let short = f
                .rule_name
                .clone()
                .unwrap_or_else(|| first_sentence(&f.message));
            let mut rule = json!({
                "id": id,
                "shortDescription": { "text": short },
                "defaultConfiguration": { "level": level(*worst) },
                "properties": { "tags": [category_tag(r.category)] },
            });
            if let Some(name) = &f.rule_name {
                rule["name"] = json!(name);
            }
            if let Some(help) = &f.help_uri {
                rule["helpUri"] = json!(help);
            }
            if security {
                rule["properties"]["security-severity"] = json!(security_severity(*worst));
                let tag = category_tag(r.category);
                rule["properties"]["tags"] = if tag == "security" {
                    json!(["security"])
                } else {
                    json!([tag, "security"])
                };
            }
            rule
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| result(f, index[f.rule.as_str()]))
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
        "partialFingerprints": { "primaryLocationLineHash": f.fingerprint },
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
                "artifactLocation": { "uri": uri(&loc.path), "uriBaseId": "%SRCROOT%" },
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
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(uri("src/a b/ü.py"), "src/a%20b/%C3%BC.py");
        assert_eq!(uri("x-1_~.py"), "x-1_~.py");
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
