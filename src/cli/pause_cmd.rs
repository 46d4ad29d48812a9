//! `bgtask pause` and `bgtask resume`: automation paused by hand, and how
//! `status` tells of it. While paused, saves, hooks, schedules and idle
//! spells still queue their jobs, but none starts until `resume`; work
//! asked for (`submit`, `retry`, the dashboard) runs. The daemon keeps the
//! pause across restarts.

use anyhow::bail;
use clap::Args;

use super::Ctx;
use super::jobs_cmd::{call, print_json};
use crate::exit;
use crate::ipc::{AutomationState, Request, Response};

pub const PAUSE_EXAMPLES: &str = "Examples:
  bgtask pause --reason \"big refactor\"
  bgtask pause -r rebasing --by ci-bot --json
  bgtask resume
While paused, saves, hooks, schedules and idle time queue their jobs (held: `bgtask queue`)
but start none; `bgtask submit` and `bgtask retry` still run. The pause outlives a restart
of the daemon. Exit code 4 when the daemon is not running.";

pub const RESUME_EXAMPLES: &str = "Examples:
  bgtask resume            # the held jobs start now
  bgtask resume --json
Exit code 4 when the daemon is not running.";

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Why: shown by `status`, `queue`, the dashboard and the event stream.
    #[arg(long, short = 'r', value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who pauses (default: your user name).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The user's name, as the shell has it.
fn user_name() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned())
}

fn ask(ctx: &Ctx, request: Request) -> anyhow::Result<Result<AutomationState, u8>> {
    Ok(match call(ctx, request)? {
        Ok(Response::Automation(state)) => Ok(state),
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(code) => Err(code),
    })
}

pub fn pause(ctx: &Ctx, args: &PauseArgs) -> anyhow::Result<u8> {
    let request = Request::Pause {
        reason: args.reason.clone().unwrap_or_default(),
        by: args.by.clone().or_else(user_name),
    };
    let state = match ask(ctx, request)? {
        Ok(state) => state,
        Err(code) => return Ok(code),
    };
    if args.json {
        print_json(&state)?;
    } else {
        anstream::println!("{}", status_line(&state));
        anstream::println!(
            "saves, hooks, schedules and idle time queue their jobs but start none; `bgtask submit` still runs"
        );
    }
    Ok(exit::OK)
}

pub fn resume(ctx: &Ctx, json: bool) -> anyhow::Result<u8> {
    let state = match ask(ctx, Request::Resume)? {
        Ok(state) => state,
        Err(code) => return Ok(code),
    };
    if json {
        print_json(&state)?;
    } else if state.held == 1 {
        anstream::println!("automation resumed; 1 held job starts now");
    } else if state.held > 1 {
        anstream::println!("automation resumed; {} held jobs start now", state.held);
    } else {
        anstream::println!("automation resumed (no job was held)");
    }
    Ok(exit::OK)
}

/// `3m`, `2h 5m`, `4d 1h`: how long ago, roughly.
fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `automation paused since 2026-12-04 14:03:12 (25m ago): big refactor
/// (by alice), 2 jobs held; `bgtask resume` resumes`.
pub fn status_line(a: &AutomationState) -> String {
    use chrono::TimeZone;
    if !a.paused {
        return "automation runs (not paused)".to_owned();
    }
    let since = a.since_ms.map_or_else(String::new, |ms| {
        let when = chrono::Local
            .timestamp_millis_opt(ms)
            .single()
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        format!(" since {when} ({} ago)", ago(crate::clock::now_ms() - ms))
    });
    let reason = a
        .reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or("no reason given");
    let by =
        a.by.as_deref()
            .map(|b| format!(" (by {b})"))
            .unwrap_or_default();
    let held = match a.held {
        1 => "1 job held".to_owned(),
        n => format!("{n} jobs held"),
    };
    format!("automation paused{since}: {reason}{by}, {held}; `bgtask resume` resumes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_long_ago_rounds_to_what_matters() {
        let rows = [
            (-5, "0s"),
            (42_000, "42s"),
            (25 * 60_000 + 3_000, "25m"),
            (2 * 3_600_000 + 5 * 60_000, "2h 5m"),
            (4 * 86_400_000 + 3_600_000, "4d 1h"),
        ];
        for (ms, want) in rows {
            assert_eq!(ago(ms), want, "{ms}");
        }
    }

    #[test]
    fn the_status_line_names_reason_who_and_held_jobs() {
        let mut a = AutomationState {
            paused: true,
            reason: Some("big refactor".into()),
            by: Some("alice".into()),
            since_ms: None,
            held: 2,
        };
        assert_eq!(
            status_line(&a),
            "automation paused: big refactor (by alice), 2 jobs held; `bgtask resume` resumes"
        );
        a.reason = Some(String::new());
        a.by = None;
        a.held = 1;
        assert_eq!(
            status_line(&a),
            "automation paused: no reason given, 1 job held; `bgtask resume` resumes"
        );
    }
}
