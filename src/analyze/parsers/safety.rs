//! safety reports: `safety scan --output json` (schema 3.0: vulnerabilities
//! under `scan_results.{files,projects[].files}[].results.dependencies[]`)
//! and `safety check --json` (a top-level `vulnerabilities[]`). Vulnerabilities
//! marked `ignored` by the project's policy are left out.

use serde_json::Value;

use super::{ParseError, Parsed, ToolOutput, truncate};
use crate::analyze::{Finding, Package};

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let doc: Value = out.json("safety JSON")?;
    let mut parsed = Parsed::default();
    if let Some(results) = doc.get("scan_results") {
        let mut files: Vec<&Value> = results
            .get("files")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for project in results
            .get("projects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            files.extend(
                project
                    .get("files")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
        }
        for file in files {
            scan_file(out, file, &mut parsed);
        }
    } else if let Some(vulns) = doc.get("vulnerabilities").and_then(Value::as_array) {
        for v in vulns {
            check_vuln(out, v, &mut parsed);
        }
    } else {
        return Err(ParseError::malformed(
            "safety JSON",
            "neither `scan_results` (safety scan) nor `vulnerabilities` (safety check) found",
        ));
    }
    Ok(parsed)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn scan_file(out: &ToolOutput<'_>, file: &Value, parsed: &mut Parsed) {
    let location = str_of(file, "location").map(|l| out.rel_path(l));
    let deps = file
        .pointer("/results/dependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for dep in deps {
        let name = str_of(dep, "name").unwrap_or("?");
        for spec in dep
            .get("specifications")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let raw = str_of(spec, "raw").unwrap_or(name);
            let recommended = spec
                .pointer("/vulnerabilities/remediation/recommended")
                .and_then(Value::as_str);
            let known = spec
                .pointer("/vulnerabilities/known_vulnerabilities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for v in known {
                if v.get("ignored").is_some_and(|i| !i.is_null()) {
                    continue;
                }
                let id = str_of(v, "id").unwrap_or("?");
                let spec_text = match v.get("vulnerable_spec") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                let fix = recommended.map_or_else(
                    || "no fix recommended".to_owned(),
                    |r| format!("fix: upgrade to {r}"),
                );
                let mut f = Finding::new(
                    out.name(),
                    format!("safety-{id}"),
                    out.def.default_severity,
                    format!("{raw} is vulnerable ({spec_text}); {fix}"),
                );
                f.package = Some(Package {
                    name: name.to_owned(),
                    version: raw.split("==").nth(1).map(str::to_owned),
                    fixed_in: recommended.map(str::to_owned).into_iter().collect(),
                });
                if let Some(l) = &location {
                    f.location = Some(crate::analyze::Location::file(l.clone()));
                }
                f.help_uri = Some(format!("https://data.safetycli.com/v/{id}/eda"));
                parsed.findings.push(f);
            }
        }
    }
}

fn check_vuln(out: &ToolOutput<'_>, v: &Value, parsed: &mut Parsed) {
    if v.get("ignored").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let id = str_of(v, "vulnerability_id").unwrap_or("?");
    let name = str_of(v, "package_name").unwrap_or("?");
    let version = str_of(v, "analyzed_version");
    let severity = v
        .pointer("/severity/cvssv3/base_severity")
        .and_then(Value::as_str)
        .map_or(out.def.default_severity, |s| out.def.severity_for(s));
    let fixed: Vec<String> = v
        .get("fixed_versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let advisory = str_of(v, "advisory").unwrap_or("");
    let cve = str_of(v, "CVE")
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let mut f = Finding::new(
        out.name(),
        format!("safety-{id}"),
        severity,
        format!(
            "{name} {}{cve}: {}",
            version.unwrap_or("?"),
            truncate(advisory.trim(), 240)
        ),
    );
    f.package = Some(Package {
        name: name.to_owned(),
        version: version.map(str::to_owned),
        fixed_in: fixed,
    });
    f.help_uri = str_of(v, "more_info_url").map(str::to_owned);
    parsed.findings.push(f);
}

#[cfg(test)]
mod tests {
    use crate::analyze::classify::classify;
    use crate::analyze::parsers::testing::{Case, fixture};
    use crate::analyze::{RunStatus, Severity};

    #[test]
    fn scan_schema_3() {
        let doc = fixture("safety-scan.json");
        let parsed = Case::new("safety", 64).stdout(&doc).parse().unwrap();
        let ids: Vec<&str> = parsed.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(
            ids,
            ["safety-36546", "safety-58755"],
            "the ignored one is left out"
        );
        assert_eq!(parsed.findings[0].path(), Some("requirements.txt"));
        assert_eq!(
            parsed.findings[0]
                .package
                .as_ref()
                .unwrap()
                .version
                .as_deref(),
            Some("2.19.0")
        );
    }

    #[test]
    fn check_json_with_cvss_severity() {
        let doc = fixture("safety-check.json");
        let parsed = Case::new("safety", 64).stdout(&doc).parse().unwrap();
        let got: Vec<(&str, Severity)> = parsed
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("safety-36546", Severity::Medium),
                ("safety-58755", Severity::High)
            ]
        );
    }

    #[test]
    fn offline_is_a_tool_error() {
        let stderr = fixture("safety-offline.stderr");
        let case = Case::new("safety", 1).stderr(&stderr);
        let run = classify(&case.def(), 1, case.parse(), &stderr);
        assert_eq!(run.status, RunStatus::ToolError);
        assert!(run.reason.unwrap().contains("ConnectError"));
    }
}
