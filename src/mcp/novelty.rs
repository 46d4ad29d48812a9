//! What `run_analysis` with `new_only` compares with: the findings every
//! task of the daemon knows now (the notifier's novelty rule, per file from
//! the latest run that looked at it), by fingerprint.

use std::path::Path;

use crate::analyze::Finding;

pub struct Baseline {
    known: Vec<crate::notifier::Known>,
    /// How it was decided, for the answer.
    pub described: String,
}

impl Baseline {
    pub fn is_new(&self, f: &Finding) -> bool {
        !self.known.iter().any(|k| k.contains(&f.fingerprint))
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
