//! The tests of `resolve.rs`: real repositories, real git.

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
    let mut merged = hook("post-merge", &["0"], "", &two);
    if let Arrival::Hook(h) = &mut merged {
        h.orig_head = Some(one.clone());
    }
    for (git, kind) in [
        (moved(&one, &two, checkout), TriggerKind::Checkout),
        (
            hook("post-checkout", &[&one, &two, "1"], "", &two),
            TriggerKind::Checkout,
        ),
        (
            moved(&one, &two, Some("merge topic: Fast-forward")),
            TriggerKind::Merge,
        ),
        (merged, TriggerKind::Merge),
    ] {
        let batch = [seen.clone(), git];
        let r = super::resolve(root, &batch, &all());
        assert_eq!(r.now.len(), 2, "{r:?}");
        assert_eq!(r.now[1].kind, kind);
        assert_eq!(files(&r.now[1]), ["a.py", "other.py"]);
        let [later] = &r.later[..] else {
            panic!("{r:?}")
        };
        assert_eq!(later.from, one);
        let rest = r
            .later
            .into_iter()
            .next()
            .unwrap()
            .rest(root, &batch)
            .unwrap();
        assert_eq!(rest.kind, kind);
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
