//! One foreground run of analyzers over a worktree: `bgtask run`, CI, and
//! (later) the daemon's workers.
//!
//! Owns choosing files (the walk, git selections, shards), planning which
//! analyzers apply, the result cache, running analyzers in parallel and
//! finishing their findings. Processes are `run/`'s; reading tool output is
//! `analyze/`'s; printing is `report/`'s.

mod anchor;
mod argv;
mod builtin;
mod cache;
mod execute;
mod index;
mod init;
mod invocation;
mod per_file;
mod plan;
mod remote;
mod scan;
mod shard;
mod team;
mod timing;
mod workspace;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use cache::{Pruned, ResultCache};
pub use execute::{Options, Progress};
pub use index::FileIndex;
pub use init::{Initial, initial_config};
pub use plan::{UnknownName, did_you_mean};
pub use remote::{Fetched, Remote, RemoteError, RemoteSpec, url_problem};
pub use scan::config_globs;
pub use shard::{AutoShardError, Shard, ShardArg, ShardSplit, ci_env};
pub use team::{
    TeamCache, TeamCacheCheck, TeamCacheUse, check as check_team_cache, secret as team_secret,
    secret_cached as team_secret_cached,
};
pub use workspace::{ALWAYS_SKIPPED, Selection, Workspace, WorkspaceError, walk_builder, walkable};

use crate::config::Config;
use crate::event::{AnalyzerRun, Job, Targets, Trigger};

/// How a job is run, as opposed to what it asks for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only this CI job's share of the files (balanced by the times the
    /// result cache recorded).
    pub shard: Option<Shard>,
    /// Skip analyzers that need the network.
    pub offline: bool,
    pub execution: Options,
    /// The project's files kept between jobs (the daemon's); without it,
    /// every run walks the tree.
    pub files: Option<FileIndex>,
}

#[derive(Debug)]
pub struct Outcome {
    pub runs: Vec<AnalyzerRun>,
    pub duration: Duration,
    /// A shard's split (`--shard`).
    pub shard: Option<ShardSplit>,
}

/// A job from command-line names (`all`, tasks, analyzers) over `targets`.
pub fn job(
    config: &Config,
    names: &[String],
    targets: Targets,
    trigger: Trigger,
) -> Result<Job, UnknownName> {
    let (tasks, analyzers) = plan::split_names(config, names)?;
    Ok(Job {
        tasks,
        analyzers,
        targets,
        trigger,
    })
}

/// How many analyzers a job resolves to (for progress display).
pub fn count_analyzers(config: &Config, job: &Job) -> usize {
    plan::resolve(config, &job.tasks, &job.analyzers).map_or(0, |w| w.len())
}

/// Plans and runs `job`; progress is sent on `progress`.
pub async fn run(
    config: Arc<Config>,
    workspace: &Workspace,
    job: &Job,
    opts: RunOptions,
    progress: mpsc::UnboundedSender<Progress>,
    cancel: CancellationToken,
) -> Result<Outcome, UnknownName> {
    let started = Instant::now();
    let wanted = plan::resolve(&config, &job.tasks, &job.analyzers)?;
    let selection: Option<BTreeSet<PathBuf>> = match &job.targets {
        Targets::Project => None,
        Targets::Files(files) => Some(files.iter().cloned().collect()),
    };
    // The walk blocks (a 100 000-file tree takes a while): off the runtime's
    // thread, which in the daemon also answers hooks.
    let kept = opts.files.as_ref().and_then(FileIndex::cached);
    let files: Arc<Vec<PathBuf>> = if let Some(kept) = kept {
        kept
    } else {
        let ws = workspace.clone();
        let index = opts.files.clone();
        tokio::task::spawn_blocking(move || match index {
            Some(index) => index.files(&ws),
            None => Arc::new(ws.files()),
        })
        .await
        .unwrap_or_else(|_| Arc::new(workspace.files()))
    };
    let gone: Option<BTreeSet<PathBuf>> = selection
        .as_ref()
        .map(|sel| index::gone(&files, sel, &workspace.root));
    // A shard is balanced by the times in the result cache as restored,
    // read before anything runs (see `shard.rs`).
    let times = match opts.shard {
        Some(_) => {
            // With a team cache, its per-file entries for every file bring
            // their times (and this shard's results) here first.
            if opts.execution.team.is_some() && !opts.execution.no_cache {
                let whole = plan::plan(
                    &plan::Inputs {
                        config: &config,
                        files: &files,
                        selection: selection.as_ref(),
                        gone: gone.as_ref(),
                        shard: None,
                        times: None,
                        offline: opts.offline,
                    },
                    wanted.clone(),
                );
                let found = execute::prefetch(
                    config.clone(),
                    &workspace.root,
                    &whole,
                    opts.execution.clone(),
                )
                .await;
                tracing::debug!(
                    found,
                    "per-file entries from the team cache before the split"
                );
            }
            let cache = cache::ResultCache::new(&workspace.root);
            let head = crate::git::GitDirs::find(&workspace.root).and_then(|d| d.head());
            let times = tokio::task::spawn_blocking(move || cache.times(head.as_deref()))
                .await
                .ok();
            tracing::debug!(
                recorded = times.as_ref().is_some_and(|t| !t.is_empty()),
                "shard split by recorded times, else by path hash"
            );
            times
        }
        None => None,
    };
    let inputs = plan::Inputs {
        config: &config,
        files: &files,
        selection: selection.as_ref(),
        gone: gone.as_ref(),
        shard: opts.shard,
        times: times.as_ref(),
        offline: opts.offline,
    };
    let (plans, split) = plan::plan_split(&inputs, wanted);
    tracing::debug!(
        files = files.len(),
        ms = started.elapsed().as_millis(),
        "planned"
    );
    let runs = execute::execute(
        config.clone(),
        &workspace.root,
        &workspace.canonical_root,
        plans,
        opts.execution,
        progress,
        cancel,
    )
    .await;
    crate::run::sweep_orphans();
    Ok(Outcome {
        runs,
        duration: started.elapsed(),
        shard: split,
    })
}

/// Whether an analyzer applies to this project, and with how many files.
#[derive(Debug, Clone)]
pub struct Applicability {
    pub analyzer: String,
    pub tasks: Vec<String>,
    /// Files it would look at, or why it does not apply.
    pub applies: Result<usize, String>,
}

/// Every analyzer of the config, with the tasks that use it and whether it
/// applies to the project (for `doctor`, `init` and `tools install`).
pub fn applicability(config: &Config, workspace: &Workspace) -> Vec<Applicability> {
    let files = Arc::new(workspace.files());
    let mut wanted: std::collections::BTreeMap<String, (Vec<String>, bool)> = config
        .analyzers
        .keys()
        .map(|a| (a.clone(), (Vec::new(), true)))
        .collect();
    for t in config.tasks.values() {
        for a in &t.analyzers {
            if let Some(e) = wanted.get_mut(a) {
                e.0.push(t.name.clone());
                e.1 = false;
            }
        }
    }
    let inputs = plan::Inputs {
        config,
        files: &files,
        selection: None,
        gone: None,
        shard: None,
        times: None,
        offline: false,
    };
    plan::plan(&inputs, wanted)
        .into_iter()
        .map(|p| Applicability {
            analyzer: p.def.name.clone(),
            tasks: p.tasks,
            applies: match p.work {
                plan::Work::Run { targets, relevant } => Ok(if targets.is_empty() {
                    relevant.len()
                } else {
                    targets.len()
                }),
                plan::Work::Skip { reason, .. } => Err(reason),
            },
        })
        .collect()
}
