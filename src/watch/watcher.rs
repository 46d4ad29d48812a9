//! The watcher thread: one non-recursive inotify watch per directory that
//! is not ignored (notify's recursive mode cannot skip ignored trees),
//! new directories watched as they appear, and what changed handed on as
//! [`Output`]s.
//!
//! - Only creates, deletes, renames and closes-after-write are asked of the
//!   kernel: plain reads (`IN_OPEN`) would make every analyzer run wake the
//!   watcher for each file it reads.
//! - `.git/` is not watched, except this worktree's `logs/` (HEAD's reflog,
//!   not recursively): HEAD moving is a commit or checkout, noticed even
//!   from clients that run no hooks.
//! - Events are handed on at once when the watcher was quiet, else at most
//!   every [`BATCH`]: a checkout storm becomes a few dozen arrivals, not
//!   40 000 (the intake then makes it one batch).
//! - A kernel queue overflow means events were lost: one project-wide
//!   arrival (`rescan`) and a walk for directories missed.
//! - When the inotify watch limit is hit, the directories left are polled,
//!   and the state says which limit and the `sysctl` that raises it. On a
//!   network filesystem (NFS, SMB, FUSE, 9p, …), where inotify misses
//!   other machines' changes, everything is polled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKindMask, MetadataKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, PathOp, Watcher as _};

use super::filter::Filter;
use super::walk::walk;
use crate::event::Arrival;
use crate::git::GitDirs;
use crate::globs::Globs;
use crate::ipc::WatcherState;

/// Longest a batch of events is held from its first event (a storm is
/// handed on in batches this far apart at most).
pub const BATCH: Duration = Duration::from_millis(20);
/// A batch is handed on once no event came for this long: the events of
/// one save come within a fraction of it.
pub const QUIET: Duration = Duration::from_millis(2);

/// What the watcher tells the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// What changed, and when the last event of it came (the debounce
    /// counts from there, not from when the batch was handed on).
    Arrival(Arrival, Instant),
    State(WatcherState),
}

pub struct Options {
    pub root: PathBuf,
    pub git: Option<GitDirs>,
    pub include: Option<Globs>,
    pub exclude: Option<Globs>,
    /// How often polled directories are looked at.
    pub poll_interval: Duration,
}

/// The running watcher; dropping it stops the thread.
pub struct Handle {
    wake: Sender<notify::Result<Event>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.wake.send(Err(notify::Error::generic(STOP)));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const STOP: &str = "bgtask: stop watching";

/// Starts watching; `out` gets every [`Output`] (from the watcher thread).
pub fn spawn(opts: Options, out: impl Fn(Output) + Send + 'static) -> std::io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let wake = tx.clone();
    let thread = std::thread::Builder::new()
        .name("bgtask-watch".into())
        .spawn(move || {
            let mut w = Watching::new(opts, tx, out);
            w.start();
            w.run(&rx);
        })?;
    Ok(Handle {
        wake,
        thread: Some(thread),
    })
}

/// Filesystems where inotify does not see changes made elsewhere.
fn is_network_fs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills the zeroed struct for a valid C string path.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &raw mut s) } != 0 {
        return false;
    }
    #[expect(clippy::cast_sign_loss, reason = "f_type is a magic number")]
    let kind = s.f_type as u64;
    matches!(
        kind,
        0x6969 // NFS
            | 0x517B // SMB
            | 0xFF53_4D42 // CIFS
            | 0xFE53_4D42 // SMB2
            | 0x6573_5546 // FUSE (sshfs, rclone, …)
            | 0x0102_1997 // 9p
            | 0x00C3_6400 // Ceph
            | 0x5346_414F // AFS
            | 0x0BD0_0BD0 // Lustre
    )
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Which limit was hit, and how to raise it.
pub fn limit_message(watched: usize, total: usize) -> String {
    let global = read_number("/proc/sys/fs/inotify/max_user_watches");
    let ns = read_number("/proc/sys/user/max_inotify_watches");
    let current = match (global, ns) {
        (Some(g), Some(n)) if n < g => format!(
            "/proc/sys/user/max_inotify_watches={n} in this user namespace, fs.inotify.max_user_watches={g}"
        ),
        (Some(g), _) => format!("fs.inotify.max_user_watches={g}"),
        (None, _) => "fs.inotify.max_user_watches".to_owned(),
    };
    let want = (total * 2).max(524_288);
    format!(
        "degraded: watch limit reached ({current}): {watched} of {total} directories watched, the rest polled; raise it with `sudo sysctl fs.inotify.max_user_watches={want}` (and `echo fs.inotify.max_user_watches={want} | sudo tee /etc/sysctl.d/90-bgtask.conf` to keep it)"
    )
}

struct Watching<F> {
    opts: Options,
    tx: Sender<notify::Result<Event>>,
    out: F,
    filter: Filter,
    inotify: Option<notify::INotifyWatcher>,
    poll: Option<notify::PollWatcher>,
    watched: usize,
    polled: usize,
    /// The inotify watch limit was hit: new directories are polled.
    full: bool,
    message: Option<String>,
    started: Instant,
    ready_ms: Option<u64>,
    head: Option<String>,
    // The batch being collected: each path, and whether its last event
    // left a regular file there (else it is gone, or a link).
    files: BTreeMap<PathBuf, bool>,
    rescan: bool,
    /// HEAD moved during this batch, from this commit.
    head_moved: bool,
    head_from: Option<String>,
    /// What moved HEAD last (its reflog message).
    head_how: Option<String>,
    /// When the batch's last event came.
    last_event: Instant,
}

impl<F: Fn(Output)> Watching<F> {
    fn new(opts: Options, tx: Sender<notify::Result<Event>>, out: F) -> Watching<F> {
        let filter = Filter::new(
            &opts.root,
            opts.git.as_ref().map(|g| g.git_dir.as_path()),
            opts.include.clone(),
            opts.exclude.clone(),
        );
        let head = opts.git.as_ref().and_then(GitDirs::head);
        Watching {
            opts,
            tx,
            out,
            filter,
            inotify: None,
            poll: None,
            watched: 0,
            polled: 0,
            full: false,
            message: None,
            started: Instant::now(),
            ready_ms: None,
            head,
            files: BTreeMap::new(),
            rescan: false,
            head_moved: false,
            head_from: None,
            head_how: None,
            last_event: Instant::now(),
        }
    }

    fn state(&self) {
        let state = match (self.watched, self.polled, self.ready_ms) {
            (_, _, None) => "starting",
            (0, 0, _) => "failed",
            (0, _, _) => "polling",
            (_, 0, _) => "watching",
            _ => "degraded",
        };
        (self.out)(Output::State(WatcherState {
            state: state.to_owned(),
            watched: self.watched,
            polled: self.polled,
            ready_ms: self.ready_ms,
            message: self.message.clone(),
        }));
    }

    fn start(&mut self) {
        // MODIFY_NAME as well as CREATE: notify asks the kernel for
        // `IN_MOVED_TO` under CREATE but delivers renames as name changes,
        // which it drops unless they are asked for too (an editor's atomic
        // save is a rename).
        let config = notify::Config::default().with_event_kinds(
            EventKindMask::CREATE
                | EventKindMask::REMOVE
                | EventKindMask::MODIFY_NAME
                | EventKindMask::ACCESS_CLOSE,
        );
        let forced_poll = std::env::var("BGTASK_WATCH").is_ok_and(|v| v == "poll");
        if forced_poll || is_network_fs(&self.opts.root) {
            self.message = Some(format!(
                "{} is on a network filesystem (or BGTASK_WATCH=poll), where inotify misses other machines' changes: polling every {}s",
                self.opts.root.display(),
                self.opts.poll_interval.as_secs()
            ));
        } else {
            match notify::INotifyWatcher::new(self.tx.clone(), config) {
                Ok(w) => self.inotify = Some(w),
                Err(e) => {
                    self.message = Some(format!(
                        "could not start inotify ({e}); if it says too many open files, raise fs.inotify.max_user_instances (`sudo sysctl fs.inotify.max_user_instances=1024`); polling instead"
                    ));
                }
            }
        }
        let root = self.opts.root.clone();
        let found = walk(&root, &root, self.opts.exclude.as_ref(), false);
        let total = found.dirs.len();
        let mut dirs = found.dirs;
        // HEAD's reflog is appended whenever HEAD moves (commit, checkout,
        // reset, rebase); watching just `logs/` spares the watcher the
        // index and lock churn of every git command. Without reflogs
        // (`core.logAllRefUpdates=false`), the git directory itself.
        if let Some(g) = &self.opts.git {
            let logs = g.git_dir.join("logs");
            dirs.push(if logs.is_dir() {
                logs
            } else {
                g.git_dir.clone()
            });
        }
        self.add_dirs(dirs, total);
        self.ready_ms = Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        self.state();
        tracing::info!(
            watched = self.watched,
            polled = self.polled,
            ready_ms = self.ready_ms,
            root = %root.display(),
            "watcher ready"
        );
    }

    /// Watches `dirs` with inotify while it lets us, and polls the rest.
    /// A new directory: watches on it and everything below, and its files
    /// as changes. Listed again after the watches are on, until nothing
    /// new turns up: a file written (or a directory made) between a listing
    /// and its watch would otherwise be missed for good.
    fn take_in(&mut self, path: &Path) {
        let mut known: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        loop {
            let found = walk(&self.opts.root, path, self.opts.exclude.as_ref(), true);
            for f in found.files {
                if !self.filter.ignored(&f, false) {
                    self.files.insert(f, true);
                }
            }
            let fresh: Vec<PathBuf> = found
                .dirs
                .into_iter()
                .filter(|d| known.insert(d.clone()))
                .collect();
            if fresh.is_empty() {
                return;
            }
            let n = fresh.len();
            self.add_dirs(fresh, self.watched + self.polled + n);
        }
    }

    fn add_dirs(&mut self, dirs: Vec<PathBuf>, total: usize) {
        let mut left: Vec<PathBuf> = Vec::new();
        if let Some(w) = self.inotify.as_mut().filter(|_| !self.full) {
            let mut ops: Vec<PathOp> = dirs.into_iter().map(PathOp::watch_non_recursive).collect();
            loop {
                let n = ops.len();
                match w.update_paths(ops) {
                    Ok(()) => {
                        self.watched += n;
                        break;
                    }
                    Err(e) => {
                        let done = n - e.remaining.len() - usize::from(e.origin.is_some());
                        self.watched += done;
                        let failed = e.origin.into_iter().chain(e.remaining);
                        if matches!(e.source.kind, notify::ErrorKind::MaxFilesWatch) {
                            left.extend(failed.filter_map(|op| match op {
                                PathOp::Watch(p, _) => Some(p),
                                PathOp::Unwatch(_) => None,
                            }));
                            self.full = true;
                            break;
                        }
                        // A directory gone since the walk: skip it, go on.
                        let mut rest: Vec<PathOp> = failed.collect();
                        if rest.is_empty() {
                            break;
                        }
                        rest.remove(0);
                        ops = rest;
                    }
                }
            }
            if self.full {
                self.message = Some(limit_message(self.watched, total.max(self.watched)));
                tracing::warn!("{}", self.message.as_deref().unwrap_or_default());
            }
        } else {
            left = dirs;
        }
        if left.is_empty() {
            return;
        }
        if self.poll.is_none() {
            let config = notify::Config::default().with_poll_interval(self.opts.poll_interval);
            match notify::PollWatcher::new(self.tx.clone(), config) {
                Ok(p) => self.poll = Some(p),
                Err(e) => {
                    self.message = Some(format!("could not poll either: {e}"));
                    return;
                }
            }
        }
        let n = left.len();
        let ops = left.into_iter().map(PathOp::watch_non_recursive).collect();
        if let Some(p) = self.poll.as_mut()
            && p.update_paths(ops).is_ok()
        {
            self.polled += n;
        }
    }

    fn run(&mut self, rx: &Receiver<notify::Result<Event>>) {
        loop {
            let Ok(first) = rx.recv() else { return };
            if !self.take(first) {
                return;
            }
            // One save is several events (an atomic save: create, write,
            // rename over): take what follows closely, until a short quiet
            // gap or, in a storm (a checkout), `BATCH` after the first.
            let cap = Instant::now() + BATCH;
            loop {
                let gap = QUIET.min(cap.saturating_duration_since(Instant::now()));
                if gap.is_zero() {
                    break;
                }
                match rx.recv_timeout(gap) {
                    Ok(ev) => {
                        if !self.take(ev) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            self.flush();
        }
    }

    /// Hands on the batch, the saves before HEAD's move (git writes the
    /// tree before it moves HEAD: the daemon takes the move as the end of
    /// that step); whether there was anything.
    fn flush(&mut self) -> bool {
        let mut sent = false;
        if !self.files.is_empty() || self.rescan {
            let (files, not_files) = self.take_files();
            (self.out)(Output::Arrival(
                Arrival::Saved {
                    files,
                    rescan: std::mem::take(&mut self.rescan),
                    not_files: Some(not_files),
                },
                self.last_event,
            ));
            sent = true;
        }
        let from = self.head_from.take();
        if std::mem::take(&mut self.head_moved) && from != self.head {
            (self.out)(Output::Arrival(
                Arrival::HeadMoved {
                    from,
                    to: self.head.clone(),
                    how: self.head_how.clone(),
                },
                self.last_event,
            ));
            sent = true;
        }
        sent
    }

    /// The batch's files, and which of them are no regular file (gone, or
    /// a link), as their last events left them: the daemon need not look
    /// at a checkout's 10 000 files again once git is done. (An event not
    /// read yet comes with the next batch, which then says it better.)
    fn take_files(&mut self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut files = Vec::with_capacity(self.files.len());
        let mut not_files = Vec::new();
        for (f, is_file) in std::mem::take(&mut self.files) {
            if !is_file {
                not_files.push(f.clone());
            }
            files.push(f);
        }
        (files, not_files)
    }

    /// Takes one event into the batch; false means stop.
    fn take(&mut self, ev: notify::Result<Event>) -> bool {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) if e.to_string().contains(STOP) => return false,
            Err(e) => {
                tracing::debug!(error = %e, "watcher error");
                return true;
            }
        };
        tracing::trace!(kind = ?ev.kind, paths = ?ev.paths, "watch event");
        if ev.need_rescan() {
            tracing::warn!(
                "the kernel's event queue overflowed: rescanning, and analysing as if everything changed"
            );
            self.rescan = true;
            let root = self.opts.root.clone();
            let found = walk(&root, &root, self.opts.exclude.as_ref(), false);
            let total = found.dirs.len();
            self.add_dirs(found.dirs, total);
            return true;
        }
        let created = matches!(
            ev.kind,
            EventKind::Create(_)
                | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        );
        let changed = created
            || matches!(
                ev.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(
                        ModifyKind::Data(_)
                            | ModifyKind::Any
                            // What polling sees of a write: a new mtime.
                            | ModifyKind::Metadata(MetadataKind::WriteTime | MetadataKind::Any)
                    )
            );
        let removed = matches!(
            ev.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        if !changed && !removed {
            return true;
        }
        self.last_event = Instant::now();
        // For a rename with both ends, the destination is the last path.
        let paths: Vec<PathBuf> = match ev.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                ev.paths.last().cloned().into_iter().collect()
            }
            _ => ev.paths,
        };
        // A write closed is on a regular file; anything else made or
        // changed (polling's new mtimes) is looked at.
        let closed = matches!(
            ev.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        for path in paths {
            self.path_changed(&path, created, closed, removed);
        }
        true
    }

    fn path_changed(&mut self, path: &Path, created: bool, closed: bool, removed: bool) {
        if let Some(g) = &self.opts.git
            && (path.starts_with(&g.git_dir) || path.starts_with(&g.common_dir))
        {
            // The reflog entry names the new commit even before the ref
            // does; a null id (an unborn branch) is no commit.
            let entry = g.last_head_entry();
            self.head_how = entry.as_ref().map(|(_, _, how)| how.clone());
            let head = entry
                .map(|(_, to, _)| to)
                .filter(|to| !to.bytes().all(|b| b == b'0'))
                .or_else(|| g.head());
            if head != self.head {
                if !self.head_moved {
                    self.head_moved = true;
                    self.head_from.clone_from(&self.head);
                }
                self.head = head;
            }
            return;
        }
        let Ok(rel) = path.strip_prefix(&self.opts.root) else {
            return;
        };
        if rel.as_os_str().is_empty() {
            return; // the root itself (deleted, or its metadata)
        }
        let rel = rel.to_owned();
        if rel
            .file_name()
            .is_some_and(|n| n == ".gitignore" || n == ".ignore")
        {
            self.filter
                .invalidate(rel.parent().unwrap_or_else(|| Path::new("")));
        }
        if removed {
            // A deleted file is a change too: its findings end with it.
            // (A removed directory's files come as their own events.)
            if !self.filter.ignored(&rel, false) {
                self.files.insert(rel, false);
            }
            return;
        }
        let is_file = if closed {
            true
        } else {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => {
                    if created && !self.filter.ignored(&rel, true) {
                        self.take_in(path);
                        if self.polled > 0 {
                            self.state();
                        }
                    }
                    return;
                }
                Ok(m) => m.is_file(),
                Err(_) => false,
            }
        };
        if !self.filter.ignored(&rel, false) {
            self.files.insert(rel, is_file);
        }
    }
}
