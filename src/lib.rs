//! bgtask runs code analyzers in the background while developers work, and
//! in the foreground in CI.
//!
//! ```text
//!  trigger sources                 one scheduler             workers            sinks
//!  watch/   file saved ─┐
//!  hooks/   git hook  ──┤ Trigger  schedule/                 run/               store/ (SQLite)
//!  schedule cron/idle ──┼────────► debounce, coalesce, ─Job─► isolated  ─Run──► notifier/ console
//!  cli      bgtask run ─┘          priority queue,           subprocess Result          desktop
//!                                  retries, overflow         + analyze/                 file, email
//! ```
//!
//! Module map (each opens with what it owns):
//! - [`event`]: the messages between stages (`Trigger`, `Job`, `RunResult`).
//! - [`config`]: `.background-tasks.json`, two-phase parsing, the schema.
//! - [`analyze`]: analyzer definitions, findings, parsers, classification.
//! - [`run`]: one isolated analyzer process: process group, limits, capture.
//! - [`engine`]: a foreground run: targets, applicability, cache, parallelism.
//! - [`report`]: console, JSON, SARIF, JUnit and GitHub annotation output.
//! - [`tools`]: tool discovery and `bgtask tools install`.
//! - [`hooks`]: git hook shims and the `bgtask hook` client.
//! - [`watch`]: the file watcher.
//! - [`trust`]: which worktrees may run analyzers without being asked.
//! - [`repofile`]: reading files a repository holds without following it
//!   out of the worktree, into a FIFO or past a size cap.
//! - [`schedule`], [`store`], [`ipc`], [`daemon`]: the background daemon.
//! - [`notifier`]: routing and delivering notifications (console, desktop,
//!   JSON log, email with an outbox) and the delivery log.
//! - [`cli`]: argument parsing and dispatch.

pub mod analyze;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod event;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod globs;
pub mod hooks;
pub mod ipc;
pub mod notifier;
pub mod repofile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod store;
pub mod tools;
pub mod trust;
pub mod watch;
