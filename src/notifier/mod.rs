//! Notifications: telling the developer about the results that matter,
//! through the channels they chose, without spamming and without losing
//! anything (RELIABILITY 25).
//!
//! ```text
//!  scheduler ──RunFinished / NotificationEvent──► Notifier (never blocks)
//!                                                   │ its own thread
//!                      router: policy, new-only, min_severity, once, cooldown
//!                                                   │ rendered once
//!                     console · desktop · file · email digest ─► outbox ─► SMTP
//!                                                   │
//!                                   delivery log (every outcome)
//!                                                   │ each one told
//!                                  `on_delivery` (the daemon's event stream)
//! ```
//!
//! Levels and where they come from:
//!
//! | source | level |
//! |---|---|
//! | finding `critical` | critical |
//! | finding `high` | error |
//! | finding `medium` | warning |
//! | finding `low`, `info` | info |
//! | an analyzer `tool_error`, `timeout`, `oom` (`task_failed`) | error, or the worst reported finding if higher |
//! | `issues_found` | the worst reported finding |
//! | `task_completed` (`on_complete`) | info |
//! | `not_installed` (`analyzers_unavailable`, once per daemon start) | warning |
//! | health worse: warning / error (`health_alert`) | warning / error |
//! | config invalid on reload (`config_invalid`) | error |
//! | config not trusted (`config_untrusted`) | warning |
//! | new jobs held back for load or memory (`high_resource_usage`, at most every 30 min) | warning |
//!
//! Each channel sends what reaches its `min_severity`. A task's `notify`
//! policy decides whether a run makes an event at all; by default only
//! findings that were not there in the previous run of the task are
//! reported ("3 new, 1 fixed"); `new_only: false` reports all of them.
//!
//! Files: `event.rs` (the messages, levels), `router.rs` (pure routing),
//! `novelty.rs` (new and fixed findings),
//! `render.rs` (templates), `console.rs`, `desktop.rs`, `file.rs`,
//! `email.rs` (the channels), `outbox.rs` and `mailer.rs` (the email outbox
//! and its task), `db.rs` (the delivery log), `handle.rs` (the handle and
//! the thread), `probe.rs` (`bgtask notify test`, and the dashboard's
//! test button).

pub mod console;
mod db;
mod desktop;
mod email;
pub mod event;
mod file;
mod handle;
mod mailer;
mod marks;
mod novelty;
mod outbox;
mod probe;
pub mod render;
pub mod router;

pub use db::{Db, Delivery, DeliveryRow, NotifierDbError, OnDelivery, Outcome};
pub use event::{EventKind, Level, NotificationEvent, RunFinished};
pub use handle::{Notifier, NotifierOptions, NotifierThread};
pub use marks::{FixedFinding, Marks};
pub use novelty::Known;
pub use probe::{ProbeResult, TestResult, Tested, probe, test_worktree};
pub use router::ChannelName;
