//! Findings' identities under edits: a torture fixture edited the ways code
//! is edited (`tests/fixtures/identity/torture.py`), and property tests
//! over random files and random edits. Edits that leave the flagged lines
//! alone must make no finding new and none absent; adding a flagged line
//! (a copy of an existing one included) must make exactly it new; editing
//! or deleting one must make it new or absent.

use std::collections::HashMap;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::Index;

use super::identity::{Matched, Source, compare, identify};
use super::{Finding, Location, Severity};

const TORTURE: &str = include_str!("../../tests/fixtures/identity/torture.py");

/// The test's analyzer: B307 on `eval(`, B105 on a quoted password, B602
/// on `shell=True`, with the line and column in the message (numbers that
/// move with every edit above).
fn analyze(path: &str, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).unwrap();
        let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        for (needle, rule) in [
            ("eval(", "B307"),
            ("password=\"", "B105"),
            ("shell=True", "B602"),
        ] {
            if let Some(col) = squeezed.find(needle) {
                let col = u32::try_from(col + 1).unwrap();
                let message = format!("{rule} at line {n}, column {col}");
                out.push(
                    Finding::new("bandit", rule, Severity::Medium, message).at(Location::at(
                        path,
                        n,
                        Some(col),
                    )),
                );
            }
        }
    }
    let sources = HashMap::from([(path.to_owned(), Source::new(path, text))]);
    identify(&mut out, &sources);
    out
}

fn no_renames() -> HashMap<String, String> {
    HashMap::new()
}

/// (new, absent) counts.
fn counts(m: &Matched) -> (usize, usize) {
    (m.new_indices().count(), m.absent.len())
}

fn fingerprints(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings.iter().map(|f| f.fingerprint.clone()).collect();
    v.sort();
    v
}

/// The fixture with the function `name` (its `def` line to the line
/// before the next top-level line) cut out and pasted at the end.
fn move_to_end(text: &str, name: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("def {name}(")))
        .unwrap();
    let end = (start + 1..lines.len())
        .find(|&i| !lines[i].is_empty() && !lines[i].starts_with(' '))
        .unwrap_or(lines.len());
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.extend(&lines[end..]);
    out.push("");
    out.extend(&lines[start..end]);
    out.join("\n") + "\n"
}

#[test]
fn torture_edits_that_leave_the_flagged_lines_alone() {
    let base = analyze("orders.py", TORTURE);
    assert_eq!(base.len(), 7, "{base:#?}");
    let reindented = TORTURE
        .lines()
        .map(|l| {
            let spaces = l.len() - l.trim_start().len();
            format!("{}{}", "\t".repeat(spaces / 4), l.trim_start())
        })
        .collect::<Vec<_>>()
        .join("\n");
    let edits: Vec<(&str, String)> = vec![
        (
            "lines inserted above",
            format!("import os\nimport sys\n\n# setup\nLIMIT = 10\n{TORTURE}"),
        ),
        (
            "docstring deleted above",
            TORTURE.replacen(&TORTURE[..TORTURE.find("import").unwrap()], "", 1),
        ),
        ("reindented with tabs", reindented),
        (
            "reformatted within the lines",
            TORTURE
                .replace("eval(expr)", "eval( expr )")
                .replace("password = \"hunter2\"", "password=\"hunter2\""),
        ),
        ("a function moved", move_to_end(TORTURE, "parse")),
        (
            "two functions swapped",
            move_to_end(&move_to_end(TORTURE, "report"), "parse"),
        ),
        (
            "a function renamed",
            TORTURE.replace("def parse(", "def parse_all("),
        ),
        (
            "blank lines added around",
            TORTURE.replace("\n\n", "\n\n\n\n"),
        ),
        (
            "code edited next to a flagged line",
            TORTURE.replace("return value", "return value or 0"),
        ),
    ];
    for (what, text) in edits {
        let now = analyze("orders.py", &text);
        let m = compare(&base, &now, &no_renames());
        assert_eq!(counts(&m), (0, 0), "{what}: {m:?}");
        // The fingerprints survive every one of these edits.
        assert_eq!(fingerprints(&base), fingerprints(&now), "{what}");
    }
}

#[test]
fn torture_edits_that_touch_the_flagged_lines() {
    let base = analyze("orders.py", TORTURE);
    // A second finding of the same rule on an identical line: exactly it is new.
    let copy = TORTURE.replace(
        "    return [inner(p)",
        "    print(eval(row))\n    return [inner(p)",
    );
    let now = analyze("orders.py", &copy);
    let m = compare(&base, &now, &no_renames());
    assert_eq!(counts(&m), (1, 0));
    let new: Vec<u32> = m.new_indices().map(|i| now[i].line().unwrap()).collect();
    let added = copy
        .lines()
        .position(|l| l == "    print(eval(row))")
        .unwrap()
        + 1;
    assert_eq!(new, [u32::try_from(added).unwrap()]);
    // The same line once more right under an existing one.
    let twice = TORTURE.replacen(
        "        print(eval(row))\n",
        "        print(eval(row))\n        print(eval(row))\n",
        1,
    );
    assert_eq!(
        counts(&compare(
            &base,
            &analyze("orders.py", &twice),
            &no_renames()
        )),
        (1, 0)
    );
    // The flagged line edited: new, and the old one absent.
    let edited = TORTURE.replace("value = eval(expr)", "value = eval(expr.strip())");
    let now = analyze("orders.py", &edited);
    let m = compare(&base, &now, &no_renames());
    assert_eq!(counts(&m), (1, 1));
    assert!(now[m.new_indices().next().unwrap()].fingerprint != base[m.absent[0]].fingerprint);
    // A flagged line deleted: absent, nothing new.
    let deleted = TORTURE.replace(
        "        subprocess.call(\"tar czf \" + name, shell=True)\n",
        "",
    );
    assert_eq!(
        counts(&compare(
            &base,
            &analyze("orders.py", &deleted),
            &no_renames()
        )),
        (0, 1)
    );
    // Copied to another file: new there.
    let mut both = base.clone();
    both.extend(analyze("copy.py", TORTURE));
    assert_eq!(
        counts(&compare(&base, &both, &no_renames())),
        (base.len(), 0)
    );
}

#[test]
fn torture_rename_followed_through_git() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::write(root.join("orders.py"), TORTURE).unwrap();
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "orders"]);
    let base = analyze("orders.py", TORTURE);
    std::fs::create_dir(root.join("shop")).unwrap();
    git(&["mv", "orders.py", "shop/orders.py"]);
    let moved = format!("import logging\n{TORTURE}");
    std::fs::write(root.join("shop/orders.py"), &moved).unwrap();
    let now = analyze("shop/orders.py", &moved);
    assert_eq!(counts(&compare(&base, &now, &no_renames())), (7, 7));
    let renames = crate::git::renames(root, "HEAD").unwrap();
    assert_eq!(counts(&compare(&base, &now, &renames)), (0, 0));
}

fn at(rule: &str, path: &str, line: u32, message: &str) -> Finding {
    Finding::new("bandit", rule, Severity::Low, message).at(Location::at(path, line, None))
}

fn identified(path: &str, text: &str, mut findings: Vec<Finding>) -> Vec<Finding> {
    let sources = HashMap::from([(path.to_owned(), Source::new(path, text))]);
    identify(&mut findings, &sources);
    findings
}

fn states(m: &Matched) -> Vec<bool> {
    (0..m.current.len()).map(|i| m.is_new(i)).collect()
}

#[test]
fn tiers_pair_duplicates_by_their_context_and_follow_renames() {
    let before = "def a():\n    eval(s)\n\ndef b():\n    eval(s)\n";
    let base = identified(
        "a.py",
        before,
        vec![at("B307", "a.py", 2, "m"), at("B307", "a.py", 5, "m")],
    );
    // A third identical line added first, in a new function: it alone is new.
    let after = format!("def c():\n    eval(s)\n\n{before}");
    let now = identified(
        "a.py",
        &after,
        vec![
            at("B307", "a.py", 2, "m"),
            at("B307", "a.py", 5, "m"),
            at("B307", "a.py", 8, "m"),
        ],
    );
    let m = compare(&base, &now, &HashMap::new());
    assert_eq!(m.current, [None, Some(0), Some(1)]);
    assert!(m.absent.is_empty());
    // Renamed: found under the new path only through the map.
    let moved = identified("b.py", before, vec![at("B307", "b.py", 2, "m")]);
    assert_eq!(states(&compare(&base, &moved, &HashMap::new())), [true]);
    let renames = HashMap::from([("a.py".to_owned(), "b.py".to_owned())]);
    let m = compare(&base, &moved, &renames);
    assert_eq!(
        (m.current.as_slice(), m.absent.as_slice()),
        (&[Some(0)][..], &[1][..])
    );
}

#[test]
fn an_edited_line_is_new_even_with_the_same_message() {
    let base = identified(
        "a.py",
        "def f(a):\n    pass\n",
        vec![at("C0116", "a.py", 1, "docstring")],
    );
    let now = identified(
        "a.py",
        "def f(a, b):\n    pass\n",
        vec![at("C0116", "a.py", 1, "docstring")],
    );
    let m = compare(&base, &now, &HashMap::new());
    assert_eq!((states(&m), m.absent), (vec![true], vec![0]));
}

/// One line of a generated function: filler code, a blank line, or a
/// flagged `eval` of one of a few names (so identical lines are common).
#[derive(Debug, Clone)]
struct Line {
    /// Who the line is, whatever its text becomes; edits give a new one.
    id: u32,
    /// `Some(k)`: flagged, `eval(s{k})`.
    flagged: Option<u32>,
    blank: bool,
    /// Flagged lines written `eval( s1 )`.
    spaced: bool,
}

#[derive(Debug, Clone)]
struct Func {
    name: String,
    body: Vec<Line>,
}

#[derive(Debug, Clone)]
struct Tree {
    path: String,
    indent: String,
    funcs: Vec<Func>,
    next: u32,
}

impl Tree {
    fn new(shape: &[Vec<Option<u32>>]) -> Tree {
        let mut t = Tree {
            path: "m.py".into(),
            indent: "    ".into(),
            funcs: Vec::new(),
            next: 0,
        };
        for (i, body) in shape.iter().enumerate() {
            let body = body.iter().map(|k| t.line(*k)).collect();
            t.funcs.push(Func {
                name: format!("f{i}"),
                body,
            });
        }
        t
    }

    fn line(&mut self, flagged: Option<u32>) -> Line {
        self.next += 1;
        Line {
            id: self.next,
            flagged,
            blank: false,
            spaced: false,
        }
    }

    /// The text, and the id of each flagged line's finding in line order.
    fn render(&self) -> (String, Vec<u32>) {
        let mut text = String::new();
        let mut ids = Vec::new();
        let indent = &self.indent;
        for func in &self.funcs {
            let _ = writeln!(text, "def {}():", func.name);
            for l in &func.body {
                let _ = match (l.flagged, l.blank, l.spaced) {
                    (_, true, _) => writeln!(text),
                    (Some(k), _, false) => writeln!(text, "{indent}x = eval(s{k})"),
                    (Some(k), _, true) => writeln!(text, "{indent}x = eval( s{k} )"),
                    (None, _, _) => writeln!(text, "{indent}v{} = {}", l.id, l.id),
                };
                if l.flagged.is_some() && !l.blank {
                    ids.push(l.id);
                }
            }
            text.push('\n');
        }
        (text, ids)
    }
}

#[derive(Debug, Clone)]
enum Edit {
    InsertFiller(Index, Index),
    InsertBlank(Index, Index),
    DeleteFiller(Index, Index),
    Reindent(u8),
    Respace(Index, Index),
    MoveFunction(Index, Index),
    RenameFunction(Index),
    RenameFile,
    /// Touching the flagged lines: a copy of `eval(s{k})` added.
    AddFlagged(Index, Index, u32),
    /// A flagged line made unique.
    ChangeFlagged(Index, Index),
    DeleteFlagged(Index, Index),
}

fn edit(touching: bool) -> impl Strategy<Value = Edit> {
    let at = || (any::<Index>(), any::<Index>());
    let gentle = prop_oneof![
        3 => at().prop_map(|(f, p)| Edit::InsertFiller(f, p)),
        2 => at().prop_map(|(f, p)| Edit::InsertBlank(f, p)),
        2 => at().prop_map(|(f, p)| Edit::DeleteFiller(f, p)),
        1 => (0u8..4).prop_map(Edit::Reindent),
        2 => at().prop_map(|(f, p)| Edit::Respace(f, p)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::MoveFunction(a, b)),
        1 => any::<Index>().prop_map(Edit::RenameFunction),
        1 => Just(Edit::RenameFile),
    ];
    let rough = prop_oneof![
        2 => (any::<Index>(), any::<Index>(), 0u32..3).prop_map(|(f, p, k)| Edit::AddFlagged(f, p, k)),
        1 => at().prop_map(|(f, p)| Edit::ChangeFlagged(f, p)),
        1 => at().prop_map(|(f, p)| Edit::DeleteFlagged(f, p)),
    ];
    if touching {
        prop_oneof![3 => gentle, 2 => rough].boxed()
    } else {
        gentle.boxed()
    }
}

/// What the edits did to the flagged lines, for the expected outcome:
/// the `k` of every copy added and of every line edited or deleted. A
/// copy of a line added while another copy of it goes looks exactly like
/// a move, so a case does not do both.
#[derive(Default)]
struct Touched {
    added: Vec<u32>,
    removed: Vec<u32>,
}

impl Tree {
    fn apply(&mut self, edit: &Edit, renames: &mut HashMap<String, String>, touched: &mut Touched) {
        let funcs = self.funcs.len();
        match edit {
            Edit::InsertFiller(func, pos)
            | Edit::InsertBlank(func, pos)
            | Edit::AddFlagged(func, pos, _) => {
                let mut line = self.line(None);
                line.blank = matches!(edit, Edit::InsertBlank(..));
                if let Edit::AddFlagged(_, _, k) = edit {
                    if touched.removed.contains(k) {
                        return;
                    }
                    touched.added.push(*k);
                    line.flagged = Some(*k);
                }
                let body = &mut self.funcs[func.index(funcs)].body;
                body.insert(pos.index(body.len() + 1), line);
            }
            Edit::DeleteFiller(func, pos)
            | Edit::DeleteFlagged(func, pos)
            | Edit::ChangeFlagged(func, pos) => {
                self.touch(edit, func.index(funcs), *pos, touched);
            }
            Edit::Reindent(k) => {
                self.indent = ["  ", "    ", "\t", "        "][usize::from(*k)].into();
            }
            Edit::Respace(func, pos) => {
                let body = &mut self.funcs[func.index(funcs)].body;
                let at = pos.index(body.len());
                body[at].spaced = !body[at].spaced;
            }
            Edit::MoveFunction(from, to) => {
                let moved = self.funcs.remove(from.index(funcs));
                self.funcs.insert(to.index(funcs), moved);
            }
            Edit::RenameFunction(func) => self.funcs[func.index(funcs)].name += "_renamed",
            Edit::RenameFile => {
                let new = format!("pkg/{}", self.path);
                let old = renames
                    .iter()
                    .find(|(_, v)| **v == self.path)
                    .map_or_else(|| self.path.clone(), |(k, _)| k.clone());
                renames.insert(old, new.clone());
                self.path = new;
            }
        }
    }

    /// Deleting a filler line, or deleting or changing a flagged one.
    fn touch(&mut self, edit: &Edit, func: usize, pos: Index, touched: &mut Touched) {
        let next = self.next + 1;
        let body = &mut self.funcs[func].body;
        let at = pos.index(body.len());
        match (edit, body[at].flagged) {
            (Edit::DeleteFiller(..), None) if body.len() > 1 => {
                body.remove(at);
            }
            (Edit::DeleteFlagged(..) | Edit::ChangeFlagged(..), Some(k))
                if !touched.added.contains(&k) && body.len() > 1 =>
            {
                touched.removed.push(k);
                if matches!(edit, Edit::DeleteFlagged(..)) {
                    body.remove(at);
                } else {
                    // A name no other line has: `s{100 + id}`.
                    body[at].flagged = Some(100 + next);
                    body[at].id = next;
                    self.next = next;
                }
            }
            _ => {}
        }
    }
}

fn shape() -> impl Strategy<Value = Vec<Vec<Option<u32>>>> {
    let line = prop_oneof![2 => Just(None), 1 => (0u32..3).prop_map(Some)];
    proptest::collection::vec(proptest::collection::vec(line, 1..7), 1..5)
}

/// The findings of `tree` and the id of the line of each.
fn findings_of(tree: &Tree) -> (Vec<Finding>, Vec<u32>) {
    let (text, ids) = tree.render();
    let found = analyze(&tree.path, &text);
    assert_eq!(found.len(), ids.len(), "{text}");
    (found, ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Edits that leave the flagged lines alone: nothing new, nothing
    /// absent, and (the file not renamed) the same fingerprints.
    #[test]
    fn gentle_edits_change_nothing(shape in shape(), edits in proptest::collection::vec(edit(false), 1..8)) {
        let mut tree = Tree::new(&shape);
        let (base, _) = findings_of(&tree);
        let mut renames = HashMap::new();
        let mut touched = Touched::default();
        for e in &edits {
            tree.apply(e, &mut renames, &mut touched);
        }
        let (now, _) = findings_of(&tree);
        let m = compare(&base, &now, &renames);
        prop_assert_eq!(counts(&m), (0, 0));
        if renames.is_empty() {
            prop_assert_eq!(fingerprints(&base), fingerprints(&now));
        }
    }

    /// Any edits: as many new findings as lines truly added or edited,
    /// for each flagged text; as many absent as truly edited or deleted.
    #[test]
    fn new_and_absent_are_exactly_what_changed(shape in shape(), edits in proptest::collection::vec(edit(true), 1..10)) {
        let mut tree = Tree::new(&shape);
        let (base, base_ids) = findings_of(&tree);
        let mut renames = HashMap::new();
        let mut touched = Touched::default();
        for e in &edits {
            tree.apply(e, &mut renames, &mut touched);
        }
        let (now, now_ids) = findings_of(&tree);
        let m = compare(&base, &now, &renames);
        let text = |f: &Finding| f.identity.as_ref().and_then(|i| i.line.clone());
        let mut want_new: Vec<_> = now.iter().zip(&now_ids).filter(|(_, id)| !base_ids.contains(id)).map(|(f, _)| text(f)).collect();
        let mut got_new: Vec<_> = m.new_indices().map(|i| text(&now[i])).collect();
        let mut want_absent: Vec<_> = base.iter().zip(&base_ids).filter(|(_, id)| !now_ids.contains(id)).map(|(f, _)| text(f)).collect();
        let mut got_absent: Vec<_> = m.absent.iter().map(|&i| text(&base[i])).collect();
        for v in [&mut want_new, &mut got_new, &mut want_absent, &mut got_absent] {
            v.sort();
        }
        prop_assert_eq!(got_new, want_new);
        prop_assert_eq!(got_absent, want_absent);
        // Nothing is ever paired with a finding on another line's code.
        for (j, i) in m.current.iter().enumerate() {
            if let Some(i) = i {
                prop_assert_eq!(text(&now[j]), text(&base[*i]));
            }
        }
    }
}
