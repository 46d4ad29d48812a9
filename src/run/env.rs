//! The environment analyzers run with.
//!
//! git exports `GIT_DIR`, `GIT_INDEX_FILE` and more to hooks; an analyzer
//! inheriting them (a test suite running `git init` in a temp dir) would
//! write into the user's repository. So every name `git rev-parse
//! --local-env-vars` prints is removed, plus the author/committer/editor
//! variables, and colour is turned off. Computed once per process.

use std::ffi::{OsStr, OsString};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What git 2.47 prints for `--local-env-vars`, used when git is missing.
const GIT_LOCAL_VARS: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

const ALSO_REMOVED: &[&str] = &[
    "GIT_EDITOR",
    "GIT_PREFIX",
    "GIT_EXEC_PATH",
    "GIT_REFLOG_ACTION",
    "GIT_QUARANTINE_PATH",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "PY_COLORS",
];

const REMOVED_PREFIXES: &[&str] = &[
    "GIT_AUTHOR_",
    "GIT_COMMITTER_",
    "GIT_CONFIG_KEY_",
    "GIT_CONFIG_VALUE_",
];

const SET: &[(&str, &str)] = &[
    ("NO_COLOR", "1"),
    ("CARGO_TERM_COLOR", "never"),
    ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ("NPM_CONFIG_UPDATE_NOTIFIER", "false"),
    ("NPM_CONFIG_FUND", "false"),
    ("PYTHONUNBUFFERED", "1"),
    ("BGTASK", "0"),
];

fn git_local_vars() -> Vec<String> {
    let printed = Command::new("git")
        .args(["rev-parse", "--local-env-vars"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut all: Vec<String> = GIT_LOCAL_VARS.iter().map(|s| (*s).to_owned()).collect();
    all.extend(printed);
    all.sort();
    all.dedup();
    all
}

fn removed(name: &OsStr, git_vars: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    git_vars.iter().any(|v| v == name)
        || ALSO_REMOVED.contains(&name)
        || REMOVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes git's per-repository variables from this process's own
/// environment (a daemon started from a hook inherits `GIT_INDEX_FILE`,
/// `GIT_DIR`, …, which would point its own git calls at the wrong index).
/// Call before any thread starts.
pub fn scrub_own() {
    let git_vars = git_local_vars();
    let names: Vec<OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            k.to_str()
                .is_some_and(|n| n.starts_with("GIT_") && removed(k, &git_vars))
        })
        .collect();
    for k in names {
        // SAFETY: called at daemon start, before any other thread exists.
        unsafe { std::env::remove_var(k) };
    }
}

/// The scrubbed environment, computed once from this process's own.
pub fn scrubbed() -> &'static [(OsString, OsString)] {
    static ENV: OnceLock<Vec<(OsString, OsString)>> = OnceLock::new();
    ENV.get_or_init(|| scrub(std::env::vars_os(), &git_local_vars()))
}

fn scrub(
    vars: impl Iterator<Item = (OsString, OsString)>,
    git_vars: &[String],
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = vars
        .filter(|(k, _)| !removed(k, git_vars) && !SET.iter().any(|(s, _)| k == *s))
        .collect();
    out.extend(
        SET.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_colour_variables_are_removed() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("GIT_DIR", "/repo/.git"),
            ("GIT_INDEX_FILE", ".git/index.lock"),
            ("GIT_AUTHOR_NAME", "me"),
            ("GIT_COMMITTER_DATE", "now"),
            ("GIT_EDITOR", "vim"),
            ("GIT_SSH_COMMAND", "ssh -i key"),
            ("FORCE_COLOR", "1"),
            ("NO_COLOR", "0"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let out = scrub(vars.into_iter(), &git_local_vars());
        let names: Vec<&str> = out.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        for gone in [
            "GIT_DIR",
            "GIT_INDEX_FILE",
            "GIT_AUTHOR_NAME",
            "GIT_COMMITTER_DATE",
            "GIT_EDITOR",
            "FORCE_COLOR",
        ] {
            assert!(!names.contains(&gone), "{gone} kept");
        }
        for kept in ["PATH", "HOME", "GIT_SSH_COMMAND"] {
            assert!(names.contains(&kept), "{kept} dropped");
        }
        let no_color: Vec<_> = out.iter().filter(|(k, _)| k == "NO_COLOR").collect();
        assert_eq!(no_color.len(), 1);
        assert_eq!(no_color[0].1, "1");
    }

    #[test]
    fn git_is_asked_for_its_list() {
        let vars = git_local_vars();
        assert!(vars.iter().any(|v| v == "GIT_DIR"));
        assert!(vars.iter().any(|v| v == "GIT_COMMON_DIR"));
    }
}
