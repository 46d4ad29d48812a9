//! Retry delays: exponential backoff with full jitter (the delay before
//! retry `n + 1` is uniform in `[0, min(cap, base × 2ⁿ)]`), so retries of
//! many jobs spread out instead of arriving together.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling for retry `attempt + 1` (before jitter).
    pub fn ceiling(self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A jittered delay drawn with `rng`.
    pub fn delay(self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
        };
        let got: Vec<u64> = (0..9).map(|a| b.ceiling(a).as_secs()).collect();
        assert_eq!(got, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(b.ceiling(200).as_secs(), 600);
    }

    #[test]
    fn delays_are_spread_within_the_ceiling() {
        let b = Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(40)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "full jitter spreads retries");
        assert!(delays.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(30)));
    }
}
