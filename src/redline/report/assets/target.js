// The target seen from inside: saturation charts on the run's time axis, the USE table,
// and flamegraphs (on-CPU, waiting, and differential against a baseline) drawn as SVG.
// Click a frame to zoom into it, click the root to zoom out; the search box marks matches.

const TARGET_CHARTS = [
  ["cpu", "CPU (% of what it may use)", (v) => `${v.toFixed(0)}%`],
  ["memory", "Memory (MiB)", (v) => `${v.toFixed(1)}`],
  ["pressure", "Pressure: share of time stalled (PSI, %)", (v) => `${v.toFixed(1)}%`],
  ["throttling", "CPU quota: throttled seconds per interval", (v) => `${v.toFixed(2)}s`],
  ["threads", "Threads and established sockets", (v) => `${Math.round(v)}`],
  ["network", "Accept-queue overflows and retransmits", (v) => `${Math.round(v)}`],
  ["metrics", "The target's own gauges (Prometheus)", (v) => `${v}`],
];
const FRAME_H = 16;

function targetSpecs(data) {
  const t = data.target;
  if (!t) return [];
  const specs = [];
  for (const [key, title, format] of TARGET_CHARTS) {
    const lines = t.charts[key];
    if (!lines || !lines.length) continue;
    specs.push({
      id: `target-${key}`, title, x: lines[0].x, xFrom: 0, zoomGroup: "time", bands: data.windows,
      xFormat: fmtTime, yFormat: format, yInteger: key === "threads" || key === "network",
      series: lines.map((l, i) => ({ name: l.name, x: l.x, y: l.y, color: PALETTE[i % PALETTE.length] })),
    });
  }
  return specs;
}

function frameTree(folded) {
  const root = { name: "all", value: 0, children: new Map() };
  for (const [stack, count] of Object.entries(folded)) {
    root.value += count;
    let node = root;
    for (const frame of stack.split(";")) {
      let child = node.children.get(frame);
      if (!child) {
        child = { name: frame, value: 0, children: new Map() };
        node.children.set(frame, child);
      }
      child.value += count;
      node = child;
    }
  }
  return root;
}

function shareOf(folded) {
  // function -> share of all samples whose stack holds it (once per stack): the
  // differential colouring compares functions, so code that moved still compares
  const out = new Map();
  let total = 0;
  for (const [stack, count] of Object.entries(folded)) {
    total += count;
    for (const name of new Set(stack.split(";"))) out.set(name, (out.get(name) || 0) + count);
  }
  for (const [name, count] of out) out.set(name, count / Math.max(total, 1));
  return out;
}

function frameColor(name, delta) {
  if (delta !== undefined) {
    const strength = Math.min(Math.abs(delta) * 8, 1);
    const light = Math.round(235 - 120 * strength);
    return delta > 0.002 ? `rgb(235,${light},${light})` : delta < -0.002 ? `rgb(${light},${light},235)` : "#e5e7eb";
  }
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return `hsl(${20 + (Math.abs(hash) % 35)}, 85%, ${62 + (Math.abs(hash >> 8) % 14)}%)`;
}

function flamegraph(title, folded, baseFolded) {
  const tree = frameTree(folded);
  const base = baseFolded ? shareOf(baseFolded) : null;
  const now = base ? shareOf(folded) : null;
  const box = h("div", { class: "flame" });
  const search = h("input", { type: "search", placeholder: "search frames (regex)", class: "flame-search" });
  const matched = h("span", { class: "caption" });
  let focus = { node: tree, path: "" };
  function draw() {
    const width = Math.max(box.clientWidth || 900, 300);
    let depth = 0;
    const rects = [];
    const pattern = search.value ? new RegExp(search.value, "i") : null;
    let hits = 0;
    const place = (node, path, x, w, level) => {
      if (w < 0.5) return;
      depth = Math.max(depth, level + 1);
      rects.push({ node, path, x, w, level });
      if (pattern && pattern.test(node.name)) hits += node.value;
      let cx = x;
      for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
        const cw = (child.value / node.value) * w;
        place(child, path ? `${path};${child.name}` : child.name, cx, cw, level + 1);
        cx += cw;
      }
    };
    place(focus.node, focus.path, 0, width, 0);
    const height = depth * FRAME_H + 2;
    const svg = svgEl("svg", { class: "flamegraph", viewBox: `0 0 ${width} ${height}`, width, height });
    for (const r of rects) {
      const y = height - (r.level + 1) * FRAME_H; // flames rise from the root at the bottom
      const g = svgEl("g", { class: "frame" });
      const share = r.node.value / Math.max(tree.value, 1);
      const delta = base ? now.get(r.node.name) - (base.get(r.node.name) || 0) : undefined;
      const hit = pattern && pattern.test(r.node.name);
      g.append(svgEl("rect", { x: r.x, y, width: Math.max(r.w - 0.5, 0.5), height: FRAME_H - 1,
        fill: hit ? "#c026d3" : frameColor(r.node.name, delta), rx: 1 }));
      if (r.w > 40) {
        const text = svgEl("text", { x: r.x + 3, y: y + FRAME_H - 4 });
        const chars = Math.floor((r.w - 6) / 6.5);
        text.textContent = r.node.name.length > chars ? `${r.node.name.slice(0, Math.max(chars - 1, 1))}…` : r.node.name;
        g.append(text);
      }
      const tip = svgEl("title", {});
      tip.textContent = `${r.node.name}\n${r.node.value.toLocaleString("en-US")} samples, ${(share * 100).toFixed(2)}%` +
        (delta !== undefined ? `; this function: ${delta >= 0 ? "+" : ""}${(delta * 100).toFixed(2)} points of all samples vs baseline` : "");
      g.append(tip);
      g.addEventListener("click", () => {
        focus = r.node === focus.node ? { node: tree, path: "" } : { node: r.node, path: r.path };
        draw();
      });
      svg.append(g);
    }
    box.replaceChildren(svg);
    matched.textContent = pattern ? `matched: ${((hits / Math.max(focus.node.value, 1)) * 100).toFixed(1)}% of samples in view` : "";
  }
  search.addEventListener("input", () => {
    try { draw(); } catch (e) { matched.textContent = "not a regular expression"; }
  });
  registerRedraw(draw);
  return { element: h("div", { class: "chart-box" }, h("div", { class: "chart-title" }, title),
    h("div", { class: "flame-tools" }, search, " ", matched), box), draw };
}

const flameRedraws = [];
function registerRedraw(draw) { flameRedraws.push(draw); }
window.addEventListener("resize", () => flameRedraws.forEach((d) => d()));

function functionTable(rows, withChange) {
  const head = withChange ? ["function", "where", "share now", "baseline", "change"] : ["function", "where", "self", "total"];
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((f) => h("tr", {},
      h("td", {}, f.function), h("td", { class: "mono" }, `${f.file}:${f.line}`),
      ...(withChange
        ? [numberCell(f.total_pct, `${f.total_pct.toFixed(1)}%`), numberCell(f.baseline_total_pct, `${f.baseline_total_pct.toFixed(1)}%`),
           numberCell(f.change_pct, `+${f.change_pct.toFixed(1)} pts`)]
        : [numberCell(f.self_pct, `${f.self_pct.toFixed(1)}%`), numberCell(f.total_pct, `${f.total_pct.toFixed(1)}%`)])))));
}

function targetSections(data, boxes) {
  flameRedraws.length = 0;
  const t = data.target;
  if (!t) return { saturation: "", rest: [], flames: [] };
  const charts = Object.keys(boxes).filter((id) => id.startsWith("target-")).map((id) => boxes[id]);
  const verdict = t.verdict
    ? h("p", { class: `bottleneck ${t.verdict.bottleneck === "none" ? "pass" : "fail"}` },
        h("strong", {}, `bottleneck: ${t.verdict.bottleneck}`), ` ${t.verdict.evidence}`)
    : "";
  const saturation = section("The target: saturation", verdict,
    h("p", { class: "caption" }, "On the latency charts' time axis: zooming one zooms them all."),
    h("div", { class: "grid" }, charts));
  const rest = [];
  if (t.use.length) {
    const head = ["resource", "watched", "utilisation", "saturation", "errors"];
    rest.push(section("USE: utilisation, saturation and errors of each resource",
      h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
        h("tbody", {}, t.use.map((row) => h("tr", {}, row.map((c) => h("td", {}, c))))))));
  }
  const facts = [];
  if (t.cost) facts.push(`cost per request: ${t.cost.cpu_ms.toFixed(3)} CPU-ms, ${t.cost.gib_ms.toFixed(4)} GiB-ms` +
    (t.cost.per_million !== null && t.cost.per_million !== undefined ? `; ${t.cost.per_million.toFixed(4)} per million requests` : ""));
  if (t.growth) facts.push(`memory of ${t.growth.thing}: ${t.growth.mib_per_min >= 0 ? "+" : ""}${t.growth.mib_per_min.toFixed(2)} MiB/min ` +
    `(95% CI ${t.growth.low.toFixed(2)} to ${t.growth.high.toFixed(2)}): ${t.growth.growing ? "growing" : "no growth shown"}`);
  for (const note of t.notes) facts.push(note);
  if (facts.length) rest.push(section("Cost, memory, notes", h("ul", {}, facts.map((f) => h("li", {}, f)))));
  const flames = [];
  const p = t.profile;
  if (p) {
    const parts = [];
    if (p.note) parts.push(h("p", { class: "caption" }, p.note));
    if (p.samples) {
      const cpu = flamegraph(`On-CPU: ${p.samples.toLocaleString("en-US")} samples at ${p.rate_hz} Hz`, p.folded,
        t.baseline_profile ? t.baseline_profile.folded : null);
      parts.push(cpu.element);
      flames.push(cpu);
      if (t.baseline_profile) parts.push(h("p", { class: "caption" }, "Differential: a red frame's function is on a larger share of stacks than in the baseline, a blue one on a smaller share (grey: no change)."));
      parts.push(functionTable(p.top, false));
    }
    if (p.waiting_samples) {
      const waiting = flamegraph(`Waiting (idle threads: locks, pools, I/O): ${p.waiting_samples.toLocaleString("en-US")} samples`, p.waiting_folded, null);
      parts.push(waiting.element);
      flames.push(waiting);
    }
    if (t.grown && t.grown.length) {
      parts.push(h("h3", {}, "Functions whose share grew most"), functionTable(t.grown, true));
    }
    rest.push(section("Where the time goes: profile of the target", ...parts));
  }
  return { saturation, rest, flames };
}
