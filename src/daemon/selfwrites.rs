//! Runs that change the files they read — a formatter, `--fix`, a test
//! that rewrites its snapshots — must not start their own task again, or
//! it runs forever (RELIABILITY 29). Two guards, both per task:
//!
//! 1. **Its own writes are not its trigger.** The content of the files a
//!    job is given is hashed before it runs and again after; a file the run
//!    changed is remembered with the content it left. A later save of that
//!    file that still has exactly that content is the run's own write: it
//!    starts other tasks (a lint after a format), never this one.
//! 2. **A loop that slips through is stopped.** Files last saved while a
//!    task ran (or just after) are what its run wrote, whoever it was
//!    given. A trigger of that task made only of those is self-made (one
//!    run's writes count once); after
//!    `triggers.file_watch.max_self_triggers` of them in a row (default 3)
//!    the task pauses — said once, in the log, as a notification and in
//!    `status` — until a save of anything else (yours), `bgtask submit` or a
//!    config change.
//!
//! Only saves are guarded: commits, checkouts and schedules are people's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::schedule::JobId;

/// Jobs with more files, or more bytes, than this are not hashed before
/// and after (a checkout of thousands; this runs on the daemon's loop):
/// the streak guard still holds.
const MAX_HASHED: usize = 256;
const MAX_HASHED_BYTES: u64 = 8 << 20;
/// Saves arriving this soon after a run ends are still its own (the
/// watcher reports a write a few milliseconds after it happens).
const GRACE: Duration = Duration::from_millis(500);

type Hashes = BTreeMap<PathBuf, Option<blake3::Hash>>;

fn hashes<'a>(root: &Path, files: impl IntoIterator<Item = &'a PathBuf>) -> Hashes {
    files
        .into_iter()
        .map(|f| {
            let h = crate::repofile::hash(Some(root), &root.join(f))
                .ok()
                .flatten();
            (f.clone(), h)
        })
        .collect()
}

/// What the guards decided about a save-triggered offer of a task.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Guarded {
    /// Run it on these files (the task's own writes taken out).
    Run(BTreeSet<PathBuf>),
    /// Only its own writes: nothing to do.
    OwnWrites,
    /// Paused; `true` the first time (say so).
    Paused { newly: bool, streak: u32 },
}

#[derive(Debug, Default)]
pub(super) struct SelfWrites {
    /// Per running job: its task and the content of its files before.
    before: BTreeMap<JobId, (String, Hashes)>,
    /// Per task: files its last run changed, with the content it left.
    written: BTreeMap<String, Hashes>,
    /// Per task: when its last run started and ended (`None`: running).
    window: BTreeMap<String, (Instant, Option<Instant>)>,
    /// When each file was last saved.
    last_saved: HashMap<PathBuf, Instant>,
    /// Per task: self-made triggers in a row (one per run at most).
    streak: BTreeMap<String, u32>,
    /// Tasks whose self-made trigger since their last run was counted.
    counted: BTreeSet<String>,
    paused: BTreeSet<String>,
}

impl SelfWrites {
    /// A job starts on `files` (`None`: the whole project).
    pub(super) fn started(
        &mut self,
        job: JobId,
        task: &str,
        files: Option<&BTreeSet<PathBuf>>,
        root: &Path,
    ) {
        self.window.insert(task.to_owned(), (Instant::now(), None));
        self.counted.remove(task);
        let small = |f: &BTreeSet<PathBuf>| {
            f.len() <= MAX_HASHED
                && f.iter()
                    .map(|p| std::fs::metadata(root.join(p)).map_or(0, |m| m.len()))
                    .sum::<u64>()
                    <= MAX_HASHED_BYTES
        };
        let before = match files {
            Some(f) if small(f) => hashes(root, f),
            _ => Hashes::new(),
        };
        self.before.insert(job, (task.to_owned(), before));
    }

    /// A job ended: what it changed of its files is its own writing.
    pub(super) fn finished(&mut self, job: JobId, root: &Path) {
        let Some((task, before)) = self.before.remove(&job) else {
            return;
        };
        let after = hashes(root, before.keys());
        let changed: Hashes = after
            .into_iter()
            .filter(|(f, h)| before.get(f) != Some(h))
            .collect();
        self.written.insert(task.clone(), changed);
        if let Some(w) = self.window.get_mut(&task) {
            w.1 = Some(Instant::now());
        }
    }

    /// Files were saved (now).
    pub(super) fn saved(&mut self, files: &[PathBuf]) {
        let now = Instant::now();
        if self.last_saved.len() > 10_000 {
            self.last_saved
                .retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
        }
        for f in files {
            self.last_saved.insert(f.clone(), now);
        }
    }

    /// Whether each of `files` was last saved while `task` last ran (or
    /// just after): what its run wrote, whoever it was given.
    fn self_made(&self, task: &str, files: &BTreeSet<PathBuf>) -> bool {
        let Some((start, end)) = self.window.get(task) else {
            return false;
        };
        let until = end.map_or_else(Instant::now, |e| e + GRACE);
        files.iter().all(|f| {
            self.last_saved
                .get(f)
                .is_some_and(|at| *at >= *start && *at <= until)
        })
    }

    /// The guards' verdict on starting `task` for saves of `files`.
    pub(super) fn guard(
        &mut self,
        task: &str,
        files: BTreeSet<PathBuf>,
        root: &Path,
        max_streak: u32,
    ) -> Guarded {
        // 1. What still has the content the task's run left is its own.
        let own = self.written.get(task);
        let files: BTreeSet<PathBuf> = files
            .into_iter()
            .filter(|f| {
                own.and_then(|w| w.get(f)).is_none_or(|left| {
                    crate::repofile::hash(Some(root), &root.join(f))
                        .ok()
                        .flatten()
                        != *left
                })
            })
            .collect();
        if files.is_empty() {
            return Guarded::OwnWrites;
        }
        // 2. Only what was saved while it ran: a self-made trigger.
        if !self.self_made(task, &files) {
            self.resume(task);
            return Guarded::Run(files);
        }
        let streak = self.streak.entry(task.to_owned()).or_insert(0);
        // One run's writes count once, however many triggers they make.
        if self.counted.insert(task.to_owned()) {
            *streak += 1;
        }
        let streak = *streak;
        if max_streak > 0 && streak >= max_streak {
            let newly = self.paused.insert(task.to_owned());
            return Guarded::Paused { newly, streak };
        }
        if self.paused.contains(task) {
            return Guarded::Paused {
                newly: false,
                streak,
            };
        }
        Guarded::Run(files)
    }

    /// Someone asked for the task (a save of theirs, `submit`, a config
    /// change): it runs by itself again.
    pub(super) fn resume(&mut self, task: &str) {
        self.streak.remove(task);
        self.counted.remove(task);
        self.paused.remove(task);
    }

    /// Every paused task runs by itself again (the config changed).
    pub(super) fn resume_all(&mut self) {
        self.streak.clear();
        self.counted.clear();
        self.paused.clear();
    }

    pub(super) fn paused(&self) -> impl Iterator<Item = &String> {
        self.paused.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str]) -> BTreeSet<PathBuf> {
        files.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_runs_own_rewrite_of_its_input_does_not_start_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.py"), "x=1\n").unwrap();
        let mut w = SelfWrites::default();
        w.started(1, "fmt", Some(&set(&["a.py"])), root);
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap(); // the formatter
        w.saved(&[PathBuf::from("a.py")]);
        w.finished(1, root);
        assert_eq!(w.guard("fmt", set(&["a.py"]), root, 3), Guarded::OwnWrites);
        // Another task still hears of it.
        assert_eq!(
            w.guard("lint", set(&["a.py"]), root, 3),
            Guarded::Run(set(&["a.py"]))
        );
        // The user edits it: it runs.
        std::fs::write(root.join("a.py"), "x = 2\n").unwrap();
        assert_eq!(
            w.guard("fmt", set(&["a.py"]), root, 3),
            Guarded::Run(set(&["a.py"]))
        );
    }

    #[test]
    fn a_loop_the_hashes_miss_pauses_after_the_streak() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut w = SelfWrites::default();
        let mut verdicts = Vec::new();
        for job in 1..=4 {
            // A project-wide run that writes a file it was not given.
            w.started(job, "snap", None, root);
            std::fs::write(root.join("snap.txt"), format!("{job}")).unwrap();
            w.saved(&[PathBuf::from("snap.txt")]);
            w.finished(job, root);
            verdicts.push(w.guard("snap", set(&["snap.txt"]), root, 3));
            // A second trigger from the same run's writes counts once.
            if job == 1 {
                assert_eq!(
                    w.guard("snap", set(&["snap.txt"]), root, 3),
                    Guarded::Run(set(&["snap.txt"]))
                );
            }
        }
        assert_eq!(
            verdicts,
            [
                Guarded::Run(set(&["snap.txt"])),
                Guarded::Run(set(&["snap.txt"])),
                Guarded::Paused {
                    newly: true,
                    streak: 3
                },
                Guarded::Paused {
                    newly: false,
                    streak: 4
                },
            ]
        );
        assert_eq!(w.paused().count(), 1);
        // Paused, it writes nothing: a later save is the user's.
        std::thread::sleep(GRACE + Duration::from_millis(20));
        w.saved(&[PathBuf::from("snap.txt")]);
        assert_eq!(
            w.guard("snap", set(&["snap.txt"]), root, 3),
            Guarded::Run(set(&["snap.txt"]))
        );
        assert_eq!(w.paused().count(), 0);
    }
}
