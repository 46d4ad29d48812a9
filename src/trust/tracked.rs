//! What git tracks where a task's tools are found inside the worktree:
//! the project's environments (`.venv`, `venv`, `node_modules`, followed
//! when one links elsewhere in the worktree) and a `PATH` entry inside it.
//! A tracked tool is repository code; an environment the user made and git
//! ignores holds nothing tracked.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::analyze::ExternalSpec;
use crate::repofile::RepoFileError;

/// What git tracks under the project's environment directories (`.venv`,
/// `venv`, `node_modules`): a tool found there is repository code when git
/// tracks it, and so is anything else git tracks there (a module the real
/// tool imports). An environment the user made and git ignores holds
/// nothing tracked and costs nothing.
///
/// Asking git costs a process, so the answer is kept until git's index
/// changes (a daemon asks on every trigger).
/// The fingerprint line of each tracked file is kept too, until the file's
/// own identity (inode, mtime, size) changes: a vendored environment of
/// thousands of files is hashed once, not on every trigger.
#[derive(Debug)]
pub struct Tracked {
    key: Option<(Option<IndexStamp>, Vec<String>)>,
    answer: Result<Vec<String>, String>,
    lines: HashMap<String, (Option<IndexStamp>, Option<String>)>,
}

impl Default for Tracked {
    fn default() -> Self {
        Tracked {
            key: None,
            answer: Ok(Vec::new()),
            lines: HashMap::new(),
        }
    }
}

/// A file's identity as `stat` tells it (not following a link).
fn file_stamp(path: &Path) -> Option<IndexStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// The index file's identity: it is replaced whenever what git tracks
/// changes.
type IndexStamp = (u64, i64, i64, u64);

fn index_stamp(root: &Path) -> Option<IndexStamp> {
    use std::os::unix::fs::MetadataExt;
    let dirs = crate::git::GitDirs::find(root)?;
    let m = std::fs::metadata(dirs.git_dir.join("index")).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

impl Tracked {
    /// The tracked files under `pathspecs` (relative to `root`), each with
    /// its fingerprint line, or why git could not say.
    pub(super) fn under(
        &mut self,
        root: &Path,
        pathspecs: Vec<String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let paths = self.paths(root, pathspecs).clone()?;
        self.lines.retain(|p, _| paths.contains(p));
        let mut out = BTreeMap::new();
        for p in paths {
            let stamp = file_stamp(&root.join(&p));
            let line = match self.lines.get(&p) {
                Some((s, line)) if stamp.is_some() && *s == stamp => line.clone(),
                _ => {
                    let line = file_line(root, &p);
                    self.lines.insert(p.clone(), (stamp, line.clone()));
                    line
                }
            };
            if let Some(line) = line {
                out.insert(p, line);
            }
        }
        Ok(out)
    }

    /// The tracked paths under `pathspecs`, asked of git only when the
    /// index or the pathspecs changed.
    fn paths(&mut self, root: &Path, pathspecs: Vec<String>) -> &Result<Vec<String>, String> {
        let key = (index_stamp(root), pathspecs);
        if self.key.as_ref() != Some(&key) {
            self.answer = if key.1.is_empty() {
                Ok(Vec::new())
            } else {
                let mut args = vec!["ls-files", "-z", "--cached", "--"];
                args.extend(key.1.iter().map(String::as_str));
                crate::git::git(root, &args)
                    .map(|out| {
                        out.split(|b| *b == 0)
                            .filter(|p| !p.is_empty())
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect()
                    })
                    .map_err(|e| e.to_string())
            };
            self.key = Some(key);
        }
        &self.answer
    }
}

/// What git is asked about for an environment directory: itself, and where
/// it leads when it is a link to elsewhere in the worktree.
pub(super) fn env_pathspecs(root: &Path, dir: &str) -> Vec<String> {
    let mut specs = vec![dir.to_owned()];
    let resolved = root
        .join(dir)
        .canonicalize()
        .ok()
        .zip(root.canonicalize().ok());
    if let Some((target, root)) = resolved
        && let Ok(rel) = target.strip_prefix(&root)
        && rel != Path::new(dir)
        && !rel.as_os_str().is_empty()
    {
        specs.push(rel.to_string_lossy().into_owned());
    }
    specs
}

/// Whether some `PATH` entry is inside the worktree (`$PWD/bin`, as direnv
/// setups do); when none is, no `PATH` lookup can find repository code and
/// none is made (trust is checked on every trigger).
pub(super) fn path_enters(root: &Path) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .any(|d| d.starts_with(root) || d.starts_with(&canonical))
}

/// The tool a `PATH` lookup finds, relative to the worktree, when a `PATH`
/// entry points into it.
pub(super) fn path_tool_inside(spec: &ExternalSpec, root: &Path) -> Option<String> {
    let (found, origin) = crate::tools::find(spec, root)?;
    if origin != crate::tools::Origin::Path {
        return None;
    }
    // The entry itself (a link is judged where it stands), in real terms.
    let found = found
        .parent()?
        .canonicalize()
        .ok()?
        .join(found.file_name()?);
    let rel = found.strip_prefix(root.canonicalize().ok()?).ok()?;
    Some(rel.to_string_lossy().into_owned())
}

/// A file the repository holds, by content: `file REL HASH`. Read with
/// [`crate::repofile`]: a link out of the worktree is named by its target,
/// a FIFO or device by what it is, never read. `None` when there is none.
pub(super) fn file_line(root: &Path, rel: &str) -> Option<String> {
    let path = root.join(rel);
    let meta = path.symlink_metadata().ok()?;
    let what = match crate::repofile::hash(Some(root), &path) {
        Ok(Some(hash)) => hash.to_hex()[..16].to_owned(),
        Ok(None) => return None,
        Err(RepoFileError::OutsideWorktree { target, .. }) => {
            return Some(format!(
                "file {rel} -> {} (out of the worktree)",
                target.display()
            ));
        }
        Err(RepoFileError::NotRegular { .. }) if path.is_dir() => "(a directory)".to_owned(),
        Err(RepoFileError::NotRegular { .. }) => "(not a regular file)".to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    };
    let link = if meta.file_type().is_symlink() {
        std::fs::read_link(&path)
            .map(|t| format!(" (link to {})", t.display()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Some(format!("file {rel} {what}{link}"))
}
