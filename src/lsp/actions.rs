//! Code actions on bgtask's diagnostics, and the commands they run:
//! "add to the baseline" (`accepted.rs`) and "show in the dashboard" (the
//! run's page, in the dashboard this user runs or one started for it).
//! A diagnostic says which finding it is in its `data` (`Target`).

use std::path::Path;

use lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Command, Diagnostic};
use serde::{Deserialize, Serialize};

use crate::store::Store;

pub const ADD_TO_BASELINE: &str = "bgtask.addToBaseline";
pub const SHOW_IN_DASHBOARD: &str = "bgtask.showInDashboard";

/// The commands the server runs (`workspace/executeCommand`).
pub fn commands() -> Vec<String> {
    vec![ADD_TO_BASELINE.to_owned(), SHOW_IN_DASHBOARD.to_owned()]
}

/// Which finding a diagnostic shows: its `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub path: String,
    pub task: String,
    pub run_id: i64,
    pub fingerprint: String,
    /// In the baseline already.
    #[serde(default)]
    pub accepted: bool,
    /// Not in a baseline there is (absent when there is none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
}

/// The actions for the diagnostics the editor has at the cursor.
pub fn for_diagnostics(diagnostics: &[Diagnostic]) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    let mut runs = Vec::new();
    for d in diagnostics {
        let Some(target) = d
            .data
            .clone()
            .and_then(|v| serde_json::from_value::<Target>(v).ok())
        else {
            continue;
        };
        let rule = match &d.code {
            Some(lsp_types::NumberOrString::String(s)) => s.clone(),
            Some(lsp_types::NumberOrString::Number(n)) => n.to_string(),
            None => "this finding".to_owned(),
        };
        if !target.accepted {
            out.push(action(
                format!("Accept {rule} in the baseline (.bgtask-baseline.json)"),
                Some(CodeActionKind::QUICKFIX),
                vec![d.clone()],
                ADD_TO_BASELINE,
                &target,
            ));
        }
        if !runs.contains(&target.run_id) {
            runs.push(target.run_id);
            out.push(action(
                format!(
                    "Show run {} ({}) in the bgtask dashboard",
                    target.run_id, target.task
                ),
                None,
                vec![d.clone()],
                SHOW_IN_DASHBOARD,
                &target,
            ));
        }
    }
    out
}

fn action(
    title: String,
    kind: Option<CodeActionKind>,
    diagnostics: Vec<Diagnostic>,
    command: &str,
    target: &Target,
) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.clone(),
        kind,
        diagnostics: Some(diagnostics),
        command: Some(Command {
            title,
            command: command.to_owned(),
            arguments: Some(vec![serde_json::to_value(target).unwrap_or_default()]),
        }),
        ..CodeAction::default()
    })
}

/// What a command did.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    /// The baseline changed: a sentence for the user.
    Accepted(String),
    /// A page to show the user, and a sentence when a dashboard was
    /// started for it.
    Open { url: String, note: Option<String> },
}

/// Runs `command` with its `arguments`; an error is a sentence for the user.
pub fn execute(
    root: &Path,
    store: Option<&Store>,
    command: &str,
    arguments: &[serde_json::Value],
) -> Result<Done, String> {
    let target: Target = arguments
        .first()
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| format!("{command} takes a finding (a diagnostic's `data`)"))?;
    match command {
        ADD_TO_BASELINE => {
            let store = store.ok_or("no findings recorded in this worktree yet")?;
            super::accepted::add(
                root,
                store,
                target.run_id,
                &target.path,
                &target.fingerprint,
            )
            .map(Done::Accepted)
            .map_err(|e| format!("{e:#}"))
        }
        SHOW_IN_DASHBOARD => {
            let (url, started) = crate::dashboard::run_page(root, target.run_id)
                .map_err(|e| format!("cannot open the dashboard: {e:#}"))?;
            let note = started.then(|| {
                "started `bgtask dashboard` in the background; it serves until stopped".to_owned()
            });
            Ok(Done::Open { url, note })
        }
        other => Err(format!("bgtask has no command {other}")),
    }
}

#[cfg(test)]
mod tests {
    use lsp_types::{NumberOrString, Range};

    use super::*;

    fn diagnostic(run_id: i64, accepted: bool) -> Diagnostic {
        let target = Target {
            path: "a.py".into(),
            task: "lint".into(),
            run_id,
            fingerprint: "f".into(),
            accepted,
            new: false,
        };
        Diagnostic {
            range: Range::default(),
            code: Some(NumberOrString::String("W0611".into())),
            message: "m".into(),
            data: Some(serde_json::to_value(target).unwrap()),
            ..Diagnostic::default()
        }
    }

    fn titles(actions: &[CodeActionOrCommand]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                CodeActionOrCommand::CodeAction(a) => a.title.clone(),
                CodeActionOrCommand::Command(c) => c.title.clone(),
            })
            .collect()
    }

    #[test]
    fn each_finding_can_be_accepted_and_each_run_shown_once() {
        let foreign = Diagnostic {
            message: "another server's".into(),
            ..Diagnostic::default()
        };
        let actions = for_diagnostics(&[
            diagnostic(4, false),
            diagnostic(4, true),
            foreign,
            diagnostic(5, false),
        ]);
        assert_eq!(
            titles(&actions),
            [
                "Accept W0611 in the baseline (.bgtask-baseline.json)",
                "Show run 4 (lint) in the bgtask dashboard",
                "Accept W0611 in the baseline (.bgtask-baseline.json)",
                "Show run 5 (lint) in the bgtask dashboard",
            ]
        );
    }

    #[test]
    fn commands_say_what_is_wrong_with_their_arguments() {
        let root = Path::new("/nonexistent");
        let err = execute(root, None, ADD_TO_BASELINE, &[]).unwrap_err();
        assert!(err.contains("takes a finding"), "{err}");
        let arg = diagnostic(1, false).data.unwrap();
        let err = execute(root, None, ADD_TO_BASELINE, std::slice::from_ref(&arg)).unwrap_err();
        assert!(err.contains("no findings recorded"), "{err}");
        let err = execute(root, None, "bgtask.nope", &[arg]).unwrap_err();
        assert!(err.contains("no command"), "{err}");
    }
}
