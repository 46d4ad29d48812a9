//! How the core runs a job.
//!
//! A job is a future that ends in a report: by default the engine, running
//! real analyzers as subprocesses. The core needs nothing more, which is
//! what lets the core loop's timing (debounce, backoff, supersede) be
//! tested under tokio's paused clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{self, RunOptions, Workspace};
use crate::event::Job;
use crate::report::{self, Report};

/// Everything one run of a job needs.
pub struct JobRun {
    pub config: Arc<Config>,
    pub workspace: Workspace,
    pub job: Job,
    pub options: RunOptions,
    pub cancel: CancellationToken,
    /// Where the analyzers' progress is published.
    pub events: Option<super::events::RunEvents>,
}

/// Runs a job; `None` when it could not even be planned.
pub type Execute =
    Arc<dyn Fn(JobRun) -> Pin<Box<dyn Future<Output = Option<Report>> + Send>> + Send + Sync>;

/// The real thing: the engine.
pub fn engine() -> Execute {
    Arc::new(|run: JobRun| {
        Box::pin(async move {
            let started = SystemTime::now();
            let (progress, mut told) = mpsc::unbounded_channel();
            if let Some(events) = run.events {
                tokio::spawn(async move {
                    while let Some(p) = told.recv().await {
                        events.progress(&p);
                    }
                });
            }
            let mut options = run.options;
            // The team's shared cache: asked after local misses; what the
            // job computed is uploaded in the background afterwards.
            let team = run.config.remote_cache.as_ref().map(|remote| {
                let root = &run.workspace.root;
                engine::TeamCache::open(
                    remote,
                    root,
                    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                    engine::team_secret_cached(remote, root),
                )
            });
            options.execution.team.clone_from(&team);
            let outcome = engine::run(
                run.config.clone(),
                &run.workspace,
                &run.job,
                options,
                progress,
                run.cancel,
            )
            .await;
            let report = outcome.ok().map(|o| {
                let policy = report::policy(&run.config, None, false, Vec::new());
                let mut report = Report::new(
                    run.workspace.root.display().to_string(),
                    started,
                    o.duration,
                    None,
                    policy,
                    o.runs,
                );
                report.team_cache = team.as_ref().map(|t| t.used());
                report
            });
            if let Some(team) = team {
                tokio::spawn(async move { team.upload().await });
            }
            report
        })
    })
}
