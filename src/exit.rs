//! Process exit codes, in one place. Only `main` turns them into an exit.
//!
//! When several apply, the first in this order wins: invalid config (78),
//! an analyzer errored or timed out (2), a required analyzer is not
//! installed (3), findings at or above the threshold (1), success (0).

/// Nothing at or above `--fail-on`.
pub const OK: u8 = 0;
/// Findings at or above `--fail-on` (or the tasks' `fail_on`).
pub const FINDINGS: u8 = 1;
/// An analyzer errored, timed out or ran out of memory.
pub const TOOL_ERROR: u8 = 2;
/// A required analyzer is not installed (`--strict-tools`, or named explicitly).
pub const NOT_INSTALLED: u8 = 3;
/// The daemon is not running (`status`, and commands that need it).
pub const DAEMON_DOWN: u8 = 4;
/// Bad command-line usage (`EX_USAGE`).
pub const USAGE: u8 = 64;
/// Input data was wrong: an unreadable report to merge (`EX_DATAERR`).
pub const DATA: u8 = 65;
/// A notification channel did not deliver (`notify test`; `EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// bgtask itself failed (`EX_SOFTWARE`).
pub const INTERNAL: u8 = 70;
/// Invalid configuration (`EX_CONFIG`).
pub const CONFIG: u8 = 78;
/// Interrupted by Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;
/// Whoever read standard output went away (`bgtask … | head`): the end is
/// quiet, with the code a shell gives a process that SIGPIPE ended.
pub const CLOSED_PIPE: u8 = 141;
