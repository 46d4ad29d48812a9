// A project: run a task, what runs, the queue (with why each job has its
// score) and the history, a page at a time. Other files add sections
// (`projectSections`) drawn below these.
"use strict";

const projectSections = [];

// Per project: the history's filter (task, outcome, window) and the
// column the shown page is sorted by.
const historyView = {};
const OUTCOMES = [["", "any outcome"], ["clean", "clean"], ["findings", "findings"], ["failed", "failed"]];
const WINDOWS = [["", "any time"], ["1h", "last hour"], ["24h", "last day"], ["7d", "last week"]];
const COLUMNS = [["run_id", "run"], ["task", "task"], ["started", "started"], ["duration_ms", "took"], ["findings", "findings"], ["verdict", "verdict"], ["trigger", "trigger"]];

function historyQuery(f, before) {
  const q = new URLSearchParams({limit: "50"});
  for (const k of ["task", "outcome", "within"]) if (f[k]) q.set(k, f[k]);
  if (before) q.set("before", before);
  return q.toString();
}

function options(list, chosen) {
  return list.map(([v, label]) => `<option value="${esc(v)}"${v === (chosen || "") ? " selected" : ""}>${esc(label)}</option>`).join("");
}

function historyTable(id, runs, f) {
  const sorted = [...runs];
  if (f.sort) {
    const [key, dir] = f.sort;
    sorted.sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0) * dir);
  }
  const head = COLUMNS.map(([key, label]) => {
    const on = f.sort && f.sort[0] === key;
    const sort = on ? (f.sort[1] > 0 ? "ascending" : "descending") : "none";
    return `<th aria-sort="${sort}"><button class="link" data-act="history-sort" data-key="${key}">${label}${on ? (f.sort[1] > 0 ? " ▲" : " ▼") : ""}</button></th>`;
  }).join("");
  const rows = sorted.map((r) => `<tr><td><a href="#/p/${id}/run/${r.run_id}">${r.run_id}</a></td><td>${esc(r.task)}</td><td>${esc(r.started)}</td><td class="num">${secs(r.duration_ms)}</td><td class="num">${r.findings}</td><td class="${worst(r)}">${esc(r.verdict)}</td><td>${esc(r.trigger)}</td></tr>`).join("");
  return `<table id="history"><tr>${head}</tr>${rows}</table>`;
}

async function project(id, before) {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = "/ " + p.name;
  if (p.daemon !== "up") return card(p);
  const f = historyView[id] ||= {};
  const [queue, history] = await Promise.all([api(`/projects/${id}/queue`),
    api(`/projects/${id}/history?${historyQuery(f, before)}`)]);
  const s = p.status;
  const tasks = (s.tasks || []).map((t) => `<button data-act="submit" data-task="${esc(t)}">Run ${esc(t)}</button>`).join("");
  const q = queue.entries.map((e) => `<tr><td>${e.job_id}</td><td>${esc(e.task)}</td><td>${esc(e.priority)}</td><td class="num">${e.score}</td><td>${esc(e.why || "")}</td><td>${esc(e.state)}</td><td><button data-act="cancel" data-job="${e.job_id}">Cancel</button></td></tr>`).join("");
  const running = s.running_jobs.map((j) => `<tr><td><a href="#/p/${id}/run/${j.run_id}">${j.job_id}</a></td><td>${esc(j.task)}</td><td class="num">${j.running_s.toFixed(1)} s</td><td><button data-act="cancel" data-job="${j.job_id}">Cancel</button></td></tr>`).join("");
  const filter = `<p class="filters"><label>task <select data-act="history-filter" name="task">${options([["", "every task"], ...(s.tasks || []).map((t) => [t, t])], f.task)}</select></label>
    <label>outcome <select data-act="history-filter" name="outcome">${options(OUTCOMES, f.outcome)}</select></label>
    <label>started <select data-act="history-filter" name="within">${options(WINDOWS, f.within)}</select></label></p>`;
  const waiting = [...new Set(queue.entries.map((e) => e.task))].map((t) =>
    `<button data-act="bulk-cancel" data-task="${esc(t)}">Cancel every waiting ${esc(t)} job</button>`).join(" ");
  const failing = history.runs.some((r) => r.exit_code >= 2)
    ? `<p><button data-act="bulk-retry">Retry every task whose last run failed (last hour)</button></p>` : "";
  const older = history.runs.length === 50 ? `<a href="#/p/${id}/before/${history.runs[49].run_id}">Older runs</a>` : "";
  const newer = before ? `<a href="#/p/${id}">Newest runs</a> ` : "";
  const more = await Promise.all(projectSections.map((section) => section(id, p).catch((e) => `<p class="error">${esc(e.message)}</p>`)));
  return `${card(p)}
    <h3>Run a task</h3><div class="tasks">${tasks || '<span class="muted">No tasks.</span>'}
      <button data-act="health">Check health now</button> <button data-act="cleanup">Clean up now</button></div><p id="said" class="muted" role="status"></p>
    <h3>Running</h3>${running ? `<table><tr><th>job</th><th>task</th><th>elapsed</th><th></th></tr>${running}</table>` : '<p class="muted">Nothing runs.</p>'}
    <h3>Queue</h3>${q ? `<table><tr><th>job</th><th>task</th><th>priority</th><th>score</th><th>why</th><th>state</th><th></th></tr>${q}</table><p>${waiting}</p>` : '<p class="muted">Nothing waits.</p>'}
    <h3>History</h3>${filter}${history.runs.length ? historyTable(id, history.runs, f) : '<p class="muted">No runs match.</p>'}${failing}${newer}${older}
    ${more.join("")}`;
}

view(/^\/p\/(?<id>[^/]+)$/, (id) => project(id));
view(/^\/p\/(?<id>[^/]+)\/before\/(\d+)$/, (id, before) => project(id, before));

action("history-filter", (el, id) => {
  const f = historyView[id] ||= {};
  f[el.name] = el.value;
  if (location.hash !== `#/p/${id}`) location.hash = `#/p/${id}`;
  else render();
});
action("history-sort", (t, id) => {
  const f = historyView[id] ||= {};
  const key = t.dataset.key;
  f.sort = f.sort && f.sort[0] === key ? [key, -f.sort[1]] : [key, key === "run_id" ? -1 : 1];
  render();
});
action("health", async (t, id) => {
  const h = await api(`/projects/${id}/health`, {});
  const notes = h.checks.filter((c) => c.level !== "ok").map((c) => `${c.name}: ${c.message}`);
  say(`health ${h.level}${notes.length ? ": " + notes.join("; ") : ""}`);
});
action("cleanup", async (t, id) => {
  const c = await api(`/projects/${id}/cleanup`, {});
  say("cleaned up: " + Object.entries(c).map(([k, v]) => `${v} ${k.replaceAll("_", " ")}`).join(", "));
});
action("submit", async (t, id) => {
  const r = await api(`/projects/${id}/submit`, {tasks: [t.dataset.task]});
  say(r.jobs.map((j) => `${j.task}: job ${j.job_id} ${j.outcome}`).join("; "));
});
action("bulk-cancel", async (t, id) => {
  const r = await api(`/projects/${id}/bulk/cancel`, {task: t.dataset.task});
  say(`cancelled ${r.done.length} of ${r.selected} waiting ${t.dataset.task} jobs`);
});
action("bulk-retry", async (t, id) => {
  const r = await api(`/projects/${id}/bulk/retry`, {within: "1h"});
  say(r.selected ? `queued again: ${r.done.length} of ${r.selected} failing tasks` : "nothing failing in the last hour");
});
action("cancel", async (t, id) => {
  await api(`/projects/${id}/jobs/${t.dataset.job}/cancel`, {});
});
