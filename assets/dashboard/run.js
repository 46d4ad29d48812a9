// A run: its analyzers and findings grouped by file with the flagged
// source lines; a run still going shows its output as it is written.
"use strict";

function finding(root, f) {
  const loc = f.location && f.location.line ? f.location.line + ":" + (f.location.column || 1) : "";
  const editor = f.location ? `vscode://file/${encodeURI(root + "/" + f.location.path)}${f.location.line ? ":" + loc : ""}` : "";
  const src = f.source ? `<tr class="source"><td></td><td colspan="4"><code>${esc(f.source.text)}</code>${f.source.changed ? ' <span class="warn">(the file changed since this run)</span>' : ""}</td></tr>` : "";
  return `<tr><td class="mono">${editor ? `<a href="${esc(editor)}" title="open in the editor">${loc || "open"}</a>` : loc}</td><td class="sev-${f.severity}">${esc(f.severity)}</td>
    <td class="mono">${f.help_uri ? `<a href="${esc(f.help_uri)}" rel="noreferrer">${esc(f.rule)}</a>` : esc(f.rule)}</td><td>${esc(f.message)}</td><td class="muted">${esc(f.analyzer)}</td></tr>${src}`;
}

let tail = null;
function follow(id, runId) {
  if (tail && tail.key === `${id}/${runId}`) return;
  if (tail) tail.source.close();
  const source = new EventSource(`/api/v1/projects/${id}/runs/${runId}/log?follow=1`);
  tail = {key: `${id}/${runId}`, source, text: ""};
  source.addEventListener("chunk", (e) => {
    const c = JSON.parse(e.data);
    tail.text += c.data;
    const pre = $("#tail");
    if (pre) pre.textContent = tail.text;
  });
  source.addEventListener("end", () => { source.close(); tail = null; soon(); });
}

view(/^\/p\/(?<id>[^/]+)\/run\/(\d+)$/, async (id, runId) => {
  const p = await api(`/projects/${id}`);
  let report;
  try {
    report = (await api(`/projects/${id}/runs/${runId}`)).report;
  } catch (e) {
    if (!/still running/.test(e.message)) throw e;
    follow(id, runId);
    $("#where").textContent = `/ run ${runId}`;
    return `<h2><a href="#/p/${id}" aria-label="back to the project">←</a> Run ${runId}: <span class="muted">running</span></h2>
      <p class="muted">Its output, as it is written:</p><pre id="tail" class="mono">${esc(tail ? tail.text : "")}</pre>`;
  }
  const root = p.root;
  $("#where").textContent = `/ run ${runId}`;
  const analyzers = report.runs.map((a) => `<tr><td>${esc(a.analyzer)}</td><td>${esc(a.status)}</td><td class="num">${secs(a.duration_ms)}</td><td>${esc(a.reason || "")}</td></tr>`).join("");
  const byFile = {};
  for (const f of report.findings) (byFile[f.location ? f.location.path : "(no file)"] ||= []).push(f);
  const files = Object.entries(byFile).map(([path, fs]) => `<div class="file"><h4 class="mono">${esc(path)}</h4><table>
    ${fs.map((f) => finding(root, f)).join("")}
    </table></div>`).join("");
  const downloads = ["json", "sarif", "junit"].map((f) => `<a href="/api/v1/projects/${id}/runs/${runId}/report.${f}" download>${f.toUpperCase()}</a>`).join(" · ");
  return `<h2><a href="#/p/${id}" aria-label="back to the project">←</a> Run ${runId}: <span class="${report.exit_code ? "bad" : "good"}">${esc(report.verdict)}</span></h2>
    <p class="muted">${esc(report.started)} · ${secs(report.duration_ms)} · download ${downloads}</p>
    <table><tr><th>analyzer</th><th>status</th><th>took</th><th>note</th></tr>${analyzers}</table>
    <h3>Findings (${report.findings.length})</h3>${files || '<p class="muted">None.</p>'}`;
});
