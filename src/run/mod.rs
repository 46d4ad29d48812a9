//! Running one analyzer process in isolation.
//!
//! Owns the process and nothing else: spawn with a scrubbed environment in
//! its own session, drain its output into bounded captures, enforce the
//! wall-clock, CPU-time and memory limits, stop it by escalating signals to
//! its whole group, and report why it ended ([`Ended`]) with its peak memory
//! and CPU time. It knows nothing about analyzers, findings or files.

mod capture;
mod env;
mod process;
mod unix;

pub use capture::{Capture, Captured};
pub use env::scrub_own as scrub_own_env;
pub use env::scrubbed as scrubbed_env;
pub use process::{Ended, Finished, LOG_CAP, Limits, Spawned, Spec, run};
pub use unix::{
    arg_max, become_subreaper, boot_id, kill_all_spawned, kill_group_if_same, signal_name,
    start_ticks, sweep_orphans,
};

#[cfg(test)]
mod tests;
