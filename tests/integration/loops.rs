//! Runs that change the files they read (RELIABILITY 29): a task's own
//! writes do not start it again, and a loop that slips through pauses the
//! task after three self-made runs, said once.

use crate::harness::{Project, wait_for};

fn project(analyzer: &str) -> Project {
    let p = Project::empty();
    p.script("rewrite.sh").script("write-other.sh");
    p.file(".gitignore", "runs.log\nstate/\n");
    p.config(&format!(
        r#"{{"daemon": {{"max_rss_mb": 100000}}, "execution": {{"max_retries": 0, "max_concurrent_tasks": 1}},
            "tasks": {{"fmt": {{"analyzers": ["{analyzer}"], "triggers": ["save"]}}}},
            "analyzers": {{
              "rewrite": {{"command": "./bin/rewrite.sh", "files": ["*.txt"], "args": ["{{root}}/runs.log", "{{files}}"],
                          "parser": "exit-code", "cache": false}},
              "write-other": {{"command": "./bin/write-other.sh", "files": ["*.txt"], "mode": "project",
                          "args": ["{{root}}"], "parser": "exit-code", "cache": false}}}},
            "triggers": {{"file_watch": {{"enabled": true, "debounce": "100ms"}}}}}}"#
    ));
    p.commit_all("setup");
    p.bgtask(&["trust", "--yes"]).code(0);
    p
}

fn runs(p: &Project) -> usize {
    p.read("runs.log").lines().count()
}

#[test]
fn reliability_29_a_run_that_rewrites_its_input_does_not_start_itself() {
    let p = project("rewrite");
    p.file("a.txt", "a\n");
    p.start();
    p.wait_watching();
    p.file("a.txt", "a edited\n");
    wait_for(30, "the run's own write to be seen", || {
        p.daemon_log()
            .contains("not run again: the save was of its own run's writes")
    });
    assert_eq!(runs(&p), 1, "{}", p.daemon_log());
    assert_eq!(p.read("a.txt"), "a edited\nformatted\n");
    // The user's next save is a change: it runs again.
    p.file("a.txt", "a again\n");
    wait_for(30, "the second run", || runs(&p) == 2);
    p.stop();
}

#[test]
fn reliability_29_a_loop_the_hashes_miss_pauses_after_three_runs() {
    let p = project("write-other");
    p.file("src.txt", "s\n");
    p.start();
    p.wait_watching();
    p.file("src.txt", "s edited\n");
    wait_for(30, "the task to pause", || {
        p.status()["paused"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    assert_eq!(p.status()["paused"][0], "fmt");
    // The user's save, then two self-made runs; the third is refused.
    assert_eq!(runs(&p), 3, "{}", p.daemon_log());
    let text = p.bgtask(&["status"]).stdout;
    assert!(text.contains("paused   fmt:"), "{text}");
    let events = p.sql("SELECT message FROM events WHERE kind = 'loop'");
    assert_eq!(events.len(), 1, "said once: {events:?}");
    assert!(events[0].contains("task fmt paused"), "{events:?}");
    // A save of the user's starts it again (a save within half a second
    // of the task's last run would still count as that run's).
    std::thread::sleep(std::time::Duration::from_millis(600));
    p.file("src.txt", "s edited again\n");
    wait_for(30, "a run after the user's save", || runs(&p) >= 4);
    p.stop();
}
