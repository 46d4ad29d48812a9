//! Analyzers built into bgtask, run in this process: the profile
//! (`analyze/profile`) over each target file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::execute::Batch;
use crate::analyze::{AnalyzerDef, RunStatus, profile};
use crate::event::AnalyzerRun;

/// Largest source file the profile analyzer reads.
const PROFILE_READ_MAX: u64 = 32 * 1024 * 1024;

/// The built-in profile over `targets`, each file timed by itself.
pub(super) fn profile_run(
    root: &Path,
    def: &AnalyzerDef,
    targets: &[PathBuf],
) -> (AnalyzerRun, Vec<Batch>) {
    let mut findings = Vec::new();
    let mut batches = Vec::with_capacity(targets.len());
    for t in targets {
        let started = Instant::now();
        // Never a FIFO, a device or a link out of the worktree.
        let Ok(Some((file, _))) = crate::repofile::open(Some(root), &root.join(t)) else {
            continue;
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, PROFILE_READ_MAX), &mut bytes)
            .is_err()
        {
            continue;
        }
        findings.extend(profile::profile_file(def, &t.to_string_lossy(), &bytes));
        batches.push((vec![t.clone()], started.elapsed()));
    }
    let status = if findings.is_empty() {
        RunStatus::Clean
    } else {
        RunStatus::Findings
    };
    let mut run = AnalyzerRun::skipped(&def.name, def.category, Vec::new(), status, String::new());
    run.reason = None;
    run.findings = findings;
    (run, batches)
}
