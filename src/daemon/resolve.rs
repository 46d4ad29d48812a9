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
        (!rest.is_empty()).then_some(Resolved {
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
    let mut rewrote = |trigger, from, to| rewrote(root, seen, &mut later, trigger, from, to);
    let mut commits: Vec<(Vec<String>, Vec<&str>, &HookEvent)> = Vec::new();
    for arrival in batch {
        match arrival {
            Arrival::Saved {
                files,
                rescan,
                not_files,
            } if wanted.contains(&TriggerKind::Save) => {
                // What the watcher looked at needs no look.
                let files: BTreeSet<PathBuf> = files.iter().cloned().collect();
                let files = if not_files.is_some() {
                    files
                } else {
                    files_or_gone(files)
                };
                out.push(Resolved {
                    kind: TriggerKind::Save,
                    files: (!rescan).then_some(files),
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
                if let Some((kind, from, to)) = rewriting(h, wanted) {
                    let trigger = Resolved {
                        kind,
                        files: None,
                        source,
                        skip: h.skip.clone(),
                        only: None,
                    };
                    out.push(rewrote(trigger, from, to));
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
    out.extend(
        commits
            .into_iter()
            .map(|(skip, ids, last)| commit_trigger(root, seen, skip, ids, last)),
    );
    Resolution { now: out, later }
}

/// One trigger for commit hooks with the same skip list: their commits'
/// files, with one git process.
fn commit_trigger(
    root: &Path,
    seen: Option<&[PathBuf]>,
    skip: Vec<String>,
    mut ids: Vec<&str>,
    last: &HookEvent,
) -> Resolved {
    ids.sort_unstable();
    ids.dedup();
    Resolved {
        kind: TriggerKind::Commit,
        files: Some(files_or_gone(
            root,
            commit_files(root, &ids),
            seen.unwrap_or_default(),
        )),
        source: TriggerSource::Hook {
            hook: last.hook.clone(),
            head: last.head.clone(),
        },
        skip,
        only: None,
    }
}

/// A hook of git writing the tree from one commit to another: a branch
/// checkout (not of the first commit: everything is new then) or a merge.
fn rewriting<'h>(
    h: &'h HookEvent,
    wanted: &BTreeSet<TriggerKind>,
) -> Option<(TriggerKind, &'h str, &'h str)> {
    let (kind, from, to) = match (h.hook.as_str(), &h.args[..]) {
        ("post-checkout", [from, to, flag]) if flag == "1" && from != NULL_ID => {
            (TriggerKind::Checkout, from.as_str(), to.as_str())
        }
        ("post-merge", _) => (
            TriggerKind::Merge,
            h.orig_head.as_deref()?,
            h.head.as_deref()?,
        ),
        _ => return None,
    };
    (from != to && wanted.contains(&kind)).then_some((kind, from, to))
}

/// A checkout's or merge's trigger from `from` to `to`: the files the
/// watcher saw git write now, git's list after (`later`); git's list now
/// when the watcher saw nothing.
fn rewrote(
    root: &Path,
    seen: Option<&[PathBuf]>,
    later: &mut Vec<Later>,
    trigger: Resolved,
    from: &str,
    to: &str,
) -> Resolved {
    match seen {
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
            files: Some(files_or_gone(
                root,
                range_files(root, from, to),
                seen.unwrap_or_default(),
            )),
            ..trigger
        },
    }
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
#[path = "resolve_tests.rs"]
mod tests;
