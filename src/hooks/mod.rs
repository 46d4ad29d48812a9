//! Git hooks: the hooks `install-hooks` puts in place and removes
//! (`install.rs`, `shim.rs`: links to `bgtask-hook`, or shell shims), the
//! client as the hook itself (`linked.rs`), and `bgtask hook`, the tiny
//! client they run (`client.rs`),
//! which reads what it needs from git's files (`crate::git`) and hands the
//! event to the daemon or the spool. What the daemon does with an event is
//! `daemon/triggers.rs`'s business.

pub mod client;
pub mod install;
pub mod linked;
pub mod shim;

pub use install::{Action, HookChange, HookError, HookState, HooksDir};
pub use shim::Mode;
