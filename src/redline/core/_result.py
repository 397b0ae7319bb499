"""Frozen values that describe what a run measured: summaries and the run result.

These are the only things analysis and reports read. ``RunResult.to_dict`` is the public
JSON contract documented in ``docs/result-json.md``.
"""

from __future__ import annotations

import json
import typing
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._histogram import Histogram
from ._interval import (
    EndpointInterval,
    GeneratorInterval,
    IntervalSnapshot,
    _interval_from_dict,
    _interval_to_dict,
)
from ._metrics import MetricInterval
from ._summary import PlanSummary
from ._traces import Exemplar

__all__ = [
    "PERCENTILES",
    "SCHEMA_VERSION",
    "ControlEvent",
    "EndpointInterval",
    "EndpointSummary",
    "GeneratorHost",
    "GeneratorInterval",
    "GeneratorSummary",
    "IntervalSnapshot",
    "RunResult",
    "StepSummary",
    "StopReason",
]

SCHEMA = "redline.run/1"
SCHEMA_VERSION = 6
"""The version of the ``redline.run/1`` document this code writes: 1 had no
``schema_version`` key; 2 adds it (the same keys otherwise); 3 adds ``target`` (what a
run saw of its target from inside) and ``traces``; 4 adds request ``phases``; 5 adds a
cluster run's ``generator.hosts`` and its intervals' ``hosts`` and ``missing``, and
``control`` (live-control actions). A reader
takes any version up to its own."""

StopReason = Literal[
    "running", "completed", "interrupted", "aborted", "worker_failed", "crashed", "lost"
]
"""How a run ended: ``completed``; stopped early by Ctrl-C or a caller (``interrupted``)
or by an abort rule (``aborted``); a worker failed (``worker_failed``); the recording
process ended without a result (``crashed``) or was killed (``lost``, seen by the store);
``running`` while it is being recorded."""
_STOP_REASONS: frozenset[str] = frozenset(typing.get_args(StopReason))


def _stop_reason(text: object) -> StopReason:
    if text not in _STOP_REASONS:
        raise ValueError(f"stop_reason: expected one of {sorted(_STOP_REASONS)}, got {text!r}")
    return text  # type: ignore[return-value]


PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p999", 99.9),
)
"""The percentiles every summary reports: ``(key, percentile)`` pairs."""


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    """Summary statistics of one endpoint (or of all traffic) over the measured time."""

    requests: int
    errors: int
    rps: float
    latency_ms: Mapping[str, float]
    latency_actual_ms: Mapping[str, float]
    status: Mapping[int, int]
    error_classes: Mapping[str, int]
    bytes_in: int
    bytes_out: int
    phases_ms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Per phase of :data:`PHASES` (HTTP responses only), percentiles as ``latency_ms``."""

    @property
    def error_rate(self) -> float:
        """Errors as a fraction of requests (0 when nothing was sent)."""
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, data: EndpointInterval, *, seconds: float) -> EndpointSummary:
        """Summarise merged interval data that covers ``seconds`` of measurement."""
        return cls(
            requests=data.requests,
            errors=data.errors,
            rps=data.requests / seconds if seconds > 0 else 0.0,
            latency_ms=_latency_ms(data.latency),
            latency_actual_ms=_latency_ms(data.latency_actual),
            status=dict(data.status),
            error_classes=dict(data.error_classes),
            bytes_in=data.bytes_in,
            bytes_out=data.bytes_out,
            phases_ms={name: _latency_ms(h) for name, h in data.phases.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/result-json.md)."""
        out: dict[str, Any] = {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "rps": self.rps,
            "latency_ms": dict(self.latency_ms),
            "latency_actual_ms": dict(self.latency_actual_ms),
            "status": {str(code): n for code, n in self.status.items()},
            "error_classes": dict(self.error_classes),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }
        if self.phases_ms:
            out["phases"] = {name: dict(values) for name, values in self.phases_ms.items()}
        return out


@dataclass(frozen=True, slots=True)
class StepSummary:
    """Summary of a group or of a scenario's iterations over the measured time."""

    count: int
    failures: int
    rate: float
    latency_ms: Mapping[str, float]
    failure_types: Mapping[str, int]

    @classmethod
    def of(cls, data: EndpointInterval, *, seconds: float) -> StepSummary:
        """Summarise merged step data that covers ``seconds`` of measurement."""
        return cls(
            count=data.requests,
            failures=data.errors,
            rate=data.requests / seconds if seconds > 0 else 0.0,
            latency_ms=_latency_ms(data.latency),
            failure_types=dict(data.error_classes),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/result-json.md)."""
        return {
            "count": self.count,
            "failures": self.failures,
            "rate": self.rate,
            "latency_ms": dict(self.latency_ms),
            "failure_types": dict(self.failure_types),
        }


def _latency_ms(histogram: Histogram) -> dict[str, float]:
    values = histogram.values_at_percentiles([p for _, p in PERCENTILES])
    out = {name: value / 1000 for (name, _), value in zip(PERCENTILES, values, strict=True)}
    out["max"] = histogram.max / 1000
    out["min"] = histogram.min / 1000
    out["mean"] = histogram.mean / 1000
    return out


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """A live-control action during the run (``redline control``, the control API)."""

    at_s: float
    """Seconds since the load started."""
    action: str
    """``pause``, ``resume``, ``rate`` or ``vus``."""
    value: float | None = None
    """The rate (req/s) or virtual users asked for; None for pause and resume."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (an element of the result's ``control``)."""
        return {"at_s": self.at_s, "action": self.action, "value": self.value}


@dataclass(frozen=True, slots=True)
class GeneratorHost:
    """One host of a run on a cluster: where it was, its share of the load, its clock."""

    name: str
    """The Dask worker's name (its address when it has none)."""
    address: str
    share: float
    """The fraction of the whole load assigned to it (its declared capacity's share)."""
    capacity: int = 1
    """The capacity it declared (the Dask worker resource ``redline``; 1 by default)."""
    clock_offset_ms: float = 0.0
    """Its wall clock minus the coordinator's, as measured before the start."""
    clock_error_ms: float = 0.0
    """The measurement's uncertainty: half the best round trip."""
    lost_at: int | None = None
    """The first interval it did not report, when it was lost during the run."""
    lost_reason: str = ""
    lost_noticed_s: float | None = None
    """When the coordinator noticed the loss, in seconds since the load started."""

    def to_dict(self) -> dict[str, Any]:
        """The static part of a ``generator.hosts`` entry."""
        return {
            "name": self.name,
            "address": self.address,
            "share": self.share,
            "capacity": self.capacity,
            "clock_offset_ms": self.clock_offset_ms,
            "clock_error_ms": self.clock_error_ms,
            "lost_at": self.lost_at,
            "lost_reason": self.lost_reason,
            "lost_noticed_s": self.lost_noticed_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorHost:
        """Read the static part of a ``generator.hosts`` entry back."""
        return cls(**{f: data[f] for f in _HOST_FIELDS if f in data})


_HOST_FIELDS = (
    "name", "address", "share", "capacity", "clock_offset_ms", "clock_error_ms", "lost_at",
    "lost_reason", "lost_noticed_s",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GeneratorSummary:
    """Whether the generator produced the load that was asked for, over measured time."""

    workers: int
    target_rps: float | None
    achieved_rps: float
    scheduled: int
    sent: int
    late: int
    dropped: int
    limited: bool
    limited_intervals: int
    max_lag_ms: float
    max_cpu_percent: float
    hosts: tuple[dict[str, Any], ...] = ()
    """A cluster run's hosts: each one's static facts and how its generator fared."""
    lag_ms: dict[str, float] | None = None
    """The lateness of sends (actual minus intended start) over the answered requests:
    ``p50``, ``p90``, ``p99``, ``p999``, ``max`` in ms (runs that recorded it)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see docs/result-json.md)."""
        out: dict[str, Any] = {
            "workers": self.workers,
            "target_rps": self.target_rps,
            "achieved_rps": self.achieved_rps,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "late": self.late,
            "dropped": self.dropped,
            "limited": self.limited,
            "limited_intervals": self.limited_intervals,
            "max_lag_ms": self.max_lag_ms,
            "max_cpu_percent": self.max_cpu_percent,
        }
        if self.hosts:
            out["hosts"] = [dict(h) for h in self.hosts]
        if self.lag_ms is not None:
            out["lag_ms"] = dict(self.lag_ms)
        return out


@dataclass(frozen=True)
class RunResult:
    """Everything one run measured. Serialisable; analysis and reports read only this.

    Attributes:
        id: unique run id.
        plan: what the run keeps of its plan (name, target, load, objectives, shape,
            faults); a mapping given here is read as :meth:`PlanSummary.from_dict` does.
        started_at: ISO 8601 UTC time the measured load started.
        intervals: per-interval snapshots in order, warm-up ones flagged.
        workers: number of worker processes that generated load.
        complete: False when the run was interrupted or a worker failed.
        stop_reason: how the run ended (see :data:`StopReason`).
        late_tolerance: fraction of late requests above which an interval is limited.
        open_model: whether load followed an arrival schedule (latency corrected for
            coordinated omission) or virtual users.
        notes: messages for people (a worker's traceback, for example).
    """

    id: str
    plan: PlanSummary
    started_at: str
    intervals: tuple[IntervalSnapshot, ...]
    workers: int = 1
    complete: bool = True
    stop_reason: StopReason = "completed"
    late_tolerance: float = 0.01
    open_model: bool = True
    notes: tuple[str, ...] = ()
    tracebacks: tuple[str, ...] = ()
    exemplars: tuple[Exemplar, ...] = field(default=(), compare=False, repr=False)
    """Traced requests kept (a traced plan's); the JSON has them under ``traces``."""
    hosts: tuple[GeneratorHost, ...] = ()
    """The cluster hosts that generated the load (a run on a Dask cluster)."""
    control: tuple[ControlEvent, ...] = ()
    """Live-control actions taken during the run, in order."""

    def __post_init__(self) -> None:
        if not isinstance(self.plan, PlanSummary):  # plain data, as older callers pass
            object.__setattr__(self, "plan", PlanSummary.from_dict(self.plan))

    @property
    def measured(self) -> tuple[IntervalSnapshot, ...]:
        """The intervals that count for statistics (warm-up excluded)."""
        return tuple(i for i in self.intervals if not i.warmup)

    @property
    def duration_s(self) -> float:
        """Measured seconds (warm-up excluded)."""
        return sum(i.duration_s for i in self.measured)

    def endpoint_names(self) -> list[str]:
        """Endpoint names in the order they first appear."""
        names: dict[str, None] = {}
        for interval in self.intervals:
            names.update(dict.fromkeys(interval.endpoints))
        return list(names)

    def endpoint(self, name: str) -> EndpointSummary:
        """Summary of one endpoint over the measured intervals."""
        data = EndpointInterval.merged(
            i.endpoints[name] for i in self.measured if name in i.endpoints
        )
        return EndpointSummary.of(data, seconds=self.duration_s)

    def total(self) -> EndpointSummary:
        """Summary of all traffic over the measured intervals."""
        data = EndpointInterval.merged(e for i in self.measured for e in i.endpoints.values())
        return EndpointSummary.of(data, seconds=self.duration_s)

    def _steps(self, kind: str) -> dict[str, StepSummary]:
        names: dict[str, None] = {}
        for interval in self.measured:
            names.update(dict.fromkeys(getattr(interval, kind)))
        return {
            name: StepSummary.of(
                EndpointInterval.merged(
                    getattr(i, kind)[name] for i in self.measured if name in getattr(i, kind)
                ),
                seconds=self.duration_s,
            )
            for name in names
        }

    def workloads(self) -> dict[str, tuple[EndpointSummary, int]]:
        """Each of the plan's ``scenarios:`` (k6's): its requests together, and iterations.

        An iteration is a flow's or Python scenario's run where it has them, else a
        request. (A Python scenario names its requests as it runs: they are in the
        totals, not under their scenario.)
        """
        out: dict[str, tuple[EndpointSummary, int]] = {}
        steps = self.scenarios() if self.plan.workloads else {}
        for workload in self.plan.workloads:
            data = EndpointInterval.merged(
                i.endpoints[name]
                for i in self.measured
                for name in workload.endpoints
                if name in i.endpoints
            )
            summary = EndpointSummary.of(data, seconds=self.duration_s)
            counted = [steps[n].count for n in (*workload.flows, workload.name) if n in steps]
            out[workload.name] = (summary, sum(counted) if counted else summary.requests)
        return out

    def metrics(self) -> dict[str, MetricInterval]:
        """Python scenarios' custom metrics over the measured intervals, by name."""
        return MetricInterval.merged_by_name(interval.metrics for interval in self.measured)

    def groups(self) -> dict[str, StepSummary]:
        """Summary of every group over the measured intervals."""
        return self._steps("groups")

    def scenarios(self) -> dict[str, StepSummary]:
        """Summary of every scenario's iterations over the measured intervals."""
        return self._steps("scenarios")

    def checks(self) -> dict[str, tuple[int, int]]:
        """``(passes, fails)`` of every named check over the measured intervals."""
        out: dict[str, tuple[int, int]] = {}
        for interval in self.measured:
            for name, (passes, fails) in interval.checks.items():
                before = out.get(name, (0, 0))
                out[name] = (before[0] + passes, before[1] + fails)
        return out

    def exceptions(self) -> dict[str, dict[str, int]]:
        """Exceptions raised in scenarios, per scenario and type, over the whole run."""
        out: dict[str, Counter[str]] = {}
        for interval in self.intervals:
            for scenario, types in interval.exceptions.items():
                out.setdefault(scenario, Counter()).update(types)
        return {name: dict(types) for name, types in out.items()}

    def generator(self) -> GeneratorSummary:
        """How the generator fared over the measured intervals."""
        measured = self.measured
        gen = GeneratorInterval.merged(i.generator for i in measured)
        seconds = self.duration_s
        limited_intervals = sum(i.limited(late_tolerance=self.late_tolerance) for i in measured)
        scheduled = gen.scheduled if self.open_model else gen.sent
        limited = gen.dropped > 0 or gen.late > self.late_tolerance * max(scheduled, 1)
        return GeneratorSummary(
            workers=self.workers,
            target_rps=scheduled / seconds if self.open_model and seconds > 0 else None,
            achieved_rps=gen.sent / seconds if seconds > 0 else 0.0,
            scheduled=scheduled,
            sent=gen.sent,
            late=gen.late,
            dropped=gen.dropped,
            limited=limited,
            limited_intervals=limited_intervals,
            max_lag_ms=gen.max_lag_ms,
            max_cpu_percent=max((i.generator.cpu_percent for i in measured), default=0.0),
            hosts=tuple(self._host_summary(host, measured, seconds) for host in self.hosts),
            lag_ms=_lag_ms(gen.lag) if gen.lag is not None and gen.lag.total_count else None,
        )

    def _host_summary(
        self, host: GeneratorHost, measured: tuple[IntervalSnapshot, ...], seconds: float
    ) -> dict[str, Any]:
        """One ``generator.hosts`` entry: the host's facts and its generator's record."""
        mine = [i.hosts[host.name] for i in measured if host.name in i.hosts]
        gen = GeneratorInterval.merged(mine)
        return {
            **host.to_dict(),
            "target_rps": gen.scheduled / seconds if self.open_model and seconds > 0 else None,
            "achieved_rps": gen.sent / seconds if seconds > 0 else 0.0,
            "sent": gen.sent,
            "late": gen.late,
            "dropped": gen.dropped,
            "max_lag_ms": gen.max_lag_ms,
            "max_cpu_percent": max((g.cpu_percent for g in mine), default=0.0),
            "intervals": len(mine),
        }

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self, *, intervals: bool = True) -> dict[str, Any]:
        """The public JSON contract (documented in docs/result-json.md).

        Args:
            intervals: include the intervals (``False``: everything else, without the
                cost of encoding every interval's histograms).
        """
        out = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "plan": self.plan.to_dict(),
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "complete": self.complete,
            "stop_reason": self.stop_reason,
            "open_model": self.open_model,
            "late_tolerance": self.late_tolerance,
            "notes": list(self.notes),
            "generator": self.generator().to_dict(),
            "summary": {
                "total": self.total().to_dict(),
                "endpoints": {n: self.endpoint(n).to_dict() for n in self.endpoint_names()},
                "groups": {n: s.to_dict() for n, s in self.groups().items()},
                "scenarios": {n: s.to_dict() for n, s in self.scenarios().items()},
                **(
                    {
                        "workloads": {
                            name: {**summary.to_dict(), "iterations": iterations}
                            for name, (summary, iterations) in self.workloads().items()
                        }
                    }
                    if self.plan.workloads
                    else {}
                ),
                **(
                    {
                        "metrics": {
                            name: m.summary(seconds=self.duration_s)
                            for name, m in self.metrics().items()
                        }
                    }
                    if any(i.metrics for i in self.intervals)
                    else {}
                ),
                "checks": {n: {"passes": p, "fails": f} for n, (p, f) in self.checks().items()},
                "exceptions": self.exceptions(),
            },
            "tracebacks": list(self.tracebacks),
            "histogram_encoding": {
                "format": "HdrHistogram V2 compressed, base64",
                "unit": "us",
                "lowest": 1,
                "highest": 3_600_000_000,
                "significant_figures": 3,
            },
        }
        if self.control:
            out["control"] = [event.to_dict() for event in self.control]
        if intervals:
            out["intervals"] = [_interval_to_dict(i, self.late_tolerance) for i in self.intervals]
        return out

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialise :meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """Rebuild a result from :meth:`to_dict` output.

        Raises:
            ValueError: when ``data`` is not a redline run result.
        """
        if data.get("schema") != SCHEMA:
            raise ValueError(f"expected a {SCHEMA} document, got schema {data.get('schema')!r}")
        version = data.get("schema_version", 1)  # documents before 2 had no such key
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r} is newer than this redline reads "
                f"({SCHEMA_VERSION}): upgrade redline"
            )
        try:
            return cls(
                id=data["id"],
                plan=PlanSummary.from_dict(data["plan"]),
                started_at=data["started_at"],
                intervals=tuple(_interval_from_dict(i) for i in data["intervals"]),
                workers=data["generator"]["workers"],
                complete=data["complete"],
                stop_reason=_stop_reason(data["stop_reason"]),
                late_tolerance=data["late_tolerance"],
                open_model=data["open_model"],
                notes=tuple(data.get("notes", ())),
                tracebacks=tuple(data.get("tracebacks", ())),
                hosts=tuple(GeneratorHost.from_dict(h) for h in data["generator"].get("hosts", ())),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed run result: missing or wrong {exc}") from exc


def _lag_ms(histogram: Histogram) -> dict[str, float]:
    """A lateness histogram (us) as the percentiles people read, in ms."""
    values = histogram.values_at_percentiles([50.0, 90.0, 99.0, 99.9])
    return {
        **{name: v / 1000 for name, v in zip(("p50", "p90", "p99", "p999"), values, strict=True)},
        "max": histogram.max / 1000,
    }
