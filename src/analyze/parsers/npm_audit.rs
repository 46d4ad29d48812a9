//! `npm audit --json` (report version 2). When the advisory endpoint fails,
//! npm still exits 1 and prints JSON with `message`/`statusCode` and no
//! `vulnerabilities`: that is a tool error, never "clean" and never findings.
//!
//! One finding per (package, advisory); a package that is vulnerable only
//! through its dependencies (`via` names packages, not advisories) gets one
//! `vulnerable-dependency` finding, as npm counts it too.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Package};

#[derive(Deserialize)]
struct Report {
    #[serde(rename = "auditReportVersion")]
    version: Option<u32>,
    vulnerabilities: Option<BTreeMap<String, Vulnerability>>,
    message: Option<String>,
    #[serde(rename = "statusCode")]
    status_code: Option<u16>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Vulnerability {
    name: Option<String>,
    severity: String,
    #[serde(default)]
    via: Vec<Value>,
    range: Option<String>,
    #[serde(rename = "fixAvailable")]
    fix_available: Option<Value>,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let report: Report = out.json("npm audit JSON")?;
    let mut parsed = Parsed::default();
    let Some(vulns) = report.vulnerabilities else {
        parsed.fatal = Some(advisories_unavailable(
            report.message,
            report.error.as_ref(),
            report.status_code,
        ));
        return Ok(parsed);
    };
    if let Some(v) = report.version.filter(|v| *v != 2) {
        parsed
            .incomplete
            .push(format!("unexpected npm audit report version {v}"));
    }
    for (key, v) in vulns {
        push_package_findings(out, key, v, &mut parsed.findings);
    }
    Ok(parsed)
}

/// The tool error for a report without `vulnerabilities`: why npm could not
/// get advisories.
fn advisories_unavailable(
    message: Option<String>,
    error: Option<&Value>,
    status_code: Option<u16>,
) -> String {
    let detail = message
        .or_else(|| error.and_then(error_text))
        .unwrap_or_else(|| "no `vulnerabilities` in the report".to_owned());
    let status = status_code
        .map(|c| format!(" (HTTP {c})"))
        .unwrap_or_default();
    format!(
        "npm audit could not get advisories{status}: {detail}; the registry's audit endpoint is unreachable or refused the request"
    )
}

/// The findings for one vulnerable package: one per advisory in `via`, or a
/// single `vulnerable-dependency` finding when `via` names only packages.
fn push_package_findings(
    out: &ToolOutput<'_>,
    key: String,
    v: Vulnerability,
    findings: &mut Vec<Finding>,
) {
    let name = v.name.unwrap_or(key);
    let range = v.range.unwrap_or_default();
    let fix = fix_text(v.fix_available.as_ref());
    let package = Package {
        name: name.clone(),
        version: None,
        fixed_in: fix_version(v.fix_available.as_ref()).into_iter().collect(),
    };
    let mut advisories = 0;
    let mut through = Vec::new();
    for via in &v.via {
        match via {
            Value::Object(adv) => {
                advisories += 1;
                let vuln = VulnContext {
                    name: &name,
                    range: &range,
                    severity: &v.severity,
                    fix: &fix,
                    package: &package,
                };
                findings.push(advisory_finding(out, adv, &vuln));
            }
            Value::String(dep) => through.push(dep.as_str()),
            _ => {}
        }
    }
    if advisories == 0 {
        let mut f = Finding::new(
            out.name(),
            "vulnerable-dependency",
            out.def.severity_for(&v.severity),
            format!(
                "{name} {range} depends on vulnerable {}; {fix}",
                through.join(", ")
            ),
        );
        f.package = Some(package);
        findings.push(f);
    }
}

/// What an advisory finding takes from its package's entry: the fallbacks
/// for an advisory's own range and severity, and the fix text.
struct VulnContext<'a> {
    name: &'a str,
    range: &'a str,
    severity: &'a str,
    fix: &'a str,
    package: &'a Package,
}

/// One finding for an advisory object in a package's `via` list.
fn advisory_finding(
    out: &ToolOutput<'_>,
    adv: &serde_json::Map<String, Value>,
    vuln: &VulnContext<'_>,
) -> Finding {
    let url = adv.get("url").and_then(Value::as_str);
    let rule = url
        .and_then(|u| u.rsplit('/').next())
        .filter(|id| id.starts_with("GHSA-"))
        .map(str::to_owned)
        .or_else(|| adv.get("source").map(|s| format!("npm-advisory-{s}")))
        .unwrap_or_else(|| "npm-advisory".to_owned());
    let title = adv
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("vulnerability");
    let adv_range = adv
        .get("range")
        .and_then(Value::as_str)
        .unwrap_or(vuln.range);
    let severity = adv
        .get("severity")
        .and_then(Value::as_str)
        .unwrap_or(vuln.severity);
    let mut f = Finding::new(
        out.name(),
        rule,
        out.def.severity_for(severity),
        format!("{title} in {} {adv_range}; {}", vuln.name, vuln.fix),
    );
    f.package = Some(vuln.package.clone());
    f.help_uri = url.map(str::to_owned);
    f
}

fn error_text(e: &Value) -> Option<String> {
    let summary = e
        .get("summary")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let detail = e
        .get("detail")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match (summary, detail) {
        (Some(s), Some(d)) => Some(format!("{s} {d}")),
        (Some(s), None) | (None, Some(s)) => Some(s.to_owned()),
        (None, None) => None,
    }
}

fn fix_version(fix: Option<&Value>) -> Option<String> {
    let obj = fix?.as_object()?;
    Some(format!(
        "{}@{}",
        obj.get("name")?.as_str()?,
        obj.get("version")?.as_str()?
    ))
}

fn fix_text(fix: Option<&Value>) -> String {
    match fix {
        Some(Value::Bool(true)) => "fix available via `npm audit fix`".to_owned(),
        Some(Value::Object(o)) => {
            let major = o.get("isSemVerMajor").and_then(Value::as_bool) == Some(true);
            let target = fix_version(fix).unwrap_or_default();
            if major {
                format!("fix: upgrade to {target} (breaking change, `npm audit fix --force`)")
            } else {
                format!("fix: upgrade to {target}")
            }
        }
        _ => "no fix available".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture};
    use crate::analyze::{RunStatus, Severity};

    #[test]
    fn vulnerabilities_become_one_finding_per_advisory() {
        let doc = fixture("npm-audit-vulns.json");
        let parsed = Case::new("npm-audit", 1).stdout(&doc).parse().unwrap();
        let got: Vec<(&str, Severity, &str)> = parsed
            .findings
            .iter()
            .map(|f| {
                (
                    f.rule.as_str(),
                    f.severity,
                    f.package.as_ref().unwrap().name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("vulnerable-dependency", Severity::Critical, "express-thing"),
                ("GHSA-jf85-cpcp-j695", Severity::Critical, "lodash"),
                ("GHSA-35jh-r3h4-6jhm", Severity::High, "lodash"),
                ("GHSA-vh95-rmgr-6w4m", Severity::Medium, "minimist"),
            ]
        );
        assert!(
            parsed.findings[1]
                .message
                .contains("fix: upgrade to lodash@4.17.21")
        );
        assert!(parsed.findings[3].message.contains("no fix available"));
        assert_eq!(
            parsed.findings[1].package.as_ref().unwrap().fixed_in,
            ["lodash@4.17.21"]
        );
    }

    #[test]
    fn endpoint_error_is_a_tool_error_not_clean() {
        let doc = fixture("npm-audit-endpoint-error.json");
        let case = Case::new("npm-audit", 1).stdout(&doc);
        let run = classify(
            &case.def(),
            1,
            case.parse(),
            b"npm error audit endpoint returned an error",
        );
        assert_eq!(run.status, RunStatus::ToolError);
        let reason = run.reason.unwrap();
        assert!(reason.contains("HTTP 405"), "{reason}");
        assert!(run.findings.is_empty());
    }

    #[test]
    fn clean_report() {
        let doc = br#"{"auditReportVersion":2,"vulnerabilities":{},"metadata":{"vulnerabilities":{"total":0}}}"#;
        let case = Case::new("npm-audit", 0).stdout(doc);
        let run = classify(&case.def(), 0, case.parse(), b"");
        assert_eq!(run.status, RunStatus::Clean);
    }
}
