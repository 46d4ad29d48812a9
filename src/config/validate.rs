//! Phase 2: [`RawConfig`] → [`Config`], collecting every problem.
//!
//! Owns defaults, value ranges, name rules, duration/glob/cron compilation and
//! cross-references (a task naming an unknown analyzer). Each problem carries
//! the file, line:column and JSON pointer of the value at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::analyzer::{self, valid_name};
use super::error::Problem;
use super::issues::{Issues, duration, globs};
use super::load::Layers;
use super::model::{
    Channel, Config, EmailChannel, Execution, FileChannel, FileWatch, GitHooks, KNOWN_HOOKS,
    Notifications, NotifyPolicy, PasswordSource, ResourceLimits, Retention, Schedule, Scheduled,
    Task, Triggers,
};
use super::raw::{
    FailOn, NotifyLevel, Priority, RawConfig, RawEmailChannel, RawNotifications, RawTask,
    RawTriggers, TlsMode, TriggerKind,
};
use super::source::escape;

pub fn validate(layers: &Layers, raw: RawConfig) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let analyzers = analyzer::resolve(layers, raw.analyzers, &mut problems);
    let mut issues = Issues::new(layers, String::new(), &mut problems);

    if let Some(v) = raw.version
        && v != 1
    {
        issues.at(
            "/version",
            format!("unsupported config version {v}; this bgtask reads version 1"),
        );
    }

    let execution = execution(&mut issues, &raw.execution.unwrap_or_default());
    let limits = limits(&mut issues, &raw.resource_limits.unwrap_or_default());

    let mut tasks = BTreeMap::new();
    for (name, t) in raw.tasks.unwrap_or_default() {
        let base = format!("/tasks/{}", escape(&name));
        if let Some(task) = task(&mut issues, &base, name.clone(), t, &analyzers) {
            tasks.insert(name, task);
        }
    }

    let triggers = triggers(&mut issues, raw.triggers.unwrap_or_default());
    let notifications = notifications(&mut issues, raw.notifications.unwrap_or_default());
    let daemon = daemon(&mut issues, &raw.daemon.unwrap_or_default());
    let remote_cache = remote_cache(&mut issues, raw.cache.unwrap_or_default());
    let rt = raw.retention.unwrap_or_default();
    let retention = Retention {
        results_days: rt.results_days.unwrap_or(7),
        metrics_days: rt.metrics_days.unwrap_or(30),
        logs_days: rt.logs_days.unwrap_or(7),
    };

    if problems.is_empty() {
        Ok(Config {
            files: layers.files(),
            execution,
            limits,
            tasks,
            analyzers,
            triggers,
            notifications,
            retention,
            daemon,
            remote_cache,
        })
    } else {
        Err(problems)
    }
}

/// `cache.remote`: a URL whose scheme is one the stores speak (the store
/// itself is checked when opened), a non-empty secret command.
fn remote_cache(
    issues: &mut Issues<'_, '_>,
    c: super::raw::RawCache,
) -> Option<super::model::RemoteCache> {
    let r = c.remote?;
    let Some(url) = r.url else {
        issues.at("/cache/remote", "`cache.remote` needs a `url`");
        return None;
    };
    if let Some(why) = crate::engine::url_problem(&url) {
        issues.at("/cache/remote/url", why);
        return None;
    }
    if let Some(cmd) = &r.secret_command
        && cmd.first().is_none_or(|c| c.trim().is_empty())
    {
        issues.at(
            "/cache/remote/secret_command",
            "`secret_command` needs a program: [\"pass\", \"show\", \"bgtask-cache\"]",
        );
    }
    Some(super::model::RemoteCache {
        url,
        write: r.write.unwrap_or_default(),
        secret_command: r.secret_command,
    })
}

fn execution(issues: &mut Issues<'_, '_>, e: &super::raw::RawExecution) -> Execution {
    let parallelism = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    Execution {
        max_concurrent: positive(
            issues,
            "/execution/max_concurrent_tasks",
            e.max_concurrent_tasks,
        )
        .unwrap_or(parallelism),
        task_timeout: opt_duration(issues, "/execution/task_timeout", e.task_timeout.as_deref())
            .unwrap_or(Duration::from_secs(600)),
        max_retries: e.max_retries.unwrap_or(4),
        retry_delay: opt_duration(issues, "/execution/retry_delay", e.retry_delay.as_deref())
            .unwrap_or(Duration::from_secs(5)),
        max_queue_size: positive(issues, "/execution/max_queue_size", e.max_queue_size)
            .unwrap_or(100),
        kill_grace: opt_duration(issues, "/execution/kill_grace", e.kill_grace.as_deref())
            .unwrap_or(Duration::from_secs(5)),
    }
}

fn limits(issues: &mut Issues<'_, '_>, r: &super::raw::RawResourceLimits) -> ResourceLimits {
    let nice = r.nice.unwrap_or(10);
    if !(0..=19).contains(&nice) {
        issues.at(
            "/resource_limits/nice",
            format!("nice must be between 0 and 19, got {nice}"),
        );
    }
    if let Some(p) = r.max_cpu_percent
        && p == 0
    {
        issues.at(
            "/resource_limits/max_cpu_percent",
            "max_cpu_percent must be at least 1",
        );
    }
    ResourceLimits {
        max_memory_mb: match r.max_memory_mb {
            Some(0) => None,
            Some(mb) => Some(mb),
            None => Some(4096),
        },
        max_cpu_percent: r.max_cpu_percent,
        max_cpu_seconds: r.max_cpu_seconds.filter(|s| *s > 0),
        nice,
    }
}

fn daemon(issues: &mut Issues<'_, '_>, d: &super::raw::RawDaemon) -> super::model::Daemon {
    let interval = |issues: &mut Issues<'_, '_>, field: &str, v: Option<&str>, default: u64| match v
    {
        None => Some(Duration::from_secs(default)),
        Some(s) => duration(issues, &format!("/daemon/{field}"), s).filter(|d| !d.is_zero()),
    };
    let rate = d.failure_rate_warning.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&rate) {
        issues.at(
            "/daemon/failure_rate_warning",
            format!("must be between 0 and 1, got {rate}"),
        );
    }
    super::model::Daemon {
        auto_init: d.auto_init.unwrap_or(false),
        health_interval: interval(issues, "health_interval", d.health_interval.as_deref(), 300),
        cleanup_interval: interval(
            issues,
            "cleanup_interval",
            d.cleanup_interval.as_deref(),
            3600,
        ),
        max_rss_mb: d.max_rss_mb.unwrap_or(512),
        queue_warning: d.queue_warning.unwrap_or(50).max(1),
        failure_rate_warning: rate,
        min_free_disk_mb: d.min_free_disk_mb.unwrap_or(500),
        max_db_mb: d.max_db_mb.unwrap_or(500),
    }
}

fn positive(issues: &mut Issues<'_, '_>, pointer: &str, v: Option<u32>) -> Option<usize> {
    match v {
        Some(0) => {
            issues.at(pointer, "must be at least 1");
            None
        }
        Some(n) => Some(n as usize),
        None => None,
    }
}

fn opt_duration(issues: &mut Issues<'_, '_>, pointer: &str, s: Option<&str>) -> Option<Duration> {
    duration(issues, pointer, s?)
}

fn task(
    issues: &mut Issues<'_, '_>,
    base: &str,
    name: String,
    t: RawTask,
    analyzers: &BTreeMap<String, Arc<crate::analyze::AnalyzerDef>>,
) -> Option<Task> {
    let before = issues.count();
    check_task_name(issues, base, &name);
    check_task_analyzers(issues, base, &t.analyzers, analyzers);
    let timeout = opt_duration(issues, &format!("{base}/timeout"), t.timeout.as_deref());
    let paths = globs(issues, &format!("{base}/paths"), t.paths.as_deref());
    let exclude_paths = globs(
        issues,
        &format!("{base}/exclude_paths"),
        t.exclude_paths.as_deref(),
    );
    let triggers = t.triggers.unwrap_or_default();
    let schedule = t
        .schedule
        .and_then(|expr| cron_schedule(issues, &format!("{base}/schedule"), expr));
    if let Some(i) = triggers.iter().position(|k| *k == TriggerKind::Schedule)
        && schedule.is_none()
        && issues.count() == before
    {
        issues.at(
            &format!("{base}/triggers/{i}"),
            "the `schedule` trigger needs a `schedule` cron expression on the task",
        );
    }
    if let Some(0) = t.idle_minutes {
        issues.at(
            &format!("{base}/idle_minutes"),
            "idle_minutes must be at least 1",
        );
    }
    let n = t.notify.unwrap_or_default();
    let d = NotifyPolicy::default();
    if issues.count() > before {
        return None;
    }
    Some(Task {
        name,
        description: t.description,
        analyzers: t.analyzers,
        priority: t.priority.unwrap_or(Priority::Medium),
        timeout,
        triggers,
        paths,
        exclude_paths,
        schedule,
        idle_minutes: t.idle_minutes.unwrap_or(10),
        notify: NotifyPolicy {
            on_complete: n.on_complete.unwrap_or(d.on_complete),
            on_issues: n.on_issues.unwrap_or(d.on_issues),
            on_failure: n.on_failure.unwrap_or(d.on_failure),
            new_only: n.new_only.unwrap_or(d.new_only),
        },
        fail_on: t.fail_on.unwrap_or(FailOn::High),
        enabled: t.enabled.unwrap_or(true),
    })
}

/// Reports a task name that breaks the name rules or is the reserved `all`.
fn check_task_name(issues: &mut Issues<'_, '_>, base: &str, name: &str) {
    if !valid_name(name) {
        issues.key(
            base,
            format!("invalid task name `{name}`: use lowercase letters, digits, `-` and `_`"),
        );
    } else if name == "all" {
        issues.key(base, "`all` is reserved: `bgtask run all` runs every task");
    }
}

/// Reports a task's analyzer list when it is empty, names one twice, or
/// names one that is not defined.
fn check_task_analyzers(
    issues: &mut Issues<'_, '_>,
    base: &str,
    listed: &[String],
    analyzers: &BTreeMap<String, Arc<crate::analyze::AnalyzerDef>>,
) {
    if listed.is_empty() {
        issues.at(
            &format!("{base}/analyzers"),
            "a task needs at least one analyzer",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, a) in listed.iter().enumerate() {
        let p = format!("{base}/analyzers/{i}");
        if !seen.insert(a) {
            issues.at(&p, format!("analyzer `{a}` is listed twice"));
        } else if !analyzers.contains_key(a) {
            let known: Vec<&str> = analyzers.keys().map(String::as_str).collect();
            issues.at(
                &p,
                format!(
                    "unknown analyzer `{a}`; define it under `analyzers` or use one of: {}",
                    known.join(", ")
                ),
            );
        }
    }
}

/// A task's cron expression compiled, or `None` with the problem reported
/// at `pointer`.
fn cron_schedule(issues: &mut Issues<'_, '_>, pointer: &str, expr: String) -> Option<Schedule> {
    match expr.parse::<croner::Cron>() {
        Ok(cron) => Some(Schedule {
            expr,
            cron: Arc::new(cron),
        }),
        Err(e) => {
            issues.at(
                pointer,
                format!(
                    "invalid cron expression `{expr}`: {}; expected 5 fields like \"0 2 * * *\"",
                    e.to_string().trim_end_matches('.')
                ),
            );
            None
        }
    }
}

fn triggers(issues: &mut Issues<'_, '_>, t: RawTriggers) -> Triggers {
    let fw = t.file_watch.unwrap_or_default();
    let gh = t.git_hooks.unwrap_or_default();
    let sc = t.scheduled.unwrap_or_default();
    let hooks = gh.hooks.unwrap_or_else(|| {
        [
            "post-commit",
            "post-merge",
            "post-checkout",
            "post-rewrite",
            "pre-push",
        ]
        .map(str::to_owned)
        .to_vec()
    });
    let blocking = gh.blocking.unwrap_or_default();
    for (list, field) in [(&hooks, "hooks"), (&blocking, "blocking")] {
        for (i, h) in list.iter().enumerate() {
            if !KNOWN_HOOKS.contains(&h.as_str()) {
                issues.at(
                    &format!("/triggers/git_hooks/{field}/{i}"),
                    format!(
                        "unknown git hook `{h}`, expected one of {}",
                        KNOWN_HOOKS.join(", ")
                    ),
                );
            }
        }
    }
    Triggers {
        file_watch: FileWatch {
            enabled: fw.enabled.unwrap_or(true),
            paths: globs(issues, "/triggers/file_watch/paths", fw.paths.as_deref()),
            exclude_paths: globs(
                issues,
                "/triggers/file_watch/exclude_paths",
                fw.exclude_paths.as_deref(),
            ),
            debounce: opt_duration(
                issues,
                "/triggers/file_watch/debounce",
                fw.debounce.as_deref(),
            )
            .unwrap_or(Duration::from_secs(2)),
            max_self_triggers: fw.max_self_triggers.unwrap_or(3),
        },
        git_hooks: GitHooks {
            enabled: gh.enabled.unwrap_or(true),
            hooks,
            autostart: gh.autostart.unwrap_or(true),
            blocking,
        },
        scheduled: Scheduled {
            enabled: sc.enabled.unwrap_or(true),
            idle_cooldown: opt_duration(
                issues,
                "/triggers/scheduled/idle_cooldown",
                sc.idle_cooldown.as_deref(),
            )
            .unwrap_or(Duration::from_secs(3600)),
        },
    }
}

fn channel(c: Option<super::raw::RawChannel>, enabled: bool, min: NotifyLevel) -> Channel {
    let c = c.unwrap_or_default();
    Channel {
        enabled: c.enabled.unwrap_or(enabled),
        min_severity: c.min_severity.unwrap_or(min),
        explicit: c.enabled.is_some(),
    }
}

fn notifications(issues: &mut Issues<'_, '_>, n: RawNotifications) -> Notifications {
    let f = n.file.unwrap_or_default();
    Notifications {
        console: channel(n.console, true, NotifyLevel::Info),
        desktop: channel(n.desktop, true, NotifyLevel::Warning),
        file: FileChannel {
            enabled: f.enabled.unwrap_or(true),
            min_severity: f.min_severity.unwrap_or(NotifyLevel::Info),
            path: PathBuf::from(
                f.path
                    .unwrap_or_else(|| ".bgtask/logs/notifications.jsonl".to_owned()),
            ),
            max_size_mb: f.max_size_mb.unwrap_or(10).max(1),
            max_files: f.max_files.unwrap_or(5).max(1),
            retention_days: f.retention_days.unwrap_or(30),
        },
        email: n.email.and_then(|e| email(issues, e)),
    }
}

fn email(issues: &mut Issues<'_, '_>, e: RawEmailChannel) -> Option<EmailChannel> {
    const B: &str = "/notifications/email";
    if e.password.is_some() {
        issues.key(
            &format!("{B}/password"),
            "a literal `password` is not allowed: this file is committed. Use `password_env` (an environment variable) or `password_command`",
        );
    }
    if !e.enabled.unwrap_or(false) {
        return None;
    }
    let before = issues.count();
    let host = e.smtp_host.unwrap_or_default();
    if host.is_empty() {
        issues.at(B, "email is enabled but `smtp_host` is missing");
    }
    let from = e.from.unwrap_or_default();
    if from.is_empty() {
        issues.at(B, "email is enabled but `from` is missing");
    }
    let to = e.to.unwrap_or_default();
    if to.is_empty() {
        issues.at(B, "email is enabled but `to` has no recipients");
    }
    let tls = e.tls.unwrap_or(TlsMode::Starttls);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if tls == TlsMode::None && !loopback && !host.is_empty() {
        issues.at(
            &format!("{B}/tls"),
            format!("`tls: none` is only allowed to a loopback host, not `{host}`; use `starttls` or `tls`"),
        );
    }
    let password = match (e.password_env, e.password_command) {
        (Some(_), Some(_)) => {
            issues.at(
                B,
                "give either `password_env` or `password_command`, not both",
            );
            None
        }
        (Some(v), None) => Some(PasswordSource::Env(v)),
        (None, Some(cmd)) if cmd.is_empty() => {
            issues.at(
                &format!("{B}/password_command"),
                "the password command is empty",
            );
            None
        }
        (None, Some(cmd)) => Some(PasswordSource::Command(cmd)),
        (None, None) => None,
    };
    if issues.count() > before {
        return None;
    }
    Some(EmailChannel {
        min_severity: e.min_severity.unwrap_or(NotifyLevel::Critical),
        smtp_port: e.smtp_port.unwrap_or(match tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        }),
        smtp_host: host,
        tls,
        ca_file: e.ca_file.map(PathBuf::from),
        username: e.username,
        password,
        from,
        to,
        digest_minutes: e.digest_minutes.unwrap_or(15),
    })
}
