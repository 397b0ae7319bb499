"""The frozen, validated plan: what to send, where, and in what shape of load."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from redline.core import AddressPolicy, Objective, PlanSummary, Redactor
from redline.http import encode_multipart

from ._faults import FaultPlan
from ._grpc import GrpcCall
from ._node import QUEUE_SCHEMES
from ._observe import CostSpec, ObservePlan
from ._template import DataSource, Template
from ._trace import TracePlan

__all__ = [
    "ClosedLoad",
    "Extraction",
    "FilePart",
    "FlowCheck",
    "OpenLoad",
    "Plan",
    "RequestSpec",
    "ScenarioSpec",
    "Stage",
    "ThinkStep",
    "Workload",
]

EXECUTORS = (
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "constant-vus",
    "ramping-vus",
    "per-vu-iterations",
    "shared-iterations",
    "externally-controlled",
)
"""k6's executors, by k6's names: how a scenario of ``scenarios:`` schedules its work."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a ramping load: reach ``target`` (a rate or a VU count) over ``duration``."""

    duration: float
    target: float


def stage_value(start: float, stages: tuple[Stage, ...], t: float) -> float:
    """A ramping load's value at ``t``: from ``start``, linear within each stage.

    Right-continuous: a stage of no duration is a jump, taken at its moment.
    """
    previous, elapsed = float(start), 0.0
    for stage in stages:
        if t < elapsed + stage.duration:
            fraction = (t - elapsed) / stage.duration if stage.duration else 1.0
            return previous + (stage.target - previous) * fraction
        previous, elapsed = stage.target, elapsed + stage.duration
    return previous


@dataclass(frozen=True, slots=True)
class OpenLoad:
    """Open model: requests arrive on a schedule, whatever the target's response times.

    Either ``rate`` (constant) or ``stages`` (ramping, starting from ``start_rate``).
    ``arrivals`` is ``"constant"`` (evenly spaced) or ``"poisson"`` (exponential gaps).
    """

    rate: float | None = None
    stages: tuple[Stage, ...] = ()
    start_rate: float = 0.0
    arrivals: Literal["constant", "poisson"] = "constant"

    model: Literal["open"] = "open"

    @property
    def peak_rate(self) -> float:
        """The highest intended arrival rate (req/s) at any moment of the load."""
        if self.rate is not None:
            return self.rate
        return max([self.start_rate, *(s.target for s in self.stages)])

    def rate_at(self, t: float) -> float:
        """The intended arrival rate (req/s) at ``t`` seconds into the load."""
        if self.rate is not None:
            return self.rate
        return stage_value(self.start_rate, self.stages, t)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in run results."""
        out: dict[str, Any] = {"model": "open", "arrivals": self.arrivals}
        if self.rate is not None:
            out["rate"] = self.rate
        else:
            out["start_rate"] = self.start_rate
            out["stages"] = [{"duration": s.duration, "rate": s.target} for s in self.stages]
        return out


@dataclass(frozen=True, slots=True)
class ClosedLoad:
    """Closed model: ``vus`` virtual users each send, wait for the response, think, repeat."""

    vus: int | None = None
    stages: tuple[Stage, ...] = ()
    start_vus: int = 0
    think_min: float = 0.0
    think_max: float = 0.0

    model: Literal["closed"] = "closed"

    def vus_at(self, t: float) -> int:
        """The number of virtual users intended at ``t`` seconds into the load."""
        if self.vus is not None:
            return self.vus
        return round(stage_value(self.start_vus, self.stages, t))

    @property
    def max_vus(self) -> int:
        """The most virtual users this load ever asks for."""
        if self.vus is not None:
            return self.vus
        return round(max([self.start_vus, *(s.target for s in self.stages)]))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in run results."""
        out: dict[str, Any] = {"model": "closed", "think": [self.think_min, self.think_max]}
        if self.vus is not None:
            out["vus"] = self.vus
        else:
            out["start_vus"] = self.start_vus
            out["stages"] = [{"duration": s.duration, "vus": s.target} for s in self.stages]
        return out


@dataclass(frozen=True, slots=True)
class Extraction:
    """A flow step's ``extract``: a value of the response kept as variable ``name``.

    ``kind`` is ``json`` (``expression`` a path like ``$.items[0].id``), ``regex`` (the
    first group of the first match, or the whole match) or ``header`` (a header's value).
    """

    name: str
    kind: Literal["json", "regex", "header"]
    expression: str

    def json_steps(self) -> list[str | int] | None:
        """A JSON path's keys and indexes in order (``$.a[0]['b c']``), None if malformed."""
        rest = self.expression.removeprefix("$")
        if not self.expression.startswith("$") or _JSON_PATH.fullmatch(rest) is None:
            return None
        return [
            int(index) if index else (quoted or name)
            for name, index, quoted in _JSON_STEP.findall(rest)
        ]


_STEP = r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]"
_JSON_STEP = re.compile(_STEP)
_JSON_PATH = re.compile(f"(?:{_STEP})*")


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """A flow step's named ``check`` of its response.

    ``status``: the status is one of ``expected`` (codes); ``body_contains``: the body
    contains ``expected``.
    """

    name: str
    kind: Literal["status", "body_contains"]
    expected: tuple[int, ...] | str


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file of a multipart upload: read when the plan is, sent as it was."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One kind of request the plan sends, chosen in proportion to ``weight``."""

    name: str
    method: str
    url: str
    path: Template
    headers: tuple[tuple[str, Template], ...] = ()
    body: Template | None = None
    weight: int = 1
    extract: tuple[Extraction, ...] = ()
    """A flow step's variables, read off its response."""
    checks: tuple[FlowCheck, ...] = ()
    """A flow step's named checks of its response."""
    tags: tuple[tuple[str, str], ...] = ()
    """The request's own tags (``tags: {kind: search}``), for sub-metric objectives."""
    origin: str = ""
    """Another host's ``scheme://host:port`` (a ``url:`` off the target); empty: the target."""
    redirects: int | None = None
    """How many redirects it follows (None: the plan's ``redirects``)."""
    multipart: tuple[tuple[str, Template | FilePart], ...] = ()
    """A multipart/form-data body: text fields (templates) and files, in order."""
    boundary: str = ""
    """The multipart body's boundary (its Content-Type header names it)."""
    grpc: GrpcCall | None = None
    """A gRPC call: ``body`` is its message as a JSON template, sent as protobuf."""

    def tag_values(self) -> dict[str, str]:
        """Its tags and the system tags ``name`` and ``method``."""
        return {**dict(self.tags), "name": self.name, "method": self.method}

    @property
    def static(self) -> bool:
        """True when the request's bytes never change (precompiled once)."""
        return (
            self.path.static
            and all(v.static for _, v in self.headers)
            and (self.body is None or self.body.static)
            and all(not isinstance(v, Template) or v.static for _, v in self.multipart)
        )

    def render_multipart(self, ctx: Any) -> bytes:
        """The multipart body, its text fields rendered with ``ctx``."""
        parts: dict[str, tuple[str, bytes, str] | str] = {
            name: (v.filename, v.content, v.content_type)
            if isinstance(v, FilePart)
            else v.render(ctx)
            for name, v in self.multipart
        }
        return encode_multipart(parts, boundary=self.boundary)[0]


@dataclass(frozen=True, slots=True)
class CompressionSpec:
    """A plan's ``compression:``: encodings asked of the target, and of request bodies."""

    accept: tuple[str, ...] = ()
    """Sent as Accept-Encoding, in order of preference; responses are decoded and counted."""
    request: str | None = None
    """Request bodies are sent in this encoding (with Content-Encoding)."""

    def metrics(self) -> tuple[tuple[str, str], ...]:
        """The ``compression.*`` metrics a worker records for it."""
        if not self.accept:
            return ()
        names = [("compression.wire_bytes", "counter"), ("compression.decoded_bytes", "counter"),
                 ("compression.decode_ms", "trend")]  # fmt: skip
        names += [(f"compression.responses.{e}", "counter") for e in ("identity", *self.accept)]
        return tuple(names)


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """A plan's ``websocket:``: connections held open, messages on a schedule, round trips.

    Each virtual user of the (closed) load holds one connection; every ``every`` seconds
    it sends ``message`` (rendered per message). A reply is matched to its message by
    ``correlate``: ``echo`` (the reply is the message itself) or a JSON field name (the
    reply carries the message's value of that field); its round trip is timed from the
    message's intended send time, so a slow server is not hidden by a late sender.
    """

    path: str = "/"
    every: float | None = None
    """Seconds between one connection's messages; None: connect and hold only."""
    message: Template | None = None
    correlate: str = "echo"
    name: str = "message"
    """The endpoint of the round trips (the handshakes are ``connect``)."""
    compression: bool = False
    """permessage-deflate: off unless asked (about 4x the memory per connection)."""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ThinkStep:
    """A pause in a flow: ``minimum`` seconds, or uniformly up to ``maximum``."""

    minimum: float
    maximum: float


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A journey: the async ``function`` of a Python plan's module, or a flow's ``steps``."""

    name: str
    function: str
    weight: int = 1
    steps: tuple[RequestSpec | ThinkStep, ...] = ()
    pick_one: bool = False
    """An iteration is one of ``steps`` (requests, in weighted turn), not all of them."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated load-test plan. Build one with :func:`redline.plan.load_plan`."""

    name: str
    target: str
    requests: tuple[RequestSpec, ...]
    load: OpenLoad | ClosedLoad
    duration: float
    warmup: float = 0.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_connections: int = 1024
    protocol: Literal["http1", "h2", "h2c"] = "http1"
    """How requests go on the wire: HTTP/1.1, HTTP/2 over TLS (ALPN) or h2c (prior knowledge)."""
    max_streams: int = 100
    """HTTP/2: concurrent streams per connection (and the server's limit, if lower)."""
    compression: CompressionSpec | None = None
    """What the plan asks of compression (None: nothing is asked)."""
    websocket: WebSocketSpec | None = None
    """A WebSocket plan's connections and messages (instead of requests)."""
    grpc_schema: bytes | None = None
    """The plan's ``grpc: {proto:}`` compiled (a FileDescriptorSet), for ``session.grpc``."""
    max_in_flight: int = 10_000
    max_response_size: int = 64 * 1024 * 1024
    verify_tls: bool = True
    workers: int | None = None
    seed: int | None = None
    late_threshold: float = 0.005
    late_tolerance: float = 0.01
    on_worker_lost: Literal["abort", "continue"] = "abort"
    """What a run does when a worker is lost (a cluster host killed or cut off)."""
    data: tuple[DataSource, ...] = field(default=())
    source: str = "<plan>"
    scenarios: tuple[ScenarioSpec, ...] = ()
    module: str | None = None
    """The Python plan file that defines ``scenarios`` (and ``setup``/``teardown``)."""
    has_setup: bool = False
    has_teardown: bool = False
    has_shape: bool = False
    """A Python plan's ``shape(elapsed_s)`` steers its load live (Locust's LoadTestShape)."""
    slos: tuple[Objective, ...] = ()
    """The plan's objectives (its ``slo:`` section, or a ``--slo`` file's)."""
    redact: tuple[str, ...] = ()
    """Header and field names whose values are secret (besides Authorization and cookies)."""
    shape: Mapping[str, Any] = field(default_factory=dict)
    """The test type that shaped the load (``type``, ``peak``; a spike's window), if any."""
    faults: FaultPlan = field(default_factory=FaultPlan)
    """Proxies the run starts and the faults it applies on schedule (``faults:``)."""
    observe: ObservePlan = field(default_factory=ObservePlan)
    """What the run watches of its target: a process it serves, PIDs, cgroups (``observe:``)."""
    cost: CostSpec | None = None
    """A price table for the cost per request (``cost:``)."""
    trace: TracePlan = field(default_factory=TracePlan)
    """Trace context on the requests, and where their spans come back (``trace:``)."""
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    """Where load may go: the ``allow:`` and ``block:`` lists, checked on every connection."""
    workloads: tuple[Workload, ...] = ()
    """The plan's ``scenarios:`` (k6's), run side by side; ``load`` is then their sum."""
    redirects: int = 0
    """How many redirects a request follows (0: none; the 3xx is the answer measured)."""
    metrics: tuple[tuple[str, str], ...] = ()
    """A Python plan's custom metrics: name and kind (``counter``, ``gauge``...)."""

    @property
    def splits_status(self) -> bool:
        """Whether an objective judges responses of one status (``p99{status:200}``)."""
        return any(key == "status" for o in self.slos for key, _ in o.tags)

    def all_requests(self) -> list[RequestSpec]:
        """Every request the plan declares: its own, its flows' steps, its scenarios'."""
        plans = [self, *(w.plan for w in self.workloads)]
        steps = (s for p in plans for sc in p.scenarios for s in sc.steps)
        return [
            *(r for p in plans for r in p.requests),
            *(s for s in steps if isinstance(s, RequestSpec)),
        ]

    @property
    def max_slots(self) -> int:
        """Requests one worker's pool may have in flight at once.

        Connections for HTTP/1.1, connections times streams for HTTP/2.
        """
        if self.protocol == "http1":
            return self.max_connections
        return self.max_connections * self.max_streams

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of the target."""
        parts = urlsplit(self.target)
        scheme = parts.scheme
        port = (
            parts.port or QUEUE_SCHEMES.get(scheme) or (443 if scheme in ("https", "wss") else 80)
        )
        return scheme, parts.hostname or "", port

    def redactor(self) -> Redactor:
        """The redactor for this plan's secrets.

        It knows the plan's ``redact`` names and the literal values of its secret
        headers, so that a traceback quoting one is scrubbed too.
        """
        names = Redactor(self.redact)
        secrets = [
            value.value
            for r in self.all_requests()
            for name, value in r.headers
            if value.static and names.is_secret(name)
        ]
        return Redactor(self.redact, secrets=secrets)

    def summary(self) -> PlanSummary:
        """What a run keeps of this plan (its ``RunResult.plan``), secrets redacted."""
        return PlanSummary.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form of the plan, as stored in run results, with secrets redacted."""
        redactor = self.redactor()
        return {
            "name": self.name,
            "target": redactor.url(self.target),
            "source": self.source,
            "load": self.load.to_dict(),
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "requests": [_request_dict(r, redactor) for r in self.requests],
            "scenarios": [_scenario_dict(s, redactor) for s in self.scenarios],
            **({"workloads": [w.to_dict() for w in self.workloads]} if self.workloads else {}),
            "slo": [o.to_dict() for o in self.slos],
            "timeouts": {"connect": self.connect_timeout, "read": self.read_timeout},
            **({"protocol": self.protocol} if self.protocol != "http1" else {}),
            "limits": {
                "max_connections": self.max_connections,
                **({"max_streams": self.max_streams} if self.protocol != "http1" else {}),
                "max_in_flight": self.max_in_flight,
                "max_response_size": self.max_response_size,
            },
            "redact": sorted(redactor.names),
            **({"shape": dict(self.shape)} if self.shape else {}),
            **(
                {
                    "faults": [f.to_dict() for f in self.faults.schedule],
                    "fault_proxies": self.faults.to_dict()["proxies"],
                }
                if self.faults.schedule or self.faults.proxies
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class Workload:
    """One scenario of a plan's ``scenarios:`` (k6's): an executor, its work, its window.

    ``plan`` holds what it sends (requests, flows or a Python function) and its load on
    the run's clock: nothing before ``start_time``, nothing after ``end``. The iteration
    executors count ``iterations`` (per virtual user, or shared by them all).
    """

    name: str
    executor: str
    plan: Plan
    start_time: float = 0.0
    duration: float = 0.0
    """How long it may run: its ``duration``, or an iteration executor's ``max_duration``."""
    graceful_stop: float = 30.0
    """At its end, how long iterations under way may take to finish before they are cut."""
    iterations: int | None = None
    vus: int = 0
    """The virtual users of a VU executor (its most, for a ramping one)."""
    tags: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def end(self) -> float:
        """When it stops starting work, in seconds from the start of the run."""
        return self.start_time + self.duration

    @property
    def open_model(self) -> bool:
        """Whether it is an arrival-rate executor."""
        return self.executor.endswith("arrival-rate")

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The names of the requests it sends (declared ones; a Python scenario's aside)."""
        requests = self.plan.all_requests()
        return tuple(dict.fromkeys(r.name for r in requests))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in run results (``plan.workloads``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "executor": self.executor,
            "start_time_s": self.start_time,
            "duration_s": self.duration,
            "graceful_stop_s": self.graceful_stop,
            "load": self.plan.load.to_dict(),
            "endpoints": list(self.endpoints),
        }
        if self.iterations is not None:
            out["iterations"] = self.iterations
        if self.vus:
            out["vus"] = self.vus
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.env:  # the names only: values are often tokens
            out["env"] = sorted(name for name, _ in self.env)
        scenarios = [s.name for s in self.plan.scenarios if not s.pick_one]
        if scenarios:
            out["flows"] = scenarios
        return out


def _request_dict(request: RequestSpec, redactor: Redactor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": request.name,
        "method": request.method,
        "path": redactor.url(request.path.text),
        "weight": request.weight,
    }
    if request.headers:
        out["headers"] = dict(redactor.headers((k, v.text) for k, v in request.headers))
    if request.body is not None:
        out["body"] = redactor.text(request.body.text)
    return out


def _scenario_dict(scenario: ScenarioSpec, redactor: Redactor) -> dict[str, Any]:
    out: dict[str, Any] = {"name": scenario.name, "weight": scenario.weight}
    if scenario.steps:
        out["steps"] = [
            _request_dict(step, redactor)
            if isinstance(step, RequestSpec)
            else {"think": [step.minimum, step.maximum]}
            for step in scenario.steps
        ]
    return out
