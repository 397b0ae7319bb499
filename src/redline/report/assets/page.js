// The report page: draws a run's document (see redline/report/_page.py) into #app.
// The dashboard sends a new document every second over server-sent events.
"use strict";

const LINE_COLORS = { p50: "#15803d", p90: "#2563eb", p99: "#ea580c", max: "#b91c1c" };
const PALETTE = ["#2563eb", "#ea580c", "#15803d", "#9333ea", "#b91c1c", "#0891b2",
  "#be185d", "#65a30d", "#4b5563", "#ca8a04"];
const SPECTRUM_TICKS = [0, 1, 2, 3, 4, 5];

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtMs(v) {
  if (v === null || v === undefined) return "-";
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  if (v === 0) return "0 ms";
  return `${v.toPrecision(3)} ms`;
}
const fmtCount = (v) => (v === null || v === undefined ? "-" : Math.round(v).toLocaleString("en-US"));
const fmtRate = (v) =>
  v === null || v === undefined ? "-" : `${v.toLocaleString("en-US", { maximumFractionDigits: v < 10 ? 2 : 0 })}/s`;
const fmtPct = (v) => (v === null || v === undefined ? "-" : `${(v * 100).toFixed(v < 0.01 ? 3 : 2)}%`);
const fmtChange = (v) => (v === null || v === undefined ? "-" : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%`);
function fmtTime(s) {
  if (s < 60) return `${Math.round(s * 10) / 10}s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return `${m}m${String(rest).padStart(2, "0")}s`;
}
function fmtSpectrumX(x) {
  const p = 100 * (1 - Math.pow(10, -x));
  const digits = Math.max(0, Math.min(4, Math.ceil(x) - 2));
  return `p${p.toFixed(digits)}`;
}
const fmtSpectrumTick = (x) => ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"][x] || "";
const spectrumX = (p) => (p >= 100 ? 5 : -Math.log10(1 - p / 100));

function numberCell(value, text) {
  return h("td", { class: "num", "data-value": value === null || value === undefined ? "" : value }, text);
}

function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

function header(data) {
  const run = data.run;
  const gen = data.generator;
  const rows = [
    ["target", run.target],
    ["load", run.load],
    ["measured", `${run.duration}${run.warmup_s ? ` after ${fmtTime(run.warmup_s)} warm-up` : ""}`],
    ["started", run.started_at],
    ["ended", `${run.stop_reason}${run.complete ? "" : " (incomplete)"}`],
  ];
  if (run.git_commit) rows.push(["commit", `${run.git_commit.slice(0, 12)}${run.git_dirty ? " (dirty)" : ""}`]);
  const labels = Object.entries(run.labels || {});
  if (labels.length) rows.push(["labels", labels.map(([k, v]) => `${k}=${v}`).join(" ")]);
  if (run.host || run.version) rows.push(["made by", `redline ${run.version || "?"} on ${run.host || "?"}`]);
  const target = gen.target_rps === null ? "closed model" : `target ${fmtRate(gen.target_rps)}`;
  const health = gen.limited
    ? h("span", { class: "badge fail" }, "generator limited: the load asked for was not generated")
    : h("span", { class: "badge pass" }, "generator kept up");
  rows.push([
    "generator",
    h("span", {}, health, ` achieved ${fmtRate(gen.achieved_rps)} (${target}), ${gen.workers} worker(s), ` +
      `late ${fmtCount(gen.late)}, dropped ${fmtCount(gen.dropped)}, max lag ${fmtMs(gen.max_lag_ms)}, ` +
      `peak CPU ${Math.round(gen.max_cpu_percent)}%`),
  ]);
  return h(
    "header",
    {},
    h("h1", {}, "redline · ", h("span", { id: "plan-name" }, run.plan || "run")),
    h("div", { class: "run-id" }, `run ${run.id}`),
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))
  );
}

let controls = null; // made once, so what is typed survives the page's redraws

function controlPanel(live) {
  if (!controls) {
    const value = h("input", { id: "control-value", type: "number", min: "0", step: "any",
      placeholder: live.model === "closed" ? "virtual users" : "req/s" });
    const answer = h("span", { id: "control-answer", class: "caption" }, "");
    const act = (action, body) => fetch(`/control/${action}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    }).then((r) => r.json().then((j) => { answer.textContent = r.ok ? `${action}: done` : j.error; }))
      .catch((e) => { answer.textContent = String(e); });
    const key = live.model === "closed" ? "vus" : "rate";
    const button = (id, label, onClick) => {
      const node = h("button", { id, type: "button" }, label);
      node.addEventListener("click", onClick);
      return node;
    };
    controls = h("div", { id: "controls", class: "controls" },
      button("control-pause", "Pause", () => act("pause")),
      button("control-resume", "Resume", () => act("resume")),
      value,
      button("control-set", live.model === "closed" ? "Set VUs" : "Set rate",
        () => act(key, { [key]: Number(value.value) })),
      answer);
  }
  return controls;
}

function liveBar(data) {
  const live = data.live;
  if (!live) return null;
  const total = data.endpoints.length ? data.endpoints[0].requests : 0;
  const done = live.total_s ? Math.min(1, live.elapsed_s / live.total_s) : 0;
  return h(
    "div",
    { id: "live", class: `live ${live.state}` },
    h("span", { class: `badge ${live.state === "running" ? "running" : "done"}`, id: "live-state" }, live.state),
    h("span", { class: "progress" }, h("span", { style: `width:${(done * 100).toFixed(1)}%` })),
    h("span", {}, `${fmtTime(live.elapsed_s)} / ${fmtTime(live.total_s)}`),
    h("span", { id: "live-stage" }, live.stage || ""),
    h("span", {}, "requests ", h("strong", { id: "live-requests", "data-value": total }, fmtCount(total))),
    live.message ? h("span", { class: "live-message" }, live.message) : null,
    live.control && live.state === "running" ? controlPanel(live) : null
  );
}

function verdictCards(data) {
  if (!data.verdicts.length) return null;
  return section(
    "Objectives",
    h(
      "div",
      { class: "cards" },
      data.verdicts.map((v) =>
        h(
          "div",
          { class: `card ${v.outcome}`, "data-outcome": v.outcome },
          h("div", { class: "card-outcome" }, v.outcome),
          h("div", { class: "card-name" }, v.name),
          h("div", { class: "card-value" }, h("span", { class: "value", "data-value": v.value ?? "" }, v.value_text),
            h("span", { class: "bound" }, ` ${v.bound_text}`)),
          v.interval_text ? h("div", { class: "card-detail" }, `95% CI ${v.interval_text}`) : null,
          v.budget_text ? h("div", { class: "card-detail" }, `error budget ${v.budget_text}`) : null,
          h("div", { class: "card-detail" }, v.scope),
          v.outcome === "pass" ? null : h("div", { class: "card-reason" }, v.reason)
        )
      )
    )
  );
}

function chartBox(id) {
  return h("div", { class: "chart-box", "data-for": id });
}

function latencySpec(data, name, title) {
  const s = data.series;
  const lines = s.latency[name];
  const series = Object.keys(LINE_COLORS).map((line) => ({ name: line, y: lines[line], color: LINE_COLORS[line] }));
  const base = data.baseline && data.baseline.series.latency[name];
  if (base) {
    for (const line of ["p50", "p99"]) {
      series.push({ name: `baseline ${line}`, y: base[line], x: data.baseline.series.t,
        color: LINE_COLORS[line], dash: "5 4" });
    }
  }
  return { id: `latency-${name}`, title, x: s.t, series, yFormat: fmtMs, xFormat: fmtTime,
    zoomGroup: "time", bands: data.windows, xFrom: 0 };
}

function throughputSpec(data) {
  const s = data.series;
  const series = [
    { name: "achieved", y: s.achieved, color: "#2563eb" },
    { name: "sent", y: s.sent, color: "#0891b2", dash: "2 3" },
  ];
  if (s.target) series.push({ name: "target", y: s.target, color: "#4b5563", dash: "6 4" });
  if (data.baseline) {
    series.push({ name: "baseline achieved", y: data.baseline.series.achieved, x: data.baseline.series.t,
      color: "#9333ea", dash: "5 4" });
  }
  return { id: "throughput", title: "Throughput: achieved vs target (req/s)", x: s.t, series,
    yFormat: (v) => fmtRate(v), xFormat: fmtTime, zoomGroup: "time", bands: data.windows, xFrom: 0 };
}

function errorsSpec(data) {
  const s = data.series;
  const kinds = Object.entries(s.errors);
  const series = kinds.length
    ? kinds.map(([kind, counts], i) => ({ name: kind, y: counts, color: PALETTE[(i + 4) % PALETTE.length] }))
    : [{ name: "errors (none)", y: s.t.map(() => 0), color: "#15803d" }];
  return { id: "errors", title: "Errors over time by class and status (per step)", x: s.t, series,
    yFormat: fmtCount, yInteger: true, xFormat: fmtTime, zoomGroup: "time", bands: data.windows,
    xFrom: 0 };
}

function spectrumSpec(data) {
  const d = data.distribution;
  const x = d.percentiles.map(spectrumX);
  const series = Object.entries(d.spectrum).map(([name, y], i) => ({
    name, y, color: name === "all" ? "#111827" : PALETTE[i % PALETTE.length],
  }));
  if (data.baseline && data.baseline.distribution.spectrum.all) {
    series.push({ name: "baseline all", y: data.baseline.distribution.spectrum.all, color: "#9333ea", dash: "5 4" });
  }
  return { id: "spectrum", title: "Latency by percentile (percentile spectrum, log scale)", x, series,
    yFormat: fmtMs, xFormat: fmtSpectrumTick, xTipFormat: fmtSpectrumX, xTicks: SPECTRUM_TICKS, yLog: true };
}

function histogramSpec(data) {
  const bins = data.distribution.histogram;
  return { id: "histogram", title: "Latency histogram (requests per bin, log-spaced bins)", bars: bins,
    x: [], xLog: true, xFormat: fmtMs, yFormat: fmtCount, series: [] };
}

function endpointTable(data) {
  const head = ["endpoint", "requests", "errors", "error rate", "rate", "p50", "p90", "p99", "p99.9", "max"];
  return section(
    "Endpoints",
    h("table", { id: "endpoints" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
      h("tbody", {}, data.endpoints.map((row) =>
        h("tr", { "data-endpoint": row.name, class: row.name === "all" ? "total" : null },
          h("td", {}, row.name),
          numberCell(row.requests, fmtCount(row.requests)),
          numberCell(row.errors, fmtCount(row.errors)),
          numberCell(row.error_rate, fmtPct(row.error_rate)),
          numberCell(row.rps, fmtRate(row.rps)),
          ["p50", "p90", "p99", "p999", "max"].map((k) => numberCell(row[k], fmtMs(row[k])))
        )
      ))
    )
  );
}

function phaseTable(data) {
  const rows = data.endpoints.filter((row) => row.phases && Object.keys(row.phases).length);
  if (!rows.length) return null;
  const phases = ["dns", "connect", "tls", "send", "wait", "receive"];
  const cell = (v) => (v ? numberCell(v.p99, `${fmtMs(v.p50)} / ${fmtMs(v.p99)}`) : h("td", {}, "-"));
  return section("Request phases (p50 / p99)",
    h("p", { class: "caption" }, "Where each request's time went, as the load generator saw it. " +
      "DNS, connect and TLS are spent on new connections only (zero on a reused one); wait is the time to first byte."),
    h("table", { id: "phases" },
      h("thead", {}, h("tr", {}, ["endpoint", ...phases].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((row) => h("tr", { "data-endpoint": row.name, class: row.name === "all" ? "total" : null },
        h("td", {}, row.name), phases.map((p) => cell(row.phases[p])))))));
}

function hostTable(data) {
  const hosts = (data.generator && data.generator.hosts) || [];
  if (!hosts.length) return null;
  const head = ["host", "address", "share", "sent req/s", "max lag", "CPU", "clock offset", "lost at"];
  return section("Generator hosts",
    h("p", { class: "caption" }, "One row per Dask worker that generated load. An overloaded host shows a long lag " +
      "or high CPU; a lost one, the interval from which its share is missing."),
    h("table", { id: "hosts" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
      h("tbody", {}, hosts.map((host) => h("tr", { "data-host": host.name, class: host.lost_at === null ? null : "fail" },
        h("td", {}, host.name), h("td", {}, host.address),
        numberCell(host.share, fmtPct(host.share)),
        numberCell(host.achieved_rps, fmtRate(host.achieved_rps)),
        numberCell(host.max_lag_ms, fmtMs(host.max_lag_ms)),
        numberCell(host.max_cpu_percent, `${host.max_cpu_percent.toFixed(0)}%`),
        numberCell(host.clock_offset_ms, `${host.clock_offset_ms.toFixed(2)} ± ${host.clock_error_ms.toFixed(2)} ms`),
        h("td", {}, host.lost_at === null ? "-" : `${host.lost_at} (${host.lost_reason})`))))));
}

function phaseChanges(c) {
  if (!c.phases || !c.phases.length) return null;
  return h("table", { id: "comparison-phases" },
    h("thead", {}, h("tr", {}, ["phase (all traffic)", "baseline p50", "this run p50", "baseline p99", "this run p99"].map((t) => h("th", {}, t)))),
    h("tbody", {}, c.phases.map((p) => h("tr", {}, h("td", {}, p.phase),
      numberCell(p.base.p50, fmtMs(p.base.p50)), numberCell(p.candidate.p50, fmtMs(p.candidate.p50)),
      numberCell(p.base.p99, fmtMs(p.base.p99)), numberCell(p.candidate.p99, fmtMs(p.candidate.p99))))));
}

function metricSpecs(data) {
  // custom metrics over time: a queue's depth and lag, job latency, a counter's rate
  return (data.metric_series || []).map((m) => ({
    id: `metric-${m.name}`,
    title: `${m.name} over time (${m.kind}${m.kind === "trend" ? ", p50 and p99" : ""})`,
    x: m.x, xFrom: 0, zoomGroup: "time", bands: data.windows, xFormat: fmtTime,
    yFormat: (v) => `${+v.toPrecision(4)}`,
    series: Object.entries(m.lines).map(([line, y], i) => ({ name: line, x: m.x, y, color: PALETTE[i % PALETTE.length] })),
  }));
}

function detailTables(data) {
  const out = [];
  if ((data.workloads || []).length) {
    out.push(section("Scenarios",
      h("table", { id: "workloads" },
        h("thead", {}, h("tr", {}, ["scenario", "executor", "window s", "iterations", "requests", "errors", "p50", "p99"].map((c) => h("th", {}, c)))),
        h("tbody", {}, data.workloads.map((r) => h("tr", { class: r.errors ? "bad" : null }, h("td", {}, r.name), h("td", {}, r.executor),
          h("td", {}, `${r.start_s}-${r.end_s}`), numberCell(r.iterations, fmtCount(r.iterations)),
          numberCell(r.requests, fmtCount(r.requests)), numberCell(r.errors, fmtCount(r.errors)),
          numberCell(r.p50, fmtMs(r.p50)), numberCell(r.p99, fmtMs(r.p99))))))));
  }
  if ((data.metrics || []).length) {
    const shown = (r) => Object.entries(r).filter(([k]) => k !== "name" && k !== "kind")
      .map(([k, v]) => `${k} ${typeof v === "number" ? +v.toPrecision(4) : v}`).join(", ");
    out.push(section("Custom metrics",
      h("table", { id: "metrics" },
        h("thead", {}, h("tr", {}, ["metric", "kind", "values"].map((c) => h("th", {}, c)))),
        h("tbody", {}, data.metrics.map((r) => h("tr", {}, h("td", {}, r.name), h("td", {}, r.kind), h("td", {}, shown(r))))))));
  }
  if (data.steps.length) {
    out.push(section("Steps, slowest first",
      h("table", { id: "steps" },
        h("thead", {}, h("tr", {}, ["kind", "name", "count", "failures", "p50", "p99", "max"].map((c) => h("th", {}, c)))),
        h("tbody", {}, data.steps.map((r) => h("tr", {}, h("td", {}, r.kind), h("td", {}, r.name),
          numberCell(r.count, fmtCount(r.count)), numberCell(r.failures, fmtCount(r.failures)),
          numberCell(r.p50, fmtMs(r.p50)), numberCell(r.p99, fmtMs(r.p99)), numberCell(r.max, fmtMs(r.max))))))));
  }
  if ((data.faults || []).length) {
    const secs = (v) => (v === null || v === undefined ? "-" : `${v.toFixed(1)} s`);
    out.push(section("Faults: time to detect (an objective breached) and to recover (3 intervals clean)",
      h("table", { id: "faults" },
        h("thead", {}, h("tr", {}, ["fault", "kind", "window", "settings", "detected after", "recovered after", "error budget spent"].map((c) => h("th", {}, c)))),
        h("tbody", {}, data.faults.map((r) => h("tr", { class: r.detected_after_s !== null && r.recovered_after_s === null ? "bad" : null },
          h("td", {}, r.name), h("td", {}, r.kind), h("td", {}, `${fmtTime(r.start_s)} - ${fmtTime(r.end_s)}`),
          h("td", {}, JSON.stringify(r.settings)),
          h("td", {}, secs(r.detected_after_s)), h("td", {}, secs(r.recovered_after_s)),
          h("td", {}, Object.entries(r.budget).map(([k, v]) => `${k}: ${(v * 100).toFixed(0)}%`).join(", ") || "-")))))));
  }
  if (data.checks.length) {
    out.push(section("Checks, most failures first",
      h("table", { id: "checks" },
        h("thead", {}, h("tr", {}, ["check", "passed", "failed"].map((c) => h("th", {}, c)))),
        h("tbody", {}, data.checks.map((r) => h("tr", { class: r.failed ? "bad" : null }, h("td", {}, r.name),
          numberCell(r.passed, fmtCount(r.passed)), numberCell(r.failed, fmtCount(r.failed))))))));
  }
  if (data.exceptions.length || data.tracebacks.length) {
    out.push(section("Scenario errors",
      data.exceptions.length
        ? h("table", { id: "exceptions" },
          h("thead", {}, h("tr", {}, ["scenario", "exception", "count"].map((c) => h("th", {}, c)))),
          h("tbody", {}, data.exceptions.map((r) => h("tr", {}, h("td", {}, r.scenario), h("td", {}, r.type),
            numberCell(r.count, fmtCount(r.count))))))
        : null,
      data.tracebacks.map((text) => h("details", {}, h("summary", {}, text.trim().split("\n").pop()), h("pre", {}, text)))));
  }
  if (data.notes.length) {
    out.push(section("Notes", h("ul", {}, data.notes.map((n) => h("li", {}, n)))));
  }
  return out;
}

function comparisonTable(data) {
  const c = data.comparison;
  if (!c) return null;
  const value = (m, v) => (v === null ? "-" : m.metric === "error_ratio" ? fmtPct(v) : m.metric === "throughput" ? fmtRate(v) : fmtMs(v));
  return section(
    `Against the baseline (${c.base.join(", ")})`,
    h("table", { id: "comparison" },
      h("thead", {}, h("tr", {}, ["metric", "baseline", "this run", "change", `${((c.level ?? 0.95) * 100).toFixed(1)}% CI`, "outcome", "why"].map((t) => h("th", {}, t)))),
      h("tbody", {}, c.metrics.map((m) => h("tr", { class: `outcome-${m.outcome.replace(/ /g, "-")}` },
        h("td", {}, m.name + (m.critical ? " *" : "")),
        numberCell(m.base, value(m, m.base)),
        numberCell(m.candidate, value(m, m.candidate)),
        numberCell(m.change, fmtChange(m.change)),
        h("td", { class: "num" }, m.low === null ? "-" : `${fmtChange(m.low)} .. ${fmtChange(m.high)}`),
        h("td", {}, m.outcome),
        h("td", { class: "why" }, m.outcome === "no change" ? "" : m.reason))))),
    h("p", { class: "caption" }, `* critical metric. Changes within ±${(c.floor * 100).toFixed(0)}% count as no change.`),
    c.notes.map((n) => h("p", { class: "caption" }, n)),
    phaseChanges(c) || ""
  );
}

function searchSection(data) {
  const search = data.search;
  if (!search) return null;
  const steps = search.steps.filter((s) => s.phase !== "repeat" && !s.limited)
    .sort((a, b) => a.achieved - b.achieved);
  const x = steps.map((s) => s.achieved);
  const series = [
    { name: "p99", y: steps.map((s) => s.p99_ms), color: LINE_COLORS.p99 },
    { name: "p50", y: steps.map((s) => s.p50_ms), color: LINE_COLORS.p50 },
  ];
  const bands = [];
  if (search.low !== null && search.high !== null) {
    bands.push({ kind: "redline", label: "redline 95% CI", start_s: search.low, end_s: search.high });
  }
  const spec = { id: "search", title: "Latency against achieved throughput, one point per step", x, series,
    yFormat: fmtMs, xFormat: (v) => fmtRate(v), bands, yLog: true };
  const box = chartBox(spec.id);
  const rows = search.steps.map((s) => h("tr", { class: s.holds ? null : "bad" },
    h("td", {}, s.phase), numberCell(s.rate, fmtRate(s.rate)), numberCell(s.achieved, fmtRate(s.achieved)),
    numberCell(s.p50_ms, fmtMs(s.p50_ms)), numberCell(s.p99_ms, fmtMs(s.p99_ms)),
    numberCell(s.error_rate, fmtPct(s.error_rate)), h("td", {}, s.limited ? "generator limited" : s.holds ? "holds" : "breaks")));
  const section_ = section("The redline",
    h("p", { class: "redline-summary", id: "redline-summary" }, search.summary),
    h("p", { class: "caption" }, search.reason + (search.knee !== null ? `; knee (Kneedle) at ~${fmtRate(search.knee)}` : "")),
    box,
    h("table", { id: "search-steps" },
      h("thead", {}, h("tr", {}, ["phase", "offered", "achieved", "p50", "p99", "errors", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
  return { section: section_, box, spec };
}

function render(data) {
  const app = document.getElementById("app");
  const names = Object.keys(data.series.latency).filter((n) => n !== "all");
  const specs = [latencySpec(data, "all", "Latency over time: all requests")];
  if (names.length > 1) {
    for (const name of names) specs.push(latencySpec(data, name, `Latency over time: ${name}`));
  }
  specs.push(throughputSpec(data), errorsSpec(data), spectrumSpec(data), histogramSpec(data));
  specs.push(...targetSpecs(data));
  specs.push(...metricSpecs(data));
  const boxes = Object.fromEntries(specs.map((s) => [s.id, chartBox(s.id)]));
  const target = targetSections(data, boxes);
  const latencyBoxes = specs.filter((s) => s.id.startsWith("latency-")).map((s) => boxes[s.id]);
  const metricBoxes = specs.filter((s) => s.id.startsWith("metric-")).map((s) => boxes[s.id]);
  const search = searchSection(data);
  if (search) {
    specs.push(search.spec);
    boxes[search.spec.id] = search.box;
  }
  document.title = `redline · ${data.run.plan} · ${data.run.id}`;
  forgetCharts();
  app.replaceChildren(
    header(data),
    liveBar(data) || "",
    search ? search.section : "",
    verdictCards(data) || "",
    section("Latency over time", h("p", { class: "caption" }, "Drag across a time chart to zoom, double-click to reset. Shaded: warm-up and fault windows."),
      h("div", { class: "grid" }, latencyBoxes)),
    target.saturation,
    ...target.rest,
    tracesSection(data),
    section("Throughput and errors", h("div", { class: "grid" }, boxes.throughput, boxes.errors)),
    metricBoxes.length ? section("Custom metrics over time", h("div", { class: "grid", id: "metric-charts" }, metricBoxes)) : "",
    section("Latency distribution", h("div", { class: "grid" }, boxes.spectrum, boxes.histogram)),
    comparisonTable(data) || "",
    endpointTable(data),
    phaseTable(data) || "",
    hostTable(data) || "",
    ...detailTables(data),
    h("footer", {}, `redline ${data.run.version || ""} · this page makes no network requests` +
      (data.series.merged > 1 ? ` · time charts merge ${data.series.merged} intervals a step` : ""))
  );
  for (const spec of specs) drawChart(boxes[spec.id], spec);
  for (const flame of target.flames) flame.draw();
}

function start() {
  const source = document.body.dataset.events;
  if (!source) {
    render(JSON.parse(document.getElementById("redline-data").textContent));
    return;
  }
  let last = null;
  const events = new EventSource(source);
  events.onmessage = (event) => {
    last = JSON.parse(event.data);
    render(last);
  };
  events.onerror = () => {
    if (last && last.live && last.live.state !== "running") {
      events.close();
      const state = document.getElementById("live-state");
      if (state) state.textContent = "closed";
    }
  };
}

start();
