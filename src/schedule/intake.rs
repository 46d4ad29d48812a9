//! The intake: triggers from git hooks and the watcher wait here until the
//! worktree is quiet, then leave together as one batch. Pure logic, no
//! I/O, no clock (time and git's state are parameters).
//!
//! Why a second stage at all: one `git checkout` of 10 000 files is about
//! 40 000 kernel events spread over seconds, and a per-file debounce still
//! lets dozens of batches through (watchexec ran its command 10–65 times).
//! So:
//! - every arrival pushes the batch's quiet deadline out (a save by the
//!   configured debounce), capped at [`Window::cap`] after the first
//!   arrival, so a tree that never stops changing still gets analysed;
//! - HEAD moving, or git letting go of the index, waits [`Window::git`]
//!   for the hook that follows when hooks deliver here; the hook itself
//!   ends that wait (git is done when it runs its `post-*` hook), and what
//!   is left is [`Window::settle`] for the last writes — only
//!   [`Window::after_head`] once HEAD has moved: git writes the tree and
//!   the index before it moves HEAD, and the watcher hands on the HEAD
//!   move after every file event that came before it, so nothing of that
//!   step is still to come (within a rebase or another multi-step
//!   operation, the next step may be: the settle stays);
//! - while git holds `index.lock` (a checkout, commit or merge writing the
//!   tree) the batch is held, as watchman does — up to [`Window::hold_cap`],
//!   in case a crashed git left the lock behind;
//! - commits made during a rebase, cherry-pick, revert or merge are held
//!   until the operation ends (its marker files are gone) or its closing
//!   hook arrives (`post-rewrite`, `post-merge`): a rebase of five commits
//!   is one run, not five.

use crate::event::Arrival;

use crate::clock::Millis;

pub type IntakeId = i64;

/// Hooks that close a multi-commit operation.
const CLOSING_HOOKS: &[&str] = &["post-rewrite", "post-merge"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Quiet time after a save (`triggers.file_watch.debounce`).
    pub save: Millis,
    /// How long a HEAD move (or the end of a lock) waits for its hook.
    pub git: Millis,
    /// Quiet time once git is done (its hook came, or no hook will).
    pub settle: Millis,
    /// Quiet time once git is done and HEAD has moved.
    pub after_head: Millis,
    /// Hooks deliver git's events here (else none will come).
    pub hooks: bool,
    /// Longest a batch waits for quiet, from its first arrival.
    pub cap: Millis,
    /// Longest a batch is held while git holds `index.lock`.
    pub hold_cap: Millis,
    /// Longest commits wait for an operation (a paused rebase) to end.
    pub operation_cap: Millis,
}

impl Window {
    pub fn for_debounce(debounce: Millis) -> Window {
        Window {
            save: debounce,
            git: 300,
            settle: debounce.min(300),
            after_head: debounce.min(AFTER_HEAD),
            hooks: true,
            cap: (debounce * 3).max(5_000),
            hold_cap: 30_000,
            operation_cap: 3_600_000,
        }
    }
}

/// What git is doing now, as the caller sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitState {
    pub index_locked: bool,
    pub operation_in_progress: bool,
    /// git wrote the index a moment ago: it let go of its lock, and HEAD
    /// and the hook are about to follow.
    pub index_just_written: bool,
}

/// The quiet time after a HEAD move: long enough for the watcher's next
/// hand-on (the saves it collected with the move) to come in.
const AFTER_HEAD: Millis = 2;

/// How often a held batch looks at git's state again.
const HOLD_POLL: Millis = 10;
const OPERATION_POLL: Millis = 500;

#[derive(Debug)]
pub struct Intake {
    pending: Vec<(IntakeId, Arrival)>,
    first: Millis,
    /// Quiet for saves and settling, and the wait for a hook.
    quiet_until: Millis,
    hook_until: Millis,
    /// A hook came in this batch: git is done.
    hooked: bool,
    /// The last hook may have another behind it in the same git command.
    hook_follows: bool,
    /// When HEAD last moved in this batch since git last held the index
    /// (a move before a lock is the step before).
    head_moved: Option<Millis>,
    next_id: IntakeId,
    window: Window,
    /// Set while a held batch waits on git: when to look again.
    recheck: Option<Millis>,
    /// The batch was held for `index.lock`: when the lock goes, the batch
    /// waits one git window more (the operation's hook comes right after
    /// git lets go of the index) and its cap starts again.
    was_locked: bool,
}

impl Intake {
    pub fn new(next_id: IntakeId, window: Window) -> Intake {
        Intake {
            pending: Vec::new(),
            first: 0,
            quiet_until: 0,
            hook_until: 0,
            hooked: false,
            hook_follows: false,
            head_moved: None,
            next_id,
            window,
            recheck: None,
            was_locked: false,
        }
    }

    pub fn set_window(&mut self, window: Window) {
        self.window = window;
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes an arrival; returns the id to persist it under.
    pub fn add(&mut self, arrival: Arrival, now: Millis) -> IntakeId {
        let id = self.next_id;
        self.restore(id, arrival, now);
        id
    }

    /// Puts back an arrival saved before a restart.
    pub fn restore(&mut self, id: IntakeId, arrival: Arrival, now: Millis) {
        self.next_id = self.next_id.max(id + 1);
        if self.pending.is_empty() {
            self.fresh(now);
        }
        match &arrival {
            Arrival::Saved { .. } => self.quiet_for(now + self.window.save),
            Arrival::Hook(h) => {
                // Hooks evidently deliver here (installed since start).
                self.window.hooks = true;
                self.hooked = true;
                self.hook_until = now;
                // An amend runs `post-rewrite` right after `post-commit`.
                self.hook_follows = h.hook == "post-commit";
                if self.head_moved.is_some() && !self.hook_follows {
                    self.quiet_for(now + self.window.after_head);
                } else {
                    self.quiet_for(now + self.window.settle);
                }
            }
            Arrival::HeadMoved { .. } => {
                self.head_moved = Some(now);
                if self.window.hooks && !self.hooked {
                    self.hook_until = self.hook_until.max(now + self.window.git);
                }
                if self.hook_follows {
                    self.quiet_for(now + self.window.after_head);
                } else {
                    // What is pending came before the move: git is done
                    // with it (a save after the move gets its own debounce).
                    self.quiet_until = now + self.window.after_head;
                }
            }
        }
        self.pending.push((id, arrival));
    }

    /// A batch starts (or starts over) at `now`.
    fn fresh(&mut self, now: Millis) {
        self.first = now;
        self.quiet_until = now;
        self.hook_until = now;
        self.hooked = false;
        self.hook_follows = false;
        self.head_moved = None;
    }

    fn quiet_for(&mut self, until: Millis) {
        self.quiet_until = self.quiet_until.max(until);
    }

    /// Git let go of the index: HEAD's move and its hook follow, unless
    /// the hook came already or none will.
    fn git_moved(&mut self, now: Millis) {
        if self.window.hooks && !self.hooked {
            self.hook_until = self.hook_until.max(now + self.window.git);
        }
        self.quiet_for(now + self.window.settle);
    }

    fn deadline(&self) -> Millis {
        self.quiet_until
            .max(self.hook_until)
            .min(self.first + self.window.cap)
    }

    /// When the caller should call [`Intake::take`] next.
    pub fn next_wakeup(&self) -> Option<Millis> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.recheck.unwrap_or_else(|| self.deadline()))
    }

    /// Commits made inside an operation, with nothing yet closing it.
    fn waits_for_operation(&self) -> bool {
        let mut inside = false;
        for (_, a) in &self.pending {
            if let Arrival::Hook(h) = a {
                if CLOSING_HOOKS.contains(&h.hook.as_str()) {
                    return false;
                }
                inside |= h.operation.is_some();
            }
        }
        inside
    }

    /// The batch, once it is due and git is not in the way.
    pub fn take(&mut self, now: Millis, git: GitState) -> Option<Vec<(IntakeId, Arrival)>> {
        if self.pending.is_empty() || now < self.deadline() {
            // Not due (new arrivals moved the deadline): no earlier look.
            self.recheck = None;
            return None;
        }
        let age = now - self.first;
        if git.index_locked && age < self.window.hold_cap {
            self.was_locked = true;
            self.head_moved = None;
            self.recheck = Some(now + HOLD_POLL);
            return None;
        }
        // Git let go of the index just before the batch came due (a
        // checkout whose index took about a debounce to write): as if the
        // batch had seen the lock.
        if git.index_just_written && age < self.window.cap {
            self.was_locked = true;
        }
        // HEAD moved since: that step of git is done, and the deadline
        // already counts from the move.
        if std::mem::take(&mut self.was_locked) && !git.index_locked && self.head_moved.is_none() {
            self.first = now;
            self.git_moved(now);
            self.recheck = None;
            return None;
        }
        if let Some(moved) = self.head_moved
            && git.operation_in_progress
            && now < moved + self.window.settle
        {
            // A step of a rebase (or a cherry-pick sequence): the next one
            // may follow, as with any other HEAD move before.
            self.quiet_for(moved + self.window.settle);
            self.recheck = None;
            return None;
        }
        if git.operation_in_progress
            && self.waits_for_operation()
            && age < self.window.operation_cap
        {
            // The operation's commits wait; the rest (saves while resolving
            // a conflict, say) need not.
            self.recheck = Some(now + OPERATION_POLL);
            let (held, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|(_, a)| matches!(a, Arrival::Hook(h) if h.operation.is_some()));
            self.pending = held;
            if rest.is_empty() {
                return None;
            }
            // What arrives next gets a quiet window of its own.
            self.fresh(now);
            return Some(rest);
        }
        self.recheck = None;
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
