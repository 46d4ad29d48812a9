//! Executing a plan: per analyzer, find the tool, consult the result cache,
//! run its batches in parallel (at most `max_concurrent` processes at once),
//! read and classify what each wrote, merge, finish the findings and store
//! the result.
//!
//! Progress goes out as [`Progress`] messages; nothing here prints.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::anchor;
use super::argv::{self};
use super::cache::{FileParts, Keys, ResultCache, Timing};
use super::invocation::InvocationJob;
use super::per_file::{self, PerFile};
use super::plan::{Planned, Work};
use crate::analyze::{AnalyzerDef, Engine, ExternalSpec, RunStatus};
use crate::config::Config;
use crate::config::raw::ProjectEnv;
use crate::config::raw::{Builtin, Mode};
use crate::event::{AnalyzerRun, ToolInfo};
use crate::run::Limits;
use crate::tools::pyenv::PythonEnv;
use crate::tools::{self, Probe, VersionCache};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// An analyzer's processes are about to start.
    Started {
        analyzer: String,
        invocations: usize,
    },
    Finished {
        analyzer: String,
        status: RunStatus,
        cached: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub no_cache: bool,
    /// Overrides every other timeout.
    pub timeout: Option<Duration>,
    /// Overrides `execution.max_concurrent_tasks`.
    pub jobs: Option<usize>,
    /// Process slots shared with other runs (the daemon's jobs); without
    /// it the run has its own.
    pub slots: Option<Arc<Semaphore>>,
    /// Told about every analyzer process group started.
    pub on_spawn: Option<mpsc::UnboundedSender<crate::run::Spawned>>,
    /// Live analyzer output goes to `<log_dir>/<analyzer>.log`.
    pub log_dir: Option<PathBuf>,
    /// Analyzers not to run, with why (quarantine).
    pub skip: std::collections::BTreeMap<String, String>,
    /// The team's shared result cache, asked after a local miss and
    /// offered what the run computes (`team.rs`).
    pub team: Option<Arc<super::team::TeamCache>>,
}

struct Ctx {
    config: Arc<Config>,
    root: PathBuf,
    canonical_root: PathBuf,
    opts: Options,
    cache: ResultCache,
    versions: Mutex<VersionCache>,
    slots: Arc<Semaphore>,
    progress: mpsc::UnboundedSender<Progress>,
    cancel: CancellationToken,
    /// The project's Python environment, looked for once per run (it can
    /// cost a `poetry` process) by the first tool that imports the project.
    python_env: std::sync::OnceLock<Option<PythonEnv>>,
    /// Whether there is a network, asked once per run by the first analyzer
    /// that needs it.
    network: tokio::sync::OnceCell<Result<(), String>>,
    /// HEAD, stamped on the times recorded with results.
    commit: Option<String>,
}

impl Ctx {
    fn new(
        config: Arc<Config>,
        root: &Path,
        canonical_root: &Path,
        opts: Options,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: CancellationToken,
    ) -> Ctx {
        let slots = opts.slots.clone().unwrap_or_else(|| {
            Arc::new(Semaphore::new(
                opts.jobs.unwrap_or(config.execution.max_concurrent).max(1),
            ))
        });
        Ctx {
            cache: ResultCache::new(root),
            root: root.to_owned(),
            canonical_root: canonical_root.to_owned(),
            versions: Mutex::new(VersionCache::load()),
            slots,
            config,
            opts,
            progress,
            cancel,
            python_env: std::sync::OnceLock::new(),
            network: tokio::sync::OnceCell::new(),
            commit: crate::git::GitDirs::find(root).and_then(|d| d.head()),
        }
    }

    /// The result caches a run reads and fills.
    fn caches(&self) -> per_file::Caches<'_> {
        per_file::Caches {
            local: &self.cache,
            team: self.opts.team.as_deref(),
        }
    }

    /// The project's Python environment, found once per run.
    fn python_env(&self) -> Option<&PythonEnv> {
        self.python_env
            .get_or_init(|| crate::tools::pyenv::find(&self.root))
            .as_ref()
    }

    /// What part of a cache key `def` owes the environment it sees (a tool
    /// that imports the project sees its packages).
    fn env_stamp(&self, def: &AnalyzerDef) -> Option<String> {
        imports_project(def).then(|| {
            self.python_env()
                .map_or_else(|| "<no environment>".to_owned(), PythonEnv::stamp)
        })
    }
}

/// Whether `def`'s tool imports the project (and so sees its environment).
fn imports_project(def: &AnalyzerDef) -> bool {
    def.external()
        .is_some_and(|s| s.project_env == Some(ProjectEnv::Python))
}

pub async fn execute(
    config: Arc<Config>,
    root: &Path,
    canonical_root: &Path,
    plans: Vec<Planned>,
    opts: Options,
    progress: mpsc::UnboundedSender<Progress>,
    cancel: CancellationToken,
) -> Vec<AnalyzerRun> {
    let ctx = Arc::new(Ctx::new(
        config,
        root,
        canonical_root,
        opts,
        progress,
        cancel,
    ));
    let order: Vec<String> = plans.iter().map(|p| p.def.name.clone()).collect();
    let mut set = JoinSet::new();
    for plan in plans {
        let ctx = ctx.clone();
        set.spawn(async move { analyze(&ctx, plan).await });
    }
    let mut runs = Vec::with_capacity(order.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(run) => runs.push(run),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    ctx.versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .save();
    ctx.cache.prune();
    runs.sort_by_key(|r| order.iter().position(|n| *n == r.analyzer));
    runs
}

/// Brings the team cache's per-file entries for every target of the
/// per-file analyzers in `plans` (the whole run's, before a shard narrows
/// it) into the local cache, where their recorded times balance the
/// shards (`shard.rs`) and the shard's own files find them; how many
/// files had one.
pub async fn prefetch(config: Arc<Config>, root: &Path, plans: &[Planned], opts: Options) -> usize {
    let (progress, _) = mpsc::unbounded_channel();
    let ctx = Ctx::new(config, root, root, opts, progress, CancellationToken::new());
    let mut found = 0;
    for plan in plans.iter().filter(|p| p.def.cache_per_file) {
        let Work::Run { targets, relevant } = &plan.work else {
            continue;
        };
        let Ok(tool) = find_tool(&ctx, &plan.def).await else {
            continue;
        };
        let files = (targets.as_slice(), relevant.as_slice());
        let looked = per_file_lookup(&ctx, &plan.def, tool.as_ref(), files, Arc::default()).await;
        found += targets.len() - looked.to_run().len();
    }
    found
}

async fn analyze(ctx: &Ctx, plan: Planned) -> AnalyzerRun {
    let def = plan.def.clone();
    let base = |status, reason: String| {
        let mut r =
            AnalyzerRun::skipped(&def.name, def.category, plan.tasks.clone(), status, reason);
        r.network = def.network;
        r
    };
    let (targets, relevant) = match plan.work {
        Work::Skip { status, reason } => return base(status, reason),
        Work::Run { targets, relevant } => (targets, relevant),
    };
    if let Some(why) = ctx.opts.skip.get(&def.name) {
        return base(RunStatus::NotApplicable, why.clone());
    }
    let tool = match find_tool(ctx, &def).await {
        Ok(tool) => tool,
        Err(reason) => {
            let mut r = base(RunStatus::NotInstalled, reason);
            r.files = relevant.len();
            return r;
        }
    };
    let keyed = cache_key(ctx, &def, tool.as_ref(), &relevant).await;
    let keys = keyed.as_ref().map(|(k, _)| k);
    let key = keys.map(|k| &k.local);
    let cached = match key {
        Some(key) if !ctx.opts.no_cache => match ctx.cache.get(key, def.network) {
            Some(hit) => Some(hit),
            None => from_team(ctx, key, keys, def.network).await,
        },
        _ => None,
    };
    if let Some(mut hit) = cached {
        tracing::debug!(analyzer = %def.name, key = ?key, "result cache hit");
        hit.cached = true;
        hit.cached_files = 0;
        hit.invocations = 0;
        hit.tasks.clone_from(&plan.tasks);
        hit.tool.clone_from(&tool);
        finished(ctx, &hit);
        return hit;
    }
    // With the network down an audit would spend its retries (20 s for
    // pip-audit) to learn nothing: say so at once, and cache nothing.
    if def.network
        && tool.is_some()
        && let Err(why) = ctx.network.get_or_init(tools::network::reachable).await
    {
        let mut r = base(
            RunStatus::ToolError,
            format!("could not audit: {why}; `--offline` skips the audits that need the network"),
        );
        r.tool = tool;
        r.files = relevant.len();
        finished(ctx, &r);
        return r;
    }
    let run = compute(
        ctx,
        &def,
        plan.tasks,
        tool,
        &targets,
        &relevant,
        keyed.as_ref(),
    )
    .await;
    finished(ctx, &run);
    run
}

/// Runs the analyzer over what the cache does not have (for an analyzer
/// whose files are independent, the files without an entry), and stores
/// the result.
async fn compute(
    ctx: &Ctx,
    def: &Arc<AnalyzerDef>,
    tasks: Vec<String>,
    tool: Option<ToolInfo>,
    targets: &[PathBuf],
    relevant: &[PathBuf],
    keyed: Option<&(Keys, Arc<FileParts>)>,
) -> AnalyzerRun {
    let keys = keyed.map(|(k, _)| k);
    let per_file = match keyed {
        Some((_, parts)) if def.cache_per_file && !ctx.opts.no_cache => {
            let parts = parts.clone();
            Some(per_file_lookup(ctx, def, tool.as_ref(), (targets, relevant), parts).await)
        }
        _ => None,
    };
    let to_run = per_file
        .as_ref()
        .map_or_else(|| targets.to_vec(), PerFile::to_run);
    let started = Instant::now();
    // (A project-mode analyzer has no targets: it always runs.)
    let (mut run, batches) = if per_file.is_some() && to_run.is_empty() {
        let mut all_cached = AnalyzerRun::skipped(
            &def.name,
            def.category,
            Vec::new(),
            RunStatus::Clean,
            String::new(),
        );
        all_cached.reason = None;
        all_cached.cached = true;
        (all_cached, Vec::new())
    } else {
        engine_run(ctx, &tasks, def, tool.as_ref(), &to_run).await
    };
    run.analyzer.clone_from(&def.name);
    run.category = def.category;
    run.tasks = tasks;
    run.tool = tool;
    run.network = def.network;
    run.files = if def.mode == Mode::Batch {
        targets.len()
    } else {
        relevant.len()
    };
    let wall = started.elapsed();
    run.duration_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    anchor::finish(&mut run.findings, def, &ctx.root);
    crate::analyze::sort_findings(&mut run.findings);
    let timing = (keys.is_some() && run.status.is_cacheable() && !run.cached).then(|| {
        let commit = ctx.commit.clone();
        match def.mode {
            Mode::Project => Timing::project(&def.name, commit, wall),
            Mode::Batch => Timing::batches(&def.name, commit, wall, &batches, |p| {
                std::fs::symlink_metadata(ctx.root.join(p)).map_or(0, |m| m.len())
            }),
        }
    });
    if let Some(per_file) = per_file {
        if !run.cached {
            per_file.store(&ctx.caches(), &run, timing.as_ref());
        }
        run = per_file.combine(run);
    }
    if let Some(keys) = keys
        && run.status.is_cacheable()
    {
        let stored = ctx.cache.put(&keys.local, &run, timing);
        if let (Some(team), Some(entry), Some(shared)) = (&ctx.opts.team, stored, &keys.shared) {
            team.offer(shared.clone(), &entry);
        }
    }
    run
}

/// Each target's per-file entry, for an analyzer whose files are
/// independent; the tool's config files are what `relevant` adds to the
/// targets. `parts`: the files' parts of keys, as the run's key read them.
async fn per_file_lookup(
    ctx: &Ctx,
    def: &AnalyzerDef,
    tool: Option<&ToolInfo>,
    (targets, relevant): (&[PathBuf], &[PathBuf]),
    parts: Arc<FileParts>,
) -> PerFile {
    let given: std::collections::HashSet<&PathBuf> = targets.iter().collect();
    let configs: Vec<PathBuf> = relevant
        .iter()
        .filter(|p| !given.contains(p))
        .cloned()
        .collect();
    let env = ctx.env_stamp(def);
    let files = (targets, configs.as_slice());
    per_file::lookup(&ctx.caches(), def, tool, &ctx.root, files, env, parts).await
}

/// The team cache's result for the shared key, stored locally under `key`
/// too; `None` without a team cache, a shared key, or a usable entry.
async fn from_team(
    ctx: &Ctx,
    key: &str,
    keys: Option<&Keys>,
    network: bool,
) -> Option<AnalyzerRun> {
    let team = ctx.opts.team.as_ref()?;
    let shared = keys?.shared.as_deref()?;
    let bytes = team.fetch(shared).await?;
    let run = ctx.cache.import(key, &bytes, network);
    if run.is_some() {
        tracing::debug!(key = %shared, "team cache hit");
    }
    run
}

/// The result-cache keys of an analyzer's run over `relevant`, with each
/// file's part of them, hashed on a blocking thread; `None` for analyzers
/// whose results are not cached.
async fn cache_key(
    ctx: &Ctx,
    def: &Arc<AnalyzerDef>,
    tool: Option<&ToolInfo>,
    relevant: &[PathBuf],
) -> Option<(Keys, Arc<FileParts>)> {
    // The key hashes every relevant file: only for analyzers whose results
    // are cached (a project-wide test runner on a large tree reads it all).
    if !def.cache {
        return None;
    }
    let root = ctx.root.clone();
    let def = def.clone();
    let tool = tool.cloned();
    let relevant = relevant.to_vec();
    let env = ctx.env_stamp(&def);
    let compute = move || {
        let (keys, parts) =
            ResultCache::keys_and_parts(&def, tool.as_ref(), &root, &relevant, env.as_deref());
        (keys, Arc::new(parts))
    };
    Some(
        tokio::task::spawn_blocking(compute)
            .await
            .expect("hashing files does not panic"),
    )
}

/// The files of one invocation and its wall time.
pub(super) type Batch = (Vec<PathBuf>, Duration);

/// Runs an analyzer's engine over `targets`: the built-in profile in this
/// process, an external analyzer as its tool's processes. With the run,
/// how long each batch of files took.
async fn engine_run(
    ctx: &Ctx,
    tasks: &[String],
    def: &Arc<AnalyzerDef>,
    tool: Option<&ToolInfo>,
    targets: &[PathBuf],
) -> (AnalyzerRun, Vec<Batch>) {
    match &def.engine {
        Engine::Builtin(Builtin::Profile) => {
            let _ = ctx.progress.send(Progress::Started {
                analyzer: def.name.clone(),
                invocations: 0,
            });
            super::builtin::profile_run(&ctx.root, def, targets)
        }
        Engine::External(_) => {
            let tool = tool.expect("external analyzers have a tool");
            external_run(ctx, tasks, def, &tool.path, targets).await
        }
    }
}

/// The tool of an external analyzer and its version; `Err` is why it
/// counts as not installed.
async fn find_tool(ctx: &Ctx, def: &AnalyzerDef) -> Result<Option<ToolInfo>, String> {
    let Engine::External(spec) = &def.engine else {
        return Ok(None);
    };
    let Some((path, _origin)) = tools::find(spec, &ctx.root) else {
        return Err(def.install_hint());
    };
    match tool_version(ctx, &path, spec).await {
        Probe::Version(version) => Ok(Some(ToolInfo { path, version })),
        Probe::Failed(why) => Err(format!(
            "{} ({} is there, but {why})",
            def.install_hint(),
            path.display()
        )),
    }
}

fn finished(ctx: &Ctx, run: &AnalyzerRun) {
    tracing::debug!(
        analyzer = %run.analyzer,
        status = %run.status,
        findings = run.findings.len(),
        duration_ms = run.duration_ms,
        cached = run.cached,
        "analyzer finished"
    );
    let _ = ctx.progress.send(Progress::Finished {
        analyzer: run.analyzer.clone(),
        status: run.status,
        cached: run.cached,
    });
}

async fn tool_version(ctx: &Ctx, path: &Path, spec: &ExternalSpec) -> Probe {
    let cached = ctx
        .versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(path, &spec.version_args, &ctx.root);
    if let Some(probe) = cached {
        return probe;
    }
    let probe = tools::detect_version(path, spec, &ctx.root).await;
    ctx.versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .put(path, &spec.version_args, &ctx.root, &probe);
    probe
}

fn timeout_for(ctx: &Ctx, def: &AnalyzerDef, tasks: &[String]) -> Duration {
    ctx.opts.timeout.unwrap_or_else(|| {
        tasks
            .iter()
            .filter_map(|t| ctx.config.tasks.get(t).and_then(|t| t.timeout))
            .max()
            .or(def.timeout)
            .unwrap_or(ctx.config.execution.task_timeout)
    })
}

async fn external_run(
    ctx: &Ctx,
    tasks: &[String],
    def: &Arc<AnalyzerDef>,
    tool: &Path,
    targets: &[PathBuf],
) -> (AnalyzerRun, Vec<Batch>) {
    let batches = match def.mode {
        Mode::Batch => argv::batches(targets, def.batch_size, argv::default_budget()),
        Mode::Project => vec![Vec::new()],
    };
    tracing::debug!(analyzer = %def.name, invocations = batches.len(), files = targets.len(), "starting analyzer");
    let _ = ctx.progress.send(Progress::Started {
        analyzer: def.name.clone(),
        invocations: batches.len(),
    });
    let timeout = timeout_for(ctx, def, tasks);
    let mut invocations = Vec::with_capacity(batches.len());
    let mut timed = Vec::with_capacity(batches.len());
    // Batches of one analyzer run concurrently, each holding a slot.
    let mut set = JoinSet::new();
    for (i, batch) in batches.into_iter().enumerate() {
        let files = batch.clone();
        let job = InvocationJob {
            def: def.clone(),
            tool: tool.to_owned(),
            root: ctx.root.clone(),
            canonical_root: ctx.canonical_root.clone(),
            limits: limits(&ctx.config),
            kill_grace: ctx.config.execution.kill_grace,
            timeout,
            files: batch,
            python_env: imports_project(def)
                .then(|| ctx.python_env().cloned())
                .flatten(),
            cancel: ctx.cancel.clone(),
            on_spawn: ctx.opts.on_spawn.clone(),
            log_file: ctx
                .opts
                .log_dir
                .as_ref()
                .map(|d| d.join(format!("{}.log", def.name))),
        };
        let slots = ctx.slots.clone();
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore never closed");
            // Timed from when it holds a slot: waiting for one is not its cost.
            let started = Instant::now();
            let inv = job.run().await;
            (i, inv, (files, started.elapsed()))
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, inv, batch)) => {
                invocations.push((i, inv));
                timed.push((i, batch));
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    invocations.sort_by_key(|(i, _)| *i);
    timed.sort_by_key(|(i, _)| *i);
    let run = super::invocation::merge(def, invocations.into_iter().map(|(_, inv)| inv).collect());
    (run, timed.into_iter().map(|(_, b)| b).collect())
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_rss_kb: config.limits.max_memory_mb.map(|mb| mb * 1024),
        cpu_seconds: config.limits.max_cpu_seconds,
        nice: config.limits.nice,
    }
}
