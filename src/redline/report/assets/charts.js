// redline's charts: line and bar charts in SVG, with hover values, legend toggles and
// drag-to-zoom on time shared by every chart of a zoom group. No dependencies.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const HEIGHT = 250;
const MARGIN = { left: 58, right: 14, top: 12, bottom: 26 };
const zooms = {}; // zoom group -> [x0, x1]
const hidden = {}; // chart id -> Set of hidden series names
const registry = []; // {box, spec}

function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  const f = (v) => r0 + ((v - d0) / span) * (r1 - r0);
  f.invert = (p) => d0 + ((p - r0) / (r1 - r0)) * span;
  // integer: counts get whole-number ticks (a step of at least 1, and a whole one)
  f.ticks = (count, integer) => {
    let step = niceStep(span, count);
    if (integer) step = Math.max(1, Math.ceil(step));
    const out = [];
    for (let v = Math.ceil(d0 / step) * step; v <= d1 + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  };
  return f;
}

function logScale(d0, d1, r0, r1) {
  if (!(d1 > 0)) d1 = 10;
  if (!(d0 > 0) || d0 >= d1) d0 = d1 / 10;
  const l0 = Math.log10(d0);
  const l1 = Math.log10(d1);
  const span = l1 - l0 || 1;
  const f = (v) => r0 + ((Math.log10(Math.max(v, d0 / 10)) - l0) / span) * (r1 - r0);
  f.invert = (p) => Math.pow(10, l0 + ((p - r0) / (r1 - r0)) * span);
  f.ticks = () => {
    const out = [];
    const steps = span > 3 ? [1] : span > 1.2 ? [1, 3] : [1, 2, 5];
    for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
      for (const m of steps) {
        const v = m * Math.pow(10, e);
        if (v >= d0 * 0.999 && v <= d1 * 1.001) out.push(v);
      }
    }
    return out;
  };
  return f;
}

function nearest(xs, value) {
  let lo = 0;
  let hi = xs.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < value) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[lo] - value) <= Math.abs(xs[hi] - value) ? lo : hi;
}

function yDomain(spec, series, x0, x1) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    const xs = s.x || spec.x;
    s.y.forEach((v, i) => {
      if (v === null || v === undefined || xs[i] < x0 || xs[i] > x1) return;
      if (spec.yLog && v <= 0) return;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    });
  }
  if (!isFinite(lo)) return spec.yLog ? [0.1, 1] : [0, 1];
  if (spec.yLog) return [lo / 1.3, hi * 1.3];
  if (spec.yInteger) return [0, Math.max(1, hi * 1.08)];
  return [0, hi > 0 ? hi * 1.08 : 1];
}

// Draw one chart into `box` (a .chart-box element); `spec` says what:
// {id, title, x, series: [{name, y, x?, color, dash}], xFormat, yFormat, yLog, yInteger, xTicks, xFrom,
//  zoomGroup, bands: [{start_s, end_s, label, kind}], bars: {edges, counts}, xLog}
function drawChart(box, spec) {
  box.replaceChildren();
  box.classList.add("chart-box");
  const width = Math.max(320, box.clientWidth || 640);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const off = hidden[spec.id] || (hidden[spec.id] = new Set());
  const root = svgEl("svg", {
    class: "chart",
    "data-chart": spec.id,
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    "aria-label": spec.title,
  });
  const title = document.createElement("div");
  title.className = "chart-title";
  title.textContent = spec.title;
  box.append(title, root);

  const bars = spec.bars;
  const xsAll = bars ? bars.edges : spec.x;
  let x0 = xsAll.length ? Math.min(...xsAll) : 0;
  let x1 = xsAll.length ? Math.max(...xsAll) : 1;
  if (spec.xFrom !== undefined) x0 = Math.min(x0, spec.xFrom);
  const zoom = spec.zoomGroup && zooms[spec.zoomGroup];
  if (zoom) [x0, x1] = zoom;
  if (x0 === x1) x1 = x0 + 1;
  const xScale = (spec.xLog ? logScale : linearScale)(x0, x1, 0, plotW);
  const visible = (spec.series || []).filter((s) => !off.has(s.name));
  const [y0, y1] = bars
    ? [0, Math.max(1, ...bars.counts) * 1.08]
    : yDomain(spec, visible, x0, x1);
  const yScale = (spec.yLog ? logScale : linearScale)(y0, y1, plotH, 0);

  const clipId = `clip-${spec.id}`;
  const defs = svgEl("defs");
  const clip = svgEl("clipPath", { id: clipId });
  clip.append(svgEl("rect", { x: 0, y: 0, width: plotW, height: plotH }));
  defs.append(clip);
  root.append(defs);
  const plot = svgEl("g", { transform: `translate(${MARGIN.left},${MARGIN.top})` });
  root.append(plot);

  // axes and grid
  const grid = svgEl("g", { class: "grid" });
  for (const v of yScale.ticks(5, spec.yInteger || !!bars)) {
    const y = yScale(v);
    grid.append(svgEl("line", { x1: 0, x2: plotW, y1: y, y2: y }));
    const label = svgEl("text", { x: -6, y: y + 4, "text-anchor": "end", class: "tick" });
    label.textContent = (spec.yFormat || String)(v);
    grid.append(label);
  }
  const xTicks = spec.xTicks ? spec.xTicks.filter((v) => v >= x0 && v <= x1) : xScale.ticks(8);
  for (const v of xTicks) {
    const x = xScale(v);
    grid.append(svgEl("line", { x1: x, x2: x, y1: 0, y2: plotH, class: "xgrid" }));
    const label = svgEl("text", { x, y: plotH + 17, "text-anchor": "middle", class: "tick" });
    label.textContent = (spec.xFormat || String)(v);
    grid.append(label);
  }
  plot.append(grid);

  const inner = svgEl("g", { "clip-path": `url(#${clipId})` });
  plot.append(inner);
  for (const band of spec.bands || []) {
    const a = Math.max(0, xScale(band.start_s));
    const b = Math.min(plotW, xScale(band.end_s));
    if (b <= a) continue;
    inner.append(
      svgEl("rect", { class: `band band-${band.kind}`, x: a, y: 0, width: b - a, height: plotH })
    );
    const label = svgEl("text", { x: a + 4, y: 12, class: `band-label band-label-${band.kind}` });
    label.textContent = band.label;
    inner.append(label);
  }

  if (bars) {
    bars.counts.forEach((count, i) => {
      if (!count) return;
      const a = xScale(bars.edges[i]);
      const b = xScale(bars.edges[i + 1]);
      inner.append(
        svgEl("rect", {
          class: "bar",
          x: a + 0.5,
          y: yScale(count),
          width: Math.max(1, b - a - 1),
          height: plotH - yScale(count),
        })
      );
    });
  }
  for (const s of visible) {
    const xs = s.x || spec.x;
    let d = "";
    let pen = false;
    s.y.forEach((v, i) => {
      if (v === null || v === undefined || (spec.yLog && v <= 0)) {
        pen = false;
        return;
      }
      const x = xScale(xs[i]).toFixed(1);
      const y = yScale(v).toFixed(1);
      d += `${pen ? "L" : "M"}${x},${y}`;
      pen = true;
    });
    const attrs = { class: "line", d, stroke: s.color, "data-series": s.name };
    if (s.dash) attrs["stroke-dasharray"] = s.dash;
    inner.append(svgEl("path", attrs));
  }

  // legend: click a name to hide or show its line
  if ((spec.series || []).length) {
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const s of spec.series) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = off.has(s.name) ? "legend-item off" : "legend-item";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.color;
      swatch.style.borderColor = s.color;
      if (s.dash) swatch.classList.add("dashed");
      item.append(swatch, document.createTextNode(s.name));
      item.addEventListener("click", () => {
        if (off.has(s.name)) off.delete(s.name);
        else off.add(s.name);
        drawChart(box, spec);
      });
      legend.append(item);
    }
    box.append(legend);
  }

  // hover values, and drag to zoom
  const cursor = svgEl("line", { class: "cursor", y1: 0, y2: plotH, visibility: "hidden" });
  const selection = svgEl("rect", { class: "selection", y: 0, height: plotH, width: 0 });
  const dots = svgEl("g");
  plot.append(cursor, dots, selection);
  const overlay = svgEl("rect", { class: "overlay", width: plotW, height: plotH });
  plot.append(overlay);
  const tip = document.createElement("div");
  tip.className = "tip";
  box.append(tip);
  let dragFrom = null;

  const pointerX = (event) => {
    const rect = root.getBoundingClientRect();
    return Math.min(plotW, Math.max(0, event.clientX - rect.left - MARGIN.left));
  };
  overlay.addEventListener("mousemove", (event) => {
    const px = pointerX(event);
    if (dragFrom !== null) {
      selection.setAttribute("x", Math.min(dragFrom, px));
      selection.setAttribute("width", Math.abs(px - dragFrom));
    }
    const lines = bars ? barTip(bars, xScale.invert(px), spec) : lineTip(spec, visible, xScale.invert(px));
    if (!lines) return;
    const x = xScale(lines.x);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
    cursor.setAttribute("visibility", "visible");
    dots.replaceChildren();
    for (const p of lines.points) {
      dots.append(svgEl("circle", { cx: x, cy: yScale(p.y), r: 3, fill: p.color, class: "dot" }));
    }
    tip.replaceChildren();
    const head = document.createElement("div");
    head.className = "tip-head";
    head.textContent = lines.head;
    tip.append(head);
    for (const row of lines.rows) {
      const line = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = row.color || "transparent";
      line.append(swatch, document.createTextNode(row.text));
      tip.append(line);
    }
    tip.style.display = "block";
    const left = MARGIN.left + x + 12;
    tip.style.left = `${left + tip.offsetWidth > width ? MARGIN.left + x - tip.offsetWidth - 12 : left}px`;
    tip.style.top = `${MARGIN.top + 24}px`;
  });
  overlay.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    dots.replaceChildren();
    tip.style.display = "none";
    dragFrom = null;
    selection.setAttribute("width", 0);
  });
  if (spec.zoomGroup) {
    overlay.classList.add("zoomable");
    overlay.addEventListener("mousedown", (event) => {
      dragFrom = pointerX(event);
      event.preventDefault();
    });
    overlay.addEventListener("mouseup", (event) => {
      if (dragFrom === null) return;
      const px = pointerX(event);
      const [a, b] = [Math.min(dragFrom, px), Math.max(dragFrom, px)];
      dragFrom = null;
      selection.setAttribute("width", 0);
      if (b - a < 5) return;
      zooms[spec.zoomGroup] = [xScale.invert(a), xScale.invert(b)];
      redrawGroup(spec.zoomGroup);
    });
    overlay.addEventListener("dblclick", () => {
      delete zooms[spec.zoomGroup];
      redrawGroup(spec.zoomGroup);
    });
    if (zoom) {
      const reset = document.createElement("button");
      reset.type = "button";
      reset.className = "reset-zoom";
      reset.textContent = "reset zoom";
      reset.addEventListener("click", () => {
        delete zooms[spec.zoomGroup];
        redrawGroup(spec.zoomGroup);
      });
      box.append(reset);
    }
  }
  const known = registry.find((entry) => entry.box === box);
  if (known) known.spec = spec;
  else registry.push({ box, spec });
}

function lineTip(spec, series, xValue) {
  const xs = spec.x;
  if (!xs.length || !series.length) return null;
  const i = nearest(xs, xValue);
  const points = [];
  const rows = [];
  for (const s of series) {
    const sx = s.x || xs;
    const j = s.x ? nearest(sx, xs[i]) : i;
    const v = s.y[j];
    if (v === null || v === undefined) continue;
    points.push({ y: v, color: s.color });
    rows.push({ color: s.color, text: `${s.name}: ${(spec.valueFormat || spec.yFormat || String)(v)}` });
  }
  return { x: xs[i], head: (spec.xTipFormat || spec.xFormat || String)(xs[i]), points, rows };
}

function barTip(bars, xValue, spec) {
  const edges = bars.edges;
  if (edges.length < 2) return null;
  let i = 0;
  while (i < edges.length - 2 && edges[i + 1] <= xValue) i++;
  const total = bars.counts.reduce((a, b) => a + b, 0) || 1;
  const count = bars.counts[i];
  return {
    x: Math.sqrt(edges[i] * edges[i + 1]),
    head: `${spec.xFormat(edges[i])} - ${spec.xFormat(edges[i + 1])}`,
    points: [],
    rows: [{ text: `${count.toLocaleString("en-US")} requests (${((100 * count) / total).toFixed(2)}%)` }],
  };
}

function redrawGroup(group) {
  for (const entry of registry) {
    if (entry.spec.zoomGroup === group && entry.box.isConnected) drawChart(entry.box, entry.spec);
  }
}

function forgetCharts() {
  registry.length = 0;
}

window.addEventListener("resize", () => {
  for (const entry of registry) if (entry.box.isConnected) drawChart(entry.box, entry.spec);
});
