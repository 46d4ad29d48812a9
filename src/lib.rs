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
//! The daemon's core (`daemon/core/`) is one loop that owns the queue,
//! the store and the running jobs; triggers reach it as messages, and each
//! job it starts is a run of the same [`engine`] `bgtask run` uses, with a
//! report at the end. It publishes what happens as one event stream
//! (`subscribe` on its socket). Every front end — the CLI, `bgtask watch`
//! and `bgtask events`, the [`dashboard`]'s HTTP API and page, the [`mcp`]
//! server for AI agents — is a client
//! of the daemon's socket (requests, and that stream) or of the engine: no
//! second implementation of an operation.
//!
//! Module map (each opens with what it owns), bottom layer first:
//! - [`clock`]: the one clock (wall-clock milliseconds that advance with
//!   tokio's monotonic clock).
//! - [`event`]: the messages between stages (`Trigger`, `Job`, `RunResult`).
//! - [`analyze`]: analyzer definitions and their vocabulary, findings,
//!   parsers, classification (it never reads the config).
//! - [`config`]: `.background-tasks.json`, two-phase parsing, the schema,
//!   the projects of a monorepo.
//! - [`git`]: what git's files and commands say (HEAD, operations, which
//!   files commits touched).
//! - [`state`]: the daemon's runtime paths and the hook spool, which the
//!   hook client and the daemon share; the user's data directory and the
//!   worktrees it knows.
//! - [`run`]: one isolated analyzer process: process group, limits, capture.
//! - [`engine`]: a run of tasks, foreground or a daemon's job: targets,
//!   applicability, cache, parallelism.
//! - [`report`]: console, JSON, SARIF, JUnit and GitHub annotation output.
//! - [`tools`]: tool discovery and `bgtask tools install`.
//! - [`hooks`]: git hook shims and the `bgtask hook` client.
//! - [`watch`]: the file watcher.
//! - [`trust`]: which worktrees may run analyzers without being asked.
//! - [`repofile`]: reading files a repository holds without following it
//!   out of the worktree, into a FIFO or past a size cap.
//! - [`schedule`]: the pure policy (queue, debounce, timers, routing).
//! - [`store`], [`ipc`], [`daemon`]: the background daemon.
//! - [`notifier`]: routing and delivering notifications (console, desktop,
//!   JSON log, email with an outbox) and the delivery log.
//! - [`dashboard`]: the local web server over every daemon (HTTP API,
//!   SSE, the page).
//! - [`mcp`]: the Model Context Protocol server for AI coding agents (on
//!   stdio, and at the dashboard's `/mcp`).
//! - [`lsp`]: the Language Server (stdio) showing current findings as
//!   editor diagnostics.
//! - [`cli`]: argument parsing and dispatch.

pub mod analyze;
pub mod baseline;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod engine;
pub mod event;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod git;
pub mod globs;
pub mod hooks;
pub mod ipc;
pub mod lsp;
pub mod mcp;
pub mod notifier;
pub mod repofile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod state;
pub mod store;
pub mod tools;
pub mod trust;
pub mod watch;
