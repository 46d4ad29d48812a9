//! `radon cc -j -s`: an object keyed by path. radon always exits 0 and has
//! no opinion; the definition's `thresholds` decide what is a finding.
//! Methods appear both inside their class and at the top level: deduplicated
//! by (path, line, name). `{"error": …}` entries are files radon could not
//! parse → partial.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::{ParseError, Parsed, ToolOutput};
use crate::analyze::{Finding, Location};

#[derive(Deserialize)]
#[serde(untagged)]
enum FileEntry {
    Blocks(Vec<Block>),
    Error { error: String },
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    lineno: u32,
    endline: Option<u32>,
    col_offset: Option<u32>,
    complexity: u32,
    rank: Option<String>,
    classname: Option<String>,
    #[serde(default)]
    methods: Vec<Block>,
    #[serde(default)]
    closures: Vec<Block>,
}

pub fn parse(out: &ToolOutput<'_>) -> Result<Parsed, ParseError> {
    let files: BTreeMap<String, FileEntry> = out.json("radon JSON")?;
    let mut parsed = Parsed::default();
    for (raw_path, entry) in files {
        let path = out.rel_path(&raw_path);
        match entry {
            FileEntry::Error { error } => parsed.incomplete.push(format!("{path}: {error}")),
            FileEntry::Blocks(blocks) => {
                let mut seen = HashSet::new();
                let mut stack: Vec<Block> = blocks;
                while let Some(b) = stack.pop() {
                    stack.extend(b.methods.iter().map(clone_block));
                    stack.extend(b.closures.iter().map(clone_block));
                    if b.kind == "class" || !seen.insert((b.lineno, b.name.clone())) {
                        continue;
                    }
                    let Some(severity) = out.def.thresholds.complexity(b.complexity) else {
                        continue;
                    };
                    let what = if b.kind == "method" {
                        "method"
                    } else {
                        "function"
                    };
                    let name = match &b.classname {
                        Some(c) => format!("{c}.{}", b.name),
                        None => b.name.clone(),
                    };
                    let rank = b.rank.as_deref().unwrap_or("?");
                    let msg = format!(
                        "{what} `{name}` has cyclomatic complexity {} (rank {rank}, reported from {}): split it into smaller functions or simplify its branching",
                        b.complexity, out.def.thresholds.complexity_low
                    );
                    parsed.findings.push(
                        Finding::new(out.name(), "cyclomatic-complexity", severity, msg).at(
                            Location::at(path.clone(), b.lineno, b.col_offset.map(|c| c + 1))
                                .with_end(b.endline, None),
                        ),
                    );
                }
            }
        }
    }
    parsed
        .findings
        .sort_by_key(|f| (f.path().map(str::to_owned), f.line()));
    Ok(parsed)
}

fn clone_block(b: &Block) -> Block {
    Block {
        kind: b.kind.clone(),
        name: b.name.clone(),
        lineno: b.lineno,
        endline: b.endline,
        col_offset: b.col_offset,
        complexity: b.complexity,
        rank: b.rank.clone(),
        classname: b.classname.clone(),
        methods: b.methods.iter().map(clone_block).collect(),
        closures: b.closures.iter().map(clone_block).collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Severity;
    use crate::analyze::parsers::testing::{Case, fixture, rules_and_lines};

    #[test]
    fn real_report_with_our_thresholds() {
        let doc = fixture("radon-cc.json");
        let parsed = Case::new("radon", 0).stdout(&doc).parse().unwrap();
        assert_eq!(
            rules_and_lines(&parsed),
            [("cyclomatic-complexity".to_owned(), Some(20))]
        );
        let f = &parsed.findings[0];
        assert_eq!(f.severity, Severity::Low);
        assert!(
            f.message
                .contains("`price` has cyclomatic complexity 14 (rank C"),
            "{}",
            f.message
        );
        assert_eq!(f.location.as_ref().unwrap().end_line, Some(45));
    }

    #[test]
    fn methods_are_not_counted_twice() {
        let doc = br#"{"a.py": [
            {"type": "class", "name": "C", "lineno": 1, "endline": 30, "col_offset": 0, "complexity": 12, "rank": "C",
             "methods": [{"type": "method", "name": "m", "lineno": 2, "endline": 29, "col_offset": 4, "complexity": 22, "rank": "D", "classname": "C", "closures": []}]},
            {"type": "method", "name": "m", "lineno": 2, "endline": 29, "col_offset": 4, "complexity": 22, "rank": "D", "classname": "C", "closures": []}
        ]}"#;
        let parsed = Case::new("radon", 0).stdout(doc).parse().unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].severity, Severity::Medium);
        assert!(parsed.findings[0].message.contains("method `C.m`"));
    }

    #[test]
    fn syntax_errors_make_it_partial() {
        let doc = fixture("radon-syntax-error.json");
        let parsed = Case::new("radon", 0).stdout(&doc).parse().unwrap();
        assert_eq!(
            parsed.incomplete,
            ["broken.py: invalid syntax (<unknown>, line 1)"]
        );
    }
}
