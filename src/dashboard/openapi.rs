//! The API described: an OpenAPI 3.1 document (`GET /api/v1/openapi.json`)
//! whose schemas are generated from the types the handlers answer with —
//! the daemon protocol's own — and whose paths are listed here. Committed
//! as `schema/openapi.json`; a test fails when it drifts from the types.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::ipc::events::Event;
use crate::ipc::{Admitted, Health, Metrics, QueueEntry, RunSummary, Status};
use crate::report::Report;

/// Names a generated schema: `{"$ref": "#/components/schemas/T"}`.
fn schema<T: JsonSchema>(g: &mut schemars::SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn object(fields: &[(&str, Value)]) -> Value {
    let props: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let required: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    json!({"type": "object", "properties": props, "required": required})
}

fn ok(description: &str, body: &Value) -> Value {
    json!({
        "200": {"description": description, "content": {"application/json": {"schema": body}}},
        "default": {"$ref": "#/components/responses/Error"}
    })
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": "The project's stable id (from GET /projects).", "schema": {"type": "string"}})
}

fn int_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "integer"}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": ty}})
}

fn get(summary: &str, params: &[Value], body: &Value) -> Value {
    json!({"get": {"summary": summary, "parameters": params, "responses": ok(summary, body)}})
}

fn post(summary: &str, params: &[Value], request: Option<Value>, body: &Value) -> Value {
    let mut op = json!({"summary": summary, "parameters": params, "responses": ok(summary, body)});
    if let Some(r) = request {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": r}}});
    }
    json!({ "post": op })
}

/// The paths that change something, and the event stream.
fn change_paths(jobs: Value, submit: Value, event: &Value) -> Value {
    let (id, run, job) = (
        id_param(),
        int_param("run", "A run id."),
        int_param("job", "A job id."),
    );
    json!({
        "/projects/{id}/submit": post("Queue tasks", std::slice::from_ref(&id), Some(submit), &object(&[("jobs", jobs)])),
        "/projects/{id}/jobs/{job}/cancel": post("Cancel a waiting or running job", &[id.clone(), job], None,
            &object(&[("job_id", json!({"type": "integer"})), ("was", json!({"type": "string"}))])),
        "/projects/{id}/runs/{run}/retry": post("Run a run's job again", &[id.clone(), run], None, &object(&[("job_id", json!({"type": "integer"}))])),
        "/projects/{id}/start": post("Start the project's daemon (`bgtask start` in its worktree)", std::slice::from_ref(&id), None, &object(&[("started", json!({"type": "string"}))])),
        "/projects/{id}/stop": post("Stop the project's daemon", std::slice::from_ref(&id), None, &object(&[("pid", json!({"type": "integer"}))])),
        "/projects/{id}/activity": post("Someone works in the project: its idle trigger waits", std::slice::from_ref(&id), None, &json!({"type": "object"})),
        "/projects/{id}/forget": post("No longer list the project (until its daemon starts again)", std::slice::from_ref(&id), None, &object(&[("forgot", json!({"type": "boolean"}))])),
        "/events": {"get": {
            "summary": "Every daemon's events as Server-Sent Events (each event's data is an Event with its project; also daemon_up and daemon_down). Send Last-Event-ID to resume.",
            "parameters": [query("project", "string", "Only this project.")],
            "responses": {"200": {"description": "the stream", "content": {"text/event-stream": {"schema": event}}}, "default": {"$ref": "#/components/responses/Error"}}
        }},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    })
}

/// Automation paused by hand, and resumed.
fn automation_paths(g: &mut schemars::SchemaGenerator) -> Value {
    let id = id_param();
    let state = schema::<crate::ipc::AutomationState>(g);
    let body = schema::<super::api::PauseBody>(g);
    json!({
        "/projects/{id}/pause": post("Pause automation (`bgtask pause`): jobs of saves, hooks, schedules, idle time and the start wait (held) until resumed; work asked for still runs; the pause outlives a restart of the daemon", std::slice::from_ref(&id), Some(body), &state),
        "/projects/{id}/resume": post("Resume automation (`bgtask resume`): the held jobs start (`held` says how many)", std::slice::from_ref(&id), None, &state),
    })
}

/// Trust, the config and its tasks, and the bulk actions.
fn settings_paths(g: &mut schemars::SchemaGenerator) -> Value {
    let id = id_param();
    let task = json!({"name": "task", "in": "path", "required": true, "description": "The task's key: `name`, or `dir:name` in a nested project.", "schema": {"type": "string"}});
    let (string, strings) = (
        json!({"type": "string"}),
        json!({"type": "array", "items": {"type": "string"}}),
    );
    let tasks = schema::<Vec<crate::config::tasks::TaskInfo>>(g);
    let one = schema::<crate::config::tasks::TaskInfo>(g);
    let bulk = schema::<crate::ipc::bulk::BulkOutcome>(g);
    let edited = object(&[
        ("task", one),
        ("file", string.clone()),
        ("created_file", json!({"type": "boolean"})),
        ("excluded_from_git", json!({"type": "boolean"})),
    ]);
    let ids = [id.clone(), task];
    let trust_shown = object(&[
        ("trusted_ever", json!({"type": "boolean"})),
        ("how", string.clone()),
        ("confirm", string.clone()),
        ("tasks", json!({"type": "object"})),
    ]);
    let mut trust = get(
        "Each task's trust (`trusted`, `untrusted`, `changed` with the diff), what it would run, and `confirm`: the digest of exactly this list",
        std::slice::from_ref(&id),
        &trust_shown,
    );
    trust["post"] = post("Trust the worktree (`bgtask trust`), only with the `confirm` of the list the person was shown: 409 `changed` when what a task would run changed since", std::slice::from_ref(&id), Some(object(&[("confirm", string.clone())])), &object(&[("trusted", json!({"type": "boolean"})), ("record", string.clone())]))["post"].take();
    json!({
        "/projects/{id}/trust": trust,
        "/projects/{id}/config": get("Whether the config on disk is valid: its files, tasks and each project's config as merged from its files (`effective`), or every problem with file:line:column (the daemon keeps its last good config meanwhile)", std::slice::from_ref(&id),
            &object(&[("valid", json!({"type": "boolean"})), ("problems", strings), ("effective", json!({"type": "object", "additionalProperties": {"type": "object"}}))])),
        "/projects/{id}/tasks": get("Every task: what it runs, when, and which files define it (`bgtask task list`)", std::slice::from_ref(&id), &object(&[("tasks", tasks), ("personal_file", string.clone())])),
        "/projects/{id}/tasks/{task}": post("Create the task, or replace what the personal .background-tasks.local.json says of it; checked with the whole config first (422 with every problem, nothing written)", &ids, Some(object(&[("task", json!({"type": "object"}))])), &edited),
        "/projects/{id}/tasks/{task}/enable": post("Turn the task on (in the personal file)", &ids, None, &edited),
        "/projects/{id}/tasks/{task}/disable": post("Turn the task off (in the personal file)", &ids, None, &edited),
        "/projects/{id}/tasks/{task}/delete": post("Delete a task the personal file defines (a committed one: 409, disable it instead)", &ids, None, &edited),
        "/projects/{id}/cleanup": post("The retention sweep, now (`bgtask cleanup`): what it removed", std::slice::from_ref(&id), None, &schema::<crate::ipc::CleanupCounts>(g)),
        "/projects/{id}/bulk/cancel": post("Cancel every waiting job, or every waiting job of `task` (`bgtask cancel --waiting`)", std::slice::from_ref(&id), Some(json!({"type": "object", "properties": {"task": string.clone()}})), &bulk),
        "/projects/{id}/bulk/retry": post("Run again every task whose last run failed within `within` (1h), or just `task` (`bgtask retry --failed`)", std::slice::from_ref(&id), Some(json!({"type": "object", "properties": {"task": string.clone(), "within": string}})), &bulk),
    })
}

/// The paths and schemas in the document around them.
fn wrap(paths: &Value, schemas: &serde_json::Map<String, Value>) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bgtask dashboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The local HTTP API of `bgtask dashboard`: every request needs `Authorization: Bearer TOKEN` (or the page's cookie), a Host naming the server, and for a change made with the cookie, the server's Origin."
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {
                "description": "An error: 400 bad input (naming the field), 401 no token, 403 wrong Host or Origin, 404 unknown project, run or task, 409 the state forbids it (the config on disk is invalid, a committed task, trust that changed since it was shown), 413 body over 1 MiB, 422 an edit that would leave the config invalid (with every problem), 503 the daemon is down or did not answer within 1 s",
                "content": {"application/json": {"schema": object(&[("error", json!({"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "string"}, "description": "Config problems, each file:line:column: /pointer: message."}}}))])}}
            }}
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let project = schema::<super::projects::Project>(&mut g);
    let status = schema::<Status>(&mut g);
    let entries = schema::<Vec<QueueEntry>>(&mut g);
    let runs = schema::<Vec<RunSummary>>(&mut g);
    let metrics = schema::<Metrics>(&mut g);
    let health = schema::<Health>(&mut g);
    let report = schema::<Report>(&mut g);
    let jobs = schema::<Vec<Admitted>>(&mut g);
    let submit = schema::<super::api::SubmitBody>(&mut g);
    let event = schema::<Event>(&mut g);
    let (id, run) = (id_param(), int_param("run", "A run id."));
    let mut paths = json!({
        "/projects": get("Every known project, with its daemon's status", &[], &object(&[("projects", json!({"type": "array", "items": project}))])),
        "/projects/{id}": get("One project", std::slice::from_ref(&id), &project),
        "/projects/{id}/status": get("The daemon's status", std::slice::from_ref(&id), &status),
        "/projects/{id}/queue": get("The waiting jobs", std::slice::from_ref(&id), &object(&[("entries", entries)])),
        "/projects/{id}/history": get("Runs, newest first, a page at a time", &[
            id.clone(),
            query("task", "string", "Only this task."),
            query("limit", "integer", "Runs in the page (50; at most 500)."),
            query("before", "integer", "Only runs older than this run id: the next page."),
            json!({"name": "outcome", "in": "query", "required": false, "description": "Only runs that ended so: clean (exit 0), findings (1), failed (an analyzer failed, timed out or ran out of memory).", "schema": {"enum": ["clean", "findings", "failed"]}}),
            query("within", "string", "Only runs started within this long: 30m, 1h, 7d."),
        ], &object(&[("runs", runs)])),
        "/projects/{id}/metrics": get("Per task: runs, success rate, durations, waits", std::slice::from_ref(&id), &metrics),
        "/projects/{id}/trends": get("Runs over time, per bucket (hour or day) and task: runs, success rate, duration and queue wait (p50, p95), findings by severity after the bucket's last run, new and fixed; read from the worktree's state database", &[
            id.clone(),
            query("task", "string", "Only this task."),
            query("days", "integer", "The window: this many days back (14; 1 to 365)."),
            json!({"name": "bucket", "in": "query", "required": false, "description": "hour or day (hours for windows up to 2 days).", "schema": {"enum": ["hour", "day"]}}),
            query("utc_offset_min", "integer", "Buckets start at midnight at this offset from UTC, in minutes east (0)."),
        ], &schema::<crate::store::Trends>(&mut g)),
        "/projects/{id}/health": get("The health checks, now", std::slice::from_ref(&id), &health),
        "/projects/{id}/notifications": get("The notification delivery log, newest first", &[id.clone(), query("limit", "integer", "Deliveries (20; at most 500).")],
            &object(&[("deliveries", json!({"type": "array", "items": {"type": "object"}}))])),
        "/projects/{id}/notifications/channels": get("Each notification channel: whether the config turns it on (`on`) and from which level (`min_severity`)", std::slice::from_ref(&id), &object(&[("channels", json!({"type": "array", "items": object(&[("channel", json!({"type": "string"})), ("on", json!({"type": "boolean"})), ("min_severity", json!({"type": ["string", "null"]}))])}))])),
        "/projects/{id}/notifications/test": {"post": {"summary": "Send a test notification (`bgtask notify test`) through every channel or the one named; each attempt goes into the delivery log. 200 even when a channel failed: each result says", "parameters": [id.clone()], "requestBody": {"required": false, "content": {"application/json": {"schema": schema::<super::notify::TestBody>(&mut g)}}}, "responses": ok("Each channel's outcome", &object(&[("results", schema::<Vec<crate::notifier::TestResult>>(&mut g))]))}},
        "/projects/{id}/runs/{run}": get("A run's report; findings carry their source line as the worktree has it now; `marks`: which findings are new (indices) and what the run fixed, against the task's earlier runs (null when that cannot be told)", &[id.clone(), run.clone()], &object(&[("report", report), ("marks", schema::<Option<crate::notifier::Marks>>(&mut g))])),
        "/projects/{id}/runs/{run}/log": {"get": {
            "summary": "What the run's analyzers printed: {\"logs\": {analyzer: text}, \"finished\"}; with follow=1, Server-Sent Events as it is written (chunk {analyzer, data}, then end {finished})",
            "parameters": [id.clone(), run.clone(), query("follow", "integer", "1: stream it as it is written.")],
            "responses": {"200": {"description": "the output, or its stream", "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {"type": "object"}}}}, "default": {"$ref": "#/components/responses/Error"}}
        }},
        "/projects/{id}/runs/{run}/{file}": {"get": {
            "summary": "The run's report as a file: report.json, report.sarif or report.junit",
            "parameters": [id.clone(), run.clone(), {"name": "file", "in": "path", "required": true, "schema": {"enum": ["report.json", "report.sarif", "report.junit"]}}],
            "responses": {"200": {"description": "the file"}, "default": {"$ref": "#/components/responses/Error"}}
        }}
    });
    // The page's "check now" button posts what GET does.
    paths["/projects/{id}/health"]["post"] = paths["/projects/{id}/health"]["get"].clone();
    for more in [
        change_paths(jobs, submit, &event),
        settings_paths(&mut g),
        automation_paths(&mut g),
    ] {
        if let (Some(all), Value::Object(more)) = (paths.as_object_mut(), more) {
            all.extend(more);
        }
    }
    wrap(&paths, &g.take_definitions(true))
}

/// The document as committed: pretty, with a trailing newline.
pub fn document_json() -> String {
    let mut out = serde_json::to_string_pretty(&document()).expect("the document serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn committed_openapi_matches_the_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/openapi.json");
        let generated = super::document_json();
        if std::env::var_os("BGTASK_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/openapi.json is out of date: BGTASK_UPDATE_SCHEMA=1 cargo test openapi"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = super::document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is not defined");
        }
        assert!(schemas.contains_key("Status") && schemas.contains_key("Report"));
    }
}
