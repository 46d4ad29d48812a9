//! "Send a test" from the dashboard (`POST …/notifications/test`, what
//! `bgtask notify test` does) against the real SMTP server, driven by curl:
//! each channel's answer, the attempt in the delivery log, a bad channel
//! named in a 400, and a cross-origin request refused.

use crate::dashboard::{Dashboard, json};
use crate::notifications::scan_project;
use crate::notify_servers::Smtp;

/// Sending waits on the SMTP server (its own timeout is 30 s).
const SENDING: [&str; 2] = ["--max-time", "30"];

#[test]
fn a_test_notification_from_the_dashboard_is_sent_and_logged() {
    let Some(smtp) = Smtp::start() else { return };
    let p = scan_project("", &smtp.email_config("127.0.0.1", ""))
        .env("BGTASK_TEST_SMTP_PASSWORD", "s3cret");
    p.start();
    let d = Dashboard::start(&p);
    let (_, v) = d.get("/api/v1/projects");
    let id = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/projects/{id}/notifications");

    // The channels, from the config.
    let (code, v) = d.get(&format!("{base}/channels"));
    assert_eq!(code, 200, "{v}");
    let names: Vec<&str> = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["console", "desktop", "file", "email"], "{v:#}");
    assert_eq!(v["channels"][3]["on"], true, "{v:#}");
    assert_eq!(v["channels"][3]["min_severity"], "warning", "{v:#}");

    // Email only: the server's answer, and the attempt in the log.
    let (code, v) = d.post_with(&format!("{base}/test"), r#"{"channel": "email"}"#, &SENDING);
    assert_eq!(code, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v:#}");
    assert_eq!(results[0]["channel"], "email");
    assert_eq!(results[0]["outcome"], "delivered", "{v:#}");
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("accepted by 127.0.0.1:{} (STARTTLS)", smtp.port)),
        "{detail}"
    );
    assert_eq!(smtp.messages().len(), 1);
    let (_, log) = d.get(&format!("{base}?limit=5"));
    let last = &log["deliveries"][0];
    assert_eq!(
        (&last["channel"], &last["outcome"], &last["event"]),
        (&"email".into(), &"delivered".into(), &"test".into()),
        "{log:#}"
    );

    // No body: every channel, those off saying so (no desktop in tests).
    let test = format!("{}{base}/test", d.url);
    let (code, v) = json(d.curl(&[&SENDING[..], &["-X", "POST", &test]].concat()));
    assert_eq!(code, 200, "{v}");
    let outcomes: Vec<(&str, &str)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("console", "delivered"),
            ("desktop", "off"),
            ("file", "delivered"),
            ("email", "delivered")
        ],
        "{v:#}"
    );

    refused(&d, &base);
    assert_eq!(smtp.messages().len(), 2, "the two tests, nothing else");
    p.stop();
}

/// Bad requests: a channel that does not exist (400 naming the field and
/// the value), an unknown field, another site's page, an unknown project.
fn refused(d: &Dashboard, base: &str) {
    let (code, v) = d.post(&format!("{base}/test"), r#"{"channel": "pager"}"#);
    assert_eq!(code, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("channel") && message.contains("pager"),
        "{message}"
    );
    let (code, _) = d.post(&format!("{base}/test"), r#"{"chanel": "email"}"#);
    assert_eq!(code, 400, "an unknown field");
    // Another site's page: refused before anything is sent.
    let (code, v) = d.post_with(
        &format!("{base}/test"),
        "{}",
        &["-H", "Origin: http://attacker.example"],
    );
    assert_eq!(code, 403, "{v}");
    let (code, _) = d.post("/api/v1/projects/nope/notifications/test", "{}");
    assert_eq!(code, 404);
}
