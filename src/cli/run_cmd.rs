//! `bgtask run`: tasks or analyzers now, in the foreground, with the report
//! in the chosen format and the exit code CI acts on.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{ArgGroup, Args};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::progress::{RunProgress, enabled};
use crate::config::FailOn;
use crate::engine::{self, Options, RunOptions, Selection, Shard, ShardArg, Workspace};
use crate::event::{Targets, Trigger, TriggerSource};
use crate::exit;
use crate::report::{self, ConsoleOptions, Format, MarkdownLinks, Report};

pub const EXAMPLES: &str = "Examples:
  bgtask run security                      run the `security` task
  bgtask run all                           every enabled task
  bgtask run bandit pylint                 analyzers by name
  bgtask run code --changed                only files changed vs HEAD (also untracked)
  bgtask run code --staged                 only staged files
  bgtask run all --since origin/main       what a pull request touches
  bgtask run code --files src/a.py src/b.py
  bgtask run all --format sarif --output results.sarif --fail-on high
  bgtask run all --shard 2/4 --format json --output shard2.json   (then `bgtask report merge`)
  bgtask run all --shard auto --format json --output shard.json    (GitLab `parallel:`, CircleCI, Buildkite)";

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selection").args(["changed", "staged", "since", "files"])))]
pub struct RunArgs {
    /// Task or analyzer names, or `all`.
    #[arg(required = true, value_name = "TASK|ANALYZER")]
    pub names: Vec<String>,
    /// Only files changed vs HEAD: modified, added and untracked.
    #[arg(long)]
    pub changed: bool,
    /// Only files staged for the next commit.
    #[arg(long)]
    pub staged: bool,
    /// Only files changed since the merge base with REF (a branch, tag or commit).
    #[arg(long, value_name = "REF")]
    pub since: Option<String>,
    /// Only these files.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Console)]
    pub format: Format,
    /// Write the report to FILE (a short summary still goes to stderr).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fail (exit 1) on findings at or above this severity, overriding the tasks' `fail_on`.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Exit 3 when an analyzer that applies is not installed.
    #[arg(long)]
    pub strict_tools: bool,
    /// Run every analyzer even if a cached result matches.
    #[arg(long)]
    pub no_cache: bool,
    /// Skip analyzers that need the network (dependency audits).
    #[arg(long)]
    pub offline: bool,
    // In `help` rather than a doc comment: it names CI systems, which
    // doc lints take for code.
    #[arg(
        long,
        value_name = "K/N|auto",
        help = "Run only this CI job's share: K of N, or `auto` from the CI's parallel-job variables (GitLab, CircleCI, Buildkite). Shards are balanced by the times in the result cache; files never timed are split by path hash."
    )]
    pub shard: Option<ShardArg>,
    /// Wall-clock limit per analyzer process, e.g. 90s or 10m (overrides the config).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Processes to run at once (overrides `execution.max_concurrent_tasks`).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// On a terminal, print every finding (otherwise the 40 worst follow
    /// the summary); pipes and files always get every one.
    #[arg(long)]
    pub all: bool,
    /// Only findings not in the baseline count (for `--fail-on`, the exit
    /// code and what is listed); absent ones are reported fixed.
    #[arg(long)]
    pub new_only: bool,
    /// The baseline to compare with (default: .bgtask-baseline.json at the
    /// root; `bgtask baseline write` records one). Implies --new-only.
    #[arg(long, value_name = "FILE", conflicts_with = "baseline_ref")]
    pub baseline: Option<PathBuf>,
    /// Compare with the findings of the merge base of REF and HEAD instead
    /// of a file (analysed once in a temporary worktree, then cached by its
    /// tree). Implies --new-only.
    #[arg(long, value_name = "REF")]
    pub baseline_ref: Option<String>,
}

impl RunArgs {
    /// A gating hook's run: `tasks` on the staged files, or on `files`.
    pub fn for_gate(tasks: Vec<String>, files: Vec<PathBuf>, format: Format) -> RunArgs {
        RunArgs {
            names: tasks,
            changed: false,
            staged: false,
            since: None,
            files,
            format,
            output: None,
            fail_on: None,
            strict_tools: false,
            no_cache: false,
            offline: false,
            shard: None,
            timeout: None,
            jobs: None,
            all: true,
            new_only: false,
            baseline: None,
            baseline_ref: None,
        }
    }

    fn selection(&self) -> Selection {
        if self.changed {
            Selection::Changed
        } else if self.staged {
            Selection::Staged
        } else if let Some(r) = &self.since {
            Selection::Since(r.clone())
        } else if !self.files.is_empty() {
            Selection::Files(self.files.clone())
        } else {
            Selection::All
        }
    }

    /// The shard `--shard` names; `auto` reads the CI's variables.
    fn shard(&self) -> Result<Option<Shard>, super::UsageError> {
        self.shard
            .map(|s| s.resolve(&engine::ci_env()))
            .transpose()
            .map_err(|e| super::UsageError(e.to_string()))
    }

    fn scope(&self, selected: Option<usize>, shard: Option<Shard>) -> Option<String> {
        let mut parts = Vec::new();
        let n = selected.unwrap_or(0);
        if self.changed {
            parts.push(format!("changed files ({n})"));
        } else if self.staged {
            parts.push(format!("staged files ({n})"));
        } else if let Some(r) = &self.since {
            parts.push(format!("files changed since {r} ({n})"));
        } else if !self.files.is_empty() {
            parts.push(format!("given files ({n})"));
        }
        if let Some(s) = shard {
            parts.push(format!("shard {s}"));
        }
        if self.offline {
            parts.push("offline".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Findings shown at a terminal before "N more" (`--all` shows them all).
const TERMINAL_FINDINGS: usize = 40;

pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = Arc::new(crate::config::load(&workspace.root)?);
    say_default_config(ctx, args, &config);
    let Executed {
        report,
        cancelled,
        team,
    } = execute_full(ctx, args, &workspace, &config)?;
    let at_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let console = ConsoleOptions {
        verbose: ctx.verbose,
        summary_only: false,
        max_findings: (at_terminal && !args.all && !ctx.verbose).then_some(TERMINAL_FINDINGS),
    };
    let text = match args.format {
        Format::Markdown => {
            report::render_markdown(&report, &MarkdownLinks::discover(&report.root))
        }
        format => report::render(&report, format, &console),
    };
    match &args.output {
        Some(path) => {
            write_atomic(path, &text)
                .with_context(|| format!("write the report to {}", path.display()))?;
            if !ctx.quiet {
                let summary = report::render(
                    &report,
                    Format::Console,
                    &ConsoleOptions {
                        verbose: ctx.verbose,
                        summary_only: true,
                        max_findings: None,
                    },
                );
                anstream::eprint!("{summary}");
                anstream::eprintln!("report written to {}", path.display());
            }
        }
        None if args.format == Format::Console => anstream::print!("{text}"),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    if cancelled {
        return Ok(exit::INTERRUPTED);
    }
    if let Some(team) = team {
        upload(ctx, &team);
    }
    Ok(report.exit_code)
}

/// Fills the team cache with what the run computed, now that the report
/// is out; a store that fails is a note, never the exit code.
fn upload(ctx: &Ctx, team: &engine::TeamCache) {
    let Ok(rt) = super::runtime() else { return };
    let before = team.used();
    let after = rt.block_on(team.upload());
    if ctx.quiet {
        return;
    }
    if after.uploaded > 0 {
        let n = after.uploaded;
        ctx.note(&format!(
            "team cache: {n} result{} stored in {}",
            if n == 1 { "" } else { "s" },
            after.url
        ));
    }
    if after.problem != before.problem
        && let Some(problem) = &after.problem
    {
        ctx.note(&format!("team cache {}: {problem}", after.url));
    }
}

fn say_default_config(ctx: &Ctx, args: &RunArgs, config: &crate::config::Config) {
    if config.uses_default() && args.format == Format::Console && args.output.is_none() {
        ctx.note("note: no .background-tasks.json here, using the built-in tasks (`bgtask init` writes one)");
    }
}

/// Runs what `args` asks for; the report, and whether it was interrupted.
pub fn execute(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<(Report, bool)> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = Arc::new(crate::config::load(&workspace.root)?);
    say_default_config(ctx, args, &config);
    execute_in(ctx, args, &workspace, &config)
}

/// A foreground run's outcome.
struct Executed {
    report: Report,
    /// Interrupted (Ctrl-C).
    cancelled: bool,
    /// The team cache, holding what to upload once the report is out.
    team: Option<Arc<engine::TeamCache>>,
}

/// [`execute`] in a given tree with a given config: a gate analyses a
/// snapshot of the index with the worktree's (trusted) config.
pub fn execute_in(
    ctx: &Ctx,
    args: &RunArgs,
    workspace: &Workspace,
    config: &Arc<crate::config::Config>,
) -> anyhow::Result<(Report, bool)> {
    let e = execute_full(ctx, args, workspace, config)?;
    Ok((e.report, e.cancelled))
}

fn execute_full(
    ctx: &Ctx,
    args: &RunArgs,
    workspace: &Workspace,
    config: &Arc<crate::config::Config>,
) -> anyhow::Result<Executed> {
    let run = Prepared::new(args, workspace, config, &ctx.cwd)?;
    let team = run.opts.execution.team.clone();
    // Read before anything runs: a bad baseline file is the user's to fix.
    let file = super::baseline_cmd::from_file(args, workspace)?;
    let files = run.files();
    crate::run::become_subreaper();
    let cancel = CancellationToken::new();
    // The baseline's git work (the merge base, analysed or cached; renames
    // since) goes on beside the analysis rather than before it.
    let (report, wanted) = std::thread::scope(|s| {
        let pending = s.spawn(|| super::baseline_cmd::resolve(ctx, args, workspace, config, file));
        let report = analyse_here(ctx, run, &cancel);
        let wanted = pending
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the baseline's thread failed")));
        (report, wanted)
    });
    let mut report = report?;
    if let Some(wanted) = wanted? {
        super::baseline_cmd::apply(&mut report, &wanted, files.as_deref());
    }
    Ok(Executed {
        report,
        cancelled: cancel.is_cancelled(),
        team,
    })
}

/// A foreground run, planned: what `bgtask run` (and every front end that
/// runs analyses now, such as MCP's `run_analysis`) carries out.
pub struct Prepared {
    workspace: Workspace,
    config: Arc<crate::config::Config>,
    job: crate::event::Job,
    opts: RunOptions,
    scope: Option<String>,
    fail_on: Option<FailOn>,
    strict_tools: bool,
}

impl Prepared {
    /// Selects the files `args` names (relative to `cwd` when it is inside
    /// the tree) and plans the job; unknown names and bad revisions are
    /// errors here, before anything runs.
    pub fn new(
        args: &RunArgs,
        workspace: &Workspace,
        config: &Arc<crate::config::Config>,
        cwd: &std::path::Path,
    ) -> anyhow::Result<Prepared> {
        let cwd = if cwd.starts_with(&workspace.root) {
            cwd.to_owned()
        } else {
            workspace.root.clone()
        };
        let shard = args.shard()?;
        let targets = workspace.select(&args.selection(), &cwd)?;
        let selected = match &targets {
            Targets::Files(f) => Some(f.len()),
            Targets::Project => None,
        };
        let trigger = Trigger {
            source: TriggerSource::Manual {
                command: std::env::args().collect::<Vec<_>>().join(" "),
            },
            at: SystemTime::now(),
        };
        let job = engine::job(config, &args.names, targets, trigger)?;
        // The team's cache is the network too: `--offline` leaves it be.
        let team = config
            .remote_cache
            .as_ref()
            .filter(|_| !args.offline && !args.no_cache)
            .map(|remote| {
                let secret = engine::team_secret(remote, &workspace.root);
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                engine::TeamCache::open(remote, &workspace.root, ci, secret)
            });
        let opts = RunOptions {
            shard,
            offline: args.offline,
            execution: Options {
                no_cache: args.no_cache,
                timeout: args.timeout,
                jobs: args.jobs,
                team,
                ..Options::default()
            },
            files: None,
        };
        Ok(Prepared {
            workspace: workspace.clone(),
            config: config.clone(),
            job,
            opts,
            scope: args.scope(selected, shard),
            fail_on: args.fail_on,
            strict_tools: args.strict_tools,
        })
    }

    /// The repo-relative files it analyses; `None`: the whole project.
    pub fn files(&self) -> Option<Vec<String>> {
        match &self.job.targets {
            Targets::Project => None,
            Targets::Files(f) => Some(f.iter().map(|p| p.to_string_lossy().into_owned()).collect()),
        }
    }

    /// How many analyzers the run starts (for a progress total).
    pub fn analyzers(&self) -> usize {
        engine::count_analyzers(&self.config, &self.job)
    }

    /// Runs it; progress goes to `progress`, and `cancel` stops the
    /// analyzers (their process groups) gracefully.
    pub async fn analyse(
        self,
        progress: mpsc::UnboundedSender<engine::Progress>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Report> {
        let started = SystemTime::now();
        let team = self.opts.execution.team.clone();
        let outcome = engine::run(
            self.config.clone(),
            &self.workspace,
            &self.job,
            self.opts,
            progress,
            cancel,
        )
        .await?;
        let policy = report::policy(
            &self.config,
            self.fail_on,
            self.strict_tools,
            self.job.analyzers.clone(),
        );
        let mut report = Report::new(
            self.workspace.root.display().to_string(),
            started,
            outcome.duration,
            self.scope,
            policy,
            outcome.runs,
        );
        report.team_cache = team.map(|t| t.used());
        report.shard = outcome.shard;
        Ok(report)
    }
}

/// Runs `run` on a runtime of its own, with a progress bar on a terminal
/// and Ctrl-C watched.
fn analyse_here(ctx: &Ctx, run: Prepared, cancel: &CancellationToken) -> anyhow::Result<Report> {
    let rt = super::runtime()?;
    let show = enabled(ctx.quiet);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut bar = RunProgress::new(show, run.analyzers() as u64);
        let interrupts = watch_interrupts(cancel.clone());
        let progress = async {
            while let Some(event) = rx.recv().await {
                bar.on(&event);
            }
        };
        let (report, ()) = tokio::join!(run.analyse(tx, cancel.clone()), progress);
        bar.finish();
        interrupts.abort();
        report
    })
}

/// First Ctrl-C (or SIGTERM): cancel, which stops analyzers gracefully.
/// Second: kill every analyzer group and exit at once.
fn watch_interrupts(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                anstream::eprintln!("\ninterrupted: stopping analyzers (again to kill them now)");
                cancel.cancel();
            } else {
                crate::run::kill_all_spawned();
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    })
}

pub(super) fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
