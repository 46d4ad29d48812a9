//! Automation paused by hand, in the core: the `pause` and `resume`
//! requests, and what `status` and `queue` say of a pause. Which jobs wait
//! is the queue's rule (`schedule/pause.rs`); the pause is saved with the
//! queue's changes, so a daemon that restarts stays paused. Pausing and
//! resuming are told to subscribers and kept in the store's event log.

use super::Core;
use crate::ipc::events::What;
use crate::ipc::{AutomationState, ErrorKind, IpcError, Response};
use crate::schedule::Pause;

/// The longest reason (and name of who paused) taken, in characters.
const MAX_REASON: usize = 1000;

fn invalid(msg: String) -> Response {
    Response::Error(IpcError::new(ErrorKind::Invalid, msg))
}

/// `alice: big refactor`, `alice`, `big refactor` or nothing.
fn who_and_why(by: Option<&str>, reason: &str) -> String {
    match (by, reason.is_empty()) {
        (Some(by), false) => format!(" by {by}: {reason}"),
        (Some(by), true) => format!(" by {by}"),
        (None, false) => format!(": {reason}"),
        (None, true) => String::new(),
    }
}

impl Core {
    /// Pauses automation (again, with another reason, if it is paused).
    pub(super) fn pause_automation(&mut self, reason: &str, by: Option<&str>) -> Response {
        let reason = reason.trim();
        let by = by.map(str::trim).filter(|b| !b.is_empty());
        for (what, text) in [("reason", Some(reason)), ("name of who pauses", by)] {
            if text.is_some_and(|t| t.chars().count() > MAX_REASON) {
                return invalid(format!("the {what} is over {MAX_REASON} characters"));
            }
        }
        let effects = self.queue.pause(Pause {
            reason: reason.to_owned(),
            by: by.map(str::to_owned),
            since: self.clock.now(),
        });
        let saved = self.persist(&effects).on_disk();
        let held = self.queue.held();
        tracing::info!(reason, by, held, "automation paused");
        let msg = format!("automation paused{}", who_and_why(by, reason));
        let _ = self.persistence.store().event("info", "automation", &msg);
        self.publish(What::AutomationPaused {
            reason: reason.to_owned(),
            by: by.map(str::to_owned),
            held,
        });
        if !saved {
            return self.unsaved("paused");
        }
        Response::Automation(self.automation())
    }

    /// Resumes automation: the held jobs start at the loop's next turn.
    /// Resuming automation that is not paused changes nothing.
    pub(super) fn resume_automation(&mut self) -> Response {
        let Some((pause, held, effects)) = self.queue.resume() else {
            return Response::Automation(self.automation());
        };
        let saved = self.persist(&effects).on_disk();
        tracing::info!(held, paused_by = pause.by, "automation resumed");
        let msg = format!("automation resumed; {held} held job(s) may start");
        let _ = self.persistence.store().event("info", "automation", &msg);
        self.publish(What::AutomationResumed { held });
        if !saved {
            return self.unsaved("resumed");
        }
        Response::Automation(AutomationState {
            paused: false,
            reason: None,
            by: None,
            since_ms: None,
            held,
        })
    }

    /// The change is in force but only in memory: it is written with the
    /// next change the store takes.
    fn unsaved(&self, what: &str) -> Response {
        Response::Error(IpcError::new(
            ErrorKind::Degraded,
            format!(
                "automation is {what}, but that could not be saved yet ({}); it is written once the store can be, and a daemon stopped before then would not remember it",
                self.persistence.degraded().unwrap_or("the store failed")
            ),
        ))
    }

    /// Whether automation is paused, why, since when and by whom, and how
    /// many jobs wait for it.
    pub(super) fn automation(&self) -> AutomationState {
        match self.queue.paused() {
            Some(p) => AutomationState {
                paused: true,
                reason: Some(p.reason.clone()),
                by: p.by.clone(),
                since_ms: Some(p.since),
                held: self.queue.held(),
            },
            None => AutomationState {
                paused: false,
                reason: None,
                by: None,
                since_ms: None,
                held: 0,
            },
        }
    }

    /// What `status` says: the pause, while there is one.
    pub(super) fn automation_paused(&self) -> Option<AutomationState> {
        self.queue.paused().map(|_| self.automation())
    }

    /// Why a held job waits, for `queue`.
    pub(super) fn held_because(&self) -> Option<String> {
        let p = self.queue.paused()?;
        Some(format!(
            "automation paused{}",
            who_and_why(p.by.as_deref(), &p.reason)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::who_and_why;

    #[test]
    fn who_and_why_reads_well_with_either_missing() {
        let rows = [
            (Some("alice"), "refactor", " by alice: refactor"),
            (Some("alice"), "", " by alice"),
            (None, "refactor", ": refactor"),
            (None, "", ""),
        ];
        for (by, reason, want) in rows {
            assert_eq!(who_and_why(by, reason), want);
        }
    }
}
