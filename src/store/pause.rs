//! Automation paused by hand (`schedule/pause.rs`), kept in `meta` as JSON
//! under one key: written with the queue's effects, read at start, so a
//! daemon that restarts stays paused.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::schedule::Pause;

const KEY: &str = "automation_pause";

/// Records the pause, or its end (`None`).
pub(super) fn write(tx: &Connection, pause: Option<&Pause>) -> Result<(), StoreError> {
    match pause {
        Some(p) => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![KEY, serde_json::to_string(p)?],
            )?;
        }
        None => {
            tx.execute("DELETE FROM meta WHERE key = ?1", params![KEY])?;
        }
    }
    Ok(())
}

impl Store {
    /// The pause in force, if automation is paused.
    pub fn automation_pause(&self) -> Result<Option<Pause>, StoreError> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![KEY], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Effect;

    #[test]
    fn a_pause_is_kept_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pause = Pause {
            reason: "big refactor".to_owned(),
            by: Some("alice".to_owned()),
            since: 1_700_000_000_000,
        };
        {
            let mut store = Store::open(dir.path()).unwrap().store;
            assert_eq!(store.automation_pause().unwrap(), None);
            store
                .apply(&[Effect::Automation(Some(pause.clone()))], 0)
                .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap().store;
        assert_eq!(store.automation_pause().unwrap(), Some(pause));
        store.apply(&[Effect::Automation(None)], 0).unwrap();
        assert_eq!(store.automation_pause().unwrap(), None);
    }
}
