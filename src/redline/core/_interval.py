"""What one interval of a run measured: per endpoint, for the generator, merged exactly.

Workers report an interval a second; the coordinator merges them (histograms and
counters add up exactly) into one :class:`IntervalSnapshot`, which is also how a run's
intervals are kept in its JSON document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._histogram import Histogram
from ._metrics import MetricInterval
from ._traces import Exemplar

__all__ = ["PHASES", "EndpointInterval", "GeneratorInterval", "IntervalSnapshot"]

PHASES = ("dns", "connect", "tls", "send", "wait", "receive")
"""A request's phases, in order, as k6 times them: looking up the host, opening the
connection, the TLS handshake (these three are zero on a reused connection), writing the
request, waiting for the first byte of the response (time to first byte), reading the
rest."""


@dataclass(frozen=True, slots=True)
class EndpointInterval:
    """What one endpoint did during one interval (or a merge of several).

    ``latency`` is measured from each request's intended start (open model) and
    ``latency_actual`` from the moment it was actually sent; both in microseconds.
    ``requests`` counts responses and transport failures alike; ``errors`` counts
    transport failures and responses with a status of 400 or above. ``phases`` holds a
    histogram per phase of :data:`PHASES` (microseconds) for HTTP responses, none for
    iterations and groups. ``latency_by_status`` splits ``latency`` by status code, kept
    only when an objective asks for it (``p99{status:200}``).
    """

    requests: int = 0
    errors: int = 0
    status: Mapping[int, int] = field(default_factory=dict)
    error_classes: Mapping[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    latency: Histogram = field(default_factory=Histogram)
    latency_actual: Histogram = field(default_factory=Histogram)
    phases: Mapping[str, Histogram] = field(default_factory=dict)
    latency_by_status: Mapping[int, Histogram] = field(default_factory=dict)

    @staticmethod
    def merged(items: Iterable[EndpointInterval]) -> EndpointInterval:
        """Return the exact sum of several endpoint intervals."""
        status: Counter[int] = Counter()
        classes: Counter[str] = Counter()
        latencies, actuals = [], []
        phases: dict[str, list[Histogram]] = {}
        by_status: dict[int, list[Histogram]] = {}
        requests = errors = bytes_in = bytes_out = 0
        for item in items:
            requests += item.requests
            errors += item.errors
            bytes_in += item.bytes_in
            bytes_out += item.bytes_out
            status.update(item.status)
            classes.update(item.error_classes)
            latencies.append(item.latency)
            actuals.append(item.latency_actual)
            for name, histogram in item.phases.items():
                phases.setdefault(name, []).append(histogram)
            for code, histogram in item.latency_by_status.items():
                by_status.setdefault(code, []).append(histogram)
        latency, actual = Histogram.merged(latencies), Histogram.merged(actuals)
        return EndpointInterval(
            requests=requests,
            errors=errors,
            status=dict(sorted(status.items())),
            error_classes=dict(sorted(classes.items())),
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            latency=latency,
            latency_actual=actual,
            phases={name: Histogram.merged(phases[name]) for name in PHASES if name in phases},
            latency_by_status={
                code: Histogram.merged(by_status[code]) for code in sorted(by_status)
            },
        )

    def with_status(self, code: int) -> EndpointInterval:
        """Only the responses of status ``code`` (from :attr:`latency_by_status`)."""
        count = self.status.get(code, 0)
        return EndpointInterval(
            requests=count,
            errors=count if code >= 400 else 0,
            status={code: count} if count else {},
            latency=self.latency_by_status.get(code, Histogram()),
        )


@dataclass(frozen=True, slots=True)
class GeneratorInterval:
    """How the load generator itself fared during one interval.

    ``scheduled`` requests fell due (open model), ``sent`` went out, ``late`` were issued
    more than the lateness threshold after their intended start because the generator
    was busy, and ``dropped`` were never sent because ``max_in_flight`` was reached.
    ``lag`` is the distribution of every answered request's lateness (actual send minus
    intended start, in microseconds): what the generator's timers and load added.
    """

    scheduled: int = 0
    sent: int = 0
    late: int = 0
    dropped: int = 0
    max_lag_ms: float = 0.0
    cpu_percent: float = 0.0
    connections: int = 0
    in_flight: int = 0
    target_rps: float | None = None
    lag: Histogram | None = None

    @staticmethod
    def merged(items: Iterable[GeneratorInterval]) -> GeneratorInterval:
        """Combine the workers' views of one interval (sums, maxima; CPU is summed)."""
        items = list(items)
        targets = [i.target_rps for i in items if i.target_rps is not None]
        return GeneratorInterval(
            scheduled=sum(i.scheduled for i in items),
            sent=sum(i.sent for i in items),
            late=sum(i.late for i in items),
            dropped=sum(i.dropped for i in items),
            max_lag_ms=max((i.max_lag_ms for i in items), default=0.0),
            cpu_percent=sum(i.cpu_percent for i in items),
            connections=sum(i.connections for i in items),
            in_flight=sum(i.in_flight for i in items),
            target_rps=sum(targets) if targets else None,
            lag=Histogram.merged(lags) if (lags := [i.lag for i in items if i.lag]) else None,
        )


@dataclass(frozen=True, slots=True)
class IntervalSnapshot:
    """One interval of the run (normally 1 s), all workers merged.

    Scenario runs add ``groups`` and ``scenarios`` (iterations), measured like
    endpoints (``requests`` counts executions, ``errors`` failures and
    ``error_classes`` their exception types), ``checks`` as ``(passes, fails)`` and
    ``exceptions`` per scenario and exception type.
    """

    index: int
    start_s: float
    duration_s: float
    endpoints: Mapping[str, EndpointInterval]
    generator: GeneratorInterval
    warmup: bool = False
    groups: Mapping[str, EndpointInterval] = field(default_factory=dict)
    scenarios: Mapping[str, EndpointInterval] = field(default_factory=dict)
    checks: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    exceptions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    exemplars: tuple[Exemplar, ...] = field(default=(), compare=False, repr=False)
    """The traced requests kept in this interval (a traced plan's; not in its JSON)."""
    hosts: Mapping[str, GeneratorInterval] = field(default_factory=dict)
    """Each cluster host's own generator counters (a run on a Dask cluster)."""
    missing: float = 0.0
    """The share of the load whose worker was lost before this interval (0 to 1): the
    interval is that much short of what the plan asked for."""
    metrics: Mapping[str, MetricInterval] = field(default_factory=dict)
    """Python scenarios' custom metrics (Counter, Gauge, Rate, Trend), by name."""

    def limited(self, *, late_tolerance: float) -> bool:
        """Whether the generator could not produce the intended load in this interval."""
        gen = self.generator
        return gen.dropped > 0 or gen.late > late_tolerance * max(gen.scheduled, 1)

    def total(self) -> EndpointInterval:
        """All endpoints of this interval merged."""
        return EndpointInterval.merged(self.endpoints.values())

    def to_dict(self, *, late_tolerance: float) -> dict[str, Any]:
        """The JSON form of one interval (an element of the result's ``intervals``)."""
        return _interval_to_dict(self, late_tolerance)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> IntervalSnapshot:
        """Rebuild an interval from :meth:`to_dict` output.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not an interval's JSON form.
        """
        return _interval_from_dict(data)


def _measured_to_dict(data: EndpointInterval) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requests": data.requests,
        "errors": data.errors,
        "status": {str(k): v for k, v in data.status.items()},
        "error_classes": dict(data.error_classes),
        "bytes_in": data.bytes_in,
        "bytes_out": data.bytes_out,
        "histogram": data.latency.encode(),
        "histogram_actual": data.latency_actual.encode(),
    }
    if data.phases:
        out["phases"] = {name: h.encode() for name, h in data.phases.items()}
    if data.latency_by_status:
        out["histogram_by_status"] = {str(k): h.encode() for k, h in data.latency_by_status.items()}
    return out


def _measured_from_dict(data: Mapping[str, Any]) -> EndpointInterval:
    return EndpointInterval(
        requests=data["requests"],
        errors=data["errors"],
        status={int(k): v for k, v in data["status"].items()},
        error_classes=data["error_classes"],
        bytes_in=data["bytes_in"],
        bytes_out=data["bytes_out"],
        latency=Histogram.decode(data["histogram"]),
        latency_actual=Histogram.decode(data["histogram_actual"]),
        phases={name: Histogram.decode(h) for name, h in data.get("phases", {}).items()},
        latency_by_status={
            int(k): Histogram.decode(h) for k, h in data.get("histogram_by_status", {}).items()
        },
    )


def _generator_to_dict(gen: GeneratorInterval) -> dict[str, Any]:
    return {
        "target_rps": gen.target_rps,
        "scheduled": gen.scheduled,
        "sent": gen.sent,
        "late": gen.late,
        "dropped": gen.dropped,
        "max_lag_ms": gen.max_lag_ms,
        "cpu_percent": gen.cpu_percent,
        "connections": gen.connections,
        "in_flight": gen.in_flight,
        **({"lag_histogram": gen.lag.encode()} if gen.lag is not None else {}),
    }


def _generator_from_dict(data: Mapping[str, Any]) -> GeneratorInterval:
    fields = dict(data)
    lag = fields.pop("lag_histogram", None)
    return GeneratorInterval(**fields, lag=Histogram.decode(lag) if lag else None)


def _interval_to_dict(interval: IntervalSnapshot, late_tolerance: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": interval.index,
        "start_s": interval.start_s,
        "duration_s": interval.duration_s,
        "warmup": interval.warmup,
        "limited": interval.limited(late_tolerance=late_tolerance),
        "generator": _generator_to_dict(interval.generator),
        "endpoints": {name: _measured_to_dict(e) for name, e in interval.endpoints.items()},
    }
    if interval.hosts:
        out["hosts"] = {name: _generator_to_dict(g) for name, g in interval.hosts.items()}
    if interval.missing:
        out["missing"] = interval.missing
    if interval.groups or interval.scenarios or interval.checks or interval.exceptions:
        out["groups"] = {name: _measured_to_dict(g) for name, g in interval.groups.items()}
        out["scenarios"] = {name: _measured_to_dict(g) for name, g in interval.scenarios.items()}
        out["checks"] = {name: list(pf) for name, pf in interval.checks.items()}
        out["exceptions"] = {name: dict(types) for name, types in interval.exceptions.items()}
    if interval.metrics:
        out["metrics"] = {name: m.to_dict() for name, m in interval.metrics.items()}
    return out


def _interval_from_dict(data: Mapping[str, Any]) -> IntervalSnapshot:
    return IntervalSnapshot(
        index=data["index"],
        start_s=data["start_s"],
        duration_s=data["duration_s"],
        warmup=data["warmup"],
        generator=_generator_from_dict(data["generator"]),
        endpoints={name: _measured_from_dict(e) for name, e in data["endpoints"].items()},
        groups={name: _measured_from_dict(g) for name, g in data.get("groups", {}).items()},
        scenarios={name: _measured_from_dict(g) for name, g in data.get("scenarios", {}).items()},
        checks={name: (int(pf[0]), int(pf[1])) for name, pf in data.get("checks", {}).items()},
        exceptions={name: dict(t) for name, t in data.get("exceptions", {}).items()},
        hosts={name: _generator_from_dict(g) for name, g in data.get("hosts", {}).items()},
        missing=data.get("missing", 0.0),
        metrics={name: MetricInterval.from_dict(m) for name, m in data.get("metrics", {}).items()},
    )
