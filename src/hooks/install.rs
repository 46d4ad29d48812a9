//! `bgtask install-hooks` / `uninstall-hooks`, and the hook check `doctor`
//! runs.
//!
//! Shims go where git looks: `git rev-parse --git-path hooks`, which is the
//! common directory's `hooks/` (shared by linked worktrees) or a
//! `core.hooksPath`. A `core.hooksPath` from the repository's own config is
//! honoured; one from the global or system config would put our shims in
//! every repository of the user, so it is refused unless `--force`.
//!
//! A hook that is not ours is moved aside to `NAME.bgtask-chained` and run
//! first by the shim, its exit code kept; `uninstall-hooks` moves it back,
//! so what was there before is restored exactly (mode, symlink and all).
//! Re-running is idempotent: a current shim is left alone, a stale one
//! (another bgtask binary, an older template, blocking switched) is
//! rewritten.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::shim::{self, CHAINED_SUFFIX, Found, Mode, Shim};
use crate::config::Config;
use crate::git::git;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{} is not in a git repository", root.display())]
    NotGit { root: PathBuf },
    #[error(
        "core.hooksPath is set in the {scope} git config ({path}), so hooks installed there would run in every repository; pass --force to install into it anyway, or set a repository-local core.hooksPath"
    )]
    SharedHooksPath { scope: String, path: String },
    #[error(
        "core.hooksPath points at {path}, a directory this repository tracks: shims written there would be committed, with this machine's paths in them; pass --force to write them anyway"
    )]
    TrackedHooksPath { path: String },
    #[error("git hooks are turned off in the config (triggers.git_hooks.enabled is false)")]
    Disabled,
    #[error("`git {args}` failed: {message}")]
    Git { args: String, message: String },
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HookError + 'a {
    move |source| HookError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn run_git(root: &Path, args: &[&str]) -> Result<String, HookError> {
    git(root, args)
        .map(|out| String::from_utf8_lossy(&out).trim_end().to_owned())
        .map_err(|crate::git::GitError { args, message }| HookError::Git { args, message })
}

/// Where this worktree's hooks live, and whether a `core.hooksPath` from
/// outside the repository put them there.
#[derive(Debug, Clone)]
pub struct HooksDir {
    pub path: PathBuf,
    /// `global`, `system` or `command` when a shared `core.hooksPath` applies.
    pub shared_scope: Option<String>,
}

pub fn hooks_dir(root: &Path) -> Result<HooksDir, HookError> {
    if !root.join(".git").exists() && std::env::var_os("GIT_DIR").is_none() {
        return Err(HookError::NotGit {
            root: root.to_owned(),
        });
    }
    let raw = run_git(root, &["rev-parse", "--git-path", "hooks"])?;
    let path = PathBuf::from(&raw);
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    // `--show-scope` names the file a value came from (git >= 2.26).
    let shared_scope = run_git(root, &["config", "--show-scope", "--get", "core.hooksPath"])
        .ok()
        .and_then(|line| {
            let scope = line.split_whitespace().next()?.to_owned();
            (!matches!(scope.as_str(), "local" | "worktree")).then_some(scope)
        });
    Ok(HooksDir { path, shared_scope })
}

/// Whether `dir` is inside the worktree and git tracks files in it (a
/// team's `.githooks/`).
fn tracked_dir(root: &Path, dir: &Path) -> bool {
    let (Ok(root), Ok(dir)) = (root.canonicalize(), dir.canonicalize()) else {
        return false;
    };
    let Ok(rel) = dir.strip_prefix(&root) else {
        return false;
    };
    if rel.as_os_str().is_empty() || rel.starts_with(".git") {
        return false;
    }
    run_git(&root, &["ls-files", "--", &rel.to_string_lossy()]).is_ok_and(|out| !out.is_empty())
}

/// The hooks the config asks for, and how each behaves.
pub fn wanted(config: &Config) -> Vec<(String, Mode)> {
    let gh = &config.triggers.git_hooks;
    let mut out: Vec<(String, Mode)> = gh
        .hooks
        .iter()
        .map(|h| {
            let mode = if gh.blocking.contains(h) {
                Mode::Gate
            } else {
                Mode::Notify
            };
            (h.clone(), mode)
        })
        .collect();
    for h in &gh.blocking {
        if !gh.hooks.contains(h) {
            out.push((h.clone(), Mode::Gate));
        }
    }
    out
}

/// What happened to one hook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Installed,
    /// Ours already, and current.
    Unchanged,
    /// Ours, but stale: rewritten.
    Refreshed,
    /// Someone else's hook was there: moved aside and chained.
    Chained {
        kept_at: PathBuf,
    },
    /// Left alone, and why.
    Skipped {
        why: String,
    },
    /// Our shim removed; nothing was there before.
    Removed,
    /// Our shim removed and the earlier hook put back.
    Restored,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HookChange {
    pub hook: String,
    #[serde(flatten)]
    pub action: Action,
}

fn write_shim(path: &Path, text: &str) -> Result<(), HookError> {
    let dir = path.parent().expect("a hook has a directory");
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("write a hook in", dir))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io("write", path))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io("make executable", path))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io("write", path))?;
    Ok(())
}

/// Puts `shim` at `path`, replacing what is there in one rename.
fn put(path: &Path, shim: &Shim) -> Result<(), HookError> {
    match shim {
        Shim::Script(text) => write_shim(path, text),
        Shim::Link(target) => {
            let dir = path.parent().expect("a hook has a directory");
            let mut name = path.file_name().expect("a hook file").to_owned();
            name.push(format!(".bgtask-new-{}", std::process::id()));
            let tmp = dir.join(name);
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).map_err(io("link", &tmp))?;
            std::fs::rename(&tmp, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io("write", path)(e)
            })
        }
    }
}

/// Whether bgtask's hooks are installed for the worktree at `root`, so a
/// HEAD move is followed by its hook (checked for `post-checkout`, which
/// every config with git triggers installs).
pub fn delivers(root: &Path) -> bool {
    hooks_dir(root)
        .is_ok_and(|d| matches!(shim::found(&d.path.join("post-checkout")), Found::Ours(_)))
}

/// Installs (or refreshes) the configured hooks.
pub fn install(
    root: &Path,
    config: &Config,
    bin: &Path,
    force: bool,
) -> Result<(HooksDir, Vec<HookChange>), HookError> {
    if !config.triggers.git_hooks.enabled {
        return Err(HookError::Disabled);
    }
    let dir = hooks_dir(root)?;
    if let Some(scope) = &dir.shared_scope
        && !force
    {
        return Err(HookError::SharedHooksPath {
            scope: scope.clone(),
            path: dir.path.display().to_string(),
        });
    }
    if !force && tracked_dir(root, &dir.path) {
        return Err(HookError::TrackedHooksPath {
            path: dir.path.display().to_string(),
        });
    }
    std::fs::create_dir_all(&dir.path).map_err(io("create", &dir.path))?;
    let mut changes = Vec::new();
    for (hook, mode) in wanted(config) {
        let path = dir.path.join(&hook);
        let want = shim::wanted(&hook, bin, mode);
        let action = match shim::found(&path) {
            Found::Missing => {
                put(&path, &want)?;
                Action::Installed
            }
            found => match found {
                Found::Ours(have) if have == want => Action::Unchanged,
                Found::Ours(_) => {
                    put(&path, &want)?;
                    Action::Refreshed
                }
                _ => {
                    let kept = chained_path(&path);
                    if std::fs::symlink_metadata(&kept).is_ok() {
                        Action::Skipped {
                            why: format!(
                                "{} is not ours, and {} already holds an earlier hook; move one of them away and run install-hooks again",
                                path.display(),
                                kept.display()
                            ),
                        }
                    } else {
                        std::fs::rename(&path, &kept).map_err(io("move aside", &path))?;
                        put(&path, &want)?;
                        Action::Chained { kept_at: kept }
                    }
                }
            },
        };
        changes.push(HookChange { hook, action });
    }
    Ok((dir, changes))
}

fn chained_path(hook: &Path) -> PathBuf {
    let mut name = hook.file_name().expect("a hook file").to_owned();
    name.push(CHAINED_SUFFIX);
    hook.with_file_name(name)
}

/// Removes every shim of ours and puts back what each replaced.
pub fn uninstall(root: &Path) -> Result<(HooksDir, Vec<HookChange>), HookError> {
    let dir = hooks_dir(root)?;
    let mut changes = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir.path) else {
        return Ok((dir, changes));
    };
    let mut ours: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| matches!(shim::found(&e.path()), Found::Ours(_)))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    ours.sort();
    for (hook, path) in ours {
        let kept = chained_path(&path);
        let action = if std::fs::symlink_metadata(&kept).is_ok() {
            std::fs::rename(&kept, &path).map_err(io("restore", &kept))?;
            Action::Restored
        } else {
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
            Action::Removed
        };
        changes.push(HookChange { hook, action });
    }
    Ok((dir, changes))
}

/// The state of one configured hook, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    Current,
    /// Ours, but not what `install-hooks` would write now.
    Stale,
    Missing,
    /// Someone else's hook, not chaining ours.
    Foreign,
}

pub fn check(dir: &Path, config: &Config, bin: &Path) -> Vec<(String, HookState)> {
    wanted(config)
        .into_iter()
        .map(|(hook, mode)| {
            let state = match shim::found(&dir.join(&hook)) {
                Found::Missing => HookState::Missing,
                Found::Ours(have) if have == shim::wanted(&hook, bin, mode) => HookState::Current,
                Found::Ours(_) => HookState::Stale,
                Found::Foreign => HookState::Foreign,
            };
            (hook, state)
        })
        .collect()
}
