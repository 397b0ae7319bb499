"""A plan's ``observe:`` (what to watch of the target) and ``cost:`` (a price table).

    observe:
      serve: "uvicorn app:app --port 8000"     # or {command: ..., cpus: "1",
                                               #     limit: "cpu=0.5,memory=256M",
                                               #     grace: 5s, ready_timeout: 30s}
      watch: ["pid:1234", "cgroup:/sys/fs/cgroup/system.slice/app.service",
              "prometheus:http://127.0.0.1:9100/metrics", "host"]
      profile: true                            # or {rate: 19, idle: true, gil: false}
    cost: {vcpu_hour: 0.0416, gib_hour: 0.0045}

The command line's ``--serve``, ``--serve-cpus``, ``--serve-limit``, ``--observe`` and
``--profile`` fill the same fields. Whether a PID, a cgroup or an endpoint is there is
checked when the run starts (by ``redline.observe``); here only their form is.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

from redline.core import parse_duration, parse_size

from ._node import _boolean, _Node, _show, _text

__all__ = [
    "CostSpec",
    "ObservePlan",
    "ProfileSpec",
    "ServeSpec",
    "WatchSpec",
    "parse_cost",
    "parse_cpus",
    "parse_limit",
    "parse_observe",
    "parse_watch",
]

WATCH_KINDS = ("pid", "cgroup", "prometheus", "host")


@dataclass(frozen=True)
class WatchSpec:
    """One thing to watch.

    ``pid:1234``, ``cgroup:/sys/fs/cgroup/...``, ``prometheus:http://...``, or ``host``.
    """

    kind: Literal["pid", "cgroup", "prometheus", "host"]
    value: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "host" else f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class ServeSpec:
    """A target redline starts, watches and stops (``--serve``).

    Attributes:
        command: the command line (split as a shell would, run without one).
        cpus: CPUs to pin it to (``"0"``, ``"0-1"``, ``"0,2"``).
        cpu_limit: a CPU quota in cores, in a cgroup redline makes.
        memory_limit: a memory limit in bytes, likewise.
        grace_s: how long it has to exit after SIGTERM before SIGKILL.
        ready_timeout_s: how long it has to answer on the plan's target.
    """

    command: str
    cpus: str | None = None
    cpu_limit: float | None = None
    memory_limit: int | None = None
    grace_s: float = 5.0
    ready_timeout_s: float = 30.0

    @property
    def argv(self) -> list[str]:
        """The command as arguments."""
        return shlex.split(self.command)

    @property
    def cpu_list(self) -> tuple[int, ...]:
        """The CPUs of :attr:`cpus`, each once, in order."""
        return parse_cpus(self.cpus) if self.cpus else ()


@dataclass(frozen=True)
class ProfileSpec:
    """Stack sampling of the watched Python processes (py-spy).

    Attributes:
        rate_hz: samples per second (the default keeps the cost to the target small).
        idle: also sample idle and waiting threads, kept apart from the on-CPU samples.
        gil: count as on-CPU only the thread that holds the GIL.
    """

    rate_hz: float = 19.0
    idle: bool = True
    gil: bool = False


@dataclass(frozen=True)
class ObservePlan:
    """Everything under ``observe:``: a target to serve, things to watch, a profile."""

    serve: ServeSpec | None = None
    watch: tuple[WatchSpec, ...] = ()
    profile: ProfileSpec | None = None

    @property
    def active(self) -> bool:
        """Whether the run watches its target at all."""
        return self.serve is not None or bool(self.watch)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as kept in the run's plan."""
        out: dict[str, Any] = {"watch": [str(w) for w in self.watch]}
        if self.serve is not None:
            out["serve"] = self.serve.command
        if self.profile is not None:
            out["profile"] = {"rate_hz": self.profile.rate_hz, "gil": self.profile.gil}
        return out


@dataclass(frozen=True)
class CostSpec:
    """A price table: what a vCPU-hour and a GiB-hour cost (one currency, unnamed)."""

    vcpu_hour: float = 0.0
    gib_hour: float = 0.0


_CPUS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_cpus(text: str) -> tuple[int, ...]:
    """``"0-2,5"`` as ``(0, 1, 2, 5)``.

    Raises:
        ValueError: not a CPU list.
    """
    text = str(text).replace(" ", "")
    if not _CPUS.match(text):
        raise ValueError(f'expected a CPU list like "0", "0-1" or "0,2", got {_show(text)}')
    cpus: dict[int, None] = {}
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"expected a rising range, got {part!r}")
        cpus.update(dict.fromkeys(range(first, last + 1)))
    return tuple(cpus)


def parse_limit(text: str) -> tuple[float | None, int | None]:
    """``"cpu=0.5,memory=256M"`` as ``(0.5, 268435456)``; either part may be left out.

    Raises:
        ValueError: an unknown resource, or a value that is not a positive amount.
    """
    cpu: float | None = None
    memory: int | None = None
    for part in str(text).split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise ValueError(f"expected resource=amount (cpu=0.5, memory=256M), got {part!r}")
        if key == "cpu":
            try:
                cpu = float(value)
            except ValueError:
                raise ValueError(f"cpu: expected cores like 0.5, got {value!r}") from None
            if not 0.01 <= cpu <= 1024:
                raise ValueError(f"cpu: expected between 0.01 and 1024 cores, got {value}")
        elif key == "memory":
            memory = int(parse_size(value))
            if memory < 4 * 1024 * 1024:
                raise ValueError(f"memory: expected at least 4M, got {value}")
        else:
            raise ValueError(f"unknown resource {key!r} (expected cpu or memory)")
    return cpu, memory


def parse_watch(text: str) -> WatchSpec:
    """``pid:1234``, ``cgroup:/sys/fs/cgroup/...``, ``prometheus:http://...`` or ``host``.

    Raises:
        ValueError: none of those forms.
    """
    text = str(text).strip()
    if text == "host":
        return WatchSpec("host")
    kind, sep, value = text.partition(":")
    forms = "pid:1234, cgroup:/sys/fs/cgroup/..., prometheus:http://host:port/metrics or host"
    if not sep or kind not in WATCH_KINDS or kind == "host" or not value:
        raise ValueError(f"expected one of {forms}, got {text!r}")
    if kind == "pid" and not (value.isdigit() and int(value) > 0):
        raise ValueError(f"pid: expected a process id like pid:1234, got {text!r}")
    if kind == "cgroup" and not value.startswith("/"):
        raise ValueError(f"cgroup: expected an absolute path, got {text!r}")
    if kind == "prometheus" and not value.startswith(("http://", "https://")):
        raise ValueError(f"prometheus: expected an http(s) URL, got {text!r}")
    return WatchSpec(kind, value)  # type: ignore[arg-type]


def _serve(value: object, node: _Node) -> ServeSpec:
    if isinstance(value, str):
        command = value
        item = None
    else:
        item = _Node(value, node.child_path("serve"), node.source)
        item.check_keys(("command", "cpus", "limit", "grace", "ready_timeout"))
        command = item.get("command", _text)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        node.fail(f"cannot split the command: {exc}", "serve")
    if not argv:
        node.fail("expected a command to start the target", "serve")
    if item is None:
        return ServeSpec(command)
    cpu, memory = item.get("limit", parse_limit, (None, None))
    return ServeSpec(
        command,
        cpus=item.get("cpus", lambda v: ",".join(map(str, parse_cpus(str(v)))), None),
        cpu_limit=cpu,
        memory_limit=memory,
        grace_s=item.get("grace", parse_duration, 5.0),
        ready_timeout_s=item.get("ready_timeout", parse_duration, 30.0),
    )


def _profile(value: object, node: _Node) -> ProfileSpec | None:
    if isinstance(value, bool):
        return ProfileSpec() if value else None
    item = _Node(value, node.child_path("profile"), node.source)
    item.check_keys(("rate", "idle", "gil"))
    rate = item.get("rate", _rate_hz, 19.0)
    return ProfileSpec(
        rate_hz=rate, idle=item.get("idle", _boolean, True), gil=item.get("gil", _boolean, False)
    )


def _rate_hz(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 1000:
        raise ValueError(f"expected samples per second between 1 and 1000, got {_show(value)}")
    return float(value)


def parse_observe(root: _Node) -> ObservePlan:
    """The plan's ``observe:`` section (nothing watched without one)."""
    node = root.node("observe")
    if node is None:
        return ObservePlan()
    node.check_keys(("serve", "watch", "profile"))
    serve = _serve(node.value["serve"], node) if node.value.get("serve") is not None else None
    watch = []
    for path, value in node.items("watch"):
        try:
            watch.append(parse_watch(_text(value)))
        except ValueError as exc:
            _Node({}, path, root.source).fail(str(exc))
    profile = _profile(node.value["profile"], node) if "profile" in node.value else None
    return ObservePlan(serve=serve, watch=tuple(watch), profile=profile)


def _price(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a price of 0 or more, got {_show(value)}")
    return float(value)


def parse_cost(root: _Node) -> CostSpec | None:
    """The plan's ``cost:`` price table, if it has one."""
    node = root.node("cost")
    if node is None:
        return None
    node.check_keys(("vcpu_hour", "gib_hour"))
    return CostSpec(
        vcpu_hour=node.get("vcpu_hour", _price, 0.0), gib_hour=node.get("gib_hour", _price, 0.0)
    )
