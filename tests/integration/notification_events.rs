//! Each notification delivery the daemon records is an event on its
//! stream (`notification_delivered`), as `bgtask events` shows it: JSON
//! with the channel, outcome, title, task and run, and one line for people.

use crate::events::Stream;
use crate::notifications::{HIGH_1, deliveries, scan, scan_project};

#[test]
fn a_recorded_notification_is_an_event_on_the_stream() {
    // The file channel (the JSON log) is on by default: no server needed.
    let p = scan_project("", "");
    p.start();
    let mut events = Stream::open(&p, &["--after", "0"]);
    let run = scan(&p, &[HIGH_1]);
    let told = events.until("the file channel's delivery", |e| {
        e["event"] == "notification_delivered" && e["channel"] == "file"
    });
    assert_eq!(told["outcome"], "delivered", "{told:#}");
    assert_eq!(told["notification"], "issues_found");
    assert_eq!(told["severity"], "error");
    assert_eq!(told["title"], "scan: 1 new finding (1 high)");
    assert_eq!(told["task"], "scan");
    assert_eq!(told["run_id"], run);
    assert!(told["error"].is_null(), "{told:#}");
    // The same delivery is in the log the dashboard and `bgtask
    // notifications` read.
    assert!(
        deliveries(&p)
            .iter()
            .any(|d| d["channel"] == "file" && d["run_id"] == run && d["outcome"] == "delivered"),
        "{:#?}",
        deliveries(&p)
    );
    // For people, and among the task's events.
    let seq = told["seq"].as_u64().unwrap().to_string();
    let after = (told["seq"].as_u64().unwrap() - 1).to_string();
    let line = p.bgtask(&["events", "--after", &after, "--count", "1"]);
    line.code(0);
    assert!(
        line.stdout.contains(&format!(
            "notification         file delivered: scan: 1 new finding (1 high) (run {run})"
        )),
        "event {seq}: {}",
        line.stdout
    );
    let by_task = p.bgtask(&[
        "events", "--json", "--after", &after, "--task", "scan", "--count", "1",
    ]);
    by_task.code(0);
    assert!(
        by_task.stdout.contains("\"notification_delivered\""),
        "{}",
        by_task.stdout
    );
    p.stop();
}
