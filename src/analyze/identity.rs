//! A finding's identity across edits, and matching one run's findings
//! with another's ("is this new?").
//!
//! Every finding gets an [`Identity`]: the tool's own stable id where it
//! has one (a dependency finding: the package and the advisory; a SARIF
//! result: its `fingerprints` or `partialFingerprints`), a hash of
//! the flagged line with all whitespace removed, a hash of the lines around
//! it (normalised the same way, blank lines skipped), its enclosing scope
//! (`scope.rs`), a hash of its message with the numbers taken out, and
//! its occurrence, in line order, among the file's findings of the same
//! rule with the same fingerprint evidence.
//!
//! The fingerprint, the key compared by set membership (merging shards,
//! the dashboard's trends, the MCP server's new-only), is the analyzer,
//! the rule, the path and the strongest of: the stable id, the line hash,
//! the message hash; then `:occurrence`. Never the line number, nor the
//! context or the scope: it survives lines inserted or deleted above,
//! reindenting, reformatting within the line, a function moved within the
//! file, a renamed function around it and new numbers in the message, and
//! it changes when the flagged line's code changes. An identical line
//! added or deleted above shifts the occurrence (the counts stay right;
//! [`compare`] tells which one is which). The path is part of it (the same
//! code copied to another file is another finding); [`compare`] follows
//! renamed files by mapping the baseline's paths first.
//!
//! [`compare`] matches in tiers, strongest evidence first, as SonarQube's
//! issue tracking does, within the same analyzer, rule and (renamed) path:
//! stable id; line + context + scope; line + scope; line; for findings
//! without a readable line, message + scope; then the fingerprint itself,
//! and, against a baseline recorded before identities existed, the
//! message. Each tier pairs findings one to one in line order, so two
//! findings on identical lines stay two. A finding with a readable line is
//! only ever matched through that line: an edited line is a new finding
//! even when the message is the same.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::BuildHasher;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::finding::Finding;
use super::scope::Scopes;

/// Non-blank lines either side of the flagged one hashed as its context.
const CONTEXT_LINES: usize = 2;

/// What tells a finding apart from the others across edits. All but the
/// stable id and the scope are hashes: 16 hex digits of BLAKE3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    /// The tool's own stable id: for a dependency finding, the package and
    /// the advisory (`requests PYSEC-2018-28`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// The flagged line with all whitespace removed, hashed; `None` when
    /// there is no readable, non-blank line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Up to two non-blank lines either side, normalised like `line`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The enclosing scope when it can be told: `Class.method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The message with whitespace collapsed and every number as `#`
    /// ([`normalise_message`]), hashed.
    pub message: String,
    /// 0-based, in line order, among the file's findings of the same
    /// analyzer and rule with the same fingerprint key.
    pub occurrence: u32,
}

impl Identity {
    /// What a parser knows of a finding's identity: the tool's own stable
    /// id for it. The rest is filled in once the file is read.
    pub fn from_tool(id: String) -> Identity {
        Identity {
            stable: Some(id),
            line: None,
            context: None,
            scope: None,
            message: String::new(),
            occurrence: 0,
        }
    }
}

/// A file's text as identities need it: its lines and their scopes.
#[derive(Debug, Clone, Default)]
pub struct Source {
    lines: Vec<String>,
    scopes: Scopes,
}

impl Source {
    /// The file at repo-relative `path` (its extension tells the language
    /// for scopes), whose text is `text`.
    pub fn new(path: &str, text: &str) -> Source {
        let lines: Vec<&str> = text.lines().collect();
        Source {
            scopes: Scopes::of(path, &lines),
            lines: lines.into_iter().map(str::to_owned).collect(),
        }
    }

    /// 1-based.
    pub fn line(&self, line: u32) -> Option<&str> {
        let i = usize::try_from(line).ok()?.checked_sub(1)?;
        self.lines.get(i).map(String::as_str)
    }
}

/// 16 hex digits of BLAKE3 over `parts`, each ended by a NUL.
fn hash(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex()[..16].to_owned()
}

/// `text` without its whitespace, so reindenting and respacing do not
/// change it.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The hash of a line's code without its whitespace; `None` for a blank
/// line.
pub fn line_hash(text: &str) -> Option<String> {
    let code = squeeze(text);
    (!code.is_empty()).then(|| hash(&[&code]))
}

/// The hash of up to [`CONTEXT_LINES`] non-blank lines either side of the
/// 0-based `index`, each without whitespace.
fn context_hash(lines: &[String], index: usize) -> Option<String> {
    let around = |it: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        it.map(|l| squeeze(l))
            .filter(|l| !l.is_empty())
            .take(CONTEXT_LINES)
            .collect()
    };
    let mut before = around(&mut lines[..index.min(lines.len())].iter().rev());
    before.reverse();
    let after = around(&mut lines.iter().skip(index + 1));
    if before.is_empty() && after.is_empty() {
        return None;
    }
    let parts: Vec<&str> = before
        .iter()
        .map(String::as_str)
        .chain(["|"])
        .chain(after.iter().map(String::as_str))
        .collect();
    Some(hash(&parts))
}

/// The message with whitespace runs as one space and every run of digits
/// as `#`: "file has 612 lines (limit 600)" reads as "file has # lines
/// (limit #)".
pub fn normalise_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut last = ' ';
    for c in message.trim().chars() {
        let c = match c {
            c if c.is_ascii_digit() => '#',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if !(c == last && (c == '#' || c == ' ')) {
            out.push(c);
        }
        last = c;
    }
    out
}

/// A dependency finding's package and advisory, else the id the tool
/// gave the finding (a SARIF result's `fingerprints`), kept by its parser
/// in [`Identity::from_tool`].
fn stable_id(f: &Finding) -> Option<String> {
    f.package
        .as_ref()
        .map(|p| format!("{} {}", p.name, f.rule))
        .or_else(|| f.identity.as_ref()?.stable.clone())
}

/// What the fingerprint holds besides analyzer, rule and path: the
/// strongest evidence there is (`message` is the message's hash).
fn key_of(stable: Option<&str>, line: Option<&str>, message: &str) -> String {
    match (stable, line) {
        (Some(s), _) => format!("stable:{s}"),
        (None, Some(l)) => format!("line:{l}"),
        (None, None) => format!("message:{message}"),
    }
}

fn fingerprint(f: &Finding, key: &str, occurrence: u32) -> String {
    let h = hash(&[&f.analyzer, &f.rule, f.path().unwrap_or(""), key]);
    format!("{h}:{occurrence}")
}

/// `f`'s fingerprint had its flagged line read `line_text` (`None`: no
/// line) and been the `occurrence`-th of its key in its file.
pub(super) fn fingerprint_of(f: &Finding, line_text: Option<&str>, occurrence: u32) -> String {
    let line = line_text.and_then(line_hash);
    let key = key_of(
        stable_id(f).as_deref(),
        line.as_deref(),
        &hash(&[&normalise_message(&f.message)]),
    );
    fingerprint(f, &key, occurrence)
}

/// `f`'s identity from its file's text (`None`: not read), occurrence 0.
fn identity_of(f: &Finding, source: Option<&Source>) -> Identity {
    let flagged = f.line().and_then(|n| Some((n, source?.line(n)?)));
    let (line, context, scope) = match (flagged, source) {
        (Some((n, text)), Some(src)) => (
            line_hash(text),
            context_hash(&src.lines, usize::try_from(n - 1).unwrap_or(usize::MAX)),
            src.scopes.at(n),
        ),
        _ => (None, None, None),
    };
    Identity {
        stable: stable_id(f),
        line,
        context,
        scope,
        message: hash(&[&normalise_message(&f.message)]),
        occurrence: 0,
    }
}

/// Fills in the identity and the fingerprint of every finding of one
/// analyzer's run; `sources` holds the text of the files they point at
/// (a file missing from it is not readable).
pub fn identify<S: BuildHasher>(findings: &mut [Finding], sources: &HashMap<String, Source, S>) {
    let mut keys = Vec::with_capacity(findings.len());
    for f in findings.iter_mut() {
        let id = identity_of(f, f.path().and_then(|p| sources.get(p)));
        keys.push(key_of(
            id.stable.as_deref(),
            id.line.as_deref(),
            &id.message,
        ));
        f.identity = Some(id);
    }
    // Occurrences in line order, whatever order the tool reported in.
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by_key(|&i| {
        let f = &findings[i];
        (f.line(), f.location.as_ref().and_then(|l| l.column), i)
    });
    let mut seen: HashMap<(&str, &str, &str, &str), u32> = HashMap::new();
    let mut occurrences = vec![0; findings.len()];
    for &i in &order {
        let f = &findings[i];
        let n = seen
            .entry((&f.analyzer, &f.rule, f.path().unwrap_or(""), &keys[i]))
            .or_insert(0);
        occurrences[i] = *n;
        *n += 1;
    }
    for (i, f) in findings.iter_mut().enumerate() {
        f.fingerprint = fingerprint(f, &keys[i], occurrences[i]);
        if let Some(id) = &mut f.identity {
            id.occurrence = occurrences[i];
        }
    }
}

/// A finding as matching sees it; built from a [`Finding`] or from what a
/// store kept of one.
#[derive(Debug, Clone, Copy)]
pub struct Tracked<'a> {
    pub analyzer: &'a str,
    pub rule: &'a str,
    pub path: Option<&'a str>,
    pub line: Option<u32>,
    pub message: &'a str,
    pub fingerprint: &'a str,
    /// `None` for findings recorded before identities existed.
    pub identity: Option<&'a Identity>,
}

impl<'a> From<&'a Finding> for Tracked<'a> {
    fn from(f: &'a Finding) -> Tracked<'a> {
        Tracked {
            analyzer: &f.analyzer,
            rule: &f.rule,
            path: f.path(),
            line: f.line(),
            message: &f.message,
            fingerprint: &f.fingerprint,
            identity: f.identity.as_ref(),
        }
    }
}

/// How a run's findings pair with a baseline's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// For each current finding, the baseline finding it continues
    /// (an index), or `None`: it is new.
    pub current: Vec<Option<usize>>,
    /// The baseline findings nothing continues (indices, ascending): fixed,
    /// or gone with their file.
    pub absent: Vec<usize>,
}

impl Matched {
    /// Whether current finding `i` is new.
    pub fn is_new(&self, i: usize) -> bool {
        self.current.get(i).is_none_or(Option::is_none)
    }

    /// Indices of the new current findings.
    pub fn new_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.current.len()).filter(|i| self.is_new(*i))
    }
}

/// The evidence a tier matches on, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Stable,
    Exact,
    LineScope,
    Line,
    Message,
    Fingerprint,
    /// A baseline finding without an identity, by its message.
    Legacy,
}

const TIERS: [Tier; 7] = [
    Tier::Stable,
    Tier::Exact,
    Tier::LineScope,
    Tier::Line,
    Tier::Message,
    Tier::Fingerprint,
    Tier::Legacy,
];

/// `t`'s key in `tier` under `path`; `None` when it has no such evidence.
fn key(t: &Tracked<'_>, tier: Tier, path: &str, baseline: bool) -> Option<String> {
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let evidence = match (tier, t.identity) {
        (Tier::Stable, Some(id)) => id.stable.clone()?,
        // A stable id is the whole story: nothing weaker pairs it.
        (Tier::Exact | Tier::LineScope | Tier::Line | Tier::Message, Some(id))
            if id.stable.is_some() =>
        {
            return None;
        }
        (Tier::Exact, Some(id)) => {
            format!(
                "{}\0{}\0{}",
                id.line.as_ref()?,
                opt(&id.context),
                opt(&id.scope)
            )
        }
        (Tier::LineScope, Some(id)) => format!("{}\0{}", id.line.as_ref()?, opt(&id.scope)),
        (Tier::Line, Some(id)) => id.line.clone()?,
        (Tier::Message, Some(id)) if id.line.is_none() => {
            format!("{}\0{}", id.message, opt(&id.scope))
        }
        // The fingerprint holds the analyzer, rule and path already: the
        // set membership every store compared by before.
        (Tier::Fingerprint, _) if !t.fingerprint.is_empty() => {
            return Some(format!("fingerprint\0{}", t.fingerprint));
        }
        (Tier::Legacy, id) if !baseline || id.is_none() => normalise_message(t.message),
        _ => return None,
    };
    let mut k = String::with_capacity(t.analyzer.len() + t.rule.len() + path.len() + 40);
    let _ = write!(k, "{}\0{}\0{path}\0{evidence}", t.analyzer, t.rule);
    Some(k)
}

/// `current` against `baseline`, tier by tier (see the module docs); a
/// baseline finding in a file `renames` maps (old path → new path) is
/// looked for under the new path.
pub fn compare<S: BuildHasher>(
    baseline: &[Finding],
    current: &[Finding],
    renames: &HashMap<String, String, S>,
) -> Matched {
    let b: Vec<Tracked<'_>> = baseline.iter().map(Tracked::from).collect();
    let c: Vec<Tracked<'_>> = current.iter().map(Tracked::from).collect();
    compare_tracked(&b, &c, renames)
}

/// [`compare`] over what a store kept.
pub fn compare_tracked<S: BuildHasher>(
    baseline: &[Tracked<'_>],
    current: &[Tracked<'_>],
    renames: &HashMap<String, String, S>,
) -> Matched {
    let in_line_order = |items: &[Tracked<'_>]| {
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].line, i));
        order
    };
    let (b_order, c_order) = (in_line_order(baseline), in_line_order(current));
    let b_paths: Vec<&str> = baseline
        .iter()
        .map(|t| {
            let p = t.path.unwrap_or("");
            renames.get(p).map_or(p, String::as_str)
        })
        .collect();
    let mut pairs: Vec<Option<usize>> = vec![None; current.len()];
    let mut taken = vec![false; baseline.len()];
    for tier in TIERS {
        let mut open: HashMap<String, VecDeque<usize>> = HashMap::new();
        for &i in b_order.iter().filter(|&&i| !taken[i]) {
            if let Some(k) = key(&baseline[i], tier, b_paths[i], true) {
                open.entry(k).or_default().push_back(i);
            }
        }
        if open.is_empty() {
            continue;
        }
        for &j in &c_order {
            let t = &current[j];
            if pairs[j].is_none()
                && let Some(i) = key(t, tier, t.path.unwrap_or(""), false)
                    .and_then(|k| open.get_mut(&k))
                    .and_then(VecDeque::pop_front)
            {
                pairs[j] = Some(i);
                taken[i] = true;
            }
        }
    }
    Matched {
        current: pairs,
        absent: (0..baseline.len()).filter(|&i| !taken[i]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Location, Package, Severity};

    fn at(rule: &str, path: &str, line: u32, message: &str) -> Finding {
        Finding::new("bandit", rule, Severity::Low, message).at(Location::at(path, line, None))
    }

    fn identified(path: &str, text: &str, mut findings: Vec<Finding>) -> Vec<Finding> {
        let sources = HashMap::from([(path.to_owned(), Source::new(path, text))]);
        identify(&mut findings, &sources);
        findings
    }

    #[test]
    fn line_hashes_ignore_whitespace_and_messages_ignore_numbers() {
        assert_eq!(line_hash("  x = f( a,b )\t"), line_hash("x=f(a, b)"));
        assert_ne!(line_hash("x = f(a)"), line_hash("x = g(a)"));
        assert_eq!(line_hash(" \t "), None);
        assert_eq!(
            normalise_message("file  has 612 lines\n(limit 600)"),
            "file has # lines (limit #)"
        );
        assert_eq!(normalise_message("B105 at 1.5"), "B# at #.#");
    }

    #[test]
    fn context_skips_blank_lines_and_stops_at_the_edges() {
        let lines: Vec<String> = ["a", "", "b", "X", "", "", "c", "d", "e"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let spaced: Vec<String> = ["a", "b", "  X", "c", "", "d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(context_hash(&lines, 3), context_hash(&spaced, 2));
        assert_ne!(context_hash(&lines, 3), context_hash(&lines, 6));
        assert!(context_hash(&lines, 0).is_some());
        assert_eq!(context_hash(&["only".to_owned()], 0), None);
    }

    #[test]
    fn identities_and_fingerprints() {
        let text = "def f():\n    x = eval(s)\n    x = eval(s)\n\nrequests==2.19.0\n";
        let mut pkg = Finding::new("pip-audit", "PYSEC-1", Severity::High, "vuln 2.19.0")
            .at(Location::at("a.py", 5, None));
        pkg.package = Some(Package {
            name: "requests".into(),
            version: None,
            fixed_in: vec![],
        });
        let found = identified(
            "a.py",
            text,
            vec![
                at("B307", "a.py", 3, "eval"),
                at("B307", "a.py", 2, "eval"),
                pkg,
                at("B999", "a.py", 9, "past the end 9"),
            ],
        );
        let ids: Vec<&Identity> = found.iter().map(|f| f.identity.as_ref().unwrap()).collect();
        // Occurrences follow the lines, not the tool's order.
        assert_eq!((ids[0].occurrence, ids[1].occurrence), (1, 0));
        assert_eq!(ids[0].line, ids[1].line);
        assert_ne!(ids[0].context, ids[1].context);
        assert_eq!(ids[0].scope.as_deref(), Some("f"));
        assert!(found[0].fingerprint.ends_with(":1") && found[1].fingerprint.ends_with(":0"));
        assert_eq!(ids[2].stable.as_deref(), Some("requests PYSEC-1"));
        assert_eq!(ids[3].line, None);
        assert_eq!(ids[3].message, hash(&["past the end #"]));
        // The same fingerprint `Finding::compute_fingerprint` gives.
        assert_eq!(
            found[1].fingerprint,
            found[1].compute_fingerprint(Some("x = eval(s)"), 0)
        );
        // A version bump on the manifest line keeps the advisory's fingerprint.
        let bumped = identified(
            "a.py",
            &text.replace("2.19.0", "2.19.1"),
            vec![found[2].clone()],
        );
        assert_eq!(bumped[0].fingerprint, found[2].fingerprint);
    }

    #[test]
    fn file_level_findings_match_by_message_and_legacy_ones_too() {
        let long = |n: u32| {
            Finding::new(
                "profile",
                "long-file",
                Severity::Low,
                format!("file has {n} lines"),
            )
            .at(Location::file("a.py"))
        };
        let base = identified("a.py", "x\n", vec![long(601)]);
        let now = identified("a.py", "x\n", vec![long(640)]);
        assert_eq!(base[0].fingerprint, now[0].fingerprint);
        assert!(!compare(&base, &now, &HashMap::new()).is_new(0));
        // Recorded before identities: matched by rule and message.
        let mut old = at("B307", "a.py", 7, "Use of eval");
        old.fingerprint = "0123456789abcdef:0".into();
        let now = identified(
            "a.py",
            "\n\neval(s)\n",
            vec![at("B307", "a.py", 3, "Use of eval")],
        );
        assert_eq!(compare(&[old], &now, &HashMap::new()).current, [Some(0)]);
    }

    #[test]
    fn stable_ids_decide_alone() {
        let pkg = |rule: &str, name: &str| {
            let mut f = Finding::new("pip-audit", rule, Severity::High, "m").at(Location::at(
                "requirements.txt",
                1,
                None,
            ));
            f.package = Some(Package {
                name: name.into(),
                version: None,
                fixed_in: vec![],
            });
            f
        };
        let base = identified(
            "requirements.txt",
            "requests==1\n",
            vec![pkg("A-1", "requests")],
        );
        let now = identified(
            "requirements.txt",
            "flask==2\nrequests==2\n",
            vec![pkg("A-1", "flask"), pkg("A-1", "requests")],
        );
        let m = compare(&base, &now, &HashMap::new());
        assert_eq!(m.current, [None, Some(0)]);
    }

    #[test]
    fn a_tools_own_id_survives_identify_and_decides() {
        let tool = |id: &str| {
            let mut f =
                Finding::new("semgrep", "R", Severity::High, "m").at(Location::at("a.py", 1, None));
            f.identity = Some(Identity::from_tool(id.into()));
            f
        };
        let base = identified("a.py", "x = 1\n", vec![tool("fp=1")]);
        assert_eq!(
            base[0].identity.as_ref().unwrap().stable.as_deref(),
            Some("fp=1")
        );
        assert!(base[0].identity.as_ref().unwrap().line.is_some());
        // The line edited, the tool's id the same: the same finding.
        let now = identified("a.py", "x = 2\n", vec![tool("fp=1")]);
        assert_eq!(base[0].fingerprint, now[0].fingerprint);
        assert_eq!(compare(&base, &now, &HashMap::new()).current, [Some(0)]);
        let other = identified("a.py", "x = 1\n", vec![tool("fp=2")]);
        assert_eq!(compare(&base, &other, &HashMap::new()).current, [None]);
    }
}
