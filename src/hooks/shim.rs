//! The shim `install-hooks` writes for each hook, rendered from
//! `hooks/shim.sh` (see hooks/README.md for what it does and the tags).

use std::path::Path;

use super::client::STDIN_HOOKS;

const TEMPLATE: &str = include_str!("../../hooks/shim.sh");

/// Starts the line after the shebang of every shim we write.
pub const MARKER: &str = "# bgtask-shim ";

/// Where a hook that was there before ours is kept (next to the shim).
pub const CHAINED_SUFFIX: &str = ".bgtask-chained";

/// How a hook behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tell the daemon and get out of git's way.
    Notify,
    /// Run the tasks now and fail the git operation on findings.
    Gate,
}

/// The fast hook client's file name.
pub const FAST_CLIENT: &str = "bgtask-hook";

/// The fast hook client installed beside `bin` (`bgtask-hook`).
pub fn fast_client(bin: &Path) -> std::path::PathBuf {
    bin.with_file_name(FAST_CLIENT)
}

/// What a hook file is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shim {
    /// A symbolic link to the fast hook client, which then is the hook
    /// (it chains an earlier hook itself): no shell starts on a commit.
    Link(std::path::PathBuf),
    /// A shell script (a gate, or no fast client beside `bin`).
    Script(String),
}

/// What is in a hook's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    Ours(Shim),
    Foreign,
}

/// The hook file for `hook`: a link to the fast client for a hook that
/// only tells the daemon, a script for a gate.
pub fn wanted(hook: &str, bin: &Path, mode: Mode) -> Shim {
    let fast = fast_client(bin);
    if mode == Mode::Notify && fast.is_file() {
        Shim::Link(fast)
    } else {
        Shim::Script(render(hook, bin, mode))
    }
}

/// What is at `path` now.
pub fn found(path: &Path) -> Found {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Found::Missing;
    };
    if meta.file_type().is_symlink() {
        return match std::fs::read_link(path) {
            Ok(target) if target.file_name().is_some_and(|n| n == FAST_CLIENT) => {
                Found::Ours(Shim::Link(target))
            }
            _ => Found::Foreign,
        };
    }
    if !meta.is_file() {
        return Found::Foreign;
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if is_ours(&text) {
                Found::Ours(Shim::Script(text))
            } else {
                Found::Foreign
            }
        }
        Err(_) => Found::Foreign,
    }
}

/// The shim for `hook`, calling the bgtask at `bin` (and its fast hook
/// client beside it, when there is one).
pub fn render(hook: &str, bin: &Path, mode: Mode) -> String {
    let stdin = STDIN_HOOKS.contains(&hook);
    let flag = |tag: &str| match tag {
        "stdin" => Some(stdin),
        "gate" => Some(mode == Mode::Gate),
        "notify" => Some(mode == Mode::Notify),
        _ => None,
    };
    let quote = |p: &Path| p.to_string_lossy().replace('\'', r"'\''");
    let fast = quote(&fast_client(bin));
    let bin = quote(bin);
    let mut out = String::with_capacity(TEMPLATE.len());
    for line in TEMPLATE.lines() {
        let (text, keep) = match line.rsplit_once(" #") {
            Some((text, tags)) => {
                let verdicts: Option<Vec<bool>> = tags
                    .split(',')
                    .map(|t| match t.strip_prefix('!') {
                        Some(neg) => flag(neg).map(|v| !v),
                        None => flag(t),
                    })
                    .collect();
                match verdicts {
                    Some(v) => (text.trim_end(), v.iter().all(|&b| b)),
                    None => (line, true),
                }
            }
            None => (line, true),
        };
        if keep {
            out.push_str(
                &text
                    .replace("@HOOK@", hook)
                    .replace("@BIN@", &bin)
                    .replace("@FAST@", &fast),
            );
            out.push('\n');
        }
    }
    out
}

/// Whether the file's text is one of our shims.
pub fn is_ours(text: &str) -> bool {
    text.lines().nth(1).is_some_and(|l| l.starts_with(MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_hook_kind() {
        let bin = Path::new("/opt/it's/bgtask");
        let commit = render("post-commit", bin, Mode::Notify);
        assert!(is_ours(&commit));
        assert!(commit.contains("bin='/opt/it'\\''s/bgtask'"), "{commit}");
        assert!(
            commit.contains(
                "exec \"$bin\" hook --status \"$status\" post-commit \"$@\" </dev/null\n"
            )
        );
        assert!(
            commit.contains("fast='/opt/it'\\''s/bgtask-hook'"),
            "{commit}"
        );
        assert!(commit.contains(
            "[ -x \"$fast\" ] && exec \"$fast\" --status \"$status\" post-commit \"$@\" </dev/null\n"
        ));
        assert!(!commit.contains("input=$(cat)"));
        assert!(!commit.contains("--gate"));
        assert!(
            !commit.contains('#') || !commit.contains("#stdin"),
            "tags are removed"
        );

        let push = render("pre-push", bin, Mode::Notify);
        assert!(push.contains("input=$(cat)\n"));
        assert!(push.contains("printf '%s\\n' \"$input\" | \"$chained\" \"$@\"\n"));
        assert!(!push.contains("</dev/null"));

        let gate = render("pre-push", bin, Mode::Gate);
        assert!(gate.contains("hook --gate pre-push"));
        assert!(gate.contains("[ \"$status\" = 0 ] || exit \"$status\"\n"));
        assert!(!gate.contains("--status"));
    }

    #[test]
    fn shims_are_valid_sh() {
        for (hook, mode) in [
            ("post-commit", Mode::Notify),
            ("pre-push", Mode::Notify),
            ("pre-commit", Mode::Gate),
            ("post-rewrite", Mode::Notify),
        ] {
            let text = render(hook, Path::new("/usr/bin/bgtask"), mode);
            let ok = std::process::Command::new("sh")
                .args(["-n", "-c", &text])
                .status()
                .unwrap()
                .success();
            assert!(ok, "{hook}:\n{text}");
        }
    }

    #[test]
    fn foreign_hooks_are_not_ours() {
        assert!(!is_ours("#!/bin/sh\nexec lefthook run post-commit\n"));
        assert!(!is_ours(""));
    }
}
