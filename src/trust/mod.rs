//! Trust, after direnv: work nobody asked for in that moment (hook-,
//! watch-, cron- and idle-triggered runs) happens only in a worktree the
//! user trusted, because almost every analyzer can run repository code
//! (test runners run it; eslint and pylint load config and plugins from the
//! repository). Explicit commands (`bgtask run`, `bgtask submit`) need none.
//!
//! What is trusted is, per task, the *executable parts* of what it would
//! run: each analyzer's command, alternatives, arguments and environment;
//! a command that is a file in the repository (`./bin/check.sh`), by
//! content; the tool config files that make a tool load or run code
//! (`eslint.config.js`, `conftest.py`, `.pylintrc`, `pyproject.toml`,
//! `mvnw`, `gradle-wrapper.properties`, `.cargo/config.toml`, …); and for
//! `npm run test`, the `test` scripts of `package.json`. A change to any of
//! them (a `git pull`, say) blocks that task alone until `bgtask trust`;
//! `bgtask trust --diff` shows the change.
//!
//! Records live outside the repository, in `$XDG_DATA_HOME/bgtask/trust/`
//! (`BGTASK_DATA_DIR` overrides), one file per worktree.
//! `CI=true` (or a daemon started with `--trust`) skips the check.

mod fingerprint;
mod record;
#[cfg(test)]
mod tests;
mod tracked;

pub use fingerprint::{
    Fingerprint, fingerprint, fingerprint_projects, fingerprint_with, fingerprint_worktree,
};
pub use record::{
    Record, TaskTrust, data_dir, evaluate, has_record, load, revoke, save, skipped_by_env,
};
pub use tracked::Tracked;

fn short_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_owned()
}
