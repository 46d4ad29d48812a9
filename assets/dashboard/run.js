// A run: its analyzers and findings grouped by file with the flagged
// source lines; a run still going shows its output as it is written.
"use strict";

// The link that opens a finding in the editor: a template with {path},
// {line} and {column}, kept in this browser (VS Code's by default).
const EDITOR = "vscode://file/{path}:{line}:{column}";
function editorLink(root, loc) {
  const template = localStorage.getItem("bgtask.editor") || EDITOR;
  return template.replaceAll("{path}", encodeURI(root + "/" + loc.path))
    .replaceAll("{line}", loc.line || 1).replaceAll("{column}", loc.column || 1);
}

const SEVERITIES = ["critical", "high", "medium", "low", "info"];
// Severities hidden on run pages (this browser).
const hidden = new Set(JSON.parse(localStorage.getItem("bgtask.hidden") || "[]"));

function finding(root, f, isNew) {
  const loc = f.location && f.location.line ? f.location.line + ":" + (f.location.column || 1) : "";
  const editor = f.location ? editorLink(root, f.location) : "";
  const src = f.source ? `<tr class="source"><td></td><td colspan="5"><code>${esc(f.source.text)}</code>${f.source.changed ? ' <span class="warn">(the file changed since this run)</span>' : ""}</td></tr>` : "";
  return `<tr class="finding"><td class="mono">${editor ? `<a href="${esc(editor)}" title="open in the editor">${loc || "open"}</a>` : loc}</td><td class="sev-${f.severity}">${esc(f.severity)}</td>
    <td>${isNew ? '<span class="new">new</span>' : ""}</td>
    <td class="mono">${f.help_uri ? `<a href="${esc(f.help_uri)}" rel="noreferrer">${esc(f.rule)}</a>` : esc(f.rule)}</td><td>${esc(f.message)}</td><td class="muted">${esc(f.analyzer)}</td></tr>${src}`;
}

function fixedList(marks) {
  if (!marks || !marks.fixed.length) return "";
  const rows = marks.fixed.map((f) => `<tr><td class="mono">${esc(f.path || "")}${f.line ? ":" + f.line : ""}</td><td class="sev-${esc(f.severity)}">${esc(f.severity)}</td>
    <td class="mono">${esc(f.rule)}</td><td>${esc(f.message)}</td><td class="muted">${esc(f.analyzer)}</td></tr>`).join("");
  return `<h3>Fixed (${marks.fixed.length})</h3><p class="muted">Found by an earlier run, gone in what this one looked at.</p><table>${rows}</table>`;
}

function severityFilter(findings) {
  const counts = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
  return `<fieldset class="filters"><legend>Show</legend>${SEVERITIES.filter((s) => counts[s]).map((s) =>
    `<label><input type="checkbox" data-act="severity" value="${s}"${hidden.has(s) ? "" : " checked"}> <span class="sev-${s}">${s}</span> (${counts[s]})</label>`).join("")}</fieldset>`;
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
  let report, data;
  try {
    data = await api(`/projects/${id}/runs/${runId}`);
    report = data.report;
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
  const marks = data.marks;
  const fresh = new Set(marks ? marks.new : []);
  const byFile = {};
  report.findings.forEach((f, i) => {
    if (!hidden.has(f.severity)) (byFile[f.location ? f.location.path : "(no file)"] ||= []).push([f, fresh.has(i)]);
  });
  const files = Object.entries(byFile).map(([path, fs]) => `<div class="file"><h4 class="mono">${esc(path)}</h4><table>
    ${fs.map(([f, isNew]) => finding(root, f, isNew)).join("")}
    </table></div>`).join("");
  const downloads = ["json", "sarif", "junit"].map((f) => `<a href="/api/v1/projects/${id}/runs/${runId}/report.${f}" download>${f.toUpperCase()}</a>`).join(" · ");
  const novelty = !marks ? "" : marks.first_run ? " · the task's first run: everything is new"
    : ` · ${marks.new.length} new, ${marks.fixed.length} fixed since the earlier runs`;
  return `<h2><a href="#/p/${id}" aria-label="back to the project">←</a> Run ${runId}: <span class="${report.exit_code ? "bad" : "good"}">${esc(report.verdict)}</span></h2>
    <p class="muted">${esc(report.started)} · ${secs(report.duration_ms)}${novelty} · download ${downloads}</p>
    <table><tr><th>analyzer</th><th>status</th><th>took</th><th>note</th></tr>${analyzers}</table>
    <h3>Findings (${report.findings.length})</h3>${report.findings.length ? severityFilter(report.findings) : ""}${files || '<p class="muted">None.</p>'}
    ${fixedList(marks)}
    <details><summary>Editor link</summary><form data-act="editor"><label>Template ({path}, {line}, {column}) <input name="template" size="50" value="${esc(localStorage.getItem("bgtask.editor") || EDITOR)}"></label> <button type="submit">Save</button></form></details>`;
});

action("severity", (box) => {
  if (box.checked) hidden.delete(box.value); else hidden.add(box.value);
  localStorage.setItem("bgtask.hidden", JSON.stringify([...hidden]));
  render();
});
action("editor", (form) => {
  const t = form.template.value.trim();
  if (t && t !== EDITOR) localStorage.setItem("bgtask.editor", t); else localStorage.removeItem("bgtask.editor");
  render();
});
