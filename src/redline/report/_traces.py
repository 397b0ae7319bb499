"""Traces for the terminal: where each endpoint's p50 and p99 go, spans per request."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from redline.core import SpanShare, TraceReport

__all__ = ["attribution_line", "render_traces"]


def attribution_line(endpoint: str, band: str, shares: tuple[SpanShare, ...], top: int = 4) -> str:
    """``p99 of checkout: 71% payments charge, 18% orders db.query, 11% others``."""
    shown = [f"{s.share:.0%} {s.service} {s.span}" for s in shares[:top]]
    rest = sum(s.share for s in shares[top:])
    if rest >= 0.005:
        shown.append(f"{rest:.0%} others")
    return f"{band} of {endpoint}: " + ", ".join(shown)


def render_traces(traces: TraceReport) -> RenderableType:
    """The attribution per endpoint and band, spans per request, and the counts."""
    parts: list[RenderableType] = []
    for endpoint, bands in traces.attribution.items():
        for band, shares in bands.items():
            parts.append(Text(attribution_line(endpoint, band, shares)))
        if endpoint in traces.grown:
            parts.append(Text(f"  slower at p99 than at p50: {traces.grown[endpoint]}"))
    for endpoint, names in traces.spans_per_request.items():
        busy = [f"{count:g} {name}" for name, count in names.items() if count >= 2]
        if busy:
            parts.append(Text(f"{endpoint}: spans per request (median): {', '.join(busy)}"))
    counts = traces.counts
    if counts:
        parts.append(
            Text(
                f"traces: {counts.get('joined', 0)} joined, {counts.get('unjoined', 0)} without "
                f"spans, {counts.get('received', 0)} spans received, "
                f"{counts.get('dropped', 0)} dropped, {counts.get('orphans', 0)} orphans, "
                f"{counts.get('clamped', 0)} clamped (clock skew)",
                style="dim",
            )
        )
    if traces.exemplars:
        slowest = traces.exemplars[0]
        parts.append(
            Text(
                f"slowest traced request: {slowest.endpoint} {slowest.latency_ms:.1f} ms, "
                f"trace {slowest.trace_id}",
                style="dim",
            )
        )
    return Group(*parts)
