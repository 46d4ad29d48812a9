//! A document's findings as LSP diagnostics: severity, the flagged line's
//! range in UTF-16 code units of the document's current text, the rule as
//! `code` with its documentation link, the analyzer as `source`. A finding
//! follows its line through edits made since the findings were read (the
//! saved text then): unchanged lines move with the edits around them (a
//! line diff), a finding on an edited line is dropped. Pure: the findings come
//! from the store (`server.rs`), the texts from the disk and the editor.

use std::path::Path;
use std::time::Duration;

use lsp_types::{
    CodeDescription, Diagnostic, DiagnosticSeverity, NumberOrString, Position, Range, Uri,
};

use crate::analyze::{Finding, Severity, rule_doc};
use crate::store::CurrentFinding;

/// critical/high: error, medium: warning, low: information, info: hint.
pub fn severity(severity: &str) -> DiagnosticSeverity {
    match Severity::parse(severity) {
        Some(Severity::Critical | Severity::High) => DiagnosticSeverity::ERROR,
        Some(Severity::Low) => DiagnosticSeverity::INFORMATION,
        Some(Severity::Info) => DiagnosticSeverity::HINT,
        Some(Severity::Medium) | None => DiagnosticSeverity::WARNING,
    }
}

/// The document's lines, without their terminators (`\n`, `\r\n` or `\r`,
/// as LSP counts them).
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['\n', '\r']) {
        out.push(&rest[..at]);
        let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + skip..];
    }
    out.push(rest);
    out
}

fn utf16_len(s: &str) -> u32 {
    u32::try_from(s.encode_utf16().count()).unwrap_or(u32::MAX)
}

/// The most edits between the saved and the current text that are
/// matched line by line; past it, the lines between the first and the
/// last edit count as edited.
const MAX_EDITS: usize = 512;

/// Where the lines of `saved` are in `text`: unchanged lines move with the
/// edits around them (a line diff), edited or deleted ones are gone.
struct Moves {
    /// For each saved line, its line in the current text.
    to: Vec<Option<usize>>,
    shift: isize,
}

impl Moves {
    fn new(saved: &[&str], text: &[&str]) -> Moves {
        let prefix = saved.iter().zip(text).take_while(|(a, b)| a == b).count();
        let room = saved.len().min(text.len()) - prefix;
        let suffix = saved
            .iter()
            .rev()
            .zip(text.iter().rev())
            .take(room)
            .take_while(|(a, b)| a == b)
            .count();
        let (old, new) = (
            &saved[prefix..saved.len() - suffix],
            &text[prefix..text.len() - suffix],
        );
        let mut to: Vec<Option<usize>> = (0..prefix).map(Some).collect();
        to.resize(saved.len(), None);
        for (a, b) in common_lines(old, new, MAX_EDITS).unwrap_or_default() {
            to[prefix + a] = Some(prefix + b);
        }
        for i in 0..suffix {
            to[saved.len() - suffix + i] = Some(text.len() - suffix + i);
        }
        let len = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
        Moves {
            to,
            shift: len(text.len()) - len(saved.len()),
        }
    }

    /// The 0-based line of `text` where saved line `index` is now; `None`
    /// when it was edited. A line past the saved text's end (the file got
    /// shorter since the run) stays where it was said to be.
    fn line(&self, index: usize) -> Option<usize> {
        match self.to.get(index) {
            Some(to) => *to,
            None => index.checked_add_signed(self.shift),
        }
    }
}

/// The pairs of equal lines (index in `a`, index in `b`) of a shortest
/// edit script from `a` to `b` (Myers' diff); `None` when it takes more
/// than `max_edits` insertions and deletions.
#[expect(clippy::many_single_char_names, reason = "the names of Myers' paper")]
fn common_lines(a: &[&str], b: &[&str], max_edits: usize) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len(), b.len());
    let max = (n + m).min(max_edits);
    let offset = max + 1;
    // `k` runs from -max to max.
    let at = |k: isize| k.wrapping_add_unsigned(offset).unsigned_abs();
    let mut v = vec![0usize; 2 * max + 3];
    let mut trace = Vec::new();
    for d in 0..=max {
        trace.push(v.clone());
        let d = isize::try_from(d).ok()?;
        for k in (-d..=d).step_by(2) {
            let mut x = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
                v[at(k + 1)]
            } else {
                v[at(k - 1)] + 1
            };
            let mut y = x.checked_add_signed(-k)?;
            while x < n && y < m && a[x] == b[y] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m, at));
            }
        }
    }
    None
}

/// The equal lines along the path `trace` (the furthest points before
/// each number of edits) found to `(n, m)`.
#[expect(clippy::many_single_char_names, reason = "the names of Myers' paper")]
fn backtrack(
    trace: &[Vec<usize>],
    n: usize,
    m: usize,
    at: impl Fn(isize) -> usize,
) -> Vec<(usize, usize)> {
    let signed = |u: usize| isize::try_from(u).unwrap_or(isize::MAX);
    let (mut x, mut y) = (signed(n), signed(m));
    let mut pairs = Vec::new();
    for (d, v) in trace.iter().enumerate().rev() {
        let d = signed(d);
        let k = x - y;
        let prev_k = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = signed(v[at(prev_k)]);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            pairs.push((x.unsigned_abs(), y.unsigned_abs()));
        }
        if d > 0 {
            x = prev_x;
            y = prev_y;
        }
    }
    pairs
}

/// The whole of 0-based line `index` of `lines`; a line past the end is
/// the last one.
fn whole_line(lines: &[&str], index: usize) -> Range {
    let index = index.min(lines.len().saturating_sub(1));
    let number = u32::try_from(index).unwrap_or(u32::MAX);
    let end = lines.get(index).map_or(0, |l| utf16_len(l));
    Range::new(Position::new(number, 0), Position::new(number, end))
}

/// The range of a finding on 1-based `line` of the saved text, in the
/// current text; `None` when its line was edited. No line, or line 0, is
/// the start of the file.
fn line_range(moves: &Moves, lines: &[&str], line: Option<i64>) -> Option<Range> {
    let Some(line) = line.filter(|l| *l > 0) else {
        return Some(Range::default());
    };
    let index = usize::try_from(line - 1).unwrap_or(usize::MAX);
    Some(whole_line(lines, moves.line(index)?))
}

/// The documentation link of a finding's rule, when bgtask knows the URL
/// pattern of its tool's rules (no tool is run for it).
fn doc_link(root: &Path, f: &CurrentFinding) -> Option<Uri> {
    let severity = Severity::parse(&f.severity).unwrap_or(Severity::Medium);
    let finding = Finding::new(&f.analyzer, f.rule.clone(), severity, f.message.clone());
    let uri = rule_doc(root, &finding, None, Duration::ZERO).help_uri?;
    uri.parse().ok()
}

/// The diagnostics of a document for its findings, in their order: read
/// when the file on disk was `saved`, shown in its current `text`.
/// Whether each finding is accepted in the baseline, when there is one.
#[derive(Debug, Clone, Copy)]
pub enum Baseline<'a> {
    /// No baseline: nothing is new or accepted.
    None,
    /// One mark per finding: accepted (a hint), or new.
    Marks(&'a [bool]),
}

/// The findings as diagnostics of `text`, read against `saved`. An
/// accepted finding is a hint saying so; with a baseline, the others are
/// new (`data.new`). `data` names the finding for the code actions.
pub fn diagnostics(
    root: &Path,
    findings: &[CurrentFinding],
    baseline: Baseline<'_>,
    saved: &str,
    text: &str,
) -> Vec<Diagnostic> {
    let lines = lines(text);
    let moves = Moves::new(&self::lines(saved), &lines);
    findings
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let range = line_range(&moves, &lines, f.line)?;
            let accepted = match baseline {
                Baseline::None => None,
                Baseline::Marks(m) => Some(m.get(i).copied().unwrap_or(false)),
            };
            Some(diagnostic(root, f, range, accepted))
        })
        .collect()
}

fn diagnostic(root: &Path, f: &CurrentFinding, range: Range, accepted: Option<bool>) -> Diagnostic {
    let target = super::actions::Target {
        path: f.path.clone(),
        task: f.task.clone(),
        run_id: f.run_id,
        fingerprint: f.fingerprint.clone(),
        accepted: accepted == Some(true),
        new: accepted == Some(false),
    };
    let (severity, message) = if target.accepted {
        (
            DiagnosticSeverity::HINT,
            format!("{} (accepted in the baseline)", f.message),
        )
    } else {
        (severity(&f.severity), f.message.clone())
    };
    Diagnostic {
        range,
        severity: Some(severity),
        code: Some(NumberOrString::String(f.rule.clone())),
        code_description: doc_link(root, f).map(|href| CodeDescription { href }),
        source: Some(format!("bgtask: {}", f.analyzer)),
        message,
        data: serde_json::to_value(target).ok(),
        ..Diagnostic::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(analyzer: &str, rule: &str, severity: &str, line: Option<i64>) -> CurrentFinding {
        CurrentFinding {
            task: "security".into(),
            run_id: 1,
            analyzer: analyzer.into(),
            rule: rule.into(),
            severity: severity.into(),
            path: "src/x.py".into(),
            line,
            message: format!("{rule} here"),
            fingerprint: "f:0".into(),
            identity: None,
        }
    }

    #[test]
    fn severities_map_to_the_editors_levels() {
        let cases = [
            ("critical", DiagnosticSeverity::ERROR),
            ("high", DiagnosticSeverity::ERROR),
            ("medium", DiagnosticSeverity::WARNING),
            ("low", DiagnosticSeverity::INFORMATION),
            ("info", DiagnosticSeverity::HINT),
            ("unheard-of", DiagnosticSeverity::WARNING),
        ];
        for (name, want) in cases {
            assert_eq!(severity(name), want, "{name}");
        }
    }

    #[test]
    fn lines_split_on_every_lsp_terminator() {
        assert_eq!(lines("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(lines("a\n"), ["a", ""]);
        assert_eq!(lines(""), [""]);
    }

    #[test]
    fn a_finding_covers_its_whole_line_in_utf16_units() {
        let text = "x = 1\nname = \"héllo 🦀\"\r\nend";
        let lines = lines(text);
        let moves = Moves::new(&lines, &lines);
        let cases: &[(Option<i64>, Range)] = &[
            (
                Some(1),
                Range::new(Position::new(0, 0), Position::new(0, 5)),
            ),
            // é is one unit, the crab two.
            (
                Some(2),
                Range::new(Position::new(1, 0), Position::new(1, 17)),
            ),
            (
                Some(3),
                Range::new(Position::new(2, 0), Position::new(2, 3)),
            ),
            // Past the end: the last line.
            (
                Some(9),
                Range::new(Position::new(2, 0), Position::new(2, 3)),
            ),
            (None, Range::default()),
            (Some(0), Range::default()),
            (Some(-4), Range::default()),
        ];
        for (line, want) in cases {
            assert_eq!(line_range(&moves, &lines, *line), Some(*want), "{line:?}");
        }
    }

    #[test]
    fn findings_follow_their_lines_through_edits() {
        let saved = ["a", "b", "c", "d", "e"];
        // (current text, where each saved line is now)
        let cases: &[(&[&str], [Option<usize>; 5])] = &[
            (
                &["a", "b", "c", "d", "e"],
                [Some(0), Some(1), Some(2), Some(3), Some(4)],
            ),
            // Two lines inserted after `b`.
            (
                &["a", "b", "x", "y", "c", "d", "e"],
                [Some(0), Some(1), Some(4), Some(5), Some(6)],
            ),
            // `c` edited.
            (
                &["a", "b", "C", "d", "e"],
                [Some(0), Some(1), None, Some(3), Some(4)],
            ),
            // `b` and `c` deleted.
            (&["a", "d", "e"], [Some(0), None, None, Some(1), Some(2)]),
            // A line added at the end, and at the start.
            (
                &["a", "b", "c", "d", "e", "f"],
                [Some(0), Some(1), Some(2), Some(3), Some(4)],
            ),
            (
                &["z", "a", "b", "c", "d", "e"],
                [Some(1), Some(2), Some(3), Some(4), Some(5)],
            ),
            // Repeated lines: the leading ones win.
            (
                &["a", "a", "b", "c", "d", "e"],
                [Some(0), Some(2), Some(3), Some(4), Some(5)],
            ),
            (&[""], [None, None, None, None, None]),
            // Edits at both ends: the lines between still move.
            (
                &["z", "a", "b", "c", "d", "E"],
                [Some(1), Some(2), Some(3), Some(4), None],
            ),
            (
                &["b", "x", "d", "e", "f"],
                [None, Some(0), None, Some(2), Some(3)],
            ),
        ];
        for (text, want) in cases {
            let moves = Moves::new(&saved, text);
            let got: Vec<Option<usize>> = (0..5).map(|i| moves.line(i)).collect();
            assert_eq!(got, want, "{text:?}");
        }
        // Too many edits to match line by line: only the common ends stay.
        let long: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let mut edited = long.clone();
        for i in (1..39).step_by(2) {
            edited[i] = "x";
        }
        assert!(common_lines(&long, &edited, 10).is_none());
        assert!(common_lines(&long, &edited, 100).is_some_and(|p| p.len() == 21));
        // Past the saved end: where it was said to be (then clamped).
        assert_eq!(Moves::new(&saved, &saved).line(9), Some(9));
    }

    #[test]
    fn a_finding_on_an_edited_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let found = [
            finding("bandit", "B301", "medium", Some(2)),
            finding("bandit", "B105", "low", Some(3)),
        ];
        let saved = "import pickle\npickle.loads(b)\nPASSWORD = 'x'\n";
        let text = "import pickle\n\npickle.dumps(b)\nPASSWORD = 'x'\n";
        let d = diagnostics(dir.path(), &found, Baseline::None, saved, text);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Some(NumberOrString::String("B105".into())));
        assert_eq!(
            d[0].range,
            Range::new(Position::new(3, 0), Position::new(3, 14))
        );
    }

    #[test]
    fn a_finding_becomes_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        let found = [
            finding("bandit", "B301", "medium", Some(2)),
            finding("pylint", "C0116", "low", Some(1)),
        ];
        let text = "import pickle\npickle.loads(b)\n";
        let d = diagnostics(dir.path(), &found, Baseline::None, text, text);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].range,
            Range::new(Position::new(1, 0), Position::new(1, 15))
        );
        assert_eq!(d[0].severity, Some(DiagnosticSeverity::WARNING));
        assert_eq!(d[0].code, Some(NumberOrString::String("B301".into())));
        assert_eq!(d[0].source.as_deref(), Some("bgtask: bandit"));
        assert_eq!(d[0].message, "B301 here");
        assert_eq!(
            d[0].code_description.as_ref().map(|c| c.href.as_str()),
            Some("https://bandit.readthedocs.io/en/latest/blacklists/blacklist_calls.html")
        );
        assert_eq!(d[1].severity, Some(DiagnosticSeverity::INFORMATION));
        assert_eq!(d[1].source.as_deref(), Some("bgtask: pylint"));
    }

    #[test]
    fn accepted_findings_are_hints_and_the_others_new() {
        let dir = tempfile::tempdir().unwrap();
        let found = [
            finding("bandit", "B301", "high", Some(1)),
            finding("bandit", "B105", "high", Some(2)),
        ];
        let text = "a\nb\n";
        let d = diagnostics(
            dir.path(),
            &found,
            Baseline::Marks(&[true, false]),
            text,
            text,
        );
        assert_eq!(d[0].severity, Some(DiagnosticSeverity::HINT));
        assert_eq!(d[0].message, "B301 here (accepted in the baseline)");
        assert_eq!(d[0].data.as_ref().unwrap()["accepted"], true);
        assert_eq!(d[1].severity, Some(DiagnosticSeverity::ERROR));
        assert_eq!(d[1].data.as_ref().unwrap()["new"], true);
        let none = diagnostics(dir.path(), &found, Baseline::None, text, text);
        let data = none[1].data.as_ref().unwrap();
        assert_eq!(data["accepted"], false);
        assert!(data.get("new").is_none());
        assert_eq!(data["run_id"], 1);
        assert_eq!(data["fingerprint"], "f:0");
    }
}
