//! `bgtask report merge`: combines JSON reports of CI shards (`--shard K/N`)
//! into one, as if a single job had run everything, and recomputes the
//! verdict with the policy the shards carried.

use std::collections::BTreeSet;
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
    base.refresh();
    Ok(base)
}
