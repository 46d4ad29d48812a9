//! The queue's vocabulary: waiting jobs, offers, admissions, completions,
//! and the [`Effect`]s the queue hands its caller to persist.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::config::Priority;
use crate::event::Trigger;

pub type JobId = i64;
/// Wall-clock milliseconds (persisted, so they survive restarts).
pub use crate::clock::Millis;

/// Files of a job: `None` is the whole project and absorbs any set.
pub type Files = Option<BTreeSet<PathBuf>>;

/// Merges `b` into `a`; returns the files new to `a` (none once `a` is the
/// whole project).
pub(super) fn merge_files(a: &mut Files, b: Files) -> Vec<PathBuf> {
    match (a.as_mut(), b) {
        // A checkout's saves and its HEAD move name the same 10 000 files:
        // one walk through both sets, not 10 000 lookups.
        (Some(set), Some(more)) if more.is_subset(set) => Vec::new(),
        (Some(set), Some(more)) => more.into_iter().filter(|f| set.insert(f.clone())).collect(),
        (Some(_), None) => {
            *a = None;
            Vec::new()
        }
        (None, _) => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    Queued,
    /// Waiting to retry after a transient failure.
    RetryWait,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub id: JobId,
    pub task: String,
    pub key: String,
    pub priority: Priority,
    pub score: i32,
    pub why: Option<String>,
    pub files: Files,
    pub trigger: Trigger,
    pub attempt: u32,
    pub enqueued: Millis,
    pub not_before: Millis,
    pub kind: WaitKind,
    /// Re-queued by crash recovery; interrupted again, it is not re-run.
    pub recovered: bool,
}

/// A request for work.
#[derive(Debug, Clone)]
pub struct Offer {
    pub task: String,
    pub key: String,
    pub priority: Priority,
    pub score: i32,
    pub why: Option<String>,
    pub files: Files,
    pub trigger: Trigger,
    /// Debounce window (0: none).
    pub debounce: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A new waiting job.
    Queued(JobId),
    /// Merged into a waiting job.
    Merged(JobId),
    /// Queued behind a running job of the same key.
    RerunAfter(JobId),
    /// Dropped because the queue is full.
    Dropped(JobId),
}

impl Admission {
    pub fn job_id(self) -> JobId {
        match self {
            Admission::Queued(id)
            | Admission::Merged(id)
            | Admission::RerunAfter(id)
            | Admission::Dropped(id) => id,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Admission::Queued(_) => "queued",
            Admission::Merged(_) => "merged",
            Admission::RerunAfter(_) => "rerun_after",
            Admission::Dropped(_) => "dropped",
        }
    }
}

/// How a finished job ends in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    Done,
    /// Failed for good (permanent failure, or a newer trigger superseded
    /// its retry).
    Failed,
    /// Retries exhausted.
    Dead,
    /// `bgtask cancel`.
    Cancelled,
}

/// A waiting job without its file set: what [`Effect::Update`] carries, so
/// a trigger storm does not copy (and write) a growing file set each time.
#[derive(Debug, Clone, PartialEq)]
pub struct JobHead {
    pub id: JobId,
    pub priority: Priority,
    pub score: i32,
    pub why: Option<String>,
    /// The job covers the whole project (its file set was absorbed).
    pub project: bool,
    pub trigger: Trigger,
    pub attempt: u32,
    pub not_before: Millis,
    pub kind: WaitKind,
    pub recovered: bool,
    /// Whether this update changed what a front end shows of the job (see
    /// [`Shown`]); a merge that only took in another trigger's time did
    /// not. Told to subscribers, not persisted.
    pub shown_changed: bool,
}

/// What `bgtask queue` and the dashboard show of a waiting job, as of a
/// time: its score and priority with why, how many files (or the whole
/// project), whether it waits to retry (and which attempt), and whether a
/// debounce still holds it. A debounce deadline pushed further out is not
/// a change: only its countdown moves (a burst of saves is one update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shown {
    score: i32,
    priority: Priority,
    why: Option<String>,
    files: Option<usize>,
    kind: WaitKind,
    attempt: u32,
    debouncing: bool,
}

impl Shown {
    pub(super) fn of(w: &Waiting, now: Millis) -> Shown {
        Shown {
            score: w.score,
            priority: w.priority,
            why: w.why.clone(),
            files: w.files.as_ref().map(BTreeSet::len),
            kind: w.kind,
            attempt: w.attempt,
            debouncing: w.not_before > now,
        }
    }
}

impl Waiting {
    /// Its head, as an update that changed what is shown.
    pub fn head(&self) -> JobHead {
        JobHead {
            id: self.id,
            priority: self.priority,
            score: self.score,
            why: self.why.clone(),
            project: self.files.is_none(),
            trigger: self.trigger.clone(),
            attempt: self.attempt,
            not_before: self.not_before,
            kind: self.kind,
            recovered: self.recovered,
            shown_changed: true,
        }
    }

    /// Takes over an update's fields.
    pub fn apply(&mut self, h: &JobHead) {
        self.priority = h.priority;
        self.score = h.score;
        self.why.clone_from(&h.why);
        if h.project {
            self.files = None;
        }
        self.trigger = h.trigger.clone();
        self.attempt = h.attempt;
        self.not_before = h.not_before;
        self.kind = h.kind;
        self.recovered = h.recovered;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new waiting job (also a dropped newcomer's record, see `Drop`).
    Insert(Waiting),
    /// A waiting job changed (merge, debounce, retry wait); when it became
    /// project-wide its file rows go.
    Update(JobHead),
    /// Files merged into a waiting job.
    AddFiles { id: JobId, files: Vec<PathBuf> },
    /// A job was dropped: the queue was full.
    Drop {
        id: JobId,
        task: String,
        reason: String,
    },
    Finish {
        id: JobId,
        state: FinalState,
        note: Option<String>,
    },
    /// A trigger entered the intake (see `intake.rs`).
    Arrived {
        id: super::intake::IntakeId,
        arrival: Box<crate::event::Arrival>,
    },
    /// Intake triggers turned into jobs (or into nothing): forget them.
    Consumed(Vec<super::intake::IntakeId>),
    /// Automation was paused (or paused again with another reason), or
    /// resumed (`None`); see `pause.rs`.
    Automation(Option<super::Pause>),
}

/// How a run ended, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    Succeeded,
    Failed { permanent: bool, error: String },
}

/// The effects of a merge into waiting job `w`: its new fields (and
/// whether what is shown of it changed), and the files it gained.
pub(super) fn merged(w: &Waiting, added: Vec<PathBuf>, shown_changed: bool) -> Vec<Effect> {
    let mut effects = vec![Effect::Update(JobHead {
        shown_changed,
        ..w.head()
    })];
    if !added.is_empty() {
        effects.push(Effect::AddFiles {
            id: w.id,
            files: added,
        });
    }
    effects
}
