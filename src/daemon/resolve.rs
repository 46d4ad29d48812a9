//! What a batch of arrivals means: for each, the kind of trigger (the
//! vocabulary tasks subscribe to in `triggers`) and the files it touched,
//! asked of git. Blocking (git processes): the core runs it off its loop.
//!
//! | arrival | kind | files |
//! |---|---|---|
//! | saves (watcher) | `save` | the saved files that still exist; all on a rescan |
//! | `post-commit` | `commit` | the commit's files |
//! | `post-rewrite` (amend, rebase) | `commit` | the files of the rewritten commits |
//! | `post-merge` | `merge` | `ORIG_HEAD..HEAD` |
//! | `post-checkout` of a branch | `checkout` | old..new (nothing for a file checkout) |
//! | `pre-push` | `push` | the pushed commits' files |
//! | `editor-open` (`bgtask lsp`) | `save` | the opened file, never analysed |
//! | HEAD moved, no hook said so | `commit` | old..new |
//!
//! A hook's own HEAD (read when it ran) is used, not today's: during a
//! rebase HEAD moves on before the batch is resolved.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::TriggerKind;
use crate::event::{Arrival, EDITOR_OPEN, HookEvent, TriggerSource};
use crate::git::{NULL_ID, commit_files, is_object_id, names, pushed_files, range_files};
pub use crate::schedule::route::Resolved;

/// The files an `editor-open` names: regular files of the worktree, by
/// repo-relative paths that stay inside it.
fn opened(root: &Path, args: &[String]) -> BTreeSet<PathBuf> {
    args.iter()
        .map(PathBuf::from)
        .filter(|p| {
            p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .filter(|p| std::fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_file()))
        .collect()
}

/// The kind and files of a hook other than the commit hooks.
fn hook_kind_and_files(
    root: &Path,
    h: &HookEvent,
    wanted: &BTreeSet<TriggerKind>,
) -> Option<(TriggerKind, BTreeSet<PathBuf>)> {
    let head = h.head.as_deref();
    let kind = match h.hook.as_str() {
        // Not a git hook: an editor opened files no run has looked at
        // (`bgtask lsp`). The tasks a save of them starts analyse them.
        EDITOR_OPEN => TriggerKind::Save,
        "post-merge" => TriggerKind::Merge,
        "post-checkout" => TriggerKind::Checkout,
        "pre-push" => TriggerKind::Push,
        _ => return None,
    };
    if !wanted.contains(&kind) {
        return None;
    }
    match h.hook.as_str() {
        "post-merge" => {
            let files = match (h.orig_head.as_deref(), head) {
                (Some(from), Some(to)) if from != to => range_files(root, from, to),
                _ => BTreeSet::new(),
            };
            Some((TriggerKind::Merge, files))
        }
        "post-checkout" => {
            let [from, to, flag] = &h.args[..] else {
                return None;
            };
            if flag != "1" || from == to {
                return None;
            }
            let files = if from == NULL_ID {
                names(root, &["ls-files", "-z"])
            } else {
                range_files(root, from, to)
            };
            Some((TriggerKind::Checkout, files))
        }
        "pre-push" => Some((TriggerKind::Push, pushed_files(root, &h.stdin))),
        EDITOR_OPEN => Some((TriggerKind::Save, opened(root, &h.args))),
        _ => None,
    }
}

/// The commits a commit hook names: HEAD after `post-commit`, the new
/// commits of a `post-rewrite` mapping.
fn commits_of(h: &HookEvent) -> Option<Vec<&str>> {
    match h.hook.as_str() {
        "post-commit" => Some(h.head.as_deref().into_iter().collect()),
        "post-rewrite" => Some(
            h.stdin
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|id| is_object_id(id))
                .collect(),
        ),
        _ => None,
    }
}

/// A resolved batch: its triggers now, and what git's lists may add.
#[derive(Debug)]
pub struct Resolution {
    pub now: Vec<Resolved>,
    pub later: Vec<Later>,
}

/// A checkout or a merge whose files were taken from what the watcher saw
/// git write in the same batch: git's own list of a 10 000-file checkout
/// takes tens of milliseconds more, the analysis need not wait for it.
/// That list is read after ([`Later::rest`]) for what the watcher did not
/// see (a mode change, a path it does not watch).
#[derive(Debug)]
pub struct Later {
    /// The trigger, but for its files.
    trigger: Resolved,
    from: String,
    to: String,
}

impl Later {
    /// What git's list names beyond what the watcher saw of `batch`, as a
    /// trigger of its own; `None` when nothing.
    pub fn rest(self, root: &Path, batch: &[Arrival]) -> Option<Resolved> {
        let seen = seen(batch).unwrap_or_default();
        let rest: BTreeSet<PathBuf> = range_files(root, &self.from, &self.to)
            .into_iter()
            .filter(|f| seen.binary_search(f).is_err())
            .collect();
        let rest = files_or_gone(root, rest, &[]);
        (!rest.is_empty()).then(|| Resolved {
            files: Some(rest),
            ..self.trigger
        })
    }
}

impl Resolution {
    /// Every trigger of `batch`, git's lists read now.
    pub fn complete(self, root: &Path, batch: &[Arrival]) -> Vec<Resolved> {
        let mut all = self.now;
        all.extend(self.later.into_iter().filter_map(|l| l.rest(root, batch)));
        all
    }
}

/// The files the watcher looked at in `batch` (none is a directory),
/// sorted (the intake hands the batch's saves on as one, sorted).
fn seen(batch: &[Arrival]) -> Option<&[PathBuf]> {
    batch.iter().find_map(|a| match a {
        Arrival::Saved {
            files,
            not_files: Some(_),
            rescan: false,
        } => Some(files.as_slice()),
        _ => None,
    })
}

/// Resolves a batch, only for the kinds some task subscribes to (`wanted`);
/// arrivals of other kinds are left out. Commit hooks with the same skip
/// list are resolved together, with one git process (a rebase of fifty
/// commits, a burst of commits in a script).
pub fn resolve(root: &Path, batch: &[Arrival], wanted: &BTreeSet<TriggerKind>) -> Resolution {
    let hooks_spoke = batch.iter().any(|a| matches!(a, Arrival::Hook(_)));
    // The watcher looked at what it saw (none is a directory): git's list
    // of a checkout's files need not be looked at again.
    let seen = seen(batch);
    let files_or_gone = |files| files_or_gone(root, files, seen.unwrap_or_default());
    let mut out = Vec::new();
    let mut later = Vec::new();
    // A checkout or merge from `from` to `to`: the watcher's files now,
    // git's list after; git's list now when the watcher saw nothing.
    let mut rewrote = |trigger: Resolved, from: &str, to: &str| match seen {
        Some(seen) if !seen.is_empty() && is_object_id(from) && from != NULL_ID => {
            later.push(Later {
                trigger: trigger.clone(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
            Resolved {
                files: Some(seen.iter().cloned().collect()),
                ..trigger
            }
        }
        _ => Resolved {
            files: Some(files_or_gone(range_files(root, from, to))),
            ..trigger
        },
    };
    let mut commits: Vec<(Vec<String>, Vec<&str>, &HookEvent)> = Vec::new();
    for arrival in batch {
        match arrival {
            Arrival::Saved {
                files,
                rescan,
                not_files,
            } if wanted.contains(&TriggerKind::Save) => {
                let files: BTreeSet<PathBuf> = files.iter().cloned().collect();
                out.push(Resolved {
                    kind: TriggerKind::Save,
                    files: (!rescan).then(|| match not_files {
                        Some(_) => files,
                        None => files_or_gone(files),
                    }),
                    source: TriggerSource::Save,
                    skip: Vec::new(),
                    only: None,
                });
            }
            Arrival::Hook(h) => {
                if let Some(ids) = commits_of(h) {
                    if !wanted.contains(&TriggerKind::Commit) {
                        continue;
                    }
                    match commits.iter_mut().find(|(skip, _, _)| *skip == h.skip) {
                        Some(group) => {
                            group.1.extend(ids);
                            group.2 = h;
                        }
                        None => commits.push((h.skip.clone(), ids, h)),
                    }
                    continue;
                }
                let source = TriggerSource::Hook {
                    hook: h.hook.clone(),
                    head: h.head.clone(),
                };
                if let ("post-checkout", [from, to, flag]) = (h.hook.as_str(), &h.args[..])
                    && flag == "1"
                    && from != to
                    && from != NULL_ID
                    && wanted.contains(&TriggerKind::Checkout)
                {
                    let resolved = Resolved {
                        kind: TriggerKind::Checkout,
                        files: None,
                        source,
                        skip: h.skip.clone(),
                        only: None,
                    };
                    out.push(rewrote(resolved, from, to));
                    continue;
                }
                if let ("post-merge", Some(from), Some(to)) =
                    (h.hook.as_str(), h.orig_head.as_deref(), h.head.as_deref())
                    && from != to
                    && wanted.contains(&TriggerKind::Merge)
                {
                    let resolved = Resolved {
                        kind: TriggerKind::Merge,
                        files: None,
                        source,
                        skip: h.skip.clone(),
                        only: None,
                    };
                    out.push(rewrote(resolved, from, to));
                    continue;
                }
                let Some((kind, files)) = hook_kind_and_files(root, h, wanted) else {
                    continue;
                };
                out.push(Resolved {
                    kind,
                    files: Some(files_or_gone(files)),
                    source,
                    skip: h.skip.clone(),
                    only: None,
                });
            }
            // HEAD moved by a client that runs no hooks; when hooks did
            // speak in the same batch they said it better.
            Arrival::HeadMoved {
                from: Some(from),
                to: Some(to),
                how,
            } if !hooks_spoke && from != to && wanted.contains(&moved_by(how.as_deref())) => {
                let resolved = Resolved {
                    kind: moved_by(how.as_deref()),
                    files: None,
                    source: TriggerSource::HeadMoved,
                    skip: Vec::new(),
                    only: None,
                };
                // A commit, an amend or a reset did not write the tree
                // the watcher saw (a reset may have: git's list is exact).
                out.push(match resolved.kind {
                    TriggerKind::Checkout | TriggerKind::Merge => rewrote(resolved, from, to),
                    _ => Resolved {
                        files: Some(files_or_gone(range_files(root, from, to))),
                        ..resolved
                    },
                });
            }
            Arrival::Saved { .. } | Arrival::HeadMoved { .. } => {}
        }
    }
    for (skip, mut ids, last) in commits {
        ids.sort_unstable();
        ids.dedup();
        out.push(Resolved {
            kind: TriggerKind::Commit,
            files: Some(files_or_gone(commit_files(root, &ids))),
            source: TriggerSource::Hook {
                hook: last.hook.clone(),
                head: last.head.clone(),
            },
            skip,
            only: None,
        });
    }
    Resolution { now: out, later }
}

/// What kind of trigger a HEAD move is, from its reflog message: a branch
/// switch is a checkout, a merge or pull a merge, anything else (a commit,
/// an amend, a rebase, a reset) a commit.
pub(super) fn moved_by(how: Option<&str>) -> TriggerKind {
    let how = how.unwrap_or_default();
    if how.starts_with("checkout:") {
        TriggerKind::Checkout
    } else if how.starts_with("merge ") || how.starts_with("pull") {
        TriggerKind::Merge
    } else {
        TriggerKind::Commit
    }
}

/// The files a trigger names, deleted ones included: a deleted file's
/// findings end with it, so the tasks that looked at it must hear of it
/// (the engine records it as gone without running a per-file analyzer on
/// it). Directories are left out; what the watcher has `seen` is none.
fn files_or_gone(root: &Path, files: BTreeSet<PathBuf>, seen: &[PathBuf]) -> BTreeSet<PathBuf> {
    files
        .into_iter()
        .filter(|f| {
            seen.binary_search(f).is_ok()
                || !std::fs::symlink_metadata(root.join(f)).is_ok_and(|m| m.is_dir())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, script: &str) -> String {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn hook(name: &str, args: &[&str], stdin: &str, head: &str) -> Arrival {
        Arrival::Hook(HookEvent {
            hook: name.into(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            stdin: stdin.into(),
            head: Some(head.into()),
            orig_head: None,
            operation: None,
            skip: vec!["tests".into()],
            at_ms: 0,
        })
    }

    fn all() -> BTreeSet<TriggerKind> {
        [
            TriggerKind::Save,
            TriggerKind::Commit,
            TriggerKind::Checkout,
            TriggerKind::Merge,
            TriggerKind::Push,
        ]
        .into()
    }

    fn files(r: &Resolved) -> Vec<String> {
        r.files
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    /// A repository with two commits: `one` (a.py, "b c.py") and `two`
    /// (a.py changed, new.py).
    fn two_commits() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let one = sh(
            root,
            "git init -q -b main && echo a > a.py && echo b > 'b c.py' && git add . && git commit -qm one && git rev-parse HEAD",
        );
        let two = sh(
            root,
            "echo x >> a.py && echo n > new.py && git add . && git commit -qm two && git rev-parse HEAD",
        );
        (dir, one, two)
    }

    /// The whole resolution, git's lists read now.
    fn resolve(root: &Path, batch: &[Arrival], wanted: &BTreeSet<TriggerKind>) -> Vec<Resolved> {
        super::resolve(root, batch, wanted).complete(root, batch)
    }

    /// A checkout the watcher saw git write (but for `new.py`): its files
    /// at once, git's list after for what the watcher did not see.
    #[test]
    fn a_checkout_the_watcher_saw_starts_from_its_files_and_git_adds_the_rest() {
        let (dir, one, two) = two_commits();
        let root = dir.path();
        let seen = Arrival::Saved {
            files: vec!["a.py".into(), "other.py".into()],
            rescan: false,
            not_files: Some(Vec::new()),
        };
        let checkout = Some("checkout: moving from main to two");
        for git in [
            moved(&one, &two, checkout),
            hook("post-checkout", &[&one, &two, "1"], "", &two),
        ] {
            let batch = [seen.clone(), git];
            let r = super::resolve(root, &batch, &all());
            assert_eq!(r.now.len(), 2, "{r:?}");
            assert_eq!(r.now[1].kind, TriggerKind::Checkout);
            assert_eq!(files(&r.now[1]), ["a.py", "other.py"]);
            let [later] = &r.later[..] else {
                panic!("{r:?}")
            };
            assert_eq!(later.from, one);
            let rest = r.later.into_iter().next().unwrap().rest(root, &batch).unwrap();
            assert_eq!(rest.kind, TriggerKind::Checkout);
            assert_eq!(files(&rest), ["new.py"]);
        }
        // A commit wrote nothing the watcher saw: git's list, now.
        let r = super::resolve(root, &[seen.clone(), moved(&one, &two, None)], &all());
        assert!(r.later.is_empty());
        assert_eq!(files(&r.now[1]), ["a.py", "new.py"]);
        // Everything seen: nothing more.
        let all_seen = Arrival::Saved {
            files: vec!["a.py".into(), "new.py".into()],
            rescan: false,
            not_files: Some(Vec::new()),
        };
        let batch = [all_seen, moved(&one, &two, checkout)];
        let r = super::resolve(root, &batch, &all());
        assert!(r.complete(root, &batch).len() == 2, "no third trigger");
    }

    fn moved(one: &str, two: &str, how: Option<&str>) -> Arrival {
        Arrival::HeadMoved {
            from: Some(one.to_owned()),
            to: Some(two.to_owned()),
            how: how.map(str::to_owned),
        }
    }

    #[test]
    fn commits_checkouts_and_saves() {
        let (dir, one, two) = two_commits();
        let root = dir.path();
        let batch = [
            hook("post-commit", &[], "", &two),
            hook("post-checkout", &[&one, &two, "1"], "", &two),
            hook("post-checkout", &[&one, &two, "0"], "", &two),
            Arrival::Saved {
                files: vec!["a.py".into(), "gone.py".into()],
                rescan: false,
                not_files: None,
            },
            moved(&one, &two, None),
        ];
        let r = resolve(root, &batch, &all());
        assert_eq!(r.len(), 3, "{r:?}");
        let of = |k: TriggerKind| r.iter().find(|x| x.kind == k).unwrap();
        assert_eq!(files(of(TriggerKind::Commit)), ["a.py", "new.py"]);
        assert_eq!(of(TriggerKind::Commit).skip, ["tests"]);
        assert_eq!(files(of(TriggerKind::Checkout)), ["a.py", "new.py"]);
        assert_eq!(
            files(of(TriggerKind::Save)),
            ["a.py", "gone.py"],
            "a deleted file stays: its findings end"
        );
        let only_saves = resolve(root, &batch, &[TriggerKind::Save].into());
        assert_eq!(only_saves.len(), 1, "no git work for kinds no task wants");
    }

    /// An editor opened files: a save of those inside the worktree.
    #[test]
    fn an_editor_open_is_a_save_of_the_worktrees_files_it_names() {
        let (dir, _, two) = two_commits();
        let root = dir.path();
        let opened = hook(
            EDITOR_OPEN,
            &["a.py", "../a.py", "/etc/passwd", "missing.py", "."],
            "",
            &two,
        );
        let r = resolve(root, std::slice::from_ref(&opened), &all());
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind, TriggerKind::Save);
        assert_eq!(files(&r[0]), ["a.py"]);
        assert!(resolve(root, &[opened], &[TriggerKind::Commit].into()).is_empty());
    }

    /// Two commits in one batch: each commit's own files, not a diff
    /// between the two.
    #[test]
    fn two_commits_in_one_batch_are_each_commits_files() {
        let (dir, one, two) = two_commits();
        let both = resolve(
            dir.path(),
            &[
                hook("post-commit", &[], "", &one),
                hook("post-commit", &[], "", &two),
            ],
            &all(),
        );
        assert_eq!(both.len(), 1);
        assert_eq!(files(&both[0]), ["a.py", "b c.py", "new.py"]);
    }

    /// What moved HEAD, as its reflog says, is the kind.
    #[test]
    fn head_moving_alone_is_typed_by_its_reflog() {
        let (dir, one, two) = two_commits();
        let alone = resolve(
            dir.path(),
            &[moved(&one, &two, Some("commit: add new"))],
            &all(),
        );
        assert_eq!(alone[0].source, TriggerSource::HeadMoved);
        assert_eq!(alone[0].kind, TriggerKind::Commit);
        assert_eq!(files(&alone[0]), ["a.py", "new.py"]);
        for (how, kind) in [
            ("checkout: moving from main to topic", TriggerKind::Checkout),
            ("merge topic: Fast-forward", TriggerKind::Merge),
            ("pull: Fast-forward", TriggerKind::Merge),
            ("reset: moving to HEAD~1", TriggerKind::Commit),
        ] {
            let r = resolve(dir.path(), &[moved(&one, &two, Some(how))], &all());
            assert_eq!(r[0].kind, kind, "{how}");
            assert_eq!(files(&r[0]), ["a.py", "new.py"]);
        }
    }

    #[test]
    fn rewrites_and_pushes_are_their_commits_files() {
        let (dir, one, two) = two_commits();
        let root = dir.path();
        let mapping = format!("{one} {two}\n");
        let rewrite = resolve(
            root,
            &[hook("post-rewrite", &["rebase"], &mapping, &two)],
            &all(),
        );
        assert_eq!(files(&rewrite[0]), ["a.py", "new.py"]);
        let push = format!("refs/heads/main {two} refs/heads/main {one}\n");
        let pushed = resolve(
            root,
            &[hook("pre-push", &["origin", "url"], &push, &two)],
            &all(),
        );
        assert_eq!(pushed[0].kind, TriggerKind::Push);
        assert_eq!(files(&pushed[0]), ["a.py", "new.py"]);
        let new_branch = format!("refs/heads/main {two} refs/heads/main {NULL_ID}\n");
        let pushed = resolve(
            root,
            &[hook("pre-push", &["origin", "url"], &new_branch, &two)],
            &all(),
        );
        assert_eq!(files(&pushed[0]), ["a.py", "b c.py", "new.py"]);
    }
}
