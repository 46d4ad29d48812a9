// A project: run a task, what runs, the queue (with why each job has its
// score) and the history, a page at a time. Other files add sections
// (`projectSections`) drawn below these.
"use strict";

const projectSections = [];

async function project(id, before) {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = "/ " + p.name;
  if (p.daemon !== "up") return card(p);
  const [queue, history] = await Promise.all([api(`/projects/${id}/queue`),
    api(`/projects/${id}/history?limit=50${before ? "&before=" + before : ""}`)]);
  const s = p.status;
  const tasks = (s.tasks || []).map((t) => `<button data-act="submit" data-task="${esc(t)}">Run ${esc(t)}</button>`).join("");
  const q = queue.entries.map((e) => `<tr><td>${e.job_id}</td><td>${esc(e.task)}</td><td>${esc(e.priority)}</td><td class="num">${e.score}</td><td>${esc(e.why || "")}</td><td>${esc(e.state)}</td><td><button data-act="cancel" data-job="${e.job_id}">Cancel</button></td></tr>`).join("");
  const running = s.running_jobs.map((j) => `<tr><td><a href="#/p/${id}/run/${j.run_id}">${j.job_id}</a></td><td>${esc(j.task)}</td><td class="num">${j.running_s.toFixed(1)} s</td><td><button data-act="cancel" data-job="${j.job_id}">Cancel</button></td></tr>`).join("");
  const h = history.runs.map((r) => `<tr><td><a href="#/p/${id}/run/${r.run_id}">${r.run_id}</a></td><td>${esc(r.task)}</td><td>${esc(r.started)}</td><td class="num">${secs(r.duration_ms)}</td><td class="num">${r.findings}</td><td class="${worst(r)}">${esc(r.verdict)}</td><td>${esc(r.trigger)}</td></tr>`).join("");
  const older = history.runs.length === 50 ? `<a href="#/p/${id}/before/${history.runs[49].run_id}">Older runs</a>` : "";
  const newer = before ? `<a href="#/p/${id}">Newest runs</a> ` : "";
  const more = await Promise.all(projectSections.map((section) => section(id, p).catch((e) => `<p class="error">${esc(e.message)}</p>`)));
  return `${card(p)}
    <h3>Run a task</h3><div class="tasks">${tasks || '<span class="muted">No tasks.</span>'}</div><p id="said" class="muted"></p>
    <h3>Running</h3>${running ? `<table><tr><th>job</th><th>task</th><th>elapsed</th><th></th></tr>${running}</table>` : '<p class="muted">Nothing runs.</p>'}
    <h3>Queue</h3>${q ? `<table><tr><th>job</th><th>task</th><th>priority</th><th>score</th><th>why</th><th>state</th><th></th></tr>${q}</table>` : '<p class="muted">Nothing waits.</p>'}
    <h3>History</h3><table><tr><th>run</th><th>task</th><th>started</th><th>took</th><th>findings</th><th>verdict</th><th>trigger</th></tr>${h}</table>${newer}${older}
    ${more.join("")}`;
}

view(/^\/p\/(?<id>[^/]+)$/, (id) => project(id));
view(/^\/p\/(?<id>[^/]+)\/before\/(\d+)$/, (id, before) => project(id, before));

action("submit", async (t, id) => {
  const r = await api(`/projects/${id}/submit`, {tasks: [t.dataset.task]});
  say(r.jobs.map((j) => `${j.task}: job ${j.job_id} ${j.outcome}`).join("; "));
});
action("cancel", async (t, id) => {
  await api(`/projects/${id}/jobs/${t.dataset.job}/cancel`, {});
});
