// A project's notifications: its channels, each with "Send a test"
// (`bgtask notify test`) and what the last test said, and the delivery log.
"use strict";

// The last test sent from this page: {id, results}, shown until the next.
let notifyTested = null;

function channelRow(c, result) {
  const state = c.on ? `<span class="good">on</span> from ${esc(c.min_severity)}` : '<span class="muted">off</span>';
  const said = result ? `<span class="${result.outcome === "failed" ? "error" : result.outcome === "delivered" ? "good" : "muted"}">${esc(result.outcome)}</span>: ${esc(result.detail)}` : "";
  return `<tr><td>${esc(c.channel)}</td><td>${state}</td>
    <td><button data-act="notify-test" data-channel="${esc(c.channel)}">Send a test</button></td><td>${said}</td></tr>`;
}

subpage("notifications", "Notifications");
view(/^\/p\/(?<id>[^/]+)\/notifications$/, async (id) => {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = `/ ${p.name} / notifications`;
  const [channels, sent] = await Promise.all([
    api(`/projects/${id}/notifications/channels`).catch((e) => ({error: e.message})),
    api(`/projects/${id}/notifications?limit=50`)]);
  const last = notifyTested && notifyTested.id === id ? notifyTested.results : [];
  const chans = channels.error ? `<p class="error">${esc(channels.error)}</p>`
    : `<table><tr><th>channel</th><th>config</th><th></th><th>last test</th></tr>${
      channels.channels.map((c) => channelRow(c, last.find((r) => r.channel === c.channel))).join("")}</table>
      <button data-act="notify-test">Send a test to every channel</button>`;
  const rows = sent.deliveries.map((d) => `<tr><td>${esc(d.time)}</td><td>${esc(d.channel)}</td><td>${esc(d.outcome)}</td><td>${esc(d.title)}</td><td class="error">${esc(d.error || "")}</td></tr>`).join("");
  return `<h2>Notifications</h2><p id="said" class="muted"></p>
    <h3>Channels</h3>${chans}
    <h3>Sent</h3>${rows ? `<table><tr><th>when</th><th>channel</th><th>outcome</th><th>what</th><th>error</th></tr>${rows}</table>` : '<p class="muted">None sent yet.</p>'}`;
});

action("notify-test", async (el, id) => {
  const channel = el.dataset.channel;
  say(`Sending a test notification to ${channel || "every channel"}…`);
  const r = await api(`/projects/${id}/notifications/test`, channel ? {channel} : {});
  notifyTested = {id, results: r.results};
  await render();
  const failed = r.results.filter((x) => x.outcome === "failed");
  say(failed.length ? `Failed: ${failed.map((x) => `${x.channel}: ${x.detail}`).join("; ")}`
    : r.results.map((x) => `${x.channel} ${x.outcome}`).join(", "), failed.length > 0);
});
