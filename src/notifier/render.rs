//! Templates: an event is rendered once into every form a channel needs —
//! the one-line summary (console), the plain-text body (desktop, email),
//! the HTML part (email) and the JSON line (file) — and every channel
//! reuses the same [`Rendered`]. An email digest joins several.
//!
//! No I/O and no styling here: the console adds colour, the desktop
//! channel escapes markup.

use std::fmt::Write;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::event::{Level, NotificationEvent};
use super::router::severity_counts;

/// One event in every form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    pub event: NotificationEvent,
    /// The worktree's directory name, so mail from several projects reads apart.
    pub project: String,
    /// `title · bgtask show 42`.
    pub line: String,
    /// The plain-text body: details, counts, top findings, the hint.
    pub text: String,
    /// The HTML section of an email.
    pub html: String,
    /// One line of the JSON log (no newline).
    pub json: String,
}

fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Escapes text for HTML (and for notification body markup).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(level: Level) -> &'static str {
    match level {
        Level::Info => "#555555",
        Level::Warning => "#9a6700",
        Level::Error => "#cf222e",
        Level::Critical => "#82071e",
    }
}

fn counts_line(event: &NotificationEvent) -> Option<String> {
    event.counts.as_ref().map(|c| {
        let mut parts = vec![format!("{} new", c.new)];
        if c.fixed > 0 {
            parts.push(format!("{} fixed", c.fixed));
        }
        parts.push(format!("{} in all", c.findings));
        if !c.by_severity.is_empty() {
            parts.push(format!("reported: {}", severity_counts(&c.by_severity)));
        }
        parts.join(" · ")
    })
}

fn text(event: &NotificationEvent, counts: Option<&str>, hint: Option<&str>) -> String {
    let mut text = String::new();
    for d in &event.details {
        let _ = writeln!(text, "{d}");
    }
    if let Some(c) = counts {
        let _ = writeln!(text, "{c}");
    }
    for f in &event.top {
        let _ = writeln!(
            text,
            "{:<8} {} {} {}: {}",
            f.severity.as_str(),
            f.analyzer,
            f.rule,
            f.location.as_deref().unwrap_or("-"),
            f.message
        );
    }
    let more = event.counts.as_ref().map_or(0, |c| {
        c.by_severity
            .values()
            .sum::<usize>()
            .saturating_sub(event.top.len())
    });
    match hint {
        Some(h) if more > 0 => {
            let _ = writeln!(text, "… and {more} more: {h}");
        }
        Some(h) => {
            let _ = writeln!(text, "details: {h}");
        }
        None => {}
    }
    text.trim_end().to_owned()
}

fn html(event: &NotificationEvent, counts: Option<&str>, hint: Option<&str>) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<h3 style=\"color:{}\">[{}] {}</h3>",
        colour(event.level),
        event.level,
        escape_html(&event.title)
    );
    for d in &event.details {
        let _ = write!(html, "<p>{}</p>", escape_html(d));
    }
    if let Some(c) = counts {
        let _ = write!(html, "<p><b>{}</b></p>", escape_html(c));
    }
    if !event.top.is_empty() {
        html.push_str("<table cellpadding=\"4\"><tr>");
        for h in ["severity", "analyzer", "rule", "where", "message"] {
            let _ = write!(html, "<th align=\"left\">{h}</th>");
        }
        html.push_str("</tr>");
        for f in &event.top {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.severity.as_str(),
                escape_html(&f.analyzer),
                escape_html(&f.rule),
                escape_html(f.location.as_deref().unwrap_or("-")),
                escape_html(&f.message)
            );
        }
        html.push_str("</table>");
    }
    if let Some(h) = hint {
        let _ = write!(html, "<p>Details: <code>{}</code></p>", escape_html(h));
    }
    html
}

impl Rendered {
    pub fn new(event: NotificationEvent, project: &str) -> Rendered {
        let hint = event.run_id.map(|id| format!("bgtask show {id}"));
        let line = match &hint {
            Some(h) => format!("{} · {h}", event.title),
            None => event.title.clone(),
        };
        let counts = counts_line(&event);
        let text = text(&event, counts.as_deref(), hint.as_deref());
        let html = html(&event, counts.as_deref(), hint.as_deref());
        let json = json!({
            "time": rfc3339(event.at_ms),
            "event": event.kind.as_str(),
            "severity": event.level.as_str(),
            "project": project,
            "task": event.task,
            "run_id": event.run_id,
            "title": event.title,
            "details": event.details,
            "counts": event.counts,
            "top_findings": event.top,
        })
        .to_string();
        Rendered {
            event,
            project: project.to_owned(),
            line,
            text,
            html,
            json,
        }
    }
}

/// An email made of one or more rendered events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One email for `events` (a digest when there are several), worst first.
pub fn email(events: &[&Rendered]) -> Email {
    let mut sorted: Vec<&&Rendered> = events.iter().collect();
    sorted.sort_by(|a, b| {
        b.event
            .level
            .cmp(&a.event.level)
            .then(a.event.at_ms.cmp(&b.event.at_ms))
    });
    let project = sorted.first().map_or("", |r| r.project.as_str());
    let subject = match sorted.as_slice() {
        [] => format!("[bgtask] {project}: nothing to report"),
        [one] => format!("[bgtask] {project}: {}", one.event.title),
        many => format!(
            "[bgtask] {project}: {} notifications, worst {}",
            many.len(),
            many[0].event.level
        ),
    };
    let mut text = String::new();
    let mut html = format!(
        "<html><body style=\"font-family:sans-serif\"><p>bgtask in <b>{}</b>:</p>",
        escape_html(project)
    );
    for r in &sorted {
        let _ = writeln!(
            text,
            "[{}] {}  ({})",
            r.event.level,
            r.event.title,
            rfc3339(r.event.at_ms)
        );
        if !r.text.is_empty() {
            let _ = writeln!(text, "{}", r.text);
        }
        text.push('\n');
        html.push_str(&r.html);
        html.push_str("<hr>");
    }
    html.push_str("</body></html>");
    Email {
        subject,
        text: text.trim_end().to_owned() + "\n",
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Severity;
    use crate::notifier::event::{Counts, EventKind, TopFinding};

    fn issues() -> NotificationEvent {
        let mut e = NotificationEvent::new(
            EventKind::IssuesFound,
            Level::Error,
            "security: 2 new findings (1 high, 1 low)",
        );
        e.at_ms = 0;
        e.task = Some("security".to_owned());
        e.run_id = Some(42);
        e.counts = Some(Counts {
            findings: 3,
            new: 2,
            fixed: 1,
            by_severity: [(Severity::High, 1), (Severity::Low, 1)].into(),
        });
        e.top = vec![TopFinding {
            severity: Severity::High,
            analyzer: "bandit".to_owned(),
            rule: "B105".to_owned(),
            message: "Possible hardcoded password: '<secret>'".to_owned(),
            location: Some("src/app.py:3".to_owned()),
        }];
        e
    }

    #[test]
    fn one_event_in_every_form() {
        let r = Rendered::new(issues(), "demo");
        assert_eq!(
            r.line,
            "security: 2 new findings (1 high, 1 low) · bgtask show 42"
        );
        assert_eq!(
            r.text,
            "2 new · 1 fixed · 3 in all · reported: 1 high, 1 low\n\
             high     bandit B105 src/app.py:3: Possible hardcoded password: '<secret>'\n\
             … and 1 more: bgtask show 42"
        );
        assert!(r.html.contains("&lt;secret&gt;"), "{}", r.html);
        assert!(!r.html.contains("<secret>"), "escaped");
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert_eq!(v["event"], "issues_found");
        assert_eq!(v["severity"], "error");
        assert_eq!(v["run_id"], 42);
        assert_eq!(v["counts"]["new"], 2);
        assert_eq!(v["top_findings"][0]["rule"], "B105");
        assert!(!r.json.contains('\n'));
    }

    #[test]
    fn events_without_a_run_have_no_hint() {
        let r = Rendered::new(
            NotificationEvent::config_invalid(&["x.json:1:1: bad".to_owned()]),
            "demo",
        );
        assert_eq!(
            r.line,
            "the config is invalid; the last good one stays in use"
        );
        assert_eq!(r.text, "x.json:1:1: bad");
    }

    #[test]
    fn a_digest_puts_the_worst_first() {
        let a = Rendered::new(NotificationEvent::test(), "demo");
        let b = Rendered::new(issues(), "demo");
        let one = email(&[&b]);
        assert_eq!(
            one.subject,
            "[bgtask] demo: security: 2 new findings (1 high, 1 low)"
        );
        let both = email(&[&a, &b]);
        assert_eq!(both.subject, "[bgtask] demo: 2 notifications, worst error");
        let first = both.text.lines().next().unwrap();
        assert!(first.starts_with("[error] security"), "{}", both.text);
        assert!(both.text.contains("[info] test notification"));
        assert!(both.html.contains("B105") && both.html.ends_with("</html>"));
    }
}
