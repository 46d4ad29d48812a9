//! The one clock of bgtask: wall-clock milliseconds, for what is stored
//! and shown, that advance with tokio's monotonic clock, so a wall-clock
//! jump neither fires nor stalls a debounce, a backoff, a digest or a
//! retry, and tests drive them all with tokio's paused clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The wall clock now, in milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Wall time `ago` before now, in ms since the epoch (a history window).
pub fn ms_ago(ago: std::time::Duration) -> Millis {
    now_ms().saturating_sub(Millis::try_from(ago.as_millis()).unwrap_or(Millis::MAX))
}

/// Debounce and backoff deadlines run on the monotonic clock (a wall clock
/// jump neither fires nor stalls them), anchored to the wall clock at start
/// so the times stored read as wall times across restarts.
///
/// Cron times are wall-clock times: [`Clock::wall`] reads the real wall
/// clock, except in a simulated clock (tests under tokio's paused clock),
/// where it is the monotonic time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ms: Millis,
    start: tokio::time::Instant,
    simulated: bool,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall_ms: now_ms(),
            start: tokio::time::Instant::now(),
            simulated: false,
        }
    }

    /// A clock whose wall time moves only with tokio's (paused) time.
    #[cfg(test)]
    pub fn simulated(wall_ms: Millis) -> Clock {
        Clock {
            wall_ms,
            start: tokio::time::Instant::now(),
            simulated: true,
        }
    }

    /// The wall clock, for cron times.
    pub fn wall(&self) -> Millis {
        if self.simulated { self.now() } else { now_ms() }
    }

    /// The time of an instant that has passed (never later than now).
    pub fn at(&self, instant: std::time::Instant) -> Millis {
        let instant = tokio::time::Instant::from_std(instant);
        let since = instant.saturating_duration_since(self.start);
        (self.wall_ms + i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 2)).min(self.now())
    }

    /// How long until `at`, to the microsecond (`now` counts whole
    /// milliseconds; a deadline computed from it would wait up to one more).
    pub fn until(&self, at: Millis) -> std::time::Duration {
        let since_start = u64::try_from(at - self.wall_ms).unwrap_or(0);
        (self.start + std::time::Duration::from_millis(since_start))
            .saturating_duration_since(tokio::time::Instant::now())
    }

    pub fn now(&self) -> Millis {
        self.wall_ms + i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// The local time of day of `ms` (since the Unix epoch): `HH:MM:SS`, or
/// `HH:MM:SS.mmm` with `millis`.
pub fn time_of_day(ms: Millis, millis: bool) -> String {
    use chrono::TimeZone;
    let format = if millis { "%H:%M:%S%.3f" } else { "%H:%M:%S" };
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| "--:--:--".to_owned(), |t| t.format(format).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_clock() {
        let c = Clock::start();
        let t0 = c.now();
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(c.now() - t0, 90_000);
    }
}
