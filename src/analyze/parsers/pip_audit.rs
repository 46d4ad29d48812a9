//! `pip-audit -f json`: `dependencies[].vulns[]` are findings (no severity, no
//! line: the definition's `default_severity` applies and the engine anchors
//! them on the requirements file). Dependencies carrying `skip_reason` were
//! not audited; pip-audit still exits 0 and says "No known vulnerabilities
//! found" even when every one was skipped (offline): some skipped make the
//! run `partial` with the reason, all skipped a `tool_error` ("could not
//! audit any dependency").

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput, truncate};
use crate::analyze::{Finding, Package};

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    version: Option<String>,
    #[serde(default)]
    vulns: Vec<Vuln>,
    skip_reason: Option<String>,
}

#[derive(Deserialize)]
struct Vuln {
    id: String,
    #[serde(default)]
    fix_versions: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    description: String,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let report: Report = out.json("pip-audit JSON")?;
    let mut parsed = Parsed::default();
    let total = report.dependencies.len();
    let mut skipped = Vec::new();
    for dep in report.dependencies {
        if let Some(reason) = dep.skip_reason {
            skipped.push((dep.name, reason));
            continue;
        }
        for v in dep.vulns {
            let version = dep.version.as_deref().unwrap_or("?");
            let fix = if v.fix_versions.is_empty() {
                "no fix available".to_owned()
            } else {
                format!("fix: upgrade to {}", v.fix_versions.join(" or "))
            };
            let aliases = if v.aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.aliases.join(", "))
            };
            let first_line = v.description.lines().next().unwrap_or("").trim();
            let mut f = Finding::new(
                out.name(),
                v.id.clone(),
                out.def.default_severity,
                format!(
                    "{} {version}{aliases}: {}; {fix}",
                    dep.name,
                    truncate(first_line, 240)
                ),
            );
            f.package = Some(Package {
                name: dep.name.clone(),
                version: dep.version.clone(),
                fixed_in: v.fix_versions,
            });
            if v.id.starts_with("GHSA-") {
                f.help_uri = Some(format!("https://github.com/advisories/{}", v.id));
            }
            parsed.findings.push(f);
        }
    }
    if let Some((first, reason)) = skipped.first() {
        if skipped.len() == total {
            // Nothing was analysed: a failure of the tool, never "✓".
            parsed.fatal = Some(format!(
                "could not audit any dependency: none of the {total} could be audited ({first}: {reason}); is the vulnerability service reachable? (`--offline` skips network audits)"
            ));
        } else {
            parsed.incomplete.push(format!(
                "{} of {total} dependencies were not audited ({first}: {reason})",
                skipped.len()
            ));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture};
    use crate::analyze::{RunStatus, Severity};

    #[test]
    fn offline_run_that_skipped_everything_is_a_tool_error_not_clean() {
        let doc = fixture("pip-audit-all-skipped.json");
        let case = Case::new("pip-audit", 0).report(&doc);
        let run = classify(
            &case.def(),
            0,
            case.parse(),
            b"No known vulnerabilities found\n",
        );
        assert_eq!(run.status, RunStatus::ToolError);
        let reason = run.reason.unwrap();
        assert!(
            reason.contains("could not audit any dependency: none of the 5 could be audited")
                && reason.contains("--offline"),
            "{reason}"
        );
    }

    #[test]
    fn vulnerabilities_and_a_partial_skip() {
        let doc = fixture("pip-audit-vulns.json");
        let case = Case::new("pip-audit", 1).report(&doc);
        let parsed = case.parse().unwrap();
        let ids: Vec<&str> = parsed.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            ids,
            ["PYSEC-2018-28", "GHSA-j8r2-6x86-q33q", "PYSEC-2019-132"]
        );
        assert!(parsed.findings.iter().all(|f| f.severity == Severity::High));
        let f = &parsed.findings[0];
        assert_eq!(f.package.as_ref().unwrap().fixed_in, ["2.20.0"]);
        assert!(
            f.message.starts_with("requests 2.19.0 (CVE-2018-18074"),
            "{}",
            f.message
        );
        assert_eq!(
            parsed.incomplete,
            [
                "1 of 4 dependencies were not audited (mylocalpkg: Dependency not found on PyPI and could not be audited: mylocalpkg (0.1))"
            ]
        );
    }
}
