// A project's trust: what each task would run and what changed since it
// was trusted (`bgtask trust --diff`). Trusting stays at the terminal.
"use strict";

subpage("trust", "Trust");
view(/^\/p\/(?<id>[^/]+)\/trust$/, async (id) => {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = `/ ${p.name} / trust`;
  const trust = await api(`/projects/${id}/trust`).catch((e) => ({error: e.message}));
  if (trust.error) return `<h2>Trust</h2><p class="error">Unknown: ${esc(trust.error)}</p>`;
  const rows = Object.entries(trust.tasks).map(([t, s]) => `<tr><td>${esc(t)}</td><td class="${s.state === "trusted" ? "good" : "warn"}">${esc(s.state)}</td>
    <td class="mono">${esc(((s.state === "changed" ? s.diff : s.runs) || []).join("\n")) || '<span class="muted">built-in analyzers only</span>'}</td></tr>`).join("");
  return `<h2>Trust</h2><p class="muted">${esc(trust.how)}; only trusted tasks run by themselves (hooks, saves, schedules).</p>
    <table><tr><th>task</th><th>state</th><th>what it runs, or what changed</th></tr>${rows}</table>`;
});
