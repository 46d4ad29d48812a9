//! The daemon's event stream (`subscribe`, `bgtask events`): a job followed
//! from queued to finished, a save's trigger, catching up after the fact,
//! filters, and the stream's end when the daemon stops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Project;

/// `bgtask events --json …` running, its lines read as they come (each
/// must be JSON).
pub(crate) struct Stream {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Stream {
    pub(crate) fn open(p: &Project, args: &[&str]) -> Stream {
        let mut all = vec!["events", "--json"];
        all.extend_from_slice(args);
        let mut child = p
            .command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Stream {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads events until one matches `done`; returns it.
    #[track_caller]
    pub(crate) fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if done(&v) {
                        return v;
                    }
                }
                Err(e) => panic!("no {what} ({e}) in {:#?}", self.seen),
            }
        }
    }

    /// The kinds of the events seen so far about job `job_id`.
    fn job(&self, job_id: i64) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|e| e["job_id"] == job_id)
            .map(|e| e["event"].as_str().unwrap())
            .collect()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(event: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["event"] == event
}

#[test]
fn a_job_is_followed_from_queued_to_finished() {
    let p = Project::jobs(&[("a", "medium"), ("b", "low")], "");
    p.file("exit-b", "3");
    p.start();
    // From the daemon's first event: nothing is missed however late the
    // subscription is taken.
    let mut s = Stream::open(&p, &["--after", "0"]);
    p.bgtask(&["submit", "a"]).code(0);
    let done = s.until("a's end", is("job_finished"));
    assert_eq!(done["task"], "a");
    assert_eq!(done["state"], "done");
    assert_eq!(done["verdict"], "no findings");
    assert_eq!(done["findings"], 0);
    let job = done["job_id"].as_i64().unwrap();
    assert_eq!(
        s.job(job),
        [
            "job_queued",
            "job_started",
            "analyzer_started",
            "analyzer_finished",
            "job_finished"
        ]
    );
    let finished = s.seen.iter().find(|e| e["event"] == "analyzer_finished");
    assert_eq!(finished.unwrap()["analyzer"], "job-a");
    assert_eq!(finished.unwrap()["status"], "clean");
    let history: Value = p.bgtask(&["history", "--json"]).json();
    assert_eq!(done["run_id"], history[0]["run_id"], "{history:#}");
    // A failing analyzer, through the same stream.
    p.bgtask(&["submit", "b"]).code(0);
    let failed = s.until("b's end", is("job_finished"));
    assert_eq!(failed["task"], "b");
    let status = s
        .seen
        .iter()
        .rev()
        .find(|e| e["event"] == "analyzer_finished")
        .unwrap();
    assert_eq!(status["status"], "tool_error", "{status:#}");
    let seqs: Vec<u64> = s.seen.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one by one, none lost: {seqs:?}"
    );
    p.stop();
}

#[test]
fn a_save_is_a_trigger_and_stopping_the_daemon_ends_the_stream() {
    let p = Project::jobs(&[("a", "medium")], "");
    let config = p.read(".background-tasks.json").replace(
        r#""priority": "medium"}"#,
        r#""priority": "medium", "triggers": ["save"]}"#,
    );
    p.config(&config);
    p.bgtask(&["trust", "--yes"]).code(0);
    p.start();
    p.wait_watching();
    let mut s = Stream::open(&p, &["--after", "0"]);
    p.file("notes.txt", "saved\n");
    let trigger = s.until("the save", is("trigger_arrived"));
    assert_eq!(trigger["trigger"], "save");
    assert_eq!(trigger["files"], 1);
    let queued = s.until("the job", is("job_queued"));
    assert_eq!(queued["trigger"], "save");
    assert_eq!(queued["files"], 1);
    s.until("the run", is("job_finished"));
    p.bgtask(&["stop"]).code(0);
    s.until("the daemon stopping", is("stopping"));
    s.until("the end", is("stopped"));
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn events_are_caught_up_filtered_and_counted() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium")], "");
    p.start();
    p.bgtask(&["submit", "a", "b"]).code(0);
    crate::harness::wait_for(30, "both runs", || {
        p.bgtask(&["history", "--json"])
            .json()
            .as_array()
            .is_some_and(|r| r.len() == 2)
    });
    // After the fact: the kept events, only b's, only two of them.
    let run = p.bgtask(&[
        "events", "--json", "--after", "0", "--task", "b", "--count", "2",
    ]);
    run.code(0);
    let got: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 2, "{}", run.stdout);
    assert!(got.iter().all(|e| e["task"] == "b"), "{}", run.stdout);
    assert_eq!(got[0]["event"], "job_queued");
    // For people: one line per event.
    let run = p.bgtask(&["events", "--after", "0", "--task", "a", "--count", "1"]);
    run.code(0);
    assert!(run.stdout.contains("job 1 queued"), "{}", run.stdout);
    assert!(
        run.stdout.contains("a (manual: bgtask submit"),
        "{}",
        run.stdout
    );
    p.stop();
    let down = p.bgtask(&["events"]);
    down.code(4);
    assert!(down.stderr.contains("not running"), "{}", down.stderr);
}

/// `bgtask watch` beside a daemon that already runs follows it: one line
/// per result, and it ends when the daemon stops.
#[test]
fn watch_follows_a_daemon_that_already_runs() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let mut watch = p
        .command(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut said = String::new();
    err.read_line(&mut said).unwrap();
    assert!(said.contains("following the daemon (pid"), "{said}");
    p.bgtask(&["submit", "a"]).code(0);
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("job 1 done"), "{line}");
    assert!(line.contains("a: no findings (run 1"), "{line}");
    p.bgtask(&["stop"]).code(0);
    let rest: Vec<String> = out.lines().map(Result::unwrap).collect();
    assert!(
        rest.iter().any(|l| l.contains("daemon stopped")),
        "{rest:?}"
    );
    assert!(watch.wait().unwrap().success());
}
