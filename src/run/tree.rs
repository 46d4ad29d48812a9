//! Every process of an analyzer run, wherever it went, and killing them all.
//!
//! A process group is not enough: a grandchild that calls `setsid` leaves
//! the analyzer's group and session. This module finds a run's processes by
//! reading `/proc` (one pass gives pid, parent, group, session, start time
//! and state of every process) and applying [`Scope`]'s rules:
//!
//! - the analyzer (the *leader*) and every process of its session or group
//!   started at or after it;
//! - the descendants of every member (parent chains);
//! - processes recorded earlier ([`Proc`]: pid **and** start time, so a
//!   reused pid is never taken for the old process);
//! - orphans: processes whose parent is bgtask itself (the subreaper, see
//!   [`super::become_subreaper`]) that are not in bgtask's session and not an
//!   analyzer it spawned — descendants whose parents died, typically
//!   `setsid` escapees. Each run's analyzer gets a token in its environment
//!   ([`TOKEN_VAR`]), inherited by its descendants, which tells whose orphan
//!   it is; one without a token belongs to every run that started before it.
//!
//! Killing is freeze-then-kill: members are stopped (`SIGSTOP`) round after
//! round until a pass over `/proc` finds no new one (a stopped process cannot
//! fork, so a fork storm cannot outrun it), then all are killed (`SIGKILL`)
//! through a pidfd opened while the start time still matched, so the signal
//! can never reach a process that reused the pid. Dead orphans are reaped.
//!
//! The daemon records every member as it is found (a pass every 200 ms
//! while a run goes on) and each analyzer's token. After a crash of the
//! daemon (kill -9), the next start kills the recorded processes whose start
//! times still match, their sessions, groups and descendants, and every
//! process carrying a recorded token ([`kill_recorded`]) — which also finds
//! those born after the last pass. What escapes all this: a process born
//! after the last pass that also cleared its environment; and when
//! `bgtask run` (which records nothing) is killed with SIGKILL, its
//! analyzers die with it (`PR_SET_PDEATHSIG`) but their descendants live.
//!
//! cgroup v2 (`cgroup.kill` on a delegated subtree) would do this in the
//! kernel; bgtask does not use it yet: many machines (hybrid cgroup v1
//! layouts, containers without delegation) have none, and this tracking
//! works everywhere. [`mechanism`] says what is in use, for `doctor`.
//!
//! A pass reads `/proc/<pid>/stat` of every process, except those that
//! started before the run's first analyzer and were already listed at the
//! pass before (they can never be members); every 25th pass reads them all.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::time::{Duration, Instant};

/// The environment variable that marks every process of one analyzer run.
pub const TOKEN_VAR: &str = "BGTASK_TREE";

/// A process, told from any later one that reuses its pid by its start time
/// (kernel ticks since boot, field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proc {
    pub pid: u32,
    pub start_ticks: u64,
}

/// What `/proc/<pid>/stat` says about one process.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    pgrp: u32,
    sid: u32,
    start_ticks: u64,
    zombie: bool,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let mut buf = Vec::with_capacity(512);
    read_stat_into(&format!("/proc/{pid}/stat"), &mut buf)
}

/// Reads and parses a stat file into `buf` (reused across a pass).
fn read_stat_into(path: &str, buf: &mut Vec<u8>) -> Option<Stat> {
    buf.clear();
    fs::File::open(path).ok()?.read_to_end(buf).ok()?;
    parse_stat(buf)
}

fn parse_stat(text: &[u8]) -> Option<Stat> {
    // After the parenthesised command name (any bytes, `)` included):
    // state ppid pgrp session ... with the start time the 20th field.
    let close = text.iter().rposition(|b| *b == b')')?;
    let after = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut f = after.split_ascii_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let sid = f.next()?.parse().ok()?;
    let start_ticks = f.nth(15)?.parse().ok()?;
    Some(Stat {
        ppid,
        pgrp,
        sid,
        start_ticks,
        zombie: state == "Z" || state == "X",
    })
}

/// One pass over `/proc`.
struct Table {
    procs: HashMap<u32, Stat>,
    children: HashMap<u32, Vec<u32>>,
}

impl Table {
    /// Reads every process but those in `older`: processes that started
    /// before the scope's first leader (so can never be members) and were
    /// there at the last pass. Returns the table and the pids listed.
    fn read(older: &HashSet<u32>) -> (Table, HashSet<u32>) {
        let mut procs = HashMap::with_capacity(1024);
        let mut children: HashMap<u32, Vec<u32>> = HashMap::with_capacity(1024);
        let mut listed = HashSet::with_capacity(1024);
        let mut path = String::with_capacity(32);
        let mut buf = Vec::with_capacity(512);
        if let Ok(entries) = fs::read_dir("/proc") {
            for pid in entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            {
                listed.insert(pid);
                if older.contains(&pid) {
                    continue;
                }
                path.clear();
                let _ = write!(path, "/proc/{pid}/stat");
                if let Some(s) = read_stat_into(&path, &mut buf) {
                    children.entry(s.ppid).or_default().push(pid);
                    procs.insert(pid, s);
                }
            }
        }
        (Table { procs, children }, listed)
    }
}

/// Which of bgtask's own orphans a scope takes.
#[derive(Debug, Clone)]
pub enum Orphans {
    None,
    /// Those with this token, or with none that started at or after the
    /// first leader.
    Token(String),
    /// Those of no live run: a token no running analyzer has, or none
    /// while nothing runs (the sweep at the end of a job).
    Unclaimed(BTreeSet<String>),
    /// Every one (a second Ctrl-C).
    All,
}

/// The rules that say which processes belong to a run (see the module doc),
/// and what has been found so far.
#[derive(Debug, Clone)]
pub struct Scope {
    leaders: Vec<Proc>,
    known: BTreeSet<Proc>,
    orphans: Orphans,
    /// Orphans looked at and found to be someone else's.
    foreign: BTreeSet<Proc>,
    /// Processes that started before the first leader, as of the last
    /// pass: not read again while they stay (a pid is only reused after
    /// its process is gone and the pid counter came round, so a pid listed
    /// at two passes in a row is the same process; every
    /// [`FULL_PASS_EVERY`] passes all are read anyway).
    older: HashSet<u32>,
    passes: u32,
    /// Tokens whose every process is a member, wherever it is (recovery:
    /// processes born after the last record of a crashed bgtask).
    tokens: BTreeSet<String>,
}

/// Every this many passes, processes known to be older are read again.
const FULL_PASS_EVERY: u32 = 25;

impl Scope {
    pub fn new(
        leaders: Vec<Proc>,
        known: impl IntoIterator<Item = Proc>,
        orphans: Orphans,
    ) -> Scope {
        Scope {
            leaders,
            known: known.into_iter().collect(),
            orphans,
            foreign: BTreeSet::new(),
            older: HashSet::new(),
            passes: 0,
            tokens: BTreeSet::new(),
        }
    }

    /// Also takes every process carrying one of `tokens` (each names one
    /// analyzer of one bgtask process: no other process has it).
    #[must_use]
    pub fn with_tokens(mut self, tokens: impl IntoIterator<Item = String>) -> Scope {
        self.tokens.extend(tokens);
        self
    }

    /// Passes over `/proc` once: reaps dead orphans and updates the
    /// members. Returns the members not known before.
    pub fn scan(&mut self) -> Vec<Proc> {
        self.pass().1
    }

    /// [`Scope::scan`], also returning the table read.
    fn pass(&mut self) -> (Table, Vec<Proc>) {
        self.passes += 1;
        if self.passes.is_multiple_of(FULL_PASS_EVERY) {
            self.older.clear();
        }
        let (table, listed) = Table::read(&self.older);
        // Only scopes whose every member starts after the first leader may
        // skip older processes (the sweep and a second Ctrl-C take orphans
        // of any age).
        if let (Some(first), Orphans::None | Orphans::Token(_)) = (
            self.leaders.iter().map(|l| l.start_ticks).min(),
            &self.orphans,
        ) {
            self.older.retain(|pid| listed.contains(pid));
            self.older.extend(
                table
                    .procs
                    .iter()
                    .filter(|(_, s)| s.start_ticks < first)
                    .map(|(pid, _)| *pid),
            );
        }
        let new = self.update(&table);
        (table, new)
    }

    fn update(&mut self, table: &Table) -> Vec<Proc> {
        let me = std::process::id();
        // SAFETY: getsid(0) has no preconditions.
        let my_sid = u32::try_from(unsafe { libc::getsid(0) }).unwrap_or(0);
        let spawned = super::unix::spawned();
        let first_start = self.leaders.iter().map(|l| l.start_ticks).min();
        // A leader whose pid now belongs to a later process has no session
        // or group left: the pid was free, so they were empty.
        let leaders: Vec<Proc> = self
            .leaders
            .iter()
            .copied()
            .filter(|l| {
                table
                    .procs
                    .get(&l.pid)
                    .is_none_or(|s| s.start_ticks == l.start_ticks)
            })
            .collect();
        let mut found: BTreeSet<Proc> = BTreeSet::new();
        let mut stack: Vec<u32> = Vec::new();
        for (&pid, s) in &table.procs {
            let p = Proc {
                pid,
                start_ticks: s.start_ticks,
            };
            let orphan = s.ppid == me && s.sid != my_sid && !spawned.contains(&pid);
            if orphan && s.zombie {
                super::unix::reap(pid);
                continue;
            }
            if s.zombie {
                continue;
            }
            let member = self.known.contains(&p)
                || leaders.iter().any(|l| {
                    (pid == l.pid || s.sid == l.pid || s.pgrp == l.pid)
                        && s.start_ticks >= l.start_ticks
                })
                || (orphan && self.claims_orphan(p, first_start))
                || self.carries_token(p);
            if member && found.insert(p) {
                stack.push(pid);
            }
        }
        while let Some(pid) = stack.pop() {
            for &child in table.children.get(&pid).into_iter().flatten() {
                if let Some(s) = table.procs.get(&child)
                    && !s.zombie
                    && found.insert(Proc {
                        pid: child,
                        start_ticks: s.start_ticks,
                    })
                {
                    stack.push(child);
                }
            }
        }
        let new = found.difference(&self.known).copied().collect();
        self.known = found;
        new
    }

    fn claims_orphan(&mut self, p: Proc, first_start: Option<u64>) -> bool {
        let token = match &self.orphans {
            Orphans::None => return false,
            Orphans::All => return true,
            Orphans::Unclaimed(live) => {
                return token_of(p.pid).map_or(live.is_empty(), |t| !live.contains(&t));
            }
            Orphans::Token(t) => t,
        };
        if self.foreign.contains(&p) {
            return false;
        }
        let mine = match token_of(p.pid) {
            Some(t) => t == *token,
            None => first_start.is_some_and(|f| p.start_ticks >= f),
        };
        if !mine {
            self.foreign.insert(p);
        }
        mine
    }

    fn carries_token(&mut self, p: Proc) -> bool {
        if self.tokens.is_empty() || self.foreign.contains(&p) {
            return false;
        }
        let mine = token_of(p.pid).is_some_and(|t| self.tokens.contains(&t));
        if !mine {
            self.foreign.insert(p);
        }
        mine
    }

    /// Sends `sig` to every member found by a fresh pass that is not in
    /// process group `signalled` (which the caller signals as a whole: a
    /// tool may take a second SIGTERM as "quit now").
    pub fn signal(&mut self, sig: i32, signalled: u32) {
        let (table, _) = self.pass();
        for &p in &self.known {
            if table.procs.get(&p.pid).is_some_and(|s| s.pgrp != signalled) {
                signal_if_same(p, sig);
            }
        }
    }

    /// Stops every member, round after round until no new one appears,
    /// then kills them all and reaps the orphans; gives up at `within`.
    /// Returns how many processes were killed.
    pub fn kill_all(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut stopped: BTreeSet<Proc> = BTreeSet::new();
        let mut killed: BTreeSet<Proc> = BTreeSet::new();
        loop {
            self.scan();
            let fresh: Vec<Proc> = self.known.difference(&stopped).copied().collect();
            if fresh.is_empty() || Instant::now() >= deadline {
                break;
            }
            for p in fresh {
                signal_if_same(p, libc::SIGSTOP);
                stopped.insert(p);
            }
        }
        // At least one round of SIGKILL, even past the deadline.
        while !self.known.is_empty() {
            for &p in &self.known {
                if signal_if_same(p, libc::SIGKILL) {
                    killed.insert(p);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
            self.scan();
            if !self.known.is_empty() && Instant::now() >= deadline {
                tracing::warn!(
                    left = self.known.len(),
                    "analyzer processes outlived SIGKILL"
                );
                break;
            }
        }
        killed.len()
    }

    /// Resident memory of the members found by the last pass, KiB.
    pub fn rss_kb(&self) -> u64 {
        let page = page_kb();
        self.known
            .iter()
            .filter_map(|p| {
                let statm = fs::read_to_string(format!("/proc/{}/statm", p.pid)).ok()?;
                statm.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum::<u64>()
            * page
    }
}

fn page_kb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096) / 1024
}

/// The run token in a process's environment, if it has one.
fn token_of(pid: u32) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{TOKEN_VAR}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The start time of `pid` now, if it runs.
pub fn start_ticks(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// Signals `p` only if it is still that process: the pidfd is opened
/// first and the start time checked after, so a pid reused in between
/// leaves the pidfd pointing at the dead original. Returns whether the
/// signal was sent.
pub fn signal_if_same(p: Proc, sig: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(p.pid) else {
        return false;
    };
    if pid <= 1 || p.start_ticks == 0 {
        return false;
    }
    let Some(fd) = super::unix::pidfd_open(p.pid) else {
        // No pidfd (an old kernel): check, then kill; a small race.
        return start_ticks(p.pid) == Some(p.start_ticks)
            // SAFETY: signals a process whose start time we just checked.
            && unsafe { libc::kill(pid, sig) } == 0;
    };
    if start_ticks(p.pid) != Some(p.start_ticks) {
        return false;
    }
    // SAFETY: plain syscall on a pidfd we own; no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    r == 0
}

/// Kills what is left of jobs recorded by an earlier bgtask (crash
/// recovery): each group leader's session and group, each recorded
/// process, every process carrying one of the analyzers' `tokens`, and all
/// their descendants — only processes whose start times match. Returns how
/// many processes were killed.
pub fn kill_recorded(groups: &[Proc], processes: &[Proc], tokens: &[String]) -> usize {
    let mut scope = Scope::new(groups.to_vec(), processes.iter().copied(), Orphans::None)
        .with_tokens(tokens.iter().cloned());
    scope.kill_all(Duration::from_secs(2))
}

/// How a run's processes are cleaned up on this machine, for `doctor`.
pub fn mechanism() -> String {
    if fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok() {
        "process tracking (cgroup v2 present, not used yet)".to_owned()
    } else {
        "process tracking (no delegated cgroup v2)".to_owned()
    }
}

/// SIGKILL to every analyzer still running, its group, session,
/// descendants, and every orphan (a second Ctrl-C).
pub fn kill_all_spawned() {
    let leaders: Vec<Proc> = super::unix::spawned()
        .into_iter()
        .filter_map(|pid| {
            Some(Proc {
                pid,
                start_ticks: start_ticks(pid)?,
            })
        })
        .collect();
    for l in &leaders {
        super::unix::kill_group(l.pid, libc::SIGKILL);
    }
    Scope::new(leaders, [], Orphans::All).kill_all(Duration::from_secs(1));
}

/// Kills and reaps processes that were reparented to us (analyzer
/// descendants that escaped their group with `setsid` and outlived their
/// parent) and that belong to no running analyzer. Spares anything in our
/// own session (our own `git` calls). Returns how many were killed.
pub fn sweep_orphans() -> usize {
    let live = super::unix::spawned_tokens();
    Scope::new(Vec::new(), [], Orphans::Unclaimed(live)).kill_all(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "42 (a) b (c)) S 7 42 40 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = parse_stat(line.as_bytes()).unwrap();
        assert_eq!((s.ppid, s.pgrp, s.sid, s.start_ticks), (7, 42, 40, 12345));
        assert!(!s.zombie);
        let z = parse_stat(b"9 (x) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0").unwrap();
        assert!(z.zombie);
        assert_eq!(z.start_ticks, 77);
        // A name that is not UTF-8 hides nothing.
        let odd =
            parse_stat(b"9 (\xff\xfe) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 78 0 0").unwrap();
        assert_eq!(odd.start_ticks, 78);
        assert!(parse_stat(b"9 (x) S 1").is_none());
    }
}
