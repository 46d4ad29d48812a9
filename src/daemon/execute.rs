//! How the core runs a job, and the clock it schedules by.
//!
//! A job is a future that ends in a report: by default the engine, running
//! real analyzers as subprocesses. The core needs nothing more, which is
//! what lets the scheduler loop's timing (debounce, backoff, supersede) be
//! tested under tokio's paused clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{self, RunOptions, Workspace};
use crate::event::Job;
use crate::report::{self, Report};
use crate::schedule::Millis;
use crate::store::now_ms;

/// Everything one run of a job needs.
pub struct JobRun {
    pub config: Arc<Config>,
    pub workspace: Workspace,
    pub job: Job,
    pub options: RunOptions,
    pub cancel: CancellationToken,
}

/// Runs a job; `None` when it could not even be planned.
pub type Execute =
    Arc<dyn Fn(JobRun) -> Pin<Box<dyn Future<Output = Option<Report>> + Send>> + Send + Sync>;

/// The real thing: the engine.
pub fn engine() -> Execute {
    Arc::new(|run: JobRun| {
        Box::pin(async move {
            let started = SystemTime::now();
            let (progress, _ignored) = mpsc::unbounded_channel();
            let outcome = engine::run(
                run.config.clone(),
                &run.workspace,
                &run.job,
                run.options,
                progress,
                run.cancel,
            )
            .await;
            outcome.ok().map(|o| {
                let policy = report::policy(&run.config, None, false, Vec::new());
                Report::new(
                    run.workspace.root.display().to_string(),
                    started,
                    o.duration,
                    None,
                    policy,
                    o.runs,
                )
            })
        })
    })
}

/// Debounce and backoff deadlines run on the monotonic clock (a wall clock
/// jump neither fires nor stalls them), anchored to the wall clock at start
/// so the times stored read as wall times across restarts.
///
/// Cron times are wall-clock times: [`Clock::wall`] reads the real wall
/// clock, except in a simulated clock (tests under tokio's paused clock),
/// where it is the monotonic time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ms: Millis,
    start: tokio::time::Instant,
    simulated: bool,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall_ms: now_ms(),
            start: tokio::time::Instant::now(),
            simulated: false,
        }
    }

    /// A clock whose wall time moves only with tokio's (paused) time.
    #[cfg(test)]
    pub fn simulated(wall_ms: Millis) -> Clock {
        Clock {
            wall_ms,
            start: tokio::time::Instant::now(),
            simulated: true,
        }
    }

    /// The wall clock, for cron times.
    pub fn wall(&self) -> Millis {
        if self.simulated { self.now() } else { now_ms() }
    }

    /// The time of an instant that has passed (never later than now).
    pub fn at(&self, instant: std::time::Instant) -> Millis {
        let instant = tokio::time::Instant::from_std(instant);
        let since = instant.saturating_duration_since(self.start);
        (self.wall_ms + i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 2)).min(self.now())
    }

    /// How long until `at`, to the microsecond (`now` counts whole
    /// milliseconds; a deadline computed from it would wait up to one more).
    pub fn until(&self, at: Millis) -> std::time::Duration {
        let since_start = u64::try_from(at - self.wall_ms).unwrap_or(0);
        (self.start + std::time::Duration::from_millis(since_start))
            .saturating_duration_since(tokio::time::Instant::now())
    }

    pub fn now(&self) -> Millis {
        self.wall_ms + i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }
}
