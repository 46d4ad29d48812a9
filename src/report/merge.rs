//! `bgtask report merge`: combines JSON reports of CI shards (`--shard K/N`)
//! into one, as if a single job had run everything, and recomputes the
//! verdict with the policy the shards carried.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::model::{Report, SCHEMA};
use crate::event::AnalyzerRun;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("read report {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a bgtask JSON report: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: report schema `{found}` is not `{SCHEMA}`", path.display())]
    Schema { path: PathBuf, found: String },
    #[error("no reports given")]
    Empty,
    #[error("{0}")]
    Shards(String),
}

/// Checks that reports of CI shards (`--shard K/N`) add up to one run:
/// the same split in each (each shard computes the whole split from the
/// times in the result cache it starts with), every shard once.
/// Reports of runs that were not sharded are not checked.
pub fn check_shards(reports: &[(PathBuf, &Report)]) -> Result<(), MergeError> {
    let sharded: Vec<(&Path, &crate::engine::ShardSplit)> = reports
        .iter()
        .filter_map(|(p, r)| Some((p.as_path(), r.shard.as_ref()?)))
        .collect();
    let Some(&(first_path, first)) = sharded.first() else {
        return Ok(());
    };
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for &(path, s) in &sharded {
        if s.count != first.count || s.split != first.split {
            return Err(MergeError::Shards(format!(
                "{} (shard {}/{}) and {} (shard {}/{}) split the files differently: each shard \
                 computes the whole split from the times in the result cache it starts with, so \
                 every shard must restore the same cache and use the same count. Files may have \
                 been analysed twice or not at all; run the shards again from one cache",
                first_path.display(),
                first.index,
                first.count,
                path.display(),
                s.index,
                s.count
            )));
        }
        if let Some(other) = seen.insert(s.index, path) {
            return Err(MergeError::Shards(format!(
                "{} and {} are both shard {}/{}",
                other.display(),
                path.display(),
                s.index,
                s.count
            )));
        }
    }
    let missing: Vec<String> = (1..=first.count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", first.count))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Shards(format!(
            "no report of shard {}: the files of {} were not analysed in these reports",
            missing.join(", "),
            if missing.len() == 1 {
                "that shard"
            } else {
                "those shards"
            }
        )));
    }
    Ok(())
}

pub fn read(path: &Path) -> Result<Report, MergeError> {
    let bytes = std::fs::read(path).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let report: Report = serde_json::from_slice(&bytes).map_err(|e| MergeError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if report.schema != SCHEMA {
        return Err(MergeError::Schema {
            path: path.to_owned(),
            found: report.schema,
        });
    }
    Ok(report)
}

fn combine(into: &mut AnalyzerRun, other: AnalyzerRun) {
    into.status = into.status.combine(other.status);
    match (&mut into.reason, other.reason) {
        (Some(a), Some(b)) if !a.contains(&b) => {
            a.push_str("; ");
            a.push_str(&b);
        }
        (a @ None, b) => *a = b,
        _ => {}
    }
    into.files += other.files;
    into.invocations += other.invocations;
    into.duration_ms += other.duration_ms;
    into.cached &= other.cached;
    into.cached_files += other.cached_files;
    into.peak_rss_kb = into.peak_rss_kb.max(other.peak_rss_kb);
    into.cpu_ms = match (into.cpu_ms, other.cpu_ms) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    into.exit_code = other.exit_code.or(into.exit_code);
    if into.tool.is_none() {
        into.tool = other.tool;
    }
    if let Some(t) = other.tests {
        into.tests.get_or_insert_with(Default::default).add(t);
    }
    if into.output_tail.is_none() {
        into.output_tail = other.output_tail;
    }
}

pub fn merge(reports: Vec<Report>) -> Result<Report, MergeError> {
    let mut iter = reports.into_iter();
    let mut base = iter.next().ok_or(MergeError::Empty)?;
    let mut count = 1;
    let mut seen: BTreeSet<(String, String)> = base
        .findings
        .iter()
        .map(|f| (f.analyzer.clone(), f.fingerprint.clone()))
        .collect();
    for r in iter {
        count += 1;
        base.started = base.started.min(r.started);
        base.duration_ms = base.duration_ms.max(r.duration_ms);
        base.policy.strict_tools |= r.policy.strict_tools;
        for e in r.policy.explicit {
            if !base.policy.explicit.contains(&e) {
                base.policy.explicit.push(e);
            }
        }
        for run in r.runs {
            match base.runs.iter_mut().find(|b| b.analyzer == run.analyzer) {
                Some(existing) => combine(existing, run),
                None => base.runs.push(run),
            }
        }
        for f in r.findings {
            if seen.insert((f.analyzer.clone(), f.fingerprint.clone())) {
                base.findings.push(f);
            }
        }
    }
    crate::analyze::sort_findings(&mut base.findings);
    base.scope = Some(format!("merged from {count} reports"));
    base.shard = None;
    base.refresh();
    Ok(base)
}
