// Traces: where each endpoint's p50 and p99 go (the attribution table), and a waterfall of
// the slowest traced request of each endpoint, its spans as bars on the request's time.

const ROW_H = 18;

function attributionTable(traces) {
  const rows = [];
  for (const [endpoint, bands] of Object.entries(traces.attribution)) {
    for (const [band, shares] of Object.entries(bands)) {
      for (const s of shares.slice(0, 6)) {
        rows.push(h("tr", {},
          h("td", {}, endpoint), h("td", {}, band), h("td", {}, s.service), h("td", {}, s.span),
          numberCell(s.share, `${(s.share * 100).toFixed(1)}%`), numberCell(s.ms, `${s.ms.toFixed(2)} ms`)));
      }
    }
  }
  const head = ["endpoint", "band", "service", "span", "share of latency", "ms per request"];
  return h("table", { class: "attribution" }, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows));
}

function waterfall(endpoint, trace) {
  const spans = trace.spans;
  if (!spans.length) return "";
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const depth = (s) => {
    let d = 0;
    for (let p = s.parent_id; p && byId.has(p) && d < 50; p = byId.get(p).parent_id) d++;
    return d;
  };
  const start = Math.min(...spans.map((s) => s.start_ns));
  const end = Math.max(...spans.map((s) => s.end_ns));
  const span = Math.max(end - start, 1);
  const width = 900;
  const label = 260;
  const ordered = [...spans].sort((a, b) => a.start_ns - b.start_ns);
  const svg = svgEl("svg", { class: "waterfall", viewBox: `0 0 ${width} ${ordered.length * ROW_H + 4}`,
    width, height: ordered.length * ROW_H + 4 });
  ordered.forEach((s, i) => {
    const y = i * ROW_H + 2;
    const x = label + ((s.start_ns - start) / span) * (width - label - 10);
    const w = Math.max(((s.end_ns - s.start_ns) / span) * (width - label - 10), 1);
    const name = svgEl("text", { x: 4 + depth(s) * 10, y: y + ROW_H - 5 });
    name.textContent = `${s.service} ${s.name}`;
    const bar = svgEl("rect", { x, y: y + 2, width: w, height: ROW_H - 5, rx: 2,
      fill: s.error ? "#b91c1c" : PALETTE[Math.abs([...s.service].reduce((a, c) => a * 31 + c.charCodeAt(0), 7)) % PALETTE.length] });
    const tip = svgEl("title", {});
    tip.textContent = `${s.service} ${s.name}: ${((s.end_ns - s.start_ns) / 1e6).toFixed(2)} ms, ` +
      `starts at +${((s.start_ns - start) / 1e6).toFixed(2)} ms`;
    bar.append(tip);
    svg.append(name, bar);
  });
  return h("div", { class: "chart-box" },
    h("div", { class: "chart-title" }, `Slowest traced ${endpoint}: ${trace.latency_ms.toFixed(1)} ms (trace ${trace.trace_id})`),
    svg);
}

function tracesSection(data) {
  const t = data.traces;
  if (!t) return "";
  const parts = [];
  if (Object.keys(t.attribution).length) parts.push(attributionTable(t));
  for (const [endpoint, trace] of Object.entries(t.waterfalls || {})) parts.push(waterfall(endpoint, trace));
  const c = t.counts || {};
  parts.push(h("p", { class: "caption" },
    `${c.joined || 0} traced requests joined with spans, ${c.unjoined || 0} without; ` +
    `${c.received || 0} spans received, ${c.dropped || 0} dropped, ${c.orphans || 0} orphans, ` +
    `${c.clamped || 0} clamped (clock skew)`));
  return section("Where the requests' time went: traces", ...parts);
}
