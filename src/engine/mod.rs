//! One foreground run of analyzers over a worktree: `bgtask run`, CI, and
//! (later) the daemon's workers.
//!
//! Owns choosing files (the walk, git selections, shards), planning which
//! analyzers apply, the result cache, running analyzers in parallel and
//! finishing their findings. Processes are `run/`'s; reading tool output is
//! `analyze/`'s; printing is `report/`'s.

mod anchor;
mod argv;
mod cache;
mod execute;
mod invocation;
mod plan;
mod workspace;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use cache::state_dir;

pub use execute::{Options, Progress};
pub use plan::{Shard, UnknownName};
pub use workspace::{Workspace, WorkspaceError, git};

use crate::config::Config;
use crate::event::AnalyzerRun;

/// Which files to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Modified, added and untracked files (`--changed`).
    Changed,
    /// Staged files (`--staged`).
    Staged,
    /// Changed since the merge base with a ref (`--since REF`).
    Since(String),
    /// These files, absolute or relative to the current directory.
    Files(Vec<PathBuf>),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Task or analyzer names, or `all`.
    pub names: Vec<String>,
    pub selection: Selection,
    pub shard: Option<Shard>,
    pub offline: bool,
    pub options: Options,
    /// For resolving relative `--files`.
    pub cwd: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
}

#[derive(Debug)]
pub struct Outcome {
    pub runs: Vec<AnalyzerRun>,
    /// Analyzers named directly on the command line.
    pub explicit: BTreeSet<String>,
    /// Files selected, when a selection was given.
    pub selected: Option<usize>,
    pub duration: Duration,
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
    let files = workspace.files();
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
        shard: None,
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

/// How many analyzers `names` resolve to (for progress display).
pub fn count_analyzers(config: &Config, names: &[String]) -> Result<usize, UnknownName> {
    Ok(plan::resolve(config, names)?.len())
}

/// Plans and runs `request`; progress is sent on `progress`.
pub async fn run(
    config: Arc<Config>,
    workspace: &Workspace,
    request: Request,
    progress: mpsc::UnboundedSender<Progress>,
    cancel: CancellationToken,
) -> Result<Outcome, EngineError> {
    let started = Instant::now();
    let wanted = plan::resolve(&config, &request.names)?;
    let explicit = wanted
        .iter()
        .filter(|(_, (_, e))| *e)
        .map(|(n, _)| n.clone())
        .collect();
    let selection: Option<BTreeSet<PathBuf>> = match &request.selection {
        Selection::All => None,
        Selection::Changed => Some(workspace.changed()?.into_iter().collect()),
        Selection::Staged => Some(workspace.staged()?.into_iter().collect()),
        Selection::Since(r) => Some(workspace.since(r)?.into_iter().collect()),
        Selection::Files(files) => Some(
            files
                .iter()
                .filter_map(|f| workspace.relativize(&request.cwd, f))
                .filter(|p| workspace.root.join(p).is_file())
                .collect(),
        ),
    };
    let files = workspace.files();
    let inputs = plan::Inputs {
        config: &config,
        files: &files,
        selection: selection.as_ref(),
        shard: request.shard,
        offline: request.offline,
    };
    let plans = plan::plan(&inputs, wanted);
    let runs = execute::execute(
        config.clone(),
        &workspace.root,
        &workspace.canonical_root,
        plans,
        request.options,
        progress,
        cancel,
    )
    .await;
    crate::run::sweep_orphans();
    Ok(Outcome {
        runs,
        explicit,
        selected: selection.map(|s| s.len()),
        duration: started.elapsed(),
    })
}
