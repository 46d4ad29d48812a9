//! The runner against real misbehaving processes (RELIABILITY 9–14).

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Ended, Limits, Spec, run, run_blocking};

fn sh(script: &str) -> Spec {
    Spec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        cwd: std::env::temp_dir(),
        env: Vec::new(),
        timeout: Duration::from_secs(20),
        kill_grace: Duration::from_millis(300),
        limits: Limits::default(),
        stdout_keep: (1 << 20, 1 << 20),
        stderr_keep: (1 << 20, 1 << 20),
        on_spawn: None,
        log_file: None,
    }
}

fn running(pid: i32) -> bool {
    // A zombie is dead but still listed; look at its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// SIGKILL is delivered asynchronously: give the process a moment to die.
fn alive(pid: i32) -> bool {
    (0..100).all(|_| {
        let r = running(pid);
        if r {
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    })
}

/// From a plain thread and from inside a runtime alike, with the timeout
/// still enforced.
#[tokio::test]
async fn run_blocking_works_inside_a_runtime_and_outside() {
    let f = run_blocking(sh("echo inside"));
    assert!(matches!(f.ended, Ended::Exited(0)), "{:?}", f.ended);
    assert_eq!(f.stdout.bytes, b"inside\n");
    let f = std::thread::spawn(|| run_blocking(sh("echo outside")))
        .join()
        .unwrap();
    assert_eq!(f.stdout.bytes, b"outside\n");
    let slow = Spec {
        timeout: Duration::from_millis(200),
        ..sh("sleep 30")
    };
    assert!(matches!(run_blocking(slow).ended, Ended::TimedOut));
}

#[tokio::test]
async fn exit_code_and_output() {
    let f = run(
        sh("echo out; echo err >&2; exit 3"),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(f.ended, Ended::Exited(3)), "{:?}", f.ended);
    assert_eq!(f.stdout.bytes, b"out\n");
    assert_eq!(f.stderr.bytes, b"err\n");
    assert!(f.cpu.is_some());
    assert!(f.peak_rss_kb.unwrap() > 0);
}

#[tokio::test]
async fn missing_program_is_a_spawn_failure() {
    let mut spec = sh("");
    spec.program = PathBuf::from("/nonexistent/tool");
    let f = run(spec, CancellationToken::new()).await;
    match f.ended {
        Ended::SpawnFailed(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sigterm_ignorer_and_its_child_are_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "trap '' TERM; sleep 300 & echo $$ $! > {}; while :; do sleep 0.05; done",
        pids.display()
    );
    let mut spec = sh(&script);
    spec.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let f = run(spec, CancellationToken::new()).await;
    let took = started.elapsed();
    assert!(matches!(f.ended, Ended::TimedOut), "{:?}", f.ended);
    assert!(
        took < Duration::from_millis(500 + 300 + 1000),
        "slot freed late: {took:?}"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    for pid in text.split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        assert!(!alive(pid), "pid {pid} survived");
    }
}

#[tokio::test]
async fn grandchildren_do_not_outlive_the_run() {
    super::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // One grandchild stays in the group; one escapes it with setsid.
    let script = format!(
        "sleep 300 & a=$!; setsid sleep 301 & b=$!; echo $a $b > {}; exit 0",
        pids.display()
    );
    let f = run(sh(&script), CancellationToken::new()).await;
    assert!(matches!(f.ended, Ended::Exited(0)), "{:?}", f.ended);
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!alive(pids[0]), "grandchild in the group survived");
    // The setsid escapee was reparented to us and killed with the run.
    assert!(!alive(pids[1]), "setsid escapee survived the run");
}

async fn read_pid(path: &std::path::Path) -> i32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid in {}", path.display());
}

#[tokio::test]
async fn an_orphan_goes_with_its_own_run_and_the_records_name_it() {
    super::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Each run leaves an orphan: a setsid escapee whose parent exits at
    // once, so it is reparented to us while its run goes on.
    let leave = |name: &str| {
        format!("sh -c 'setsid sleep 300 & echo $! > {d}/{name}.tmp; mv {d}/{name}.tmp {d}/{name}'")
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut long = sh(&format!(
        "{}; while [ ! -e {d}/go ]; do sleep 0.05; done",
        leave("b")
    ));
    long.on_spawn = Some(tx);
    let long = tokio::spawn(run(long, CancellationToken::new()));
    let b = read_pid(&dir.path().join("b")).await;
    let short = run(
        sh(&format!("{}; sleep 0.5", leave("a"))),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(short.ended, Ended::Exited(0)), "{:?}", short.ended);
    let a = read_pid(&dir.path().join("a")).await;
    assert!(!alive(a), "the short run's orphan outlived it");
    assert!(
        running(b),
        "the long run's orphan was killed with the short run"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let f = long.await.unwrap();
    assert!(matches!(f.ended, Ended::Exited(0)), "{:?}", f.ended);
    assert!(!alive(b), "the long run's orphan outlived it");
    // The long run's analyzer and its orphan were both sent to be recorded.
    let mut recorded = Vec::new();
    while let Ok(s) = rx.try_recv() {
        recorded.push((s.pid, s.kind));
    }
    assert!(
        recorded.contains(&(b.cast_unsigned(), super::ProcessKind::Process)),
        "{recorded:?}"
    );
    assert_eq!(recorded[0].1, super::ProcessKind::Group);
}

#[tokio::test]
async fn output_flood_is_capped_without_newlines() {
    let mut spec = sh("head -c 200000000 /dev/zero; printf 'END' >&2");
    spec.stdout_keep = (1 << 20, 1 << 20);
    let f = run(spec, CancellationToken::new()).await;
    assert!(matches!(f.ended, Ended::Exited(0)), "{:?}", f.ended);
    assert_eq!(f.stdout.total, 200_000_000);
    assert!(f.stdout.truncated);
    assert!(f.stdout.bytes.len() < (2 << 20) + 100);
    assert_eq!(f.stderr.bytes, b"END");
}

#[tokio::test]
async fn stdin_is_empty_and_there_is_no_terminal() {
    let f = run(
        sh("if read line; then echo read; else echo eof; fi; (exec 3</dev/tty) 2>/dev/null && echo tty || echo notty"),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&f.stdout.bytes), "eof\nnotty\n");
}

#[tokio::test]
async fn memory_eater_is_killed_at_the_limit() {
    let mut spec = sh(
        "exec python3 -c 'import time\nx=[]\nwhile True:\n    x.append(bytearray(16*1024*1024))\n    time.sleep(0.02)'",
    );
    spec.limits.max_rss_kb = Some(150 * 1024);
    let f = run(spec, CancellationToken::new()).await;
    match f.ended {
        Ended::OutOfMemory { rss_kb } => assert!(rss_kb > 150 * 1024),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cpu_time_limit() {
    let mut spec = sh("while :; do :; done");
    spec.limits.cpu_seconds = Some(1);
    let f = run(spec, CancellationToken::new()).await;
    assert!(matches!(f.ended, Ended::CpuLimit), "{:?}", f.ended);
}

#[tokio::test]
async fn niceness_is_applied_and_environment_scrubbed() {
    let mut spec = sh("cut -d' ' -f19 /proc/self/stat; echo \"${GIT_DIR-unset} $NO_COLOR $EXTRA\"");
    spec.limits.nice = 10;
    spec.env = vec![("EXTRA".into(), "x".into())];
    let f = run(spec, CancellationToken::new()).await;
    assert_eq!(String::from_utf8_lossy(&f.stdout.bytes), "10\nunset 1 x\n");
}

#[tokio::test]
async fn cancellation_stops_the_group() {
    let token = CancellationToken::new();
    let t2 = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        t2.cancel();
    });
    let f = run(sh("sleep 30"), token).await;
    assert!(matches!(f.ended, Ended::Cancelled), "{:?}", f.ended);
    assert!(f.wall < Duration::from_secs(5));
}

#[tokio::test]
async fn a_fork_storm_still_going_at_the_kill_is_stopped_and_killed() {
    super::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // An escapee that ignores SIGTERM and forks 1500 grandchildren, one
    // after another: the run times out while it is still at it.
    let script = format!(
        "setsid sh -c 'trap \"\" TERM; i=0; while [ $i -lt 1500 ]; do sleep 300 & echo $! >> {d}/pids; i=$((i+1)); done; wait' & \
         while [ ! -s {d}/pids ]; do sleep 0.01; done; sleep 300"
    );
    let mut spec = sh(&script);
    spec.timeout = Duration::from_millis(300);
    spec.kill_grace = Duration::from_millis(100);
    let started = std::time::Instant::now();
    let f = run(spec, CancellationToken::new()).await;
    assert!(matches!(f.ended, Ended::TimedOut), "{:?}", f.ended);
    assert!(
        started.elapsed() < Duration::from_millis(300 + 100 + 1000),
        "slot freed late: {:?}",
        started.elapsed()
    );
    let text = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    let pids: Vec<i32> = text.lines().filter_map(|p| p.parse().ok()).collect();
    assert!(!pids.is_empty());
    let left: Vec<i32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "{} of the storm survived", left.len());
}
