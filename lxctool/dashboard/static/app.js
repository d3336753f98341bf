// lxctool dashboard: first fetch /api/samples, then one WebSocket message per sample.
// Rows carry compare's JSON field names. State lives in window.lxdash so tests can read it.
"use strict";

const lxdash = window.lxdash = {
  samples: [],      // each: the rows of one sample (host first)
  meta: {},         // containers, services, verify, attribution
  series: {},       // name -> {t, cpu, cpuLimit, mem, memLimit, tasks, tasksLimit, rx, tx}
  charts: {},       // name -> {cpu, mem, tasks, net}: uPlot instances
  windowSize: 300,
  received: 0,
  connected: false,
  filter: "",       // show only names (or stacks) containing this (the host always shows); kept in #filter=
  chartData(name, kind) { const c = this.charts[name]; return c ? c[kind].data : null; },
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};

function size(b) {
  if (b === null || b === undefined) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(b) >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i && Math.abs(b) < 100 ? b.toFixed(1) : Math.round(b)) + " " + u[i];
}
const pct = (v) => (v === null || v === undefined ? "-" : v.toFixed(1) + "%");
const rate = (v) => (v === null || v === undefined ? "-" : size(v) + "/s");

// CPU as a share of the limit (host: of all its CPUs; no limit: of the host's CPUs)
function cpuShare(row, hostCpus) {
  if (row.cpu_percent_of_limit !== null && row.cpu_percent_of_limit !== undefined) return row.cpu_percent_of_limit;
  if (row.cpu_percent === null || row.cpu_percent === undefined) return null;
  return Math.round(row.cpu_percent / hostCpus * 10) / 10;
}

function addToSeries(rows) {
  const host = rows[0];
  const t = Date.parse(host.time) / 1000;
  const hostCpus = host.cpu_limit_cpus || 1;
  for (const r of rows) {
    const s = lxdash.series[r.name] || (lxdash.series[r.name] = {
      t: [], cpu: [], cpuLimit: [], mem: [], memLimit: [], tasks: [], tasksLimit: [], rx: [], tx: []});
    s.kind = r.kind;
    s.limited = r.kind === "host" || !!r.cpu_limit_cpus;
    s.t.push(t);
    s.cpu.push(cpuShare(r, hostCpus));
    s.cpuLimit.push(100);
    s.mem.push(r.memory_bytes);
    s.memLimit.push(r.memory_limit_bytes);
    s.tasks.push(r.tasks);
    s.tasksLimit.push(r.kind === "host" ? null : r.pids_max);
    s.rx.push(r.net_rx_bytes_per_s);
    s.tx.push(r.net_tx_bytes_per_s);
    const extra = s.t.length - lxdash.windowSize;
    if (extra > 0) for (const k of Object.keys(s)) if (Array.isArray(s[k])) s[k].splice(0, extra);
  }
  const names = new Set(rows.map((r) => r.name));
  for (const name of Object.keys(lxdash.series)) {
    if (!names.has(name)) { delete lxdash.series[name]; removeCard(name); }
  }
}

// byte axes tick at powers of two (64 MiB, 128 MiB), not at decimal steps (95.4 MiB)
const BINARY_INCRS = Array.from({ length: 45 }, (_, i) => 2 ** i);

function chartOpts(title, labels, fmt, yMin) {
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#8e44ad"];
  const bytes = fmt === size || fmt === rate;
  return {
    title, width: 300, height: 150,
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi || 0, yMin) * 1.1] } },
    axes: [{}, Object.assign({ values: (u, vals) => vals.map(fmt), size: 78 }, bytes ? { incrs: BINARY_INCRS } : {})],
    series: [{}].concat(labels.map(([label, dashed], i) => ({
      label, stroke: dashed ? "#c0392b" : colors[i], width: dashed ? 1.5 : 2, dash: dashed ? [6, 4] : undefined,
      spanGaps: false, points: { show: false }, value: (u, v) => (v === null || v === undefined ? "-" : fmt(v)),
    }))),
    legend: { show: true, live: false },
  };
}

function dataFor(s, kind) {
  if (kind === "cpu") return [s.t, s.cpu, s.cpuLimit];
  if (kind === "mem") return [s.t, s.mem, s.memLimit];
  if (kind === "tasks") return [s.t, s.tasks, s.tasksLimit];
  return [s.t, s.rx, s.tx];
}

function ensureCard(name) {
  if (lxdash.charts[name]) return lxdash.charts[name];
  const card = el("div", null, "card");
  card.dataset.name = name;
  card.appendChild(el("h3", name));
  const row = el("div", null, "row");
  card.appendChild(row);
  $("#charts").appendChild(card);
  const s = lxdash.series[name];
  const mk = (kind, opts) => {
    const box = el("div");
    box.dataset.chart = kind;
    row.appendChild(box);
    return new uPlot(opts, dataFor(s, kind), box);
  };
  const cpuTitle = s.kind === "host" ? "CPU % of all host CPUs" : (s.limited ? "CPU % of its limit" : "CPU % of host (no limit)");
  lxdash.charts[name] = {
    card,
    cpu: mk("cpu", chartOpts(cpuTitle, [["cpu", false], [s.limited ? "limit" : "all host CPUs", true]],
      (v) => v.toFixed(0) + "%", 100)),
    mem: mk("mem", chartOpts("memory", [["used", false], ["limit", true]], size, 1)),
    tasks: mk("tasks", chartOpts(s.kind === "host" ? "threads" : "tasks (limits.processes)",
      [["tasks", false], ["limit", true]], (v) => v.toFixed(0), 1)),
    net: mk("net", chartOpts("network", [["rx", false], ["tx", false]], rate, 1)),
  };
  return lxdash.charts[name];
}

function removeCard(name) {
  const c = lxdash.charts[name];
  if (!c) return;
  for (const k of ["cpu", "mem", "tasks", "net"]) c[k].destroy();
  c.card.remove();
  delete lxdash.charts[name];
}

// a name matches the filter by itself or by its stack
function shown(name) {
  const f = lxdash.filter;
  const info = (lxdash.meta.containers || {})[name] || {};
  return name === "host" || !f || name.includes(f) || (info.stack || "").includes(f);
}

function drawCharts(rows) {
  for (const r of rows) {
    const c = ensureCard(r.name);
    c.card.hidden = !shown(r.name);
    const s = lxdash.series[r.name];
    for (const k of ["cpu", "mem", "tasks", "net"]) c[k].setData(dataFor(s, k));
  }
}

function cell(tr, text, cls, title) {
  const td = el("td", text, cls);
  if (title) td.title = title;
  tr.appendChild(td);
  return td;
}

function verifySummary(v) {
  if (!v) return ["-", ""];
  const bad = v.findings.filter((f) => f.verdict !== "ENFORCED" && f.verdict !== "SOFT").length;
  const text = `${v.findings.length - bad} held, ${bad} not` + (v.time ? ` (${v.time})` : "");
  return [text, bad ? "verdict-bad" : "verdict-ok"];
}

function instanceRow(r, info) {
  const tr = el("tr");
  tr.dataset.name = r.name;
  const v = (lxdash.meta.verify || {})[r.name];
  cell(tr, r.name + (r.kind === "host" ? ` (load ${r.load1})` : ""));
  cell(tr, info && info.stack ? `${info.stack} / ${info.service || "-"}` : "-");
  cell(tr, r.state);
  cell(tr, (r.ipv4 || []).join(", ") || "-");
  const share = cpuShare(r, (lxdash.samples.length ? lxdash.samples[lxdash.samples.length - 1][0].cpu_limit_cpus : 1));
  cell(tr, pct(share) + (r.cpu_limit_cpus && r.kind !== "host" ? ` of ${r.cpu_limit_cpus} CPU` : ""),
    "num" + (share >= 95 ? " warn" : ""));
  const memShare = r.memory_limit_bytes ? r.memory_bytes / r.memory_limit_bytes : 0;
  cell(tr, `${size(r.memory_bytes)} / ${r.memory_limit_bytes ? size(r.memory_limit_bytes) : "no limit"}`,
    "num" + (memShare >= 0.9 ? " warn" : ""));
  cell(tr, `${r.tasks ?? "-"} / ${r.kind === "host" ? "-" : (r.pids_max ?? "no limit")}`, "num");
  cell(tr, `${rate(r.net_rx_bytes_per_s)} / ${rate(r.net_tx_bytes_per_s)}`, "num");
  const limits = info ? Object.entries(info.limits || {}).map(([k, val]) => `${k}=${val}`) : [];
  cell(tr, limits.join(" ") || (r.kind === "host" ? `${r.cpu_limit_cpus} CPUs` : "none"), "limits");
  const env = info ? Object.entries(info.environment || {}).map(([k, val]) => `${k}=${val}`) : [];
  cell(tr, env.join(" ") || "-", "env");
  const [vtext, vcls] = verifySummary(v);
  cell(tr, vtext, vcls);
  return tr;
}

function renderTable(rows) {
  const tbody = $("#instances tbody");
  const ctrs = lxdash.meta.containers || {};
  const groups = new Map();
  for (const r of rows.slice(1).filter((x) => shown(x.name))) {
    const info = ctrs[r.name];
    const key = info && info.stack ? `stack ${info.stack}` : "containers";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const out = [instanceRow(rows[0], null)];
  const keys = [...groups.keys()].sort((a, b) => (a === "containers") - (b === "containers") || a.localeCompare(b));
  for (const key of keys) {
    const g = el("tr", null, "group");
    const td = el("td", key);
    td.colSpan = 11;
    g.appendChild(td);
    out.push(g);
    const members = groups.get(key).sort((a, b) =>
      ((ctrs[a.name] || {}).service || "").localeCompare((ctrs[b.name] || {}).service || "") || a.name.localeCompare(b.name));
    for (const r of members) out.push(instanceRow(r, ctrs[r.name]));
  }
  tbody.replaceChildren(...out);
}

function renderServices() {
  const svcs = (lxdash.meta.services || []).filter((s) =>
    !lxdash.filter || s.stack.includes(lxdash.filter) || s.containers.some(shown));
  $("#services-section").hidden = svcs.length === 0;
  $("#services tbody").replaceChildren(...svcs.map((s) => {
    const tr = el("tr");
    tr.dataset.service = `${s.stack}/${s.service}`;
    cell(tr, s.stack); cell(tr, s.service); cell(tr, `${s.running} / ${s.replicas}`, "num");
    cell(tr, s.status, `health-${s.status}`); cell(tr, s.detail);
    return tr;
  }));
}

function renderSide() {
  $("#attribution tbody").replaceChildren(...(lxdash.meta.attribution || []).map((a) => {
    const tr = el("tr"); cell(tr, a.where); cell(tr, a.processes, "num"); return tr;
  }));
  const verify = lxdash.meta.verify || {};
  const names = Object.keys(verify).sort();
  if (!names.length) return;
  $("#verify").replaceChildren(...names.map((name) => {
    const box = el("div");
    box.appendChild(el("h3", `${name} (${verify[name].time || "?"}, exit ${verify[name].exit_code})`));
    const t = el("table");
    const head = el("tr");
    for (const h of ["limit", "configured", "measured", "verdict"]) head.appendChild(el("th", h));
    t.appendChild(head);
    for (const f of verify[name].findings) {
      const tr = el("tr");
      cell(tr, f.limit); cell(tr, f.configured); cell(tr, f.measured);
      cell(tr, f.verdict, f.verdict === "ENFORCED" || f.verdict === "SOFT" ? "verdict-ok" : "verdict-bad");
      t.appendChild(tr);
    }
    box.appendChild(t);
    return box;
  }));
}

function apply(rows) {
  if (!rows || !rows.length) return;
  const last = lxdash.samples[lxdash.samples.length - 1];
  if (last && Date.parse(last[0].time) >= Date.parse(rows[0].time)) return;  // already have it
  lxdash.samples.push(rows);
  if (lxdash.samples.length > lxdash.windowSize) lxdash.samples.shift();
  addToSeries(rows);
}

function render() {
  const rows = lxdash.samples[lxdash.samples.length - 1];
  if (!rows) return;
  renderTable(rows);
  renderServices();
  renderSide();
  drawCharts(rows);
  $("#clock").textContent = rows[0].time;
}

function status(text, cls) { const s = $("#status"); s.textContent = text; s.className = "status " + (cls || ""); }

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  lxdash.ws = ws;
  ws.onopen = () => { lxdash.connected = true; status("live", "live"); };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    lxdash.received++;
    if (msg.type === "error") { $("#error").textContent = msg.error; return; }
    $("#error").textContent = "";
    const { rows, ...meta } = msg;
    delete meta.type;
    lxdash.meta = meta;
    apply(rows);
    render();
  };
  ws.onclose = () => {
    lxdash.connected = false;
    status("reconnecting", "down");
    setTimeout(connect, 2000);
  };
}

function filterFromHash() {
  const fromHash = location.hash.match(/^#filter=(.*)$/);
  lxdash.filter = $("#filter").value = fromHash ? decodeURIComponent(fromHash[1]) : "";
}

function setupFilter() {
  const input = $("#filter");
  filterFromHash();
  window.addEventListener("hashchange", () => { filterFromHash(); render(); });
  input.addEventListener("input", () => {
    lxdash.filter = input.value.trim();
    history.replaceState(null, "", "/" + (lxdash.filter ? "#filter=" + encodeURIComponent(lxdash.filter) : ""));
    render();
  });
}

async function start() {
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", "/" + location.hash);  // the cookie holds it now; keep it out of the address bar
  }
  setupFilter();
  const resp = await fetch("/api/samples", { credentials: "same-origin" });
  if (!resp.ok) { status(`HTTP ${resp.status}`, "down"); return; }
  const snap = await resp.json();
  lxdash.windowSize = snap.window || 300;
  const { samples, ...meta } = snap;
  lxdash.meta = meta;
  if (snap.error) $("#error").textContent = snap.error;
  for (const rows of samples) apply(rows);
  render();
  connect();
}

start();
