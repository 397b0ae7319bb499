"""The target seen from inside during a run: what was watched, its samples, its profile.

A run that watches its target (``--serve``, ``--observe``, a plan's ``observe:``) keeps a
:class:`TargetReport` beside its result: per interval and per watched thing a sample of
saturation figures (the same interval ids as the load), the profile of the watched Python
processes, and what was read off them (the USE table, the bottleneck, the cost per
request, memory growth). Its JSON form is the ``target`` of docs/result-json.md.

A figure that could not be read is ``None`` (null in JSON), never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._codec import from_data, to_data

__all__ = [
    "BOTTLENECKS",
    "Bottleneck",
    "MemoryGrowth",
    "ProfileFunction",
    "ServedProcess",
    "TargetCost",
    "TargetProfile",
    "TargetReport",
    "TargetVerdict",
    "UseRow",
    "WatchedThing",
]

Bottleneck = Literal["cpu", "cpu-quota", "memory", "io", "network", "lock", "pool", "none"]
"""The resource a verdict names: the first to saturate, or ``none``."""

BOTTLENECKS: tuple[Bottleneck, ...] = (
    "cpu",
    "cpu-quota",
    "memory",
    "io",
    "network",
    "lock",
    "pool",
    "none",
)
"""Every bottleneck a verdict may name."""

_OMIT = {"omit_default": True}


@dataclass(frozen=True, slots=True)
class WatchedThing:
    """One thing a run watched: a process tree, a cgroup, a metrics endpoint, the host.

    Attributes:
        name: how samples name it (``serve``, ``pid:1234``, ``cgroup:...``, ``host``).
        kind: ``process``, ``cgroup``, ``prometheus`` or ``host``.
        cores: the CPU it may use, in cores (a quota, an affinity mask, the host's count).
        memory_limit_bytes: its memory limit, when it has one.
        python: whether it is one Python process (the GIL caps its CPU at one core).
        exited_at_s: when it exited during the run (seconds from the start of the load).
        exit_status: its exit status then (negative: the signal that ended it).
        note: why some of its figures are missing, for people.
    """

    name: str
    kind: Literal["process", "cgroup", "prometheus", "host"]
    cores: float | None = None
    memory_limit_bytes: float | None = field(default=None, metadata=_OMIT)
    python: bool = field(default=False, metadata=_OMIT)
    exited_at_s: float | None = field(default=None, metadata=_OMIT)
    exit_status: int | None = field(default=None, metadata=_OMIT)
    note: str | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True, slots=True)
class ProfileFunction:
    """One function of a profile: where it is and its share of the samples (0-100)."""

    function: str
    file: str
    line: int
    self_pct: float
    total_pct: float


@dataclass(frozen=True, slots=True)
class TargetProfile:
    """Stack samples of the watched Python processes over a window of the run.

    Attributes:
        rate_hz: samples per second per thread.
        window_s: the seconds of the run sampled (from the start of the load).
        samples: on-CPU samples (threads that were running).
        waiting_samples: samples of threads that were idle or waiting (locks, pools, I/O).
        top: functions by on-CPU self time, highest first.
        waiting_top: the same for the waiting samples.
        folded: on-CPU stacks, ``frame;frame;...`` (root first) to sample counts.
        waiting_folded: waiting stacks likewise.
        waits: the waiting samples of application code by what they waited on
            (``lock``, ``pool``, ``io``, ``sleep``, ``other``).
        wait_sites: for each kind of wait, the application frame that waited most
            (``function (file:line)``).
        note: why the profile is missing or partial, for people.
    """

    rate_hz: float
    window_s: tuple[float, float]
    samples: int = 0
    waiting_samples: int = 0
    top: tuple[ProfileFunction, ...] = ()
    waiting_top: tuple[ProfileFunction, ...] = ()
    folded: Mapping[str, int] = field(default_factory=dict)
    waiting_folded: Mapping[str, int] = field(default_factory=dict)
    waits: Mapping[str, int] = field(default_factory=dict)
    wait_sites: Mapping[str, str] = field(default_factory=dict)
    note: str | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True, slots=True)
class UseRow:
    """One row of the USE table: a resource's utilisation, saturation and errors.

    Attributes:
        resource: ``cpu``, ``memory``, ``io``, ``network``, ``lock``/``pool`` (waiting).
        thing: the watched thing it was read on.
        utilisation_pct: how busy (0-100, of what the thing may use), when known.
        saturation: the figure that tells queueing, with ``saturation_unit``.
        errors: the figure that tells failure, with ``errors_unit``.
    """

    resource: str
    thing: str
    utilisation_pct: float | None
    saturation: float | None = None
    saturation_unit: str = ""
    errors: float | None = None
    errors_unit: str = ""


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    """The bottleneck, in one word and one line of evidence."""

    bottleneck: Bottleneck
    evidence: str


@dataclass(frozen=True, slots=True)
class MemoryGrowth:
    """The memory trend over the run: a slope with its 95% interval, and a verdict.

    Attributes:
        thing: the watched thing whose memory was read.
        slope_bytes_per_s: the least-squares slope of its memory over time.
        low: the 95% interval's lower end.
        high: its upper end.
        growing: whether the interval excludes 0 and the growth is material.
    """

    thing: str
    slope_bytes_per_s: float
    low: float
    high: float
    growing: bool


@dataclass(frozen=True, slots=True)
class TargetCost:
    """What a request cost the target, and in money with a price table.

    Attributes:
        cpu_s_per_request: CPU-seconds per request.
        memory_gib_s_per_request: memory held, in GiB-seconds per request.
        per_million: the price of a million requests (``None`` without a price table).
        vcpu_hour: the price of a vCPU-hour used.
        gib_hour: the price of a GiB-hour used.
    """

    cpu_s_per_request: float | None
    memory_gib_s_per_request: float | None
    per_million: float | None = None
    vcpu_hour: float | None = field(default=None, metadata=_OMIT)
    gib_hour: float | None = field(default=None, metadata=_OMIT)


@dataclass(frozen=True, slots=True)
class ServedProcess:
    """The target redline started (``--serve``): its command, how it ended, its output.

    Attributes:
        command: the command line.
        pid: its process id.
        exit_status: how it exited (negative: the signal that ended it); ``None`` while
            it ran to the end of the run and was stopped by redline.
        exited_at_s: when it exited on its own, seconds from the start of the load.
        stdout_tail: the last lines it wrote to standard output.
        stderr_tail: the last lines it wrote to standard error.
        cgroup: the cgroup redline made for it (``--serve-limit``).
        cpus: the CPUs it was pinned to (``--serve-cpus``).
    """

    command: str
    pid: int
    exit_status: int | None = None
    exited_at_s: float | None = None
    stdout_tail: tuple[str, ...] = ()
    stderr_tail: tuple[str, ...] = ()
    cgroup: str | None = field(default=None, metadata=_OMIT)
    cpus: str | None = field(default=None, metadata=_OMIT)


Sample = Mapping[str, float | None]
"""One interval's figures of one watched thing; ``interval`` is the interval's index."""


@dataclass(frozen=True)
class TargetReport:
    """What a run saw of its target from inside (the ``target`` of the result JSON).

    Attributes:
        watched: the things watched.
        samples: per watched thing, one sample per interval (``interval`` is its index).
        profile: the stack profile, when one was taken.
        served: the process redline started, when it started one.
        use: the USE table (utilisation, saturation, errors per resource).
        verdict: the bottleneck.
        memory_growth: the memory trend, over runs long enough to read one.
        cost: the cost per request.
        notes: what could not be watched, and why.
    """

    watched: tuple[WatchedThing, ...] = ()
    samples: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    profile: TargetProfile | None = None
    served: ServedProcess | None = None
    use: tuple[UseRow, ...] = ()
    verdict: TargetVerdict | None = None
    memory_growth: MemoryGrowth | None = None
    cost: TargetCost | None = None
    notes: tuple[str, ...] = ()

    def series(self, thing: str, metric: str) -> list[tuple[int, float | None]]:
        """``metric`` of ``thing`` per interval, as ``(interval, value)`` pairs."""
        return [(int(s["interval"] or 0), s.get(metric)) for s in self.samples.get(thing, ())]

    def thing(self, name: str) -> WatchedThing | None:
        """The watched thing called ``name``, if there is one."""
        return next((t for t in self.watched if t.name == name), None)

    @property
    def primary(self) -> WatchedThing | None:
        """The thing a verdict is about.

        The served process (watched first), else the first watched process or cgroup,
        else the first thing at all.
        """
        for kinds in (("process", "cgroup"), ("prometheus", "host")):
            for thing in self.watched:
                if thing.kind in kinds:
                    return thing
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (docs/result-json.md, ``target``)."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetReport:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: ``data`` is not a target report (the message names the path).
        """
        return from_data(cls, data, path="$.target")
