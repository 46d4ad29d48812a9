//! Where phase 2's problems go, and the checks both the config's own
//! sections (`validate.rs`) and analyzer definitions (`analyzer.rs`) make:
//! durations and globs.

use std::time::Duration;

use super::error::Problem;
use super::load::Layers;
use crate::globs::Globs;

/// Collects problems under a pointer prefix, placed in the file that
/// defines them.
pub struct Issues<'l, 'p> {
    layers: &'l Layers,
    base: String,
    out: &'p mut Vec<Problem>,
}

impl<'l, 'p> Issues<'l, 'p> {
    pub fn new(layers: &'l Layers, base: String, out: &'p mut Vec<Problem>) -> Issues<'l, 'p> {
        Issues { layers, base, out }
    }

    pub fn count(&self) -> usize {
        self.out.len()
    }

    fn push(&mut self, pointer: &str, at_key: bool, message: String) {
        let full = format!("{}{pointer}", self.base);
        self.out.push(self.layers.problem(&full, at_key, message));
    }

    /// A problem with the value at `pointer` (relative to the base).
    pub fn at(&mut self, pointer: &str, message: impl Into<String>) {
        self.push(pointer, false, message.into());
    }

    /// A problem with the key at `pointer`.
    pub fn key(&mut self, pointer: &str, message: impl Into<String>) {
        self.push(pointer, true, message.into());
    }
}

/// Parses a human duration (`"30s"`, `"10m"`, `"1h 30m"`).
pub fn duration(issues: &mut Issues<'_, '_>, pointer: &str, s: &str) -> Option<Duration> {
    match humantime::parse_duration(s) {
        Ok(d) => Some(d),
        Err(e) => {
            issues.at(
                pointer,
                format!("invalid duration `{s}` ({e}); expected a number and a unit, like \"30s\", \"10m\" or \"1h\""),
            );
            None
        }
    }
}

pub fn globs(
    issues: &mut Issues<'_, '_>,
    pointer: &str,
    patterns: Option<&[String]>,
) -> Option<Globs> {
    let patterns = patterns?;
    match Globs::new(patterns) {
        Ok(g) => Some(g),
        Err(e) => {
            issues.at(&format!("{pointer}/{}", e.index), e.to_string());
            None
        }
    }
}
