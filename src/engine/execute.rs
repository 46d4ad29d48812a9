//! Executing a plan: per analyzer, find the tool, consult the result cache,
//! run its batches in parallel (at most `max_concurrent` processes at once),
//! read and classify what each wrote, merge, finish the findings and store
//! the result.
//!
//! Progress goes out as [`Progress`] messages; nothing here prints.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::anchor;
use super::argv::{self, Slots};
use super::cache::ResultCache;
use super::plan::{Planned, Work};
use crate::analyze::classify::{Classified, classify};
use crate::analyze::parsers::{self, Report, ToolOutput, summary, truncate};
use crate::analyze::{AnalyzerDef, Engine, ExternalSpec, Finding, RunStatus, TestCounts, profile};
use crate::config::Config;
use crate::config::raw::{Builtin, Mode, OutputSource, ParserKind};
use crate::event::{AnalyzerRun, ToolInfo};
use crate::globs::Globs;
use crate::run::{self, Ended, Limits, Spec, signal_name};
use crate::tools::{self, VersionCache};

/// Largest report read from a file.
const REPORT_MAX: usize = 256 * 1024 * 1024;
/// Largest report kept from stdout (held in memory while the tool runs).
const STDOUT_REPORT_MAX: usize = 64 * 1024 * 1024;
/// What is kept of output that is not the report.
const KEEP: (usize, usize) = (1024 * 1024, 1024 * 1024);
/// Largest source file the profile analyzer reads.
const PROFILE_READ_MAX: u64 = 32 * 1024 * 1024;

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
    let slots = opts.jobs.unwrap_or(config.execution.max_concurrent).max(1);
    let ctx = Arc::new(Ctx {
        cache: ResultCache::new(root),
        root: root.to_owned(),
        canonical_root: canonical_root.to_owned(),
        versions: Mutex::new(VersionCache::load()),
        slots: Arc::new(Semaphore::new(slots)),
        config,
        opts,
        progress,
        cancel,
    });
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
    let tool = match &def.engine {
        Engine::Builtin(_) => None,
        Engine::External(spec) => {
            let Some((path, _origin)) = tools::find(spec, &ctx.root) else {
                let mut r = base(RunStatus::NotInstalled, def.install_hint());
                r.files = relevant.len();
                return r;
            };
            let version = tool_version(ctx, &path, spec).await;
            Some(ToolInfo { path, version })
        }
    };
    let key = ResultCache::key(&def, tool.as_ref(), &ctx.root, &relevant);
    if def.cache
        && !ctx.opts.no_cache
        && let Some(mut hit) = ctx.cache.get(&key, def.network)
    {
        hit.cached = true;
        hit.invocations = 0;
        hit.tasks.clone_from(&plan.tasks);
        hit.tool.clone_from(&tool);
        finished(ctx, &hit);
        return hit;
    }
    let started = Instant::now();
    let mut run = match &def.engine {
        Engine::Builtin(Builtin::Profile) => {
            let _ = ctx.progress.send(Progress::Started {
                analyzer: def.name.clone(),
                invocations: 0,
            });
            profile_run(ctx, &def, &targets)
        }
        Engine::External(_) => {
            let tool = tool.as_ref().expect("external analyzers have a tool");
            external_run(ctx, &plan.tasks, &def, &tool.path, &targets).await
        }
    };
    run.analyzer.clone_from(&def.name);
    run.category = def.category;
    run.tasks = plan.tasks;
    run.tool = tool;
    run.network = def.network;
    run.files = if def.mode == Mode::Batch {
        targets.len()
    } else {
        relevant.len()
    };
    run.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    anchor::finish(&mut run.findings, &def, &ctx.root);
    crate::analyze::sort_findings(&mut run.findings);
    if def.cache {
        ctx.cache.put(&key, &run);
    }
    finished(ctx, &run);
    run
}

fn finished(ctx: &Ctx, run: &AnalyzerRun) {
    let _ = ctx.progress.send(Progress::Finished {
        analyzer: run.analyzer.clone(),
        status: run.status,
        cached: run.cached,
    });
}

async fn tool_version(ctx: &Ctx, path: &Path, spec: &ExternalSpec) -> Option<String> {
    let cached = ctx
        .versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(path, &spec.version_args);
    if let Some(v) = cached {
        return v;
    }
    let v = tools::detect_version(path, spec, &ctx.root).await;
    ctx.versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .put(path, &spec.version_args, v.clone());
    v
}

fn profile_run(ctx: &Ctx, def: &AnalyzerDef, targets: &[PathBuf]) -> AnalyzerRun {
    let mut findings = Vec::new();
    for t in targets {
        let path = ctx.root.join(t);
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, PROFILE_READ_MAX), &mut bytes)
            .is_err()
        {
            continue;
        }
        findings.extend(profile::profile_file(def, &t.to_string_lossy(), &bytes));
    }
    let status = if findings.is_empty() {
        RunStatus::Clean
    } else {
        RunStatus::Findings
    };
    let mut run = AnalyzerRun::skipped(&def.name, def.category, Vec::new(), status, String::new());
    run.reason = None;
    run.findings = findings;
    run
}

/// One process's result, classified.
struct Invocation {
    classified: Classified,
    exit_code: Option<i32>,
    peak_rss_kb: Option<u64>,
    cpu: Option<Duration>,
    stderr_tail: String,
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
) -> AnalyzerRun {
    let batches = match def.mode {
        Mode::Batch => argv::batches(targets, def.batch_size, argv::default_budget()),
        Mode::Project => vec![Vec::new()],
    };
    let _ = ctx.progress.send(Progress::Started {
        analyzer: def.name.clone(),
        invocations: batches.len(),
    });
    let timeout = timeout_for(ctx, def, tasks);
    let mut invocations = Vec::with_capacity(batches.len());
    // Batches of one analyzer run concurrently, each holding a slot.
    let mut set = JoinSet::new();
    for (i, batch) in batches.into_iter().enumerate() {
        let job = InvocationJob {
            def: def.clone(),
            tool: tool.to_owned(),
            root: ctx.root.clone(),
            canonical_root: ctx.canonical_root.clone(),
            limits: limits(&ctx.config),
            kill_grace: ctx.config.execution.kill_grace,
            timeout,
            files: batch,
            cancel: ctx.cancel.clone(),
        };
        let slots = ctx.slots.clone();
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore never closed");
            (i, job.run().await)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(pair) => invocations.push(pair),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    invocations.sort_by_key(|(i, _)| *i);
    merge(def, invocations.into_iter().map(|(_, inv)| inv).collect())
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_rss_kb: config.limits.max_memory_mb.map(|mb| mb * 1024),
        cpu_seconds: config.limits.max_cpu_seconds,
        nice: config.limits.nice,
    }
}

struct InvocationJob {
    def: Arc<AnalyzerDef>,
    tool: PathBuf,
    root: PathBuf,
    canonical_root: PathBuf,
    limits: Limits,
    kill_grace: Duration,
    timeout: Duration,
    files: Vec<PathBuf>,
    cancel: CancellationToken,
}

impl InvocationJob {
    async fn run(self) -> Invocation {
        let spec = self.def.external().expect("external analyzer");
        let fail = |status, reason: String| Invocation {
            classified: Classified {
                status,
                reason: Some(reason),
                findings: Vec::new(),
                tests: None,
            },
            exit_code: None,
            peak_rss_kb: None,
            cpu: None,
            stderr_tail: String::new(),
        };
        let tmp = match tempfile::Builder::new().prefix("bgtask-").tempdir() {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    RunStatus::ToolError,
                    format!("could not create a temporary directory: {e}"),
                );
            }
        };
        let ext = if spec.parser == ParserKind::JunitXml {
            "xml"
        } else {
            "json"
        };
        let output = tmp.path().join(format!("report.{ext}"));
        let files_file = tmp.path().join("files.txt");
        if spec.args.iter().any(|a| a.contains("{files_file}"))
            && let Err(e) = std::fs::write(&files_file, argv::files_list(&self.files))
        {
            return fail(
                RunStatus::ToolError,
                format!("could not write the file list: {e}"),
            );
        }
        let slots = Slots {
            root: &self.root,
            output: &output,
            output_dir: tmp.path(),
            files_file: &files_file,
        };
        let args = argv::expand(&spec.args, &self.files, &slots);
        // The exit-code parser never reads stdout: keep only its ends.
        let report_on_stdout =
            spec.output == OutputSource::Stdout && spec.parser != ParserKind::ExitCode;
        let started_at = SystemTime::now();
        let finished = run::run(
            Spec {
                program: self.tool.clone(),
                args,
                cwd: self.root.clone(),
                env: spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
                timeout: self.timeout,
                kill_grace: self.kill_grace,
                limits: self.limits,
                stdout_keep: if report_on_stdout {
                    (STDOUT_REPORT_MAX, 0)
                } else {
                    KEEP
                },
                stderr_keep: KEEP,
            },
            self.cancel.clone(),
        )
        .await;
        let stderr_tail = tail_text(&finished.stderr.bytes, 2000);
        let exit_code = match finished.ended {
            Ended::Exited(c) => Some(c),
            _ => None,
        };
        let classified = self.classify(
            spec,
            &finished,
            tmp.path(),
            &output,
            report_on_stdout,
            started_at,
        );
        Invocation {
            classified,
            exit_code,
            peak_rss_kb: finished.peak_rss_kb,
            cpu: finished.cpu,
            stderr_tail,
        }
    }

    /// What the finished process amounts to: its reports parsed and
    /// classified with its exit code, or why it never got that far.
    fn classify(
        &self,
        spec: &ExternalSpec,
        finished: &run::Finished,
        output_dir: &Path,
        output: &Path,
        report_on_stdout: bool,
        started_at: SystemTime,
    ) -> Classified {
        let failed = |status, reason: String| Classified {
            status,
            reason: Some(reason),
            findings: Vec::new(),
            tests: None,
        };
        let code = match &finished.ended {
            Ended::Exited(code) => *code,
            other => {
                let (status, reason) = ended_reason(
                    other,
                    &self.tool,
                    self.timeout,
                    &self.limits,
                    &finished.stderr.bytes,
                );
                return failed(status, reason);
            }
        };
        if report_on_stdout && finished.stdout.truncated {
            return failed(
                RunStatus::ToolError,
                format!(
                    "the report on stdout was {} bytes, over bgtask's limit of {STDOUT_REPORT_MAX}",
                    finished.stdout.total
                ),
            );
        }
        let reports = match read_reports(spec, &self.root, output_dir, output, started_at) {
            Ok(r) => r,
            Err(reason) => return failed(RunStatus::ToolError, reason),
        };
        let out = ToolOutput {
            def: &self.def,
            spec,
            exit_code: code,
            exit_class: spec.exit_codes.classify(code),
            stdout: &finished.stdout.bytes,
            stderr: &finished.stderr.bytes,
            reports: &reports,
            root: &self.root,
            canonical_root: &self.canonical_root,
        };
        classify(
            &self.def,
            code,
            parsers::parse(&out),
            &finished.stderr.bytes,
        )
    }
}

fn ended_reason(
    ended: &Ended,
    tool: &Path,
    timeout: Duration,
    limits: &Limits,
    stderr: &[u8],
) -> (RunStatus, String) {
    let said = summary(stderr)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    match ended {
        Ended::Exited(_) => unreachable!("handled by the caller"),
        Ended::Signaled(sig) => (
            RunStatus::ToolError,
            format!("killed by {}{said}", signal_name(*sig)),
        ),
        Ended::TimedOut => (
            RunStatus::Timeout,
            format!(
                "timed out after {} and was stopped (SIGTERM to its process group, then SIGKILL)",
                humantime::format_duration(timeout)
            ),
        ),
        Ended::CpuLimit => (
            RunStatus::Timeout,
            format!(
                "used its CPU-time limit of {} s and was stopped",
                limits.cpu_seconds.unwrap_or(0)
            ),
        ),
        Ended::OutOfMemory { rss_kb } => (
            RunStatus::Oom,
            format!(
                "used {} MiB, over the memory limit of {} MiB, and was killed",
                rss_kb / 1024,
                limits.max_rss_kb.unwrap_or(0) / 1024
            ),
        ),
        Ended::Cancelled => (RunStatus::Cancelled, "cancelled".to_owned()),
        Ended::SpawnFailed(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (its interpreter is missing: a broken shebang or a deleted virtualenv?)"
            } else {
                ""
            };
            (
                RunStatus::ToolError,
                format!("could not start {}: {e}{hint}", tool.display()),
            )
        }
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len > REPORT_MAX as u64 {
        return Err(format!(
            "the report {} is {len} bytes, over bgtask's limit of {REPORT_MAX}",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("could not read the report {}: {e}", path.display()))
}

fn read_reports(
    spec: &ExternalSpec,
    root: &Path,
    output_dir: &Path,
    output: &Path,
    since: SystemTime,
) -> Result<Vec<Report>, String> {
    match spec.output {
        OutputSource::Stdout => Ok(Vec::new()),
        OutputSource::File => {
            if output.is_file() {
                Ok(vec![Report {
                    path: output.to_owned(),
                    bytes: read_capped(output)?,
                }])
            } else {
                Ok(Vec::new())
            }
        }
        OutputSource::Glob => {
            let pattern = spec.output_glob.as_deref().unwrap_or("*");
            let (dir, name) = match pattern.strip_prefix("{output_dir}/") {
                Some(rest) => (output_dir.to_owned(), rest),
                None => match pattern.rsplit_once('/') {
                    Some((d, n)) => (root.join(d), n),
                    None => (root.to_owned(), pattern),
                },
            };
            let globs = Globs::new(&[name]).map_err(|e| e.to_string())?;
            let fresh = since.checked_sub(Duration::from_secs(2)).unwrap_or(since);
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .is_some_and(|n| globs.is_match(&n.to_string_lossy()))
                        })
                        .filter(|p| {
                            p.metadata()
                                .and_then(|m| m.modified())
                                .is_ok_and(|t| t >= fresh)
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            found
                .into_iter()
                .map(|p| {
                    Ok(Report {
                        bytes: read_capped(&p)?,
                        path: p,
                    })
                })
                .collect()
        }
    }
}

fn tail_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let start = text.char_indices().rev().nth(max).map_or(0, |(i, _)| i);
    text[start..].to_owned()
}

fn merge(def: &AnalyzerDef, invocations: Vec<Invocation>) -> AnalyzerRun {
    let mut status: Option<RunStatus> = None;
    let mut reasons: Vec<String> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut tests: Option<TestCounts> = None;
    let mut exit_code = None;
    let mut peak: Option<u64> = None;
    let mut cpu = Duration::ZERO;
    let mut tail = None;
    let count = invocations.len();
    for inv in invocations {
        let c = inv.classified;
        status = Some(status.map_or(c.status, |s| s.combine(c.status)));
        if let Some(r) = c.reason
            && !reasons.contains(&r)
        {
            reasons.push(r);
        }
        findings.extend(c.findings);
        if let Some(t) = c.tests {
            tests.get_or_insert_with(TestCounts::default).add(t);
        }
        exit_code = inv.exit_code.or(exit_code);
        peak = peak.max(inv.peak_rss_kb);
        cpu += inv.cpu.unwrap_or_default();
        if (c.status.is_failure() || c.status == RunStatus::Partial)
            && tail.is_none()
            && !inv.stderr_tail.is_empty()
        {
            tail = Some(inv.stderr_tail);
        }
    }
    let status = status.unwrap_or(RunStatus::Clean);
    // A split run whose batches were clean and findings is "findings".
    let status = if status == RunStatus::Clean && !findings.is_empty() {
        RunStatus::Findings
    } else {
        status
    };
    let mut run = AnalyzerRun::skipped(&def.name, def.category, Vec::new(), status, String::new());
    run.reason = (!reasons.is_empty()).then(|| truncate(&reasons.join("; "), 2000));
    run.findings = findings;
    run.tests = tests;
    run.exit_code = exit_code;
    run.peak_rss_kb = peak;
    run.cpu_ms = Some(u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX));
    run.invocations = u32::try_from(count).unwrap_or(u32::MAX);
    run.output_tail = tail;
    run
}
