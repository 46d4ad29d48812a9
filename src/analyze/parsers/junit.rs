//! JUnit XML (pytest, unittest-xml-reporting, node --test, surefire, gradle).
//! Accepts a `<testsuites>` or `<testsuite>` root, `<testcase>` directly
//! under `<testsuites>`, nested suites and missing optional attributes.
//! Failed and errored test cases are findings. pytest's xunit1 `line` is
//! 0-based; the traceback line in the failure text is preferred when it
//! names the same file.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::{ParseError, Parsed, TestCounts, ToolOutput, truncate};
use crate::analyze::{Finding, Location};

#[derive(Default)]
struct Case {
    classname: String,
    name: String,
    file: Option<String>,
    line: Option<u32>,
    outcome: Option<(&'static str, String, String)>, // (kind, message, text)
    skipped: bool,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let docs: Vec<&[u8]> = if out.reports.is_empty() {
        vec![out.document()?]
    } else {
        out.reports.iter().map(|r| r.bytes.as_slice()).collect()
    };
    let mut parsed = Parsed::default();
    let mut counts = TestCounts::default();
    let mut uncollected = Vec::new();
    for doc in docs {
        for case in cases(doc)? {
            if let Some(why) = collection_error(&case) {
                uncollected.push(why);
                continue;
            }
            counts.total += 1;
            if case.skipped {
                counts.skipped += 1;
            }
            let Some((kind, message, text)) = case.outcome else {
                continue;
            };
            if kind == "failure" {
                counts.failed += 1;
            } else {
                counts.errors += 1;
            }
            let id = if case.classname.is_empty() {
                case.name.clone()
            } else {
                format!("{}::{}", case.classname, case.name)
            };
            let detail = if message.trim().is_empty() {
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            } else {
                message.lines().next().unwrap_or("").trim().to_owned()
            };
            let verb = if kind == "failure" {
                "failed"
            } else {
                "errored"
            };
            let mut f = Finding::new(
                out.name(),
                format!("test-{kind}"),
                out.def.severity_for(kind),
                format!("{id} {verb}: {}", truncate(&detail, 300)),
            );
            if let Some(file) = case.file.as_deref().map(|p| out.rel_path(p)) {
                let line = traceback_line(&text, &file).or(case.line.map(|l| l + 1));
                f.location = Some(Location::at(file, line.unwrap_or(0), None));
            }
            parsed.findings.push(f);
        }
    }
    if !uncollected.is_empty() {
        // Not a failed test: the runner could not load a test module (its
        // imports, a syntax error) and pytest stops before running any.
        parsed.fatal = Some(format!(
            "could not collect {}",
            truncate(&uncollected.join("; "), 1000)
        ));
    } else if counts.total == 0 {
        parsed.nothing_to_do = Some("no tests ran".to_owned());
    }
    parsed.tests = Some(counts);
    Ok(parsed)
}

/// pytest reports a test module it could not import as an errored case
/// named after the module, message `collection failure`: what went wrong
/// (the traceback's `E` lines) and where (its last frame in the module).
fn collection_error(case: &Case) -> Option<String> {
    let (kind, message, text) = case.outcome.as_ref()?;
    if *kind != "error" || message != "collection failure" {
        return None;
    }
    let file = case.file.clone().unwrap_or_else(|| case.name.clone());
    let at = traceback_line(text, &file).map_or(file.clone(), |l| format!("{file}:{l}"));
    let error: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("E "))
        .map(str::trim)
        .collect();
    let what = if error.is_empty() {
        text.lines().next().unwrap_or("").trim().to_owned()
    } else {
        error.join(" ")
    };
    Some(format!("{at}: {what}"))
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(std::borrow::Cow::into_owned)
}

#[expect(
    clippy::too_many_lines,
    reason = "one XML event loop; splitting it would scatter its state"
)]
fn cases(doc: &[u8]) -> Result<Vec<Case>, ParseError> {
    let malformed = |e: &dyn std::fmt::Display| ParseError::malformed("JUnit XML", e);
    let mut reader = Reader::from_reader(doc);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    let mut capture: Option<(&'static str, String, String)> = None;
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(&e))?;
        match event {
            Event::Start(e) | Event::Empty(e) if !saw_root => {
                let n = e.name();
                let n = n.as_ref();
                if n != "testsuites" && n != "testsuite" {
                    return Err(malformed(&format!(
                        "root element is <{n}>, expected <testsuites> or <testsuite>"
                    )));
                }
                saw_root = true;
            }
            Event::Start(e) => match e.name().as_ref() {
                "testcase" => current = Some(new_case(&e)),
                "failure" | "error" if current.is_some() => {
                    let kind = if e.name().as_ref() == "failure" {
                        "failure"
                    } else {
                        "error"
                    };
                    capture = Some((kind, attr(&e, "message").unwrap_or_default(), String::new()));
                }
                "skipped" => {
                    if let Some(c) = current.as_mut() {
                        c.skipped = true;
                    }
                }
                _ => {}
            },
            Event::Empty(e) => match e.name().as_ref() {
                "testcase" => out.push(new_case(&e)),
                "failure" | "error" => {
                    if let Some(c) = current.as_mut() {
                        let kind = if e.name().as_ref() == "failure" {
                            "failure"
                        } else {
                            "error"
                        };
                        c.outcome.get_or_insert((
                            kind,
                            attr(&e, "message").unwrap_or_default(),
                            String::new(),
                        ));
                    }
                }
                "skipped" => {
                    if let Some(c) = current.as_mut() {
                        c.skipped = true;
                    }
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some((_, _, text)) = capture.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, _, text)) = capture.as_mut() {
                    let name = r.xml10_content();
                    text.push_str(match name.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                    if let Ok(Some(ch)) = r.resolve_char_ref() {
                        text.push(ch);
                    }
                }
            }
            Event::CData(t) => {
                if let Some((_, _, text)) = capture.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::End(e) => match e.name().as_ref() {
                "failure" | "error" => {
                    if let (Some(c), Some(cap)) = (current.as_mut(), capture.take()) {
                        c.outcome.get_or_insert(cap);
                    }
                }
                "testcase" => out.extend(current.take()),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(ParseError::Missing(Some("no XML elements".to_owned())));
    }
    Ok(out)
}

fn new_case(e: &BytesStart<'_>) -> Case {
    Case {
        classname: attr(e, "classname").unwrap_or_default(),
        name: attr(e, "name").unwrap_or_default(),
        file: attr(e, "file"),
        line: attr(e, "line").and_then(|l| l.parse().ok()),
        ..Case::default()
    }
}

/// `tests/test_x.py:9: AssertionError` → 9, when the path matches `file`.
fn traceback_line(text: &str, file: &str) -> Option<u32> {
    text.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix(file)?.strip_prefix(':')?;
        rest.split(':').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::super::TestCounts;
    use crate::analyze::Severity;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};

    #[test]
    fn a_pytest_collection_error_is_a_tool_error_with_its_cause() {
        let doc = fixture("pytest-collection-error.xml");
        let case = Case::new("pytest", 2).report(&doc);
        let parsed = case.parse().unwrap();
        assert!(parsed.findings.is_empty(), "not a failed test");
        assert_eq!(
            parsed.fatal.as_deref(),
            Some(
                "could not collect tests/test_calc.py:1: ModuleNotFoundError: No module named 'nonexistent_mod'"
            )
        );
        assert_eq!(parsed.tests.unwrap().total, 0);
        let run = crate::analyze::classify::classify(&case.def(), 2, case.parse(), b"");
        assert_eq!(run.status, crate::analyze::RunStatus::ToolError);
    }

    #[test]
    fn real_pytest_xunit1_report() {
        let doc = fixture("pytest-xunit1.xml");
        let parsed = Case::new("pytest", 1).report(&doc).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [("test-failure".to_owned(), Some(9))]
        );
        let f = &parsed.findings[0];
        assert_eq!(f.path(), Some("tests/test_util.py"));
        assert_eq!(f.severity, Severity::High);
        assert_eq!(
            f.message,
            "tests.test_util::test_is_even_fails failed: assert False"
        );
        assert_eq!(
            parsed.tests,
            Some(TestCounts {
                total: 3,
                failed: 1,
                errors: 0,
                skipped: 0
            })
        );
    }

    #[test]
    fn testsuite_root_and_bare_testcases_and_missing_attributes() {
        let suite = br#"<?xml version="1.0"?><testsuite name="x"><testcase name="a"/><testcase name="b"><error message="boom"/></testcase><testcase name="c"><skipped/></testcase></testsuite>"#;
        let parsed = Case::new("pytest", 1).report(suite).parse().unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].rule, "test-error");
        assert_eq!(parsed.findings[0].message, "b errored: boom");
        assert!(parsed.findings[0].location.is_none());
        assert_eq!(
            parsed.tests,
            Some(TestCounts {
                total: 3,
                failed: 0,
                errors: 1,
                skipped: 1
            })
        );

        // node --test: <testcase> directly under <testsuites>.
        let node = br#"<testsuites><testcase name="adds" time="0.1" classname="test"/><testcase name="fails" classname="test"><failure message="Expected values to be strictly equal" type="testCodeFailure">AssertionError [ERR_ASSERTION]</failure></testcase></testsuites>"#;
        let parsed = Case::new("pytest", 1).report(node).parse().unwrap();
        assert_eq!(
            parsed.findings[0].message,
            "test::fails failed: Expected values to be strictly equal"
        );
    }

    #[test]
    fn surefire_report() {
        let doc = fixture("surefire-TEST-AppTest.xml");
        let parsed = Case::new("maven", 1).report(&doc).parse().unwrap();
        let msgs: Vec<&str> = parsed.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "com.example.AppTest::testDivide failed: expected:<2> but was:<3>",
                "com.example.AppTest::testParse errored: For input string: \"x\""
            ]
        );
        assert_eq!(
            parsed.tests,
            Some(TestCounts {
                total: 4,
                failed: 1,
                errors: 1,
                skipped: 1
            })
        );
    }

    #[test]
    fn no_tests_is_nothing_to_do_and_garbage_is_an_error() {
        let parsed = Case::new("pytest", 0)
            .report(b"<testsuites/>")
            .parse()
            .unwrap();
        assert_eq!(parsed.nothing_to_do.as_deref(), Some("no tests ran"));
        assert!(
            Case::new("pytest", 0)
                .report(b"<html><body/></html>")
                .parse()
                .is_err()
        );
        assert!(Case::new("pytest", 0).report(b"not xml").parse().is_err());
    }
}
