//! Adaptive priority from a task's recent history (its last 100 runs):
//! repeated failures raise it, consistently quick successes lower it a
//! little. Bounded, and always explained (`bgtask queue` shows why).

/// One past run of a task, newest first.
#[derive(Debug, Clone, Copy)]
pub struct Past {
    pub ok: bool,
    pub duration_ms: u64,
}

/// Bonus added to a task's score (`level × 100`), with the reason.
pub const MAX_RAISE: i32 = 50;
pub const MAX_LOWER: i32 = 20;

pub fn adjust(history: &[Past]) -> (i32, Option<String>) {
    let history = &history[..history.len().min(100)];
    let streak = history.iter().take_while(|p| !p.ok).count();
    if streak >= 3 {
        return (
            MAX_RAISE,
            Some(format!("+{MAX_RAISE}: the last {streak} runs failed")),
        );
    }
    let recent = &history[..history.len().min(20)];
    let failed = recent.iter().filter(|p| !p.ok).count();
    if recent.len() >= 4 && failed * 2 >= recent.len() {
        let bonus = MAX_RAISE / 2;
        return (
            bonus,
            Some(format!(
                "+{bonus}: {failed} of the last {} runs failed",
                recent.len()
            )),
        );
    }
    if history.len() >= 10 && history[..10].iter().all(|p| p.ok) {
        let mut durations: Vec<u64> = history.iter().map(|p| p.duration_ms).collect();
        durations.sort_unstable();
        let p90 = durations[(durations.len() * 9 / 10).min(durations.len() - 1)];
        if p90 < 2000 {
            return (
                -MAX_LOWER,
                Some(format!(
                    "-{MAX_LOWER}: consistently quick (p90 {p90} ms, last 10 runs clean)"
                )),
            );
        }
    }
    (0, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(pattern: &str, ms: u64) -> Vec<Past> {
        pattern
            .chars()
            .map(|c| Past {
                ok: c == '.',
                duration_ms: ms,
            })
            .collect()
    }

    #[test]
    fn table() {
        let rows: &[(&str, u64, i32)] = &[
            ("", 100, 0),
            ("xxx", 100, 50),
            ("xxx..........", 100, 50),
            ("x.x.x.", 100, 25),
            ("x.x", 100, 0),
            ("..........", 100, -20),
            ("..........", 5000, 0),
            (".........", 100, 0),
            (".x........", 100, 0),
        ];
        for (pattern, ms, want) in rows {
            let (bonus, why) = adjust(&runs(pattern, *ms));
            assert_eq!(bonus, *want, "{pattern}");
            assert_eq!(why.is_some(), bonus != 0, "{pattern}: {why:?}");
        }
    }
}
