// A project's tasks and config: each task with what it runs and when,
// turned on and off, edited, created and deleted in the personal
// .background-tasks.local.json (checked first: a refused edit lists every
// problem and changes nothing); the config's validity and the config as
// merged from its files. Not redrawn by events: an edit in progress stays.
"use strict";

const TEMPLATE = {analyzers: ["bandit"], triggers: ["save"], priority: "medium"};

function taskRow(id, t, effective) {
  const own = effective && effective[t.project] && effective[t.project].tasks ? effective[t.project].tasks[t.name] : null;
  const personalOnly = t.defined_in.length === 1 && t.defined_in[0] === "personal";
  const key = encodeURIComponent(t.key);
  return `<tr><td class="mono">${esc(t.key)}</td><td class="${t.enabled ? "good" : "muted"}">${t.enabled ? "on" : "off"}</td>
    <td>${esc(t.analyzers.join(", "))}</td><td>${esc(t.triggers.join(", ") || "by hand")}${t.schedule ? ` <span class="mono">(${esc(t.schedule)})</span>` : ""}</td>
    <td>${esc(t.priority)}</td><td class="muted">${esc(t.defined_in.join(" + "))}</td>
    <td><button data-act="task-toggle" data-key="${key}" data-on="${t.enabled ? "" : "1"}">${t.enabled ? "Disable" : "Enable"}</button>
    <button data-act="task-edit" data-key="${key}" data-json="${esc(JSON.stringify(own || {}, null, 2))}">Edit</button>
    ${personalOnly ? `<button data-act="task-delete" data-key="${key}">Delete</button>` : ""}</td></tr>`;
}

function problems(e) {
  const list = (e.data && e.data.problems) || [];
  return list.length ? `<ul>${list.map((p) => `<li class="mono">${esc(p)}</li>`).join("")}</ul>` : "";
}

subpage("tasks", "Tasks & config");
view(/^\/p\/(?<id>[^/]+)\/tasks$/, async (id) => {
  const p = await api(`/projects/${id}`);
  $("#where").textContent = `/ ${p.name} / tasks`;
  const config = await api(`/projects/${id}/config`);
  if (!config.valid) {
    return `<h2>Tasks</h2><p class="bad">The config is invalid; the daemon keeps its last good config. Fix these, then reload this page:</p>
      <ul>${config.problems.map((x) => `<li class="mono">${esc(x)}</li>`).join("")}</ul>`;
  }
  const {tasks, personal_file: file} = await api(`/projects/${id}/tasks`);
  const rows = tasks.map((t) => taskRow(id, t, config.effective)).join("");
  return `<h2>Tasks</h2>
    <p class="muted">Changes go to your personal <code>${esc(file)}</code>, merged over the committed config (which is never rewritten), checked before they are written; the daemon reloads it by itself.</p>
    <table><tr><th>task</th><th></th><th>analyzers</th><th>runs on</th><th>priority</th><th>defined in</th><th></th></tr>${rows}</table>
    <p id="said" class="muted" role="status"></p><div id="problems" class="error"></div>
    <form data-act="task-save" id="editor" aria-label="task editor">
      <h3 id="editing">New task</h3>
      <p><label>Name <input name="key" required autocomplete="off"></label></p>
      <p><label>Definition (JSON, as in the config file)<br><textarea name="task" rows="10" class="mono" spellcheck="false">${esc(JSON.stringify(TEMPLATE, null, 2))}</textarea></label></p>
      <p><button type="submit">Save</button> <button type="button" data-act="task-new">Clear</button></p>
    </form>
    <h3>Config</h3><p class="good">Valid: ${config.files.map(esc).join(" + ") || "built-in tasks"}</p>
    <details><summary>The config as merged from its files</summary><pre class="mono">${esc(JSON.stringify(config.effective, null, 2))}</pre></details>`;
}, {live: false});

async function edited(run) {
  $("#problems").innerHTML = "";
  try {
    const r = await run();
    await render();
    say(r.task ? `${r.task.key}: written to ${r.file}` : `written to ${r.file}`);
  } catch (e) {
    const listed = problems(e);
    say(listed ? "Not written: with this edit the config would be invalid." : e.message, true);
    $("#problems").innerHTML = listed;
  }
}

action("task-toggle", (t, id) => edited(() => api(`/projects/${id}/tasks/${t.dataset.key}/${t.dataset.on ? "enable" : "disable"}`, {})));
action("task-delete", (t, id) => {
  if (!confirm(`Delete task ${decodeURIComponent(t.dataset.key)} from your personal file?`)) return;
  return edited(() => api(`/projects/${id}/tasks/${t.dataset.key}/delete`, {}));
});
action("task-edit", (t) => {
  const form = $("#editor");
  form.key.value = decodeURIComponent(t.dataset.key);
  form.task.value = t.dataset.json;
  $("#editing").textContent = `Edit ${form.key.value}`;
  form.task.focus();
});
action("task-new", () => {
  const form = $("#editor");
  form.key.value = "";
  form.task.value = JSON.stringify(TEMPLATE, null, 2);
  $("#editing").textContent = "New task";
  form.key.focus();
});
action("task-save", (form, id) => {
  let task;
  try {
    task = JSON.parse(form.task.value);
  } catch (e) {
    say(`The definition is not JSON: ${e.message}`, true);
    return;
  }
  return edited(() => api(`/projects/${id}/tasks/${encodeURIComponent(form.key.value.trim())}`, {task}));
});
