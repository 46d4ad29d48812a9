//! The daemon's state: `.bgtask/state.db`, SQLite in WAL mode.
//!
//! Owns the schema (`schema.rs`), jobs and their files (`jobs.rs`), runs,
//! findings, metrics and retention (`runs.rs`), analyzer health and events,
//! automation paused by hand (`pause.rs`),
//! and the trends over time the dashboard plots (`trends.rs`, with
//! `window.rs`, `findings.rs`, `known.rs` and `buckets.rs`).
//! Every state change the scheduler makes is committed here before it is
//! acted on, so a job survives `kill -9` (RELIABILITY 1–3): WAL with
//! `synchronous=NORMAL` gives old-or-new state after a crash, `quick_check`
//! runs at open, and a corrupt or foreign file is moved aside.

mod buckets;
mod current;
mod findings;
mod jobs;
mod known;
mod pause;
mod runs;
mod schema;
mod trends;
mod window;

use std::path::{Path, PathBuf};

use crate::clock::now_ms;
use rusqlite::{Connection, OptionalExtension, params};

pub use current::CurrentFinding;
pub use jobs::{JobRow, Recovered};
pub use runs::{HistoryFilter, QUARANTINE_AFTER, RunStart};
pub use trends::{BySeverity, TaskTrend, TrendPoint, TrendQuery, Trends};

pub const FILE: &str = "state.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} was written by a newer bgtask (schema {found}; this one reads up to {supported}); upgrade bgtask or move the file away", path.display())]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("move the corrupt {} aside", path.display())]
    MoveAside {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no tables yet (its daemon makes them at start)", path.display())]
    Unmigrated { path: PathBuf },
    #[error("state database")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// The file is damaged or not a database (as opposed to busy, not
    /// readable, or newer): only then is it moved aside.
    fn is_corruption(&self) -> bool {
        let (StoreError::Open { source: sqlite, .. } | StoreError::Sqlite(sqlite)) = self else {
            return false;
        };
        matches!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The file's device and inode at open: a different answer at the path
    /// means the state directory was deleted or the file replaced.
    file: Option<(u64, u64)>,
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A freshly opened store, and where a corrupt predecessor was moved.
pub struct Opened {
    pub store: Store,
    pub moved_aside: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) `dir/state.db`. A file that fails
    /// `quick_check` or is not SQLite is moved to `state.db.corrupt-<time>`
    /// and an empty store is started in its place; any other failure (busy,
    /// permissions, I/O, a newer schema) is returned and the file left alone.
    pub fn open(dir: &Path) -> Result<Opened, StoreError> {
        let path = dir.join(FILE);
        match Store::open_checked(&path) {
            Ok(store) => Ok(Opened {
                store,
                moved_aside: None,
            }),
            Err(e) if path.exists() && e.is_corruption() => {
                let secs = now_ms() / 1000;
                let aside = dir.join(format!("{FILE}.corrupt-{secs}"));
                std::fs::rename(&path, &aside).map_err(|source| StoreError::MoveAside {
                    path: path.clone(),
                    source,
                })?;
                for ext in ["-wal", "-shm"] {
                    let side = dir.join(format!("{FILE}{ext}"));
                    if side.exists() {
                        let _ =
                            std::fs::rename(&side, dir.join(format!("{FILE}.corrupt-{secs}{ext}")));
                    }
                }
                let store = Store::open_checked(&path)?;
                Ok(Opened {
                    store,
                    moved_aside: Some(aside),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn open_checked(path: &Path) -> Result<Store, StoreError> {
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open)?;
        // 512 KiB of page cache: the daemon's queries are small.
        conn.pragma_update(None, "cache_size", -512).map_err(open)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(open)?;
        if check != "ok" {
            return Err(open(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            )));
        }
        let mut store = Store {
            conn,
            path: path.to_owned(),
            file: file_id(path),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Whether the file this store writes is still the one at its path (an
    /// in-memory store always is). After `rm -rf .bgtask` the connection
    /// writes on into a deleted file, which nothing would ever read again.
    pub fn file_intact(&self) -> bool {
        self.file.is_none() || file_id(&self.path) == self.file
    }

    /// After the file was deleted (or replaced) under the store: writes
    /// everything the store holds — the old file's history and queue, still
    /// readable through the open connection — into a new file at its path
    /// and carries on there. A file now in the way is moved aside first.
    pub fn rescue(&mut self) -> Result<(), StoreError> {
        let io = |source| StoreError::MoveAside {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if self.path.exists() {
            let aside = self
                .path
                .with_file_name(format!("{FILE}.replaced-{}", now_ms() / 1000));
            std::fs::rename(&self.path, aside).map_err(io)?;
        }
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.path.display()));
        }
        self.conn.execute(
            "VACUUM INTO ?1",
            params![self.path.to_string_lossy().into_owned()],
        )?;
        *self = Store::open_checked(&self.path)?;
        Ok(())
    }

    /// The worktree at `root`'s store, read-only; `None` before the first
    /// run (no database yet) or when it cannot be read (said in the log).
    pub fn of_worktree(root: &Path) -> Option<Store> {
        let db = root.join(".bgtask").join(FILE);
        if !db.exists() {
            return None;
        }
        Store::open_read_only(&db)
            .map_err(|e| tracing::warn!(db = %db.display(), error = %e, "cannot read the store"))
            .ok()
    }

    /// Opens `path` to read only, beside the daemon's own connection (the
    /// dashboard): nothing is migrated, moved or written.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let open = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(1))
            .map_err(open)?;
        // Read through once: a small page cache does.
        conn.pragma_update(None, "cache_size", -256).map_err(open)?;
        let store = Store {
            conn,
            path: path.to_owned(),
            file: None,
        };
        match store.version()? {
            0 => Err(StoreError::Unmigrated {
                path: path.to_owned(),
            }),
            found if found > schema::CURRENT => Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported: schema::CURRENT,
            }),
            _ => Ok(store),
        }
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            file: None,
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn version(&self) -> Result<u32, StoreError> {
        let has_meta: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        if !has_meta {
            return Ok(0);
        }
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.version()?;
        if found > schema::CURRENT {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                supported: schema::CURRENT,
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.savepoint()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![(i + 1).to_string()],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Size of the database and its WAL, for the health check.
    pub fn size_bytes(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|ext| std::fs::metadata(format!("{}{ext}", self.path.display())).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs `f`'s writes as one transaction: all of them land, or none.
    /// (The store's own multi-statement writes are savepoints, so they nest.)
    pub fn batch<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = f(self).and_then(|v| {
            self.conn.execute_batch("COMMIT")?;
            Ok(v)
        });
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Gives the page cache's memory back (after a job: the daemon idles
    /// small).
    pub fn shrink_memory(&self) {
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
    }

    /// Records a daemon event (config reloads, health alerts, recoveries).
    pub fn event(&self, level: &str, kind: &str, message: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO events (at_ms, level, kind, message) VALUES (?1, ?2, ?3, ?4)",
            params![now_ms(), level, kind, message],
        )?;
        Ok(())
    }
}

#[cfg(test)]
impl Store {
    /// How SQLite would run `sql` (`EXPLAIN QUERY PLAN`), its steps joined
    /// with `; `: tests check that a query uses the index it should.
    pub(crate) fn query_plan(&self, sql: &str) -> String {
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Store::open(dir.path()).unwrap();
        assert!(opened.moved_aside.is_none());
        assert_eq!(opened.store.version().unwrap(), schema::CURRENT);
        drop(opened);
        // Reopening keeps the data and does not re-run migrations.
        let opened = Store::open(dir.path()).unwrap();
        opened
            .store
            .conn
            .execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        drop(opened);
        let Err(err) = Store::open(dir.path()) else {
            panic!("newer schema accepted")
        };
        assert!(err.to_string().contains("newer bgtask (schema 99"), "{err}");
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            b"this is not a database, just text that is long enough",
        )
        .unwrap();
        let opened = Store::open(dir.path()).unwrap();
        let aside = opened.moved_aside.expect("moved aside");
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("state.db.corrupt-")
        );
        assert!(aside.exists());
        assert_eq!(opened.store.version().unwrap(), schema::CURRENT);
    }

    #[test]
    fn an_unreadable_database_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let path = dir.path().join(FILE);
        // A directory where the WAL must go: opening fails with an I/O
        // error, not corruption.
        let _ = std::fs::remove_file(dir.path().join(format!("{FILE}-wal")));
        std::fs::create_dir(dir.path().join(format!("{FILE}-wal"))).unwrap();
        assert!(Store::open(dir.path()).is_err());
        assert!(path.exists(), "the database stays where it is");
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .count();
        assert_eq!(aside, 0);
    }

    #[test]
    fn a_truncated_database_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        {
            let opened = Store::open(dir.path()).unwrap();
            for i in 0..200 {
                opened
                    .store
                    .event("info", "t", &format!("event {i} {}", "x".repeat(200)))
                    .unwrap();
            }
            opened
                .store
                .conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let path = dir.path().join(FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 3).unwrap();
        drop(f);
        let opened = Store::open(dir.path()).unwrap();
        assert!(
            opened.moved_aside.is_some(),
            "a truncated file fails quick_check"
        );
    }

    #[test]
    fn a_deleted_state_file_is_noticed_and_rescued_with_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".bgtask");
        std::fs::create_dir(&state).unwrap();
        let mut store = Store::open(&state).unwrap().store;
        store.event("info", "test", "before").unwrap();
        assert!(store.file_intact());
        std::fs::remove_dir_all(&state).unwrap();
        assert!(!store.file_intact());
        store.event("info", "test", "while deleted").unwrap();
        store.rescue().unwrap();
        assert!(store.file_intact());
        store.event("info", "test", "after").unwrap();
        drop(store);
        let store = Store::open(&state).unwrap().store;
        let n: i64 = store
            .conn
            .query_row("SELECT count(*) FROM events WHERE kind = 'test'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 3, "everything, before, during and after");
    }
}
