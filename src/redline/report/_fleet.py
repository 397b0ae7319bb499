"""The fleet page (``capacity place --html``, ``capacity contend --html``).

Nodes and their pods, utilisation, the traffic that crosses nodes, and what contention does.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["fleet_html"]

_NODE_W, _NODE_H, _GAP, _PER_ROW = 150, 200, 12, 6
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b")  # fmt: skip


def _colours(place: Mapping[str, Any]) -> dict[str, str]:
    names = [s["name"] for s in place.get("services", [])]
    for node in place["nodes"]:
        names += [n for n in node["services"] if n not in names]
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _nodes_svg(place: Mapping[str, Any]) -> str:
    nodes = place["nodes"]
    colours = _colours(place)
    cpu_of = {s["name"]: float(s["cpu"]) for s in place.get("services", [])}
    rows = -(-len(nodes) // _PER_ROW) or 1
    width = _PER_ROW * (_NODE_W + _GAP)
    legend_y = rows * (_NODE_H + _GAP)
    legend_rows = -(-len(colours) // 6)
    height = legend_y + 16 * legend_rows + 4
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="nodes and their pods">']  # fmt: skip
    inner = _NODE_H - 40
    for i, node in enumerate(nodes):
        x = (i % _PER_ROW) * (_NODE_W + _GAP)
        y = (i // _PER_ROW) * (_NODE_H + _GAP)
        parts.append(f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" '
                     'fill="#fff" stroke="#999"/>')  # fmt: skip
        parts.append(f'<text x="{x + 4}" y="{y + 13}">{html.escape(node["name"])}</text>')
        # each pod a block as tall as its CPU request is of the node's CPU
        cursor = float(y + 20 + inner)
        for name in node["services"]:
            share = cpu_of.get(name, 0.0) / float(node["cpu"]) if node["cpu"] else 0.0
            pod_h = max(inner * share, 2.0)
            cursor -= pod_h
            parts.append(f'<rect x="{x + 4}" y="{cursor:.1f}" width="{_NODE_W - 40}" '
                         f'height="{pod_h:.1f}" fill="{colours[name]}" stroke="#fff">'
                         f'<title>{html.escape(name)}</title></rect>')  # fmt: skip
            if pod_h >= 11:
                parts.append(f'<text x="{x + 7}" y="{cursor + pod_h / 2 + 4:.1f}">'
                             f"{html.escape(name)}</text>")  # fmt: skip
        for j, (label, value) in enumerate((("cpu", node["cpu_utilisation"]),
                                            ("mem", node["memory_utilisation"]))):  # fmt: skip
            bx = x + _NODE_W - 30 + j * 13
            bar = inner * min(value, 1.0)
            parts.append(f'<rect x="{bx}" y="{y + 20}" width="10" height="{inner}" '
                         'fill="#eee"/>')  # fmt: skip
            parts.append(f'<rect x="{bx}" y="{y + 20 + inner - bar:.1f}" width="10" '
                         f'height="{bar:.1f}" fill="#555"><title>{label} {value:.0%}</title>'
                         "</rect>")  # fmt: skip
        parts.append(f'<text x="{x + 4}" y="{y + _NODE_H - 6}">cpu {node["cpu_utilisation"]:.0%}'
                     f' mem {node["memory_utilisation"]:.0%}</text>')  # fmt: skip
    for k, (name, colour) in enumerate(colours.items()):
        lx, ly = (k % 6) * (_NODE_W + _GAP), legend_y + 16 * (k // 6)
        parts.append(f'<rect x="{lx}" y="{ly + 2}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{ly + 11}">{html.escape(name)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _summary_rows(place: Mapping[str, Any]) -> str:
    rows = []
    for name, row in (("CP-SAT", place), ("traffic-blind", place["traffic_blind"]),
                      ("first-fit-decreasing", place["baseline"])):  # fmt: skip
        gap = row.get("gap")
        rows.append(
            f"<tr><td>{name}</td><td class=num>{row['node_count']}</td>"
            f"<td class=num>{row['cost_per_hour']:,.2f}</td>"
            f"<td class=num>{row['cross_node_rps']:,.0f}</td>"
            f"<td class=num>{row['cross_node_share']:.0%}</td>"
            f"<td class=num>{'-' if gap is None else f'{gap:.1%}'}</td></tr>"
        )
    return "".join(rows)


def _links(place: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{html.escape(link['from'])} &rarr; {html.escape(link['to'])}</td>"
        f"<td class=num>{link['rps']:,.0f}</td><td class=num>{link['cross_node_rps']:,.0f}</td>"
        f'<td><span class=bar style="width:{100 * link["cross_node_rps"] / link["rps"]:.0f}px">'
        "</span></td></tr>"
        for link in place.get("links", [])[:30] if link["rps"] > 0
    ]  # fmt: skip
    if not rows:
        return ""
    return ("<h2>traffic between services</h2><table><tr><th>link</th><th>req/s</th>"
            "<th>crossing nodes</th><th></th></tr>" + "".join(rows) + "</table>")  # fmt: skip


def _contend(contend: Mapping[str, Any]) -> str:
    out = ["<h2>QoS classes</h2><table><tr><th>service</th><th>priority</th><th>QoS</th></tr>"]
    out += [
        f"<tr><td>{html.escape(r['service'])}</td><td>{html.escape(r['priority'])} "
        f"({r['priority_value']})</td><td>{r['qos']}</td></tr>"
        for r in contend["qos"]
    ]
    out.append("</table><h2>quotas at peak</h2><table><tr><th>namespace</th><th>resource</th>"
               "<th>quota</th><th>steady</th><th>peak</th><th>covers</th></tr>")  # fmt: skip
    out += [f"<tr><td>{html.escape(r['namespace'])}</td><td>{r['resource']}</td>"
            f"<td class=num>{r['quota']}</td><td class=num>{r['steady']}</td>"
            f"<td class=num>{r['peak']}</td><td>{'yes' if r['covers'] else 'NO'}</td></tr>"
            for r in contend["quotas"]]  # fmt: skip
    out.append("</table>")
    spike = contend.get("spike")
    if spike is not None:
        without = {s["name"]: s for s in contend["spike_without_preemption"]["services"]}
        out.append(f"<h2>spike ({spike['duration_s']:.0f} s)</h2><table><tr><th>service</th>"
                   "<th>priority</th><th>peak ready</th><th>worst modelled latency</th>"
                   "<th>SLO</th><th>preempted</th><th>longest wait</th>"
                   "<th>SLO without preemption</th></tr>")  # fmt: skip
        for s in spike["services"]:
            worst = (
                "-"
                if s["slo"] is None
                else (
                    "unbounded" if s["max_latency_ms"] is None else f"{s['max_latency_ms']:.0f} ms"
                )
            )
            other = without[s["name"]]
            out.append(
                f"<tr><td>{html.escape(s['name'])}</td><td>{html.escape(s['priority'])}</td>"
                f"<td class=num>{s['peak_ready']}</td><td class=num>{worst}</td>"
                f"<td>{_kept(s)}</td><td class=num>{s['preempted']}</td>"
                f"<td class=num>{s['max_wait_s']:.0f} s</td><td>{_kept(other)}</td></tr>"
            )  # fmt: skip
        out.append("</table><p>" + html.escape(
            f"{len(spike['preemptions'])} pods preempted; only lower priorities: "
            f"{'yes' if spike['preempted_only_lower'] else 'NO'}; the highest priority kept "
            f"its SLO: {'yes' if spike['top_priority_kept_slo'] else 'NO'}") + "</p>")  # fmt: skip
        added = spike.get("nodes_added")
        if added is not None:
            out.append("<p>" + html.escape(
                f"the cluster autoscaler added {len(added)} "
                f"{'node' if len(added) == 1 else 'nodes'}: " + (", ".join(
                    f"{n['name']} (asked at {n['asked_t']:.0f} s, ready at {n['ready_t']:.0f} s)"
                    for n in added) or "none")) + "</p>")  # fmt: skip
        out.append(_timeline_svg(spike))
    measured = contend.get("measured")
    if measured is not None:
        out.append(
            "<h2>measured on this machine</h2><table><tr><th>route</th><th>requests</th>"
            "<th>p50</th><th>p99</th><th>shed</th></tr>"
            + "".join(
                f"<tr><td>{name} priority</td><td class=num>{m['requests']:,}</td>"
                f"<td class=num>{m['p50_ms']:.1f} ms</td><td class=num>{m['p99_ms']:.1f} ms</td>"
                f"<td class=num>{m['shed_share']:.1%}</td></tr>"
                for name, m in (("high", measured["high"]), ("low", measured["low"]))
            )
            + "</table><p>"
            + html.escape(f"{measured['rate']:.0f} req/s against {measured['capacity_rps']:.0f}"
                          f" req/s of capacity; {measured['slo']} on the high-priority route: "
                          f"{'kept' if measured['high_kept_slo'] else 'MISSED'}")
            + "</p>"
        )  # fmt: skip
    return "".join(out)


def _timeline_svg(spike: Mapping[str, Any]) -> str:
    """Ready replicas of each service through the spike, and the preemptions.

    Pending replicas are dashed; each preemption is a red tick on the time axis.
    """
    timeline = spike.get("timeline") or []
    if not timeline:
        return ""
    names = [s["name"] for s in spike["services"]]
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    width, height, left, bottom = 900, 240, 40, 20
    end = float(timeline[-1]["t"]) or 1.0
    top = max(max(row[n]["ready"] + row[n]["pending"] for n in names) for row in timeline) or 1

    def x(t: float) -> float:
        return left + (width - left - 10) * t / end

    def y(v: float) -> float:
        return height - bottom - (height - bottom - 10) * v / top

    parts = [f'<svg viewBox="0 0 {width} {height + 16 * (-(-len(names) // 6))}" role="img" '
             'aria-label="replicas through the spike">',
             f'<text x="2" y="{y(top) + 4:.0f}">{top}</text><text x="2" y="{y(0):.0f}">0</text>',
             f'<text x="{width - 40}" y="{height - 4}">{end:.0f} s</text>']  # fmt: skip
    for name in names:
        for key, dash in (("ready", ""), ("pending", ' stroke-dasharray="4 3"')):
            if not any(row[name][key] for row in timeline):
                continue
            points = " ".join(f"{x(row['t']):.1f},{y(row[name][key]):.1f}" for row in timeline)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[name]}" '
                         f'stroke-width="1.5"{dash}><title>{html.escape(name)} {key}</title>'
                         "</polyline>")  # fmt: skip
    for eviction in spike.get("preemptions", []):
        tx = x(float(eviction["t"]))
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{height - bottom}" '
                     f'y2="{height - bottom + 6}" stroke="#c00"><title>'
                     f'{html.escape(eviction["preemptor"])} preempted '
                     f'{html.escape(eviction["victim"])}</title></line>')  # fmt: skip
    for k, name in enumerate(names):
        lx, ly = (k % 6) * 150, height + 16 * (k // 6)
        parts.append(f'<rect x="{lx}" y="{ly + 2}" width="10" height="10" '
                     f'fill="{colours[name]}"/><text x="{lx + 14}" y="{ly + 11}">'
                     f"{html.escape(name)}</text>")  # fmt: skip
    parts.append("</svg>")
    return ("<h3>replicas through the spike (ready solid, pending dashed; red ticks: "
            "preemptions)</h3>" + "".join(parts))  # fmt: skip


def _kept(service: Mapping[str, Any]) -> str:
    if service["kept_slo"] is None:
        return "-"
    return "kept" if service["kept_slo"] else f"missed {service['slo_violation_s']:.0f} s"


def fleet_html(place: Mapping[str, Any] | None, contend: Mapping[str, Any] | None = None) -> str:
    """The page for place.json (and contend.json's data, when given)."""
    body = []
    if place is not None:
        buy = ", ".join(f"{b['count']} x {html.escape(b['type'])} in {html.escape(b['zone'])}"
                        for b in place.get("node_types", []))  # fmt: skip
        body.append(
            "<h2>placement</h2><table><tr><th></th><th>nodes</th><th>cost/h</th>"
            "<th>cross-node req/s</th><th>share</th><th>gap</th></tr>"
            f"{_summary_rows(place)}</table><p>buy: {buy}</p>"
            f"<h2>nodes and their pods</h2>{_nodes_svg(place)}{_links(place)}"
        )
    if contend is not None:
        body.append(_contend(contend))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>redline fleet</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
svg {{ width: 100%; max-width: 960px; background: #fafafa; }}
svg text {{ font-size: 10px; fill: #333; }}
.bar {{ display: inline-block; height: 10px; background: #c44; }}
</style></head><body>
<h1>redline fleet</h1>
{"".join(body)}
</body></html>
"""
