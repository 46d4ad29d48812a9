//! Supervising one analyzer process from spawn to reap.
//!
//! The child gets its own session and process group, `/dev/null` as stdin
//! and no terminal, the scrubbed environment, niceness and a CPU-time limit.
//! Both pipes are drained inside the same `select!` as the exit wait, the
//! wall-clock deadline, cancellation and memory sampling, so a full pipe can
//! never deadlock it (STYLE 16). Stopping is SIGTERM to the group, a grace
//! period, then SIGKILL to the group, each time also to every other process
//! of the run (`tree.rs`: descendants that left the group with `setsid`
//! included). Every 200 ms the run's processes are looked for, and new ones
//! are sent on [`Spec::on_spawn`] to be recorded; once the leader exits, all
//! that is left of the run is killed, so nothing outlives it.
//!
//! The spawn must happen on a thread that outlives the child
//! (`PR_SET_PDEATHSIG` fires when the spawning *thread* exits): callers run
//! this on a current-thread runtime.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use super::capture::{Capture, Captured};
use super::env;
use super::tree::{self, Orphans, Proc, Scope};
use super::unix::{self, ExitStatus, Reaped};

/// How long output is still read after the process exited and its group was
/// killed (a process that survived SIGKILL in the kernel may hold a pipe).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How often memory is sampled and the run's processes are looked for.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Most time spent killing what is left of a run once the analyzer exited.
const KILL_LEFTOVERS_WITHIN: Duration = Duration::from_secs(1);

/// Numbers the runs of this process, for their tokens.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This process's pid and start time: with a run's number, a token no
/// other bgtask process in this boot can have.
fn token_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let me = std::process::id();
        format!("{me}.{}", tree::start_ticks(me).unwrap_or(0))
    })
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Added to the scrubbed environment.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub limits: Limits,
    /// (head, tail) bytes kept of stdout.
    pub stdout_keep: (usize, usize),
    /// (head, tail) bytes kept of stderr.
    pub stderr_keep: (usize, usize),
    /// Told the analyzer's pid and start time as soon as it exists, then
    /// those of every other process of the run as they are found (the
    /// daemon records them for crash recovery).
    pub on_spawn: Option<tokio::sync::mpsc::UnboundedSender<Spawned>>,
    /// All output is also appended here as it arrives (live logs), up to
    /// [`LOG_CAP`] bytes.
    pub log_file: Option<PathBuf>,
}

/// A process of the run that was found, to be recorded for crash recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawned {
    pub pid: u32,
    /// Kernel start time of the process, to tell it from a later process
    /// that reuses the pid.
    pub start_ticks: u64,
    pub kind: ProcessKind,
    /// The analyzer's token ([`super::TOKEN_VAR`]), which its descendants
    /// inherit: recovery finds by it those born too late to be recorded.
    pub token: Option<String>,
}

/// What a recorded process stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// The analyzer: its session and process group go with it.
    Group,
    /// A descendant of it, possibly escaped from its group (`setsid`).
    Process,
}

/// Most bytes written to a live log file per process.
pub const LOG_CAP: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Resident memory of the process tree, KiB.
    pub max_rss_kb: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub nice: i32,
}

/// Why the process ended: never a bool (STYLE 17).
#[derive(Debug)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    /// `RLIMIT_CPU` reached (SIGXCPU).
    CpuLimit,
    OutOfMemory {
        rss_kb: u64,
    },
    Cancelled,
    SpawnFailed(io::Error),
}

#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    pub stdout: Captured,
    pub stderr: Captured,
    pub wall: Duration,
    /// Peak resident memory (KiB): the larger of the sampled tree and rusage.
    pub peak_rss_kb: Option<u64>,
    pub cpu: Option<Duration>,
}

impl Finished {
    fn spawn_failed(e: io::Error, start: Instant) -> Finished {
        Finished {
            ended: Ended::SpawnFailed(e),
            stdout: Captured::default(),
            stderr: Captured::default(),
            wall: start.elapsed(),
            peak_rss_kb: None,
            cpu: None,
        }
    }
}

/// A spawned child with its pipes registered with the runtime.
struct Child {
    pid: u32,
    start_ticks: u64,
    token: String,
    stdout: tokio::process::ChildStdout,
    stderr: tokio::process::ChildStderr,
    pidfd: Option<AsyncFd<std::os::fd::OwnedFd>>,
    guard: GroupGuard,
}

fn spawn(spec: &Spec) -> io::Result<Child> {
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(env::scrubbed().iter().map(|(k, v)| (k, v)))
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let token = format!(
        "{}.{}",
        token_prefix(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    cmd.env(tree::TOKEN_VAR, &token);
    // SAFETY: the closure only makes async-signal-safe calls (see unix.rs).
    unsafe {
        cmd.pre_exec(unix::child_setup(spec.limits.nice, spec.limits.cpu_seconds));
    }
    let mut child = unix::spawn_registered(&mut cmd, &token)?;
    let pid = child.id();
    let leader = Proc {
        pid,
        start_ticks: tree::start_ticks(pid).unwrap_or(0),
    };
    let guard = GroupGuard {
        pgid: pid,
        armed: true,
        scope: Scope::new(vec![leader], [leader], Orphans::Token(token.clone())),
    };
    let pipes = (
        child
            .stdout
            .take()
            .map(tokio::process::ChildStdout::from_std),
        child
            .stderr
            .take()
            .map(tokio::process::ChildStderr::from_std),
    );
    let (Some(Ok(stdout)), Some(Ok(stderr))) = pipes else {
        drop(guard);
        let _ = child.wait();
        return Err(io::Error::other("could not watch the tool's output pipes"));
    };
    Ok(Child {
        pid,
        start_ticks: leader.start_ticks,
        token,
        stdout,
        stderr,
        pidfd: unix::async_pidfd(pid),
        guard,
    })
}

/// Appends output to a live log file, up to [`LOG_CAP`] bytes.
struct LogTee {
    file: std::fs::File,
    written: u64,
}

impl LogTee {
    fn open(path: &Path) -> Option<LogTee> {
        // One level only: the run's directory, never a deleted
        // worktree's path.
        if let Some(dir) = path.parent()
            && !dir.is_dir()
        {
            std::fs::create_dir(dir).ok()?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(LogTee { file, written: 0 })
    }

    fn write(&mut self, data: &[u8]) {
        use std::io::Write;
        if self.written >= LOG_CAP {
            return;
        }
        let room = usize::try_from(LOG_CAP - self.written).unwrap_or(usize::MAX);
        let part = &data[..data.len().min(room)];
        if self.file.write_all(part).is_ok() {
            self.written += part.len() as u64;
            if self.written >= LOG_CAP {
                let _ = self.file.write_all(b"\n[... log capped by bgtask ...]\n");
            }
        }
    }
}

/// Output being collected from both pipes.
struct Pipes {
    out: Capture,
    err: Capture,
    log: Option<LogTee>,
    out_open: bool,
    err_open: bool,
    obuf: Vec<u8>,
    ebuf: Vec<u8>,
}

impl Pipes {
    fn new(spec: &Spec) -> Pipes {
        Pipes {
            out: Capture::new(spec.stdout_keep.0, spec.stdout_keep.1),
            err: Capture::new(spec.stderr_keep.0, spec.stderr_keep.1),
            out_open: true,
            err_open: true,
            obuf: vec![0u8; 64 * 1024],
            ebuf: vec![0u8; 64 * 1024],
            log: spec.log_file.as_deref().and_then(LogTee::open),
        }
    }

    fn out(&mut self, n: usize) {
        self.out.push(&self.obuf[..n]);
        if let Some(log) = &mut self.log {
            log.write(&self.obuf[..n]);
        }
    }

    fn err(&mut self, n: usize) {
        self.err.push(&self.ebuf[..n]);
        if let Some(log) = &mut self.log {
            log.write(&self.ebuf[..n]);
        }
    }

    /// Reads whatever is left after the process exited, until EOF or the
    /// deadline (a `setsid` escapee may hold a pipe open forever).
    async fn drain(&mut self, child: &mut Child) {
        let until = Instant::now() + DRAIN_AFTER_EXIT;
        while self.out_open || self.err_open {
            tokio::select! {
                n = child.stdout.read(&mut self.obuf), if self.out_open => match n {
                    Ok(0) | Err(_) => self.out_open = false,
                    Ok(n) => self.out(n),
                },
                n = child.stderr.read(&mut self.ebuf), if self.err_open => match n {
                    Ok(0) | Err(_) => self.err_open = false,
                    Ok(n) => self.err(n),
                },
                () = sleep_until(until) => break,
            }
        }
    }
}

pub async fn run(spec: Spec, cancel: CancellationToken) -> Finished {
    let start = Instant::now();
    let mut child = match spawn(&spec) {
        Ok(c) => c,
        Err(e) => return Finished::spawn_failed(e, start),
    };
    tracing::debug!(pid = child.pid, program = %spec.program.display(), args = spec.args.len(), "spawned");
    record(
        &spec,
        ProcessKind::Group,
        &[Proc {
            pid: child.pid,
            start_ticks: child.start_ticks,
        }],
        Some(&child.token),
    );
    let mut pipes = Pipes::new(&spec);
    let (reaped, stopping, peak_kb) =
        supervise(&spec, &mut child, &mut pipes, &cancel, start).await;
    // The leader is gone; whatever is left of its group, session and tree
    // goes too (off the runtime's thread: it sleeps between passes).
    unix::kill_group(child.pid, libc::SIGKILL);
    let mut scope = std::mem::replace(
        &mut child.guard.scope,
        Scope::new(Vec::new(), [], Orphans::None),
    );
    let killed = tokio::task::spawn_blocking(move || scope.kill_all(KILL_LEFTOVERS_WITHIN))
        .await
        .unwrap_or(0);
    if killed > 0 {
        tracing::debug!(
            pid = child.pid,
            killed,
            "killed what the analyzer left behind"
        );
    }
    child.guard.armed = false;
    unix::unregister_spawned(child.pid);
    pipes.drain(&mut child).await;
    let wall = start.elapsed();
    let (ended, peak_rss_kb, cpu) = match reaped {
        Ok(r) => {
            let ended = stopping.unwrap_or(match r.status {
                ExitStatus::Code(c) => Ended::Exited(c),
                ExitStatus::Signal(s) if s == libc::SIGXCPU => Ended::CpuLimit,
                ExitStatus::Signal(s) => Ended::Signaled(s),
            });
            (ended, Some(peak_kb.max(r.max_rss_kb)), Some(r.cpu))
        }
        Err(e) => (
            stopping.unwrap_or(Ended::SpawnFailed(e)),
            (peak_kb > 0).then_some(peak_kb),
            None,
        ),
    };
    tracing::debug!(pid = child.pid, ended = ?ended, wall_ms = wall.as_millis(), peak_rss_kb, "process ended");
    Finished {
        ended,
        stdout: pipes.out.finish(),
        stderr: pipes.err.finish(),
        wall,
        peak_rss_kb,
        cpu,
    }
}

/// [`run`] from synchronous code, callable anywhere: on a thread of its own
/// with its own current-thread runtime, so a caller already inside a tokio
/// runtime (where `block_on` would panic) is as welcome as a plain thread.
/// That thread lives until the process is reaped, so it outlives the child
/// (`PR_SET_PDEATHSIG`). Never cancelled: only the spec's timeout stops it.
pub fn run_blocking(spec: Spec) -> Finished {
    let start = Instant::now();
    let runner = move || match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(spec, CancellationToken::new())),
        Err(e) => Finished::spawn_failed(e, start),
    };
    std::thread::scope(|s| {
        s.spawn(runner)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Sends processes of the run to be recorded (for crash recovery).
fn record(spec: &Spec, kind: ProcessKind, procs: &[Proc], token: Option<&str>) {
    if let Some(tx) = &spec.on_spawn {
        for p in procs {
            let _ = tx.send(Spawned {
                pid: p.pid,
                start_ticks: p.start_ticks,
                kind,
                token: token.map(str::to_owned),
            });
        }
    }
}

/// Stops the run: `sig` to the group and to every process of the run.
fn stop(child: &mut Child, sig: i32) {
    unix::kill_group(child.pid, sig);
    child.guard.scope.signal(sig, child.pid);
}

/// Waits for the child while draining its pipes and enforcing the deadline,
/// cancellation and the memory limit. Returns the reaped status, why we
/// stopped it (if we did) and the peak sampled tree RSS.
async fn supervise(
    spec: &Spec,
    child: &mut Child,
    pipes: &mut Pipes,
    cancel: &CancellationToken,
    start: Instant,
) -> (io::Result<Reaped>, Option<Ended>, u64) {
    let pid = child.pid;
    let deadline = start + spec.timeout;
    let mut stopping: Option<Ended> = None;
    let mut kill_at: Option<Instant> = None;
    let mut peak_kb = 0;
    let mut ticker = interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let reaped = loop {
        tokio::select! {
            biased;
            r = wait_exit(child.pidfd.as_ref(), pid) => break r,
            n = child.stdout.read(&mut pipes.obuf), if pipes.out_open => match n {
                Ok(0) | Err(_) => pipes.out_open = false,
                Ok(n) => pipes.out(n),
            },
            n = child.stderr.read(&mut pipes.ebuf), if pipes.err_open => match n {
                Ok(0) | Err(_) => pipes.err_open = false,
                Ok(n) => pipes.err(n),
            },
            () = sleep_until(deadline), if stopping.is_none() => {
                stopping = Some(Ended::TimedOut);
                stop(child, libc::SIGTERM);
                kill_at = Some(Instant::now() + spec.kill_grace);
            }
            () = cancel.cancelled(), if stopping.is_none() => {
                stopping = Some(Ended::Cancelled);
                stop(child, libc::SIGTERM);
                kill_at = Some(Instant::now() + spec.kill_grace);
            }
            () = sleep_until(kill_at.unwrap_or(deadline)), if kill_at.is_some() => {
                stop(child, libc::SIGKILL);
                kill_at = None;
            }
            _ = ticker.tick() => {
                let new = child.guard.scope.scan();
                record(spec, ProcessKind::Process, &new, None);
                let rss = child.guard.scope.rss_kb();
                peak_kb = peak_kb.max(rss);
                if let Some(limit) = spec.limits.max_rss_kb
                    && rss > limit
                    && !matches!(stopping, Some(Ended::OutOfMemory { .. }))
                {
                    stopping = Some(Ended::OutOfMemory { rss_kb: rss });
                    stop(child, libc::SIGKILL);
                    kill_at = None;
                }
            }
        }
    };
    (reaped, stopping, peak_kb)
}

/// Kills the run's processes if the run is abandoned (its future dropped)
/// before the process was reaped.
struct GroupGuard {
    pgid: u32,
    armed: bool,
    /// Every process of the run found so far, and how to find more.
    scope: Scope,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            unix::kill_group(self.pgid, libc::SIGKILL);
            self.scope.kill_all(KILL_LEFTOVERS_WITHIN);
            unix::unregister_spawned(self.pgid);
        }
    }
}

/// Resolves once `pid` has exited, reaping it.
async fn wait_exit(pidfd: Option<&AsyncFd<std::os::fd::OwnedFd>>, pid: u32) -> io::Result<Reaped> {
    loop {
        if let Some(fd) = pidfd {
            let mut guard = fd.readable().await?;
            if let Some(r) = unix::try_reap(pid)? {
                return Ok(r);
            }
            guard.clear_ready();
        } else {
            if let Some(r) = unix::try_reap(pid)? {
                return Ok(r);
            }
            sleep(Duration::from_millis(20)).await;
        }
    }
}
