//! Email against a real SMTP server on loopback (aiosmtpd with STARTTLS,
//! AUTH and a certificate from a private CA the config trusts through
//! `ca_file`): the message and both its bodies, implicit TLS, an outage
//! across a server restart (the outbox), a wrong password (recorded, not
//! retried), certificate and host name checks, no fallback to plaintext,
//! and no literal password in the repo config (RELIABILITY 25).

use crate::harness::{Project, wait_for};
use crate::notifications::{
    CRITICAL_3, HIGH_1, MEDIUM_2, deliveries, outcomes, scan, scan_project,
};
use crate::notify_servers::Smtp;

fn project(smtp: &Smtp, host: &str, password: &str) -> Project {
    scan_project("", &smtp.email_config(host, "")).env("BGTASK_TEST_SMTP_PASSWORD", password)
}

fn email_outcomes(p: &Project) -> Vec<String> {
    outcomes(p)
        .into_iter()
        .filter(|(c, _, _)| c == "email")
        .map(|(_, o, _)| o)
        .collect()
}

#[test]
fn an_email_arrives_over_starttls_with_both_bodies_and_the_findings() {
    let Some(smtp) = Smtp::start() else { return };
    let p = project(&smtp, "127.0.0.1", "s3cret");
    // Setup check first: no daemon needed.
    let probe = p.bgtask(&["notify", "test", "--channel", "email"]);
    probe.code(0);
    assert!(
        probe.stdout.contains(&format!(
            "email    delivered: accepted by 127.0.0.1:{} (STARTTLS) for dev@example.com",
            smtp.port
        )),
        "{}",
        probe.stdout
    );
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        smtp.messages()[0]["subject"],
        format!(
            "[bgtask] {}: test notification: this channel works",
            p.path().file_name().unwrap().to_string_lossy()
        )
    );

    p.start();
    let r = scan(&p, &[HIGH_1, MEDIUM_2, CRITICAL_3]);
    wait_for(30, "the email", || smtp.messages().len() == 2);
    let m = &smtp.messages()[1];
    assert_eq!(m["tls"], true, "over STARTTLS");
    assert_eq!(smtp.auth_log(), ["ok ci-bot", "ok ci-bot"]);
    assert_eq!(m["from"], "bgtask@example.com");
    assert_eq!(m["to"][0], "dev@example.com");
    assert_eq!(m["content_type"], "multipart/alternative");
    let subject = m["subject"].as_str().unwrap();
    assert!(
        subject.ends_with(": scan: 3 new findings (1 critical, 1 high, 1 medium)"),
        "{subject}"
    );
    let text = m["text"].as_str().unwrap();
    let html = m["html"].as_str().unwrap();
    for body in [text, html] {
        for want in [
            "B307",
            "Use of eval on input",
            "B105",
            "src/app.py:1",
            &format!("bgtask show {r}"),
        ] {
            assert!(body.contains(want), "{want:?} missing from\n{body}");
        }
    }
    // Worst first in the text.
    assert!(
        text.find("B307").unwrap() < text.find("B105").unwrap(),
        "{text}"
    );
    assert!(html.contains("<table"), "{html}");
    assert_eq!(email_outcomes(&p), ["delivered", "queued", "delivered"]);
    p.stop();
}

#[test]
fn an_smtp_outage_loses_nothing_and_never_holds_up_a_job() {
    let Some(mut smtp) = Smtp::start() else {
        return;
    };
    let p = project(&smtp, "127.0.0.1", "s3cret");
    p.start();
    smtp.stop();
    let r = scan(&p, &[CRITICAL_3]);
    // The job is done, recorded and told elsewhere, while the mail waits.
    assert_eq!(p.sql("SELECT state FROM jobs"), ["done"]);
    wait_for(30, "a failed attempt", || {
        email_outcomes(&p).contains(&"retrying".to_owned())
    });
    let failed = deliveries(&p)
        .into_iter()
        .find(|d| d["outcome"] == "retrying")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{failed}"
    );
    assert_eq!(failed["run_id"], r);
    assert_eq!(p.sql("SELECT state FROM notify_outbox"), ["pending"]);
    smtp.restart();
    wait_for(60, "the email after the server came back", || {
        smtp.messages().len() == 1
    });
    assert!(
        smtp.messages()[0]["subject"]
            .as_str()
            .unwrap()
            .ends_with(": scan: 1 new finding (1 critical)")
    );
    wait_for(10, "the delivery record", || {
        email_outcomes(&p).last().is_some_and(|o| o == "delivered")
    });
    assert_eq!(
        p.sql("SELECT state, attempts > 1 FROM notify_outbox"),
        ["sent|1"]
    );

    // Stopped with a message in the outbox: the next start sends it.
    smtp.stop();
    let r2 = scan(&p, &[CRITICAL_3, HIGH_1]);
    wait_for(30, "a failed attempt", || {
        p.sql("SELECT count(*) FROM notify_outbox WHERE state = 'pending' AND attempts > 0")
            == ["1"]
    });
    p.stop();
    smtp.restart();
    p.start();
    wait_for(60, "the email after a daemon restart", || {
        smtp.messages().len() == 2
    });
    assert!(
        smtp.messages()[1]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("bgtask show {r2}"))
    );
    assert_eq!(smtp.messages().len(), 2, "each message once");
    p.stop();
}

#[test]
fn a_wrong_password_is_recorded_and_not_retried() {
    let Some(smtp) = Smtp::start() else { return };
    let p = project(&smtp, "127.0.0.1", "wrong");
    let test = p.bgtask(&["notify", "test", "--channel", "email"]);
    test.code(69);
    assert!(
        test.stdout.contains("email    FAILED:") && test.stdout.contains("535"),
        "{}",
        test.stdout
    );
    p.start();
    scan(&p, &[CRITICAL_3]);
    wait_for(30, "the dead email", || {
        email_outcomes(&p).contains(&"dead".to_owned())
    });
    let dead = deliveries(&p)
        .into_iter()
        .find(|d| d["outcome"] == "dead")
        .unwrap();
    assert!(dead["error"].as_str().unwrap().contains("535"), "{dead}");
    // Dead after one attempt: a dead message is never tried again (no
    // retry storm; `mailer::tests::a_permanent_failure_is_tried_once`
    // follows it for two hours of paused time).
    assert_eq!(
        smtp.auth_log(),
        ["fail ci-bot", "fail ci-bot"],
        "one attempt by `notify test`, one by the daemon"
    );
    assert_eq!(
        p.sql("SELECT state, attempts FROM notify_outbox"),
        ["dead|1"]
    );
    assert!(smtp.messages().is_empty());
    p.stop();
}

#[test]
fn certificates_and_host_names_are_checked_and_plaintext_is_never_used() {
    // A certificate for `localhost` only: connecting as 127.0.0.1 fails
    // the host name check, as `localhost` it passes.
    let Some(smtp) = Smtp::start_with(true, "DNS:localhost") else {
        return;
    };
    let p = project(&smtp, "127.0.0.1", "s3cret");
    let run = p.bgtask(&["notify", "test", "--channel", "email"]);
    run.code(69);
    assert!(
        run.stdout.contains("FAILED") && run.stdout.contains("not valid for name \"127.0.0.1\""),
        "{}",
        run.stdout
    );
    assert!(smtp.messages().is_empty());
    let named = project(&smtp, "localhost", "s3cret");
    named
        .bgtask(&["notify", "test", "--channel", "email"])
        .code(0);
    assert_eq!(
        smtp.messages().len(),
        1,
        "the name on the certificate passes"
    );

    // No ca_file: the private CA is not trusted.
    let untrusted = scan_project(
        "",
        &smtp
            .email_config("localhost", "")
            .replace(&format!(r#""ca_file": "{}","#, smtp.ca().display()), ""),
    )
    .env("BGTASK_TEST_SMTP_PASSWORD", "s3cret");
    let run = untrusted.bgtask(&["notify", "test", "--channel", "email"]);
    run.code(69);
    assert!(
        run.stdout
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        run.stdout
    );
    assert_eq!(
        smtp.messages().len(),
        1,
        "nothing sent to an untrusted server"
    );

    // A server that offers no STARTTLS: refused, never sent in plaintext.
    let Some(plain) = Smtp::start_with(false, "") else {
        return;
    };
    let p = project(&plain, "127.0.0.1", "s3cret");
    let run = p.bgtask(&["notify", "test", "--channel", "email"]);
    run.code(69);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(plain.messages().is_empty(), "nothing in plaintext");
    assert!(plain.auth_log().is_empty(), "no password in plaintext");
}

#[test]
fn implicit_tls_works_too() {
    let Some(smtp) = Smtp::start_implicit() else {
        return;
    };
    let p = project(&smtp, "127.0.0.1", "s3cret");
    let run = p.bgtask(&["notify", "test", "--channel", "email"]);
    run.code(0);
    assert!(
        run.stdout
            .contains(&format!("127.0.0.1:{} (TLS)", smtp.port)),
        "{}",
        run.stdout
    );
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(smtp.messages()[0]["tls"], true);
    assert_eq!(smtp.auth_log(), ["ok ci-bot"]);
}

#[test]
fn a_literal_password_in_the_repo_config_is_refused_everywhere() {
    let p = Project::empty();
    p.config(
        r#"{"notifications": {"email": {"enabled": true, "smtp_host": "smtp.example.com",
            "username": "ci-bot", "password": "hunter2", "from": "a@example.com", "to": ["b@example.com"]}}}"#,
    );
    for args in [
        &["start", "--foreground"][..],
        &["notify", "test"],
        &["config", "validate"],
    ] {
        let run = p.bgtask(args);
        run.code(78);
        let out = format!("{}{}", run.stdout, run.stderr);
        assert!(
            out.contains("/notifications/email/password: a literal `password` is not allowed"),
            "{args:?}: {out}"
        );
        assert!(!out.contains("hunter2"), "the secret is not echoed: {out}");
    }
    // Plaintext to a host that is not loopback is refused the same way.
    p.config(
        r#"{"notifications": {"email": {"enabled": true, "smtp_host": "smtp.example.com", "tls": "none",
            "from": "a@example.com", "to": ["b@example.com"]}}}"#,
    );
    let run = p.bgtask(&["notify", "test", "--channel", "email"]);
    run.code(78);
    assert!(
        run.stderr.contains("only allowed to a loopback host"),
        "{}",
        run.stderr
    );
}
