// The project page's plots over time (GET …/trends): findings by severity,
// new and fixed, run duration and queue wait (p50, p95) and success rate,
// for all tasks or one. Drawn with uPlot (uplot.js, vendored) once the
// page's HTML is in the DOM, from the last answer at once and again when a
// fresh one differs; each plot has a caption saying its latest values.
"use strict";

const trends = {id: null, days: 14, task: "", data: null, text: "", loading: false, plots: [], error: "", fetched: 0, stale: true, section: null};
const sevs = ["critical", "high", "medium", "low", "info"];

projectSections.push(async (id) => {
  if (trends.id !== id) Object.assign(trends, {id, task: "", data: null, text: "", error: "", stale: true});
  const days = [1, 7, 14, 30, 90].map((d) => `<option value="${d}"${d === trends.days ? " selected" : ""}>${d === 1 ? "1 day" : d + " days"}</option>`).join("");
  return `<section id="trends" aria-labelledby="trends-h"><h3 id="trends-h">Over time</h3>
    <p><label>Task <select id="trend-task"></select></label> <label>Window <select id="trend-days">${days}</select></label></p>
    <div id="plots" style="display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); gap: 1rem"><p class="muted">Loading…</p></div></section>`;
});

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const whenText = (ms) => new Date(ms).toLocaleString([], trends.data && trends.data.bucket_ms < 86400000
  ? {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"} : {year: "numeric", month: "short", day: "numeric"});
const num = (v) => (Math.round(v * 10) / 10).toLocaleString();

// What each plot shows: its series, each a name, a value of a point, a
// colour variable and a dash.
function charts() {
  const sev = {critical: ["--bad", []], high: ["--bad", [6, 3]], medium: ["--warn", []], low: ["--info", []], info: ["--muted", [2, 3]]};
  return [
    {title: "Findings by severity", unit: "", held: true, kept: true, series: sevs.map((s) => ({label: s, value: (p) => p.findings[s], color: sev[s][0], dash: sev[s][1]}))},
    {title: "New and fixed findings", unit: "", bars: true, kept: true, series: [
      {label: "new", value: (p) => p.new, color: "--bad"}, {label: "fixed", value: (p) => p.fixed, color: "--ok"}]},
    {title: "Run duration", unit: " s", series: [
      {label: "p50", value: (p) => p.duration_p50_ms / 1000, color: "--info"},
      {label: "p95", value: (p) => p.duration_p95_ms / 1000, color: "--warn", dash: [6, 3]}]},
    {title: "Success rate", unit: " %", max: 100, series: [{label: "success", value: (p) => p.ok_rate * 100, color: "--ok"}]},
    {title: "Queue wait", unit: " s", series: [
      {label: "p50", value: (p) => p.wait_p50_ms / 1000, color: "--info"},
      {label: "p95", value: (p) => p.wait_p95_ms / 1000, color: "--warn", dash: [6, 3]}]},
  ];
}

// A point's value for a series; findings only where they were kept
// (retention removes them after `results_days`).
const valueOf = (chart, s, p) => chart.kept && p.findings_removed ? null : s.value(p);

// The caption: the latest bucket's values in words.
function caption(chart, points) {
  if (!points.length) return `${chart.title}: no runs in the last ${trends.days} days.`;
  const last = points[points.length - 1];
  const gone = chart.kept && points.some((p) => p.findings_removed) ? " Older findings were removed by retention (results_days)." : "";
  const values = chart.series.map((s) => {
    const v = valueOf(chart, s, last);
    return `${s.label} ${v == null ? "unknown" : num(v) + chart.unit}`;
  }).join(", ");
  return `${chart.title}, ${whenText(last.start_ms)} (latest of ${points.length}): ${values}; ${last.runs} run${last.runs === 1 ? "" : "s"}.${gone}`;
}

function plotOptions(chart, width) {
  const [fg, muted, line] = [cssVar("--fg"), cssVar("--muted"), cssVar("--line")];
  const axis = {stroke: muted, grid: {stroke: line, width: 1}, ticks: {stroke: line, width: 1}};
  const bars = chart.bars && uPlot.paths.bars;
  return {
    width, height: 190, legend: {live: false}, cursor: {points: {show: false}},
    scales: {x: {time: true, range: (u) => [trends.data.from_ms / 1000, u.data[0][u.data[0].length - 1] + trends.data.bucket_ms / 2000]},
      y: {range: (u, lo, hi) => [0, chart.max || Math.max(1, hi * 1.1)]}},
    axes: [axis, {...axis, size: 48, values: (u, ticks) => ticks.map((t) => num(t) + chart.unit.trim())}],
    series: [{}, ...chart.series.map((s, i) => {
      const color = cssVar(s.color) || fg;
      return {label: s.label, stroke: color, width: 2, dash: s.dash || [], spanGaps: true,
        ...(bars ? {fill: color, points: {show: false}, paths: bars({size: [0.35, 24], align: i ? 1 : -1})} : {})};
    })],
  };
}

function draw() {
  const host = document.getElementById("plots");
  if (!host) return;
  if (!trends.data) {
    if (trends.error) host.innerHTML = `<p class="error">${esc(trends.error)}</p>`;
    return;
  }
  trends.section = {el: document.getElementById("trends"), text: trends.text, id: trends.id, error: trends.error};
  for (const p of trends.plots) p.destroy();
  trends.plots = [];
  const data = trends.data;
  const select = $("#trend-task");
  const options = [["", "all tasks"], ...data.tasks.map((t) => [t.task, t.task])];
  select.innerHTML = options.map(([v, label]) => `<option value="${esc(v)}"${v === trends.task ? " selected" : ""}>${esc(label)}</option>`).join("");
  const one = data.tasks.find((t) => t.task === trends.task);
  const points = one ? one.points : data.total;
  host.innerHTML = charts().map((c, i) => `<figure style="margin: 0; min-width: 0"><div role="img" aria-labelledby="plot-cap-${i}" id="plot-${i}"></div>
    <figcaption id="plot-cap-${i}" class="muted">${esc(caption(c, points))}</figcaption></figure>`).join("") + (trends.error ? `<p class="error">${esc(trends.error)}</p>` : "");
  if (!points.length) return;
  // Every bucket of the window; one without runs has no value, but the
  // findings known stay as they were.
  const x = [];
  for (let t = data.from_ms; t < data.to_ms; t += data.bucket_ms) x.push(t);
  const at = new Map(points.map((p) => [p.start_ms, p]));
  charts().forEach((c, i) => {
    const el = document.getElementById(`plot-${i}`);
    const ys = c.series.map((s) => {
      let last = null;
      return x.map((t) => at.has(t) ? (last = valueOf(c, s, at.get(t))) : c.held ? last : null);
    });
    // Each value at its bucket's middle.
    const plot = new uPlot(plotOptions(c, el.clientWidth || 400), [x.map((t) => (t + data.bucket_ms / 2) / 1000), ...ys], el);
    plot.root.querySelectorAll("canvas").forEach((cv) => cv.setAttribute("aria-hidden", "true"));
    trends.plots.push(plot);
  });
}

// Fetches the trends again (one request at a time) and redraws when the
// answer changed.
async function refresh() {
  if (trends.loading || !trends.id) return;
  Object.assign(trends, {loading: true, stale: false, fetched: Date.now()});
  const {id, days} = trends;
  try {
    const text = JSON.stringify(await api(`/projects/${id}/trends?days=${days}&utc_offset_min=${-new Date().getTimezoneOffset()}`));
    if (id !== trends.id || days !== trends.days) return;
    if (text === trends.text && !trends.error) return;
    Object.assign(trends, {text, data: JSON.parse(text), error: ""});
  } catch (e) {
    trends.error = e.message;
  } finally {
    trends.loading = false;
    if (id !== trends.id || days !== trends.days || trends.stale) refresh();
  }
  draw();
}

// After each render of a project page: the plots at once from the last
// answer, then a fresh one if a job finished since (or a minute passed).
let hooked = false;
new MutationObserver(() => {
  if (!hooked && events) {
    events.addEventListener("job_finished", () => { trends.stale = true; });
    hooked = true;
  }
  const fresh = document.getElementById("trends");
  if (!fresh) return;
  // The plots drawn from the same answer are kept, not drawn again.
  const kept = trends.section;
  if (kept && kept.el !== fresh && kept.text === trends.text && kept.id === trends.id && kept.error === trends.error) fresh.replaceWith(kept.el);
  else draw();
  if (trends.stale || !hooked || Date.now() - trends.fetched > 60000) refresh();
}).observe(document.getElementById("view"), {childList: true});

new ResizeObserver(() => {
  for (const p of trends.plots) {
    const width = p.root.parentElement.clientWidth;
    if (width && Math.abs(width - p.width) > 2) p.setSize({width, height: p.height});
  }
}).observe(document.getElementById("view"));

document.addEventListener("change", (ev) => {
  if (ev.target.id === "trend-task") { trends.task = ev.target.value; draw(); }
  if (ev.target.id === "trend-days") { Object.assign(trends, {days: Number(ev.target.value), text: ""}); refresh(); }
});
