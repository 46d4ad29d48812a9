//! Where a finding's rule is documented: a link (the tool's own, else the
//! documented URL pattern of that tool's rules) and the documentation text
//! the tool itself prints for the rule (pylint `--help-msg`, `ruff rule`,
//! `cargo clippy --explain`, `rustc --explain`).
//!
//! The tool is found as the engine finds it and run in an empty private
//! directory outside the worktree, so no project config, plugin or
//! toolchain file is loaded; under a short time limit, with its output
//! capped. Nothing is said when the tool is missing, fails or does not
//! know the rule. A rule id is passed to a tool only when it has the shape
//! of one (never an option). Owns only this; `explain.rs` uses it.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use super::vocabulary::ParserKind;
use super::{AnalyzerDef, ExternalSpec, Finding};
use crate::run::{self, Ended, Limits, Spec};

/// Most bytes of documentation kept.
const DOC_CAP: usize = 8 * 1024;

/// A rule's link and documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDoc {
    pub help_uri: Option<String>,
    pub documentation: Option<String>,
}

/// The tools whose rules bgtask knows how to document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Pylint,
    Bandit,
    Eslint,
    Ruff,
    /// `cargo clippy` (and the compiler errors it reports).
    Cargo,
    Other,
}

/// Which tool reported the finding: by its definition's parser and
/// command, or without a definition by the analyzer's name.
fn tool(def: Option<&AnalyzerDef>, analyzer: &str) -> Tool {
    let spec = def.and_then(AnalyzerDef::external);
    match spec.map(|s| s.parser) {
        Some(ParserKind::Pylint2Json) => return Tool::Pylint,
        Some(ParserKind::BanditJson) => return Tool::Bandit,
        Some(ParserKind::EslintJson) => return Tool::Eslint,
        Some(ParserKind::CargoJson) => return Tool::Cargo,
        _ => {}
    }
    match spec.map_or(analyzer, |s| s.command.as_str()) {
        "pylint" => Tool::Pylint,
        "bandit" => Tool::Bandit,
        "eslint" => Tool::Eslint,
        "ruff" => Tool::Ruff,
        "clippy" if def.is_none() => Tool::Cargo,
        _ => Tool::Other,
    }
}

/// The rule's link and, with `timeout` for the tool to answer, its
/// documentation from the tool installed for the project at `root`.
pub fn rule_doc(
    root: &Path,
    finding: &Finding,
    def: Option<&AnalyzerDef>,
    timeout: Duration,
) -> RuleDoc {
    let tool = tool(def, &finding.analyzer);
    let documentation = def
        .and_then(AnalyzerDef::external)
        .and_then(|spec| documentation(tool, finding, spec, root, timeout));
    let help_uri = finding
        .help_uri
        .clone()
        .or_else(|| known_uri(tool, finding, documentation.as_deref()));
    RuleDoc {
        help_uri,
        documentation,
    }
}

/// `W0611`, `E0308`, `F401`, `PLR0913`: capitals, then digits.
fn is_code(s: &str) -> bool {
    let digits = s.trim_start_matches(|c: char| c.is_ascii_uppercase());
    digits.len() < s.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `unused-import`, `needless_return`: a lowercase word with `sep`.
fn is_name(s: &str, sep: char) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == sep)
}

/// A Rust finding's rule: a clippy lint or a compiler error code.
enum RustRule<'a> {
    Clippy(&'a str),
    Error(&'a str),
}

fn rust_rule(rule: &str) -> Option<RustRule<'_>> {
    if let Some(lint) = rule.strip_prefix("clippy::") {
        return is_name(lint, '_').then_some(RustRule::Clippy(lint));
    }
    let code = rule.strip_prefix("rustc::")?;
    (code.len() == 5 && code.starts_with('E') && is_code(code)).then_some(RustRule::Error(code))
}

/// `W0611`: a pylint message id.
fn is_pylint_id(s: &str) -> bool {
    s.len() == 5 && is_code(s)
}

/// The pylint message id (`W0611`) or symbol (`unused-import`) to ask about.
fn pylint_id(finding: &Finding) -> Option<&str> {
    if is_pylint_id(&finding.rule) {
        return Some(&finding.rule);
    }
    finding.rule_name.as_deref().filter(|s| is_name(s, '-'))
}

/// The rule's symbol from the first line of its documentation: pylint's
/// `:unused-import (W0611): …`, ruff's `# unused-import (F401)`.
fn doc_symbol(doc: &str) -> Option<&str> {
    let first = doc.lines().next()?;
    let rest = first
        .strip_prefix(':')
        .or_else(|| first.strip_prefix("# "))?;
    let (symbol, code) = rest.split_once(" (")?;
    let code = code.split(')').next()?;
    (is_name(symbol, '-') && is_code(code)).then_some(symbol)
}

/// A documented URL for the rule when the finding carries none.
fn known_uri(tool: Tool, finding: &Finding, doc: Option<&str>) -> Option<String> {
    let rule = finding.rule.as_str();
    let symbol = finding
        .rule_name
        .as_deref()
        .filter(|s| is_name(s, '-'))
        .or_else(|| doc.and_then(doc_symbol));
    match tool {
        // The category is the id's letter (`W0611`: warning).
        Tool::Pylint if is_pylint_id(rule) => {
            let category = match rule.chars().next()? {
                'C' => "convention",
                'R' => "refactor",
                'W' => "warning",
                'E' => "error",
                'F' => "fatal",
                'I' => "information",
                _ => return None,
            };
            Some(format!(
                "https://pylint.readthedocs.io/en/stable/user_guide/messages/{category}/{}.html",
                symbol?
            ))
        }
        Tool::Bandit => bandit_uri(finding),
        // Not the parser's own names for a file eslint could not parse
        // and a message without a rule.
        Tool::Eslint => (is_name(rule, '-') && !matches!(rule, "parse-error" | "eslint"))
            .then(|| format!("https://eslint.org/docs/latest/rules/{rule}")),
        Tool::Ruff => symbol.map(|s| format!("https://docs.astral.sh/ruff/rules/{s}/")),
        Tool::Cargo => match rust_rule(rule)? {
            RustRule::Clippy(lint) => Some(format!(
                "https://rust-lang.github.io/rust-clippy/master/index.html#{lint}"
            )),
            RustRule::Error(code) => {
                Some(format!("https://doc.rust-lang.org/error_codes/{code}.html"))
            }
        },
        Tool::Pylint | Tool::Other => None,
    }
}

/// bandit's documentation of a test: its plugin's page (`B105` with
/// `hardcoded_password_string`), or the page of blacklisted calls (B3xx)
/// or imports (B4xx).
fn bandit_uri(finding: &Finding) -> Option<String> {
    const BASE: &str = "https://bandit.readthedocs.io/en/latest";
    let rule = finding.rule.as_str();
    if !(rule.len() == 4 && rule.starts_with('B') && is_code(rule)) {
        return None;
    }
    Some(match &rule[1..2] {
        "3" => format!("{BASE}/blacklists/blacklist_calls.html"),
        "4" => format!("{BASE}/blacklists/blacklist_imports.html"),
        _ => match finding.rule_name.as_deref().filter(|n| is_name(n, '_')) {
            Some(name) => format!("{BASE}/plugins/{}_{name}.html", rule.to_lowercase()),
            None => format!("{BASE}/plugins/index.html"),
        },
    })
}

/// What the tool prints about the rule, if it has a command for that.
fn documentation(
    tool: Tool,
    finding: &Finding,
    spec: &ExternalSpec,
    root: &Path,
    timeout: Duration,
) -> Option<String> {
    let own = |command: &str, args: Vec<String>| {
        (spec.command == command).then(|| (Cow::Borrowed(spec), args))
    };
    let (spec, args) = match tool {
        Tool::Pylint => own(
            "pylint",
            vec![format!("--help-msg={}", pylint_id(finding)?)],
        )?,
        Tool::Ruff => {
            let code = Some(finding.rule.as_str()).filter(|c| is_code(c))?;
            own("ruff", vec!["rule".into(), code.into()])?
        }
        Tool::Cargo => match rust_rule(&finding.rule)? {
            RustRule::Clippy(lint) => own(
                "cargo",
                vec!["clippy".into(), "--explain".into(), lint.into()],
            )?,
            // The compiler next to cargo, found the way cargo is.
            RustRule::Error(code) => {
                if spec.command != "cargo" {
                    return None;
                }
                let rustc = ExternalSpec {
                    command: "rustc".into(),
                    alternatives: Vec::new(),
                    ..spec.clone()
                };
                (Cow::Owned(rustc), vec!["--explain".into(), code.into()])
            }
        },
        Tool::Bandit | Tool::Eslint | Tool::Other => return None,
    };
    let (program, _) = crate::tools::find(&spec, root)?;
    let doc = ask(&program, &args, &spec, timeout)?;
    let known = match tool {
        // pylint answers an unknown id with exit 0 and a sentence.
        Tool::Pylint | Tool::Ruff => doc_symbol(&doc).is_some(),
        _ => true,
    };
    known.then_some(doc)
}

/// Runs `program args` in an empty private directory; its output if it
/// exits 0 within `timeout` with something to say, cut at [`DOC_CAP`].
fn ask(program: &Path, args: &[String], spec: &ExternalSpec, timeout: Duration) -> Option<String> {
    let cache = crate::tools::cache_dir();
    std::fs::create_dir_all(&cache).ok()?;
    let cwd = tempfile::Builder::new()
        .prefix("rule-doc-")
        .tempdir_in(&cache)
        .ok()?;
    let finished = run::run_blocking(Spec {
        program: program.to_owned(),
        args: args.iter().map(Into::into).collect(),
        cwd: cwd.path().to_owned(),
        env: spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        timeout,
        kill_grace: Duration::from_millis(200),
        limits: Limits::default(),
        stdout_keep: (DOC_CAP, 0),
        stderr_keep: (0, 0),
        on_spawn: None,
        log_file: None,
    });
    if !matches!(finished.ended, Ended::Exited(0)) {
        return None;
    }
    let mut bytes = finished.stdout.bytes;
    bytes.truncate(DOC_CAP);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if finished.stdout.truncated {
        text.truncate(text.trim_end_matches('\u{fffd}').len());
        text.push_str("\n…");
    }
    let text = text.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::analyze::Severity;
    use crate::analyze::parsers::testing::builtin;

    fn finding(analyzer: &str, rule: &str, name: Option<&str>) -> Finding {
        let mut f = Finding::new(analyzer, rule, Severity::Low, "m");
        f.rule_name = name.map(str::to_owned);
        f
    }

    fn uri(analyzer: &str, rule: &str, name: Option<&str>) -> Option<String> {
        let def = builtin(analyzer);
        let f = finding(analyzer, rule, name);
        known_uri(tool(Some(&def), analyzer), &f, None)
    }

    #[test]
    fn documented_urls_of_each_tools_rules() {
        let rows = [
            (
                "pylint",
                "W0611",
                Some("unused-import"),
                Some(
                    "https://pylint.readthedocs.io/en/stable/user_guide/messages/warning/unused-import.html",
                ),
            ),
            (
                "pylint",
                "C0114",
                Some("missing-module-docstring"),
                Some(
                    "https://pylint.readthedocs.io/en/stable/user_guide/messages/convention/missing-module-docstring.html",
                ),
            ),
            ("pylint", "W0611", None, None),
            (
                "bandit",
                "B105",
                Some("hardcoded_password_string"),
                Some(
                    "https://bandit.readthedocs.io/en/latest/plugins/b105_hardcoded_password_string.html",
                ),
            ),
            (
                "bandit",
                "B301",
                Some("blacklist"),
                Some("https://bandit.readthedocs.io/en/latest/blacklists/blacklist_calls.html"),
            ),
            (
                "bandit",
                "B105",
                None,
                Some("https://bandit.readthedocs.io/en/latest/plugins/index.html"),
            ),
            (
                "eslint",
                "no-unused-vars",
                None,
                Some("https://eslint.org/docs/latest/rules/no-unused-vars"),
            ),
            ("eslint", "react/no-danger", None, None),
            ("eslint", "parse-error", None, None),
            (
                "clippy",
                "clippy::needless_return",
                None,
                Some("https://rust-lang.github.io/rust-clippy/master/index.html#needless_return"),
            ),
            (
                "clippy",
                "rustc::E0308",
                None,
                Some("https://doc.rust-lang.org/error_codes/E0308.html"),
            ),
            ("clippy", "unused_variables", None, None),
            ("radon", "cc", None, None),
        ];
        for (analyzer, rule, name, want) in rows {
            assert_eq!(
                uri(analyzer, rule, name).as_deref(),
                want,
                "{analyzer} {rule}"
            );
        }
    }

    /// ruff, a user-defined analyzer (SARIF), is known by its command, or
    /// without a definition by the analyzer's name.
    #[test]
    fn ruff_rules_are_linked_by_their_name() {
        let mut def = (*builtin("pylint")).clone();
        if let crate::analyze::Engine::External(spec) = &mut def.engine {
            spec.command = "ruff".into();
            spec.parser = ParserKind::Sarif;
        }
        assert_eq!(tool(Some(&def), "python-lint"), Tool::Ruff);
        assert_eq!(tool(None, "ruff"), Tool::Ruff);
        assert_eq!(tool(None, "clippy"), Tool::Cargo);
        let named = finding("python-lint", "F401", Some("unused-import"));
        assert_eq!(
            known_uri(Tool::Ruff, &named, None).as_deref(),
            Some("https://docs.astral.sh/ruff/rules/unused-import/")
        );
        let unnamed = finding("python-lint", "F401", None);
        assert_eq!(known_uri(Tool::Ruff, &unnamed, None), None);
        let doc = "# unused-import (F401)\n\nDerived from the **Pyflakes** linter.";
        assert_eq!(
            known_uri(Tool::Ruff, &unnamed, Some(doc)).as_deref(),
            Some("https://docs.astral.sh/ruff/rules/unused-import/")
        );
    }

    #[test]
    fn the_findings_own_link_wins() {
        let mut f = finding("bandit", "B105", Some("hardcoded_password_string"));
        f.help_uri = Some("https://example.com/b105".into());
        let doc = rule_doc(
            Path::new("/nonexistent"),
            &f,
            Some(&builtin("bandit")),
            Duration::from_secs(1),
        );
        assert_eq!(doc.help_uri, f.help_uri);
        assert_eq!(doc.documentation, None, "bandit has no command for it");
    }

    #[test]
    fn symbols_from_documentation_and_ids_that_are_never_options() {
        assert_eq!(
            doc_symbol(":unused-import (W0611): *Unused %s*\n  Used when"),
            Some("unused-import")
        );
        assert_eq!(
            doc_symbol("# unused-import (F401)\n"),
            Some("unused-import")
        );
        assert_eq!(doc_symbol("No such message id or symbol 'Z9999'."), None);
        assert_eq!(doc_symbol(""), None);
        for code in ["W0611", "F401", "PLR0913", "E0308"] {
            assert!(is_code(code), "{code}");
        }
        for not in ["", "W", "0611", "--help", "w0611", "W06x1"] {
            assert!(!is_code(not), "{not}");
        }
        assert!(is_name("needless_return", '_') && !is_name("-x", '-') && !is_name("a b", '-'));
        assert_eq!(
            pylint_id(&finding("pylint", "--rcfile=x", Some("--load-plugins=x"))),
            None
        );
        assert!(rust_rule("clippy::--explain").is_none());
        assert!(rust_rule("rustc::E03081").is_none());
    }

    fn script(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A project's own pylint, answering as pylint does, then not knowing
    /// the id, flooding, and hanging.
    #[test]
    fn documentation_comes_from_the_tool_found_for_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let tool = root.join(".venv/bin/pylint");
        let def = builtin("pylint");
        let f = finding("pylint", "W0611", None);
        let ask = |timeout| rule_doc(root, &f, Some(&def), timeout);
        script(
            &tool,
            r#"echo ":unused-import (W0611): *Unused %s*"; echo "  Used when $1.""#,
        );
        let doc = ask(Duration::from_secs(30));
        assert_eq!(
            doc.documentation.as_deref(),
            Some(":unused-import (W0611): *Unused %s*\n  Used when --help-msg=W0611.")
        );
        assert_eq!(
            doc.help_uri.as_deref(),
            Some(
                "https://pylint.readthedocs.io/en/stable/user_guide/messages/warning/unused-import.html"
            ),
            "the symbol is read from the documentation"
        );
        script(&tool, "echo \"No such message id or symbol 'W0611'.\"");
        assert_eq!(ask(Duration::from_secs(30)), RuleDoc::default());
        script(
            &tool,
            "echo ':unused-import (W0611): x'; head -c 20000 /dev/zero | tr '\\0' a",
        );
        let long = ask(Duration::from_secs(30)).documentation.unwrap();
        assert!(
            long.len() <= DOC_CAP + 4 && long.ends_with('…'),
            "{}",
            long.len()
        );
        script(&tool, "sleep 30");
        let started = std::time::Instant::now();
        assert_eq!(ask(Duration::from_millis(300)).documentation, None);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// The managed tools of the test cache, when they are installed.
    fn test_cache_tool(name: &str) -> Option<PathBuf> {
        let cache = std::env::var_os("BGTASK_TEST_CACHE").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-cache"),
            PathBuf::from,
        );
        let tool = cache.join("tools/venv/bin").join(name);
        tool.exists().then_some(tool)
    }

    #[test]
    fn pylint_documents_its_messages_when_installed() {
        let Some(pylint) = test_cache_tool("pylint") else {
            eprintln!("skipped: pylint is not installed in the test cache");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".venv/bin")).unwrap();
        std::os::unix::fs::symlink(&pylint, dir.path().join(".venv/bin/pylint")).unwrap();
        let f = finding("pylint", "W0611", Some("unused-import"));
        let doc = rule_doc(
            dir.path(),
            &f,
            Some(&builtin("pylint")),
            Duration::from_secs(60),
        );
        let text = doc.documentation.expect("pylint --help-msg answers");
        assert!(text.starts_with(":unused-import (W0611)"), "{text}");
        assert!(text.contains("not used"), "{text}");
    }

    /// `cargo clippy --explain` and `rustc --explain`, when the Rust
    /// toolchain with clippy is installed.
    #[test]
    fn clippy_and_rustc_explain_their_lints_and_errors_when_installed() {
        let def = builtin("clippy");
        let spec = def.external().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let installed = crate::tools::find(spec, dir.path()).is_some_and(|(cargo, _)| {
            crate::tools::detect_version_blocking(&cargo, spec, dir.path())
                .version()
                .is_some()
        });
        if !installed {
            eprintln!("skipped: cargo clippy is not installed");
            return;
        }
        let explain = |rule| {
            let f = finding("clippy", rule, None);
            rule_doc(dir.path(), &f, Some(&def), Duration::from_secs(60)).documentation
        };
        let lint = explain("clippy::needless_return").expect("clippy explains its lints");
        assert!(lint.contains("What it does"), "{lint}");
        let error = explain("rustc::E0308").expect("rustc explains its errors");
        assert!(error.contains("type"), "{error}");
        assert_eq!(explain("clippy::no_such_lint"), None);
    }
}
