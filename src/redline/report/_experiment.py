"""A chaos experiment's journal as a self-contained HTML page.

Chaos Toolkit's shape: the steady-state hypothesis before and after (each objective's
verdict), the method's actions on a timeline (a host fault as a bar for as long as it was
on), the rollbacks, and how the experiment ended.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["experiment_html"]

_STATUS_COLOURS = {"completed": "#27ae60", "deviated": "#c0392b", "aborted": "#c0392b"}


def _probe(title: str, probe: Mapping[str, Any] | None) -> str:
    if probe is None:
        return f"<h2>{title}</h2><p>not probed</p>"
    holds = "holds" if probe.get("holds") else "does not hold"
    rows = "".join(
        f'<tr class="{html.escape(str(v.get("outcome", "")))}">'
        f"<td>{html.escape(str(v.get('objective', {}).get('name', '')))}</td>"
        f"<td>{html.escape(str(v.get('outcome', '')))}</td>"
        f"<td>{html.escape(str(v.get('reason', '')))}</td></tr>"
        for v in probe.get("verdicts", [])
    )
    return (
        f"<h2>{title}: {holds}</h2><p>run {html.escape(str(probe.get('run', '')))}</p>"
        f"<table><tr><th>objective</th><th>outcome</th><th>why</th></tr>{rows}</table>"
    )


def _timeline(method: Sequence[Mapping[str, Any]]) -> str:
    """An SVG: one row per action, from its start for as long as it lasted (or was on)."""
    spans = []
    for entry in method:
        start = float(entry.get("at_s", 0.0))
        length = float(entry.get("for_s", entry.get("seconds", 0.0)))
        spans.append((str(entry.get("what", entry.get("action", ""))), start, length, entry))
    if not spans:
        return ""
    end = max(start + length for _, start, length, _ in spans) or 1.0
    width, row, left = 720, 22, 260
    scale = (width - left - 10) / end
    bars = []
    for index, (what, start, length, entry) in enumerate(spans):
        y = 20 + index * row
        colour = (
            "#c0392b"
            if not entry.get("ok", True)
            else ("#e67e22" if entry.get("action") == "fault" else "#3498db")
        )
        bars.append(
            f'<text x="0" y="{y + 13}">{html.escape(what[:40])}</text>'
            f'<rect x="{left + start * scale:.1f}" y="{y}" width="{max(2.0, length * scale):.1f}" '
            f'height="{row - 6}" fill="{colour}"><title>{html.escape(what)}: '
            f"{start:.1f} s + {length:.1f} s</title></rect>"
        )
    height = 30 + len(spans) * row
    ticks = "".join(
        f'<text x="{left + t * scale:.1f}" y="12" class="tick">{t:.0f} s</text>'
        for t in _ticks(end)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="the method over time">'
        f"{ticks}{''.join(bars)}</svg>"
    )


def _ticks(end: float) -> list[float]:
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9) if end / s <= 8)
    return [i * step for i in range(int(end // step) + 1)]


def _actions(title: str, entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return ""
    rows = "".join(
        "<tr>"
        f'<td class="num">{float(e.get("at_s", 0.0)):.1f} s</td>'
        f"<td>{html.escape(str(e.get('what', '')))}</td>"
        f"<td>{'ok' if e.get('ok') else 'failed: ' + html.escape(str(e.get('error', '')))}</td>"
        f"<td>{html.escape(str(e.get('detail') or ''))}"
        f"{' via ' + html.escape(str(e['via'])) if e.get('via') else ''}"
        f"{' run ' + html.escape(str(e['run'])) if e.get('run') else ''}</td></tr>"
        for e in entries
    )
    return (
        f"<h2>{title}</h2><table><tr><th>at</th><th>action</th><th>outcome</th>"
        f"<th>detail</th></tr>{rows}</table>"
    )


def experiment_html(journal: Mapping[str, Any]) -> str:
    """The page of one experiment's journal (``Journal.to_dict()``)."""
    title = str(journal.get("title", "experiment"))
    status = str(journal.get("status", ""))
    colour = _STATUS_COLOURS.get(status, "#777")
    error = journal.get("error")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>redline experiment: {html.escape(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }}
.status {{ display: inline-block; padding: 2px 10px; color: #fff; background: {colour}; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.fail td {{ color: #c0392b; }} svg text {{ font-size: 12px; }} .tick {{ fill: #777; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><span class="status">{html.escape(status)}</span> started
{html.escape(str(journal.get("started_at", "")))}{
        f"; {html.escape(str(error))}" if error else ""
    }</p>
{_probe("Steady state before the method", journal.get("before"))}
<h2>The method over time</h2>
{_timeline(journal.get("method", [])) or "<p>no actions</p>"}
{_actions("Method", journal.get("method", []))}
{_probe("Steady state after the method", journal.get("after"))}
{_actions("Rollbacks", journal.get("rollbacks", []))}
</body></html>
"""
