//! The report of a run: what `--format json` writes and `report merge` reads,
//! and what every other format renders. Self-contained: it carries the
//! policy (thresholds, strictness) so a merged report gets the same verdict
//! the separate runs would have.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::verdict::{self, Policy, TaskPolicy, Verdict};
use crate::analyze::{Finding, RunStatus, Severity, sort_findings};
use crate::config::{Config, FailOn};
use crate::event::{AnalyzerRun, is_zero};

pub const SCHEMA: &str = "bgtask-report/1";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Summary {
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub by_status: BTreeMap<RunStatus, usize>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Report {
    pub schema: String,
    pub bgtask_version: String,
    pub root: String,
    #[serde(with = "humantime_serde_compat")]
    #[schemars(with = "String")]
    pub started: SystemTime,
    pub duration_ms: u64,
    /// What was analysed when not everything: `changed`, `shard 1/4`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub policy: Policy,
    pub summary: Summary,
    pub exit_code: u8,
    /// One line saying why the exit code is what it is.
    pub verdict: String,
    /// Per-analyzer records; their findings are in `findings` below.
    pub runs: Vec<AnalyzerRun>,
    /// Every finding, sorted by path and line.
    pub findings: Vec<Finding>,
    /// How the findings compare with a baseline, when one is in play
    /// (`--new-only`): every renderer says the same about what is new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Comparison>,
    /// What the team's shared cache did, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_cache: Option<TeamCacheUse>,
    /// A CI shard's share of the work (`--shard K/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::engine::ShardSplit>,
}

/// What the team cache did in a run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeamCacheUse {
    /// The store, without credentials.
    pub url: String,
    /// Results taken from it (not computed here).
    pub hits: usize,
    pub misses: usize,
    /// Entries present that failed verification (another secret, tampered,
    /// truncated, another format): ignored.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected: usize,
    /// Entries written after the report.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uploaded: usize,
    /// Why it was not read or written (no secret, down, forbidden, …):
    /// the run went on locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A run compared with a baseline: each finding new or unchanged, and the
/// baseline's findings this run no longer has (fixed), within what it
/// analysed.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema, Deserialize)]
pub struct Comparison {
    /// What the run was compared with: `.bgtask-baseline.json`,
    /// `origin/main (merge base 1a2b3c4)`.
    pub against: String,
    /// One per finding, in the order of `findings`.
    pub states: Vec<BaselineState>,
    /// Findings of the baseline not found any more.
    pub absent: Vec<Finding>,
}

/// A finding against a baseline, as SARIF's `baselineState` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineState {
    New,
    Unchanged,
}

impl Comparison {
    /// `report`'s findings against `baseline`'s (a baseline limited to
    /// what the run analysed), by tiered matching
    /// ([`crate::analyze::identity::compare`]), a baseline finding in a
    /// file `renames` maps (old path → new path) looked for under its new
    /// path. A baseline finding is absent only when its analyzer completed
    /// in `report`: one that failed or did not run says nothing of it.
    pub fn of(
        against: impl Into<String>,
        baseline: &[Finding],
        report: &Report,
        renames: &HashMap<String, String>,
    ) -> Comparison {
        let matched = crate::analyze::identity::compare(baseline, &report.findings, renames);
        let completed = |analyzer: &str| {
            report.runs.iter().any(|r| {
                r.analyzer == analyzer
                    && matches!(
                        r.status,
                        RunStatus::Clean | RunStatus::Findings | RunStatus::Partial
                    )
            })
        };
        Comparison {
            against: against.into(),
            states: (0..report.findings.len())
                .map(|i| {
                    if matched.is_new(i) {
                        BaselineState::New
                    } else {
                        BaselineState::Unchanged
                    }
                })
                .collect(),
            absent: matched
                .absent
                .iter()
                .map(|&i| &baseline[i])
                .filter(|f| completed(&f.analyzer))
                .cloned()
                .collect(),
        }
    }

    /// The findings of `report` that are new (all of them without a
    /// comparison).
    pub fn new_findings(report: &Report) -> impl Iterator<Item = &Finding> {
        report.findings.iter().enumerate().filter_map(|(i, f)| {
            match report.baseline.as_ref().and_then(|c| c.states.get(i)) {
                Some(BaselineState::Unchanged) => None,
                _ => Some(f),
            }
        })
    }
}

impl Report {
    pub fn new(
        root: String,
        started: SystemTime,
        duration: Duration,
        scope: Option<String>,
        policy: Policy,
        mut runs: Vec<AnalyzerRun>,
    ) -> Report {
        let mut findings: Vec<Finding> = runs
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.findings))
            .collect();
        sort_findings(&mut findings);
        let mut report = Report {
            schema: SCHEMA.to_owned(),
            bgtask_version: env!("CARGO_PKG_VERSION").to_owned(),
            root,
            started,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            scope,
            policy,
            summary: Summary::default(),
            exit_code: 0,
            verdict: String::new(),
            runs,
            findings,
            baseline: None,
            team_cache: None,
            shard: None,
        };
        report.refresh();
        report
    }

    /// Recomputes the summary and verdict from runs and findings.
    pub fn refresh(&mut self) {
        let mut s = Summary {
            findings: self.findings.len(),
            ..Summary::default()
        };
        for f in &self.findings {
            *s.by_severity.entry(f.severity).or_default() += 1;
        }
        for r in &self.runs {
            *s.by_status.entry(r.status).or_default() += 1;
        }
        self.summary = s;
        // Against a baseline, only what is new is judged.
        let judged: Vec<Finding> = match &self.baseline {
            Some(_) => Comparison::new_findings(self).cloned().collect(),
            None => self.findings.clone(),
        };
        let Verdict { code, explanation } = verdict::decide(&self.policy, &self.runs, &judged);
        self.exit_code = code;
        self.verdict = match &self.baseline {
            Some(c) => format!(
                "{explanation}; {} new, {} unchanged and {} fixed since {}",
                judged.len(),
                self.findings.len() - judged.len(),
                c.absent.len(),
                c.against
            ),
            None => explanation,
        };
    }

    /// The report as the formats that list findings show it: against a
    /// baseline, its new findings only (the rest are in the verdict's
    /// counts); otherwise itself.
    pub fn shown(&self) -> std::borrow::Cow<'_, Report> {
        if self.baseline.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut shown = self.clone();
        shown.findings = Comparison::new_findings(self).cloned().collect();
        std::borrow::Cow::Owned(shown)
    }

    /// Findings of one analyzer.
    pub fn findings_of<'a>(&'a self, analyzer: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.analyzer == analyzer)
    }
}

/// The policy of a run from the config and the command line.
pub fn policy(
    config: &Config,
    fail_on: Option<FailOn>,
    strict_tools: bool,
    explicit: Vec<String>,
) -> Policy {
    Policy {
        fail_on,
        strict_tools,
        tasks: config
            .tasks
            .values()
            .map(|t| TaskPolicy {
                name: t.name.clone(),
                fail_on: match t.fail_on {
                    FailOn::Never => None,
                    other => other.threshold(),
                },
                paths: t.paths.as_ref().map(|g| g.patterns().to_vec()),
                exclude_paths: t.exclude_paths.as_ref().map(|g| g.patterns().to_vec()),
            })
            .collect(),
        explicit,
    }
}

/// RFC 3339 timestamps for `SystemTime`, via humantime.
mod humantime_serde_compat {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom)
    }
}
