"""The critical path through a trace, and where a latency band's time goes.

The critical path is the chain of spans that decides when the trace ends. Walking back
from a span's end: the child that finished last (before the cursor) is on the path; the
time between its end and the cursor is the span's own (``self``) time; the cursor moves
to that child's start, and so on, then the walk descends into each chosen child. Children
that ran in parallel with a chosen one are not on the path: overlapping time is counted
once. A child that starts before its parent or ends after it (clocks of two hosts that
disagree) is clamped to its parent and counted as ``clamped``.

Attribution sums each (service, span) segment of the path over a band's traces: the p50
band is the requests between the endpoint's 40th and 60th percentiles, the p99 band those
at or above its 98th (percentiles of the run's own histograms, so a band means the same
as in the summary).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from redline.core import (
    EndpointInterval,
    Exemplar,
    RunResult,
    Span,
    SpanShare,
    TraceReport,
    Waterfall,
)

__all__ = [
    "BANDS",
    "attribute",
    "calls_per_request",
    "critical_path",
    "slower_spans",
    "trace_report",
]

BANDS = {"p50": (40.0, 60.0), "p99": (98.0, 100.0)}
"""The latency bands attributed: percentile ranges of each endpoint's latency."""


def _children(spans: Sequence[Span]) -> tuple[list[Span], dict[str, list[Span]], int]:
    """The roots, each span's children, and how many spans had a parent that never came."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    roots: list[Span] = []
    orphans = 0
    for span in spans:
        if span.parent_id is None:
            roots.append(span)
        elif span.parent_id in ids:
            children[span.parent_id].append(span)
        else:
            orphans += 1
            roots.append(span)  # its parent is not here: it stands for itself
    return roots, children, orphans


def critical_path(spans: Sequence[Span]) -> tuple[list[tuple[Span, int]], int, int]:
    """The critical path of one trace.

    Returns:
        the path as ``(span, self_ns)`` segments (a span may appear more than once: its
        own time before, between and after its chosen children), the number of orphans
        (spans whose parent never came), and the number of children clamped into their
        parent's time.
    """
    roots, children, orphans = _children(spans)
    if not roots:
        return [], orphans, 0
    root = min(roots, key=lambda s: (s.start_ns, -s.end_ns))
    segments: list[tuple[Span, int]] = []
    clamped = 0

    def walk(span: Span, start: int, end: int) -> None:
        nonlocal clamped
        cursor = end
        kids = sorted(children.get(span.span_id, ()), key=lambda c: c.end_ns, reverse=True)
        for child in kids:
            child_start, child_end = child.start_ns, child.end_ns
            if child_start < start or child_end > end:
                clamped += 1
                child_start, child_end = max(child_start, start), min(child_end, end)
            if child_end <= child_start or child_start >= cursor:
                continue  # not on the path: it ran while a later child did, or is empty
            child_end = min(child_end, cursor)
            if cursor > child_end:
                segments.append((span, cursor - child_end))
            walk(child, child_start, child_end)
            cursor = child_start
        if cursor > start:
            segments.append((span, cursor - start))

    walk(root, root.start_ns, max(root.end_ns, root.start_ns))
    return segments, orphans, clamped


def attribute(traces: Iterable[Sequence[Span]]) -> tuple[tuple[SpanShare, ...], int, int]:
    """Where the critical paths of ``traces`` spent their time, largest share first.

    Returns:
        the shares, and the orphans and clamped children met on the way.
    """
    totals: Counter[tuple[str, str]] = Counter()
    count = orphans = clamped = 0
    for spans in traces:
        segments, lost, fixed = critical_path(spans)
        orphans += lost
        clamped += fixed
        if not segments:
            continue
        count += 1
        for span, self_ns in segments:
            totals[(span.service, span.name)] += self_ns
    whole = sum(totals.values())
    shares = tuple(
        SpanShare(service, name, ns / whole, ns / count / 1e6)
        for (service, name), ns in sorted(totals.items(), key=lambda kv: -kv[1])
    ) if whole else ()  # fmt: skip
    return shares, orphans, clamped


def _band_limits(result: RunResult, endpoint: str) -> dict[str, tuple[float, float]]:
    """Each band's latency range (ms) in ``endpoint``'s measured histogram."""
    merged = EndpointInterval.merged(
        i.endpoints[endpoint] for i in result.measured if endpoint in i.endpoints
    )
    histogram = merged.latency
    if histogram.total_count == 0:
        return {}
    return {
        band: (
            histogram.value_at_percentile(low) / 1000,
            histogram.value_at_percentile(high) / 1000 if high < 100 else float("inf"),
        )
        for band, (low, high) in BANDS.items()
    }


def trace_report(
    result: RunResult,
    exemplars: Sequence[Exemplar],
    spans_by_trace: Mapping[str, Sequence[Span]],
    *,
    counts: Mapping[str, int] | None = None,
) -> TraceReport:
    """Join the traced requests of ``result`` with their spans and read the bands off them.

    ``spans_by_trace`` maps trace ids to the spans received for them; ``counts`` carries
    the receiver's own (``received``, ``dropped``). A span whose parent is redline's own
    request (the span id of its ``traceparent``) is a root.
    """
    # redline's own span (the request it sent) is the parent of the target's root span;
    # redline exports no span for it, so its children are the trace's roots
    spans_by_trace = {
        trace: [
            dataclasses.replace(s, parent_id=None) if s.parent_id == trace[16:] else s
            for s in spans
        ]
        for trace, spans in spans_by_trace.items()
    }
    exemplars = list({e.trace_id: e for e in reversed(exemplars)}.values())[::-1]  # once each
    joined = [e for e in exemplars if spans_by_trace.get(e.trace_id)]
    tally = Counter(dict(counts or {}))
    tally["joined"] = len(joined)
    tally["unjoined"] = len(exemplars) - len(joined)
    by_endpoint: dict[str, list[Exemplar]] = defaultdict(list)
    for exemplar in joined:
        by_endpoint[exemplar.endpoint].append(exemplar)
    attribution: dict[str, dict[str, tuple[SpanShare, ...]]] = {}
    per_request: dict[str, dict[str, float]] = {}
    grown: dict[str, str] = {}
    for endpoint, kept in sorted(by_endpoint.items()):
        limits = _band_limits(result, endpoint)
        bands: dict[str, tuple[SpanShare, ...]] = {}
        for band, (low, high) in limits.items():
            members = [e for e in kept if low <= e.latency_ms <= high]
            if not members:
                continue
            shares, orphans, clamped = attribute(spans_by_trace[e.trace_id] for e in members)
            tally["orphans"] += orphans
            tally["clamped"] += clamped
            if shares:
                bands[band] = shares
        if bands:
            attribution[endpoint] = bands
        if "p50" in bands and "p99" in bands:
            before = {(s.service, s.span): s.share for s in bands["p50"]}
            change = {
                (s.service, s.span): s.share - before.get((s.service, s.span), 0.0)
                for s in bands["p99"]
            }
            (service, span), growth = max(change.items(), key=lambda kv: kv[1])
            if growth > 0.01 and len(change) > 1:  # a share that grew, among several
                grown[endpoint] = f"{service} {span}"
        counted: dict[str, list[int]] = defaultdict(list)
        for exemplar in kept:
            names = Counter(s.name for s in spans_by_trace[exemplar.trace_id])
            for name in names:
                counted[name].append(names[name])
        per_request[endpoint] = {
            name: float(statistics.median(values + [0] * (len(kept) - len(values))))
            for name, values in sorted(counted.items())
        }
    calls = {endpoint: calls_per_request(kept, spans_by_trace)
             for endpoint, kept in sorted(by_endpoint.items())}  # fmt: skip
    waterfalls = {}
    for endpoint, kept in by_endpoint.items():
        slowest = max(kept, key=lambda e: e.latency_ms)
        spans = sorted(
            spans_by_trace[slowest.trace_id], key=lambda s: (s.parent_id is not None, s.start_ns)
        )
        waterfalls[endpoint] = Waterfall(slowest.trace_id, slowest.latency_ms, tuple(spans[:200]))
    return TraceReport(
        attribution=attribution,
        spans_per_request=per_request,
        grown=grown,
        exemplars=tuple(sorted(exemplars, key=lambda e: -e.latency_ms)),
        counts=dict(tally),
        waterfalls=waterfalls,
        calls_per_request={endpoint: c for endpoint, c in calls.items() if c},
    )


def calls_per_request(
    kept: Sequence[Exemplar], spans_by_trace: Mapping[str, Sequence[Span]]
) -> dict[str, float]:
    """``"caller -> callee"`` to the mean calls per request among ``kept``'s traces.

    A call is a span whose parent is another service's. The mean is over the requests the
    random sample kept, unbiased by latency; when it kept none, over all of ``kept`` (the
    slowest and the failed: a path taken only by slow requests weighs more there).
    """
    sampled = [e for e in kept if e.kept == "sampled"] or list(kept)
    tally: Counter[str] = Counter()
    for exemplar in sampled:
        spans = spans_by_trace[exemplar.trace_id]
        owner = {s.span_id: s.service for s in spans}
        for span in spans:
            caller = owner.get(span.parent_id or "")
            if caller is not None and caller != span.service:
                tally[f"{caller} -> {span.service}"] += 1
    return {edge: n / len(sampled) for edge, n in sorted(tally.items())} if sampled else {}


def slower_spans(
    base: TraceReport, candidate: TraceReport, *, band: str = "p99"
) -> list[tuple[str, str, float, float]]:
    """Per endpoint traced in both, the span whose time per request grew most in ``band``.

    Returns:
        ``(endpoint, "service span", base ms, candidate ms)``, largest growth first; an
        endpoint where no span grew is left out.
    """
    out = []
    for endpoint, bands in candidate.attribution.items():
        before_band = base.attribution.get(endpoint, {}).get(band)
        after_band = bands.get(band)
        if not before_band or not after_band:
            continue
        before = {(s.service, s.span): s.ms for s in before_band}
        grown = max(after_band, key=lambda s: s.ms - before.get((s.service, s.span), 0.0))
        old = before.get((grown.service, grown.span), 0.0)
        if grown.ms > old:
            out.append((endpoint, f"{grown.service} {grown.span}", old, grown.ms))
    return sorted(out, key=lambda row: row[2] - row[3])
