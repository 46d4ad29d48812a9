//! Desktop notifications against a real D-Bus session bus and a real
//! notification server (dunst under Xvfb): what the server received (its
//! history, and the Notify call on the bus for the urgency), and a bus
//! with nobody serving notifications (the channel turns itself off once,
//! jobs are unaffected). The case of no bus at all is in
//! `notifications.rs`.

use crate::harness::{Project, wait_for};
use crate::notifications::{CRITICAL_3, HIGH_1, MEDIUM_2, outcomes, scan, scan_project};
use crate::notify_servers::Desktop;

fn project(desktop: &Desktop) -> Project {
    scan_project("", "").env("DBUS_SESSION_BUS_ADDRESS", &desktop.address)
}

/// Desktop deliveries of the daemon's run notifications.
fn run_deliveries(p: &Project) -> usize {
    outcomes(p)
        .iter()
        .filter(|(c, o, t)| c == "desktop" && o == "delivered" && t.starts_with("scan:"))
        .count()
}

#[test]
fn a_desktop_notification_reaches_the_notification_server() {
    let Some(desktop) = Desktop::start(true) else {
        return;
    };
    let p = project(&desktop);
    let test = p.bgtask(&["notify", "test", "--channel", "desktop"]);
    test.code(0);
    assert!(
        test.stdout.contains("desktop  delivered"),
        "{}",
        test.stdout
    );

    let monitor = desktop.monitor();
    p.start();
    let r = scan(&p, &[HIGH_1, MEDIUM_2]);
    wait_for(20, "the desktop delivery", || run_deliveries(&p) == 1);
    let shown = desktop.shown();
    assert_eq!(shown.len(), 2, "{shown:?}");
    let (app, summary, body) = &shown.iter().find(|n| n.1.starts_with("scan")).unwrap();
    assert_eq!(app, "bgtask");
    assert_eq!(summary, "scan: 2 new findings (1 high, 1 medium)");
    for want in ["2 new", "B105", "src/app.py:1", &format!("bgtask show {r}")] {
        assert!(body.contains(want), "{want:?} not in {body:?}");
    }
    // An `error` is normal urgency (1); a critical one is critical (2).
    scan(&p, &[HIGH_1, MEDIUM_2, CRITICAL_3]);
    wait_for(20, "the second desktop delivery", || {
        run_deliveries(&p) == 2
    });
    let calls = monitor.text();
    let urgencies: Vec<&str> = calls
        .split("string \"urgency\"")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().nth(2))
        .collect();
    assert_eq!(urgencies, ["1", "2"], "{calls}");
    assert!(
        calls.contains("string \"bgtask\""),
        "app name on the wire: {calls}"
    );
    p.stop();
}

#[test]
fn a_bus_without_a_notification_server_turns_the_channel_off_once() {
    let Some(desktop) = Desktop::start(false) else {
        return;
    };
    // By default the channel is on where there is a desktop: a bus with
    // nobody serving notifications is none, and not a failure.
    let auto = project(&desktop);
    let test = auto.bgtask(&["notify", "test"]);
    test.code(0);
    assert!(
        test.stdout.contains("desktop  off: no desktop here"),
        "{}",
        test.stdout
    );
    // Asked for explicitly, a missing desktop is a failure.
    let p = scan_project("", r#""desktop": {"enabled": true}"#)
        .env("DBUS_SESSION_BUS_ADDRESS", &desktop.address);
    let test = p.bgtask(&["notify", "test", "--channel", "desktop"]);
    test.code(69);
    assert!(test.stdout.contains("desktop  FAILED"), "{}", test.stdout);
    p.start();
    scan(&p, &[HIGH_1]);
    scan(&p, &[HIGH_1, CRITICAL_3]);
    wait_for(20, "both console notifications", || {
        outcomes(&p)
            .iter()
            .filter(|(c, _, _)| c == "console")
            .count()
            == 2
    });
    let desktop_rows: Vec<String> = outcomes(&p)
        .into_iter()
        .filter(|(c, _, _)| c == "desktop")
        .map(|(_, o, _)| o)
        .collect();
    // The `notify test` failure, then one note from the daemon.
    assert_eq!(desktop_rows, ["failed", "disabled"]);
    assert_eq!(
        p.sql("SELECT count(*) FROM jobs WHERE state = 'done'"),
        ["2"]
    );
    assert!(
        p.daemon_log().contains("desktop notifications are off"),
        "{}",
        p.daemon_log()
    );
    p.stop();
}
