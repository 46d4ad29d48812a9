//! Bulk actions on what a filter selects, from the CLI and the dashboard
//! (one implementation, `ipc::bulk`): cancel every waiting job of a task,
//! retry every failed run of a time window — running jobs and clean runs
//! left alone.

use serde_json::Value;

use crate::dashboard::{Dashboard, project_id};
use crate::harness::{Project, wait_for};

fn starts(p: &Project, task: &str) -> usize {
    p.job_log()
        .iter()
        .filter(|l| *l == &format!("start {task}"))
        .count()
}

fn submit(p: &Project, task: &str) {
    p.bgtask(&["submit", task]).code(0);
}

#[test]
fn bulk_cancel_and_retry_select_by_task_and_time() {
    let p = Project::jobs(&[("a", "medium"), ("b", "medium"), ("c", "medium")], "");
    p.file("exit-b", "3");
    p.start();
    submit(&p, "b");
    submit(&p, "c");
    p.settle(20);

    // `a` holds the only worker; `b` and `c` wait behind it.
    p.file("hold-a", "");
    submit(&p, "a");
    wait_for(20, "a to hold", || {
        p.read("grandchild-a").trim().parse::<u32>().is_ok()
    });
    submit(&p, "b");
    submit(&p, "c");
    let out = p
        .bgtask(&["cancel", "--waiting", "--task", "b", "--json"])
        .json();
    assert_eq!(out["selected"], 1, "{out}");
    assert_eq!(out["done"].as_array().unwrap().len(), 1, "{out}");

    let d = Dashboard::start(&p);
    let id = project_id(&d);
    let (code, out) = d.post(&format!("/api/v1/projects/{id}/bulk/cancel"), "{}");
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["selected"], 1, "only c waits now: {out}");
    let queue: Value = p.bgtask(&["queue", "--json"]).json();
    assert_eq!(queue, serde_json::json!([]), "{queue}");
    std::fs::remove_file(p.path().join("hold-a")).unwrap();
    p.settle(20);
    assert_eq!(
        (starts(&p, "a"), starts(&p, "b"), starts(&p, "c")),
        (1, 1, 1)
    );

    // b failed; its task is run again. a and c are clean.
    std::fs::remove_file(p.path().join("exit-b")).unwrap();
    let (code, out) = d.post(
        &format!("/api/v1/projects/{id}/bulk/retry"),
        r#"{"within": "soon"}"#,
    );
    assert_eq!(code, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("within"),
        "{out}"
    );
    let out = p
        .bgtask(&["retry", "--failed", "--since", "1h", "--json"])
        .json();
    assert_eq!(
        (
            out["selected"].as_u64(),
            out["done"].as_array().map(Vec::len)
        ),
        (Some(1), Some(1)),
        "{out}"
    );
    p.settle(20);
    assert_eq!(starts(&p, "b"), 2);
    let (code, out) = d.post(
        &format!("/api/v1/projects/{id}/bulk/retry"),
        r#"{"task": "b"}"#,
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["selected"], 0, "b's last run is clean now: {out}");
    p.stop();
}
