//! The worktree being analysed: its root, its files, and git's view of
//! what changed.
//!
//! The root is the nearest directory at or above the start that holds
//! `.background-tasks.json` (not crossing the git toplevel), else the git
//! toplevel, else the start. Files are walked with `.gitignore`, `.ignore`
//! and `.git/info/exclude` honoured, and a few directories that are never
//! source (virtualenvs, `node_modules`, caches) skipped even without a
//! `.gitignore`. Our own git calls never take locks (`GIT_OPTIONAL_LOCKS=0`)
//! and never fire hooks (`BGTASK=0`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::CONFIG_FILE;
use crate::event::Targets;
use crate::git::{git, split_z};

/// Directories skipped by the walk wherever they are.
pub const ALWAYS_SKIPPED: &[&str] = &[
    ".git",
    ".bgtask",
    ".hg",
    ".svn",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
];

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("cannot use {} as the project directory", path.display())]
    Start {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} needs a git repository, and {} is not in one", root.display())]
    NotGit { what: &'static str, root: PathBuf },
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error(
        "unknown revision `{reference}` (a branch, tag or commit git knows here, e.g. `origin/main`)"
    )]
    UnknownRevision { reference: String },
}

/// Which files a command-line run looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Modified, added and untracked files (`--changed`).
    Changed,
    /// Staged files (`--staged`).
    Staged,
    /// Changed since the merge base with a ref (`--since REF`).
    Since(String),
    /// These files, absolute or relative to the current directory.
    Files(Vec<PathBuf>),
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    /// The root with symlinks resolved, to relativise tool-reported paths.
    pub canonical_root: PathBuf,
    pub git: bool,
}

impl Workspace {
    pub fn discover(start: &Path) -> Result<Workspace, WorkspaceError> {
        let start = start
            .canonicalize()
            .map_err(|source| WorkspaceError::Start {
                path: start.to_owned(),
                source,
            })?;
        // The worktree top is the nearest directory holding `.git` (a
        // directory, or a file in linked worktrees and submodules), as git
        // itself finds it; no need to start a git process for that.
        let top = start
            .ancestors()
            .find(|d| d.join(".git").exists())
            .map(Path::to_owned);
        let mut dir = start.clone();
        let root = loop {
            if dir.join(CONFIG_FILE).is_file() {
                break dir;
            }
            if top.as_ref() == Some(&dir) || !dir.pop() {
                break top.clone().unwrap_or_else(|| start.clone());
            }
        };
        Ok(Workspace {
            canonical_root: root.canonicalize().unwrap_or_else(|_| root.clone()),
            git: top.is_some(),
            root,
        })
    }

    /// The worktree a daemon serves from `start`: the git toplevel, with
    /// every project below it (`config::Projects`); outside git, the same
    /// as [`Workspace::discover`].
    pub fn worktree(start: &Path) -> Result<Workspace, WorkspaceError> {
        let found = Workspace::discover(start)?;
        let Some(top) = found
            .root
            .ancestors()
            .find(|d| d.join(".git").exists())
            .map(Path::to_owned)
        else {
            return Ok(found);
        };
        Ok(Workspace {
            canonical_root: top.canonicalize().unwrap_or_else(|_| top.clone()),
            git: true,
            root: top,
        })
    }

    /// The projects of this worktree: its own config (or the default) and
    /// each below it. The first bad config is the error.
    pub fn projects(&self) -> Result<crate::config::Projects, crate::config::ConfigError> {
        let root = crate::config::load(&self.root)?;
        crate::config::Projects::load(&self.root, root, &self.nested_projects())
    }

    /// The projects holding `files` (relative to the root): the root's and
    /// each config-holding directory above one of them. No walk of the
    /// tree: what a hook (the gate) can afford.
    pub fn projects_of<'a>(
        &self,
        files: impl IntoIterator<Item = &'a PathBuf>,
    ) -> Result<crate::config::Projects, crate::config::ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut nested = Vec::new();
        for f in files {
            for dir in f.ancestors().skip(1) {
                if dir.as_os_str().is_empty() || !seen.insert(dir.to_owned()) {
                    continue;
                }
                if self.root.join(dir).join(CONFIG_FILE).is_file() {
                    nested.push(dir.to_owned());
                }
            }
        }
        let root = crate::config::load(&self.root)?;
        crate::config::Projects::load(&self.root, root, &nested)
    }

    /// The workspace of a project `dir` (relative to this one) below it.
    #[must_use]
    pub fn below(&self, dir: &Path) -> Workspace {
        Workspace {
            root: self.root.join(dir),
            canonical_root: self.canonical_root.join(dir),
            git: self.git,
        }
    }

    /// Every file of the project, repo-relative, sorted; not those of the
    /// projects below it (a directory holding its own config). The walk
    /// runs on every CPU (a large tree is read in a fraction of the time).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = self.walk();
        let nested = nested_in(&files);
        if !nested.is_empty() {
            files.retain(|f| !nested.iter().any(|d| f.starts_with(d)));
        }
        files
    }

    /// The directories below the root that hold a config of their own:
    /// the projects of a monorepo (relative, sorted). In git, git's index
    /// and its untracked-file scan say so (0.1 s on 100 000 files, where a
    /// walk of the tree held the daemon's start back by 0.5 s); the walk
    /// is the fallback.
    pub fn nested_projects(&self) -> Vec<PathBuf> {
        let pathspec = format!(":(glob)**/{CONFIG_FILE}");
        let listed = self.git.then(|| {
            git(
                &self.root,
                &[
                    "ls-files",
                    "-z",
                    "--cached",
                    "--others",
                    "--exclude-standard",
                    "--",
                    &pathspec,
                ],
            )
        });
        let mut dirs = match listed {
            Some(Ok(out)) => nested_in(&split_z(&out).collect::<Vec<_>>()),
            _ => nested_in(&self.walk()),
        };
        // As the walk has it: never inside a directory it skips.
        dirs.retain(|d| {
            !d.components().any(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|n| ALWAYS_SKIPPED.contains(&n))
            })
        });
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Every file below the root, sorted, nested projects' included.
    fn walk(&self) -> Vec<PathBuf> {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let found = std::sync::Mutex::new(Vec::new());
        let root = self.root.clone();
        let walker = walk_builder(&self.root, false)
            .filter_entry(move |e| {
                !(e.file_type().is_some_and(|t| t.is_dir())
                    && (e
                        .file_name()
                        .to_str()
                        .is_some_and(|n| ALWAYS_SKIPPED.contains(&n))
                        || !walkable(e.path())))
            })
            .threads(threads)
            .build_parallel();
        let mut builder = Collector {
            root: &root,
            found: &found,
            mine: Vec::new(),
        };
        walker.visit(&mut builder);
        drop(builder);
        let mut out = found.into_inner().expect("walk results");
        out.sort();
        out
    }

    fn require_git(&self, what: &'static str) -> Result<(), WorkspaceError> {
        if self.git {
            Ok(())
        } else {
            Err(WorkspaceError::NotGit {
                what,
                root: self.root.clone(),
            })
        }
    }

    /// Modified, added, renamed and untracked files (vs HEAD, index and
    /// worktree together), as `git status` sees them.
    pub fn changed(&self) -> Result<Vec<PathBuf>, WorkspaceError> {
        self.require_git("--changed")?;
        let out = git(
            &self.root,
            &[
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--no-renames",
            ],
        )?;
        let paths = out
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| PathBuf::from(OsStr::from_bytes(&e[3..])));
        Ok(self.existing(paths))
    }

    /// Files staged for the next commit (added, copied, modified, renamed).
    pub fn staged(&self) -> Result<Vec<PathBuf>, WorkspaceError> {
        self.require_git("--staged")?;
        let out = git(
            &self.root,
            &[
                "diff",
                "--cached",
                "--name-only",
                "-z",
                "--diff-filter=ACMR",
            ],
        )?;
        Ok(self.existing(split_z(&out)))
    }

    /// Files changed since the merge base of `reference` and HEAD, plus
    /// untracked files: what a pull request touches.
    pub fn since(&self, reference: &str) -> Result<Vec<PathBuf>, WorkspaceError> {
        self.require_git("--since")?;
        let base = git(&self.root, &["merge-base", reference, "HEAD"])
            .map(|b| String::from_utf8_lossy(b.trim_ascii_end()).into_owned())
            .or_else(|_| {
                git(
                    &self.root,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("{reference}^{{commit}}"),
                    ],
                )
                .map(|b| String::from_utf8_lossy(b.trim_ascii_end()).into_owned())
                .map_err(|_| WorkspaceError::UnknownRevision {
                    reference: reference.to_owned(),
                })
            })?;
        let diff = git(
            &self.root,
            &[
                "diff",
                "--name-only",
                "-z",
                "--diff-filter=ACMR",
                &base,
                "--",
            ],
        )?;
        let untracked = git(
            &self.root,
            &["ls-files", "--others", "--exclude-standard", "-z"],
        )?;
        Ok(self.existing(split_z(&diff).chain(split_z(&untracked))))
    }

    fn existing(&self, paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = paths.filter(|p| self.root.join(p).is_file()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The job targets for a selection: the project, or the repo-relative
    /// files that exist (files outside the worktree are dropped).
    pub fn select(&self, selection: &Selection, cwd: &Path) -> Result<Targets, WorkspaceError> {
        let files = match selection {
            Selection::All => return Ok(Targets::Project),
            Selection::Changed => self.changed()?,
            Selection::Staged => self.staged()?,
            Selection::Since(r) => self.since(r)?,
            Selection::Files(files) => {
                self.existing(files.iter().filter_map(|f| self.relativize(cwd, f)))
            }
        };
        Ok(Targets::Files(files))
    }

    /// `path` (absolute, or relative to `cwd`) as a repo-relative path, if it
    /// is inside the root.
    pub fn relativize(&self, cwd: &Path, path: &Path) -> Option<PathBuf> {
        let abs = if path.is_absolute() {
            path.to_owned()
        } else {
            cwd.join(path)
        };
        let abs = abs.canonicalize().unwrap_or(abs);
        abs.strip_prefix(&self.canonical_root)
            .or_else(|_| abs.strip_prefix(&self.root))
            .ok()
            .map(Path::to_owned)
    }
}

/// The directories of a file list (not its top) that hold a config: the
/// walk's own list says so, without a `stat` per directory.
fn nested_in(files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == CONFIG_FILE))
        .filter_map(|f| f.parent().map(Path::to_owned))
        .filter(|d| !d.as_os_str().is_empty())
        .collect()
}

/// The walk every part of bgtask shares: hidden files included,
/// `.gitignore` (also outside a git repository), `.ignore`,
/// `.git/info/exclude` and the global excludes honoured, symlinks not
/// followed; `parents`: also the ignore files above the start.
///
/// The walker reads a directory's ignore files as it enters it, so a
/// hostile one (a link to `/dev/zero`, a FIFO, a huge file) would hang or
/// balloon it: a start whose ignore files are not [`walkable`] is walked
/// without any ignore files, and each filter of a walk skips a directory
/// that is not.
pub fn walk_builder(start: &Path, parents: bool) -> ignore::WalkBuilder {
    let mut b = ignore::WalkBuilder::new(start);
    let ignores = walkable(start);
    b.hidden(false)
        .git_ignore(ignores)
        .git_exclude(true)
        .git_global(true)
        .ignore(ignores)
        .require_git(false)
        .parents(parents)
        .follow_links(false);
    b
}

/// The ignore files a walk reads in each directory.
const IGNORE_FILES: &[&str] = &[".gitignore", ".ignore"];
/// Ignore files over this size are never read.
const IGNORE_FILE_MAX: u64 = 4 << 20;

/// Whether a walk may read the ignore files of `dir`: each is absent, or
/// (followed, as the walker does) a regular file under 4 MiB. Says which
/// one is not, once per call, as a warning (RELIABILITY 26).
pub fn walkable(dir: &Path) -> bool {
    IGNORE_FILES.iter().all(|name| {
        let path = dir.join(name);
        let Ok(link) = path.symlink_metadata() else {
            return true;
        };
        let ok = if link.file_type().is_symlink() {
            path.metadata()
                .map_or(true, |m| m.is_file() && m.len() <= IGNORE_FILE_MAX)
        } else {
            link.is_file() && link.len() <= IGNORE_FILE_MAX
        };
        if !ok {
            tracing::warn!(
                file = %path.display(),
                "not reading an ignore file that is not a regular file of at most 4 MiB; its directory is walked without it or skipped"
            );
        }
        ok
    })
}

/// Gathers a parallel walk's files: each thread keeps its own list and
/// hands it over in chunks, and the rest when it is done.
struct Collector<'a> {
    root: &'a Path,
    found: &'a std::sync::Mutex<Vec<PathBuf>>,
    mine: Vec<PathBuf>,
}

impl<'s> ignore::ParallelVisitorBuilder<'s> for Collector<'s> {
    fn build(&mut self) -> Box<dyn ignore::ParallelVisitor + 's> {
        Box::new(Collector {
            root: self.root,
            found: self.found,
            mine: Vec::new(),
        })
    }
}

impl ignore::ParallelVisitor for Collector<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> ignore::WalkState {
        if let Ok(entry) = entry
            && entry.file_type().is_some_and(|t| t.is_file())
            && let Ok(rel) = entry.path().strip_prefix(self.root)
        {
            self.mine.push(rel.to_owned());
            if self.mine.len() >= 4096 {
                self.flush();
            }
        }
        ignore::WalkState::Continue
    }
}

impl Collector<'_> {
    fn flush(&mut self) {
        if !self.mine.is_empty() {
            self.found
                .lock()
                .expect("walk results")
                .append(&mut self.mine);
        }
    }
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    }

    #[test]
    fn walk_honours_ignores_and_skips_tool_dirs() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q && mkdir -p src node_modules/x .venv/lib build && echo 'build/' > .gitignore \
             && touch src/a.py node_modules/x/i.js .venv/lib/v.py build/b.py .hidden.py 'sp ace.py'",
        );
        let ws = Workspace::discover(dir.path()).unwrap();
        assert!(ws.git);
        let files: Vec<String> = ws.files().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(files, [".gitignore", ".hidden.py", "sp ace.py", "src/a.py"]);
    }

    #[test]
    fn root_is_the_nearest_config_below_the_toplevel() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q && mkdir -p sub/deep && echo '{}' > sub/.background-tasks.json",
        );
        let ws = Workspace::discover(&dir.path().join("sub/deep")).unwrap();
        assert_eq!(ws.root, dir.path().canonicalize().unwrap().join("sub"));
        let ws = Workspace::discover(dir.path()).unwrap();
        assert_eq!(ws.root, dir.path().canonicalize().unwrap());
    }

    #[test]
    fn nested_projects_are_found_and_their_files_are_theirs() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q && mkdir -p svc/api/deep web node_modules/m && touch top.py svc/api/a.py svc/api/deep/b.py web/c.js \
             && echo '{}' > svc/api/.background-tasks.json && echo '{}' > web/.background-tasks.json \
             && echo '{}' > node_modules/m/.background-tasks.json",
        );
        let top = Workspace::worktree(&dir.path().join("svc/api/deep")).unwrap();
        assert_eq!(top.root, dir.path().canonicalize().unwrap());
        assert_eq!(
            top.nested_projects(),
            [PathBuf::from("svc/api"), PathBuf::from("web")]
        );
        let names = |ws: &Workspace| -> Vec<String> {
            ws.files().iter().map(|p| p.display().to_string()).collect()
        };
        assert_eq!(names(&top), ["top.py"]);
        let api = top.below(Path::new("svc/api"));
        assert_eq!(names(&api), [".background-tasks.json", "a.py", "deep/b.py"]);
        // Without a walk: only the projects holding the files named.
        let staged = [PathBuf::from("svc/api/deep/b.py"), PathBuf::from("top.py")];
        let dirs: Vec<String> = top
            .projects_of(&staged)
            .unwrap()
            .all()
            .iter()
            .map(crate::config::Project::name)
            .collect();
        assert_eq!(dirs, [".", "svc/api"]);
    }

    #[test]
    fn changed_staged_and_since() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q -b main && echo a > a.py && echo b > b.py && echo c > c.py && git add . && git commit -qm one \
             && git checkout -qb feature && echo x >> b.py && git commit -qam two \
             && echo y >> c.py && git add c.py && echo new > 'new file.py' && rm a.py",
        );
        let ws = Workspace::discover(dir.path()).unwrap();
        let names = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(ws.changed().unwrap()), ["c.py", "new file.py"]);
        assert_eq!(names(ws.staged().unwrap()), ["c.py"]);
        assert_eq!(
            names(ws.since("main").unwrap()),
            ["b.py", "c.py", "new file.py"]
        );
        assert!(ws.since("no-such-ref").is_err());
    }

    #[test]
    fn not_a_git_repo() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::discover(dir.path()).unwrap();
        assert!(!ws.git);
        let err = ws.changed().unwrap_err().to_string();
        assert!(err.contains("--changed needs a git repository"), "{err}");
    }
}
