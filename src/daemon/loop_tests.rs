//! The core loop's timing under tokio's paused clock: retry backoff,
//! a newer trigger superseding a pending retry, and debounce. Jobs are run
//! by a scripted executor (the real engine is covered by the integration
//! tests); the store is a real SQLite file. Its harness serves the other
//! loop tests too (`pause_tests.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::Command;
use super::core::{Core, CoreParts};
use super::execute::{Execute, JobRun};
use crate::analyze::RunStatus;
use crate::config::raw::Category;
use crate::engine::Workspace;
use crate::event::{AnalyzerRun, TriggerSource};
use crate::ipc::{Request, Response, Submit};
use crate::report::Report;
use crate::schedule::Backoff;
use crate::state::Paths;
use crate::store::Store;

const SEED: u64 = 7;

/// The simulated wall clock's start: 2027-01-15T08:00:01Z.
const START_WALL_MS: i64 = 1_800_000_001_000;

/// One started job: when (virtual time) and which attempt of which task.
type Calls = Arc<Mutex<Vec<(Instant, String)>>>;

pub(super) struct Harness {
    _dir: tempfile::TempDir,
    tx: mpsc::UnboundedSender<Command>,
    calls: Calls,
    pub(super) stop: CancellationToken,
    root: std::path::PathBuf,
    /// The core's event bus, to subscribe to.
    pub(super) events: super::events::Events,
    /// The loop's task: it ends once the loop has wound down.
    done: tokio::task::JoinHandle<()>,
}

/// A job's report: its one analyzer failed (transiently) or passed, as
/// `fails` says for this call.
fn scripted(calls: Calls, fails: Fails, gate: Option<Arc<Notify>>) -> Execute {
    Arc::new(move |run: JobRun| {
        let calls = calls.clone();
        let fails = fails.clone();
        let gate = gate.clone();
        Box::pin(async move {
            let task = run.job.tasks[0].clone();
            let n = {
                let mut c = calls.lock().unwrap();
                c.push((Instant::now(), task.clone()));
                c.len()
            };
            if let Some(gate) = gate {
                // Ignores cancellation, like a tool that finishes anyway.
                gate.notified().await;
            }
            let status = if fails(n) {
                RunStatus::ToolError
            } else {
                RunStatus::Clean
            };
            let analyzer = run.config.tasks[&task].analyzers[0].clone();
            let r = AnalyzerRun::skipped(
                &analyzer,
                Category::Custom,
                vec![task],
                status,
                "scripted".to_owned(),
            );
            let policy = crate::report::policy(&run.config, None, false, Vec::new());
            Some(Report::new(
                String::new(),
                SystemTime::now(),
                Duration::ZERO,
                None,
                policy,
                vec![r],
            ))
        })
    })
}

pub(super) type Fails = Arc<dyn Fn(usize) -> bool + Send + Sync>;

fn start(config: &str, fails: Fails) -> Harness {
    start_gated(config, fails, None)
}

fn start_gated(config: &str, fails: Fails, gate: Option<Arc<Notify>>) -> Harness {
    start_with(config, fails, gate, |_| {})
}

pub(super) fn start_with(
    config: &str,
    fails: Fails,
    gate: Option<Arc<Notify>>,
    prepare: impl FnOnce(&std::path::Path),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::write(root.join(crate::config::CONFIG_FILE), config).unwrap();
    prepare(&root);
    let config = crate::config::load(&root).unwrap();
    let state = root.join(".bgtask");
    let paths = Paths {
        dir: root.clone(),
        lock: root.join("lock"),
        pid: root.join("pid"),
        socket: root.join("sock"),
        log: state.join("daemon.log"),
        run_logs: state.join("runs"),
        spool: state.join("spool.jsonl"),
        state: state.clone(),
    };
    std::fs::create_dir_all(&state).unwrap();
    let store = Store::open(&state).unwrap().store;
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let calls: Calls = Arc::default();
    let events = super::events::Events::new(0);
    let mut core = Core::new(CoreParts {
        trust_bypass: true,
        store,
        projects: crate::config::Projects::single(config),
        workspace: Workspace {
            root: root.clone(),
            canonical_root: root.clone(),
            git: false,
        },
        paths,
        workers_override: Some(1),
        tx: tx.clone(),
        stopping: stop.clone(),
        execute: scripted(calls.clone(), fails, gate),
        rng: fastrand::Rng::with_seed(SEED),
        notifier: crate::notifier::Notifier::disabled(),
        events: events.clone(),
    })
    .unwrap();
    // Cron times follow the paused clock too, from a fixed wall time one
    // second past a ten-minute boundary (so `*/10` first fires 599 s in).
    core.simulate_clock(START_WALL_MS);
    let done = tokio::spawn(core.run(rx, stop.clone()));
    Harness {
        _dir: dir,
        tx,
        calls,
        stop,
        root,
        events,
        done,
    }
}

impl Harness {
    pub(super) async fn ask(&self, request: Request) -> Response {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Request { request, reply }).unwrap();
        rx.await.unwrap()
    }

    pub(super) async fn submit(&self, task: &str, debounce: bool) {
        let r = self
            .ask(Request::Submit(Submit {
                tasks: vec![task.to_owned()],
                files: None,
                priority: None,
                source: TriggerSource::Manual {
                    command: "test".to_owned(),
                },
                debounce,
            }))
            .await;
        assert!(matches!(r, Response::Submitted { .. }), "{r:?}");
    }

    /// Advances virtual time until `n` jobs have started.
    pub(super) async fn until_calls(&self, n: usize) {
        for _ in 0..100_000 {
            if self.calls.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("only {} calls", self.calls.lock().unwrap().len());
    }

    fn starts(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    pub(super) fn query(&self, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.root.join(".bgtask/state.db")).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
            .map(|v| match v.unwrap() {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn job_states(&self) -> Vec<String> {
        self.query("SELECT state || ' ' || attempt FROM jobs ORDER BY id")
    }
}

const CONFIG: &str = r#"{
  "execution": {"max_retries": 4, "retry_delay": "5s"},
  "daemon": {"health_interval": null, "cleanup_interval": null, "max_rss_mb": 100000},
  "triggers": {"file_watch": {"debounce": "2s"}},
  "tasks": {"t": {"analyzers": ["x"]}},
  "analyzers": {"x": {"command": "true", "mode": "project", "parser": "exit-code"}}
}"#;

#[tokio::test(start_paused = true)]
async fn retries_wait_exactly_the_full_jitter_backoff() {
    let h = start(CONFIG, Arc::new(|_| true));
    let t0 = Instant::now();
    h.submit("t", false).await;
    h.until_calls(5).await;
    // Let the last failure be recorded.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let starts = h.starts();
    assert_eq!(starts.len(), 5, "one run and four retries, no more");
    assert!(
        starts[0] - t0 < Duration::from_millis(5),
        "the first run is at once"
    );
    let backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(600),
    };
    let mut rng = fastrand::Rng::with_seed(SEED);
    for attempt in 0..4 {
        let want = backoff.delay(attempt, &mut rng);
        let got = starts[attempt as usize + 1] - starts[attempt as usize];
        let diff = got.abs_diff(want);
        assert!(
            diff <= Duration::from_millis(2),
            "retry {}: waited {got:?}, the backoff drew {want:?}",
            attempt + 1
        );
        assert!(got <= backoff.ceiling(attempt) + Duration::from_millis(2));
    }
    assert_eq!(h.job_states(), ["dead 4"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_newer_trigger_supersedes_the_pending_retry() {
    let config = CONFIG.replace(r#""retry_delay": "5s""#, r#""retry_delay": "10m""#);
    let h = start(&config, Arc::new(|n| n == 1));
    h.submit("t", false).await;
    h.until_calls(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = Instant::now();
    h.submit("t", false).await;
    h.until_calls(2).await;
    let starts = h.starts();
    assert!(
        starts[1] - before < Duration::from_millis(200),
        "the new trigger ran at once, not after the retry's backoff"
    );
    // Long past any backoff: the superseded retry never runs.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.starts().len(), 2);
    // The trigger took over the waiting retry: one job, two runs.
    assert_eq!(h.job_states(), ["done 0"]);
    assert_eq!(h.query("SELECT count(*) FROM runs"), ["2"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn saves_are_debounced_into_one_run() {
    let h = start(CONFIG, Arc::new(|_| false));
    let t0 = Instant::now();
    for _ in 0..5 {
        h.submit("t", true).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = Instant::now() - Duration::from_millis(500);
    h.until_calls(1).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let starts = h.starts();
    assert_eq!(starts.len(), 1, "five saves, one run");
    let after_last = starts[0] - last;
    assert!(
        after_last >= Duration::from_millis(1990) && after_last <= Duration::from_millis(2100),
        "the run starts one debounce window after the last save: {after_last:?} (first save {:?} before)",
        starts[0] - t0
    );
    assert_eq!(h.job_states(), ["done 0"]);
    h.stop.cancel();
}

/// RELIABILITY 20: a run that completes while the daemon is stopping is
/// recorded as it ended, not as interrupted (and does not run again).
#[tokio::test(start_paused = true)]
async fn a_run_that_completes_during_shutdown_counts() {
    let gate = Arc::new(Notify::new());
    let mut h = start_gated(CONFIG, Arc::new(|_| false), Some(gate.clone()));
    h.submit("t", false).await;
    h.until_calls(1).await;
    h.stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.notify_one();
    (&mut h.done).await.unwrap();
    assert_eq!(h.job_states(), ["done 0"]);
    assert_eq!(h.query("SELECT verdict FROM runs"), ["no findings"]);
}

pub(super) const TRIGGERED: &str = r#"{
  "daemon": {"health_interval": null, "cleanup_interval": null, "max_rss_mb": 100000},
  "triggers": {"file_watch": {"enabled": false, "debounce": "100ms"}, "scheduled": {"idle_cooldown": "10m"}},
  "tasks": {
    "lint": {"analyzers": ["x"], "triggers": ["save"]},
    "nightly": {"analyzers": ["x"], "triggers": ["schedule"], "schedule": "*/10 * * * *"},
    "quiet": {"analyzers": ["x"], "triggers": ["idle"], "idle_minutes": 1},
    "boot": {"analyzers": ["x"], "triggers": ["start"]}
  },
  "analyzers": {"x": {"command": "true", "mode": "project", "files": ["*.py"], "parser": "exit-code"}}
}"#;

impl Harness {
    pub(super) fn arrive(&self, files: &[&str]) {
        self.tx
            .send(Command::Arrived(
                crate::event::Arrival::Saved {
                    files: files.iter().map(std::path::PathBuf::from).collect(),
                    rescan: false,
                    not_files: None,
                },
                tokio::time::Instant::now().into_std(),
            ))
            .unwrap();
    }

    pub(super) fn tasks_started(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect()
    }
}

pub(super) fn with_sources(root: &std::path::Path) {
    for f in ["a.py", "b.py"] {
        std::fs::write(root.join(f), "x = 1\n").unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_saves_is_one_run_after_the_quiet_window() {
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, with_sources);
    h.until_calls(1).await;
    assert_eq!(
        h.tasks_started(),
        ["boot"],
        "the start task runs once at start"
    );
    let mut last = Instant::now();
    for i in 0..50 {
        h.arrive(&[
            if i % 2 == 0 { "a.py" } else { "b.py" },
            "README.md",
            "gone.py",
        ]);
        last = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.until_calls(2).await;
    let started = h.starts()[1] - last;
    assert!(
        started >= Duration::from_millis(99) && started < Duration::from_millis(150),
        "{started:?} after the last save"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.tasks_started(), ["boot", "lint"]);
    assert_eq!(
        h.query("SELECT CAST(path AS TEXT) FROM job_files ORDER BY path"),
        ["a.py", "b.py", "gone.py"],
        "the job got the saved files its analyzers read, not README.md; a deleted one too (its findings end)"
    );
    assert_eq!(h.query("SELECT count(*) FROM intake"), ["0"]);
    h.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn cron_fires_at_its_times_and_idle_once_after_activity() {
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, with_sources);
    h.until_calls(1).await;
    // Some activity: a save of a file no task reads still counts.
    h.arrive(&["README.md"]);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(
        h.tasks_started(),
        ["boot", "quiet"],
        "idle after a minute of quiet"
    );
    // Ten minutes on: the cron time has come once; idle has not run again.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.tasks_started(), ["boot", "quiet", "nightly"]);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.tasks_started(), ["boot", "quiet", "nightly", "nightly"]);
    // New activity within the idle cooldown: idle waits for the cooldown.
    h.arrive(&["README.md"]);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(
        h.tasks_started().iter().filter(|t| *t == "quiet").count(),
        2
    );
    h.stop.cancel();
}

impl Harness {
    /// Turns of the loop so far, and what holds jobs back.
    pub(super) async fn turns(&self) -> (u64, Option<String>) {
        match self.ask(Request::Status).await {
            Response::Status(s) => (s.loop_turns, s.holding),
            other => panic!("{other:?}"),
        }
    }
}

/// Jobs waiting for a busy worker cost nothing: the loop sleeps until the
/// job ends (no polling while the queue is full).
#[tokio::test(start_paused = true)]
async fn waiting_for_a_busy_worker_does_not_wake_the_loop() {
    let gate = Arc::new(Notify::new());
    let config = CONFIG.replace(
        r#""tasks": {"t": {"analyzers": ["x"]}}"#,
        r#""tasks": {"t": {"analyzers": ["x"]}, "u": {"analyzers": ["x"]}, "v": {"analyzers": ["x"]}}"#,
    );
    let h = start_gated(&config, Arc::new(|_| false), Some(gate.clone()));
    h.submit("t", false).await;
    h.until_calls(1).await;
    h.submit("u", false).await;
    h.submit("v", false).await;
    let (before, _) = h.turns().await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let (after, _) = h.turns().await;
    // A few turns: the `status` ask, the spool's second look 5 s after
    // the start; polling would be thousands.
    assert!(
        after - before <= 5,
        "the loop turned {} times in 10 minutes of waiting",
        after - before
    );
    assert_eq!(h.calls.lock().unwrap().len(), 1, "one worker, still busy");
    gate.notify_one();
    h.until_calls(2).await;
    h.stop.cancel();
    gate.notify_waiters();
}

/// Jobs held back by the daemon's memory threshold are looked at again
/// every 2 s, not in a busy loop, and none starts.
#[tokio::test(start_paused = true)]
async fn holding_jobs_back_looks_again_every_two_seconds() {
    let config = CONFIG.replace(r#""max_rss_mb": 100000"#, r#""max_rss_mb": 1"#);
    let h = start(&config, Arc::new(|_| false));
    h.submit("t", false).await;
    let (before, holding) = h.turns().await;
    assert!(
        holding.is_some_and(|why| why.contains("over daemon.max_rss_mb 1")),
        "held back"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (after, _) = h.turns().await;
    let turns = after - before;
    assert!(
        (25..=35).contains(&turns),
        "{turns} turns in 60 s: one every 2 s"
    );
    assert!(h.calls.lock().unwrap().is_empty(), "nothing started");
    h.stop.cancel();
}

/// `activity` (an editor that has not saved yet) counts like a save: the
/// idle task waits a whole quiet spell after it.
#[tokio::test(start_paused = true)]
async fn activity_puts_off_the_idle_task() {
    let h = start_with(TRIGGERED, Arc::new(|_| false), None, with_sources);
    h.until_calls(1).await;
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert!(matches!(h.ask(Request::Activity).await, Response::Accepted));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(h.tasks_started(), ["boot"], "80 s on, 30 s after activity");
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(h.tasks_started(), ["boot", "quiet"], "a minute after it");
    h.stop.cancel();
}

/// A job waiting behind a running one of its task takes in triggers: an
/// identical one is not told to subscribers (a submit storm is not an
/// event storm), one that raises its priority is.
#[tokio::test(start_paused = true)]
async fn only_a_trigger_that_changes_a_waiting_job_is_told() {
    use crate::ipc::events::What;
    let gate = Arc::new(Notify::new());
    let h = start_gated(CONFIG, Arc::new(|_| false), Some(gate.clone()));
    h.submit("t", false).await;
    h.until_calls(1).await;
    let mut sub = h.events.subscribe(None, None);
    let mut told = || {
        let mut kinds = Vec::new();
        while let Ok(e) = sub.live.try_recv() {
            match &e.what {
                What::JobQueued { job_id, .. } => kinds.push(format!("queued {job_id}")),
                What::JobUpdated { job_id, .. } => kinds.push(format!("updated {job_id}")),
                _ => {}
            }
        }
        kinds
    };
    h.submit("t", false).await;
    assert_eq!(told(), ["queued 2"], "behind the running job");
    for _ in 0..3 {
        h.submit("t", false).await;
    }
    assert!(told().is_empty(), "the same trigger again changes nothing");
    let raised = h
        .ask(Request::Submit(Submit {
            tasks: vec!["t".to_owned()],
            files: None,
            priority: Some(crate::config::Priority::High),
            source: TriggerSource::Manual {
                command: "test".to_owned(),
            },
            debounce: false,
        }))
        .await;
    assert!(matches!(raised, Response::Submitted { .. }), "{raised:?}");
    assert_eq!(told(), ["updated 2"], "a higher priority is shown");
    h.stop.cancel();
    gate.notify_waiters();
}
