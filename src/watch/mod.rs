//! The file watcher: saves in the worktree (and HEAD moving) as
//! [`Arrival`](crate::event::Arrival)s for the daemon's intake.
//!
//! `filter.rs` decides which paths matter (ignore files, tool and output
//! directories, editor noise, the config's globs); `walk.rs` finds the
//! directories to watch, pruning ignored trees before descending;
//! `watcher.rs` is the thread that watches them with inotify (polling what
//! it cannot) and batches what changed. Quiet windows, the `index.lock`
//! hold and rebases are the intake's business (`schedule/intake.rs`).

mod filter;
mod walk;
mod watcher;

pub use filter::Filter;
pub use walk::{Found, walk};
pub use watcher::{BATCH, Handle, Options, Output, limit_message, spawn};
