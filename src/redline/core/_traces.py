"""Traces: the spans a target sent back for redline's requests, and what was read off them.

redline puts a W3C ``traceparent`` on its requests; a target that continues the trace
(any OpenTelemetry SDK) exports its spans to redline's OTLP receiver, and they are joined
to redline's requests by trace id. :class:`Exemplar` is one traced request as redline saw
it; :class:`TraceReport` is the ``traces`` of the result JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._codec import from_data, to_data

__all__ = ["Exemplar", "Span", "SpanShare", "TraceReport", "Waterfall"]


@dataclass(frozen=True, slots=True)
class Span:
    """One span, as a target exported it.

    Attributes:
        trace_id: 32 lowercase hex digits.
        span_id: 16 lowercase hex digits.
        parent_id: the parent span's id (``None`` for a root, or a parent not received).
        service: the exporting service (its ``service.name`` resource attribute).
        name: the span's name (``GET /orders``, ``db.query``).
        start_ns: start, nanoseconds since the epoch (the exporting host's clock).
        end_ns: end, likewise.
        error: whether its status was an error.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    error: bool = False

    @property
    def duration_ns(self) -> int:
        """How long it lasted (0 for a span that ends before it starts)."""
        return max(self.end_ns - self.start_ns, 0)


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One request redline traced, with why it was kept.

    Attributes:
        trace_id: the trace id redline sent (``traceparent``).
        endpoint: the request's endpoint.
        latency_ms: its latency from the intended start.
        status: its HTTP status (``None`` when it failed without one).
        interval: the interval it completed in.
        kept: ``slowest`` (among the slowest of its endpoint in its interval), ``failed``,
            or ``sampled`` (the share the plan's ``trace.sample`` asks for).
    """

    trace_id: str
    endpoint: str
    latency_ms: float
    status: int | None
    interval: int
    kept: Literal["slowest", "failed", "sampled"]


@dataclass(frozen=True, slots=True)
class SpanShare:
    """A service's span, and its share of a latency band's critical path.

    Attributes:
        service: the service.
        span: the span's name; ``self`` time of a span is its own name's.
        share: the fraction of the band's latency (0-1), over the band's traces.
        ms: the mean milliseconds per request it accounts for.
    """

    service: str
    span: str
    share: float
    ms: float


@dataclass(frozen=True, slots=True)
class Waterfall:
    """One traced request with its spans, to draw: the slowest of its endpoint.

    Attributes:
        trace_id: its trace id.
        latency_ms: its latency as redline measured it.
        spans: its spans (at most 200), the target's root span first.
    """

    trace_id: str
    latency_ms: float
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class TraceReport:
    """What was read off the spans of a run's traced requests (``traces`` in the JSON).

    Attributes:
        attribution: per endpoint, per latency band (``p50``, ``p99``), where its critical
            path spent its time, largest share first.
        spans_per_request: per endpoint, span name to the median count per request.
        grown: per endpoint, the span whose share grows most from the p50 band to the p99
            band (``service span``).
        exemplars: the traced requests kept (their trace ids), slowest first.
        waterfalls: per endpoint, its slowest traced request that has spans.
        calls_per_request: per endpoint, ``"caller -> callee"`` (a span whose parent is
            another service's) to the mean number of such calls per request, over the
            requests the random sample kept (``sampled``), or over every joined request of
            the endpoint when the sample kept none of them.
        counts: ``received`` spans, ``dropped`` (over the receiver's cap), ``joined``
            traces, ``unjoined`` (traced requests with no spans: the target ignored the
            trace, or did not export it), ``orphans`` (spans whose parent never came),
            ``clamped`` (a child outside its parent's time: clock skew, clamped).
    """

    attribution: Mapping[str, Mapping[str, tuple[SpanShare, ...]]] = field(default_factory=dict)
    spans_per_request: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    grown: Mapping[str, str] = field(default_factory=dict)
    exemplars: tuple[Exemplar, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    waterfalls: Mapping[str, Waterfall] = field(default_factory=dict)
    calls_per_request: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (docs/result-json.md, ``traces``)."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TraceReport:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: ``data`` is not a trace report (the message names the path).
        """
        return from_data(cls, data, path="$.traces")
