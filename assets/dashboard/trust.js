// A project's trust: what each task would run and what changed since it
// was trusted (`bgtask trust --diff`). Trusting from here asks first, as
// `bgtask trust` does, and names exactly what was shown: if what the tasks
// would run changed meanwhile, nothing is trusted.
"use strict";

let shownTrust = null;

subpage("trust", "Trust");
view(/^\/p\/(?<id>[^/]+)\/trust$/, async (id) => {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = `/ ${p.name} / trust`;
  const trust = await api(`/projects/${id}/trust`).catch((e) => ({error: e.message}));
  if (trust.error) return `<h2>Trust</h2><p class="error">Unknown: ${esc(trust.error)}</p>`;
  shownTrust = trust;
  const rows = Object.entries(trust.tasks).map(([t, s]) => `<tr><td>${esc(t)}</td><td class="${s.state === "trusted" ? "good" : "warn"}">${esc(s.state)}</td>
    <td class="mono">${esc(((s.state === "changed" ? s.diff : s.runs) || []).join("\n")) || '<span class="muted">built-in analyzers only</span>'}</td></tr>`).join("");
  const pending = Object.values(trust.tasks).some((s) => s.state !== "trusted");
  return `<h2>Trust</h2><p class="muted">Only trusted tasks run by themselves (hooks, saves, schedules, idle time); ${esc(trust.how)}.</p>
    <table><tr><th>task</th><th>state</th><th>what it runs, or what changed</th></tr>${rows}</table>
    ${pending ? `<p><button data-act="trust" data-confirm="${esc(trust.confirm)}">Trust what is listed…</button></p>` : '<p class="good">Everything listed is trusted.</p>'}
    <p id="said" class="muted" role="status"></p>`;
}, {live: false});

action("trust", async (t, id) => {
  const tasks = Object.entries(shownTrust.tasks).map(([task, s]) => `  ${task} (${s.state})`).join("\n");
  const root = $("#where").textContent;
  if (!confirm(`Trusting means these may run by themselves (on hooks, saves, schedules, idle):\n${tasks}\n\nTrust this worktree${root ? " " + root : ""}?`)) {
    say("not trusted");
    return;
  }
  await api(`/projects/${id}/trust`, {confirm: t.dataset.confirm});
  await render();
  say("trusted; `bgtask trust --revoke` undoes it");
});
