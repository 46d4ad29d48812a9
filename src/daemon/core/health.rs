//! Health monitoring and retention, run periodically and on demand
//! (`bgtask health`, `bgtask cleanup`).
//!
//! Checks: queue depth, failure rate of recent runs, stuck jobs, free disk
//! under `.bgtask`, database size, a stale config, quarantined analyzers.
//! When the periodic check gets worse, an event is recorded and logged, and
//! goes to the notifier as a health alert.

use std::time::{Duration, SystemTime};

use super::Core;
use crate::ipc::{Check, CleanupCounts, Health, Level};

fn check(name: &str, level: Level, message: String) -> Check {
    Check {
        name: name.to_owned(),
        level,
        message,
    }
}

/// Free space (MiB) on the filesystem holding `path`.
fn free_mb(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is valid, and the call only
    // writes into it.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a pointer to a local.
    if unsafe { libc::statvfs(c.as_ptr(), &raw mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail * s.f_frsize / (1024 * 1024))
}

/// Warning at `warn`, error at twice that.
fn grade(value: u64, warn: u64) -> Level {
    if value >= warn.saturating_mul(2) {
        Level::Error
    } else if value >= warn {
        Level::Warning
    } else {
        Level::Ok
    }
}

impl Core {
    fn check_queue(&self) -> Check {
        let waiting = self.queue.waiting_len() as u64;
        let warn = u64::from(self.config.daemon.queue_warning);
        check(
            "queue",
            grade(waiting, warn),
            format!("{waiting} waiting jobs (warning at {warn})"),
        )
    }

    fn check_failures(&self) -> Check {
        let (total, failed) = self
            .persistence
            .store_ref()
            .failure_rate(20)
            .unwrap_or((0, 0));
        #[expect(clippy::cast_precision_loss, reason = "a ratio")]
        let rate = if total == 0 {
            0.0
        } else {
            failed as f64 / total as f64
        };
        let level = if total >= 4 && rate >= 1.0 {
            Level::Error
        } else if total >= 4 && rate >= self.config.daemon.failure_rate_warning {
            Level::Warning
        } else {
            Level::Ok
        };
        check(
            "failures",
            level,
            format!("{failed} of the last {total} runs had an analyzer fail"),
        )
    }

    fn check_stuck(&self) -> Check {
        let after = self.config.execution.task_timeout * 2 + self.config.execution.kill_grace;
        let stuck: Vec<String> = self
            .running
            .iter()
            .filter(|(_, a)| a.started.elapsed() > after)
            .map(|(id, a)| {
                format!(
                    "job {id} ({}) running for {}s",
                    a.waiting.task,
                    a.started.elapsed().as_secs()
                )
            })
            .collect();
        if stuck.is_empty() {
            check(
                "stuck",
                Level::Ok,
                format!("no job running longer than {}s", after.as_secs()),
            )
        } else {
            check("stuck", Level::Error, stuck.join("; "))
        }
    }

    fn check_disk(&self) -> Check {
        let min = self.config.daemon.min_free_disk_mb;
        match free_mb(&self.paths.state) {
            Some(free) => {
                let level = if free < min / 4 {
                    Level::Error
                } else if free < min {
                    Level::Warning
                } else {
                    Level::Ok
                };
                check(
                    "disk",
                    level,
                    format!("{free} MiB free under {}", self.paths.state.display()),
                )
            }
            None => check(
                "disk",
                Level::Warning,
                "could not read free disk space".to_owned(),
            ),
        }
    }

    fn check_database(&self) -> Check {
        if let Some(why) = self.persistence.degraded() {
            return check(
                "database",
                Level::Error,
                format!("degraded: {why}; work goes on in memory and is saved once writes succeed"),
            );
        }
        let db_mb = self.persistence.store_ref().size_bytes() / (1024 * 1024);
        let max = self.config.daemon.max_db_mb;
        check(
            "database",
            grade(db_mb, max.saturating_add(1)),
            format!("state database is {db_mb} MiB (warning above {max})"),
        )
    }

    fn check_config(&self) -> Check {
        if self.config_state.stale {
            let problems = self.config_state.problems.join("; ");
            check(
                "config",
                Level::Warning,
                format!("the config on disk is invalid, the last good one is in use: {problems}"),
            )
        } else {
            check("config", Level::Ok, "config loaded".to_owned())
        }
    }

    fn check_quarantine(&self) -> Check {
        if self.quarantine.is_empty() {
            check(
                "quarantine",
                Level::Ok,
                "no analyzer quarantined".to_owned(),
            )
        } else {
            let names: Vec<&str> = self.quarantine.names().collect();
            check(
                "quarantine",
                Level::Warning,
                format!("quarantined: {}", names.join(", ")),
            )
        }
    }

    /// Runs every check; a periodic run that finds things worse than last
    /// time records and logs it.
    pub(super) fn run_health(&mut self, periodic: bool) -> Health {
        self.check_state_file();
        if self.stopping.is_cancelled() {
            // Stopping (the worktree is gone, say): nothing to alert about.
            return self.health.clone();
        }
        let checks = vec![
            self.check_queue(),
            self.check_failures(),
            self.check_stuck(),
            self.check_disk(),
            self.check_database(),
            self.check_config(),
            self.check_quarantine(),
        ];
        let level = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
        let health = Health { level, checks };
        if periodic && level > self.health.level {
            let problems: Vec<&str> = health
                .checks
                .iter()
                .filter(|c| c.level > Level::Ok)
                .map(|c| c.message.as_str())
                .collect();
            let msg = format!(
                "health is {}: {}",
                if level == Level::Error {
                    "error"
                } else {
                    "warning"
                },
                problems.join("; ")
            );
            if level == Level::Error {
                tracing::error!("{msg}");
                let _ = self.persistence.store().event("error", "health", &msg);
            } else {
                tracing::warn!("{msg}");
                let _ = self.persistence.store().event("warning", "health", &msg);
            }
            self.notifier
                .send(crate::notifier::NotificationEvent::health_alert(
                    level == Level::Error,
                    &problems.join("; "),
                ));
        }
        if level != self.health.level {
            let summary: Vec<&str> = health
                .checks
                .iter()
                .filter(|c| c.level > Level::Ok)
                .map(|c| c.message.as_str())
                .collect();
            self.publish(crate::ipc::events::What::HealthChanged {
                level,
                summary: summary.join("; "),
            });
        }
        self.health = health.clone();
        health
    }

    /// The retention sweep: old reports, findings, runs, events and log dirs.
    pub(super) fn cleanup(&mut self) -> CleanupCounts {
        let r = self.config.retention;
        let mut counts = self
            .persistence
            .store()
            .cleanup(r.results_days, r.metrics_days, self.clock.now())
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "retention sweep failed");
                CleanupCounts::default()
            });
        let cutoff = SystemTime::now() - Duration::from_secs(u64::from(r.logs_days) * 86_400);
        let active: Vec<String> = self
            .running
            .iter()
            .map(|(_, a)| a.run_id.to_string())
            .collect();
        if let Ok(entries) = std::fs::read_dir(&self.paths.run_logs) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff);
                if old && !active.contains(&name) && std::fs::remove_dir_all(e.path()).is_ok() {
                    counts.log_files += 1;
                }
            }
        }
        tracing::info!(?counts, "retention sweep");
        counts
    }
}
