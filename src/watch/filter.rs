//! Which paths the watcher cares about.
//!
//! A path is ignored when it is inside a directory that is never source
//! (`.git`, `.bgtask`, `node_modules`, virtualenvs, caches: the engine's
//! [`ALWAYS_SKIPPED`]), matches `.gitignore` / `.ignore` files (at every
//! level, deeper ones winning, `!` re-including), `.git/info/exclude` or
//! the global excludes file, or `triggers.file_watch.exclude_paths`; or
//! when `triggers.file_watch.paths` is set and it is not in it. Editor
//! backups and swap files, and the files analyzers themselves write
//! (coverage data, bytecode, caches), are ignored too, so a run never
//! triggers the next. Directories go through the same rules, which is how
//! the watcher avoids even placing watches in ignored trees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::engine::ALWAYS_SKIPPED;
use crate::globs::Globs;

/// File names no analyzer should be woken by: editor backups, swap and
/// lock files, and what analyzers and test runners write.
fn is_noise(name: &str) -> bool {
    name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || [
            ".swp", ".swo", ".swx", ".pyc", ".pyo", ".tmp", ".orig", ".rej",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name.starts_with(".coverage")
        || name.contains("___jb_")
        || matches!(
            name,
            "4913" | ".DS_Store" | ".eslintcache" | "coverage.xml" | "nosetests.xml" | ".noseids"
        )
}

/// Directories no analyzer's input lives in, beyond [`ALWAYS_SKIPPED`].
pub(super) const OUTPUT_DIRS: &[&str] =
    &["htmlcov", ".nyc_output", ".hypothesis", ".cache", ".idea"];

pub struct Filter {
    root: PathBuf,
    include: Option<Globs>,
    exclude: Option<Globs>,
    /// Ignore files of the repository itself (info/exclude, global).
    repo: Option<Gitignore>,
    /// `.gitignore` + `.ignore` of each directory seen (repo-relative).
    dirs: HashMap<PathBuf, Option<Arc<Gitignore>>>,
}

impl Filter {
    pub fn new(
        root: &Path,
        git_dir: Option<&Path>,
        include: Option<Globs>,
        exclude: Option<Globs>,
    ) -> Filter {
        // The global excludes file first: the repository's own rules (later)
        // win over it.
        let mut builder = GitignoreBuilder::new(root);
        if let Some(global) = ignore::gitignore::gitconfig_excludes_path() {
            let _ = builder.add(global);
        }
        if let Some(g) = git_dir {
            let _ = builder.add(g.join("info").join("exclude"));
        }
        let repo = builder.build().ok().filter(|g| !g.is_empty());
        Filter {
            root: root.to_owned(),
            include,
            exclude,
            repo,
            dirs: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Forgets the ignore rules of a directory whose ignore file changed.
    pub fn invalidate(&mut self, rel_dir: &Path) {
        self.dirs.remove(rel_dir);
    }

    fn rules(&mut self, rel_dir: &Path) -> Option<Arc<Gitignore>> {
        if let Some(hit) = self.dirs.get(rel_dir) {
            return hit.clone();
        }
        let abs = self.root.join(rel_dir);
        let mut builder = GitignoreBuilder::new(&abs);
        let mut any = false;
        for name in [".gitignore", ".ignore"] {
            let f = abs.join(name);
            if f.is_file() {
                any |= builder.add(&f).is_none();
            }
        }
        let rules = if any {
            builder.build().ok().map(Arc::new)
        } else {
            None
        };
        self.dirs.insert(rel_dir.to_owned(), rules.clone());
        rules
    }

    /// Whether `rel` (repo-relative) is ignored.
    pub fn ignored(&mut self, rel: &Path, is_dir: bool) -> bool {
        for c in rel.components() {
            let name = c.as_os_str().to_string_lossy();
            if ALWAYS_SKIPPED.contains(&name.as_ref()) || OUTPUT_DIRS.contains(&name.as_ref()) {
                return true;
            }
        }
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return false;
        };
        if !is_dir && is_noise(&name) {
            return true;
        }
        let text = rel.to_string_lossy();
        if self.exclude.as_ref().is_some_and(|g| g.is_match(&text)) {
            return true;
        }
        if !is_dir && self.include.as_ref().is_some_and(|g| !g.is_match(&text)) {
            return true;
        }
        // Deepest ignore file first: the first that has an opinion decides.
        let mut dir = rel.parent().map(Path::to_owned).unwrap_or_default();
        loop {
            if let Some(rules) = self.rules(&dir) {
                match rules.matched_path_or_any_parents(self.root.join(rel), is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            if !dir.pop() {
                break;
            }
        }
        self.repo.as_ref().is_some_and(|r| {
            r.matched_path_or_any_parents(self.root.join(rel), is_dir)
                .is_ignore()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_files_tool_dirs_noise_and_config_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/gen")).unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.log\n!keep.log\n").unwrap();
        std::fs::write(root.join("src/.gitignore"), "gen/\n").unwrap();
        std::fs::create_dir_all(root.join(".git/info")).unwrap();
        std::fs::write(root.join(".git/info/exclude"), "secret.py\n").unwrap();
        let exclude = Globs::new(&["vendor/**"]).unwrap();
        let mut f = Filter::new(root, Some(&root.join(".git")), None, Some(exclude));
        let cases = [
            ("src/app.py", false, false),
            ("build", true, true),
            ("build/x.py", false, true),
            ("a.log", false, true),
            ("keep.log", false, false),
            ("src/gen", true, true),
            ("gen", true, false),
            ("node_modules", true, true),
            ("src/__pycache__/a.pyc", false, true),
            ("src/.app.py.swp", false, true),
            ("src/app.py~", false, true),
            ("src/4913", false, true),
            (".coverage", false, true),
            ("secret.py", false, true),
            ("vendor/lib/x.py", false, true),
            (".git/HEAD", false, true),
            (".bgtask/state.db", false, true),
            ("sp ace/ünï.py", false, false),
        ];
        for (path, is_dir, want) in cases {
            assert_eq!(f.ignored(Path::new(path), is_dir), want, "{path}");
        }
        let include = Globs::new(&["src/**"]).unwrap();
        let mut only_src = Filter::new(root, None, Some(include), None);
        assert!(only_src.ignored(Path::new("docs/a.md"), false));
        assert!(
            !only_src.ignored(Path::new("docs"), true),
            "directories are still walked"
        );
        assert!(!only_src.ignored(Path::new("src/a.py"), false));
    }
}
