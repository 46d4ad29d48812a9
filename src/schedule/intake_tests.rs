//! The intake's tests: time and git's state as plain values.

use super::*;
use crate::event::HookEvent;

fn saved(f: &str) -> Arrival {
    Arrival::Saved {
        files: vec![f.into()],
        rescan: false,
        not_files: None,
    }
}

fn hook(name: &str, operation: Option<&str>) -> Arrival {
    Arrival::Hook(HookEvent {
        hook: name.into(),
        args: Vec::new(),
        stdin: String::new(),
        head: None,
        orig_head: None,
        operation: operation.map(str::to_owned),
        skip: Vec::new(),
        at_ms: 0,
    })
}

const QUIET: GitState = GitState {
    index_locked: false,
    operation_in_progress: false,
    index_just_written: false,
};

#[test]
fn a_burst_is_one_batch_after_the_last_quiet_window() {
    let mut i = Intake::new(1, Window::for_debounce(100));
    for t in (0..100).step_by(2) {
        i.add(saved(&format!("f{}", t % 5)), t);
        assert!(i.take(t, QUIET).is_none());
    }
    assert_eq!(i.next_wakeup(), Some(198));
    assert!(i.take(197, QUIET).is_none());
    let batch = i.take(198, QUIET).unwrap();
    assert_eq!(batch.len(), 50);
    assert!(i.is_empty() && i.next_wakeup().is_none());
}

#[test]
fn a_stream_that_never_stops_fires_at_the_cap() {
    let w = Window::for_debounce(100);
    let mut i = Intake::new(1, w);
    let mut fired = Vec::new();
    for t in (0..12_000).step_by(50) {
        i.add(saved("f"), t);
        if i.take(t, QUIET).is_some() {
            fired.push(t);
        }
    }
    assert_eq!(fired, [w.cap, 2 * w.cap + 50]);
}

#[test]
fn a_batch_due_just_as_git_let_go_of_the_index_settles_for_the_head_move() {
    // No hooks deliver here (the watcher's HEAD event is all there is).
    let w = Window {
        hooks: false,
        ..Window::for_debounce(50)
    };
    let mut i = Intake::new(1, w);
    let written = GitState {
        index_just_written: true,
        ..QUIET
    };
    // Due just as git let go of the index (never seen held): settles
    // as after a lock, and the HEAD move right behind joins the batch.
    i.add(saved("a"), 0);
    assert!(i.take(50, written).is_none());
    assert_eq!(i.next_wakeup(), Some(100));
    i.add(
        Arrival::HeadMoved {
            from: Some("a".into()),
            to: Some("b".into()),
            how: None,
        },
        52,
    );
    assert_eq!(
        i.next_wakeup(),
        Some(52 + AFTER_HEAD),
        "git is done once HEAD moved"
    );
    assert!(i.take(51 + AFTER_HEAD, QUIET).is_none());
    assert_eq!(i.take(52 + AFTER_HEAD, QUIET).map(|b| b.len()), Some(2));
    // Without the index written, a due batch goes.
    i.add(saved("b"), 1_000);
    assert!(i.take(1_050, QUIET).is_some());
}

#[test]
fn index_lock_holds_the_batch_until_released_or_the_hold_cap() {
    let mut i = Intake::new(1, Window::for_debounce(100));
    i.add(saved("a"), 0);
    let locked = GitState {
        index_locked: true,
        ..QUIET
    };
    assert!(i.take(100, locked).is_none());
    assert_eq!(i.next_wakeup(), Some(110));
    i.add(saved("b"), 120);
    assert!(i.take(3_000, locked).is_none());
    // The lock went: one git window more, for the hook that follows;
    // the hook ends that wait, and the batch settles after it.
    assert!(i.take(3_050, QUIET).is_none());
    assert_eq!(i.next_wakeup(), Some(3_350));
    i.add(hook("post-checkout", None), 3_100);
    assert_eq!(i.next_wakeup(), Some(3_200));
    assert!(i.take(3_199, QUIET).is_none());
    assert_eq!(i.take(3_200, QUIET).unwrap().len(), 3);

    i.add(saved("c"), 10_000);
    assert!(i.take(39_999, locked).is_none());
    assert!(
        i.take(40_000, locked).is_some(),
        "a stale lock cannot hold forever"
    );
    // Events that keep coming after the lock went (a watcher catching
    // up on a big checkout) get a cap of their own, from the lock's end.
    i.add(saved("d"), 50_000);
    assert!(i.take(50_200, locked).is_none());
    for t in (50_300..55_300).step_by(100) {
        i.add(saved("e"), t);
        assert!(i.take(t, QUIET).is_none(), "{t}");
    }
    assert!(i.take(55_300, QUIET).is_some());
}

#[test]
fn a_deadline_moved_by_new_arrivals_is_not_polled_for() {
    let mut i = Intake::new(1, Window::for_debounce(100));
    i.add(saved("a"), 0);
    let locked = GitState {
        index_locked: true,
        ..QUIET
    };
    assert!(i.take(100, locked).is_none());
    assert_eq!(i.next_wakeup(), Some(110));
    i.add(saved("b"), 140);
    assert!(i.take(150, QUIET).is_none());
    assert_eq!(
        i.next_wakeup(),
        Some(240),
        "the new deadline, not a past recheck"
    );
}

#[test]
fn commits_inside_a_rebase_wait_for_its_end_or_its_closing_hook() {
    let busy = GitState {
        operation_in_progress: true,
        ..QUIET
    };
    let mut i = Intake::new(1, Window::for_debounce(2_000));
    i.add(hook("post-checkout", Some("rebase")), 0);
    for t in 1..=5 {
        i.add(hook("post-commit", Some("rebase")), t * 10);
    }
    assert!(i.take(1_000, busy).is_none());
    assert_eq!(i.next_wakeup(), Some(1_500));
    i.add(hook("post-rewrite", Some("rebase")), 1_200);
    assert!(i.take(1_499, busy).is_none(), "its own quiet window first");
    assert_eq!(i.take(1_500, busy).unwrap().len(), 7);

    // A cherry-pick sequence has no closing hook: its end is the marker going.
    i.add(hook("post-commit", Some("cherry-pick")), 5_000);
    i.add(hook("post-commit", Some("cherry-pick")), 5_010);
    assert!(i.take(6_000, busy).is_none());
    assert_eq!(i.take(6_500, QUIET).unwrap().len(), 2);

    // Saves made while a rebase is paused go on; its commits wait.
    i.add(hook("post-commit", Some("rebase")), 6_600);
    i.add(saved("fixed.py"), 6_650);
    assert!(
        i.take(8_649, busy).is_none(),
        "the save's quiet window first"
    );
    let saves = i.take(8_650, busy).unwrap();
    assert_eq!(saves.len(), 1);
    assert!(matches!(saves[0].1, Arrival::Saved { .. }));
    assert_eq!(i.len(), 1);
    i.add(saved("later.py"), 8_700);
    assert!(
        i.take(8_800, busy).is_none(),
        "a later save waits for its quiet window"
    );
    assert_eq!(i.take(10_700, busy).unwrap().len(), 1);
    assert!(i.take(11_100, busy).is_none());
    assert_eq!(i.take(11_200, QUIET).unwrap().len(), 1);

    // A plain commit is not held by someone else's operation state.
    i.add(hook("post-commit", None), 12_000);
    assert!(i.take(12_300, busy).is_some());
}

#[test]
fn a_head_move_waits_for_its_hook_only_where_hooks_deliver() {
    let moved = || Arrival::HeadMoved {
        from: None,
        to: None,
        how: None,
    };
    let w = Window::for_debounce(100);
    let mut i = Intake::new(1, w);
    i.add(saved("a"), 0);
    i.add(moved(), 1);
    assert_eq!(i.next_wakeup(), Some(301), "waits for the hook");
    i.add(hook("post-checkout", None), 5);
    assert_eq!(
        i.next_wakeup(),
        Some(5 + AFTER_HEAD),
        "the hook came after the move: git is done"
    );
    assert_eq!(i.take(5 + AFTER_HEAD, QUIET).unwrap().len(), 3);
    // The hook first (the watcher is behind): settle until the
    // watcher's view of the same move, which ends it.
    i.add(hook("post-checkout", None), 1_000);
    assert_eq!(i.next_wakeup(), Some(1_100));
    i.add(moved(), 1_010);
    assert_eq!(i.next_wakeup(), Some(1_010 + AFTER_HEAD));
    assert_eq!(i.take(1_010 + AFTER_HEAD, QUIET).unwrap().len(), 2);
    // An amend: `post-rewrite` follows `post-commit`, which settles.
    i.add(moved(), 1_500);
    i.add(hook("post-commit", None), 1_503);
    assert_eq!(i.next_wakeup(), Some(1_603));
    i.add(hook("post-rewrite", None), 1_506);
    assert_eq!(i.next_wakeup(), Some(1_603), "the settle stays");
    assert_eq!(i.take(1_603, QUIET).unwrap().len(), 3);
    // ... also when the watcher's view of the move comes last.
    i.add(hook("post-commit", None), 1_700);
    i.add(moved(), 1_702);
    assert_eq!(i.next_wakeup(), Some(1_800));
    assert_eq!(i.take(1_800, QUIET).unwrap().len(), 2);
    // A save after the move gets its own debounce.
    i.add(moved(), 2_000);
    i.add(saved("b"), 2_002);
    i.add(hook("post-checkout", None), 2_003);
    assert_eq!(i.next_wakeup(), Some(2_102));
    assert_eq!(i.take(2_102, QUIET).unwrap().len(), 3);
    // Without hooks, none is waited for.
    let mut i = Intake::new(1, Window { hooks: false, ..w });
    i.add(moved(), 0);
    assert_eq!(i.next_wakeup(), Some(AFTER_HEAD), "no hook will come");
    // A long debounce does not hold a commit: git's own window settles it.
    let mut i = Intake::new(1, Window::for_debounce(2_000));
    i.add(hook("post-commit", None), 0);
    assert_eq!(i.next_wakeup(), Some(300));
}

#[test]
fn a_head_move_after_the_lock_ends_the_wait_and_one_before_it_does_not() {
    let w = Window {
        hooks: false,
        ..Window::for_debounce(50)
    };
    let locked = GitState {
        index_locked: true,
        ..QUIET
    };
    let moved = |to: &str| Arrival::HeadMoved {
        from: Some("x".into()),
        to: Some(to.into()),
        how: None,
    };
    // A commit moved HEAD, then a checkout took the lock and wrote.
    let mut i = Intake::new(1, w);
    i.add(moved("commit"), 0);
    i.add(saved("a"), 2);
    assert!(i.take(52, locked).is_none(), "held while git writes");
    // The checkout moves HEAD before the next look sees the lock gone:
    // released right after the move.
    i.add(moved("checkout"), 58);
    assert!(i.take(57 + AFTER_HEAD, QUIET).is_none());
    assert_eq!(i.take(58 + AFTER_HEAD, QUIET).map(|b| b.len()), Some(3));
    // The lock went with no move yet: the settle, which the move cuts.
    i.add(saved("b"), 100);
    assert!(i.take(150, locked).is_none());
    assert!(i.take(160, QUIET).is_none());
    assert_eq!(i.next_wakeup(), Some(210));
    i.add(moved("checkout"), 165);
    assert_eq!(i.next_wakeup(), Some(165 + AFTER_HEAD));
    assert!(i.take(165 + AFTER_HEAD, QUIET).is_some());
    // Within a rebase, a move settles as long as any other arrival: its
    // next step may follow.
    let busy = GitState {
        operation_in_progress: true,
        ..QUIET
    };
    i.add(moved("pick 1"), 1_000);
    assert!(i.take(1_005, busy).is_none());
    assert_eq!(i.next_wakeup(), Some(1_050));
    i.add(moved("pick 2"), 1_030);
    assert!(i.take(1_035, busy).is_none());
    assert!(i.take(1_079, busy).is_none());
    assert_eq!(i.take(1_080, QUIET).map(|b| b.len()), Some(2));
}

#[test]
fn ids_continue_after_restored_ones() {
    let mut i = Intake::new(1, Window::for_debounce(100));
    i.restore(41, saved("a"), 0);
    assert_eq!(i.add(saved("b"), 0), 42);
}
