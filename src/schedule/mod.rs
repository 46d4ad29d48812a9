//! Scheduling: which job runs next, and when.
//!
//! The pure core (`queue.rs`, `backoff.rs`, `adaptive.rs`, `intake.rs`,
//! `timers.rs`, `route.rs`: which tasks a trigger starts, `wake.rs`: when
//! the loop wakes, `pause.rs`: automation paused by hand) has no tokio and
//! no I/O and is tested directly, including against a reference model. The
//! daemon's scheduler loop is a thin shell around it that persists every
//! [`Effect`] before acting on it.

pub mod adaptive;
mod backoff;
pub mod intake;
mod job;
mod pause;
mod pending;
mod queue;
pub mod route;
pub mod timers;
pub mod wake;

pub use backoff::Backoff;
pub use job::*;
pub use pause::Pause;
pub use pending::Pending;
pub use queue::*;

#[cfg(test)]
mod model_tests;
