//! Which files git says a commit, a range of commits or a push touched,
//! and which files were renamed since a commit. Blocking (git processes):
//! callers run them off the daemon's loop.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{GitError, git, is_object_id, split_z};

/// The object id git writes for "no commit" (a new or deleted ref).
pub const NULL_ID: &str = "0000000000000000000000000000000000000000";

pub fn names(root: &Path, args: &[&str]) -> BTreeSet<PathBuf> {
    match git(root, args) {
        Ok(out) => split_z(&out).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not list a trigger's files");
            BTreeSet::new()
        }
    }
}

/// Files changed by each of these commits (against its first parent; a
/// root commit's files are all new). `git log --no-walk` takes many
/// commits at once, where `diff-tree A B` would compare A with B.
pub fn commit_files(root: &Path, commits: &[&str]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for chunk in commits.chunks(500) {
        let mut args = vec![
            "log",
            "--no-walk=unsorted",
            "--format=",
            "--name-only",
            "-z",
            "--no-renames",
            "--diff-merges=first-parent",
        ];
        args.extend(chunk);
        args.push("--");
        out.extend(names(root, &args));
    }
    out
}

pub fn range_files(root: &Path, from: &str, to: &str) -> BTreeSet<PathBuf> {
    let args = ["diff", "--name-only", "-z", "--no-renames", from, to, "--"];
    // Commits do not change: a list is kept, a failure is not.
    match range(root, from, to).get_or_init(|| git(root, &args).ok()) {
        Some(out) => split_z(out).collect(),
        None => names(root, &args),
    }
}

type Range = std::sync::Arc<std::sync::OnceLock<Option<Vec<u8>>>>;
/// A worktree and two commits.
type RangeKey = (PathBuf, String, String);

/// The files between two commits, asked for as soon as HEAD moves
/// ([`prefetch_range`]) and read when the batch is resolved: a checkout's
/// `git diff` over a large tree (0.1 s for 10 000 files) then runs while
/// the intake waits for quiet, not after. A few recent ranges are kept.
fn range(root: &Path, from: &str, to: &str) -> Range {
    static RANGES: std::sync::Mutex<Vec<(RangeKey, Range)>> = std::sync::Mutex::new(Vec::new());
    let key = (root.to_owned(), from.to_owned(), to.to_owned());
    let mut ranges = RANGES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, r)) = ranges.iter().find(|(k, _)| *k == key) {
        return r.clone();
    }
    if ranges.len() >= 8 {
        ranges.remove(0);
    }
    let r = Range::default();
    ranges.push((key, r.clone()));
    r
}

/// Starts listing the files between `from` and `to` (blocking: call it
/// off the daemon's loop).
pub fn prefetch_range(root: &Path, from: &str, to: &str) {
    if is_object_id(from) && is_object_id(to) && from != to && from != NULL_ID {
        let _ = range_files(root, from, to);
    }
}

/// `pre-push` stdin: `<local ref> <local id> <remote ref> <remote id>` lines.
pub fn pushed_files(root: &Path, stdin: &str) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for line in stdin.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [_, local, _, remote] = parts[..] else {
            continue;
        };
        if local == NULL_ID || !is_object_id(local) {
            continue; // a deletion
        }
        if remote != NULL_ID
            && git(root, &["cat-file", "-e", &format!("{remote}^{{commit}}")]).is_ok()
        {
            out.extend(range_files(root, remote, local));
        } else {
            // A new branch: what is not on any remote yet.
            out.extend(names(
                root,
                &[
                    "log",
                    "--name-only",
                    "-z",
                    "--format=",
                    "--no-renames",
                    local,
                    "--not",
                    "--remotes",
                ],
            ));
        }
    }
    out
}

/// The files renamed between `rev` and the worktree, by git's rename
/// detection (`git diff -M`): old path → new path, relative to `root`
/// (a rename outside it is not listed). Git sees a rename once both sides
/// are known to it: a `git mv`, or a move whose new file was added.
pub fn renames(root: &Path, rev: &str) -> Result<HashMap<String, String>, GitError> {
    let out = git(
        root,
        &["diff", "-M", "--name-status", "-z", "--relative", rev, "--"],
    )?;
    let mut fields = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let mut map = HashMap::new();
    while let Some(status) = fields.next() {
        if status.is_empty() {
            break;
        }
        let Some(old) = fields.next() else { break };
        // Renames and copies name two paths, every other status one.
        let new = status
            .starts_with(['R', 'C'])
            .then(|| fields.next())
            .flatten();
        if status.starts_with('R')
            && let Some(new) = new
        {
            map.insert(old, new);
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {ok:?}");
    }

    #[test]
    fn renames_since_a_commit_old_to_new() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let body = (0..40).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "line {i} of the module");
            s
        });
        std::fs::create_dir(root.join("pkg")).unwrap();
        for f in ["pkg/a.py", "b.py", "c.py", "gone.py"] {
            std::fs::write(root.join(f), format!("{f}\n{body}")).unwrap();
        }
        run(root, &["init", "-q"]);
        run(root, &["add", "."]);
        run(root, &["commit", "-qm", "one"]);
        // Renamed and edited a little, renamed into a new directory,
        // renamed by hand and added, edited in place, deleted.
        run(root, &["mv", "pkg/a.py", "pkg/a2.py"]);
        std::fs::write(root.join("pkg/a2.py"), format!("pkg/a.py\n{body}extra\n")).unwrap();
        std::fs::create_dir(root.join("lib")).unwrap();
        run(root, &["mv", "b.py", "lib/b c.py"]);
        std::fs::rename(root.join("c.py"), root.join("d.py")).unwrap();
        run(root, &["add", "-A", "c.py", "d.py"]);
        std::fs::remove_file(root.join("gone.py")).unwrap();
        let got = renames(root, "HEAD").unwrap();
        let want: HashMap<String, String> = [
            ("pkg/a.py", "pkg/a2.py"),
            ("b.py", "lib/b c.py"),
            ("c.py", "d.py"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(got, want);
        // Relative to a subdirectory root.
        let sub = renames(&root.join("pkg"), "HEAD").unwrap();
        assert_eq!(sub.get("a.py").map(String::as_str), Some("a2.py"));
        assert!(renames(root, "no-such-rev").is_err());
    }
}
