"""The HTML report of a replay: per policy, replicas against the demand over time.

Self-contained (inline SVG and CSS, no script, no network request), drawn from the plain
data of ``replay.json`` so a stored replay can be drawn again.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["replay_html"]

_W, _H, _PAD = 960, 240, 40
_MAX_POINTS = 1200


def _thin(ticks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """At most ``_MAX_POINTS`` ticks, keeping each stretch's largest demand and replicas."""
    if len(ticks) <= _MAX_POINTS:
        return list(ticks)
    size = math.ceil(len(ticks) / _MAX_POINTS)
    out: list[Mapping[str, Any]] = []
    for start in range(0, len(ticks), size):
        chunk = ticks[start : start + size]
        demand = [t["demand"] for t in chunk if t["demand"] is not None]
        out.append(
            {
                "t": chunk[0]["t"],
                "demand": max(demand) if demand else None,
                "replicas": max(t["replicas"] for t in chunk),
                "ready": min(t["ready"] for t in chunk),
                "desired": max(t["desired"] for t in chunk),
            }
        )
    return out


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def _chart(name: str, ticks: Sequence[Mapping[str, Any]], capacity: float) -> str:
    thin = _thin(ticks)
    if not thin:
        return ""
    end = max(float(thin[-1]["t"]), 1.0)
    needed = [math.ceil(t["demand"] / capacity) if t["demand"] is not None else None for t in thin]
    top = int(max([int(t["replicas"]) for t in thin] + [n or 0 for n in needed] + [1]))

    def x(t: float) -> float:
        return _PAD + (_W - 2 * _PAD) * t / end

    def y(v: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * v / top

    shade = []
    for tick, need in zip(thin, needed, strict=True):
        if need is not None and tick["ready"] < need:
            shade.append(
                f'<rect class="short" x="{x(tick["t"]):.1f}" y="{_PAD}" width="2" '
                f'height="{_H - 2 * _PAD}"/>'
            )
    lines = []
    demand_points = [(x(t["t"]), y(n)) for t, n in zip(thin, needed, strict=True) if n is not None]
    lines.append(f'<path class="need" d="{_path(demand_points)}"/>')
    lines.append(f'<path class="ready" d="{_path([(x(t["t"]), y(t["ready"])) for t in thin])}"/>')
    lines.append(
        f'<path class="replicas" d="{_path([(x(t["t"]), y(t["replicas"])) for t in thin])}"/>'
    )
    hours = end / 3600
    ticks_x = "".join(
        f'<text x="{x(h * 3600):.1f}" y="{_H - 12}">{h:g} h</text>'
        for h in range(0, int(hours) + 1, max(1, int(hours) // 8 or 1))
    )
    ticks_y = "".join(
        f'<text x="4" y="{y(v) + 4:.1f}">{v}</text>' for v in sorted({0, top // 2, top})
    )
    return (
        f"<figure><figcaption>{html.escape(name)}</figcaption>"
        f'<svg viewBox="0 0 {_W} {_H}" role="img" data-policy="{html.escape(name)}">'
        f"{''.join(shade)}{''.join(lines)}{ticks_x}{ticks_y}</svg></figure>"
    )


def replay_html(document: Mapping[str, Any]) -> str:
    """The page for ``replay.json``'s data: a scores table and a chart per policy."""
    model = document["model"]
    capacity = float(model["capacity_rps"])
    rows = []
    for policy in document["policies"]:
        s = policy["scores"]
        e = s["elasticity"]
        rows.append(
            "<tr>"
            f"<td>{html.escape(policy['name'])}</td>"
            f'<td class="num">{s["violation_minutes"]:.1f}</td>'
            f'<td class="num">{s["replica_hours"]:,.1f}</td>'
            f'<td class="num">{s["cost"]:,.2f}</td>'
            f'<td class="num">{s["scale_events"]}</td>'
            f'<td class="num">{e["under_accuracy_pct"]:.1f}</td>'
            f'<td class="num">{e["over_accuracy_pct"]:.1f}</td>'
            f'<td class="num">{e["under_timeshare_pct"]:.1f}</td>'
            f'<td class="num">{e["over_timeshare_pct"]:.1f}</td>'
            f'<td class="num">{e["instability_pct"]:.1f}</td>'
            "</tr>"
        )
    charts = "".join(_chart(p["name"], p["ticks"], capacity) for p in document["policies"])
    trace = document["trace"]
    head = (
        "<tr><th>policy</th><th>SLO violation (min)</th><th>replica-hours</th><th>cost</th>"
        "<th>scale events</th><th>under-provisioning accuracy %</th>"
        "<th>over-provisioning accuracy %</th><th>under-provisioned time %</th>"
        "<th>over-provisioned time %</th><th>instability %</th></tr>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>redline capacity replay</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
svg {{ width: 100%; max-width: {_W}px; background: #fafafa; }}
svg text {{ font-size: 11px; fill: #666; }}
path {{ fill: none; stroke-width: 1.5; }}
path.need {{ stroke: #888; stroke-dasharray: 4 3; }} path.ready {{ stroke: #1f77b4; }}
path.replicas {{ stroke: #ff7f0e; stroke-width: 1; }} rect.short {{ fill: #f4cccc; }}
figcaption {{ font-weight: 600; margin: 1em 0 .3em; }}
</style></head><body>
<h1>Autoscaling replay</h1>
<p>Trace {html.escape(str(trace["source"]))}: {trace["duration_s"] / 3600:.1f} h at
{trace["resolution_s"]:g} s, peak {trace["peak_rps"]:,.0f} req/s. One replica holds the SLO
up to {capacity:,.0f} req/s and serves {model["startup_s"]:g} s after it is asked for.</p>
<table id="scores">{head}{"".join(rows)}</table>
<p>Charts: replicas needed for the SLO (dashed), ready (blue), asked for (orange); red:
fewer ready than needed. Elasticity: SPEC Research Group metrics (Herbst et al. 2018),
normalised by demand.</p>
{charts}
</body></html>
"""
