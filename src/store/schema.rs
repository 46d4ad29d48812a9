//! The state database's schema, as numbered migrations. Each runs in one
//! transaction with the version bump, so a crash leaves the old or the new
//! schema, never a mix. A database written by a newer bgtask is refused.

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    task TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    priority TEXT NOT NULL,
    score INTEGER NOT NULL,
    why TEXT,
    -- queued, retry_wait, running, done, failed, dead, interrupted, dropped, cancelled
    state TEXT NOT NULL,
    -- 1: the whole project; 0: job_files lists the files
    project INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    boot_id TEXT,
    recovered INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    last_run_id INTEGER
) STRICT;
CREATE INDEX jobs_state ON jobs(state);

CREATE TABLE job_files (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    path BLOB NOT NULL,
    PRIMARY KEY (job_id, path)
) STRICT, WITHOUT ROWID;

-- Analyzer process groups of running jobs, for crash recovery.
CREATE TABLE processes (
    job_id INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    PRIMARY KEY (job_id, pid)
) STRICT;

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    wait_ms INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    findings INTEGER NOT NULL,
    -- 1 when no analyzer failed (errored, timed out, out of memory)
    ok INTEGER NOT NULL,
    peak_rss_kb INTEGER NOT NULL,
    cpu_ms INTEGER NOT NULL,
    -- the JSON report; emptied by retention after results_days
    report TEXT NOT NULL
) STRICT;
CREATE INDEX runs_task ON runs(task, id);

CREATE TABLE findings (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    analyzer TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    path TEXT,
    line INTEGER,
    message TEXT NOT NULL,
    fingerprint TEXT NOT NULL
) STRICT;
CREATE INDEX findings_run ON findings(run_id);

-- Consecutive crashes per analyzer definition, and quarantine.
CREATE TABLE analyzer_health (
    analyzer TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    crashes INTEGER NOT NULL,
    quarantined_ms INTEGER,
    last_error TEXT
) STRICT;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
) STRICT;
",
    r"
-- Runs of a job (retry, recovery), and retention by age.
CREATE INDEX runs_job ON runs(job_id);
CREATE INDEX runs_started ON runs(started_ms);
CREATE INDEX jobs_finished ON jobs(finished_ms);
",
    r"
-- Triggers from hooks and the watcher waiting for the worktree to be
-- quiet (schedule/intake.rs); gone once they became jobs.
CREATE TABLE intake (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    arrival TEXT NOT NULL
) STRICT;
",
    r"
-- Notifications (src/notifier/): events waiting for the email digest
-- window, the email outbox, and the delivery log of every channel.
CREATE TABLE notify_digest (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    -- the notification, rendered once, as JSON
    event TEXT NOT NULL
) STRICT;

CREATE TABLE notify_outbox (
    id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- the events in it: JSON array of {kind, severity, task, run_id, title}
    events TEXT NOT NULL,
    -- pending, sent, dead
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    done_ms INTEGER
) STRICT;
CREATE INDEX notify_outbox_due ON notify_outbox(state, next_attempt_ms);

CREATE TABLE notify_deliveries (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    task TEXT,
    run_id INTEGER,
    channel TEXT NOT NULL,
    -- delivered, failed, queued, retrying, dead, disabled
    outcome TEXT NOT NULL,
    title TEXT NOT NULL,
    error TEXT,
    outbox_id INTEGER
) STRICT;
CREATE INDEX notify_deliveries_at ON notify_deliveries(at_ms);
",
    r"
-- Every process of a running job found so far, not only the analyzers'
-- groups: 'group' is an analyzer (its session and group go with it),
-- 'process' one of its descendants, possibly escaped with setsid.
ALTER TABLE processes ADD COLUMN kind TEXT NOT NULL DEFAULT 'group';
-- An analyzer's token (BGTASK_TREE in the environment of all its
-- processes), to find at recovery those born too late to be recorded.
ALTER TABLE processes ADD COLUMN token TEXT;
",
    r"
-- A finding's identity (src/analyze/identity.rs) as JSON: the evidence
-- that tells it apart across edits, for what is new and what was fixed.
-- NULL for findings recorded before; those are matched by fingerprint
-- and message.
ALTER TABLE findings ADD COLUMN identity TEXT;
",
    r"
-- HEAD's commit when a run started: files renamed since are followed
-- when a later run is compared with it (what is new, what was fixed).
ALTER TABLE runs ADD COLUMN head TEXT;
",
];

#[expect(clippy::cast_possible_truncation, reason = "a handful of migrations")]
pub const CURRENT: u32 = MIGRATIONS.len() as u32;
