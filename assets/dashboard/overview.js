// The overview: every project as a card.
"use strict";

function worst(run) {
  if (run.verdict === "running") return "muted";
  return run.exit_code ? "bad" : run.findings ? "warn" : "good";
}

function lastByTask(status) {
  const last = {};
  for (const r of status.last_runs || []) if (!(r.task in last)) last[r.task] = r;
  return last;
}

function card(p) {
  const s = p.status;
  let body;
  if (p.daemon !== "up" || !s) {
    body = `<p class="down">daemon down</p><p><button data-act="start" data-project="${p.id}">Start it</button> <span class="muted">(or <code>bgtask start</code> in <code>${esc(p.root)}</code>)${p.problem ? " — " + esc(p.problem) : ""}</span></p><p class="error" id="start-${p.id}"></p>`;
  } else {
    const running = s.running_jobs.map((j) => `<li>${esc(j.task)} <span class="muted">job ${j.job_id}, ${j.running_s.toFixed(1)} s</span></li>`).join("");
    const last = Object.values(lastByTask(s)).map((r) =>
      `<li><a href="#/p/${p.id}/run/${r.run_id}" class="${worst(r)}">${esc(r.task)}</a>: ${esc(r.verdict)}</li>`).join("");
    const untrusted = (s.untrusted || []).map((u) => esc(u.task)).join(", ");
    body = `${automationBanner(p)}<p><span class="up">daemon up</span> <span class="muted">pid ${s.pid}, watcher ${esc(s.watcher ? s.watcher.state : "off")}</span></p>
      <p>queue ${s.queue_depth} · running ${s.running_jobs.length} · health <span class="${s.health.level === "ok" ? "good" : s.health.level === "error" ? "bad" : "warn"}">${esc(s.health.level)}</span>
      ${s.config.stale ? ' · <span class="bad">config stale</span>' : ""}${s.holding ? ` · <span class="warn">holding: ${esc(s.holding)}</span>` : ""}</p>
      ${running ? `<p>Running:</p><ul>${running}</ul>` : ""}
      ${last ? `<p>Last results:</p><ul>${last}</ul>` : '<p class="muted">No runs yet.</p>'}
      ${untrusted ? `<p class="warn">Not trusted (runs only by hand until <code>bgtask trust</code>): ${untrusted}</p>` : ""}${pauseButton(p)}`;
  }
  return `<section class="card" data-project="${p.id}"><h2><a href="#/p/${p.id}">${esc(p.name)}</a></h2>
    <p class="muted mono">${esc(p.root)}</p>${body}</section>`;
}

view(/^\/?$/, async () => {
  $("#where").textContent = "";
  const {projects} = await api("/projects");
  if (!projects.length) return `<p>No projects yet: run <code>bgtask start</code> (or <code>bgtask install-hooks</code>) in a repository.</p>`;
  return `<div class="cards">${projects.map(card).join("")}</div>`;
});

action("start", async (t) => {
  const id = t.dataset.project;
  t.disabled = true;
  t.textContent = "Starting…";
  await api(`/projects/${id}/start`, {}).catch((e) => { $(`#start-${id}`).textContent = e.message; });
  await render();
});
