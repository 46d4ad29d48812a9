//! The project's file list kept between the daemon's jobs, so that a save
//! does not walk the whole tree before its analyzer starts (a 100 000-file
//! tree takes most of a second to walk).
//!
//! The list is the walk's ([`Workspace::files`]); the daemon keeps it true
//! with what its triggers name: a named file that appeared or went away is
//! added or dropped, a named path that is gone takes whatever was under it
//! along (a directory moved away), and a changed ignore file, a rescan or a
//! trigger for the whole project drops the list, so the next job walks.
//! Only a daemon whose watcher sees the whole worktree uses it, and never
//! for longer than [`MAX_AGE`]: what no trigger names (a file the watcher
//! skips as noise) is picked up by the next walk.
//!
//! A job that walks stores its list only if nothing changed meanwhile (a
//! generation count), so a walk that raced a change is never kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Workspace;

/// Longest a list is trusted without a walk.
pub const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Default)]
pub struct FileIndex(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    files: Option<(Arc<Vec<PathBuf>>, Instant)>,
    generation: u64,
}

/// Files whose change means the walk would see a different tree.
fn changes_ignores(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == ".gitignore" || n == ".ignore")
}

impl FileIndex {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept list, if it is there and fresh (never blocks on a walk).
    pub fn cached(&self) -> Option<Arc<Vec<PathBuf>>> {
        let s = self.state();
        s.files
            .as_ref()
            .filter(|(_, at)| at.elapsed() < MAX_AGE)
            .map(|(files, _)| files.clone())
    }

    /// The project's files: the kept list, else a walk (blocking).
    pub fn files(&self, workspace: &Workspace) -> Arc<Vec<PathBuf>> {
        let generation = {
            let s = self.state();
            if let Some((files, at)) = &s.files
                && at.elapsed() < MAX_AGE
            {
                return files.clone();
            }
            s.generation
        };
        let files = Arc::new(workspace.files());
        let mut s = self.state();
        if s.generation == generation {
            s.files = Some((files.clone(), Instant::now()));
        }
        files
    }

    /// Forgets the list: the next job walks.
    pub fn invalidate(&self) {
        let mut s = self.state();
        s.files = None;
        s.generation += 1;
    }

    /// Brings the list up to date with `paths` (repo-relative), which a
    /// trigger says changed; `is_file` says which are regular files now.
    /// Returns the files that went with a directory that is gone (moved
    /// away: one event for the directory, none for what was in it).
    pub fn update<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a PathBuf>,
        is_file: impl Fn(&Path) -> bool,
    ) -> Vec<PathBuf> {
        let paths: Vec<&PathBuf> = paths.into_iter().collect();
        if paths.iter().any(|p| changes_ignores(p)) {
            self.invalidate();
            return Vec::new();
        }
        let mut s = self.state();
        let Some((files, _)) = &s.files else {
            // A walk under way may have missed this change.
            s.generation += 1;
            return Vec::new();
        };
        let mut added = Vec::new();
        let mut removed: std::collections::HashSet<&Path> = std::collections::HashSet::new();
        // A checkout's paths come sorted: each is looked for from where
        // the one before was found.
        let mut from = 0;
        for p in paths {
            let is_file = is_file(p);
            let at = seek(files, from, p);
            from = at.unwrap_or_else(|i| i);
            let known = at.is_ok();
            if is_file && !known {
                added.push(p.clone());
            } else if !is_file && (known || has_under(files, p)) {
                removed.insert(p);
            }
        }
        if added.is_empty() && removed.is_empty() {
            return Vec::new();
        }
        // A file goes when it, or a directory above it, is gone.
        let mut went_along = Vec::new();
        let mut next: Vec<PathBuf> = Vec::with_capacity(files.len() + added.len());
        for f in files.iter() {
            match f.ancestors().find(|a| removed.contains(a)) {
                None => next.push(f.clone()),
                Some(gone) if gone != f.as_path() => went_along.push(f.clone()),
                Some(_) => {}
            }
        }
        next.extend(added);
        next.sort();
        next.dedup();
        let at = s.files.as_ref().map_or_else(Instant::now, |(_, at)| *at);
        s.files = Some((Arc::new(next), at));
        s.generation += 1;
        went_along
    }
}

/// The `selected` files that are gone: those the project's (sorted) file
/// list does not hold and that are not there either. The list is the walk
/// or the daemon's list kept true by the watcher: a selected file it holds
/// is taken as there without a look (a checkout's 10 000 files would be
/// looked at again before its analysis starts).
pub fn gone(files: &[PathBuf], selected: &BTreeSet<PathBuf>, root: &Path) -> BTreeSet<PathBuf> {
    let mut from = 0;
    selected
        .iter()
        .filter(|p| {
            let at = seek(files, from, p);
            from = at.unwrap_or_else(|i| i);
            at.is_err() && std::fs::symlink_metadata(root.join(p)).is_err()
        })
        .cloned()
        .collect()
}

/// `binary_search` of the sorted `files` for `p`, galloping from `from`
/// when `p` comes at or after it (sorted lookups cost a few comparisons
/// each).
fn seek(files: &[PathBuf], from: usize, p: &Path) -> Result<usize, usize> {
    let before = |f: &PathBuf| path_order(f, p).is_lt();
    if from == 0 || from > files.len() || !before(&files[from - 1]) {
        return files.binary_search_by(|f| path_order(f, p));
    }
    let mut step = 1;
    let mut hi = from;
    while hi < files.len() && before(&files[hi]) {
        hi = from + step;
        step *= 2;
    }
    let hi = (hi + 1).min(files.len());
    let lo = (from + step / 4).min(hi);
    files[lo..hi]
        .binary_search_by(|f| path_order(f, p))
        .map(|i| i + lo)
        .map_err(|i| i + lo)
}

/// `Path`'s order (component by component) for the normalised relative
/// paths of a file list, without splitting them into components (ten
/// times cheaper): at the first byte that differs, a separator comes
/// before anything, its component having ended first.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    use std::os::unix::ffi::OsStrExt;
    let (a, b) = (a.as_os_str().as_bytes(), b.as_os_str().as_bytes());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some(i) => {
            let key = |c: u8| if c == b'/' { 0 } else { u16::from(c) + 1 };
            key(a[i]).cmp(&key(b[i]))
        }
    }
}

/// Whether the sorted `files` has one under the directory `dir`.
fn has_under(files: &[PathBuf], dir: &Path) -> bool {
    let i = files.partition_point(|f| f.as_path() <= dir);
    files.get(i).is_some_and(|f| f.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.py", "src/b.py", "src/deep/c.py"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x = 1\n").unwrap();
        }
        let ws = Workspace::discover(dir.path()).unwrap();
        (dir, ws)
    }

    /// What the tree says of a path now.
    fn on_disk(root: &Path) -> impl Fn(&Path) -> bool + '_ {
        move |p| std::fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_file())
    }

    fn names(files: &[PathBuf]) -> Vec<String> {
        files.iter().map(|f| f.display().to_string()).collect()
    }

    #[test]
    fn follows_what_triggers_name_and_walks_when_it_must() {
        let (dir, ws) = tree();
        let index = FileIndex::default();
        let first = index.files(&ws);
        assert_eq!(names(&first), ["a.py", "src/b.py", "src/deep/c.py"]);
        // A new file, and a deleted one.
        std::fs::write(dir.path().join("src/new.py"), "").unwrap();
        std::fs::remove_file(dir.path().join("a.py")).unwrap();
        index.update(
            &[PathBuf::from("src/new.py"), PathBuf::from("a.py")],
            on_disk(&ws.root),
        );
        assert_eq!(
            names(&index.files(&ws)),
            ["src/b.py", "src/deep/c.py", "src/new.py"]
        );
        // A save of a known file changes nothing (the same list).
        let before = index.files(&ws);
        assert!(
            index
                .update(&[PathBuf::from("src/b.py")], on_disk(&ws.root))
                .is_empty()
        );
        assert!(Arc::ptr_eq(&before, &index.files(&ws)));
        // A directory moved away takes its files along.
        std::fs::rename(dir.path().join("src/deep"), dir.path().join("moved")).unwrap();
        assert_eq!(
            index.update(&[PathBuf::from("src/deep")], on_disk(&ws.root)),
            [PathBuf::from("src/deep/c.py")]
        );
        assert_eq!(names(&index.files(&ws)), ["src/b.py", "src/new.py"]);
        // A changed ignore file: the next job walks (and sees `moved/`).
        std::fs::write(dir.path().join(".gitignore"), "src/new.py\n").unwrap();
        index.update(&[PathBuf::from(".gitignore")], on_disk(&ws.root));
        assert_eq!(
            names(&index.files(&ws)),
            [".gitignore", "moved/c.py", "src/b.py"]
        );
    }

    #[test]
    fn a_walk_that_raced_a_change_is_not_kept() {
        let (dir, ws) = tree();
        let index = FileIndex::default();
        // No list yet: a change now means a walk under way may be stale.
        let generation = index.state().generation;
        std::fs::write(dir.path().join("late.py"), "").unwrap();
        index.update(&[PathBuf::from("late.py")], on_disk(&ws.root));
        assert_eq!(index.state().generation, generation + 1);
        assert!(index.state().files.is_none());
        index.files(&ws);
        assert!(index.state().files.is_some());
        index.invalidate();
        assert!(index.state().files.is_none());
    }

    #[test]
    fn a_selected_file_is_gone_when_neither_listed_nor_there() {
        let (dir, ws) = tree();
        let index = FileIndex::default();
        let files = index.files(&ws);
        std::fs::write(dir.path().join("new.py"), "").unwrap();
        std::fs::remove_file(dir.path().join("src/b.py")).unwrap();
        let selected: BTreeSet<PathBuf> = ["a.py", "gone.py", "new.py", "src/b.py"]
            .iter()
            .map(PathBuf::from)
            .collect();
        // `src/b.py` is still listed (no trigger told the list): taken as
        // there, as the list says; `new.py` is there, not listed yet.
        let gone: Vec<PathBuf> = gone(&files, &selected, &ws.root).into_iter().collect();
        assert_eq!(names(&gone), ["gone.py"]);
    }

    #[test]
    fn sorted_lookups_find_what_a_binary_search_finds() {
        let files: Vec<PathBuf> = (0..500)
            .map(|i| PathBuf::from(format!("d{}/f{:03}.py", i % 7, i)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut wanted: Vec<PathBuf> = files.iter().step_by(3).cloned().collect();
        wanted.extend((0..40).map(|i| PathBuf::from(format!("d{}/g{i}.py", i % 9))));
        wanted.push(PathBuf::from("a"));
        wanted.push(PathBuf::from("z"));
        wanted.sort();
        for step in [1, 2, 50] {
            let mut from = 0;
            for p in wanted.iter().step_by(step) {
                let at = seek(&files, from, p);
                assert_eq!(at, files.binary_search(p), "{} from {from}", p.display());
                from = at.unwrap_or_else(|i| i);
            }
        }
        // The order is `Path`'s, names that run on past a separator
        // included.
        let tricky = [
            "a", "a b", "a-b", "a.b", "a/b", "a/b.c", "a/b/c", "a/bc", "a0", "ab", "b", "a.b/c",
            "a/b-c/d", "a/b/c-d",
        ];
        for x in tricky {
            for y in tricky {
                let (x, y) = (Path::new(x), Path::new(y));
                assert_eq!(
                    path_order(x, y),
                    x.cmp(y),
                    "{} {}",
                    x.display(),
                    y.display()
                );
            }
        }
        // Out of order, and from anywhere.
        for (from, p) in [(400, &files[3]), (0, &files[499]), (500, &files[0])] {
            assert_eq!(seek(&files, from, p), files.binary_search(p));
        }
    }
}
