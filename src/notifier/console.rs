//! The console channel: one line per notification on the daemon's stdout
//! (`bgtask start --foreground`, and the daemon log when detached), with a
//! severity icon and colour on a terminal, plain text for `NO_COLOR`, pipes
//! and files. Details are on demand: the line names `bgtask show RUN`, and
//! with `details` (`--dev`) the body follows, indented.
//!
//! [`ConsoleSink`] is reusable by any foreground mode; it owns only its
//! writer.

use std::io::Write;

use anstyle::{AnsiColor, Effects, Style};

use super::event::Level;
use super::render::Rendered;

fn style(level: Level) -> Style {
    match level {
        Level::Info => AnsiColor::Cyan.on_default(),
        Level::Warning => AnsiColor::Yellow.on_default(),
        Level::Error => AnsiColor::Red.on_default(),
        Level::Critical => AnsiColor::Red.on_default().effects(Effects::BOLD),
    }
}

fn icon(level: Level) -> &'static str {
    match level {
        Level::Info => "ℹ",
        Level::Warning => "⚠",
        Level::Error => "✖",
        Level::Critical => "‼",
    }
}

/// The line (and with `details`, the indented body) for one notification;
/// `fancy`: icons and ANSI colour.
pub fn format(r: &Rendered, fancy: bool, details: bool) -> String {
    let level = r.event.level;
    let time = crate::clock::time_of_day(r.event.at_ms, false);
    let mut out = if fancy {
        let s = style(level);
        format!(
            "{s}{} {time} {:<8}{s:#} {}\n",
            icon(level),
            level.as_str(),
            r.line
        )
    } else {
        format!(
            "{time} {:<8} {}\n",
            level.as_str().to_ascii_uppercase(),
            r.line
        )
    };
    if details {
        for l in r.text.lines() {
            out.push_str("    ");
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The console line of a recorded delivery (`bgtask logs --follow` shows
/// a run's notifications after its output), styled as [`format`] does.
pub fn format_recorded(at_ms: i64, severity: &str, line: &str, fancy: bool) -> String {
    let level = match severity {
        "critical" => Level::Critical,
        "error" => Level::Error,
        "warning" => Level::Warning,
        _ => Level::Info,
    };
    let time = crate::clock::time_of_day(at_ms, false);
    if fancy {
        let s = style(level);
        format!(
            "{s}{} {time} {:<8}{s:#} {line}\n",
            icon(level),
            level.as_str()
        )
    } else {
        format!("{time} {:<8} {line}\n", level.as_str().to_ascii_uppercase())
    }
}

/// Where console notifications go.
pub struct ConsoleSink {
    out: Box<dyn Write + Send>,
    fancy: bool,
    details: bool,
}

impl ConsoleSink {
    /// Stdout; icons and colour only on a terminal without `NO_COLOR`.
    pub fn stdout(details: bool) -> ConsoleSink {
        let fancy = std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        ConsoleSink::new(Box::new(std::io::stdout()), fancy, details)
    }

    pub fn new(out: Box<dyn Write + Send>, fancy: bool, details: bool) -> ConsoleSink {
        ConsoleSink {
            out,
            fancy,
            details,
        }
    }

    pub fn emit(&mut self, r: &Rendered) -> std::io::Result<()> {
        self.out
            .write_all(format(r, self.fancy, self.details).as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::event::NotificationEvent;

    fn rendered(level: Level) -> Rendered {
        let mut e = NotificationEvent::health_alert(level == Level::Error, "queue: 120 waiting");
        e.run_id = Some(3);
        Rendered::new(e, "demo")
    }

    #[test]
    fn plain_lines_have_no_escapes_or_icons() {
        let line = format(&rendered(Level::Warning), false, false);
        let (_time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, "WARNING  daemon health is warning · bgtask show 3\n");
        assert!(!line.contains('\u{1b}'));
        assert!(!line.contains('⚠'));
    }

    #[test]
    fn fancy_lines_are_coloured_by_level() {
        let rows = [
            (Level::Warning, "\u{1b}[33m", "⚠"),
            (Level::Error, "\u{1b}[31m", "✖"),
        ];
        for (level, colour, icon) in rows {
            let line = format(&rendered(level), true, false);
            assert!(line.starts_with(colour), "{level}: {line:?}");
            assert!(line.contains(icon), "{level}: {line:?}");
            assert!(line.contains("\u{1b}[0m"), "reset: {line:?}");
        }
    }

    #[test]
    fn details_follow_indented() {
        let out = format(&rendered(Level::Error), false, true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[1], "    queue: 120 waiting");
        assert_eq!(lines[2], "    details: bgtask show 3");
    }

    #[test]
    fn a_sink_writes_what_format_says() {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Shared::default();
        let mut sink = ConsoleSink::new(Box::new(buf.clone()), false, false);
        let r = rendered(Level::Error);
        sink.emit(&r).unwrap();
        let got = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(got, format(&r, false, false));
    }
}
