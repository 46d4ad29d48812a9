//! `bgtask run --new-only --baseline-ref REF`: the baseline is the
//! findings of the merge base of REF and HEAD, analysed in a temporary
//! `git worktree` with this worktree's (trusted) config, and cached in
//! `.bgtask/baselines/` by the merge base's tree, the names asked for, the
//! config and bgtask's version — a second CI job or a second run reads it
//! and analyses nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Ctx;
use super::run_cmd::RunArgs;
use crate::baseline::Baseline;
use crate::config::Config;
use crate::engine::Workspace;
use crate::report::Format;

/// `--baseline-ref` names nothing git knows.
#[derive(Debug, thiserror::Error)]
#[error(
    "--baseline-ref: unknown revision `{0}` (a branch, tag or commit; fetch it first in a shallow CI clone)"
)]
pub struct UnknownRef(pub String);

/// The merge base's baseline, from the cache or analysed now; `None` (with
/// a warning) when the merge base could not be analysed cleanly, so the
/// run reports everything.
pub fn baseline(
    ctx: &Ctx,
    args: &RunArgs,
    rev: &str,
    workspace: &Workspace,
    config: &Arc<Config>,
) -> anyhow::Result<Option<(String, Baseline)>> {
    let root = &workspace.root;
    let git = |a: &[&str]| -> Option<String> {
        crate::git::git(root, a)
            .ok()
            .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // One process when REV is known (the common case); the checks only
    // when the merge base cannot be had.
    if rev.starts_with('-') {
        return Err(UnknownRef(rev.to_owned()).into());
    }
    let base = match git(&["merge-base", rev, "HEAD"]) {
        Some(base) => base,
        None => git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .ok_or_else(|| UnknownRef(rev.to_owned()))?,
    };
    let tree = git(&["rev-parse", &format!("{base}^{{tree}}")]).unwrap_or_else(|| base.clone());
    let short = &base[..base.len().min(12)];
    let against = if rev == "HEAD" {
        format!("HEAD ({short})")
    } else {
        format!("{rev} (merge base {short})")
    };
    let cached = cache_file(root, &tree, &args.names, config);
    if let Ok(b) = Baseline::read(&cached) {
        ctx.note(&format!("baseline: {against}, cached"));
        return Ok(Some((against, b)));
    }
    ctx.note(&format!(
        "baseline: analysing {against} in a temporary worktree"
    ));
    let Some(baseline) = analyse(args, &base, workspace, config)? else {
        return Ok(None);
    };
    if let Some(dir) = cached.parent() {
        std::fs::create_dir_all(dir)?;
    }
    baseline.write(&cached)?;
    Ok(Some((against, baseline)))
}

/// `.bgtask/baselines/<key>.json` for this tree, names, config and bgtask.
fn cache_file(root: &Path, tree: &str, names: &[String], config: &Config) -> PathBuf {
    let mut h = blake3::Hasher::new();
    h.update(tree.as_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    for n in names {
        h.update(n.as_bytes());
        h.update(&[0]);
    }
    for f in &config.files {
        h.update(&std::fs::read(f).unwrap_or_default());
        h.update(&[0]);
    }
    let key = h.finalize().to_hex();
    root.join(".bgtask")
        .join("baselines")
        .join(format!("{}.json", &key[..24]))
}

/// Runs `args.names` on the whole of `commit`, checked out in a temporary
/// worktree that is removed afterwards.
fn analyse(
    args: &RunArgs,
    commit: &str,
    workspace: &Workspace,
    config: &Arc<Config>,
) -> anyhow::Result<Option<Baseline>> {
    let dir = tempfile::Builder::new()
        .prefix("bgtask-baseline-")
        .tempdir()?;
    let tree = dir.path().join("tree");
    let tree_arg = tree.to_string_lossy().into_owned();
    crate::git::git(
        &workspace.root,
        &["worktree", "add", "--detach", "--quiet", &tree_arg, commit],
    )?;
    let result = (|| {
        let base = Workspace::worktree(&tree)?;
        // Its own progress would interleave with the run's.
        let quiet = Ctx {
            cwd: tree.clone(),
            verbose: false,
            quiet: true,
        };
        let mut run = RunArgs::for_gate(args.names.clone(), Vec::new(), Format::Json);
        run.offline = args.offline;
        run.timeout = args.timeout;
        run.jobs = args.jobs;
        super::run_cmd::execute_in(&quiet, &run, &base, config)
    })();
    let _ = crate::git::git(
        &workspace.root,
        &["worktree", "remove", "--force", &tree_arg],
    );
    let (report, _) = result?;
    if report.exit_code >= crate::exit::TOOL_ERROR {
        anstream::eprintln!(
            "warning: the merge base could not be analysed cleanly ({}); reporting every finding as new",
            report.verdict
        );
        return Ok(None);
    }
    Ok(Some(Baseline::new(
        &report.findings,
        args.names.clone(),
        Some(commit.to_owned()),
    )))
}
