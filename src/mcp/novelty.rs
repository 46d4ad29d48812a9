//! What `run_analysis` with `new_only` compares with when there is no
//! commit to compare with (`analysis.rs` uses HEAD's findings otherwise):
//! the findings every task of the daemon knows now (the notifier's novelty
//! rule, per file from the latest run that looked at it), matched as the
//! notifier matches.

use std::path::Path;

use crate::analyze::Finding;

pub struct Baseline {
    known: Vec<crate::notifier::Known>,
    /// How it was decided, for the answer.
    pub described: String,
}

impl Baseline {
    /// For each of `findings`, whether no task knows it, by the notifier's
    /// tiered matching (a finding moved, reindented or in a renamed scope
    /// is the same finding).
    pub fn new_ones(&self, findings: &[Finding]) -> Vec<bool> {
        let mut new = vec![true; findings.len()];
        for known in &self.known {
            for (n, knows) in new.iter_mut().zip(known.knows(findings)) {
                *n &= !knows;
            }
        }
        new
    }
}

/// The daemon's knowledge in `root`; with no run recorded yet, nothing is
/// known and every finding is new (and the answer says so).
pub async fn known(root: &Path) -> Baseline {
    let db = root.join(".bgtask").join(crate::store::FILE);
    let known = tokio::task::spawn_blocking(move || {
        if !db.exists() {
            return None;
        }
        crate::notifier::Db::open(&db)
            .ok()?
            .known_now()
            .ok()
            .flatten()
    })
    .await
    .ok()
    .flatten();
    match known {
        Some(known) => Baseline {
            known,
            described: "new against the latest background runs of each task (per file, the \
                        latest run that looked at it)"
                .to_owned(),
        },
        None => Baseline {
            known: Vec::new(),
            described: "no background run is recorded here yet, so every finding counts as new"
                .to_owned(),
        },
    }
}
