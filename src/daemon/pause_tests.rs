//! Automation paused by hand, in the core loop under tokio's paused clock
//! (the harness of `loop_tests.rs`): a paused core holds what saves,
//! schedules, idle spells and the start queue, runs what is asked for,
//! does not wake for what it holds, and lets it all start on resume; a
//! pause saved before a restart holds the next start's work.

use std::sync::Arc;
use std::time::Duration;

use super::loop_tests::{Harness, TRIGGERED, start_with, with_sources};
use crate::ipc::events::What;
use crate::ipc::{AutomationState, Request, Response};
use crate::schedule::{Effect, Pause};
use crate::store::Store;

impl Harness {
    async fn automation(&self, request: Request) -> AutomationState {
        match self.ask(request).await {
            Response::Automation(a) => a,
            other => panic!("{other:?}"),
        }
    }

    async fn status_automation(&self) -> Option<AutomationState> {
        match self.ask(Request::Status).await {
            Response::Status(s) => s.automation,
            other => panic!("{other:?}"),
        }
    }

    /// Each waiting job's task, state and why it is held.
    async fn queue(&self) -> Vec<(String, String, Option<String>)> {
        match self.ask(Request::Queue).await {
            Response::Queue { entries } => entries
                .into_iter()
                .map(|e| (e.task, e.state, e.held))
                .collect(),
            other => panic!("{other:?}"),
        }
    }
}

fn pause(reason: &str) -> Request {
    Request::Pause {
        reason: reason.to_owned(),
        by: Some("alice".to_owned()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_core_holds_automatic_work_runs_what_is_asked_and_resumes() {
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, with_sources);
    h.until_calls(1).await;
    let mut sub = h.events.subscribe(None, None);
    let paused = h.automation(pause(" big refactor ")).await;
    assert!(paused.paused && paused.held == 0, "{paused:?}");
    assert_eq!(paused.reason.as_deref(), Some("big refactor"));
    assert_eq!(paused.by.as_deref(), Some("alice"));
    let stored = h.query("SELECT value FROM meta WHERE key = 'automation_pause'");
    assert!(stored[0].contains("big refactor"), "{stored:?}");
    // A save is taken in, routed and queued as ever, but held.
    h.arrive(&["a.py"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let because = Some("automation paused by alice: big refactor".to_owned());
    assert_eq!(
        h.queue().await,
        [("lint".to_owned(), "held".to_owned(), because.clone())]
    );
    // Work asked for runs.
    h.submit("nightly", false).await;
    h.until_calls(2).await;
    assert_eq!(h.tasks_started(), ["boot", "nightly"]);
    // The idle spell and the cron time come: their jobs are held too, and
    // held jobs do not wake the loop.
    let (before, _) = h.turns().await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let (after, _) = h.turns().await;
    assert!(after - before <= 10, "{} turns", after - before);
    assert_eq!(
        h.tasks_started(),
        ["boot", "nightly"],
        "nothing automatic ran"
    );
    let held = h.status_automation().await.expect("paused");
    assert_eq!(
        held.held,
        3,
        "lint, quiet and nightly: {:?}",
        h.queue().await
    );
    // Resumed: each held job starts.
    let resumed = h.automation(Request::Resume).await;
    assert!(!resumed.paused && resumed.held == 3, "{resumed:?}");
    h.until_calls(5).await;
    let mut started = h.tasks_started();
    started.sort();
    assert_eq!(started, ["boot", "lint", "nightly", "nightly", "quiet"]);
    assert!(h.status_automation().await.is_none());
    assert!(
        h.query("SELECT value FROM meta WHERE key = 'automation_pause'")
            .is_empty()
    );
    let mut told = Vec::new();
    while let Ok(e) = sub.live.try_recv() {
        match &e.what {
            What::AutomationPaused { reason, held, .. } => {
                told.push(format!("paused {reason} {held}"));
            }
            What::AutomationResumed { held } => told.push(format!("resumed {held}")),
            _ => {}
        }
    }
    assert_eq!(told, ["paused big refactor 0", "resumed 3"]);
    h.stop.cancel();
}

/// The pause is in the store: the daemon that starts next is paused, and
/// its start task waits for `resume`.
#[tokio::test(start_paused = true)]
async fn a_pause_saved_before_a_restart_holds_the_start_task() {
    let saved = |root: &std::path::Path| {
        with_sources(root);
        let state = root.join(".bgtask");
        std::fs::create_dir_all(&state).unwrap();
        let mut store = Store::open(&state).unwrap().store;
        let pause = Pause {
            reason: "release freeze".to_owned(),
            by: None,
            since: 1_700_000_000_000,
        };
        store.apply(&[Effect::Automation(Some(pause))], 0).unwrap();
    };
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, saved);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(h.tasks_started().is_empty(), "the start task is held");
    let a = h.status_automation().await.expect("still paused");
    assert_eq!(a.reason.as_deref(), Some("release freeze"));
    assert_eq!((a.since_ms, a.held), (Some(1_700_000_000_000), 1));
    h.automation(Request::Resume).await;
    h.until_calls(1).await;
    assert_eq!(h.tasks_started(), ["boot"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_reason_too_long_is_refused_and_changes_nothing() {
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, with_sources);
    let long = "x".repeat(1001);
    let r = h.ask(pause(&long)).await;
    assert!(
        matches!(&r, Response::Error(e) if e.message.contains("over 1000 characters")),
        "{r:?}"
    );
    assert!(h.status_automation().await.is_none());
    let not_paused = h.automation(Request::Resume).await;
    assert!(!not_paused.paused && not_paused.held == 0);
    h.stop.cancel();
}
