//! One analyzer process over one batch of files: expand the argv, run it
//! isolated, read the reports it wrote, and classify the result.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::argv::{self, Slots};
use crate::analyze::classify::{Classified, classify};
use crate::analyze::parsers::{self, Report, ToolOutput, summary, truncate};
use crate::analyze::{AnalyzerDef, ExternalSpec, Finding, RunStatus, TestCounts};
use crate::config::raw::{OutputSource, ParserKind};
use crate::event::AnalyzerRun;
use crate::globs::Globs;
use crate::run::{self, Ended, Limits, Spec, signal_name};

/// Largest report read from a file.
const REPORT_MAX: usize = 256 * 1024 * 1024;
/// Largest report kept from stdout (held in memory while the tool runs).
const STDOUT_REPORT_MAX: usize = 64 * 1024 * 1024;
/// What is kept of output that is not the report.
const KEEP: (usize, usize) = (1024 * 1024, 1024 * 1024);

/// One process's result, classified.
pub struct Invocation {
    pub classified: Classified,
    pub exit_code: Option<i32>,
    pub peak_rss_kb: Option<u64>,
    pub cpu: Option<Duration>,
    pub stderr_tail: String,
    /// Retrying cannot help: the tool could not start (126/127, a missing
    /// interpreter) or ran out of memory.
    pub permanent: bool,
}

/// Where one process writes: a temporary directory (removed on drop), the
/// report path in it and the file list's path.
struct Workdir {
    tmp: tempfile::TempDir,
    output: PathBuf,
    files_file: PathBuf,
}

pub struct InvocationJob {
    pub def: Arc<AnalyzerDef>,
    pub tool: PathBuf,
    pub root: PathBuf,
    pub canonical_root: PathBuf,
    pub limits: Limits,
    pub kill_grace: Duration,
    pub timeout: Duration,
    pub files: Vec<PathBuf>,
    /// The project's Python environment, for a tool that imports the
    /// project (found once per run by the caller).
    pub python_env: Option<crate::tools::pyenv::PythonEnv>,
    pub cancel: CancellationToken,
    pub on_spawn: Option<tokio::sync::mpsc::UnboundedSender<run::Spawned>>,
    pub log_file: Option<PathBuf>,
}

impl InvocationJob {
    pub async fn run(self) -> Invocation {
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
            permanent: false,
        };
        let work = match self.workdir(spec) {
            Ok(work) => work,
            Err(reason) => return fail(RunStatus::ToolError, reason),
        };
        let (tmp, output) = (&work.tmp, &work.output);
        let slots = Slots {
            root: &self.root,
            output,
            output_dir: tmp.path(),
            files_file: &work.files_file,
        };
        let args = argv::expand(&spec.args, &self.files, &slots);
        // The exit-code parser never reads stdout: keep only its ends.
        let report_on_stdout =
            spec.output == OutputSource::Stdout && spec.parser != ParserKind::ExitCode;
        let started_at = SystemTime::now();
        let finished = run::run(
            self.process(spec, args, report_on_stdout),
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
            output,
            report_on_stdout,
            started_at,
        );
        let permanent = matches!(
            finished.ended,
            Ended::SpawnFailed(_) | Ended::OutOfMemory { .. }
        ) || matches!(exit_code, Some(126 | 127));
        Invocation {
            classified,
            exit_code,
            peak_rss_kb: finished.peak_rss_kb,
            cpu: finished.cpu,
            stderr_tail,
            permanent,
        }
    }

    /// The temporary directory the process writes its reports into, with
    /// the file list written there when the argv names `{files_file}`; `Err`
    /// is why it could not be set up.
    fn workdir(&self, spec: &ExternalSpec) -> Result<Workdir, String> {
        let tmp = tempfile::Builder::new()
            .prefix("bgtask-")
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory: {e}"))?;
        let ext = if spec.parser == ParserKind::JunitXml {
            "xml"
        } else {
            "json"
        };
        let output = tmp.path().join(format!("report.{ext}"));
        let files_file = tmp.path().join("files.txt");
        if spec.args.iter().any(|a| a.contains("{files_file}")) {
            std::fs::write(&files_file, argv::files_list(&self.files))
                .map_err(|e| format!("could not write the file list: {e}"))?;
        }
        Ok(Workdir {
            tmp,
            output,
            files_file,
        })
    }

    /// The process to run: the tool with its expanded `args`, isolated and
    /// limited, keeping all of stdout only when it carries the report.
    fn process(&self, spec: &ExternalSpec, args: Vec<OsString>, report_on_stdout: bool) -> Spec {
        Spec {
            program: self.tool.clone(),
            args,
            cwd: self.root.clone(),
            env: self.env(spec),
            timeout: self.timeout,
            kill_grace: self.kill_grace,
            limits: self.limits,
            stdout_keep: if report_on_stdout {
                (STDOUT_REPORT_MAX, 0)
            } else {
                KEEP
            },
            stderr_keep: KEEP,
            on_spawn: self.on_spawn.clone(),
            log_file: self.log_file.clone(),
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
        if code != 0
            && let Some(line) = setup_failure(spec, &finished.stdout.bytes, &finished.stderr.bytes)
        {
            return failed(
                RunStatus::ToolError,
                format!("{} could not run the project's code: {line}", self.def.name),
            );
        }
        classify(
            &self.def,
            code,
            parsers::parse(&out),
            &finished.stderr.bytes,
        )
    }

    /// The tool's environment: its definition's, and for a tool that
    /// imports the project, the project's Python packages on `PYTHONPATH`
    /// when the tool is not installed among them.
    fn env(&self, spec: &ExternalSpec) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> =
            spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        if let Some(project) = &self.python_env
            && !project.holds(&self.tool)
        {
            let existing = std::env::var_os("PYTHONPATH");
            env.push((
                "PYTHONPATH".into(),
                project.python_path(existing.as_deref()),
            ));
        }
        env
    }
}

/// The first output line that says the project's setup failed (the
/// definition's `tool_errors`), not its code.
fn setup_failure(spec: &ExternalSpec, stdout: &[u8], stderr: &[u8]) -> Option<String> {
    let regexes: Vec<&regex::Regex> = spec.tool_errors.iter().filter_map(|r| r.get()).collect();
    if regexes.is_empty() {
        return None;
    }
    [stderr, stdout].into_iter().find_map(|bytes| {
        String::from_utf8_lossy(bytes)
            .lines()
            .find(|l| regexes.iter().any(|r| r.is_match(l)))
            .map(|l| truncate(l.trim(), 300))
    })
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

/// A report file: a regular file under bgtask's cap, never a FIFO or a
/// device an analyzer (or a repository, for reports found by glob) put
/// there.
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    match crate::repofile::read(None, path, REPORT_MAX as u64) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!(
            "could not read the report {}: not found",
            path.display()
        )),
        Err(crate::repofile::RepoFileError::TooLarge { size, .. }) => Err(format!(
            "the report {} is {size} bytes, over bgtask's limit of {REPORT_MAX}",
            path.display()
        )),
        Err(e) => Err(format!("could not read the report: {e}")),
    }
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
/// One analyzer's run from its invocations (batches of files): the most
/// alarming status, every finding, the first failure's output.
pub(super) fn merge(def: &AnalyzerDef, invocations: Vec<Invocation>) -> AnalyzerRun {
    let mut status: Option<RunStatus> = None;
    let mut reasons: Vec<String> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut tests: Option<TestCounts> = None;
    let mut exit_code = None;
    let mut peak: Option<u64> = None;
    let mut cpu = Duration::ZERO;
    let mut tail = None;
    let mut permanent = false;
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
        permanent |= inv.permanent && c.status.is_failure();
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
    run.permanent = permanent;
    run
}
