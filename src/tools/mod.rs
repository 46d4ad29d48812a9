//! The analyzers' tools: where they are, which version, and installing
//! them into bgtask's managed cache; the inventory of analyzers built on
//! that (`doctor`).
//!
//! Owns lookups on disk and `bgtask tools install`; never runs an analysis.

mod dirs;
pub mod install;
pub mod inventory;
mod locate;
pub mod network;
pub mod pyenv;
mod version;

pub use dirs::{cache_dir, managed_node, managed_venv};
pub use inventory::{AnalyzerRow, analyzers};
pub use locate::{Origin, find, project_dirs};
pub use version::{
    Probe, VersionCache, detect as detect_version, detect_blocking as detect_version_blocking,
};
