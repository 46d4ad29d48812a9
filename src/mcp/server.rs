//! The MCP handler: which worktree a request is about, what the server
//! says about itself, and resources with their subscriptions (the legacy
//! `resources/subscribe` and `subscriptions/listen` of 2026-07-28 alike).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::{prompt::PromptRouter, tool::ToolRouter};
use rmcp::model::{
    Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, prompt_handler, tool_handler};

use super::daemon::Failed;
use super::resources::{self, Named, Updates};

const INSTRUCTIONS: &str = "bgtask runs code analyzers (security scanners, linters, \
complexity, tests) on this worktree, in the background on every save and commit, and now on \
request. After changing code, call `run_analysis` with `new_only: true` to see what your change \
introduced (it reuses cached results, so unchanged files cost nothing). `status`, `history` and \
`get_run` show what the background runs found; `explain_finding` says what a finding means and \
shows its code. Trusting a worktree and installing hooks are for people only; \
`pause_automation` stops background runs during a large edit (say why), `resume_automation` \
starts them again.";

/// Which worktree the server answers for.
#[derive(Debug, Clone)]
enum Target {
    /// `bgtask mcp`: the worktree it was started in.
    Worktree(PathBuf),
    /// The dashboard's `/mcp`: `?project=ID`, or the only project known.
    Dashboard,
}

#[derive(Clone)]
pub struct Bgtask {
    target: Target,
    updates: Arc<Mutex<HashMap<PathBuf, Arc<Updates>>>>,
    pub(super) tool_router: ToolRouter<Bgtask>,
    prompt_router: PromptRouter<Bgtask>,
}

impl Bgtask {
    pub fn for_worktree(root: PathBuf) -> Bgtask {
        Bgtask::new(Target::Worktree(root))
    }

    pub fn for_dashboard() -> Bgtask {
        Bgtask::new(Target::Dashboard)
    }

    fn new(target: Target) -> Bgtask {
        Bgtask {
            target,
            updates: Arc::default(),
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        }
    }

    /// The worktree `ctx`'s request is about.
    pub(super) fn root(&self, ctx: &RequestContext<RoleServer>) -> Result<PathBuf, Failed> {
        match &self.target {
            Target::Worktree(root) => Ok(root.clone()),
            Target::Dashboard => {
                let query = ctx
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|p| p.uri.query().map(str::to_owned));
                dashboard_project(query.as_deref())
            }
        }
    }

    /// The subscriptions of worktree `root`.
    fn updates(&self, root: PathBuf) -> Arc<Updates> {
        self.updates
            .lock()
            .expect("updates lock")
            .entry(root.clone())
            .or_insert_with(|| Updates::new(root))
            .clone()
    }
}

/// `?project=ID` of the dashboard's `/mcp` URL, or the one project known.
fn dashboard_project(query: Option<&str>) -> Result<PathBuf, Failed> {
    let asked = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("project=").map(str::to_owned));
    if let Some(id) = asked {
        return crate::state::registry::find(&id)
            .map(|k| k.root)
            .ok_or_else(|| format!("no project {id}: GET /api/v1/projects lists them"));
    }
    let known = crate::state::registry::list();
    match known.as_slice() {
        [one] => Ok(one.root.clone()),
        [] => Err("no project is known to the dashboard yet: start a daemon in one".to_owned()),
        many => Err(format!(
            "the dashboard knows {} projects: connect to /mcp?project=ID with one of {}",
            many.len(),
            many.iter()
                .map(|k| format!("{} ({})", k.id, k.root.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn invalid(message: String) -> ErrorData {
    ErrorData::invalid_params(message, None)
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Bgtask {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("bgtask", env!("CARGO_PKG_VERSION"))
                .with_title("bgtask")
                .with_description("Code analyzers in the background: findings, runs, tests"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult {
            resources: resources::listed(),
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult {
            resource_templates: resources::templates(),
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let named = Named::parse(&request.uri).ok_or_else(|| {
            ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                Some(serde_json::json!({ "uri": request.uri })),
            )
        })?;
        let root = self.root(&ctx).map_err(invalid)?;
        let value = resources::read(&root, &named).await.map_err(|e| {
            ErrorData::resource_not_found(e, Some(serde_json::json!({ "uri": request.uri })))
        })?;
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if Named::parse(&request.uri).is_none() {
            return Err(invalid(format!("no resource {}", request.uri)));
        }
        let root = self.root(&ctx).map_err(invalid)?;
        let updates = self.updates(root);
        let mut changes = updates.changes([request.uri.clone()]);
        let peer = ctx.peer.clone();
        let uri = request.uri;
        tokio::spawn(async move {
            while let Ok(changed) = changes.recv().await {
                if changed == uri
                    && peer
                        .notify_resource_updated(
                            rmcp::model::ResourceUpdatedNotificationParam::new(changed),
                        )
                        .await
                        .is_err()
                {
                    return;
                }
            }
        });
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let root = self.root(&ctx).map_err(invalid)?;
        self.updates(root).remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = requested.resource_subscriptions.as_ref().map(|uris| {
            uris.iter()
                .filter(|u| Named::parse(u).is_some())
                .cloned()
                .collect()
        });
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if uris.is_empty() {
            context.cancelled().await;
            return Ok(());
        }
        let root = self.root(context.request_context()).map_err(invalid)?;
        let mut changes = self.updates(root).changes(uris.clone());
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                next = changes.recv() => match next {
                    Ok(uri) if uris.contains(&uri) => {
                        if context.sink().notify_resource_updated(uri).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}
