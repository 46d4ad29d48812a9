//! A worktree's git directories and what they say, read straight from the
//! files: the hook's hot path cannot afford a git process (about a
//! millisecond each).
//!
//! `.git` is a directory (a plain repository) or a file `gitdir: PATH`
//! (linked worktrees, submodules); a linked worktree's private directory
//! names the shared one in `commondir`. Per-worktree state (HEAD, the
//! index, a rebase in progress) lives in the private directory, branches
//! and hooks in the common one — the split `git rev-parse --git-path`
//! makes. `GIT_DIR`, when git exports it to a hook, wins.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitDirs {
    /// This worktree's own directory (`.git`, or `.git/worktrees/NAME`).
    pub git_dir: PathBuf,
    /// The directory shared by every worktree (refs, objects, hooks).
    pub common_dir: PathBuf,
}

/// Files or directories that say a multi-commit operation is in progress,
/// and its name. Commits made during one are collected, not run one by one.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("sequencer", "cherry-pick"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("MERGE_HEAD", "merge"),
    ("BISECT_LOG", "bisect"),
];

impl GitDirs {
    /// The directories of the worktree at `top` (git runs hooks there).
    pub fn find(top: &Path) -> Option<GitDirs> {
        let git_dir = match std::env::var_os("GIT_DIR") {
            Some(d) if !d.is_empty() => absolute(top, Path::new(&d)),
            _ => {
                let dot_git = top.join(".git");
                let meta = std::fs::metadata(&dot_git).ok()?;
                if meta.is_dir() {
                    dot_git
                } else {
                    let text = std::fs::read_to_string(&dot_git).ok()?;
                    let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
                    absolute(top, Path::new(target))
                }
            }
        };
        let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(text) => absolute(&git_dir, Path::new(text.trim_end_matches(['\n', '\r']))),
            Err(_) => git_dir.clone(),
        };
        Some(GitDirs {
            git_dir,
            common_dir,
        })
    }

    /// HEAD's commit, if it can be read from the files (loose or packed
    /// refs; `None` for an unborn branch or the reftable format).
    pub fn head(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.git_dir.join("HEAD")).ok()?;
        self.resolve(text.trim(), 0)
    }

    /// `ORIG_HEAD` (set by merges, rebases and resets).
    pub fn orig_head(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.git_dir.join("ORIG_HEAD")).ok()?;
        self.resolve(text.trim(), 0)
    }

    fn resolve(&self, value: &str, depth: u8) -> Option<String> {
        if let Some(name) = value.strip_prefix("ref:") {
            if depth > 4 {
                return None;
            }
            return self.read_ref(name.trim(), depth + 1);
        }
        is_object_id(value).then(|| value.to_owned())
    }

    fn read_ref(&self, name: &str, depth: u8) -> Option<String> {
        // Pseudo-refs and per-worktree refs live in the private directory,
        // branches and tags in the common one.
        for dir in [&self.git_dir, &self.common_dir] {
            if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                return self.resolve(text.trim(), depth);
            }
        }
        let packed = std::fs::read_to_string(self.common_dir.join("packed-refs")).ok()?;
        packed.lines().find_map(|line| {
            let (id, refname) = line.split_once(' ')?;
            (refname == name && is_object_id(id)).then(|| id.to_owned())
        })
    }

    /// The last entry of HEAD's reflog: where HEAD moved from and to. git
    /// appends it while still holding the ref's lock, so at that moment
    /// the ref itself may not name the new commit yet; the entry does.
    pub fn last_head_move(&self) -> Option<(String, String)> {
        self.last_head_entry().map(|(from, to, _)| (from, to))
    }

    /// The last entry of HEAD's reflog: from, to, and its message.
    pub fn last_head_entry(&self) -> Option<(String, String, String)> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(self.git_dir.join("logs").join("HEAD")).ok()?;
        let len = f.metadata().ok()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).ok()?;
        let text = String::from_utf8_lossy(&tail);
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        let message = line.split_once('\t').map_or("", |(_, m)| m).trim();
        let mut fields = line.split_whitespace();
        let (from, to) = (fields.next()?, fields.next()?);
        (is_object_id(from) && is_object_id(to))
            .then(|| (from.to_owned(), to.to_owned(), message.to_owned()))
    }

    /// The multi-commit operation in progress in this worktree, if any.
    pub fn operation(&self) -> Option<&'static str> {
        OPERATIONS
            .iter()
            .find(|(file, _)| self.git_dir.join(file).exists())
            .map(|(_, name)| *name)
    }

    /// git holds the index lock: a checkout, commit or merge is writing.
    pub fn index_locked(&self) -> bool {
        self.git_dir.join("index.lock").exists()
    }

    /// git replaced the index within `within` (let go of its lock just
    /// now: HEAD moves and the hook runs right after).
    pub fn index_written_within(&self, within: std::time::Duration) -> bool {
        std::fs::metadata(self.git_dir.join("index"))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < within))
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// A full hex object id (SHA-1 or SHA-256).
pub fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .env_remove("GIT_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn plain_repo_linked_worktree_and_packed_refs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let dirs = GitDirs::find(&repo).unwrap();
        assert_eq!(dirs.git_dir, repo.join(".git"));
        assert_eq!(dirs.head(), None, "unborn branch");
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let head = git(&repo, &["rev-parse", "HEAD"]);
        assert_eq!(dirs.head().as_deref(), Some(head.as_str()));
        git(&repo, &["pack-refs", "--all"]);
        assert_eq!(dirs.head().as_deref(), Some(head.as_str()), "packed");
        let (from, to) = dirs.last_head_move().unwrap();
        assert_eq!(to, head);
        assert!(
            from.bytes().all(|b| b == b'0'),
            "the first commit moved HEAD from nothing"
        );

        let wt = dir.path().join("wt");
        git(
            &repo,
            &["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()],
        );
        let linked = GitDirs::find(&wt).unwrap();
        assert_eq!(
            linked.common_dir.canonicalize().unwrap(),
            repo.join(".git").canonicalize().unwrap()
        );
        assert_ne!(linked.git_dir, linked.common_dir);
        assert_eq!(linked.head().as_deref(), Some(head.as_str()));
        assert_eq!(linked.operation(), None);
        std::fs::write(linked.git_dir.join("MERGE_HEAD"), &head).unwrap();
        assert_eq!(linked.operation(), Some("merge"));
        assert_eq!(dirs.operation(), None, "per worktree");
    }

    #[test]
    fn object_ids() {
        assert!(is_object_id(&"a".repeat(40)));
        assert!(is_object_id(&"0".repeat(64)));
        assert!(!is_object_id("ref: refs/heads/main"));
        assert!(!is_object_id(&"g".repeat(40)));
    }
}
