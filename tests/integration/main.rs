//! The one integration-test binary: the real `bgtask` against real git
//! repositories and real analyzers (installed by `scripts/test.sh`).

mod cache;
mod cli;
mod config;
mod daemon_ipc;
mod daemon_jobs;
mod daemon_life;
mod daemon_state;
mod dashboard;
mod dashboard_browser;
mod deletions;
mod events;
mod harness;
mod hooks;
mod hostile;
mod javascript;
mod loops;
mod monorepo;
mod notifications;
mod notify_desktop;
mod notify_email;
mod notify_servers;
mod processes;
mod python;
mod reports;
mod runner;
mod rust;
mod selection;
mod trust;
mod watch;
