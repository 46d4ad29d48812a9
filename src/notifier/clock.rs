//! The notifier's clock: wall-clock milliseconds (what the outbox and the
//! delivery log store) that advance with tokio's monotonic clock, so a
//! wall-clock jump neither fires nor stalls a digest or a retry, and tests
//! drive them with tokio's paused clock.

use crate::store::now_ms;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ms: i64,
    start: tokio::time::Instant,
}

impl Clock {
    /// Call inside a runtime (under a paused clock, time starts paused).
    pub fn start() -> Clock {
        Clock {
            wall_ms: now_ms(),
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> i64 {
        self.wall_ms + i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }
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
