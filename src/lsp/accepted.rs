//! The baseline as the editor shows it: which of a document's findings
//! the team accepted in `.bgtask-baseline.json` (shown as hints, the rest
//! marked new), and accepting one more (the "add to baseline" action).
//! Matching is `bgtask run --new-only`'s (`analyze::identity`), files
//! renamed since the baseline's commit followed through git.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use tracing::warn;

use crate::analyze::identity::{Tracked, compare_tracked};
use crate::baseline::{self, Baseline, BaselineError};
use crate::store::{CurrentFinding, Store};

/// The worktree's baseline, read again when the file changes.
#[derive(Default)]
pub struct Accepted {
    baseline: Option<Baseline>,
    /// Old path → new, since the baseline's commit.
    renames: HashMap<String, String>,
    /// The file's modification time and size when read; `None`: no file.
    stamp: Option<(SystemTime, u64)>,
}

impl Accepted {
    /// Reads the baseline when it changed since the last look. A broken
    /// file is said (once per change) and treated as none.
    pub fn refresh(&mut self, root: &Path) -> Option<String> {
        let path = root.join(baseline::FILE);
        let stamp = std::fs::metadata(&path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp == self.stamp {
            return None;
        }
        self.stamp = stamp;
        self.baseline = None;
        self.renames.clear();
        stamp?;
        match Baseline::read(&path) {
            Ok(b) => {
                self.renames = b.renames(root);
                self.baseline = Some(b);
                None
            }
            Err(e) => {
                warn!(error = %e, "the baseline is not used");
                Some(format!("{e}; findings are shown without it"))
            }
        }
    }

    /// Whether there is a baseline (then a finding not in it is new).
    pub fn exists(&self) -> bool {
        self.baseline.is_some()
    }

    /// For each of `path`'s findings, whether the baseline accepted it.
    pub fn marks(&self, path: &str, findings: &[CurrentFinding]) -> Vec<bool> {
        let Some(b) = &self.baseline else {
            return vec![false; findings.len()];
        };
        let here = |p: &str| self.renames.get(p).map_or(p, String::as_str) == path;
        let before: Vec<Tracked<'_>> = b
            .findings
            .iter()
            .filter(|f| f.path().is_some_and(here))
            .map(Tracked::from)
            .collect();
        let now: Vec<Tracked<'_>> = findings.iter().map(tracked).collect();
        let matched = compare_tracked(&before, &now, &self.renames);
        (0..findings.len()).map(|i| !matched.is_new(i)).collect()
    }
}

fn tracked(f: &CurrentFinding) -> Tracked<'_> {
    Tracked {
        analyzer: &f.analyzer,
        rule: &f.rule,
        path: Some(&f.path),
        line: f.line.and_then(|l| u32::try_from(l).ok()),
        message: &f.message,
        fingerprint: &f.fingerprint,
        identity: f.identity.as_ref(),
    }
}

/// Adds the finding of run `run_id` with `fingerprint` in `path` to the
/// worktree's baseline (made when there is none); says what it did.
pub fn add(
    root: &Path,
    store: &Store,
    run_id: i64,
    path: &str,
    fingerprint: &str,
) -> anyhow::Result<String> {
    let report = store
        .report(run_id)?
        .flatten()
        .with_context(|| format!("run {run_id} has no report (pruned?)"))?;
    let finding = report
        .findings
        .into_iter()
        .find(|f| f.path() == Some(path) && f.fingerprint == fingerprint)
        .with_context(|| format!("run {run_id} has no such finding in {path}"))?;
    let file = root.join(baseline::FILE);
    let mut b = match Baseline::read(&file) {
        Ok(b) => b,
        Err(BaselineError::Missing { .. }) => {
            Baseline::new(&[], Vec::new(), crate::git::head_commit(root))
        }
        Err(e) => return Err(e.into()),
    };
    let rule = finding.rule.clone();
    let line = finding.line().map(|l| format!(":{l}")).unwrap_or_default();
    if !b.add(finding) {
        return Ok(format!(
            "{rule} at {path}{line} is in {} already",
            baseline::FILE
        ));
    }
    b.write(&file)
        .with_context(|| format!("write {}", file.display()))?;
    Ok(format!(
        "added {rule} at {path}{line} to {} ({} findings); commit it so CI and your team hold the line",
        baseline::FILE,
        b.findings.len()
    ))
}
