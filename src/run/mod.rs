//! Running one analyzer process in isolation.
//!
//! Owns the process and nothing else: spawn with a scrubbed environment in
//! its own session, drain its output into bounded captures, enforce the
//! wall-clock, CPU-time and memory limits, stop it by escalating signals to
//! its whole group and every process that escaped it (`tree.rs`), and
//! report why it ended ([`Ended`]) with its peak memory and CPU time. It
//! knows nothing about analyzers, findings or files.

mod capture;
mod env;
mod process;
mod tree;
mod unix;

pub use capture::{Capture, Captured};
pub use env::scrub_own as scrub_own_env;
pub use env::scrubbed as scrubbed_env;
pub use process::{
    Ended, Finished, LOG_CAP, Limits, ProcessKind, Spawned, Spec, run, run_blocking,
};
pub use tree::{
    Proc, TOKEN_VAR, kill_all_spawned, kill_recorded, mechanism as cleanup_mechanism, start_ticks,
    sweep_orphans,
};
pub use unix::{arg_max, become_subreaper, boot_id, signal_name};

#[cfg(test)]
mod tests;
