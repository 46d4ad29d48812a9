//! The directories to watch: a walk of the tree that prunes ignored
//! directories before descending, so a gitignored `node_modules` of a
//! thousand directories costs no watch at all. The same ignore rules as
//! the engine's file walk (`.gitignore`, `.ignore`, `.git/info/exclude`,
//! the never-source directories), plus the watcher's exclusions.

use std::path::{Path, PathBuf};

use crate::engine::ALWAYS_SKIPPED;
use crate::globs::Globs;

/// What a walk found.
#[derive(Debug, Default)]
pub struct Found {
    /// Absolute directories, the start first.
    pub dirs: Vec<PathBuf>,
    /// Repo-relative files (only when asked: a new directory's contents).
    pub files: Vec<PathBuf>,
}

/// Walks `start` (inside `root`); `files` also lists the files.
pub fn walk(root: &Path, start: &Path, exclude: Option<&Globs>, files: bool) -> Found {
    let exclude = exclude.cloned();
    let root_owned = root.to_owned();
    let walker = crate::engine::walk_builder(start, start != root)
        .filter_entry(move |e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            if !is_dir {
                return true;
            }
            let skipped = e.file_name().to_str().is_some_and(|n| {
                ALWAYS_SKIPPED.contains(&n) || super::filter::OUTPUT_DIRS.contains(&n)
            });
            if skipped || !crate::engine::walkable(e.path()) {
                return false;
            }
            match (&exclude, e.path().strip_prefix(&root_owned)) {
                (Some(g), Ok(rel)) if !rel.as_os_str().is_empty() => {
                    !g.is_match(&rel.to_string_lossy())
                }
                _ => true,
            }
        })
        .build();
    let mut found = Found::default();
    for entry in walker.flatten() {
        let Some(t) = entry.file_type() else { continue };
        if t.is_dir() {
            found.dirs.push(entry.into_path());
        } else if files
            && t.is_file()
            && let Ok(rel) = entry.path().strip_prefix(root)
        {
            found.files.push(rel.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_trees_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "src/a/b",
            "node_modules/x/y",
            "build/out",
            "docs",
            ".git/objects",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
        std::fs::write(root.join("src/a/b/f.py"), "").unwrap();
        let exclude = Globs::new(&["docs"]).unwrap();
        let found = walk(root, root, Some(&exclude), false);
        let mut rel: Vec<String> = found
            .dirs
            .iter()
            .map(|d| d.strip_prefix(root).unwrap().display().to_string())
            .collect();
        rel.sort();
        assert_eq!(rel, ["", "src", "src/a", "src/a/b"]);
        assert!(found.files.is_empty());
        let sub = walk(root, &root.join("src/a"), None, true);
        assert_eq!(sub.dirs.len(), 2);
        assert_eq!(sub.files, [PathBuf::from("src/a/b/f.py")]);
    }
}
