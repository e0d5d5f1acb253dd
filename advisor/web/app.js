/* kopt advisor page: cluster overview, workload table, workload detail.
 * Plain JavaScript, no framework, no build step; it calls the /v1 gateway
 * (docs/api.md) with the API key kept in sessionStorage (gone when the tab
 * closes; never localStorage). The view (cluster, filters, sort, open
 * workload) lives in the URL's query string so a view can be shared. */
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const KEY_ITEM = "koptKey";
const MIB = 1048576;

/* ---- small helpers ------------------------------------------------------ */

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function svgEl(tag, attrs, cls) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (cls) e.setAttribute("class", cls);
  return e;
}

const num = (v) => Number(v || 0);
const money = (v, cur) => num(v).toFixed(2) + (cur ? " " + cur : "");
const pct = (v) => {
  const p = num(v) * 100;
  return (p > 0 && p < 0.1 ? p.toFixed(2) : p.toFixed(1)) + " %";
};

/* proto3 JSON enum name -> Kubernetes kind, as the gateway's {kind} takes it. */
const KINDS = {
  WORKLOAD_KIND_DEPLOYMENT: "Deployment",
  WORKLOAD_KIND_STATEFUL_SET: "StatefulSet",
  WORKLOAD_KIND_DAEMON_SET: "DaemonSet",
  WORKLOAD_KIND_JOB: "Job",
  WORKLOAD_KIND_CRON_JOB: "CronJob",
  WORKLOAD_KIND_REPLICA_SET: "ReplicaSet",
  WORKLOAD_KIND_POD: "Pod",
  WORKLOAD_KIND_PROCESS_GROUP: "ProcessGroup",
};
const kindName = (k) => KINDS[k] || String(k || "").replace("WORKLOAD_KIND_", "");

/* Kubernetes quantities, rounded up so the value set is never below the
 * advice: CPU in whole cores or millicores, memory in Gi or Mi. */
function cpuQ(cores) {
  const c = num(cores);
  if (c <= 0) return "0";
  const m = Math.max(1, Math.ceil(c * 1000 - 1e-6));
  return m % 1000 === 0 ? String(m / 1000) : m + "m";
}

function memQ(bytes) {
  const b = num(bytes);
  if (b <= 0) return "0";
  const mi = Math.max(1, Math.ceil(b / MIB - 1e-9));
  return mi % 1024 === 0 ? mi / 1024 + "Gi" : mi + "Mi";
}

/* "cur → rec" for a request or limit; a limit of 0 is "none". */
function change(cur, rec, q, isLimit) {
  const f = (v) => (isLimit && num(v) <= 0 ? "none" : q(v));
  return f(cur) + " \u2192 " + f(rec);
}

/* ---- API ------------------------------------------------------------------ */

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

async function api(path) {
  const r = await fetch(path, {
    headers: { authorization: "Bearer " + apiKey() },
    cache: "no-store",
  });
  const j = await r.json().catch(() => ({ message: r.statusText }));
  if (!r.ok) {
    const why = r.status === 401 ? "the API key or token was refused" : j.message || r.statusText;
    throw new Error(why + " (HTTP " + r.status + ")");
  }
  return j;
}

const enc = encodeURIComponent;

async function listAll(path, field) {
  const out = [];
  let token = "";
  for (let i = 0; i < 50; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const j = await api(path + (token ? sep + "page_token=" + enc(token) : ""));
    out.push(...(j[field] || []));
    token = j.nextPageToken || "";
    if (!token) break;
  }
  return out;
}

/* ---- state in the URL ------------------------------------------------------ */

const DEFAULT_SORT = { sort: "savings", dir: "desc" };
const state = {};
let data = { cluster: null, clusters: [], summary: null, recs: [] };

function readUrl() {
  const p = new URLSearchParams(location.search);
  state.cluster = p.get("cluster") || "";
  state.ns = p.get("ns") || "";
  state.kind = p.get("kind") || "";
  state.q = p.get("q") || "";
  state.min = p.get("min") || "";
  state.changes = p.get("changes") === "1";
  state.sort = p.get("sort") || DEFAULT_SORT.sort;
  state.dir = p.get("dir") === "asc" ? "asc" : p.get("dir") === "desc" ? "desc" : DEFAULT_SORT.dir;
  state.d = p.get("d") || "";
}

function urlFor(over) {
  const s = Object.assign({}, state, over || {});
  const p = new URLSearchParams();
  if (s.cluster) p.set("cluster", s.cluster);
  if (s.ns) p.set("ns", s.ns);
  if (s.kind) p.set("kind", s.kind);
  if (s.q) p.set("q", s.q);
  if (s.min !== "") p.set("min", s.min);
  if (s.changes) p.set("changes", "1");
  if (s.sort !== DEFAULT_SORT.sort || s.dir !== DEFAULT_SORT.dir) {
    p.set("sort", s.sort);
    p.set("dir", s.dir);
  }
  if (s.d) p.set("d", s.d);
  const q = p.toString();
  return location.pathname + (q ? "?" + q : "");
}

function saveUrl(push) {
  const u = urlFor();
  if (u === location.pathname + location.search) return;
  if (push) history.pushState(null, "", u);
  else history.replaceState(null, "", u);
}

/* ---- messages ---------------------------------------------------------------- */

function showErr(msg) {
  $("err").textContent = msg || "";
  $("err").hidden = !msg;
}

function status(msg) {
  $("status").textContent = msg || "";
}

/* ---- per-workload figures ------------------------------------------------------ */

const wid = (r) => r.workload.namespace + "/" + kindName(r.workload.kind) + "/" + r.workload.name;
const part = (c, side, f) => num((c[side] || {})[f]);
const sumPart = (r, side, f) => (r.containers || []).reduce((a, c) => a + part(c, side, f), 0);

/* The worst share of backtest windows above the new request, or null. */
function risk(r) {
  let v = null;
  for (const c of r.containers || []) {
    const b = c.backtest;
    if (!b || !b.valid) continue;
    v = Math.max(v || 0, num(b.cpuOverRequestShare), num(b.memoryOverRequestShare));
  }
  return v;
}

function confidence(r) {
  const cs = r.containers || [];
  return cs.length ? Math.min(...cs.map((c) => num(c.confidence))) : 0;
}

/* A change of more than 10 % in any request or limit of any container
 * (from nothing to something counts). */
function bigChange(r) {
  const fields = ["cpuRequestCores", "cpuLimitCores", "memoryRequestBytes", "memoryLimitBytes"];
  for (const c of r.containers || [])
    for (const f of fields) {
      const a = part(c, "current", f), b = part(c, "recommended", f);
      if (a === 0 ? b > 0 : Math.abs(b - a) / a > 0.1) return true;
    }
  return false;
}

/* Table columns: label, sort value, cell text of a workload and of a
 * container. Request and limit columns sort by the recommended value. */
const COLUMNS = [
  { key: "name", label: "Workload", text: true, val: (r) => r.workload.name },
  { key: "ns", label: "Namespace", text: true, val: (r) => r.workload.namespace },
  { key: "kind", label: "Kind", text: true, val: (r) => kindName(r.workload.kind) },
  {
    key: "cpureq", label: "CPU request", val: (r) => sumPart(r, "recommended", "cpuRequestCores"),
    cell: (x, s) => change(s(x, "current", "cpuRequestCores"), s(x, "recommended", "cpuRequestCores"), cpuQ),
  },
  {
    key: "cpulim", label: "CPU limit", val: (r) => sumPart(r, "recommended", "cpuLimitCores"),
    cell: (x, s) => change(s(x, "current", "cpuLimitCores"), s(x, "recommended", "cpuLimitCores"), cpuQ, true),
  },
  {
    key: "memreq", label: "Memory request", val: (r) => sumPart(r, "recommended", "memoryRequestBytes"),
    cell: (x, s) => change(s(x, "current", "memoryRequestBytes"), s(x, "recommended", "memoryRequestBytes"), memQ),
  },
  {
    key: "memlim", label: "Memory limit", val: (r) => sumPart(r, "recommended", "memoryLimitBytes"),
    cell: (x, s) => change(s(x, "current", "memoryLimitBytes"), s(x, "recommended", "memoryLimitBytes"), memQ, true),
  },
  { key: "conf", label: "Confidence", val: confidence },
  { key: "risk", label: "Backtest risk", val: (r) => (risk(r) === null ? -1 : risk(r)) },
  { key: "savings", label: "Savings / month", val: (r) => num((r.savings || {}).monthlyCost) },
];

/* ---- loading --------------------------------------------------------------------- */

async function loadCluster() {
  showErr("");
  if (!apiKey()) {
    status("Enter an API key or a bearer token (OIDC) to see the recommendations.");
    return false;
  }
  status("Loading\u2026");
  data.clusters = await listAll("/v1/clusters?page_size=1000", "clusters");
  if (!data.clusters.length) {
    status("No analysed cluster yet.");
    return false;
  }
  if (!data.clusters.some((c) => c.name === state.cluster)) state.cluster = data.clusters[0].name;
  const c = enc(state.cluster);
  const [summary, recs] = await Promise.all([
    api("/v1/clusters/" + c + "/summary"),
    listAll("/v1/recommendations?page_size=1000&view=RECOMMENDATION_VIEW_FULL&cluster=" + c,
      "recommendations"),
  ]);
  data.cluster = state.cluster;
  data.summary = summary;
  data.recs = recs;
  status("");
  return true;
}

async function show() {
  try {
    if (data.cluster !== state.cluster || !data.summary) {
      if (!(await loadCluster())) return;
    }
    saveUrl(false);
    if (state.d) await renderDetail();
    else renderList();
  } catch (e) {
    status("");
    showErr(e.message);
  }
}

/* ---- list view ------------------------------------------------------------------- */

function fillSelect(sel, values, current, allLabel) {
  sel.textContent = "";
  if (allLabel !== null) {
    const o = el("option", allLabel);
    o.value = "";
    sel.appendChild(o);
  }
  const vs = [...new Set(values)].sort();
  if (current && !vs.includes(current)) vs.push(current);
  for (const v of vs) {
    const o = el("option", v);
    o.value = v;
    sel.appendChild(o);
  }
  sel.value = current || "";
}

function renderFilters() {
  fillSelect($("f-cluster"), data.clusters.map((c) => c.name), state.cluster, null);
  fillSelect($("f-ns"), data.recs.map((r) => r.workload.namespace), state.ns, "all");
  fillSelect($("f-kind"), data.recs.map((r) => kindName(r.workload.kind)), state.kind, "all");
  /* Not under the user's cursor: a half-typed number would be wiped. */
  if (document.activeElement !== $("f-name")) $("f-name").value = state.q;
  if (document.activeElement !== $("f-min")) $("f-min").value = state.min;
  $("f-changes").checked = state.changes;
}

function card(label, value, id) {
  const d = el("div", undefined, "card");
  d.id = id;
  d.appendChild(el("b", value));
  d.appendChild(el("span", label));
  return d;
}

/* Per namespace: requests and recommendations of all replicas. */
function byNamespace() {
  const m = new Map();
  for (const r of data.recs) {
    const ns = r.workload.namespace, n = num(r.replicas) || 1;
    if (!m.has(ns)) m.set(ns, { ns, count: 0, idle: 0, cpu: 0, cpuRec: 0, mem: 0, memRec: 0, savings: 0 });
    const a = m.get(ns);
    a.count++;
    if (r.idle) a.idle++;
    a.cpu += n * sumPart(r, "current", "cpuRequestCores");
    a.cpuRec += n * sumPart(r, "recommended", "cpuRequestCores");
    a.mem += n * sumPart(r, "current", "memoryRequestBytes");
    a.memRec += n * sumPart(r, "recommended", "memoryRequestBytes");
    a.savings += num((r.savings || {}).monthlyCost);
  }
  return [...m.values()].sort((a, b) => b.savings - a.savings || a.ns.localeCompare(b.ns));
}

/* Horizontal bars: per namespace, requested (grey) over recommended (blue),
 * CPU and memory side by side, or one above the other on a narrow screen.
 * Drawn at the width it gets, so the text stays 11 px. */
let nsRows = [];
function nsChart(rows) {
  nsRows = rows;
  const svg = $("nschart");
  const W = Math.max(300, Math.min(900, svg.parentNode.clientWidth - 2 || 900));
  const narrow = W < 600, L = narrow ? 90 : 150, G = 20, row = 34, top = 24;
  const half = narrow ? W - L - 8 : (W - L - G) / 2;
  const block = top + rows.length * row + 8, H = narrow ? 2 * block : block;
  for (const n of [...svg.childNodes]) if (n.nodeName !== "title") svg.removeChild(n);
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const maxC = Math.max(...rows.map((r) => Math.max(r.cpu, r.cpuRec)), 1e-9);
  const maxM = Math.max(...rows.map((r) => Math.max(r.mem, r.memRec)), 1);
  const t = (x, y, s, anchor) => {
    const e = svgEl("text", { x, y, "text-anchor": anchor || "start" });
    e.textContent = s;
    svg.appendChild(e);
  };
  /* [x of the bars, y offset] of the CPU and the memory panel */
  const panels = narrow ? [[L, 0], [L, block]] : [[L, 0], [L + half + G, 0]];
  t(panels[0][0], panels[0][1] + 14, "CPU (cores): requested / recommended");
  t(panels[1][0], panels[1][1] + 14, "Memory: requested / recommended");
  rows.forEach((r, i) => {
    const bars = [
      [0, r.cpu, maxC, cpuQ(r.cpu), "bar-req"], [0, r.cpuRec, maxC, cpuQ(r.cpuRec), "bar-rec"],
      [1, r.mem, maxM, memQ(r.mem), "bar-req"], [1, r.memRec, maxM, memQ(r.memRec), "bar-rec"],
    ];
    for (const p of narrow ? [0, 1] : [0]) t(L - 6, panels[p][1] + top + i * row + 18, r.ns, "end");
    bars.forEach(([p, v, max, label, cls], k) => {
      const x0 = panels[p][0], yy = panels[p][1] + top + i * row + (k % 2) * 13;
      const w = Math.max(1, ((half - 60) * v) / max);
      const b = svgEl("rect", { x: x0, y: yy, width: w.toFixed(1), height: 11, "data-ns": r.ns }, cls);
      const tt = svgEl("title");
      tt.textContent = r.ns + ": " + (k % 2 ? "recommended " : "requested ") + label;
      b.appendChild(tt);
      svg.appendChild(b);
      t(x0 + w + 4, yy + 10, label);
    });
  });
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (!$("listview").hidden && nsRows.length) nsChart(nsRows);
  }, 150);
});

function renderOverview() {
  const s = data.summary || {}, cur = (s.pricing || {}).currency || "";
  const cards = $("cards");
  cards.textContent = "";
  const req = s.requested || {}, rec = s.recommended || {};
  cards.appendChild(card("CPU requested \u2192 recommended (cores)",
    num(req.cpuCores).toFixed(2) + " \u2192 " + num(rec.cpuCores).toFixed(2), "c-cpu"));
  cards.appendChild(card("Memory requested \u2192 recommended",
    memQ(req.memoryBytes) + " \u2192 " + memQ(rec.memoryBytes), "c-mem"));
  cards.appendChild(card("Savings / month", money(s.monthlySavings, cur), "c-savings"));
  cards.appendChild(card("Workloads", String(s.workloadCount || 0), "c-workloads"));
  cards.appendChild(card("Idle workloads", String(s.idleWorkloadCount || 0), "c-idle"));
  cards.appendChild(card("Nodes", String(s.nodeCount || 0), "c-nodes"));

  const rows = byNamespace(), tb = $("nstable").tBodies[0];
  tb.textContent = "";
  for (const r of rows) {
    const tr = el("tr");
    tr.dataset.ns = r.ns;
    tr.appendChild(el("td", r.ns));
    tr.appendChild(el("td", String(r.count), "num"));
    tr.appendChild(el("td", String(r.idle), "num"));
    tr.appendChild(el("td", change(r.cpu, r.cpuRec, cpuQ), "num"));
    tr.appendChild(el("td", change(r.mem, r.memRec, memQ), "num"));
    tr.appendChild(el("td", money(r.savings, cur), "num " + (r.savings < 0 ? "neg" : "pos")));
    tb.appendChild(tr);
  }
  nsChart(rows);

  const ul = $("idlelist");
  ul.textContent = "";
  const idle = data.recs.filter((r) => r.idle);
  if (!idle.length) ul.appendChild(el("li", "none"));
  for (const r of idle) {
    const li = el("li");
    li.appendChild(detailLink(r, r.workload.namespace + "/" + r.workload.name));
    li.appendChild(document.createTextNode(" (" + kindName(r.workload.kind) + ", saves " +
      money((r.savings || {}).monthlyCost, (r.savings || {}).currency) + " / month)"));
    ul.appendChild(li);
  }
}

function detailLink(r, text) {
  const a = el("a", text);
  a.href = urlFor({ d: wid(r) });
  a.className = "wl-link";
  a.addEventListener("click", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    state.d = wid(r);
    saveUrl(true);
    show();
  });
  return a;
}

function filtered() {
  const q = state.q.toLowerCase(), min = state.min === "" ? null : Number(state.min);
  return data.recs.filter((r) => {
    const w = r.workload;
    if (state.ns && w.namespace !== state.ns) return false;
    if (state.kind && kindName(w.kind) !== state.kind) return false;
    if (q && !(w.namespace + "/" + w.name).toLowerCase().includes(q)) return false;
    if (min !== null && !Number.isNaN(min) && num((r.savings || {}).monthlyCost) < min) return false;
    if (state.changes && !bigChange(r)) return false;
    return true;
  });
}

function sorted(rows) {
  const col = COLUMNS.find((c) => c.key === state.sort) || COLUMNS[COLUMNS.length - 1];
  const dir = state.dir === "asc" ? 1 : -1;
  return rows.slice().sort((a, b) => {
    const x = col.val(a), y = col.val(b);
    const c = col.text ? String(x).localeCompare(String(y)) : x - y;
    return c * dir || wid(a).localeCompare(wid(b));
  });
}

function renderHead() {
  const head = $("wlhead");
  head.textContent = "";
  for (const c of COLUMNS) {
    const th = el("th", undefined, c.text ? "" : "num");
    th.dataset.col = c.key;
    if (state.sort === c.key) th.setAttribute("aria-sort", state.dir === "asc" ? "ascending" : "descending");
    const b = el("button", c.label);
    b.type = "button";
    b.title = "Sort by " + c.label.toLowerCase();
    b.addEventListener("click", () => {
      if (state.sort === c.key) state.dir = state.dir === "asc" ? "desc" : "asc";
      else {
        state.sort = c.key;
        state.dir = c.text ? "asc" : "desc";
      }
      saveUrl(false);
      renderList();
      const again = document.querySelector('#wlhead th[data-col="' + c.key + '"] button');
      if (again) again.focus();
    });
    th.appendChild(b);
    head.appendChild(th);
  }
}

/* Cells of one row: the workload's totals per pod, or one container's. */
function cells(tr, r, c) {
  const cur = (r.savings || {}).currency || "";
  const s = c ? (x, side, f) => part(c, side, f) : (x, side, f) => sumPart(x, side, f);
  for (const col of COLUMNS.slice(3)) {
    let text;
    if (col.cell) text = col.cell(r, s);
    else if (col.key === "conf") text = (c ? num(c.confidence) : confidence(r)).toFixed(2);
    else if (col.key === "risk") {
      const v = c ? (c.backtest && c.backtest.valid
        ? Math.max(num(c.backtest.cpuOverRequestShare), num(c.backtest.memoryOverRequestShare)) : null) : risk(r);
      text = v === null ? "n/a" : pct(v);
    } else if (col.key === "savings") text = c ? "" : money((r.savings || {}).monthlyCost, cur);
    const td = el("td", text, "num");
    td.dataset.col = col.key;
    if (col.key === "savings" && !c) td.classList.add(num((r.savings || {}).monthlyCost) < 0 ? "neg" : "pos");
    if (col.key === "risk" && text !== "n/a" && parseFloat(text) > 10) td.classList.add("warn");
    tr.appendChild(td);
  }
}

const expanded = new Set();

function renderList() {
  $("detail").hidden = true;
  $("listview").hidden = false;
  document.title = "kopt advisor \u2013 " + state.cluster;
  renderFilters();
  renderOverview();
  renderHead();
  const rows = sorted(filtered()), tb = $("wlrows");
  $("wl-count").textContent = "(" + rows.length + " of " + data.recs.length + ")";
  tb.textContent = "";
  rows.forEach((r, i) => {
    const id = wid(r), tr = el("tr", undefined, "workload");
    tr.dataset.id = id;
    const td = el("td");
    const b = el("button", expanded.has(id) ? "\u2212" : "+", "expand");
    b.type = "button";
    b.setAttribute("aria-expanded", expanded.has(id) ? "true" : "false");
    b.setAttribute("aria-controls", (r.containers || []).map((c, k) => "c-" + i + "-" + k).join(" "));
    b.setAttribute("aria-label", "containers of " + r.workload.name);
    b.addEventListener("click", () => {
      if (expanded.has(id)) expanded.delete(id);
      else expanded.add(id);
      renderList();
      const again = document.querySelector('tr.workload[data-id="' + CSS.escape(id) + '"] button.expand');
      if (again) again.focus();
    });
    td.appendChild(b);
    td.appendChild(detailLink(r, r.workload.name));
    if (r.idle) td.appendChild(el("span", " idle", "idle"));
    tr.appendChild(td);
    tr.appendChild(el("td", r.workload.namespace));
    tr.appendChild(el("td", kindName(r.workload.kind)));
    cells(tr, r, null);
    tb.appendChild(tr);
    if (!expanded.has(id)) return;
    for (const [k, c] of (r.containers || []).entries()) {
      const ct = el("tr", undefined, "container");
      ct.id = "c-" + i + "-" + k;
      ct.dataset.container = c.container;
      ct.appendChild(el("td", c.container));
      ct.appendChild(el("td", ""));
      ct.appendChild(el("td", "container"));
      cells(ct, r, c);
      tb.appendChild(ct);
    }
  });
  if (!rows.length) {
    const tr = el("tr"), td = el("td", "No workload matches the filters.");
    td.colSpan = COLUMNS.length;
    tr.appendChild(td);
    tb.appendChild(tr);
  }
  document.body.dataset.ready = "list";
}

/* ---- YAML -------------------------------------------------------------------------- */

const quote = (q) => (/^[0-9.]+$/.test(q) ? '"' + q + '"' : q);

/* The resources: block of one container, indented by `ind` spaces. */
function resourcesYaml(c, ind) {
  const a = c.recommended || {}, p = " ".repeat(ind);
  const lines = [p + "resources:", p + "  requests:",
    p + "    cpu: " + quote(cpuQ(a.cpuRequestCores)),
    p + "    memory: " + quote(memQ(a.memoryRequestBytes))];
  const lim = [];
  if (num(a.cpuLimitCores) > 0) lim.push(p + "    cpu: " + quote(cpuQ(a.cpuLimitCores)));
  if (num(a.memoryLimitBytes) > 0) lim.push(p + "    memory: " + quote(memQ(a.memoryLimitBytes)));
  if (lim.length) lines.push(p + "  limits:", ...lim);
  return lines.join("\n") + "\n";
}

const API_VERSION = { Deployment: "apps/v1", StatefulSet: "apps/v1", DaemonSet: "apps/v1",
  ReplicaSet: "apps/v1", Job: "batch/v1", CronJob: "batch/v1", Pod: "v1" };

/* A strategic-merge patch for kustomize's `patches:`: containers merge by
 * name, so only resources change. */
function kustomizePatch(r) {
  const w = r.workload, kind = kindName(w.kind);
  const out = ["apiVersion: " + API_VERSION[kind], "kind: " + kind, "metadata:",
    "  name: " + w.name, "  namespace: " + w.namespace];
  let ind;
  if (kind === "Pod") { out.push("spec:"); ind = 2; }
  else if (kind === "CronJob") {
    out.push("spec:", "  jobTemplate:", "    spec:", "      template:", "        spec:");
    ind = 10;
  } else { out.push("spec:", "  template:", "    spec:"); ind = 6; }
  const p = " ".repeat(ind);
  out.push(p + "containers:");
  let text = out.join("\n") + "\n";
  for (const c of r.containers || []) {
    text += p + "  - name: " + c.container + "\n" + resourcesYaml(c, ind + 4);
  }
  return text;
}

async function copy(text, statusEl, what) {
  try {
    await navigator.clipboard.writeText(text);
    statusEl.textContent = what + " copied to the clipboard.";
  } catch (e) {
    statusEl.textContent = "The browser refused the clipboard; select the text shown instead.";
  }
}

/* ---- detail view ---------------------------------------------------------------------- */

async function findRec(id) {
  const r = data.recs.find((x) => wid(x) === id);
  if (r) return r;
  const [ns, kind, ...rest] = id.split("/");
  const j = await api("/v1/recommendations/" + [state.cluster, ns, kind, rest.join("/")].map(enc).join("/") +
    "?view=RECOMMENDATION_VIEW_FULL");
  return j.recommendation;
}

function hpaText(r) {
  const h = r.hpa, a = r.hpaAdvice;
  if (!h || !h.name) return "No HorizontalPodAutoscaler scales this workload.";
  let s = "HPA " + h.name + ": " + num(h.minReplicas) + " to " + num(h.maxReplicas) + " replicas";
  if (num(h.targetCpuUtilizationPercent) > 0) s += ", CPU target " + num(h.targetCpuUtilizationPercent) + " %";
  if (num(h.targetMemoryUtilizationPercent) > 0) s += ", memory target " + num(h.targetMemoryUtilizationPercent) + " %";
  s += ". ";
  if (!a) return s + "It does not scale on CPU utilization, so the new requests do not change when it scales.";
  if (a.adjusted)
    return s + "With the new CPU requests set the CPU target to " + num(a.targetCpuUtilizationPercent) +
      " %: it then scales out at " + num(a.scaleOutCoresRecommended).toFixed(3) + " cores per pod (now " +
      num(a.scaleOutCoresCurrent).toFixed(3) + ").";
  return s + "Keep the CPU target at " + num(a.targetCpuUtilizationPercent) + " %: it scales out at " +
    num(a.scaleOutCoresCurrent).toFixed(3) + " cores per pod now and with the advice.";
}

function evidenceTable(c) {
  const n = c.current || {}, a = c.recommended || {}, b = c.bounds, t = c.backtest || {}, k = c.replayedRisk || {};
  const ok = t.valid === true;
  const tb = el("table", undefined, "evidence");
  const hd = el("tr");
  for (const h of ["", "now", "recommended", "range", "history: windows above", "backtest: later windows above"])
    hd.appendChild(el("th", h));
  tb.appendChild(el("thead")).appendChild(hd);
  const body = el("tbody");
  const row = (...xs) => {
    const tr = el("tr");
    xs.forEach((x) => tr.appendChild(el("td", x)));
    body.appendChild(tr);
  };
  const lim = (v, q) => (num(v) > 0 ? q(v) : "none");
  row("CPU request", cpuQ(n.cpuRequestCores), cpuQ(a.cpuRequestCores),
    b ? cpuQ(b.cpuLowerCores) + " \u2013 " + cpuQ(b.cpuUpperCores) : "",
    pct(k.cpuOverRequestShare), ok ? pct(t.cpuOverRequestShare) : "n/a");
  row("CPU limit", lim(n.cpuLimitCores, cpuQ), lim(a.cpuLimitCores, cpuQ), "",
    num(a.cpuLimitCores) > 0 ? pct(k.cpuOverLimitShare) : "n/a",
    ok && num((t.recommended || {}).cpuLimitCores) > 0 ? pct(t.cpuOverLimitShare) : "n/a");
  row("Memory request", memQ(n.memoryRequestBytes), memQ(a.memoryRequestBytes),
    b ? memQ(b.memoryLowerBytes) + " \u2013 " + memQ(b.memoryUpperBytes) : "",
    pct(k.memoryOverRequestShare), ok ? pct(t.memoryOverRequestShare) : "n/a");
  row("Memory limit", lim(n.memoryLimitBytes, memQ), lim(a.memoryLimitBytes, memQ), "",
    num(a.memoryLimitBytes) > 0 && num(k.windows) > 0 ? pct(num(k.memoryWindowsOverLimit) / num(k.windows)) : "n/a",
    ok && num((t.recommended || {}).memoryLimitBytes) > 0 ? pct(t.memoryOverLimitShare) : "n/a");
  tb.appendChild(body);
  const wrap = el("div", undefined, "scroll");
  wrap.appendChild(tb);
  /* The backtest in words: how much history the fit saw, how much it was
   * checked on, and what it reserved against what was used. */
  const hours = (a, b) => (Date.parse(b) - Date.parse(a)) / 3600000;
  const days = (h) => (h / 24).toFixed(1) + " days (" + Math.round(h) + " h)";
  const f = t.recommended || {};
  const s = ok
    ? "Backtest: fitted on " + days(hours(t.fitStartTime, t.splitTime)) + " of history, checked on the " +
      days(hours(t.splitTime, t.endTime)) + " that followed (" + num(t.windows).toLocaleString("en-US") +
      " windows the fit never saw). It advised " + cpuQ(f.cpuRequestCores) + " CPU and " +
      memQ(f.memoryRequestBytes) + ", reserving " + num(t.reservedCoreHours).toFixed(1) + " core-hours and " +
      num(t.reservedGibHours).toFixed(1) + " GiB-hours per replica where " + num(t.usedCoreHours).toFixed(1) +
      " and " + num(t.usedGibHours).toFixed(1) + " were used."
    : "Backtest: not enough history yet (it needs two hours on each side of the split at 2/3 of the history).";
  const d = el("div");
  d.appendChild(wrap);
  d.appendChild(el("p", s + " History: the advice replayed on the " + num(k.windows).toLocaleString("en-US") +
    " windows it was fitted on.", "note backtest"));
  return d;
}

/* Usage of each hour (p50, p95, max) with the request in force, the
 * recommended request as a line and its lower/upper bounds as a band. */
function usageChart(points, o) {
  const W = 640, H = 240, PL = 64, PR = 12, PT = 12, PB = 34;
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img" }, "chart " + o.cls);
  const title = svgEl("title");
  title.textContent = o.title;
  svg.appendChild(title);
  if (!points.length) {
    const t = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    t.textContent = "no usage stored for this range yet";
    svg.appendChild(t);
    return svg;
  }
  const ts = points.map((p) => Date.parse(p.time));
  const t0 = Math.min(...ts), t1 = Math.max(...ts) + o.step;
  /* The axis fits usage, requests and the recommendation; an upper bound
   * far above them (little history) is cut at the top and named instead
   * of squashing the usage into the bottom pixels. */
  let ymax = Math.max(o.rec, o.lo);
  for (const p of points)
    for (const f of [o.f.p50, o.f.p95, o.f.max, o.f.req]) ymax = Math.max(ymax, num(p[f]) * o.scale);
  ymax = o.hi <= ymax * 1.6 ? Math.max(ymax, o.hi) * 1.1 || 1 : ymax * 1.25 || 1;
  const cut = o.hi > ymax;
  const X = (t) => PL + ((W - PL - PR) * (t - t0)) / (t1 - t0);
  const Y = (v) => H - PB - ((H - PT - PB) * v) / ymax;
  svg.appendChild(svgEl("line", { x1: PL, y1: H - PB, x2: W - PR, y2: H - PB }, "axis"));
  svg.appendChild(svgEl("line", { x1: PL, y1: PT, x2: PL, y2: H - PB }, "axis"));
  const label = (x, y, s, anchor) => {
    const e = svgEl("text", { x, y, "text-anchor": anchor || "start" });
    e.textContent = s;
    svg.appendChild(e);
  };
  for (const v of [0, ymax / 2, ymax]) label(PL - 4, Y(v) + 4, o.fmt(v), "end");
  const day = (t) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
  label(PL, H - 12, day(t0) + " UTC");
  label(W - PR, H - 12, day(t1) + " UTC", "end");
  /* The band and the recommendation span the whole range: they are what
   * the request would be. */
  const top = Y(Math.min(o.hi, ymax));
  const band = svgEl("rect", { x: PL, width: (W - PL - PR).toFixed(1), y: top.toFixed(1),
    height: Math.max(1, Y(o.lo) - top).toFixed(1) }, "band");
  svg.appendChild(band);
  if (cut) label(W - PR - 4, PT + 12, "range goes up to " + o.fmt(o.hi) + " \u2191", "end");
  const hpoly = (cls, pts) => svg.appendChild(svgEl("polyline",
    { points: pts.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" "), fill: "none" }, cls));
  /* Requests in force: a step line, each hour's value until the next. */
  const reqPts = [];
  points.forEach((p, i) => {
    const x0 = X(ts[i]), x1 = X(i + 1 < points.length ? ts[i + 1] : ts[i] + o.step), y = Y(num(p[o.f.req]) * o.scale);
    reqPts.push([x0, y], [x1, y]);
  });
  hpoly("req", reqPts);
  for (const k of ["max", "p95", "p50"]) {
    const pts = points.map((p, i) => [X(ts[i] + o.step / 2), Y(num(p[o.f[k]]) * o.scale)]);
    if (pts.length === 1) pts.unshift([X(ts[0]), pts[0][1]]), pts.push([X(ts[0] + o.step), pts[1][1]]);
    hpoly(k, pts);
  }
  /* With few hours the lines are short: mark each hour's p95 too. */
  if (points.length < 4)
    points.forEach((p, i) => svg.appendChild(svgEl("circle",
      { cx: X(ts[i] + o.step / 2).toFixed(1), cy: Y(num(p[o.f.p95]) * o.scale).toFixed(1), r: 3 }, "dot")));
  svg.appendChild(svgEl("line", { x1: PL, x2: W - PR, y1: Y(o.rec).toFixed(1), y2: Y(o.rec).toFixed(1) }, "rec"));
  return svg;
}

function legend() {
  const d = el("div", undefined, "legend");
  for (const [c, t] of [["p50", "p50 of the hour"], ["p95", "p95"], ["max", "max"],
    ["req", "request now"], ["rec", "recommended request"], ["band", "recommended range"]])
    d.appendChild(el("span", t, "l-" + c));
  return d;
}

async function renderDetail() {
  document.body.dataset.ready = "";
  const r = await findRec(state.d);
  $("listview").hidden = true;
  $("detail").hidden = false;
  const w = r.workload, kind = kindName(w.kind);
  document.title = "kopt advisor \u2013 " + w.namespace + "/" + w.name;
  $("back").href = urlFor({ d: "" });
  $("d-title").textContent = kind + " " + w.namespace + "/" + w.name;
  const sv = r.savings || {};
  $("d-meta").textContent = "Cluster " + w.cluster + " \u00b7 " + num(r.replicas).toFixed(1) + " replicas \u00b7 " +
    "QoS " + String(r.qosClass || "unknown").replace("QOS_CLASS_", "").toLowerCase() + " \u00b7 " +
    num(r.dataPoints) + " windows from " + (r.windowStart || "?") + " to " + (r.windowEnd || "?") +
    " \u00b7 savings " + money(sv.monthlyCost, sv.currency) + " / month" + (r.idle ? " \u00b7 idle" : "");
  $("d-hpa").textContent = "";
  $("d-hpa").appendChild(el("h3", "Autoscaling"));
  $("d-hpa").appendChild(el("p", hpaText(r), "hpa"));
  $("copy-status").textContent = "";
  const patch = kustomizePatch(r), pb = $("copy-patch");
  pb.disabled = !API_VERSION[kind];
  pb.title = pb.disabled ? "not a Kubernetes workload" : "";
  pb.onclick = () => copy(patch, $("copy-status"), "Kustomize patch");
  pb.dataset.text = patch;

  const box = $("d-containers");
  box.textContent = "";
  const charts = new Map();
  for (const c of r.containers || []) {
    const sec = el("section", undefined, "container-box");
    sec.dataset.container = c.container;
    sec.appendChild(el("h3", "Container " + c.container));
    sec.appendChild(el("p", c.explanation || "", "explanation"));
    sec.appendChild(el("p", "Confidence " + num(c.confidence).toFixed(2) + " \u00b7 reasons: " +
      ((c.reasons || []).map((x) => x.replace("RECOMMENDATION_REASON_", "").toLowerCase().replace(/_/g, " ")).join(", ") || "none"),
      "note"));
    sec.appendChild(evidenceTable(c));
    const yaml = resourcesYaml(c, 0), st = el("span");
    st.setAttribute("aria-live", "polite");
    const cb = el("button", "Copy YAML", "copy-yaml");
    cb.type = "button";
    cb.dataset.text = yaml;
    cb.addEventListener("click", () => copy(yaml, st, "resources: block"));
    const act = el("div", undefined, "actions");
    act.append(cb, " ", st);
    sec.appendChild(act);
    sec.appendChild(el("pre", yaml, "yaml"));
    const ch = el("div", undefined, "charts");
    sec.appendChild(ch);
    sec.appendChild(legend());
    charts.set(c.container, { c, ch });
    box.appendChild(sec);
  }
  $("d-title").focus();
  let usage = { series: [] }, step = 3600000;
  try {
    usage = await api("/v1/workloads/" + [w.cluster, w.namespace, kind, w.name].map(enc).join("/") + "/usage");
    step = parseFloat(usage.step || "3600") * 1000 || 3600000;
  } catch (e) {
    showErr("usage: " + e.message);
  }
  for (const [name, { c, ch }] of charts) {
    const s = (usage.series || []).find((x) => x.container === name) || { points: [] };
    const a = c.recommended || {}, b = c.bounds || {};
    const fig = (cap, svg) => {
      const f = el("figure");
      f.appendChild(el("figcaption", cap));
      f.appendChild(svg);
      ch.appendChild(f);
    };
    fig("CPU (cores)", usageChart(s.points || [], {
      cls: "cpu", title: "CPU of " + name, step, scale: 1, fmt: (v) => v.toFixed(v < 1 ? 3 : 2),
      f: { p50: "cpuP50Cores", p95: "cpuP95Cores", max: "cpuMaxCores", req: "cpuRequestCores" },
      rec: num(a.cpuRequestCores), lo: num(b.cpuLowerCores), hi: num(b.cpuUpperCores),
    }));
    fig("Memory (MiB)", usageChart(s.points || [], {
      cls: "memory", title: "Memory of " + name, step, scale: 1 / MIB, fmt: (v) => v.toFixed(0),
      f: { p50: "memoryP50Bytes", p95: "memoryP95Bytes", max: "memoryMaxBytes", req: "memoryRequestBytes" },
      rec: num(a.memoryRequestBytes) / MIB, lo: num(b.memoryLowerBytes) / MIB, hi: num(b.memoryUpperBytes) / MIB,
    }));
  }
  document.body.dataset.ready = "detail";
}

/* ---- wiring ------------------------------------------------------------------------------ */

function onFilter() {
  const before = state.cluster;
  state.cluster = $("f-cluster").value;
  state.ns = before === state.cluster ? $("f-ns").value : "";
  state.kind = $("f-kind").value;
  state.q = $("f-name").value;
  state.min = $("f-min").value;
  state.changes = $("f-changes").checked;
  saveUrl(false);
  show();
}

function init() {
  /* An older page kept the key in localStorage; a key must not outlive the tab. */
  localStorage.removeItem(KEY_ITEM);
  readUrl();
  $("key").value = apiKey();
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
    data = { cluster: null, clusters: [], summary: null, recs: [] };
    show();
  });
  for (const id of ["f-cluster", "f-ns", "f-kind", "f-changes"]) $(id).addEventListener("change", onFilter);
  for (const id of ["f-name", "f-min"]) $(id).addEventListener("input", onFilter);
  $("back").addEventListener("click", (e) => {
    e.preventDefault();
    state.d = "";
    saveUrl(true);
    show().then(() => {
      const a = document.querySelector(".wl-link");
      if (a) a.focus();
    });
  });
  window.addEventListener("popstate", () => {
    readUrl();
    show();
  });
  show();
}

document.addEventListener("DOMContentLoaded", init);
