//! The tools. Each is a thin call of what the CLI does — a daemon request
//! (`status`, `queue`, `history`, `submit`, `cancel`, `retry`, `health`,
//! pausing), the config and tool checks (`validate_config`,
//! `list_tasks`), a run's report (`runs.rs`) or the foreground engine
//! (`analysis.rs`). A failure is a tool result with `isError` and what to
//! do; protocol errors are only for requests that are malformed.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};

use super::Bgtask;
use super::daemon::{self, Failed};
use super::params::{
    Cancelled, ConfigCheck, ExplainParams, GetRunParams, History, HistoryParams, JobParams, Log,
    LogParams, PauseParams, Queue, Retried, Run, RunIdParams, SubmitParams, Submitted, Tasks,
};
use crate::analyze::Explanation;
use crate::event::TriggerSource;
use crate::ipc::AutomationState;
use crate::ipc::{Health, Request, Response, Status, Submit};

/// History pages hold at most this many runs.
const MAX_PAGE: u32 = 500;

#[tool_router(vis = "pub(super)")]
impl Bgtask {
    #[tool(
        description = "Run analyzers now, in the foreground, and return their findings: \
        security scanners, linters, complexity, tests — whatever this worktree's tasks define \
        (`list_tasks`). By default every task on the files changed vs HEAD; name `files`, or \
        `scope: project` for everything. `new_only: true` keeps only what HEAD did not have: what \
        your uncommitted change introduced (moved or reindented code is recognised). Results \
        are cached by file content, so re-running after a small edit costs only the edited files. Long runs send progress; \
        cancelling stops the analyzers. An analyzer that failed makes the result an error \
        with the reason.",
        output_schema = rmcp::handler::server::common::schema_for_output::<super::analysis::Analysis>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn run_analysis(
        &self,
        Parameters(p): Parameters<super::analysis::AnalysisParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResult, rmcp::ErrorData> {
        match self.root(&ctx) {
            Ok(root) => Ok(super::analysis::run(&root, p, &ctx).await),
            Err(why) => Ok(rmcp::model::CallToolResult::error(vec![
                rmcp::model::ContentBlock::text(why),
            ])),
        }
    }

    #[tool(
        description = "The background daemon's state for this worktree: whether it runs, its \
        config (and problems), queue depth, running jobs, the last runs with their verdicts, \
        health, tasks waiting for a person to trust the worktree, and whether automation is \
        paused. Cheap (one local request); call it first to orient yourself.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn status(&self, ctx: RequestContext<RoleServer>) -> Result<Json<Status>, Failed> {
        let root = self.root(&ctx)?;
        match daemon::ask(&root, Request::Status).await? {
            Response::Status(s) => Ok(Json(*s)),
            other => Err(daemon::unexpected("status", &other)),
        }
    }

    #[tool(
        description = "Jobs waiting in the background daemon, next first: task, priority, \
        why it waits (debounce, held), how long, which files. Cheap.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn queue(&self, ctx: RequestContext<RoleServer>) -> Result<Json<Queue>, Failed> {
        let root = self.root(&ctx)?;
        match daemon::ask(&root, Request::Queue).await? {
            Response::Queue { entries } => Ok(Json(Queue { entries })),
            other => Err(daemon::unexpected("queue", &other)),
        }
    }

    #[tool(
        description = "Past background runs, newest first: run id, task, trigger, duration, \
        verdict, number of findings. Filter by task, outcome (clean, findings, failed) or \
        time window (`within`: 30m, 2h, 7d); page with `before`. Use a run id with `get_run`.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn history(
        &self,
        Parameters(p): Parameters<HistoryParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<History>, Failed> {
        let root = self.root(&ctx)?;
        let since_ms = match p.within.as_deref() {
            None => None,
            Some(w) => Some(crate::clock::ms_ago(humantime::parse_duration(w).map_err(
                |e| format!("within: `{w}` is not a duration like 30m, 2h or 7d ({e})"),
            )?)),
        };
        let request = Request::History {
            task: p.task,
            limit: p.limit.unwrap_or(20).min(MAX_PAGE),
            before: p.before,
            outcome: p.outcome,
            since_ms,
        };
        match daemon::ask(&root, request).await? {
            Response::History { runs } => Ok(Json(History { runs })),
            other => Err(daemon::unexpected("history", &other)),
        }
    }

    #[tool(
        description = "A recorded background run: its verdict, each analyzer's status, and its \
        findings (worst first) with the index `explain_finding` takes. Filter by file, \
        minimum severity, rule, or `which: new` for only what earlier runs did not find; also \
        lists what the run fixed. Large results are capped (`limit`, default 100) with a count \
        of the rest.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_run(
        &self,
        Parameters(p): Parameters<GetRunParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Run>, Failed> {
        let root = self.root(&ctx)?;
        super::runs::get(&root, &p).await.map(Json)
    }

    #[tool(
        description = "The end of a run's captured analyzer output (stdout and stderr of each \
        tool), for when a run failed and the report's reason is not enough. `lines`: how \
        many last lines (default 200).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_log(
        &self,
        Parameters(p): Parameters<LogParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Log>, Failed> {
        let root = self.root(&ctx)?;
        let (text, finished) = daemon::log(&root, p.run_id).await?;
        let keep = p.lines.unwrap_or(200).min(5000);
        let lines: Vec<&str> = text.lines().collect();
        let omitted = lines.len().saturating_sub(keep);
        Ok(Json(Log {
            run_id: p.run_id,
            finished,
            omitted_lines: omitted,
            text: lines[omitted..].join("\n"),
        }))
    }

    #[tool(
        description = "Queue tasks in the background daemon (like `bgtask submit`), on given \
        files or the whole project, and return at once with the job ids; results arrive in \
        `history` / `get_run` (or subscribe to bgtask://status). Use `run_analysis` instead \
        when you want the findings in this call.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn submit(
        &self,
        Parameters(p): Parameters<SubmitParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Submitted>, Failed> {
        let root = self.root(&ctx)?;
        if p.tasks.is_empty() {
            return Err("`tasks` names no task: give task names, or `all`".to_owned());
        }
        let request = Request::Submit(Submit {
            tasks: p.tasks,
            files: p.files,
            priority: p.priority,
            source: TriggerSource::Manual {
                command: "mcp".to_owned(),
            },
            debounce: false,
        });
        match daemon::ask(&root, request).await? {
            Response::Submitted { jobs } => Ok(Json(Submitted { jobs })),
            other => Err(daemon::unexpected("submit", &other)),
        }
    }

    #[tool(
        description = "Cancel a waiting or running background job by id (its analyzers are \
        stopped).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cancel(
        &self,
        Parameters(p): Parameters<JobParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Cancelled>, Failed> {
        let root = self.root(&ctx)?;
        match daemon::ask(&root, Request::Cancel { job_id: p.job_id }).await? {
            Response::Cancelled { job_id, was } => Ok(Json(Cancelled { job_id, was })),
            other => Err(daemon::unexpected("cancel", &other)),
        }
    }

    #[tool(
        description = "Run a past run's job again in the background (and lift quarantine on \
        its task's analyzers); returns the new job id.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn retry(
        &self,
        Parameters(p): Parameters<RunIdParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Retried>, Failed> {
        let root = self.root(&ctx)?;
        match daemon::ask(&root, Request::Retry { run_id: p.run_id }).await? {
            Response::Retried { job_id } => Ok(Json(Retried { job_id })),
            other => Err(daemon::unexpected("retry", &other)),
        }
    }

    #[tool(
        description = "The daemon's health checks, run now: watcher, disk, store, analyzers \
        quarantined after crashes, config. Each check is ok, warning or error with a message.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn health(&self, ctx: RequestContext<RoleServer>) -> Result<Json<Health>, Failed> {
        let root = self.root(&ctx)?;
        match daemon::ask(&root, Request::Health).await? {
            Response::Health(h) => Ok(Json(h)),
            other => Err(daemon::unexpected("health", &other)),
        }
    }

    #[tool(
        description = "Check this worktree's bgtask config (.background-tasks.json and the \
        personal .background-tasks.local.json): valid or not, with every problem as \
        file:line:column. Use after editing a config file. Does not need the daemon.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn validate_config(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ConfigCheck>, Failed> {
        let root = self.root(&ctx)?;
        blocking(move || Ok(super::runs::validate(&root))).await
    }

    #[tool(
        description = "The tasks configured here (analyzers, triggers, priority, enabled) and \
        every analyzer with whether it applies to this project (and why not), whether its tool \
        is installed, where, and what to install. Use it to pick names for `run_analysis`. \
        Probes tool versions (cached), so the first call may take a second.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_tasks(&self, ctx: RequestContext<RoleServer>) -> Result<Json<Tasks>, Failed> {
        let root = self.root(&ctx)?;
        blocking(move || super::runs::tasks(&root)).await
    }

    #[tool(
        description = "What one finding of a recorded run means: the rule's documentation \
        (from the tool itself where it has a command for it, e.g. pylint --help-msg, ruff rule, \
        clippy --explain), a link to the rule's page, the tool's message and fix hint when it \
        gives one, and the flagged lines with the code around them as the file is now. Take \
        `run_id` and the finding's `index` from `get_run`. May run the tool (up to 2 s).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn explain_finding(
        &self,
        Parameters(p): Parameters<ExplainParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Explanation>, Failed> {
        let root = self.root(&ctx)?;
        let report = super::runs::report(&root, p.run_id).await?;
        let Some(finding) = report.findings.get(p.index).cloned() else {
            return Err(format!(
                "run {} has {} findings: `index` is 0 to {} (as `get_run` gives it)",
                p.run_id,
                report.findings.len(),
                report.findings.len().saturating_sub(1)
            ));
        };
        let context = p.context.unwrap_or(5);
        blocking(move || {
            let config = crate::config::load(&root).map_err(|e| format!("{e:#}"))?;
            Ok(crate::analyze::explain(&root, &finding, &config, context))
        })
        .await
    }

    #[tool(
        description = "Pause the automatic background work (runs on save, on git hooks, on \
        schedules and idle): their jobs are held, not lost, until `resume_automation`. Use it \
        before a large multi-file edit so analyzers do not run on half-done code; give the \
        reason people will see in `bgtask status` and the dashboard. Work asked for by hand \
        (`submit`, `run_analysis`) still runs.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn pause_automation(
        &self,
        Parameters(p): Parameters<PauseParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AutomationState>, Failed> {
        let root = self.root(&ctx)?;
        if p.reason.trim().is_empty() {
            return Err(
                "give a `reason` people will see (e.g. \"large refactor in progress\")".to_owned(),
            );
        }
        let by = Some(format!("agent ({})", client_name(&ctx)));
        automation(
            &root,
            Request::Pause {
                reason: p.reason,
                by,
            },
        )
        .await
    }

    #[tool(
        description = "Resume the automatic background work after `pause_automation`: the jobs \
        held meanwhile start now (their count is in the answer).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn resume_automation(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AutomationState>, Failed> {
        let root = self.root(&ctx)?;
        automation(&root, Request::Resume).await
    }
}

/// The agent's name as its client gave it, for "paused by".
fn client_name(ctx: &RequestContext<RoleServer>) -> String {
    ctx.peer
        .peer_info()
        .map_or_else(|| "MCP".to_owned(), |i| i.client_info.name.clone())
}

async fn automation(
    root: &std::path::Path,
    request: Request,
) -> Result<Json<AutomationState>, Failed> {
    match daemon::ask(root, request).await? {
        Response::Automation(state) => Ok(Json(state)),
        other => Err(daemon::unexpected("pause", &other)),
    }
}

/// `f` on a thread of its own (it may block, and may run its own small
/// runtime, which a runtime thread may not).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failed> + Send + 'static,
) -> Result<Json<T>, Failed> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| "internal error: the worker thread ended early".to_owned())?
        .map(Json)
}
