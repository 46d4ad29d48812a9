//! The daemon's lifecycle against the real binary: start, status, stop,
//! one daemon per worktree, stale sockets, the runtime directory, signals,
//! root refusal and the systemd unit (RELIABILITY 15, 16, 17, 20).

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Project, running, signal, wait_for};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn foreground(p: &Project) -> Child {
    p.command(&["start", "--foreground"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn start_status_stop() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();
    assert!(running(pid));
    let s = p.status();
    assert_eq!(s["running"], true);
    assert_eq!(s["pid"], pid);
    assert_eq!(s["workers"], 1);
    assert_eq!(s["config"]["stale"], false);
    assert_eq!(s["health"]["level"], "ok", "{s:#}");

    let text = p.bgtask(&["status"]);
    text.code(0);
    assert!(
        text.stdout.contains(&format!("running (pid {pid}, up ")),
        "{}",
        text.stdout
    );

    let again = p.bgtask(&["start"]);
    again.code(0);
    assert_eq!(again.stdout.trim(), format!("already running (pid {pid})"));

    // Private runtime dir, private socket.
    assert_eq!(mode(&p.runtime_dir()), 0o700);
    let socket = p.socket();
    assert_eq!(mode(&socket), 0o600);

    let restarted = p.bgtask(&["restart"]);
    restarted.code(0);
    let pid2 = p.daemon_pid().unwrap();
    assert!(
        restarted.stdout.contains(&format!("started (pid {pid2})")),
        "{}",
        restarted.stdout
    );
    assert_ne!(pid, pid2);
    assert!(!running(pid));
    let pid = pid2;

    p.stop();
    assert!(!running(pid));
    assert!(!socket.exists(), "the socket is removed at stop");
    let down = p.bgtask(&["status", "--json"]);
    down.code(4);
    assert_eq!(down.json()["running"], false);
    let down = p.bgtask(&["status"]);
    down.code(4);
    assert!(down.stdout.contains("not running"), "{}", down.stdout);
    // Commands that need the daemon say so, with the same exit code.
    let q = p.bgtask(&["queue"]);
    q.code(4);
    assert!(q.stderr.contains("bgtask start"), "{}", q.stderr);
    p.bgtask(&["stop"]).code(0);
}

/// RELIABILITY 15: twenty daemons started at once; one holds the lock.
#[test]
fn twenty_simultaneous_starts_make_one_daemon() {
    let p = Project::jobs(&[("a", "medium")], "");
    let mut children: Vec<Child> = (0..20).map(|_| foreground(&p)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut outputs = Vec::new();
    while children.len() > 1 {
        assert!(
            Instant::now() < deadline,
            "{} starts still running",
            children.len()
        );
        let mut i = 0;
        while i < children.len() {
            if children[i].try_wait().unwrap().is_some() {
                let out = children.remove(i).wait_with_output().unwrap();
                outputs.push(out);
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let winner = children.pop().unwrap();
    let pid = p.status()["pid"].as_u64().unwrap();
    assert_eq!(u64::from(winner.id()), pid);
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("already running (pid {pid})"),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    p.stop();
    let out = winner.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// RELIABILITY 16: the socket of a daemon killed with SIGKILL is probed, unlinked and
/// rebound; a socket someone else answers on is left alone.
#[test]
fn stale_socket_is_replaced_and_a_live_one_left_alone() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();
    let socket = p.socket();
    signal(pid, libc::SIGKILL);
    wait_for(10, "the daemon to die", || !running(pid));
    assert!(socket.exists(), "kill -9 leaves the socket behind");
    p.bgtask(&["status"]).code(4);
    let pid2 = p.start();
    assert_ne!(pid, pid2);
    p.stop();

    // Someone else listens on the daemon's socket path.
    let foreign = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let run = p.bgtask(&["start", "--foreground"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("another process answers on") && run.stderr.contains("not touching it"),
        "{}",
        run.stderr
    );
    assert!(socket.exists());
    std::os::unix::net::UnixStream::connect(&socket).expect("the foreign listener still answers");
    drop(foreign);
}

/// RELIABILITY 17: an unsafe `XDG_RUNTIME_DIR` is not used; a private
/// fallback is, and an unsafe fallback is refused with the fix.
#[test]
fn unsafe_runtime_dirs_fall_back_or_are_refused() {
    let p = Project::jobs(&[("a", "medium")], "");
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = p
        .env("XDG_RUNTIME_DIR", open.path().to_str().unwrap())
        .env("TMPDIR", tmp.path().to_str().unwrap());
    let pid = p.bgtask(&["start"]);
    pid.code(0);
    let fallback = tmp
        .path()
        .join(format!("bgtask-{}", unsafe { libc::getuid() }));
    assert_eq!(mode(&fallback), 0o700);
    assert!(
        std::fs::read_dir(&fallback).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "sock")),
        "the socket is in the private fallback"
    );
    assert!(
        std::fs::read_dir(open.path()).unwrap().next().is_none(),
        "nothing written into the open dir"
    );
    p.bgtask(&["status"]).code(0);
    // Said, not silent: in the log once, and in doctor.
    let said = "is not private: its mode is 777, open to other users";
    assert_eq!(
        p.daemon_log().matches(said).count(),
        1,
        "{}",
        p.daemon_log()
    );
    let doctor = p.bgtask(&["doctor"]);
    assert!(
        doctor.stdout.contains("a private fallback") && doctor.stdout.contains(said),
        "{}",
        doctor.stdout
    );
    p.stop();

    // The fallback itself opened up: refuse, and say how to fix it.
    std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = p.bgtask(&["start"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("open to other users")
            && run
                .stderr
                .contains(&format!("chmod 700 {}", fallback.display())),
        "{}",
        run.stderr
    );
}

/// The socket path may not be a symlink someone planted.
#[test]
fn a_symlinked_socket_path_is_refused() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();
    let socket = p.socket();
    p.stop();
    assert!(!running(pid));
    std::os::unix::fs::symlink("/tmp/elsewhere.sock", &socket).unwrap();
    let run = p.bgtask(&["start", "--foreground"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("is a symlink"), "{}", run.stderr);
}

/// RELIABILITY 20: SIGTERM with a job running stops intake, stops the job,
/// records it as interrupted and cleans up; it runs again at next start.
#[test]
fn sigterm_with_a_job_running_interrupts_it_and_it_runs_again() {
    let p = Project::jobs(&[("a", "medium")], r#""kill_grace": "500ms""#);
    p.file("hold-a", "");
    let pid = p.start();
    p.bgtask(&["submit", "a"]).code(0);
    wait_for(20, "the job to start", || {
        p.read("grandchild-a").trim().parse::<u32>().is_ok()
    });
    let grandchild: u32 = p.read("grandchild-a").trim().parse().unwrap();
    let socket = p.socket();
    signal(pid, libc::SIGTERM);
    wait_for(15, "the daemon to stop", || !running(pid));
    assert!(!running(grandchild), "the job's process group was killed");
    assert!(!socket.exists(), "socket removed");
    assert!(p.daemon_pid().is_none(), "pid file removed");
    assert_eq!(
        p.sql("SELECT state, note FROM jobs"),
        ["interrupted|interrupted by daemon shutdown; runs again at the next start"]
    );
    assert!(
        p.daemon_log().contains("stopping: no new work"),
        "{}",
        p.daemon_log()
    );

    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    p.start();
    wait_for(20, "the re-run", || {
        p.job_log().contains(&"end a 0".to_owned())
    });
    assert_eq!(p.job_log(), ["start a", "start a", "end a 0"]);
    wait_for(10, "the job to be done", || {
        p.sql("SELECT state FROM jobs") == ["done"]
    });
    p.stop();
}

/// A second signal kills the analyzers at once instead of waiting.
#[test]
fn a_second_signal_does_not_wait_for_the_grace_period() {
    let p = Project::empty();
    p.script("ignore-sigterm.sh").config(
        r#"{"execution": {"kill_grace": "20s"}, "daemon": {"max_rss_mb": 100000},
            "tasks": {"stubborn": {"analyzers": ["stubborn"]}},
            "analyzers": {"stubborn": {"command": "./bin/ignore-sigterm.sh", "mode": "project", "args": ["{root}/pids"], "parser": "exit-code"}}}"#,
    );
    let pid = p.start();
    p.bgtask(&["submit", "stubborn"]).code(0);
    wait_for(20, "the analyzer to start", || {
        p.read("pids").split_whitespace().count() == 2
    });
    let pids: Vec<u32> = p
        .read("pids")
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let asked = Instant::now();
    signal(pid, libc::SIGTERM);
    wait_for(10, "the first signal to be taken", || {
        p.daemon_log().contains("stopping: no new work")
    });
    assert!(running(pid), "the first signal waits for the grace period");
    signal(pid, libc::SIGTERM);
    wait_for(10, "the daemon to stop", || !running(pid));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    for child in pids {
        wait_for(5, "the analyzer to die", || !running(child));
    }
}

#[test]
fn root_needs_allow_root() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the root refusal cannot be exercised here");
        return;
    }
    let p = Project::jobs(&[("a", "medium")], "").env("BGTASK_ALLOW_ROOT", "0");
    let run = p.bgtask(&["start", "--foreground"]);
    run.code(64);
    assert!(run.stderr.contains("--allow-root"), "{}", run.stderr);
    let run = p.bgtask(&["start"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--allow-root"), "{}", run.stderr);
}

#[test]
fn service_install_writes_a_user_unit() {
    let p = Project::jobs(&[("a", "medium")], "");
    let config_home = tempfile::tempdir().unwrap();
    let p = p.env("XDG_CONFIG_HOME", config_home.path().to_str().unwrap());
    let run = p.bgtask(&["service", "install"]);
    run.code(0);
    let dir = config_home.path().join("systemd/user");
    let unit = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = unit.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("bgtask-") && name.ends_with(".service"),
        "{name}"
    );
    assert!(
        run.stdout
            .contains(&format!("systemctl --user enable --now {name}")),
        "{}",
        run.stdout
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("start --foreground"), "{text}");
    assert!(text.contains("Type=notify"), "{text}");
    assert!(text.contains("Restart=on-failure"), "{text}");
    assert!(text.contains("WatchdogSec="), "{text}");
    assert!(
        text.contains(&p.path().canonicalize().unwrap().display().to_string()),
        "{text}"
    );
    let printed = p.bgtask(&["service", "install", "--print"]);
    printed.code(0);
    assert_eq!(printed.stdout, text);
    p.bgtask(&["service", "uninstall"]).code(0);
    assert!(!unit.exists());
}

/// Under systemd (`Type=notify`, `WatchdogSec`): READY once it answers,
/// watchdog pings from the scheduler loop, STOPPING at stop.
#[test]
fn readiness_and_watchdog_pings_reach_notify_socket() {
    let p = Project::jobs(&[("a", "medium")], "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let p = p
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000");
    let mut child = foreground(&p);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen.iter().filter(|s| *s == "WATCHDOG=1").count() < 3 {
        let n = listener.recv(&mut buf).expect("a notification");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(seen[0], "READY=1", "{seen:?}");
    p.bgtask(&["status"]).code(0);
    p.stop();
    loop {
        let n = listener.recv(&mut buf).expect("STOPPING=1");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}

/// Issue item 7: with auto-init, the first start in a repository without a
/// config writes the one `bgtask init` would; without it, nothing is written.
#[test]
fn auto_init_writes_the_initial_config_only_when_asked() {
    let p = Project::fixture("python-app");
    let config = p.path().join(".background-tasks.json");
    let _ = std::fs::remove_file(&config);
    p.start();
    assert!(!config.exists(), "no config written without auto_init");
    p.stop();

    p.file(
        ".background-tasks.local.json",
        r#"{"daemon": {"auto_init": true, "max_rss_mb": 100000}}"#,
    );
    p.start();
    let written = std::fs::read_to_string(&config).expect("the initial config");
    let init = p.bgtask(&["init", "--stdout"]);
    init.code(0);
    assert_eq!(written, init.stdout);
    assert!(
        written.contains("bandit") && !written.contains("eslint"),
        "{written}"
    );
    assert_eq!(p.status()["config"]["files"].as_array().unwrap().len(), 2);
    p.stop();
}

/// `--dev` runs one worker with debug logs, and keeps one worker when the
/// config changes; without it a reload applies the new worker count.
#[test]
fn dev_keeps_one_worker_across_reloads() {
    let p = Project::jobs(&[("a", "medium")], r#""max_concurrent_tasks": 3"#);
    let config = p.read(".background-tasks.json");
    let child = p
        .command(&["start", "--dev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(20, "the dev daemon", || p.bgtask(&["status"]).code == 0);
    assert_eq!(p.status()["workers"], 1);
    p.config(&config.replace(
        r#""max_concurrent_tasks": 3"#,
        r#""max_concurrent_tasks": 4"#,
    ));
    p.bgtask(&["reload"]).code(0);
    assert_eq!(p.status()["workers"], 1, "--dev keeps one worker");
    p.bgtask(&["submit", "a"]).code(0);
    p.settle(20);
    p.stop();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DEBUG"),
        "debug logs in --dev"
    );

    p.start();
    assert_eq!(p.status()["workers"], 4);
    p.config(&config.replace(
        r#""max_concurrent_tasks": 3"#,
        r#""max_concurrent_tasks": 2"#,
    ));
    p.bgtask(&["reload"]).code(0);
    assert_eq!(p.status()["workers"], 2);
    p.stop();
}

/// A worktree deleted under its daemon (a removed checkout, a temporary
/// directory) stops the daemon at its next health check; nothing is
/// recreated there.
#[test]
fn a_deleted_worktree_stops_its_daemon() {
    let p = Project::empty();
    p.config(r#"{"daemon": {"health_interval": "1s"}}"#);
    let pid = p.start();
    let root = p.path().to_owned();
    std::fs::remove_dir_all(&root).unwrap();
    crate::harness::wait_for(20, "the daemon to stop", || !crate::harness::running(pid));
    let left: Vec<String> = walk_names(&root);
    assert!(!root.exists(), "nothing recreated: {left:?}");
}

/// Deleted while a job runs: the job's end writes nothing that brings the
/// worktree's path back, and the daemon stops all the same.
#[test]
fn a_worktree_deleted_during_a_job_stops_its_daemon() {
    let p = Project::empty();
    p.config(
        r#"{"daemon": {"health_interval": "1s"},
            "tasks": {"slow": {"analyzers": ["slow"]}},
            "analyzers": {"slow": {"command": "sleep", "args": ["2"], "mode": "project",
              "parser": "exit-code", "cache": false}}}"#,
    );
    let pid = p.start();
    p.bgtask(&["submit", "slow"]).code(0);
    crate::harness::wait_for(20, "the job to start", || {
        p.bgtask(&["status", "--json"]).json()["running_jobs"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let root = p.path().to_owned();
    std::fs::remove_dir_all(&root).unwrap();
    crate::harness::wait_for(20, "the daemon to stop", || !crate::harness::running(pid));
    let left: Vec<String> = walk_names(&root);
    assert!(!root.exists(), "nothing recreated: {left:?}");
}

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path().display().to_string());
        if e.path().is_dir() {
            out.extend(walk_names(&e.path()));
        }
    }
    out
}
