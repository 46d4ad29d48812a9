// A project's notification delivery log.
"use strict";

subpage("notifications", "Notifications");
view(/^\/p\/(?<id>[^/]+)\/notifications$/, async (id) => {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = `/ ${p.name} / notifications`;
  const sent = await api(`/projects/${id}/notifications?limit=50`);
  const rows = sent.deliveries.map((d) => `<tr><td>${esc(d.time)}</td><td>${esc(d.channel)}</td><td>${esc(d.outcome)}</td><td>${esc(d.title)}</td><td class="error">${esc(d.error || "")}</td></tr>`).join("");
  return `<h2>Notifications</h2><p id="said" class="muted"></p>
    ${rows ? `<table><tr><th>when</th><th>channel</th><th>outcome</th><th>what</th><th>error</th></tr>${rows}</table>` : '<p class="muted">None sent yet.</p>'}`;
});
