//! Progress on stderr while work runs: a bar for multi-analyzer runs, a
//! spinner for tool installs. Shown only when stderr is a terminal and not
//! `--quiet`; otherwise every call is a no-op.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::analyze::RunStatus;
use crate::engine::Progress;

pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

pub struct RunProgress {
    bar: Option<ProgressBar>,
    running: BTreeSet<String>,
    failed: usize,
}

impl RunProgress {
    pub fn new(enabled: bool, total: u64) -> RunProgress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed:>4} {wide_msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        RunProgress {
            bar,
            running: BTreeSet::new(),
            failed: 0,
        }
    }

    pub fn on(&mut self, event: &Progress) {
        let Some(bar) = &self.bar else { return };
        match event {
            Progress::Started { analyzer, .. } => {
                self.running.insert(analyzer.clone());
            }
            Progress::Finished {
                analyzer, status, ..
            } => {
                self.running.remove(analyzer);
                if status.is_failure() || *status == RunStatus::NotInstalled {
                    self.failed += 1;
                }
                bar.inc(1);
            }
        }
        let running: Vec<&str> = self.running.iter().map(String::as_str).collect();
        let mut msg = if running.is_empty() {
            String::new()
        } else {
            format!("running {}", running.join(", "))
        };
        if self.failed > 0 {
            let _ = write!(msg, " ({} not ok)", self.failed);
        }
        bar.set_message(msg);
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn new(enabled: bool) -> Spinner {
        Spinner(enabled.then(|| {
            let s = ProgressBar::new_spinner();
            s.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .expect("valid template"),
            );
            s.enable_steady_tick(Duration::from_millis(120));
            s
        }))
    }

    pub fn say(&self, msg: &str) {
        if let Some(s) = &self.0 {
            s.set_message(msg.to_owned());
        }
    }

    /// Prints a line above the spinner (or plainly without one).
    pub fn println(&self, msg: &str) {
        match &self.0 {
            Some(s) => s.println(msg),
            None => anstream::eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(s) = &self.0 {
            s.finish_and_clear();
        }
    }
}
