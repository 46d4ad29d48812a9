//! The analyzers' tools: where they are, which version, and installing
//! them into bgtask's managed cache.
//!
//! Owns lookups on disk and `bgtask tools install`; never runs an analysis.

mod dirs;
pub mod install;
mod locate;
pub mod network;
pub mod pyenv;
mod version;

pub use dirs::{cache_dir, managed_node, managed_venv};
pub use locate::{Origin, find, project_dirs};
pub use version::{Probe, VersionCache, detect as detect_version};
