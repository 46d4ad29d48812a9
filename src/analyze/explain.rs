//! What a finding means: its rule, the tool's message, where the rule is
//! documented and what the tool says about it (`rule_doc.rs`), the fix the
//! tool suggested, and the flagged lines in their context as the worktree
//! has them now, with whether they changed since the finding was made.
//!
//! Source lines are read through [`crate::repofile::read_lines`]: never a
//! file outside the worktree (a link out, `..`, an absolute path), never a
//! FIFO, under a size cap. A fix is only ever the tool's own suggestion,
//! never made up here.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::rule_doc::rule_doc;
use super::{Finding, Location, Severity};
use crate::config::Config;

/// How long a tool has to print a rule's documentation.
pub const DOC_TIMEOUT: Duration = Duration::from_secs(2);
/// Files larger than this are not read for their lines.
const SOURCE_CAP: u64 = 4 * 1024 * 1024;
/// Most lines of context either side of the flagged ones.
pub const MAX_CONTEXT_LINES: usize = 50;
/// Most flagged lines shown (a finding can span a whole function).
const MAX_FLAGGED: usize = 50;
/// Longest line shown, in characters; longer ones are cut.
const MAX_LINE_CHARS: usize = 1000;

/// A finding explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Explanation {
    pub analyzer: String,
    /// The tool's rule id (`W0611`, `B105`, `clippy::needless_return`).
    pub rule: String,
    /// A readable rule name when the tool has one besides the id.
    pub rule_name: Option<String>,
    pub severity: Severity,
    /// The tool's own message.
    pub message: String,
    pub location: Option<Location>,
    /// Where the rule is documented: the tool's own link, else the
    /// documentation page of the tool's rule.
    pub help_uri: Option<String>,
    /// The rule's documentation as the installed tool prints it; `None`
    /// when the tool is missing or has no command for it.
    pub documentation: Option<String>,
    /// The fix the tool suggested (a `help:` line, a fixed version of a
    /// vulnerable package), if it suggested one.
    pub fix_hint: Option<String>,
    /// The flagged lines with the requested context, from the worktree now.
    pub context: Vec<SourceLine>,
    /// Whether the flagged line no longer reads as it did when the finding
    /// was made (or its file is gone); `None` when that cannot be told (no
    /// line, no fingerprint, the file could not be read).
    pub changed_since: Option<bool>,
}

/// One line of source around a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SourceLine {
    /// 1-based.
    pub line: u32,
    pub text: String,
    /// Whether the finding points at this line.
    pub flagged: bool,
}

/// Explains `finding` in the worktree at `root`, with `context_lines`
/// lines (at most [`MAX_CONTEXT_LINES`]) before and after the flagged ones.
/// Asks the analyzer's tool, as `config` defines it, for the rule's
/// documentation, giving it [`DOC_TIMEOUT`]. Never fails: what cannot be
/// found out is left empty. Callable from any thread, inside a tokio
/// runtime or not, but it blocks while the tool answers: an async caller
/// runs it with `spawn_blocking`.
pub fn explain(
    root: &Path,
    finding: &Finding,
    config: &Config,
    context_lines: usize,
) -> Explanation {
    explain_with(root, finding, config, context_lines, DOC_TIMEOUT)
}

/// [`explain`] with the tool's time limit given.
fn explain_with(
    root: &Path,
    finding: &Finding,
    config: &Config,
    context_lines: usize,
    doc_timeout: Duration,
) -> Explanation {
    let def = config.analyzers.get(&finding.analyzer).map(AsRef::as_ref);
    let doc = rule_doc(root, finding, def, doc_timeout);
    // `None`: nothing to read; `Some(None)`: the file is gone.
    let lines = finding.path().and_then(|path| {
        crate::repofile::read_lines(root, path, SOURCE_CAP)
            .inspect_err(|e| tracing::debug!(path, error = %e, "source not read"))
            .ok()
    });
    Explanation {
        analyzer: finding.analyzer.clone(),
        rule: finding.rule.clone(),
        rule_name: finding.rule_name.clone(),
        severity: finding.severity,
        message: finding.message.clone(),
        location: finding.location.clone(),
        help_uri: doc.help_uri,
        documentation: doc.documentation,
        fix_hint: fix_hint(finding),
        context: lines.as_ref().map_or_else(Vec::new, |l| {
            context(l.as_deref().unwrap_or_default(), finding, context_lines)
        }),
        changed_since: lines.and_then(|l| changed_since(finding, l.as_deref())),
    }
}

/// The tool's own fix: `help:` lines in its message, or the versions that
/// fix a vulnerable package.
fn fix_hint(finding: &Finding) -> Option<String> {
    let helps: Vec<&str> = finding
        .message
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("= help:")
                .or_else(|| l.strip_prefix("help:"))
                .map(str::trim)
        })
        .filter(|h| !h.is_empty())
        .collect();
    if !helps.is_empty() {
        return Some(helps.join("\n"));
    }
    let package = finding
        .package
        .as_ref()
        .filter(|p| !p.fixed_in.is_empty())?;
    Some(format!(
        "fixed in {} {}",
        package.name,
        package.fixed_in.join(", ")
    ))
}

/// The flagged lines (from the finding's line to its end line) and
/// `around` lines either side, as far as the file goes.
fn context(lines: &[String], finding: &Finding, around: usize) -> Vec<SourceLine> {
    let Some(first) = finding.line().and_then(|l| usize::try_from(l).ok()) else {
        return Vec::new();
    };
    let end = finding
        .location
        .as_ref()
        .and_then(|l| l.end_line)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|end| *end >= first)
        .unwrap_or(first);
    let last = end.min(first + MAX_FLAGGED - 1);
    let around = around.min(MAX_CONTEXT_LINES);
    let from = first.saturating_sub(around).max(1);
    let to = last.saturating_add(around).min(lines.len());
    (from..=to)
        .filter_map(|n| {
            let text = lines.get(n - 1)?;
            Some(SourceLine {
                line: u32::try_from(n).ok()?,
                text: cut(text),
                flagged: (first..=last).contains(&n),
            })
        })
        .collect()
}

/// `text` cut at [`MAX_LINE_CHARS`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Whether the flagged line's text differs from the one the finding's
/// identity (or, without one, its fingerprint) was computed from
/// (`engine/anchor.rs`); a file that is gone (`lines` is `None`) has
/// changed.
fn changed_since(finding: &Finding, lines: Option<&[String]>) -> Option<bool> {
    let (_, occurrence) = finding.fingerprint.rsplit_once(':')?;
    let occurrence: u32 = occurrence.parse().ok()?;
    let index = usize::try_from(finding.line()?).ok()?.checked_sub(1)?;
    let Some(lines) = lines else {
        return Some(true);
    };
    let Some(text) = lines.get(index) else {
        return Some(true);
    };
    if let Some(line) = finding.identity.as_ref().and_then(|id| id.line.as_ref()) {
        return Some(crate::analyze::identity::line_hash(text).as_ref() != Some(line));
    }
    Some(finding.compute_fingerprint(Some(text.trim()), occurrence) != finding.fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Package;

    fn config() -> Config {
        crate::config::from_text(Path::new("default.json"), crate::config::DEFAULT_CONFIG).unwrap()
    }

    /// A finding as the engine leaves it: fingerprinted from its line.
    fn finding(root: &Path, path: &str, line: u32, end_line: Option<u32>) -> Finding {
        let mut f = Finding::new(
            "bandit",
            "B105",
            Severity::Low,
            "Possible hardcoded password",
        )
        .at(Location::at(path, line, Some(1)).with_end(end_line, None));
        f.rule_name = Some("hardcoded_password_string".into());
        let text = crate::repofile::read_lines(root, path, SOURCE_CAP)
            .ok()
            .flatten()
            .and_then(|l| l.get(line as usize - 1).cloned());
        f.fingerprint = f.compute_fingerprint(text.as_deref().map(str::trim), 0);
        f
    }

    fn numbered(lines: &[SourceLine]) -> Vec<(u32, &str, bool)> {
        lines
            .iter()
            .map(|l| (l.line, l.text.as_str(), l.flagged))
            .collect()
    }

    #[test]
    fn the_flagged_lines_in_context_and_whether_they_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let source = (1..=10).fold(String::new(), |s, n| s + &format!("line {n}\n"));
        std::fs::write(root.join("a.py"), &source).unwrap();
        let config = config();
        let f = finding(root, "a.py", 5, Some(6));
        let e = explain(root, &f, &config, 2);
        assert_eq!(
            numbered(&e.context),
            [
                (3, "line 3", false),
                (4, "line 4", false),
                (5, "line 5", true),
                (6, "line 6", true),
                (7, "line 7", false),
                (8, "line 8", false)
            ]
        );
        assert_eq!(e.changed_since, Some(false));
        assert_eq!((e.rule.as_str(), e.severity), ("B105", Severity::Low));
        assert_eq!(e.message, "Possible hardcoded password");
        assert_eq!(
            e.help_uri.as_deref(),
            Some(
                "https://bandit.readthedocs.io/en/latest/plugins/b105_hardcoded_password_string.html"
            )
        );
        assert_eq!((e.documentation, e.fix_hint), (None, None));

        // At the edges of the file the context stops there.
        let edges = |line, around| {
            numbered(&explain(root, &finding(root, "a.py", line, None), &config, around).context)
                .iter()
                .map(|l| l.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(edges(1, 2), [1, 2, 3]);
        assert_eq!(edges(10, 1), [9, 10]);
        assert_eq!(edges(4, 0), [4]);
        assert_eq!(edges(5, usize::MAX).len(), 10);

        std::fs::write(root.join("a.py"), source.replace("line 5", "line five")).unwrap();
        let e = explain(root, &f, &config, 0);
        assert_eq!(
            numbered(&e.context),
            [(5, "line five", true), (6, "line 6", true)]
        );
        assert_eq!(e.changed_since, Some(true));
        std::fs::remove_file(root.join("a.py")).unwrap();
        let e = explain(root, &f, &config, 2);
        assert_eq!((e.context.len(), e.changed_since), (0, Some(true)));
    }

    #[test]
    fn a_finding_with_an_identity_changed_only_when_its_code_did() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let text = "def f():\n    password = 'x'\n";
        std::fs::write(root.join("a.py"), text).unwrap();
        let mut found = vec![
            Finding::new("bandit", "B105", Severity::Low, "password")
                .at(Location::at("a.py", 2, None)),
        ];
        let sources = std::collections::HashMap::from([(
            "a.py".to_owned(),
            crate::analyze::identity::Source::new("a.py", text),
        )]);
        crate::analyze::identity::identify(&mut found, &sources);
        let changed = |now: &str| {
            std::fs::write(root.join("a.py"), now).unwrap();
            explain(root, &found[0], &config(), 0).changed_since
        };
        assert_eq!(changed("def f():\n\tpassword='x'\n"), Some(false));
        assert_eq!(changed("def f():\n    password = 'y'\n"), Some(true));
    }

    #[test]
    fn nothing_outside_the_worktree_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("secret.py"), "password = 'x'\n").unwrap();
        std::os::unix::fs::symlink("../secret.py", root.join("link.py")).unwrap();
        let config = config();
        let outside = dir.path().join("secret.py").display().to_string();
        for path in ["../secret.py", "link.py", outside.as_str()] {
            let mut f = finding(&root, path, 1, None);
            f.fingerprint = "0123456789abcdef:0".into();
            let e = explain(&root, &f, &config, 3);
            assert!(e.context.is_empty(), "{path}: {:?}", e.context);
            assert_eq!(e.changed_since, None, "{path}");
        }
    }

    #[test]
    fn fix_hints_are_the_tools_own() {
        let mut f = Finding::new(
            "clippy",
            "clippy::needless_return",
            Severity::Medium,
            "unneeded `return` statement\n  = help: remove `return`\nhelp: for further information visit the docs",
        );
        assert_eq!(
            fix_hint(&f).as_deref(),
            Some("remove `return`\nfor further information visit the docs")
        );
        f.message = "unneeded `return` statement".into();
        assert_eq!(fix_hint(&f), None);
        f.package = Some(Package {
            name: "requests".into(),
            version: Some("2.19.0".into()),
            fixed_in: vec!["2.20.0".into(), "3.0.1".into()],
        });
        assert_eq!(
            fix_hint(&f).as_deref(),
            Some("fixed in requests 2.20.0, 3.0.1")
        );
        f.package.as_mut().unwrap().fixed_in.clear();
        assert_eq!(fix_hint(&f), None);
    }

    #[test]
    fn file_level_and_long_findings_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        let source: String = std::iter::once(long.clone())
            .chain((2..=200).map(|n| format!("line {n}")))
            .map(|l| l + "\n")
            .collect();
        std::fs::write(root.join("big.py"), source).unwrap();
        let config = config();
        let mut whole = Finding::new("profile", "file-lines", Severity::Low, "long file")
            .at(Location::file("big.py"));
        whole.fingerprint = "0123456789abcdef:0".into();
        let e = explain(root, &whole, &config, 3);
        assert_eq!((e.context.len(), e.changed_since), (0, None));
        let span = finding(root, "big.py", 1, Some(200));
        let e = explain(root, &span, &config, 3);
        assert_eq!(e.context.iter().filter(|l| l.flagged).count(), MAX_FLAGGED);
        assert_eq!(e.context.len(), MAX_FLAGGED + 3);
        assert_eq!(e.context[0].text.chars().count(), MAX_LINE_CHARS + 1);
        assert!(e.context[0].text.ends_with('…'));
        assert_eq!(e.changed_since, Some(false));
    }

    #[test]
    fn the_explanation_has_a_schema_and_serializes() {
        let schema = serde_json::to_value(schemars::schema_for!(Explanation)).unwrap();
        let props = &schema["properties"];
        for key in [
            "help_uri",
            "documentation",
            "fix_hint",
            "context",
            "changed_since",
        ] {
            assert!(props.get(key).is_some(), "{key}: {schema:#}");
        }
        let dir = tempfile::tempdir().unwrap();
        let e = explain(
            dir.path(),
            &Finding::new("x", "r", Severity::Info, "m"),
            &config(),
            1,
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["severity"], "info");
        assert!(json["help_uri"].is_null() && json["context"] == serde_json::json!([]));
    }
}
