//! `bgtask cache stats|prune|verify`: the result caches, this worktree's
//! and the team's (`cache.remote`). Local entries are files under
//! `.bgtask/cache/results/`; the team's are listed, deleted and read back
//! through the store (`engine::Remote`), each call bounded.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use super::Ctx;
use crate::engine::{Fetched, Pruned, Remote, RemoteSpec, ResultCache, Workspace};
use crate::exit;
use crate::store::HistoryFilter;

pub const EXAMPLES: &str = "Examples:
  bgtask cache stats                      local and team cache: entries, size, hit rate of the last runs
  bgtask cache prune --older-than 3d      local entries not used in three days
  bgtask cache prune --max-size 200MB     the oldest local entries until 200 MB are left
  bgtask cache prune --remote --older-than 30d   the team cache's entries older than 30 days
  bgtask cache verify --sample 50         read 50 team cache entries back and check their signatures";

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries and bytes in the local and the team cache, and how often the last runs hit them.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete old entries: local ones by age or total size; the team cache's only with --remote, by age.
    Prune {
        /// Entries older than this (e.g. 7d, 12h). Default for the local cache: 7d.
        #[arg(long, value_parser = humantime::parse_duration, value_name = "AGE")]
        older_than: Option<Duration>,
        /// Then the oldest local entries until this much is left (e.g. 500MB, 2GB).
        #[arg(long, value_parser = parse_size, value_name = "SIZE")]
        max_size: Option<u64>,
        /// Prune the team cache (by age; --older-than is required) instead of the local one.
        #[arg(long)]
        remote: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read a sample of the team cache's entries back and check them against the team secret.
    Verify {
        /// How many entries (at random).
        #[arg(long, default_value_t = 20)]
        sample: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `200MB`, `2GB`, `512KB`, `1000` (bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a size like 500MB or 2GB, got `{s}`"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (B, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// The whole of a command's calls to the team cache.
const REMOTE_BUDGET: Duration = Duration::from_secs(60);

pub fn run(ctx: &Ctx, cmd: &CacheCommand) -> anyhow::Result<u8> {
    let workspace = Workspace::discover(&ctx.cwd)?;
    let config = crate::config::load(&workspace.root)?;
    let cache = ResultCache::new(&workspace.root);
    let dir = workspace.root.join(".bgtask/cache/results");
    let remote = config.remote_cache.as_ref().map(|r| {
        let secret = crate::engine::team_secret(r, &workspace.root).ok();
        Remote::open(&RemoteSpec {
            url: r.url.clone(),
            secret,
        })
    });
    let rt = super::runtime()?;
    match *cmd {
        CacheCommand::Stats { json } => {
            let stats = Stats {
                local: {
                    let (entries, bytes) = cache.usage();
                    Side {
                        at: dir.display().to_string(),
                        entries,
                        bytes,
                        problem: None,
                    }
                },
                remote: match remote {
                    Some(Ok(r)) => Some(rt.block_on(remote_summary(&r))),
                    Some(Err(e)) => Some(Side::failed(String::new(), e.to_string())),
                    None => None,
                },
                last_runs: hit_rate(&workspace.root),
            };
            print(&stats, json, Stats::say)?;
            Ok(exit::OK)
        }
        CacheCommand::Prune {
            older_than,
            max_size,
            remote: true,
            json,
        } => {
            let Some(age) = older_than else {
                return Err(super::UsageError(
                    "`cache prune --remote` needs --older-than (a team cache is pruned by age only)".into(),
                )
                .into());
            };
            if max_size.is_some() {
                return Err(
                    super::UsageError("--max-size is for the local cache only".into()).into(),
                );
            }
            let r = remote
                .context("no team cache here: `cache.remote` is not configured")?
                .context("the team cache's URL")?;
            let pruned = rt.block_on(prune_remote(&r, age))?;
            print(&pruned, json, |p| {
                format!(
                    "team cache {}: {} entries deleted ({} bytes), {} kept",
                    r.display_url(),
                    p.deleted,
                    p.bytes,
                    p.kept
                )
            })?;
            Ok(exit::OK)
        }
        CacheCommand::Prune {
            older_than,
            max_size,
            remote: false,
            json,
        } => {
            let pruned = cache.prune_by(
                older_than.unwrap_or(Duration::from_secs(7 * 86_400)),
                max_size,
            );
            print(&pruned, json, |p| {
                format!(
                    "local cache: {} entries deleted ({} bytes), {} kept",
                    p.deleted, p.bytes, p.kept
                )
            })?;
            Ok(exit::OK)
        }
        CacheCommand::Verify { sample, json } => {
            let r = remote
                .context("no team cache here: `cache.remote` is not configured")?
                .context("the team cache's URL")?;
            verify_cmd(&rt, &r, sample, json)
        }
    }
}

fn verify_cmd(
    rt: &tokio::runtime::Runtime,
    r: &Remote,
    sample: usize,
    json: bool,
) -> anyhow::Result<u8> {
    anyhow::ensure!(
        r.can_verify(),
        "no team secret (BGTASK_CACHE_SECRET, or cache.remote.secret_command): entries cannot be checked"
    );
    let v = rt.block_on(verify(r, sample))?;
    print(&v, json, |v| {
        format!(
            "team cache {}: {} of {} entries read back and verified; {} rejected, {} could not be read",
            r.display_url(),
            v.verified,
            v.checked,
            v.rejected.len(),
            v.unreadable
        )
    })?;
    Ok(if v.rejected.is_empty() && v.unreadable == 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

fn print<T: Serialize>(value: &T, json: bool, say: impl Fn(&T) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        anstream::println!("{}", say(value));
    }
    Ok(())
}

/// One cache's entries.
#[derive(Debug, Serialize)]
struct Side {
    /// Where it is.
    at: String,
    entries: usize,
    bytes: u64,
    /// Why it could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

impl Side {
    fn failed(at: String, problem: String) -> Side {
        Side {
            at,
            entries: 0,
            bytes: 0,
            problem: Some(problem),
        }
    }
}

/// How often the last runs found their results cached.
#[derive(Debug, Default, Serialize)]
struct HitRate {
    runs: usize,
    /// Analyzer runs that could have been cached (not skipped).
    analyzer_runs: usize,
    cached: usize,
    /// Files whose results came from per-file entries in runs that
    /// analysed the others.
    cached_files: usize,
    /// Entries taken from the team cache (a whole run's or one file's).
    from_team: usize,
}

#[derive(Debug, Serialize)]
struct Stats {
    local: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<Side>,
    last_runs: HitRate,
}

impl Stats {
    fn say(&self) -> String {
        let side = |name: &str, s: &Side| match &s.problem {
            Some(p) => format!("{name:<11} {}: {p}", s.at),
            None => format!(
                "{name:<11} {}: {} entries, {}",
                s.at,
                s.entries,
                size(s.bytes)
            ),
        };
        let mut out = vec![side("local", &self.local)];
        if let Some(r) = &self.remote {
            out.push(side("team cache", r));
        }
        let h = &self.last_runs;
        let pct = |n: usize| {
            if h.analyzer_runs == 0 {
                0.0
            } else {
                #[expect(clippy::cast_precision_loss, reason = "a percentage")]
                let p = n as f64 * 100.0 / h.analyzer_runs as f64;
                p
            }
        };
        let mut line = format!(
            "last {} runs in history: {} of {} analyzer runs cached ({:.0} %)",
            h.runs,
            h.cached,
            h.analyzer_runs,
            pct(h.cached),
        );
        if h.cached_files > 0 {
            let _ = write!(
                line,
                ", {} more files from per-file entries",
                h.cached_files
            );
        }
        let _ = write!(line, ", {} team cache hits", h.from_team);
        out.push(line);
        out.join("\n")
    }
}

fn size(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size for people")]
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KB", b / 1024.0),
        _ => format!("{:.1} MB", b / 1_048_576.0),
    }
}

async fn remote_summary(r: &Remote) -> Side {
    match r.list(Instant::now() + REMOTE_BUDGET).await {
        Ok(entries) => Side {
            at: r.display_url(),
            entries: entries.len(),
            bytes: entries.iter().map(|e| e.1).sum(),
            problem: None,
        },
        Err(why) => Side::failed(r.display_url(), format!("could not be listed: {why}")),
    }
}

async fn prune_remote(r: &Remote, older_than: Duration) -> anyhow::Result<Pruned> {
    let deadline = Instant::now() + REMOTE_BUDGET;
    let entries = r
        .list(deadline)
        .await
        .map_err(|why| anyhow::anyhow!("team cache {}: {why}", r.display_url()))?;
    let now = SystemTime::now();
    let mut p = Pruned::default();
    for (key, len, changed) in entries {
        // An entry dated in the future (another clock) is not old.
        let old = now
            .duration_since(changed)
            .is_ok_and(|age| age > older_than);
        if old {
            r.delete(&key, deadline)
                .await
                .map_err(|why| anyhow::anyhow!("delete {key}: {why}"))?;
            p.deleted += 1;
            p.bytes += len;
        } else {
            p.kept += 1;
        }
    }
    Ok(p)
}

/// What reading entries back found.
#[derive(Debug, Default, Serialize)]
struct Verified {
    checked: usize,
    verified: usize,
    /// Keys of entries that did not verify, with why.
    rejected: Vec<(String, String)>,
    unreadable: usize,
}

async fn verify(r: &Remote, sample: usize) -> anyhow::Result<Verified> {
    let deadline = Instant::now() + REMOTE_BUDGET;
    let mut keys: Vec<String> = r
        .list(deadline)
        .await
        .map_err(|why| anyhow::anyhow!("team cache {}: {why}", r.display_url()))?
        .into_iter()
        .map(|e| e.0)
        .collect();
    fastrand::shuffle(&mut keys);
    keys.truncate(sample);
    let mut v = Verified::default();
    for key in keys {
        v.checked += 1;
        match r.get(&key, deadline).await {
            Fetched::Hit(_) => v.verified += 1,
            Fetched::Rejected(why) => v.rejected.push((key, why)),
            Fetched::Miss | Fetched::Unavailable(_) => v.unreadable += 1,
        }
    }
    Ok(v)
}

/// The last runs' analyzer results: how many came from a cache, and how
/// many of those from the team's.
fn hit_rate(root: &std::path::Path) -> HitRate {
    const RUNS: u32 = 20;
    let mut h = HitRate::default();
    let Some(store) = crate::store::Store::of_worktree(root) else {
        return h;
    };
    let Ok(runs) = store.history(&HistoryFilter::default(), None, RUNS) else {
        return h;
    };
    for run in runs {
        let Ok(Some(Some(report))) = store.report(run.run_id) else {
            continue;
        };
        h.runs += 1;
        let ran = report.runs.iter().filter(|r| r.cached || r.invocations > 0);
        for r in ran {
            h.analyzer_runs += 1;
            h.cached += usize::from(r.cached);
            h.cached_files += r.cached_files;
        }
        h.from_team += report.team_cache.map_or(0, |t| t.hits);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("500MB"), Ok(500 << 20));
        assert_eq!(parse_size("2gb"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("3 KB"), Ok(3 << 10));
        assert!(parse_size("MB").is_err());
        assert!(parse_size("5TB").unwrap_err().contains("unknown size unit"));
    }
}
