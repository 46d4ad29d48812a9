//! `bgtask notify test` (and the dashboard's "Send a test"): one test
//! notification straight through a worktree's real channels, with no
//! daemon needed, and a plain answer per channel. Unlike the daemon it
//! ignores `min_severity` (the test event is only `info`) and sends email
//! directly instead of through the digest and the outbox, so the answer is
//! the server's own. Every attempt goes into the delivery log like any
//! other.

use std::path::Path;

use serde::Serialize;

use super::console::ConsoleSink;
use super::db::{Db, Delivery, NotifierDbError, Outcome};
use super::desktop::{Desktop, DesktopOutcome};
use super::event::NotificationEvent;
use super::file::JsonlLog;
use super::render::{self, Rendered};
use super::router::ChannelName;
use crate::config::{Config, Notifications};

/// What happened on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Delivered(String),
    /// Not enabled in the config; nothing tried.
    Off(String),
    Failed(String),
}

impl ProbeResult {
    /// `delivered`, `off` or `failed`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProbeResult::Delivered(_) => "delivered",
            ProbeResult::Off(_) => "off",
            ProbeResult::Failed(_) => "failed",
        }
    }

    /// What the channel said (or why it is off).
    pub fn detail(&self) -> &str {
        match self {
            ProbeResult::Delivered(d) | ProbeResult::Off(d) | ProbeResult::Failed(d) => d,
        }
    }
}

/// One channel's answer to a test, as JSON.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TestResult {
    pub channel: ChannelName,
    /// `delivered`, `off` (not enabled, or no desktop here: nothing
    /// tried) or `failed`.
    #[schemars(with = "String")]
    pub outcome: &'static str,
    /// Where it went (the server's answer), why it is off, or the error.
    pub detail: String,
}

/// A test of a worktree's channels.
#[derive(Debug)]
pub struct Tested {
    /// Each channel tried (or off), in order.
    pub results: Vec<(ChannelName, ProbeResult)>,
    /// Why the attempts are not in the delivery log, when they are not.
    pub unrecorded: Option<NotifierDbError>,
}

impl Tested {
    pub fn json(&self) -> Vec<TestResult> {
        self.results
            .iter()
            .map(|(channel, r)| TestResult {
                channel: *channel,
                outcome: r.outcome(),
                detail: r.detail().to_owned(),
            })
            .collect()
    }
}

/// The test of the worktree at `root` (`bgtask notify test` and the
/// dashboard's): its config read, the test notification sent to `only` or
/// every channel, each attempt recorded in its delivery log. Fails only
/// when the config does not load.
pub async fn test_worktree(
    root: &Path,
    only: Option<ChannelName>,
    console: &mut ConsoleSink,
) -> Result<Tested, crate::config::ConfigError> {
    let config = crate::config::load(root)?;
    let (db, unrecorded) = match Db::open_worktree(root) {
        Ok(db) => (Some(db), None),
        Err(e) => (None, Some(e)),
    };
    let results = probe(&config, root, db.as_ref(), only, console).await;
    Ok(Tested {
        results,
        unrecorded,
    })
}

fn off(channel: ChannelName) -> ProbeResult {
    ProbeResult::Off(format!(
        "not enabled (notifications.{}{})",
        channel.as_str(),
        if channel == ChannelName::Email {
            ".enabled is not true"
        } else {
            ".enabled is false"
        }
    ))
}

/// Sends the test notification to `only`, or to every channel.
pub async fn probe(
    config: &Config,
    root: &Path,
    db: Option<&Db>,
    only: Option<ChannelName>,
    console: &mut ConsoleSink,
) -> Vec<(ChannelName, ProbeResult)> {
    let project = root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let r = Rendered::new(NotificationEvent::test(), &project);
    let n = &config.notifications;
    let mut out = Vec::new();
    for channel in ChannelName::ALL {
        if only.is_some_and(|o| o != channel) {
            continue;
        }
        let result = if channel.threshold(n).is_none() {
            off(channel)
        } else {
            send(channel, &r, n, root, console).await
        };
        if let Some(db) = db {
            record(db, channel, &r, &result);
        }
        out.push((channel, result));
    }
    out
}

/// Sends the rendered test notification on one enabled channel.
async fn send(
    channel: ChannelName,
    r: &Rendered,
    n: &Notifications,
    root: &Path,
    console: &mut ConsoleSink,
) -> ProbeResult {
    match channel {
        ChannelName::Console => match console.emit(r) {
            Ok(()) => ProbeResult::Delivered("printed".to_owned()),
            Err(e) => ProbeResult::Failed(format!("could not print: {e}")),
        },
        ChannelName::Desktop => match Desktop::new().send(r).await {
            DesktopOutcome::Delivered => {
                ProbeResult::Delivered("handed to the desktop's notification server".to_owned())
            }
            // By default the desktop channel is on where there is a
            // desktop: none here (CI, ssh) is not a failure.
            DesktopOutcome::Disabled(e) if !n.desktop.explicit => ProbeResult::Off(format!(
                "no desktop here ({e}); set notifications.desktop.enabled to true to require one"
            )),
            DesktopOutcome::Failed(e) | DesktopOutcome::Disabled(e) => ProbeResult::Failed(e),
            DesktopOutcome::Off => ProbeResult::Failed("off".to_owned()),
        },
        ChannelName::File => {
            let log = JsonlLog::new(root, &n.file);
            match log.append(&r.json) {
                Ok(()) => ProbeResult::Delivered(format!("appended to {}", log.path().display())),
                Err(e) => ProbeResult::Failed(format!("write {}: {e}", log.path().display())),
            }
        }
        ChannelName::Email => {
            let Some(email) = &n.email else {
                unreachable!("threshold is Some only with an email channel")
            };
            let message = render::email(&[r]);
            match super::email::send(email, root, 0, r.event.at_ms, &message).await {
                Ok(reply) => ProbeResult::Delivered(format!(
                    "accepted by {} for {}: {reply}",
                    super::email::describe(email),
                    email.to.join(", ")
                )),
                Err(e) => ProbeResult::Failed(format!("{}: {e}", super::email::describe(email))),
            }
        }
    }
}

/// Records a delivered or failed attempt in the delivery log (a channel
/// that is off tried nothing, so has nothing to record).
fn record(db: &Db, channel: ChannelName, r: &Rendered, result: &ProbeResult) {
    let (outcome, error) = match result {
        ProbeResult::Delivered(_) => (Some(Outcome::Delivered), None),
        ProbeResult::Failed(e) => (Some(Outcome::Failed), Some(e.as_str())),
        ProbeResult::Off(_) => (None, None),
    };
    if let Some(outcome) = outcome {
        let _ = db.record(&Delivery {
            at_ms: crate::clock::now_ms(),
            event: r.event.kind.as_str(),
            severity: r.event.level,
            task: None,
            run_id: None,
            channel: channel.as_str(),
            outcome,
            title: &r.event.title,
            error,
            outbox_id: None,
        });
    }
}
