"""What a run keeps of its plan: a frozen, typed summary (``RunResult.plan``).

It is what reports, analysis and the store read of the plan: its name and target, the
load's shape, the objectives, the test type and the faults. Its JSON form is the
``plan`` of docs/result-json.md, and documents written by older versions still load (a
missing field takes its default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._codec import from_data, to_data
from ._slo import Objective

__all__ = [
    "FaultSummary",
    "LoadSummary",
    "PlanSummary",
    "ProxySummary",
    "RequestSummary",
    "ShapeSummary",
    "StageSummary",
    "WorkloadSummary",
]

_OMIT = {"omit_default": True}


@dataclass(frozen=True)
class StageSummary:
    """One stage of a ramping load: its length and where it ends (rate or users)."""

    duration: float
    rate: float | None = field(default=None, metadata=_OMIT)
    vus: float | None = field(default=None, metadata=_OMIT)

    @property
    def target(self) -> float:
        """The rate or user count this stage ramps to."""
        return self.rate if self.rate is not None else self.vus or 0.0


@dataclass(frozen=True)
class LoadSummary:
    """The load model: open (arrivals per second) or closed (virtual users)."""

    model: Literal["open", "closed"] = "open"
    arrivals: str | None = field(default=None, metadata=_OMIT)
    think: tuple[float, float] | None = field(default=None, metadata=_OMIT)
    rate: float | None = field(default=None, metadata=_OMIT)
    start_rate: float | None = field(default=None, metadata=_OMIT)
    vus: int | None = field(default=None, metadata=_OMIT)
    start_vus: int | None = field(default=None, metadata=_OMIT)
    stages: tuple[StageSummary, ...] = field(default=(), metadata=_OMIT)

    @property
    def peak(self) -> float:
        """The highest rate (open) or user count (closed) the load asks for."""
        fixed = self.rate if self.model == "open" else self.vus
        if fixed is not None:
            return float(fixed)
        start = (self.start_rate if self.model == "open" else self.start_vus) or 0.0
        return max([float(start), *(s.target for s in self.stages)])


@dataclass(frozen=True)
class RequestSummary:
    """One request of the plan, secrets redacted."""

    name: str
    method: str = "GET"
    path: str = "/"
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict, metadata=_OMIT)
    body: str | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True)
class ShapeSummary:
    """The test type a load was shaped into (``--type``) and what its analysis needs."""

    type: str
    peak: float = 0.0
    at_s: float | None = field(default=None, metadata=_OMIT)
    for_s: float | None = field(default=None, metadata=_OMIT)
    multiple: float | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True)
class FaultSummary:
    """One fault of the plan's schedule: on a proxy (``toxic``, down) or on the host.

    ``host`` is ``{kind: settings}``, e.g. ``{"process": {"target": "serve", ...}}``.
    """

    name: str
    type: str
    proxy: str
    at_s: float
    for_s: float
    toxic: Mapping[str, Any] | None = field(default=None, metadata=_OMIT)
    host: Mapping[str, Any] | None = field(default=None, metadata=_OMIT)
    max_s: float | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True)
class ProxySummary:
    """One fault proxy the run started."""

    name: str
    listen: str
    upstream: str
    http: bool = False


@dataclass(frozen=True)
class WorkloadSummary:
    """One scenario of the plan's ``scenarios:`` (k6's): its executor, window and endpoints."""

    name: str
    executor: str
    start_time_s: float = 0.0
    duration_s: float = 0.0
    graceful_stop_s: float = 0.0
    load: LoadSummary = field(default_factory=LoadSummary)
    endpoints: tuple[str, ...] = ()
    iterations: int | None = field(default=None, metadata=_OMIT)
    vus: int | None = field(default=None, metadata=_OMIT)
    tags: Mapping[str, str] = field(default_factory=dict, metadata=_OMIT)
    env: tuple[str, ...] = field(default=(), metadata=_OMIT)
    flows: tuple[str, ...] = field(default=(), metadata=_OMIT)


@dataclass(frozen=True)
class PlanSummary:
    """What a run keeps of its plan.

    Attributes:
        name: the plan's name.
        target: the target URL (a password in it redacted).
        source: the plan's file, or where it came from.
        load: the load model and its shape.
        duration_s: the measured duration.
        warmup_s: the warm-up before it.
        requests: the plan's requests (secrets redacted).
        scenarios: the plan's scenarios, as plain data.
        objectives: the objectives (``slo`` in JSON).
        timeouts: ``connect`` and ``read`` timeouts in seconds.
        limits: ``max_connections``, ``max_in_flight``, ``max_response_size`` (and
            ``max_streams`` for HTTP/2).
        redact: the names whose values are secret.
        shape: the test type, for a shaped load.
        faults: the faults applied on schedule.
        fault_proxies: the proxies the run started.
        workloads: the plan's ``scenarios:`` (k6's), each with its executor.
        protocol: ``h2`` or ``h2c`` for an HTTP/2 run (``http1``, the default, is not
            written).
    """

    name: str = ""
    target: str = ""
    source: str = ""
    load: LoadSummary = field(default_factory=LoadSummary)
    duration_s: float = 0.0
    warmup_s: float = 0.0
    requests: tuple[RequestSummary, ...] = ()
    scenarios: tuple[Mapping[str, Any], ...] = ()
    objectives: tuple[Objective, ...] = field(default=(), metadata={"key": "slo"})
    timeouts: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, int | None] = field(default_factory=dict)
    redact: tuple[str, ...] = ()
    shape: ShapeSummary | None = field(default=None, metadata=_OMIT)
    faults: tuple[FaultSummary, ...] = field(default=(), metadata=_OMIT)
    fault_proxies: tuple[ProxySummary, ...] = field(default=(), metadata=_OMIT)
    workloads: tuple[WorkloadSummary, ...] = field(default=(), metadata=_OMIT)
    protocol: str = field(default="http1", metadata=_OMIT)

    @property
    def total_s(self) -> float:
        """Warm-up and measured duration together."""
        return self.warmup_s + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``plan`` of a result document)."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanSummary:
        """Read the JSON form (of this version or an older one).

        Raises:
            ValueError: ``data`` does not fit; the message names the path inside it.
        """
        if "shape" in data and not data["shape"]:  # an empty shape is no shape
            data = {k: v for k, v in data.items() if k != "shape"}
        return from_data(cls, data, path="$.plan")
