// The page's core: helpers, the router, buttons and forms, and the live
// event stream. Each page is a file that registers its view and its
// actions here; start.js starts it all once every file is loaded.
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const secs = (ms) => (ms / 1000).toFixed(1) + " s";

async function api(path, body, method) {
  const opts = body === undefined ? {} : {method: method || "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch("/api/v1" + path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error((data.error && data.error.message) || r.statusText);
    err.data = data.error || {};
    throw err;
  }
  return data;
}

// Views: a hash pattern and a function from its captures to HTML. A view
// that is not `live` is drawn once per visit (a form being filled in is
// not redrawn under the user's hands).
const views = [];
function view(pattern, draw, opts) { views.push({pattern, draw, live: !(opts && opts.live === false)}); }

// Actions: `<button data-act="name">` and `<form data-act="name">` call
// actions[name](element, projectId) when clicked or submitted.
const actions = {};
function action(name, fn) { actions[name] = fn; }

// The project pages' navigation, shown on every page of a project.
const subpages = [["", "Project"]];
function subpage(path, title) { subpages.push([path, title]); }
function nav(id) {
  const here = location.hash;
  $("#nav").innerHTML = id ? subpages.map(([path, title]) => {
    const href = `#/p/${id}${path ? "/" + path : ""}`;
    return `<a href="${href}"${here === href ? ' aria-current="page"' : ""}>${esc(title)}</a>`;
  }).join("") : "";
}

function projectId() { return location.hash.split("/")[2]; }

// Where a view shows what an action said (or the error it met).
function say(text, isError) {
  const said = $("#said");
  if (!said) return;
  said.textContent = text;
  said.className = isError ? "error" : "muted";
}

let dirty = false;
let current = null;
let drawn = 0, drawnHash = null;
async function render() {
  if (document.hidden) { dirty = true; return; }
  dirty = false;
  const hash = location.hash.replace(/^#/, "") || "/";
  const found = views.map((v) => [v, hash.match(v.pattern)]).find(([, m]) => m);
  if (!found) { $("#view").innerHTML = `<p class="error">No such page: ${esc(hash)}</p>`; return; }
  const [v, m] = found;
  current = v;
  nav(m.groups && m.groups.id);
  const mine = ++drawn;  // a slower earlier draw must not overwrite a later one
  let html;
  try {
    html = await v.draw(...m.slice(1));
  } catch (e) {
    html = `<p class="error">${esc(e.message)}</p>`;
  }
  if (mine !== drawn) return;
  // What an action said stays through redraws of the same page.
  const said = hash === drawnHash && $("#said");
  $("#view").innerHTML = html;
  drawnHash = hash;
  if (said && $("#said")) { $("#said").textContent = said.textContent; $("#said").className = said.className; }
}

// A redraw after an event: at once for the first, then at most one more
// per 100 ms while they keep coming (several events, one redraw).
let pending = null, again = false;
function soon() {
  if (current && !current.live) return;
  if (pending) { again = true; return; }
  render();
  pending = setTimeout(() => { pending = null; if (again) { again = false; soon(); } }, 100);
}

async function act(el, ev) {
  const fn = actions[el.dataset.act];
  if (!fn) return;
  ev.preventDefault();
  try {
    await fn(el, projectId());
  } catch (e) {
    say(e.message, true);
  }
}
document.addEventListener("click", (ev) => {
  const t = ev.target.closest("button[data-act]");
  if (t && !(t.form && t.type === "submit")) act(t, ev);
});
document.addEventListener("change", (ev) => {
  const s = ev.target.closest("select[data-act], input[type=checkbox][data-act]");
  if (s) act(s, ev);
});
document.addEventListener("submit", (ev) => {
  const f = ev.target.closest("form[data-act]");
  if (f) act(f, ev);
});
window.addEventListener("hashchange", render);
document.addEventListener("visibilitychange", () => { if (!document.hidden && dirty) render(); });

// Every event the daemons publish redraws the page that is shown. Pages
// that want an event themselves add a listener to `events`.
const kinds = ["daemon_up", "daemon_down", "job_queued", "job_updated", "job_dropped", "job_started", "job_finished",
  "config_reloaded", "health_changed", "trust_changed", "watcher_changed", "holding", "stopped", "notification_delivered",
  "automation_paused", "automation_resumed"];
let events = null;
function listen() {
  events = new EventSource("/api/v1/events");
  events.onopen = () => { $("#live").textContent = "live"; };
  events.onerror = () => { $("#live").textContent = "reconnecting…"; };
  for (const kind of kinds) events.addEventListener(kind, soon);
}
