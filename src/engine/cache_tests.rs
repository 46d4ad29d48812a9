//! Tests of the result cache's keys and entries.

use super::*;
use crate::analyze::RunStatus;
use crate::analyze::parsers::testing::builtin;
use crate::state::state_dir;

#[test]
fn the_state_directory_never_makes_a_deleted_worktree_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("checkout");
    assert!(state_dir(&root).is_err());
    assert!(!root.exists());
    std::fs::create_dir(&root).unwrap();
    let state = state_dir(&root).unwrap();
    assert_eq!(
        std::fs::read_to_string(state.join(".gitignore")).unwrap(),
        "*\n"
    );
    assert_eq!(state_dir(&root).unwrap(), state, "twice is fine");
}
use crate::config::raw::Category;

#[test]
fn shared_keys_are_the_same_on_another_machine_and_absent_when_they_cannot_be() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for root in [a.path(), b.path()] {
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    }
    let files = vec![PathBuf::from("a.py")];
    let bandit = builtin("bandit");
    let here = ToolInfo {
        path: "/usr/bin/bandit".into(),
        version: Some("1.9.4".into()),
    };
    let there = ToolInfo {
        path: "/home/me/.venv/bin/bandit".into(),
        ..here.clone()
    };
    let ka = ResultCache::keys(&bandit, Some(&here), a.path(), &files, None);
    let kb = ResultCache::keys(&bandit, Some(&there), b.path(), &files, None);
    assert_ne!(ka.local, kb.local, "local keys know the tool's path");
    assert!(ka.shared.is_some());
    assert_eq!(ka.shared, kb.shared, "the same tool version and files");
    std::fs::write(b.path().join("a.py"), "x = 2\n").unwrap();
    let changed = ResultCache::keys(&bandit, Some(&there), b.path(), &files, None);
    assert_ne!(ka.shared, changed.shared);
    let unknown = ToolInfo {
        version: None,
        ..here.clone()
    };
    let none = |k: Keys| k.shared.is_none();
    assert!(none(ResultCache::keys(
        &bandit,
        Some(&unknown),
        a.path(),
        &files,
        None
    )));
    assert!(none(ResultCache::keys(
        &bandit,
        Some(&here),
        a.path(),
        &files,
        Some(".venv@1")
    )));
    assert!(none(ResultCache::keys(
        &builtin("pip-audit"),
        Some(&here),
        a.path(),
        &files,
        None
    )));
    // A tool of the repository: known by its text, wherever it is.
    for (root, text) in [(a.path(), "echo 1\n"), (b.path(), "echo 1\n")] {
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/lint.sh"), text).unwrap();
    }
    std::fs::write(b.path().join("a.py"), "x = 1\n").unwrap();
    let script = |root: &Path| ToolInfo {
        path: root.join("bin/lint.sh"),
        version: None,
    };
    let sa = ResultCache::keys(&bandit, Some(&script(a.path())), a.path(), &files, None);
    let sb = ResultCache::keys(&bandit, Some(&script(b.path())), b.path(), &files, None);
    assert!(sa.shared.is_some());
    assert_eq!(sa.shared, sb.shared);
    std::fs::write(b.path().join("bin/lint.sh"), "echo 2\n").unwrap();
    let edited = ResultCache::keys(&bandit, Some(&script(b.path())), b.path(), &files, None);
    assert_ne!(sa.shared, edited.shared);
}

#[test]
fn key_changes_with_content_tool_and_definition() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    let bandit = builtin("bandit");
    let tool = ToolInfo {
        path: "/bin/bandit".into(),
        version: Some("1.9.4".into()),
    };
    let files = vec![PathBuf::from("a.py")];
    let k1 = ResultCache::key(&bandit, Some(&tool), root, &files, None);
    assert_eq!(
        k1,
        ResultCache::key(&bandit, Some(&tool), root, &files, None)
    );
    let newer = ToolInfo {
        version: Some("1.9.5".into()),
        ..tool.clone()
    };
    assert_ne!(
        k1,
        ResultCache::key(&bandit, Some(&newer), root, &files, None)
    );
    assert_ne!(
        k1,
        ResultCache::key(&builtin("pylint"), Some(&tool), root, &files, None)
    );
    let seen = |env| ResultCache::key(&bandit, Some(&tool), root, &files, env);
    assert_ne!(
        seen(Some(".venv@1")),
        seen(Some(".venv@2")),
        "packages changed"
    );
    assert_ne!(seen(Some(".venv@1")), k1);
    std::fs::write(root.join("a.py"), "x = 2\n").unwrap();
    assert_ne!(
        k1,
        ResultCache::key(&bandit, Some(&tool), root, &files, None)
    );
}

#[test]
fn stores_only_cacheable_runs_and_gitignores_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::new(dir.path());
    let mut run = AnalyzerRun::skipped(
        "bandit",
        Category::Security,
        vec![],
        RunStatus::ToolError,
        "x".into(),
    );
    cache.put("k", &run, None);
    assert!(cache.get("k", false).is_none());
    run.status = RunStatus::Clean;
    cache.put("k", &run, None);
    assert_eq!(cache.get("k", false).unwrap().status, RunStatus::Clean);
    // A network audit that could audit only part (offline) is kept for
    // its hour too, so an offline machine does not pay for it each run.
    run.network = true;
    run.status = RunStatus::Partial;
    cache.put("audit", &run, None);
    assert_eq!(cache.get("audit", true).unwrap().status, RunStatus::Partial);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".bgtask/.gitignore")).unwrap(),
        "*\n"
    );
}

/// A clean run of `analyzer` with no reason (what a cache stores).
pub(in crate::engine) fn clean_run(analyzer: &str) -> AnalyzerRun {
    let mut run = AnalyzerRun::skipped(
        analyzer,
        Category::Security,
        vec![],
        RunStatus::Clean,
        String::new(),
    );
    run.reason = None;
    run
}

#[test]
fn entries_without_a_time_still_read_as_results_of_unknown_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::new(dir.path());
    cache.put("new", &clean_run("bandit"), None);
    let written = std::fs::read_to_string(cache.path("new")).unwrap();
    assert!(!written.contains("timing"), "{written}");
    // What a bgtask without time records wrote.
    let old = serde_json::json!({
        "created": SystemTime::now(),
        "run": clean_run("bandit"),
    });
    std::fs::write(cache.path("old"), old.to_string()).unwrap();
    assert_eq!(cache.get("old", false).unwrap().status, RunStatus::Clean);
    assert!(cache.times(None).is_empty());
}

#[test]
fn prune_by_age_then_size_deletes_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::new(dir.path());
    std::fs::create_dir_all(&cache.dir).unwrap();
    let old = SystemTime::now() - Duration::from_secs(10 * 86_400);
    for (name, when) in [
        ("a", old),
        ("b", SystemTime::now() - Duration::from_secs(60)),
        ("c", SystemTime::now()),
    ] {
        let path = cache.path(name);
        std::fs::write(&path, [b'x'; 100]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    assert_eq!(cache.usage(), (3, 300));
    let p = cache.prune_by(Duration::from_secs(7 * 86_400), Some(150));
    assert_eq!((p.deleted, p.bytes, p.kept), (2, 200, 1));
    assert!(cache.path("c").exists(), "the newest stays");
}

#[test]
fn a_clock_cannot_make_an_entry_valid() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::new(dir.path());
    let entry = |created: SystemTime, network: bool| {
        let mut run = clean_run("bandit");
        run.network = network;
        serde_json::to_vec(&serde_json::json!({ "created": created, "run": run })).unwrap()
    };
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    for (created, network, usable, why) in [
        (now, false, true, "made now"),
        (
            now + Duration::from_secs(30),
            false,
            true,
            "a clock 30 s ahead",
        ),
        (now + hour, false, false, "dated an hour ahead"),
        (now + 400 * 24 * hour, false, false, "dated next year"),
        (now - 6 * 24 * hour, false, true, "six days old"),
        (now - 8 * 24 * hour, false, false, "over a week old"),
        (now - 2 * hour, true, false, "an audit two hours old"),
    ] {
        let got = cache.import("k", &entry(created, network), network);
        assert_eq!(got.is_some(), usable, "{why}");
    }
    assert!(
        cache.import("k", b"{\"created\":", false).is_none(),
        "truncated"
    );
}

#[test]
fn per_file_keys_are_the_same_from_the_parts_a_run_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
    std::fs::write(root.join("pyproject.toml"), "[tool]\n").unwrap();
    let bandit = builtin("bandit");
    let (targets, configs) = (
        vec![PathBuf::from("a.py")],
        vec![PathBuf::from("pyproject.toml")],
    );
    let relevant = vec![PathBuf::from("a.py"), PathBuf::from("pyproject.toml")];
    let (whole, parts) = ResultCache::keys_and_parts(&bandit, None, root, &relevant, None);
    assert_eq!(
        whole,
        ResultCache::keys(&bandit, None, root, &relevant, None)
    );
    let files = (configs.as_slice(), targets.as_slice());
    let read_again = ResultCache::file_keys(&bandit, None, root, files, None, &FileParts::new());
    let from_parts = ResultCache::file_keys(&bandit, None, root, files, None, &parts);
    assert_eq!(read_again, from_parts);
    assert_ne!(
        from_parts[0], whole,
        "a file's entry is not a one-file run's"
    );
}
