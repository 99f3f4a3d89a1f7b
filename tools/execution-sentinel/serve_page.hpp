// The live page `execution-sentinel serve` answers at `/` (docs/serve.md): one self-contained HTML document with its
// CSS and JavaScript inline (no build step, no external resource). It reads GET /api/v1/runs, follows
// /api/v1/events (server-sent events) for reports arriving live, and shows one run's detail (phases, running tasks,
// anomalies with their evidence) from GET /api/v1/runs/{namespace}/{run} and its reports.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SERVE_PAGE_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SERVE_PAGE_HPP

#include <string_view>

namespace execution_sentinel::cli {

inline constexpr std::string_view serve_page_html = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>execution-sentinel</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header a { color: #9cc3ff; }
main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 16px; padding: 16px 20px; }
section h2 { font-size: 15px; margin: 0 0 8px; }
.run { background: #fff; border: 1px solid #d8dce4; border-radius: 6px; padding: 10px 12px; margin-bottom: 10px; }
.run h3 { margin: 0 0 6px; font-size: 14px; display: flex; gap: 10px; align-items: baseline; }
.run h3 a { color: inherit; }
.state { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e6e9ef; }
.state.watching { background: #dbeafe; } .state.succeeded { background: #d1fae5; }
.state.failed, .state.error { background: #fee2e2; } .state.timed_out, .state.engine_deleted { background: #fef3c7; }
.phase { display: grid; grid-template-columns: 160px minmax(0, 1fr) 90px; gap: 8px; align-items: center; font-size: 12px; }
.bar { display: flex; height: 10px; background: #eceff4; border-radius: 5px; overflow: hidden; }
.bar span { display: block; height: 100%; }
.bar .succeeded { background: #22a06b; } .bar .failed { background: #d93f3f; }
.bar .running { background: #3b82f6; } .bar .pending { background: #c7ccd6; }
.meta { color: #5b6475; font-size: 12px; }
#live { list-style: none; padding: 0; margin: 0; max-height: 80vh; overflow: auto; }
#live li, .anomaly { background: #fff; border-left: 4px solid #c7ccd6; padding: 6px 8px; margin-bottom: 6px; font-size: 12px; }
.sev-warning { border-left-color: #e5a50a !important; } .sev-error, .sev-critical { border-left-color: #d93f3f !important; }
pre { white-space: pre-wrap; word-break: break-word; background: #f0f2f5; padding: 6px; font-size: 11px; max-height: 240px; overflow: auto; }
#status { font-size: 12px; color: #9aa3b5; }
</style>
</head>
<body>
<header><h1><a href="#/">execution-sentinel</a></h1><span id="status">connecting…</span></header>
<main>
<section id="view"><h2>Runs</h2><div id="runs"><p class="meta">No run yet.</p></div></section>
<section><h2>Live reports</h2><ul id="live"></ul></section>
</main>
<script>
"use strict";
const el = (tag, attrs, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
};
const api = async (path) => {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
};
const runPath = (r) => encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.run);

function bar(p) {
  const total = Math.max(p.total, p.succeeded + p.failed + p.running + p.pending, 1);
  const b = el("div", { class: "bar", title: `${p.succeeded} succeeded, ${p.failed} failed, ${p.running} running, ${p.pending} pending of ${p.total}` });
  for (const k of ["succeeded", "failed", "running", "pending"])
    if (p[k] > 0) { const s = el("span", { class: k }); s.style.width = (100 * p[k] / total) + "%"; b.append(s); }
  return b;
}
function phases(list) {
  return (list || []).map(p => el("div", { class: "phase", "data-phase": p.task_type },
    el("span", {}, p.task_type || "(unknown type)"), bar(p), el("span", { class: "meta" }, `${p.succeeded + p.failed}/${p.total}`)));
}
function runCard(r) {
  const health = r.health === undefined ? "" : ` · health ${Math.round(r.health * 100)}%`;
  return el("div", { class: "run", "data-run": r.namespace + "/" + r.run },
    el("h3", {}, el("a", { href: "#/run/" + runPath(r) }, r.namespace + "/" + r.run),
       el("span", { class: "state " + r.state }, r.state)),
    el("div", { class: "meta" }, `${r.completed || 0} completed, ${r.failed || 0} failed, ${r.running || 0} running of ${r.total || 0}` +
       health + ` · ${r.anomalies || 0} anomalies · context ${r.context_source}`),
    ...phases(r.phases));
}
async function showRuns() {
  const data = await api("/api/v1/runs");
  const box = el("div", { id: "runs" });
  if (data.runs.length === 0) box.append(el("p", { class: "meta" }, "No run yet."));
  for (const r of data.runs) box.append(runCard(r));
  const view = document.getElementById("view");
  view.replaceChildren(el("h2", {}, "Runs"), box);
}
function reportItem(r, tag) {
  const item = el(tag || "div", { class: "anomaly sev-" + r.severity, "data-type": r.type },
    el("strong", {}, r.type), " ", el("span", { class: "meta" }, (r.run ? r.run + " · " : "") + (r.timestamp || "")),
    el("div", {}, r.message));
  const ev = r.details && r.details.evidence;
  if (ev && typeof ev === "object" && Array.isArray(ev.log_tail)) {
    const where = [ev.pod && "pod " + ev.pod, ev.container && "container " + ev.container,
                   ev.exit_code !== undefined && "exit code " + ev.exit_code].filter(Boolean).join(" · ");
    if (where) item.append(el("div", { class: "meta" }, "Evidence: " + where));
    for (const e of ev.events || []) item.append(el("div", { class: "meta" }, `${e.reason}: ${e.message}`));
    item.append(el("pre", { class: "evidence" }, ev.log_tail.join("\n")));
  } else if (ev) {
    item.append(el("pre", { class: "evidence" }, typeof ev === "string" ? ev : JSON.stringify(ev, null, 2)));
  }
  return item;
}
async function showRun(ns, name) {
  const r = await api(`/api/v1/runs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  const reports = await api(`/api/v1/runs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/reports?limit=1000`);
  const v = r.view || {};
  const detail = el("div", { id: "run-detail", "data-run": ns + "/" + name },
    el("h2", {}, el("a", { href: "#/" }, "Runs"), " / " + ns + "/" + name + " ", el("span", { class: "state " + r.state }, r.state)),
    el("p", { class: "meta" }, `${v.completed || 0} completed, ${v.failed || 0} failed, ${v.running || 0} running of ${v.total || 0}` +
       (v.eta_seconds !== undefined && v.eta_seconds !== null ? ` · ETA ${Math.round(v.eta_seconds)} s` : "") +
       ` · context ${r.context_source}` + (r.message ? " · " + r.message : "")),
    el("div", { class: "run" }, ...phases(v.phases)));
  const running = (v.running_tasks || []).map(t => el("li", {}, `${t.name} (${t.task_type}) running ${Math.round(t.elapsed_seconds)} s`));
  if (running.length) detail.append(el("h2", {}, "Running tasks"), el("ul", {}, ...running));
  const anomalies = reports.reports.filter(x => x.severity !== "info");
  detail.append(el("h2", {}, `Anomalies (${anomalies.length})`));
  for (const a of anomalies) detail.append(reportItem(a));
  document.getElementById("view").replaceChildren(detail);
}
async function route() {
  const m = location.hash.match(/^#\/run\/([^/]+)\/([^/]+)$/);
  try {
    if (m) await showRun(decodeURIComponent(m[1]), decodeURIComponent(m[2])); else await showRuns();
  } catch (e) {
    document.getElementById("view").replaceChildren(el("p", { class: "meta" }, "Cannot load: " + e.message));
  }
}
let refresh = null;
function scheduleRefresh() { if (!refresh) refresh = setTimeout(() => { refresh = null; route(); }, 500); }
window.addEventListener("hashchange", route);
route();
setInterval(route, 5000);
const live = document.getElementById("live");
const source = new EventSource("/api/v1/events");
source.onopen = () => { document.getElementById("status").textContent = "live"; };
source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
source.addEventListener("report", (e) => {
  const r = JSON.parse(e.data);
  if (r.severity !== "info" || r.type === "COMPLETION") {
    live.prepend(reportItem(r, "li"));
    while (live.children.length > 200) live.lastChild.remove();
  }
  scheduleRefresh();
});
</script>
</body>
</html>
)html";

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SERVE_PAGE_HPP
