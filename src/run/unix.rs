//! The Linux calls behind the runner: session/limits set up in the child,
//! pidfd waiting, `wait4` with rusage, group signals, group memory sampling
//! and the subreaper sweep for processes that escaped their group.
//!
//! The runner's `unsafe` blocks are here (plus registering [`child_setup`]
//! with `pre_exec`), each with its safety argument.

use std::collections::BTreeSet;
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

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
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

fn page_kb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096) / 1024
}

/// Resident memory (KiB) of `root` and all its descendants, found through
/// `/proc/<pid>/task/<tid>/children`. Processes that left the tree are not
/// counted (they are killed with the group when the run ends).
pub fn tree_rss_kb(root: u32) -> u64 {
    let page = page_kb();
    let mut total = 0;
    let mut stack = vec![root];
    let mut visited = 0;
    while let Some(pid) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        if let Ok(statm) = fs::read_to_string(format!("/proc/{pid}/statm"))
            && let Some(rss) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u64>().ok())
        {
            total += rss * page;
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(children) = fs::read_to_string(task.path().join("children")) {
                stack.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    total
}

/// The kernel start time of `pid` (field 22 of `/proc/<pid>/stat`), which
/// tells a process from a later one that reuses its pid.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the command name: field 3 (state) is the first; 22 is the 20th.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Process group and start time of `pid` (fields 5 and 22 of its stat).
fn group_and_start(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Kills what is left of the process group `pgid` whose leader started at
/// `start_ticks` (in this boot). If the leader still runs, the group is
/// killed only when it is the same process (not one that reused the pid).
/// If the leader is gone, only members of group `pgid` that started at or
/// after it are killed: grandchildren of the old job, never an older
/// process. Returns whether anything was signalled.
pub fn kill_group_if_same(pgid: u32, start_ticks: u64) -> bool {
    let Ok(group) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if start_ticks == 0 || group <= 1 {
        return false;
    }
    match self::start_ticks(pgid) {
        // SAFETY: signals the process group of the very process we started.
        Some(t) if t == start_ticks => return unsafe { libc::kill(-group, libc::SIGKILL) } == 0,
        Some(_) => return false,
        None => {}
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    let mut killed = false;
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        if let Some((g, started)) = group_and_start(pid)
            && g == pgid
            && started >= start_ticks
            && let Ok(p) = libc::pid_t::try_from(pid)
        {
            // SAFETY: a member of the job's old group, started after its
            // leader.
            killed |= unsafe { libc::kill(p, libc::SIGKILL) } == 0;
        }
    }
    killed
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

/// Analyzer processes this process spawned and has not reaped yet: never
/// touched by [`sweep_orphans`].
static SPAWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

pub fn register_spawned(pid: u32) {
    SPAWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(pid);
}

pub fn unregister_spawned(pid: u32) {
    SPAWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&pid);
}

/// SIGKILL to the group of every analyzer still running (a second Ctrl-C).
pub fn kill_all_spawned() {
    let spawned = SPAWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for pid in spawned {
        kill_group(pid, libc::SIGKILL);
    }
}

/// Kills and reaps processes that were reparented to us (analyzer
/// descendants that escaped their group with `setsid` and outlived their
/// parent). Spares analyzers we spawned ourselves and anything in our own
/// session (our own `git` calls). Returns how many were found.
pub fn sweep_orphans() -> usize {
    let me = std::process::id();
    // SAFETY: getsid(0) has no preconditions.
    let my_sid = unsafe { libc::getsid(0) };
    let spawned = SPAWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || spawned.contains(&pid) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp session.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().take(4).collect();
        let (Some(parent), Some(session)) = (
            fields.get(1).and_then(|p| p.parse::<u32>().ok()),
            fields.get(3).and_then(|s| s.parse::<i32>().ok()),
        ) else {
            continue;
        };
        if parent == me && session != my_sid {
            found.push(pid);
        }
    }
    for &pid in &found {
        if let Ok(p) = libc::pid_t::try_from(pid) {
            // SAFETY: `pid` is our own child (its parent is us).
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
    for &pid in &found {
        // Reap: it is our child; a short blocking wait is fine after SIGKILL.
        for _ in 0..100 {
            match try_reap(pid) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    found.len()
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

    #[test]
    fn a_leftover_group_is_killed_only_when_it_is_ours() {
        // The leader runs, but the recorded start time is another process's.
        let (mut leader, child) = group();
        let ticks = start_ticks(leader.id()).unwrap();
        assert!(!kill_group_if_same(leader.id(), ticks + 1));
        assert!(
            !kill_group_if_same(leader.id(), 0),
            "no start time: no kill"
        );
        assert!(alive(child));
        // The very leader: the whole group goes.
        assert!(kill_group_if_same(leader.id(), ticks));
        assert!(gone_soon(child));
        leader.wait().unwrap();

        // The leader died first (the daemon's kill -9 took it, say): its
        // group lives on in the child, which is still killed.
        let (mut leader, child) = group();
        let (pgid, ticks) = (leader.id(), start_ticks(leader.id()).unwrap());
        leader.kill().unwrap();
        leader.wait().unwrap();
        assert!(alive(child));
        assert!(kill_group_if_same(pgid, ticks));
        assert!(gone_soon(child));
    }

    #[test]
    fn boot_id_is_this_boot() {
        let id = boot_id().expect("a Linux boot id");
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(boot_id().unwrap(), id);
    }
}
