//! The desktop channel: freedesktop notifications over the D-Bus session
//! bus (`org.freedesktop.Notifications`, via notify-rust on zbus).
//!
//! App name `bgtask`; the summary is the event's title, the body its
//! counts and top findings (markup escaped); urgency from the level (info
//! low, warning and error normal, critical critical). Where there is no
//! session bus or nobody serves notifications on it (CI, ssh, a headless
//! box) the channel turns itself off with one note, until the daemon
//! restarts or a reload changes the `desktop` section; any other failed send is tried once
//! more, then recorded as failed. Nothing here can fail or slow a job: it
//! runs on the notifier's thread, each call bounded by a timeout.

use std::time::Duration;

use notify_rust::{Notification, Timeout, Urgency};

use super::event::Level;
use super::render::{Rendered, escape_html};

/// One D-Bus call, at most.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Body lines shown on the desktop; the rest is in `bgtask show`.
const BODY_LINES: usize = 8;

/// What a send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopOutcome {
    Delivered,
    /// Sending failed twice; the channel stays on.
    Failed(String),
    /// The channel just turned itself off, and why (said once).
    Disabled(String),
    /// Off already: nothing was tried.
    Off,
}

#[derive(Debug, Default)]
pub struct Desktop {
    off: Option<String>,
}

fn urgency(level: Level) -> Urgency {
    match level {
        Level::Info => Urgency::Low,
        Level::Warning | Level::Error => Urgency::Normal,
        Level::Critical => Urgency::Critical,
    }
}

fn icon(level: Level) -> &'static str {
    match level {
        Level::Info => "dialog-information",
        Level::Warning => "dialog-warning",
        Level::Error | Level::Critical => "dialog-error",
    }
}

/// The body as sent: the first lines of the text, markup escaped.
pub fn body(r: &Rendered) -> String {
    let lines: Vec<&str> = r.text.lines().take(BODY_LINES).collect();
    escape_html(&lines.join("\n"))
}

/// Why there can be no desktop notification here, before trying: no
/// session bus address, and no socket where one would default to.
pub fn no_bus() -> Option<String> {
    no_bus_in(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS"),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

fn no_bus_in(
    address: Option<std::ffi::OsString>,
    runtime_dir: Option<std::ffi::OsString>,
) -> Option<String> {
    if address.is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let default = runtime_dir
        .map(|d| std::path::PathBuf::from(d).join("bus"))
        .filter(|p| p.exists());
    match default {
        Some(_) => None,
        None => Some(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus)"
                .to_owned(),
        ),
    }
}

/// Whether an error means nobody can show notifications here (as
/// opposed to one call going wrong).
fn unavailable(error: &str) -> bool {
    [
        "ServiceUnknown",
        // The bus tried to start a notification server and it died (no
        // display, say).
        "org.freedesktop.DBus.Error.Spawn",
        "NameHasNoOwner",
        "No such file or directory",
        "Connection refused",
        "Address",
        "address",
    ]
    .iter()
    .any(|s| error.contains(s))
}

async fn show(r: &Rendered) -> Result<(), String> {
    let mut n = Notification::new();
    n.appname("bgtask")
        .summary(&r.event.title)
        .body(&body(r))
        .icon(icon(r.event.level))
        .urgency(urgency(r.event.level))
        .timeout(Timeout::Default);
    match tokio::time::timeout(CALL_TIMEOUT, n.show_async()).await {
        Ok(Ok(_handle)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the notification server did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

impl Desktop {
    pub fn new() -> Desktop {
        Desktop::default()
    }

    fn turn_off(&mut self, why: String) -> DesktopOutcome {
        self.off = Some(why.clone());
        DesktopOutcome::Disabled(why)
    }

    pub async fn send(&mut self, r: &Rendered) -> DesktopOutcome {
        if self.off.is_some() {
            return DesktopOutcome::Off;
        }
        if let Some(why) = no_bus() {
            return self.turn_off(why);
        }
        let first = match show(r).await {
            Ok(()) => return DesktopOutcome::Delivered,
            Err(e) => e,
        };
        if unavailable(&first) {
            return self.turn_off(format!("no desktop notifications here: {first}"));
        }
        tokio::time::sleep(RETRY_AFTER).await;
        match show(r).await {
            Ok(()) => DesktopOutcome::Delivered,
            Err(e) if unavailable(&e) => {
                self.turn_off(format!("no desktop notifications here: {e}"))
            }
            Err(e) => DesktopOutcome::Failed(format!("{first}; retried: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::event::NotificationEvent;

    #[test]
    fn urgency_follows_the_level() {
        let rows = [
            (Level::Info, Urgency::Low),
            (Level::Warning, Urgency::Normal),
            (Level::Error, Urgency::Normal),
            (Level::Critical, Urgency::Critical),
        ];
        for (level, want) in rows {
            assert_eq!(urgency(level), want, "{level}");
        }
    }

    #[test]
    fn the_body_is_short_and_escaped() {
        let details: Vec<String> = (0..20).map(|i| format!("line {i} <b>")).collect();
        let r = Rendered::new(NotificationEvent::config_invalid(&details), "demo");
        let b = body(&r);
        assert_eq!(b.lines().count(), BODY_LINES);
        assert!(b.contains("line 0 &lt;b&gt;") && !b.contains("<b>"), "{b}");
    }

    #[test]
    fn errors_that_mean_nobody_is_there() {
        let rows = [
            (
                "org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable",
                true,
            ),
            ("I/O error: No such file or directory (os error 2)", true),
            ("I/O error: Connection refused (os error 111)", true),
            (
                "org.freedesktop.DBus.Error.Spawn.ChildSignaled: Process org.freedesktop.Notifications received signal 5",
                true,
            ),
            ("the notification server did not answer within 5s", false),
            ("org.freedesktop.DBus.Error.NoReply", false),
        ];
        for (e, want) in rows {
            assert_eq!(unavailable(e), want, "{e}");
        }
    }

    #[test]
    fn a_bus_is_an_address_or_the_default_socket() {
        let dir = tempfile::tempdir().unwrap();
        let rt = || Some(dir.path().as_os_str().to_owned());
        assert!(
            no_bus_in(None, None)
                .unwrap()
                .contains("DBUS_SESSION_BUS_ADDRESS")
        );
        assert!(
            no_bus_in(Some("".into()), rt()).is_some(),
            "no socket there yet"
        );
        assert!(no_bus_in(Some("unix:path=/x".into()), None).is_none());
        std::fs::write(dir.path().join("bus"), "").unwrap();
        assert!(no_bus_in(None, rt()).is_none());
    }
}
