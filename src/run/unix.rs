//! The Linux calls behind the runner: session/limits set up in the child,
//! pidfd waiting, `wait4` with rusage, group signals, the registry of
//! running analyzers and the subreaper sweep for processes that escaped
//! their group (found by `tree.rs`).
//!
//! The runner's `unsafe` blocks are here (plus registering [`child_setup`]
//! with `pre_exec`), each with its safety argument.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

/// Set up in the child between fork and exec: a new session (own process
/// group, no controlling terminal), niceness, CPU-time limit, and death with
/// the parent. Only async-signal-safe calls.
pub fn child_setup(
    nice: i32,
    cpu_seconds: Option<u64>,
) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
    move || {
        // SAFETY: called in the forked child before exec; setsid, setpriority,
        // setrlimit and prctl are async-signal-safe and touch only this process.
        unsafe {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if nice > 0 && libc::setpriority(libc::PRIO_PROCESS, 0, nice) == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(secs) = cpu_seconds {
                let lim = libc::rlimit {
                    rlim_cur: secs,
                    rlim_max: secs + 5,
                };
                if libc::setrlimit(libc::RLIMIT_CPU, &raw const lim) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            // If bgtask dies, so does the analyzer (its group is killed by
            // crash recovery).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        Ok(())
    }
}

/// A pidfd for `pid` registered with the runtime, readable once the
/// process exits; `None` on kernels without `pidfd_open` (the caller polls).
pub fn async_pidfd(pid: u32) -> Option<tokio::io::unix::AsyncFd<OwnedFd>> {
    let fd = pidfd_open(pid)?;
    // SAFETY: the OwnedFd is moved into the AsyncFd, so it stays open and
    // refers to the same pidfd for the AsyncFd's whole lifetime.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE).ok()
    }
}

pub(super) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: plain syscall with integer arguments; on success it returns a
    // new file descriptor that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` is a fresh descriptor returned to us by the kernel.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a reaped process ended, with its resource usage.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub status: ExitStatus,
    /// Peak resident set of the process and the children it waited for, KiB.
    pub max_rss_kb: u64,
    pub cpu: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Reaps `pid` if it has exited (`WNOHANG`).
pub fn try_reap(pid: u32) -> io::Result<Option<Reaped>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; pid is our own child.
    let r = unsafe { libc::wait4(pid, &raw mut status, libc::WNOHANG, &raw mut usage) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    let status = if libc::WIFEXITED(status) {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    } else {
        ExitStatus::Signal(libc::WTERMSIG(status))
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(Some(Reaped {
        status,
        max_rss_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
    }))
}

/// Sends `sig` to every process in group `pgid`. A missing group is fine.
pub fn kill_group(pgid: u32, sig: i32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill with a negative pid signals a process group we created.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`): process
/// ids and start times recorded in another boot mean nothing now.
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Makes this process the reaper of orphaned descendants, so analyzers'
/// grandchildren that `setsid` away from their group still end up ours to
/// kill (RELIABILITY 10).
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments affecting only this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Analyzer processes this process spawned and has not reaped yet, with
/// the token each run's processes carry (`tree.rs`'s `TOKEN_VAR`).
static SPAWNED: Mutex<BTreeMap<u32, String>> = Mutex::new(BTreeMap::new());

fn spawned_map() -> std::sync::MutexGuard<'static, BTreeMap<u32, String>> {
    SPAWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawns `cmd` and registers the child under the lock, so a pass over
/// `/proc` never sees a fresh analyzer before it is known as one (and takes
/// it for an orphan).
pub fn spawn_registered(
    cmd: &mut std::process::Command,
    token: &str,
) -> io::Result<std::process::Child> {
    let mut spawned = spawned_map();
    let child = cmd.spawn()?;
    spawned.insert(child.id(), token.to_owned());
    Ok(child)
}

pub fn unregister_spawned(pid: u32) {
    spawned_map().remove(&pid);
}

/// The pids of the analyzers running now.
pub fn spawned() -> BTreeSet<u32> {
    spawned_map().keys().copied().collect()
}

/// Reaps `pid`, a dead child of ours, if it has exited.
pub fn reap(pid: u32) {
    let _ = try_reap(pid);
}

/// The run tokens of the analyzers running now.
pub(super) fn spawned_tokens() -> BTreeSet<String> {
    spawned_map().values().cloned().collect()
}

/// `ARG_MAX` minus room for the environment, for splitting file lists.
pub fn arg_max() -> usize {
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    usize::try_from(max).unwrap_or(131_072)
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".to_owned(),
        libc::SIGTERM => "SIGTERM".to_owned(),
        libc::SIGSEGV => "SIGSEGV".to_owned(),
        libc::SIGABRT => "SIGABRT".to_owned(),
        libc::SIGXCPU => "SIGXCPU".to_owned(),
        libc::SIGINT => "SIGINT".to_owned(),
        libc::SIGBUS => "SIGBUS".to_owned(),
        libc::SIGPIPE => "SIGPIPE".to_owned(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::super::tree::{self, Proc};
    use super::*;

    fn alive(pid: u32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    }

    fn gone_soon(pid: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// A group leader `sh` with a `sleep` child; returns (leader, child).
    fn group() -> (std::process::Child, u32) {
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        (leader, line.trim().parse().unwrap())
    }

    fn proc_of(pid: u32) -> Proc {
        Proc {
            pid,
            start_ticks: tree::start_ticks(pid).unwrap(),
        }
    }

    #[test]
    fn a_leftover_group_is_killed_only_when_it_is_ours() {
        // The leader runs, but the recorded start time is another process's.
        let (mut leader, child) = group();
        let mut wrong = proc_of(leader.id());
        wrong.start_ticks += 1;
        assert_eq!(tree::kill_recorded(&[wrong], &[], &[]), 0);
        wrong.start_ticks = 0;
        assert_eq!(
            tree::kill_recorded(&[wrong], &[], &[]),
            0,
            "no start time: no kill"
        );
        assert!(alive(child));
        // The very leader: the whole group goes.
        assert!(tree::kill_recorded(&[proc_of(leader.id())], &[], &[]) >= 2);
        assert!(gone_soon(child));
        leader.wait().unwrap();

        // The leader died first (the daemon's kill -9 took it, say): its
        // group lives on in the child, which is still killed.
        let (mut leader, child) = group();
        let recorded = proc_of(leader.id());
        leader.kill().unwrap();
        leader.wait().unwrap();
        assert!(alive(child));
        assert_eq!(tree::kill_recorded(&[recorded], &[], &[]), 1);
        assert!(gone_soon(child));
    }

    /// A process that left its group (`setsid`) with a child, under a
    /// shell that stays (so it is no orphan of ours), with `token` in its
    /// environment; the shell and the escapee's and child's pids.
    fn escapee(token: Option<&str>) -> (std::process::Child, Vec<u32>) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "setsid sh -c 'sleep 300 & echo $$ $!; wait' & wait"])
            .stdout(Stdio::piped());
        if let Some(t) = token {
            cmd.env(tree::TOKEN_VAR, t);
        }
        let mut outer = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(outer.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let pids = line
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        (outer, pids)
    }

    #[test]
    fn a_recorded_process_and_its_descendants_are_killed_only_when_the_same() {
        // A process out of any recorded group (it called setsid), with a
        // child. Its parent is a shell that stays, so it is no orphan of ours
        // (which a run in a test alongside might take for its own).
        let (mut outer, pids) = escapee(None);
        let (escapee, child) = (pids[0], pids[1]);
        let mut wrong = proc_of(escapee);
        wrong.start_ticks -= 1;
        assert_eq!(tree::kill_recorded(&[], &[wrong], &[]), 0);
        assert!(alive(child));
        assert_eq!(tree::kill_recorded(&[], &[proc_of(escapee)], &[]), 2);
        assert!(gone_soon(child));
        assert!(gone_soon(escapee));
        outer.wait().unwrap();
    }

    #[test]
    fn a_process_never_recorded_is_found_by_its_token() {
        // An escapee born too late to be recorded, with a child; its
        // parent stays, so it is no orphan of ours.
        let token = format!("test.{}", std::process::id());
        let (mut outer, pids) = escapee(Some(&token));
        assert_eq!(tree::kill_recorded(&[], &[], &["other".to_owned()]), 0);
        assert!(alive(pids[0]) && alive(pids[1]));
        // The shell between them carries the token too.
        assert_eq!(tree::kill_recorded(&[], &[], &[token]), 3);
        assert!(gone_soon(pids[0]) && gone_soon(pids[1]));
        let _ = outer.wait();
    }

    #[test]
    fn boot_id_is_this_boot() {
        let id = boot_id().expect("a Linux boot id");
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(boot_id().unwrap(), id);
    }
}
