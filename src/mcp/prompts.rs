//! The prompts: `review-my-change` runs the analyses on the changed files
//! and asks for a summary of what the change introduced; `fix-findings`
//! gives one file's current findings with their code.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{PromptMessage, Role};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, prompt, prompt_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::Bgtask;
use super::analysis::{AnalysisParams, Scope};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReviewArgs {
    /// Task or analyzer names, comma-separated (default: every task).
    #[serde(default)]
    pub tasks: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FixArgs {
    /// The repo-relative file whose findings to fix.
    pub path: String,
}

#[prompt_router(vis = "pub(super)")]
impl Bgtask {
    /// Run bgtask's analyses on the files changed vs HEAD and summarise what the change
    /// introduced: new findings by severity, failing tests, analyzers that could not run.
    #[prompt(name = "review-my-change")]
    async fn review_my_change(
        &self,
        Parameters(args): Parameters<ReviewArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Vec<PromptMessage>, ErrorData> {
        let root = self
            .root(&ctx)
            .map_err(|e| ErrorData::invalid_params(e, None))?;
        let params = AnalysisParams {
            tasks: args
                .tasks
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            files: Vec::new(),
            scope: Scope::Changed,
            since: None,
            new_only: true,
            min_severity: None,
            no_cache: false,
            offline: true,
            limit: Some(50),
        };
        let result = super::analysis::run(&root, params, &ctx).await;
        let body = match result.structured_content {
            Some(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            None => text_of(&result),
        };
        Ok(vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Review my change. bgtask analysed the files changed vs HEAD and kept only the \
                 findings its earlier runs did not have (what the change introduced):\n\n\
                 ```json\n{body}\n```\n\n\
                 Summarise in a few lines: the verdict; new findings by severity, the worst \
                 first, each with file:line and what to do; analyzers that did not run clean \
                 and why. If nothing is new, say so plainly."
            ),
        )])
    }

    /// One file's current findings (what the latest background runs found there), with the
    /// flagged code, and a request to fix them.
    #[prompt(name = "fix-findings")]
    async fn fix_findings(
        &self,
        Parameters(args): Parameters<FixArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Vec<PromptMessage>, ErrorData> {
        let root = self
            .root(&ctx)
            .map_err(|e| ErrorData::invalid_params(e, None))?;
        let path = args.path.trim_start_matches("./").to_owned();
        let findings = super::resources::current_findings(&root, &path)
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        if findings.is_empty() {
            return Ok(vec![PromptMessage::new_text(
                Role::User,
                format!("bgtask has no findings in {path} (no background run found any there)."),
            )]);
        }
        let shown = super::runs::with_code(&root, &findings);
        Ok(vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Fix these findings in {path}. Keep behaviour the same; when a finding is a \
                 false positive, say why instead of changing the code.\n\n{shown}\n\
                 Afterwards, call `run_analysis` with files [\"{path}\"] and new_only false to \
                 check they are gone."
            ),
        )])
    }
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
