//! Hostile repositories (RELIABILITY 26): a config file that is a link to
//! `/dev/zero`, a FIFO, 50 MB of JSON or 200 000 tasks — as one `git pull`
//! can bring — gets a typed error naming the file and the cap, costs
//! bounded memory, and a running daemon keeps its last good config and
//! keeps answering.

use std::path::Path;

use crate::harness::{Project, wait_for};

/// Makes a hostile file at a path.
type Make = fn(&Path);

/// The ways a repository can hold something hostile under the config's
/// name, each made by `make` at `path`.
fn hostile_configs() -> Vec<(&'static str, Make)> {
    vec![
        ("a link to /dev/zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap();
        }),
        ("a FIFO", |p| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }),
        ("50 MB", |p| {
            let mut text = String::from("{\"tasks\": {}, \"x\": \"");
            text.push_str(&"a".repeat(50 << 20));
            text.push_str("\"}");
            std::fs::write(p, text).unwrap();
        }),
        ("200 000 tasks", |p| {
            let tasks: Vec<String> = (0..200_000)
                .map(|i| format!("\"t{i}\": {{\"analyzers\": [\"bandit\"]}}"))
                .collect();
            std::fs::write(p, format!("{{\"tasks\": {{{}}}}}", tasks.join(", "))).unwrap();
        }),
    ]
}

/// Puts the hostile thing in place in one step (made aside, renamed over).
fn replace(path: &Path, make: Make) {
    let aside = path.with_extension("new");
    let _ = std::fs::remove_file(&aside);
    make(&aside);
    std::fs::rename(&aside, path).unwrap();
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn reliability_26_hostile_config_files_are_refused_by_validate_and_start() {
    let p = Project::empty();
    let config = p.path().join(".background-tasks.json");
    for (what, make) in hostile_configs() {
        replace(&config, make);
        let started = std::time::Instant::now();
        let run = p.bgtask(&["config", "validate"]);
        run.code(78);
        assert!(
            run.stderr.contains(".background-tasks.json:1:1: not read:")
                && run.stderr.contains("1 MiB"),
            "{what}: {}",
            run.stderr
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{what}: refused quickly"
        );
        // Named explicitly, the file is refused the same way.
        let run = p.bgtask(&["config", "validate", ".background-tasks.json"]);
        run.code(78);
        assert!(run.stderr.contains("not read:"), "{what}: {}", run.stderr);
        // A daemon never starts on it (and leaves nothing behind).
        let start = p.bgtask(&["start"]);
        assert_ne!(start.code, 0, "{what}");
        assert!(
            start.stderr.contains("not read:"),
            "{what}: {}",
            start.stderr
        );
        assert!(p.daemon_pid().is_none(), "{what}: no daemon left running");
    }
}

#[test]
fn reliability_26_a_pulled_hostile_config_keeps_the_daemon_on_its_last_good_one() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();
    let config = p.path().join(".background-tasks.json");
    let good = std::fs::read_to_string(&config).unwrap();
    for (what, make) in hostile_configs() {
        replace(&config, make);
        p.bgtask(&["reload"]);
        wait_for(10, "the config to go stale", || {
            p.status()["config"]["stale"] == true
        });
        let s = p.status();
        let problems = s["config"]["problems"].to_string();
        assert!(
            problems.contains(".background-tasks.json:1:1: not read:")
                && problems.contains("1 MiB"),
            "{what}: {problems}"
        );
        assert!(rss_kb(pid) < 100 * 1024, "{what}: {} kB", rss_kb(pid));
        // The last good config still runs jobs.
        p.bgtask(&["submit", "a"]).code(0);
        let aside = config.with_extension("good");
        std::fs::write(&aside, &good).unwrap();
        std::fs::rename(&aside, &config).unwrap();
        wait_for(10, "the good config again", || {
            p.status()["config"]["stale"] == false
        });
    }
    wait_for(20, "the jobs of the last good config", || {
        p.job_log()
            .iter()
            .filter(|l| l.starts_with("end a"))
            .count()
            == 4
    });
    assert_eq!(p.status()["pid"], pid, "no restart");
    p.stop();
}

/// Files the walk never yields but a file list can name (a hook's, a
/// save's, `--files`): a link to `/dev/zero` and a FIFO are passed over,
/// not read, by the in-process analyzer and the result cache alike.
#[test]
fn reliability_26_a_file_list_naming_a_fifo_or_dev_zero_costs_nothing() {
    let p = Project::empty();
    p.file("ok.py", "def f(x):\n    return x\n");
    std::os::unix::fs::symlink("/dev/zero", p.path().join("zero.py")).unwrap();
    let fifo =
        std::ffi::CString::new(p.path().join("fifo.py").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let run = p.bgtask(&["run", "profile", "--files", "ok.py", "zero.py", "fifo.py"]);
        run.code(0);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Ignore files are read by the walk as it enters a directory: a
/// `.gitignore` that is a link to `/dev/zero` or a FIFO must not hang or
/// balloon `bgtask run` or the daemon's watcher.
#[test]
fn reliability_26_hostile_ignore_files_do_not_stop_the_walk() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.file("ok.py", "x = 1\n");
    p.file("sub/b.py", "y = 1\n");
    std::os::unix::fs::symlink("/dev/zero", p.path().join(".gitignore")).unwrap();
    let fifo = std::ffi::CString::new(p.path().join("sub/.ignore").as_os_str().as_encoded_bytes())
        .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let run = p.bgtask(&["run", "profile"]);
    run.code(0);
    let pid = p.start();
    let watching = p.wait_watching();
    assert_eq!(watching["state"], "watching", "{watching}");
    assert!(rss_kb(pid) < 100 * 1024);
    p.stop();
}

/// A repository can commit `.bgtask/spool.jsonl` (as a link to /dev/zero,
/// or a FIFO): the daemon's drain and the hook's append refuse it without
/// blocking or reading, and the daemon answers.
#[test]
fn reliability_26_a_hostile_spool_is_never_read() {
    let p = Project::jobs(&[("a", "medium")], "");
    std::fs::create_dir_all(p.path().join(".bgtask")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", p.path().join(".bgtask/spool.jsonl")).unwrap();
    let pid = p.start();
    p.bgtask(&["status"]).code(0);
    assert!(rss_kb(pid) < 100 * 1024);
    p.stop();
}
