//! `run_analysis`: `bgtask run` for an agent — the same engine (cache
//! included) on the given files or the changed ones, progress as MCP
//! progress notifications, `notifications/cancelled` stopping the
//! analyzers, and with `new_only` only what HEAD did not have (HEAD's
//! findings as `bgtask run --baseline-ref HEAD` gets them: analysed once
//! per commit, then cached), matched by the findings' identities.

use std::path::{Path, PathBuf};

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ProgressNotificationParam};
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::daemon::Failed;
use super::params::AnalyzerStatus;
use super::runs::{analyzers, capped};
use crate::analyze::{Finding, Severity};
use crate::cli::run_cmd::{Prepared, RunArgs};
use crate::engine::Progress;
use crate::report::{Format, Report, Summary};

/// What to analyse when no files are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Files changed vs HEAD: modified, added and untracked.
    #[default]
    Changed,
    /// Files staged for the next commit.
    Staged,
    /// The whole project.
    Project,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisParams {
    /// Task or analyzer names (`all`: every enabled task; `list_tasks` lists them). Default `all`.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Repo-relative files to analyse. When given, `scope` and `since` are not used.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// What to analyse when `files` is empty: `changed` (default), `staged` or `project`.
    #[serde(default)]
    pub scope: Scope,
    /// Instead of `scope`: the files changed since the merge base with this ref (`origin/main`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only findings HEAD did not have: what the change introduced (HEAD is analysed once per commit, then cached; without a commit, what the daemon's runs know).
    #[serde(default)]
    pub new_only: bool,
    /// Only findings at or above this severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Run every analyzer even when a cached result matches.
    #[serde(default)]
    pub no_cache: bool,
    /// Skip analyzers that need the network (dependency audits).
    #[serde(default)]
    pub offline: bool,
    /// At most this many findings (default 100, at most 1000); the rest are counted.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Analysis {
    /// One line: why the exit code is what it is.
    pub verdict: String,
    /// `bgtask run`'s exit code: 0 ok, 1 findings at or above `fail_on`, 2 an analyzer failed, 3 one is missing.
    pub exit_code: u8,
    /// What was analysed when not the whole project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub summary: Summary,
    pub analyzers: Vec<AnalyzerStatus>,
    /// Findings of the run in total, before `new_only` and `min_severity`.
    pub total_findings: usize,
    /// How "new" was decided, with `new_only`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Findings kept by the filters.
    pub matching: usize,
    /// The kept findings (as `bgtask run --format json` has them), at most `limit`.
    pub findings: Vec<Finding>,
    /// Kept findings not returned.
    pub omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Runs the analysis `p` asks for in `root`; an analyzer failure (or
/// an untrusted worktree) is a result with `isError`.
pub async fn run(
    root: &Path,
    p: AnalysisParams,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResult {
    match analyse(root, p, ctx).await {
        Ok(a) => {
            let failed = a.exit_code >= 2;
            let value = serde_json::to_value(&a).unwrap_or_default();
            if failed {
                CallToolResult::structured_error(value)
            } else {
                CallToolResult::structured(value)
            }
        }
        Err(why) => CallToolResult::error(vec![rmcp::model::ContentBlock::text(why)]),
    }
}

async fn analyse(
    root: &Path,
    p: AnalysisParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<Analysis, Failed> {
    let plan = {
        let root = root.to_owned();
        tokio::task::spawn_blocking(move || prepare(&root, p))
            .await
            .map_err(|e| e.to_string())??
    };
    let Planned {
        prepared,
        workspace,
        config,
        names,
        offline,
        new_only,
        min,
        limit,
    } = plan;
    let files = prepared.files();
    // What HEAD had (cached per HEAD's tree) is looked up beside the run.
    let head = new_only.then(|| {
        tokio::task::spawn_blocking(move || {
            crate::cli::baseline_cmd::at_head(&workspace, &config, &names, offline)
        })
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let total = prepared.analyzers();
    let progress = tell_progress(ctx, rx, total);
    let cancel = ctx.ct.child_token();
    let (report, ()) = tokio::join!(prepared.analyse(tx, cancel.clone()), progress);
    let mut report = report.map_err(|e| format!("{e:#}"))?;
    if cancel.is_cancelled() {
        return Err("cancelled: the analyzers were stopped".to_owned());
    }
    let baseline = match head {
        None => None,
        Some(pending) => Some(match pending.await.ok().and_then(Result::ok).flatten() {
            Some(wanted) => {
                crate::cli::baseline_cmd::apply(&mut report, &wanted, files.as_deref());
                New::Head(format!(
                    "new since {}: what the change introduced",
                    wanted.against
                ))
            }
            None => New::Known(super::novelty::known(root).await),
        }),
    };
    Ok(shape(&report, baseline, min, limit))
}

/// What `new_only` compared with.
enum New {
    /// HEAD's findings (the report carries the comparison).
    Head(String),
    /// No commit to compare with: what the daemon's runs know.
    Known(super::novelty::Baseline),
}

/// A run planned, with what the answer keeps of it.
struct Planned {
    prepared: Prepared,
    workspace: crate::engine::Workspace,
    config: std::sync::Arc<crate::config::Config>,
    names: Vec<String>,
    offline: bool,
    new_only: bool,
    min: Option<Severity>,
    limit: usize,
}

/// Checks trust and plans the run, as `bgtask run` would with the same
/// arguments.
fn prepare(root: &Path, p: AnalysisParams) -> Result<Planned, Failed> {
    let workspace = crate::engine::Workspace::worktree(root).map_err(|e| e.to_string())?;
    let projects = workspace.projects().map_err(|e| format!("{e:#}"))?;
    refuse_untrusted(&workspace.root, &projects)?;
    let config =
        std::sync::Arc::new(crate::config::load(&workspace.root).map_err(|e| format!("{e:#}"))?);
    let names = if p.tasks.is_empty() {
        vec!["all".to_owned()]
    } else {
        p.tasks
    };
    let mut args = RunArgs::for_gate(names.clone(), p.files.clone(), Format::Json);
    if p.files.is_empty() {
        args.since = p.since;
        args.changed = args.since.is_none() && p.scope == Scope::Changed;
        args.staged = args.since.is_none() && p.scope == Scope::Staged;
    }
    args.no_cache = p.no_cache;
    args.offline = p.offline;
    let prepared =
        Prepared::new(&args, &workspace, &config, &workspace.root).map_err(|e| format!("{e:#}"))?;
    Ok(Planned {
        prepared,
        workspace,
        config,
        names,
        offline: p.offline,
        new_only: p.new_only,
        min: p.min_severity,
        limit: p.limit.unwrap_or(100).min(1000),
    })
}

/// What a task runs is repository content: an agent may run it only where
/// a person trusted it as it is now.
fn refuse_untrusted(root: &Path, projects: &crate::config::Projects) -> Result<(), Failed> {
    let fp = crate::trust::fingerprint_worktree(projects, root);
    let record = crate::trust::load(root);
    let untrusted: Vec<String> = crate::trust::evaluate(&fp, record.as_ref())
        .into_iter()
        .filter(|(_, s)| !matches!(s, crate::trust::TaskTrust::Trusted))
        .map(|(task, _)| task)
        .collect();
    if untrusted.is_empty() {
        return Ok(());
    }
    Err(format!(
        "this worktree is not trusted for {}: what those tasks run comes from the repository, \
         so a person has to review it and run `bgtask trust` (`bgtask trust --diff` shows what \
         changed). Agents cannot trust a worktree.",
        untrusted.join(", ")
    ))
}

/// Sends an MCP progress notification per analyzer started and finished,
/// when the client asked for progress.
async fn tell_progress(
    ctx: &RequestContext<RoleServer>,
    mut rx: mpsc::UnboundedReceiver<Progress>,
    total: usize,
) {
    let token = ctx.meta.get_progress_token();
    let mut done = 0usize;
    while let Some(event) = rx.recv().await {
        let Some(token) = token.clone() else { continue };
        let message = match &event {
            Progress::Started { analyzer, .. } => format!("{analyzer} started"),
            Progress::Finished {
                analyzer,
                status,
                cached,
            } => {
                done += 1;
                let status = serde_json::to_value(status).unwrap_or_default();
                let how = if *cached { " (cached)" } else { "" };
                format!("{analyzer}: {}{how}", status.as_str().unwrap_or_default())
            }
        };
        #[allow(clippy::cast_precision_loss)]
        let param = ProgressNotificationParam::new(token, done as f64)
            .with_total(total.max(done) as f64)
            .with_message(message);
        let _ = ctx.peer.notify_progress(param).await;
    }
}

/// The report as the tool returns it.
fn shape(report: &Report, baseline: Option<New>, min: Option<Severity>, limit: usize) -> Analysis {
    let new: Option<Vec<bool>> = match &baseline {
        None => None,
        Some(New::Known(b)) => Some(b.new_ones(&report.findings)),
        Some(New::Head(_)) => report.baseline.as_ref().map(|c| {
            c.states
                .iter()
                .map(|s| *s == crate::report::BaselineState::New)
                .collect()
        }),
    };
    let mut kept: Vec<&Finding> = report
        .findings
        .iter()
        .enumerate()
        .filter(|(i, f)| min.is_none_or(|s| f.severity >= s) && new.as_ref().is_none_or(|n| n[*i]))
        .map(|(_, f)| f)
        .collect();
    if kept.len() > limit {
        kept.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
    let matching = kept.len();
    let (findings, note) = capped(kept.into_iter().cloned(), limit);
    Analysis {
        verdict: report.verdict.clone(),
        exit_code: report.exit_code,
        scope: report.scope.clone(),
        summary: report.summary.clone(),
        analyzers: analyzers(report),
        total_findings: report.findings.len(),
        baseline: baseline.map(|b| match b {
            New::Head(said) => said,
            New::Known(b) => b.described,
        }),
        matching,
        omitted: matching - findings.len(),
        findings,
        note,
    }
}
