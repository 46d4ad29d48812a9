//! How one analyzer run ended.
//!
//! Keeps *tool missing*, *tool broke* and *tool found problems* apart at
//! every layer (DESIGN.md "Vocabulary"). Owns the ordering used to combine
//! the statuses of a split run (several invocations over batches of files)
//! and what each status means for the process exit code.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    schemars::JsonSchema,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The tool ran over everything and found nothing.
    Clean,
    /// The tool ran and reported findings.
    Findings,
    /// The tool ran but could not analyse everything (unparsable files,
    /// dependencies it could not audit). Findings may still be present.
    Partial,
    /// The tool failed: usage error, crash, unreadable output.
    ToolError,
    /// Nothing to analyse here (no matching files, no manifest, no tests).
    NotApplicable,
    /// The tool is not installed; the run record carries the install hint.
    NotInstalled,
    /// Wall-clock (or CPU-time) limit reached; the process group was killed.
    Timeout,
    /// Stopped on request (Ctrl-C, shutdown, superseded).
    Cancelled,
    /// Killed at the configured memory limit.
    Oom,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Clean => "clean",
            RunStatus::Findings => "findings",
            RunStatus::Partial => "partial",
            RunStatus::ToolError => "tool_error",
            RunStatus::NotApplicable => "not_applicable",
            RunStatus::NotInstalled => "not_installed",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Oom => "oom",
        }
    }

    /// Human label for console output.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Clean => "clean",
            RunStatus::Findings => "findings",
            RunStatus::Partial => "partial",
            RunStatus::ToolError => "error",
            RunStatus::NotApplicable => "n/a",
            RunStatus::NotInstalled => "not installed",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Oom => "out of memory",
        }
    }

    /// The run failed to produce a trustworthy result (exit code 2 territory).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RunStatus::ToolError | RunStatus::Timeout | RunStatus::Oom | RunStatus::Cancelled
        )
    }

    /// Whether a result with this status may be served from the cache later.
    /// Failures are transient by nature and always re-run.
    pub fn is_cacheable(self) -> bool {
        matches!(
            self,
            RunStatus::Clean | RunStatus::Findings | RunStatus::Partial | RunStatus::NotApplicable
        )
    }

    /// Rank used when merging the statuses of several invocations of one
    /// analyzer: the most alarming wins.
    fn rank(self) -> u8 {
        match self {
            RunStatus::NotApplicable => 0,
            RunStatus::Clean => 1,
            RunStatus::Findings => 2,
            RunStatus::Partial => 3,
            RunStatus::NotInstalled => 4,
            RunStatus::ToolError => 5,
            RunStatus::Oom => 6,
            RunStatus::Timeout => 7,
            RunStatus::Cancelled => 8,
        }
    }

    #[must_use]
    pub fn combine(self, other: RunStatus) -> RunStatus {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::*;

    #[test]
    fn combine_keeps_the_most_alarming() {
        let rows = [
            (Clean, Findings, Findings),
            (Findings, Clean, Findings),
            (Findings, Partial, Partial),
            (Partial, ToolError, ToolError),
            (NotApplicable, Clean, Clean),
            (ToolError, Timeout, Timeout),
            (Oom, ToolError, Oom),
            (Timeout, Cancelled, Cancelled),
        ];
        for (a, b, want) in rows {
            assert_eq!(a.combine(b), want, "{a} + {b}");
        }
    }

    #[test]
    fn only_trustworthy_results_are_cached() {
        for s in [Clean, Findings, Partial, NotApplicable] {
            assert!(s.is_cacheable());
            assert!(!s.is_failure());
        }
        for s in [ToolError, Timeout, Cancelled, Oom] {
            assert!(!s.is_cacheable());
            assert!(s.is_failure());
        }
        assert!(!NotInstalled.is_cacheable());
        assert!(!NotInstalled.is_failure());
    }
}
