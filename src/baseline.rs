//! Baselines: the findings a team has accepted, in `.bgtask-baseline.json`
//! (committed; small, sorted, one finding per line so it diffs well), so
//! that only what a change introduces fails CI (`bgtask run --new-only`).
//! A run is compared with it by the findings' identities
//! (`analyze::identity`), renamed files followed through git.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analyze::Finding;
use crate::report::{Comparison, Report};

/// The baseline file's name, at the worktree's root.
pub const FILE: &str = ".bgtask-baseline.json";
/// The format this bgtask writes and reads.
pub const VERSION: u32 = 1;

/// `.bgtask-baseline.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Says the file is ours, and which format: `1`.
    pub bgtask_baseline: u32,
    pub written_by: String,
    /// The commit the findings were recorded at (for renames since).
    #[serde(default)]
    pub commit: Option<String>,
    /// The tasks or analyzers it was written for.
    #[serde(default)]
    pub names: Vec<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("no baseline at {}: `bgtask baseline write` records one", path.display())]
    Missing { path: PathBuf },
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a bgtask baseline ({why})", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("{}: not a bgtask baseline (no `bgtask_baseline` version)", path.display())]
    NotOurs { path: PathBuf },
    #[error(
        "{}: baseline format {found} is newer than this bgtask's ({VERSION}); update bgtask",
        path.display()
    )]
    Newer { path: PathBuf, found: u32 },
}

impl Baseline {
    pub fn new(findings: &[Finding], names: Vec<String>, commit: Option<String>) -> Baseline {
        let mut findings = findings.to_vec();
        crate::analyze::sort_findings(&mut findings);
        Baseline {
            bgtask_baseline: VERSION,
            written_by: format!("bgtask {}", env!("CARGO_PKG_VERSION")),
            commit,
            names,
            findings,
        }
    }

    /// Reads `path`; a file that is missing, not ours, newer or corrupt is
    /// an error that says which (never "no baseline, everything new").
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BaselineError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(BaselineError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let corrupt = |e: &serde_json::Error| BaselineError::Corrupt {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            why: e.to_string(),
        };
        // One parse when the file is what it should be (a baseline of a
        // thousand findings is half a megabyte); the reason when not.
        if let Ok(b) = serde_json::from_str::<Baseline>(&text)
            && b.bgtask_baseline <= VERSION
        {
            return Ok(b);
        }
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt(&e))?;
        let Some(version) = value
            .get("bgtask_baseline")
            .and_then(serde_json::Value::as_u64)
        else {
            return Err(BaselineError::NotOurs {
                path: path.to_owned(),
            });
        };
        let version = u32::try_from(version).unwrap_or(u32::MAX);
        if version > VERSION {
            return Err(BaselineError::Newer {
                path: path.to_owned(),
                found: version,
            });
        }
        serde_json::from_str(&text).map_err(|e| corrupt(&e))
    }

    /// Accepts one more finding (an editor's "add to baseline"); `false`
    /// when it is in already (same analyzer, rule, path and fingerprint).
    pub fn add(&mut self, finding: Finding) -> bool {
        let same = |f: &Finding| {
            f.analyzer == finding.analyzer
                && f.rule == finding.rule
                && f.path() == finding.path()
                && f.fingerprint == finding.fingerprint
        };
        if self.findings.iter().any(same) {
            return false;
        }
        self.findings.push(finding);
        crate::analyze::sort_findings(&mut self.findings);
        true
    }

    /// Writes the file at `path` whole or not at all (a temporary file
    /// beside it, renamed over it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))?;
        tmp.write_all(self.to_text().as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The file's text: sorted findings, one per line.
    pub fn to_text(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"bgtask_baseline\": {},", self.bgtask_baseline);
        let _ = writeln!(out, "  \"written_by\": {},", one_line(&self.written_by));
        let _ = writeln!(out, "  \"commit\": {},", one_line(&self.commit));
        let _ = writeln!(out, "  \"names\": {},", one_line(&self.names));
        out.push_str("  \"findings\": [");
        for (i, f) in self.findings.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&one_line(f));
        }
        out.push_str(if self.findings.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        out
    }

    /// Files git renamed since the baseline's commit (old path → new),
    /// asked of git only when one of its findings' files is gone from the
    /// worktree at `root` (otherwise no rename can concern it).
    pub fn renames(&self, root: &Path) -> std::collections::HashMap<String, String> {
        let paths: HashSet<&str> = self.findings.iter().filter_map(Finding::path).collect();
        let gone = paths
            .iter()
            .any(|p| std::fs::symlink_metadata(root.join(p)).is_err());
        match &self.commit {
            Some(c) if gone => crate::git::renames(root, c).unwrap_or_default(),
            _ => std::collections::HashMap::new(),
        }
    }

    /// The run in `report` compared with this baseline, within what it
    /// analysed (`files`: `None` for the whole project): baseline findings
    /// in files the run did not look at are neither matched nor absent.
    pub fn compare(
        &self,
        against: &str,
        report: &Report,
        files: Option<&[String]>,
        renames: &std::collections::HashMap<String, String>,
    ) -> Comparison {
        let scope: Option<HashSet<&str>> = files.map(|f| f.iter().map(String::as_str).collect());
        let relevant: Vec<Finding> = self
            .findings
            .iter()
            .filter(|f| match (&scope, f.path()) {
                (None, _) => true,
                (Some(s), Some(p)) => {
                    s.contains(p) || renames.get(p).is_some_and(|n| s.contains(n.as_str()))
                }
                (Some(_), None) => false,
            })
            .cloned()
            .collect();
        Comparison::of(against, &relevant, report, renames)
    }
}

/// JSON of one value on one line, for the file's layout.
fn one_line<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
