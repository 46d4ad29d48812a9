// Automation paused by hand (`bgtask pause`): the banner on a project's
// card — on the overview and atop the project page — with its Resume
// button, or the card's Pause button, which asks for a reason in a small
// form. The form is a dialog outside the view: live redraws do not wipe
// what is being typed.
"use strict";

function jobsHeld(n) { return n === 1 ? "1 job held" : `${n} jobs held`; }

// The banner while automation is paused, else nothing.
function automationBanner(p) {
  const a = p.status && p.status.automation;
  if (!a || !a.paused) return "";
  const by = a.by ? ` by ${esc(a.by)}` : "";
  const since = a.since_ms ? ` since ${esc(new Date(a.since_ms).toLocaleString())}` : "";
  return `<div class="paused" role="status"><p><strong>Automation paused:</strong> ${esc(a.reason || "no reason given")}
    <span class="muted">(paused${by}${since}; ${jobsHeld(a.held)})</span></p>
    <p class="muted">Saves, hooks, schedules and idle time queue their jobs but start none; runs asked for still run.
    <button data-act="resume" data-project="${p.id}">Resume</button></p></div>`;
}

// The Pause button while automation runs, else nothing.
function pauseButton(p) {
  const a = p.status && p.status.automation;
  if (a && a.paused) return "";
  return `<p><button data-act="pause" data-project="${p.id}">Pause automation…</button></p>`;
}

function pauseDialog() {
  let d = $("#pause-dialog");
  if (d) return d;
  d = document.createElement("dialog");
  d.id = "pause-dialog";
  d.setAttribute("aria-labelledby", "pause-title");
  d.innerHTML = `<form data-act="pause-send">
    <h3 id="pause-title">Pause automation</h3>
    <p class="muted">Saves, hooks, schedules and idle time queue their jobs but start none until it is resumed; runs you ask for still run. The pause outlives a restart of the daemon.</p>
    <p><label>Reason <input name="reason" maxlength="1000" autocomplete="off" placeholder="a big refactor"></label></p>
    <p class="error" id="pause-error"></p>
    <p><button type="submit">Pause</button> <button type="button" data-act="pause-cancel">Cancel</button></p>
  </form>`;
  document.body.append(d);
  return d;
}

action("pause", (t) => {
  const d = pauseDialog();
  const form = d.querySelector("form");
  form.dataset.project = t.dataset.project;
  form.reason.value = "";
  $("#pause-error").textContent = "";
  d.showModal();
  form.reason.focus();
});
action("pause-cancel", () => $("#pause-dialog").close());
action("pause-send", async (form) => {
  let a;
  try {
    a = await api(`/projects/${form.dataset.project}/pause`, {reason: form.reason.value.trim()});
  } catch (e) {
    $("#pause-error").textContent = e.message;
    return;
  }
  $("#pause-dialog").close();
  await render();
  say(`automation paused; ${jobsHeld(a.held)}`);
});
action("resume", async (t) => {
  const a = await api(`/projects/${t.dataset.project}/resume`, {});
  await render();
  say(a.held ? `automation resumed; ${a.held} held job(s) start now` : "automation resumed");
});
