//! What git's files and commands say: where a worktree's git directories
//! are and what they hold (`dirs.rs`: HEAD, an operation in progress, the
//! index lock, the reflog), running git itself (`command.rs`), which files
//! commits, ranges and pushes touched (`changes.rs`), and the web pages of
//! a remote's files (`web.rs`). Nothing here knows about tasks or
//! the daemon.

mod changes;
mod command;
mod dirs;
mod web;

pub use changes::{
    NULL_ID, commit_files, names, prefetch_range, pushed_files, range_files, renames,
};
pub use command::{GitError, git, head_commit, split_z};
pub use dirs::{GitDirs, OPERATIONS, is_object_id};
pub use web::{blob_url, encode_path, web_url};
