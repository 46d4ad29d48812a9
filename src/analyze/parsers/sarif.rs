//! SARIF 2.1.0 from any tool (semgrep, gitleaks, trivy, codeql, ruff …), for
//! user-defined analyzers. Severity comes from GitHub's
//! `properties.security-severity` when present, else from the result's
//! `level` (or the rule's default level) through the definition's `severity`
//! table, with error → high, warning → medium, note → low, none → info when
//! the table does not say.

use std::collections::HashMap;

use serde_json::Value;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Location, Severity};

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let doc: Value = out.json("SARIF")?;
    let runs = doc
        .get("runs")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::malformed("SARIF", "no `runs` array"))?;
    let mut parsed = Parsed::default();
    for run in runs {
        let rules = rule_index(run);
        for r in run
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            parsed.findings.push(result_finding(out, &rules, r));
        }
        for n in run
            .pointer("/invocations/0/toolExecutionNotifications")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if n.get("level").and_then(Value::as_str) == Some("error") {
                let text = n
                    .pointer("/message/text")
                    .and_then(Value::as_str)
                    .unwrap_or("tool error");
                parsed.incomplete.push(text.to_owned());
            }
        }
    }
    Ok(parsed)
}

/// One finding for a SARIF `result`, with its rule looked up in the run's
/// rule index.
fn result_finding(out: &ToolOutput<'_>, rules: &HashMap<&str, &Value>, r: &Value) -> Finding {
    let rule_id = r
        .get("ruleId")
        .and_then(Value::as_str)
        .or_else(|| r.pointer("/rule/id").and_then(Value::as_str))
        .unwrap_or("sarif")
        .to_owned();
    let rule = rules.get(rule_id.as_str()).copied();
    let severity = result_severity(out, rule, r);
    let message = r
        .pointer("/message/text")
        .and_then(Value::as_str)
        .or_else(|| r.pointer("/message/markdown").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned();
    let mut f = Finding::new(out.name(), rule_id, severity, message);
    f.location = r
        .pointer("/locations/0/physicalLocation")
        .and_then(|p| location(out, p));
    f.help_uri = rule
        .and_then(|r| r.get("helpUri"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    f.rule_name = rule
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    f.identity = tool_id(r).map(crate::analyze::Identity::from_tool);
    f
}

/// The result's own id, stable across runs by SARIF's definition:
/// its `fingerprints`, else its `partialFingerprints` (each `name=value`,
/// sorted); `None` when it has neither.
fn tool_id(r: &Value) -> Option<String> {
    ["fingerprints", "partialFingerprints"]
        .iter()
        .find_map(|k| {
            let mut parts: Vec<String> = r
                .get(k)?
                .as_object()?
                .iter()
                .filter_map(|(name, v)| Some(format!("{name}={}", v.as_str()?)))
                .collect();
            parts.sort();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
}

/// A result's severity: its `security-severity` score when there is one,
/// else its level (or the rule's default) through the definition's table or
/// the built-in level mapping.
fn result_severity(out: &ToolOutput<'_>, rule: Option<&Value>, r: &Value) -> Severity {
    let level = r
        .get("level")
        .and_then(Value::as_str)
        .or_else(|| {
            rule.and_then(|r| r.pointer("/defaultConfiguration/level"))
                .and_then(Value::as_str)
        })
        .unwrap_or("warning");
    let security = r
        .pointer("/properties/security-severity")
        .or_else(|| rule.and_then(|r| r.pointer("/properties/security-severity")))
        .and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .or_else(|| v.as_f64())
        });
    match security {
        Some(score) => from_score(score),
        None if out
            .def
            .severity_map
            .keys()
            .any(|k| k.eq_ignore_ascii_case(level)) =>
        {
            out.def.severity_for(level)
        }
        None => match level {
            "error" => Severity::High,
            "warning" => Severity::Medium,
            "note" => Severity::Low,
            _ => Severity::Info,
        },
    }
}

fn rule_index(run: &Value) -> HashMap<&str, &Value> {
    run.pointer("/tool/driver/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r.get("id")?.as_str()?, r)))
        .collect()
}

fn from_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

fn location(out: &ToolOutput<'_>, p: &Value) -> Option<Location> {
    let uri = p.pointer("/artifactLocation/uri")?.as_str()?;
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let path = percent_decode(path);
    let num = |k: &str| {
        p.pointer(&format!("/region/{k}"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let loc = Location::at(
        out.rel_path(&path),
        num("startLine").unwrap_or(0),
        num("startColumn"),
    );
    Some(loc.with_end(num("endLine"), num("endColumn")))
}

/// `%20` → space; SARIF URIs are percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            // Both digits are ASCII, so the slice is on char boundaries.
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::AnalyzerDef;
    use crate::analyze::parsers::testing::{Case, ROOT, builtin};
    use crate::analyze::vocabulary::ParserKind;

    fn sarif_def() -> AnalyzerDef {
        let mut def = (*builtin("eslint")).clone();
        if let crate::analyze::Engine::External(spec) = &mut def.engine {
            spec.parser = ParserKind::Sarif;
        }
        def.severity_map.clear();
        def.name = "semgrep".into();
        def
    }

    #[test]
    fn results_levels_and_security_severity() {
        let doc = format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"x","rules":[
                {{"id":"R1","name":"sql","helpUri":"https://x/R1","properties":{{"security-severity":"9.8"}}}},
                {{"id":"R2","defaultConfiguration":{{"level":"note"}}}}]}}}},
              "results":[
                {{"ruleId":"R1","level":"warning","message":{{"text":"sqli"}},"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"file://{ROOT}/src/a%20b.py"}},"region":{{"startLine":3,"startColumn":2,"endColumn":9}}}}}}]}},
                {{"ruleId":"R2","message":{{"text":"meh"}},"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"src/c.py"}},"region":{{"startLine":1}}}}}}]}},
                {{"ruleId":"R3","level":"error","message":{{"text":"bad"}}}}],
              "invocations":[{{"executionSuccessful":true,"toolExecutionNotifications":[{{"level":"error","message":{{"text":"could not parse src/d.py"}}}}]}}]}}]}}"#
        );
        let def = sarif_def();
        let parsed = Case::new("eslint", 1)
            .report(doc.as_bytes())
            .parse_with(&def)
            .unwrap();
        let got: Vec<(&str, Severity, Option<&str>, Option<u32>)> = parsed
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.severity, f.path(), f.line()))
            .collect();
        assert_eq!(
            got,
            [
                ("R1", Severity::Critical, Some("src/a b.py"), Some(3)),
                ("R2", Severity::Low, Some("src/c.py"), Some(1)),
                ("R3", Severity::High, None, None),
            ]
        );
        assert_eq!(
            parsed.findings[0].location.as_ref().unwrap().end_column,
            Some(9)
        );
        assert_eq!(parsed.incomplete, ["could not parse src/d.py"]);
    }

    #[test]
    fn not_sarif_is_malformed() {
        let def = sarif_def();
        assert!(
            Case::new("eslint", 0)
                .report(b"{}")
                .parse_with(&def)
                .is_err()
        );
    }

    #[test]
    fn a_results_own_fingerprints_are_its_stable_id() {
        let doc = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[
            {"ruleId":"R1","message":{"text":"a"},"fingerprints":{"v2":"b","v1":"a"},"partialFingerprints":{"p":"x"}},
            {"ruleId":"R1","message":{"text":"b"},"partialFingerprints":{"primaryLocationLineHash":"39fa2ee980eb94b0:1"}},
            {"ruleId":"R1","message":{"text":"c"},"fingerprints":{"n":3}}]}]}"#;
        let parsed = Case::new("eslint", 1)
            .report(doc.as_bytes())
            .parse_with(&sarif_def())
            .unwrap();
        let ids: Vec<Option<&str>> = parsed
            .findings
            .iter()
            .map(|f| f.identity.as_ref().and_then(|i| i.stable.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                Some("v1=a v2=b"),
                Some("primaryLocationLineHash=39fa2ee980eb94b0:1"),
                None
            ]
        );
    }
}
