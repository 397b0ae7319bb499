"""Faults beyond the proxy: processes, cgroups, noisy neighbours, network below L7, disks.

Each kind is parsed and checked by :func:`host_fault` (before any load: a bad value, a
target that is not ours, a missing permission or kernel feature is a :class:`HostFaultError`
naming the key), then applied and undone by the schedule. Every change is written to the
:class:`Ledger` before it is made, so the watchdog or ``redline faults clean`` can undo it
after a crash. Targets are ``serve`` (the process ``--serve`` started), ``pid:N`` and
``cgroup:PATH``, as in ``--observe``; never PID 1 nor redline itself.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from redline.core import parse_duration, parse_size

from ._cgroups import CGROUP_KNOBS, CgroupHost, ControlGroup, device_of
from ._dns import DNS_FAULTS, DnsServer
from ._errors import FaultError
from ._ledger import Ledger, LedgerEntry, process_started
from ._stress import stressor_argv
from ._watchdog import ensure_watchdog

__all__ = [
    "HOST_FAULT_KINDS",
    "HostContext",
    "HostFault",
    "HostFaultError",
    "Served",
    "host_fault",
    "netem_available",
]

HOST_FAULT_KINDS = ("process", "cgroup", "neighbour", "network", "disk", "dns")
"""The keys of a scheduled fault that name a host fault (beside ``down`` and ``toxic``)."""

PROCESS_ACTIONS = ("kill", "term", "pause", "restart")
_GRACE_S = 10.0  # a fault is undone by the watchdog this long after its time is up


class HostFaultError(FaultError):
    """A host fault that cannot be made: ``key`` is where in its entry (``action``, ``cpu_max``)."""

    def __init__(self, message: str, *, key: str = "") -> None:
        """``message`` for people; ``key`` the entry's key it is about."""
        super().__init__(message)
        self.key = key


class Served(Protocol):
    """What a fault needs of the process ``--serve`` started."""

    @property
    def pid(self) -> int:
        """Its process id (a session leader: its group holds its children)."""

    @property
    def argv(self) -> list[str]:
        """Its command."""

    @property
    def cgroup(self) -> str | None:
        """Its own cgroup (``--serve-limit``), if it has one."""

    def restart(self) -> None:
        """Start it again after it was killed."""


@dataclass
class HostContext:
    """What host faults act through: the served target, proxies, the ledger, the host."""

    served: Served | None = None
    proxies: Any = None  # a ProxyControl, for network faults that fall back to toxics
    allow_host: bool = False
    ledger: Ledger = field(default_factory=Ledger)
    cgroups: CgroupHost = field(default_factory=CgroupHost)
    dns: DnsServer | None = None


@dataclass
class _Target:
    pid: int | None = None
    group: bool = False
    cgroup: str | None = None
    served: bool = False


def _target(text: object, ctx: HostContext, *, key: str = "target") -> _Target:
    value = str(text)
    if value == "serve":
        if ctx.served is None:
            raise HostFaultError("target serve: nothing is served (give --serve)", key=key)
        return _Target(pid=ctx.served.pid, group=True, cgroup=ctx.served.cgroup, served=True)
    kind, _, rest = value.partition(":")
    if kind == "pid":
        try:
            pid = int(rest)
        except ValueError:
            raise HostFaultError(f"expected pid:N, got {value!r}", key=key) from None
        if pid <= 1 or pid == os.getpid() or pid == os.getppid():
            raise HostFaultError(f"pid {pid}: never PID 1 nor redline itself", key=key)
        if process_started(pid) is None:
            raise HostFaultError(f"pid {pid}: no such process", key=key)
        return _Target(pid=pid)
    if kind == "cgroup" and rest:
        return _Target(cgroup=rest)
    raise HostFaultError(f"expected serve, pid:N or cgroup:PATH, got {value!r}", key=key)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return [pid]


class HostFault:
    """One host fault: checked when made, applied and undone by the schedule.

    ``via`` says what carried it out (``cgroup v1``, ``netem``, ``fault proxy``...) once it
    is applied; ``detail`` what was changed.
    """

    kind = ""

    def __init__(self, name: str, spec: Mapping[str, Any], *, max_s: float) -> None:
        """Parse ``spec`` (raises :class:`HostFaultError` naming the key at fault)."""
        self.name = name
        self.spec = dict(spec)
        self.max_s = max_s
        self.via = ""
        self.detail = ""
        self._entry: LedgerEntry | None = None
        self._ctx: HostContext | None = None
        self.parse()

    def parse(self) -> None:
        """Check the spec's shape and values."""

    def check(self, ctx: HostContext) -> None:
        """Check that it can be applied here (targets, permissions, kernel), before load."""

    def _open(self, ctx: HostContext) -> LedgerEntry:
        self._ctx = ctx
        self._entry = ctx.ledger.open(self.name, self.kind, max_s=self.max_s + _GRACE_S)
        ensure_watchdog(ctx.ledger.folder)
        return self._entry

    def apply(self, ctx: HostContext) -> None:
        """Make the fault (recording how to undo it first)."""
        entry = self._open(ctx)
        try:
            self._apply(ctx, entry)
        except BaseException:
            self.undo()
            raise

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        raise NotImplementedError

    def undo(self) -> list[str]:
        """Undo it (idempotent); the problems met."""
        entry, self._entry = self._entry, None
        if entry is None or self._ctx is None:
            return []
        return self._ctx.ledger.undo(entry)

    def to_dict(self) -> dict[str, Any]:
        """What a run records of it."""
        out: dict[str, Any] = {"kind": self.kind, "spec": self.spec}
        if self.via:
            out["via"] = self.via
        if self.detail:
            out["detail"] = self.detail
        return out


def _number(spec: Mapping[str, Any], key: str, *, low: float, high: float) -> float:
    try:
        value = float(spec[key])
    except (TypeError, ValueError):
        raise HostFaultError(f"expected a number, got {spec[key]!r}", key=key) from None
    if not low <= value <= high:
        raise HostFaultError(f"expected between {low:g} and {high:g}, got {value:g}", key=key)
    return value


def _size(spec: Mapping[str, Any], key: str) -> int:
    try:
        return parse_size(spec[key])
    except ValueError as exc:
        raise HostFaultError(str(exc), key=key) from None


def _keys(spec: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in spec:
        if key not in allowed:
            raise HostFaultError(f"unknown key; expected one of {', '.join(allowed)}", key=key)


class ProcessFault(HostFault):
    """``{target, action: kill|term|pause|restart, delay, restart}``: signals to a process.

    ``pause`` is SIGSTOP, undone by SIGCONT. ``kill`` (SIGKILL) and ``term`` (SIGTERM) are
    undone by starting the process again (its command, folder and environment, read from
    ``/proc`` before the signal; ``serve`` is restarted by redline), unless ``restart:
    false``. ``restart`` is SIGTERM, then a new start ``delay`` later, within the fault.
    """

    kind = "process"

    def parse(self) -> None:
        """Check the action and the delay."""
        _keys(self.spec, ("target", "action", "delay", "restart"))
        if "target" not in self.spec:
            raise HostFaultError("is required (serve, pid:N)", key="target")
        self.action = str(self.spec.get("action", "kill"))
        if self.action not in PROCESS_ACTIONS:
            raise HostFaultError(
                f"expected one of {', '.join(PROCESS_ACTIONS)}, got {self.action!r}", key="action"
            )
        try:
            self.delay_s = parse_duration(self.spec.get("delay", 0))
        except ValueError as exc:
            raise HostFaultError(str(exc), key="delay") from None
        self.restarts = bool(self.spec.get("restart", True))
        self._timer: threading.Timer | None = None
        self._restarted = threading.Event()

    def check(self, ctx: HostContext) -> None:
        """The target must be a process."""
        target = _target(self.spec["target"], ctx)
        if target.pid is None:
            raise HostFaultError("a process fault needs serve or pid:N", key="target")

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        target = _target(self.spec["target"], ctx)
        assert target.pid is not None
        pid, ledger = target.pid, ctx.ledger
        started = process_started(pid)
        send = os.killpg if target.group else os.kill
        self.via = f"signals to {'the group of ' if target.group else ''}pid {pid}"
        if self.action == "pause":
            ledger.add(
                entry,
                {
                    "op": "signal",
                    "pid": pid,
                    "started": started,
                    "signal": "SIGCONT",
                    "group": target.group,
                },
            )
            send(pid, signal.SIGSTOP)
            _settle(pid, lambda p: p.status() == psutil.STATUS_STOPPED)
            self.detail = "SIGSTOP"
            return
        if self.restarts:
            ledger.add(entry, {"op": "spawn", **_command_of(pid, ctx if target.served else None)})
        self._served = target.served
        signum = signal.SIGKILL if self.action == "kill" else signal.SIGTERM
        send(pid, signum)
        _settle(pid, lambda p: p.status() == psutil.STATUS_ZOMBIE)
        self.detail = signum.name
        if self.action == "restart":
            self._timer = threading.Timer(self.delay_s, self._start_again)
            self._timer.daemon = True
            self._timer.start()

    def _start_again(self) -> None:
        if self._restarted.is_set() or self._ctx is None or self._entry is None:
            return
        self._restarted.set()
        if self._served and self._ctx.served is not None:
            if not self._ctx.ledger.claim(self._entry):
                return  # the watchdog started it again already
            self._ctx.served.restart()
            self._ctx.ledger.close(self._entry)  # its spawn step is done another way
        else:
            entry = self._entry
            self._ctx.ledger.undo(entry)
        self.detail += ", started again"

    def undo(self) -> list[str]:
        """SIGCONT, or start it again (at once, if a restart's delay is still running)."""
        if self._timer is not None:
            self._timer.cancel()
        if self.action != "pause" and self.restarts and self._entry is not None:
            self._start_again()
            self._entry = None
            return []
        return super().undo()


def _settle(pid: int, done: Callable[[psutil.Process], bool], *, timeout_s: float = 2.0) -> None:
    """Wait (briefly) until a signal has taken effect, so "applied" means applied."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if done(psutil.Process(pid)):
                return
        except psutil.Error:
            return  # gone
        time.sleep(0.005)


def _command_of(pid: int, ctx: HostContext | None) -> dict[str, Any]:
    """How to start ``pid`` again: its argv, folder and environment."""
    if ctx is not None and ctx.served is not None:
        return {"argv": list(ctx.served.argv), "cwd": os.getcwd(), "env": None}
    try:
        process = psutil.Process(pid)
        return {"argv": process.cmdline(), "cwd": process.cwd(), "env": process.environ()}
    except psutil.Error as exc:
        raise HostFaultError(f"pid {pid}: cannot read its command to restart it: {exc}") from exc


def _cpus(text: object) -> set[int]:
    out: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        low, _, high = part.partition("-")
        try:
            out.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise HostFaultError(
                f'expected a CPU list like "0-1", got {text!r}', key="cpus"
            ) from None
    return out


class CgroupFault(HostFault):
    """``{target, cpu_max, memory_high, io_max, cpu_weight, memory_low, io_weight}``.

    A ``cgroup:PATH`` target has its knobs written (and restored); ``serve`` and ``pid:N``
    are moved, with their children, into a cgroup redline makes, and moved back after.
    ``io_max`` is ``{path (or device: MAJ:MIN), rbps, wbps, riops, wiops}``.
    """

    kind = "cgroup"

    def parse(self) -> None:
        """Check the knobs' values."""
        _keys(self.spec, ("target", *CGROUP_KNOBS))
        if "target" not in self.spec:
            raise HostFaultError("is required (serve, pid:N, cgroup:PATH)", key="target")
        self.knobs = _knobs(self.spec)
        if not self.knobs:
            raise HostFaultError(f"expected at least one of {', '.join(CGROUP_KNOBS)}")

    def check(self, ctx: HostContext) -> None:
        """The target exists; cgroups can be written; I/O limits have a block device."""
        target = _target(self.spec["target"], ctx)
        if target.cgroup is not None:
            ControlGroup.at(target.cgroup, host=ctx.cgroups)
        if os.geteuid() != 0:
            raise HostFaultError("cgroup faults need root (or a delegated cgroup)", key="target")
        if not ctx.cgroups.v2 and "memory_low" in self.knobs:
            raise HostFaultError(
                "cgroup v1 has no memory.low (it needs a v2 host)", key="memory_low"
            )
        if "io_max" in self.knobs:
            _io_device(self.knobs["io_max"])

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        group = _group_of(_target(self.spec["target"], ctx), ctx, entry)
        self.via = f"cgroup {'v2' if group.v2 else 'v1'} {group}"
        done = []
        for knob, value in self.knobs.items():
            if knob == "io_max":
                value = {**value, "device": _io_device(value)}
            done.append(group.set(ctx.ledger, entry, knob, value))
        self.detail = "; ".join(done)


def _knobs(spec: Mapping[str, Any]) -> dict[str, Any]:
    knobs: dict[str, Any] = {}
    if "cpu_max" in spec:
        knobs["cpu_max"] = _number(spec, "cpu_max", low=0.01, high=1024)
    for key in ("memory_high", "memory_low"):
        if key in spec:
            knobs[key] = _size(spec, key)
    for key in ("cpu_weight", "io_weight"):
        if key in spec:
            knobs[key] = int(_number(spec, key, low=1, high=10000))
    if "io_max" in spec:
        io = spec["io_max"]
        if not isinstance(io, Mapping) or not ({"path", "device"} & set(io)):
            raise HostFaultError("expected {path: DIR, wbps: 1M, ...}", key="io_max")
        limits = {k: v for k, v in io.items() if k in ("rbps", "wbps", "riops", "wiops")}
        if not limits:
            raise HostFaultError("expected at least one of rbps, wbps, riops, wiops", key="io_max")
        checked: dict[str, Any] = {k: v for k, v in io.items() if k in ("path", "device")}
        for key, value in limits.items():
            try:
                checked[key] = parse_size(value)
            except ValueError as exc:
                raise HostFaultError(str(exc), key=f"io_max.{key}") from None
        knobs["io_max"] = checked
    return knobs


def _io_device(io: Mapping[str, Any]) -> str:
    try:
        return str(io["device"]) if "device" in io else device_of(io["path"])
    except FaultError as exc:
        raise HostFaultError(str(exc), key="io_max.path") from None


def _group_of(target: _Target, ctx: HostContext, entry: LedgerEntry) -> ControlGroup:
    if target.cgroup is not None:
        return ControlGroup.at(target.cgroup, host=ctx.cgroups)
    assert target.pid is not None
    group = ControlGroup.make(ctx.ledger, entry, role="target", host=ctx.cgroups)
    group.move_in(ctx.ledger, entry, _tree(target.pid))
    return group


class NeighbourFault(HostFault):
    """``{cpu: N, memory: SIZE, io: DIR, io_rate: SIZE, weight, io_weight, cpus, target}``.

    A stressor in a cgroup of its own: ``weight`` is its ``cpu.weight`` (``cpu.shares`` on
    v1), default 100 (the default of every cgroup: no protection either way). It runs on
    ``cpus``, or on the CPUs the ``target`` may use, so that it competes with it.
    """

    kind = "neighbour"

    def parse(self) -> None:
        """Check the amounts."""
        _keys(
            self.spec, ("cpu", "memory", "io", "io_rate", "weight", "io_weight", "cpus", "target")
        )
        self.cpu = int(_number(self.spec, "cpu", low=0, high=1024)) if "cpu" in self.spec else 0
        self.memory = _size(self.spec, "memory") if "memory" in self.spec else 0
        self.io = str(self.spec["io"]) if "io" in self.spec else None
        self.io_rate = _size(self.spec, "io_rate") if "io_rate" in self.spec else 0
        if not (self.cpu or self.memory or self.io):
            raise HostFaultError("expected at least one of cpu, memory, io")
        self.weight = (
            int(_number(self.spec, "weight", low=1, high=10000)) if "weight" in self.spec else None
        )
        self.io_weight = (
            int(_number(self.spec, "io_weight", low=1, high=10000))
            if "io_weight" in self.spec
            else None
        )
        self.cpus = _cpus(self.spec["cpus"]) if "cpus" in self.spec else None

    def check(self, ctx: HostContext) -> None:
        """Root for cgroups; the I/O folder exists; the target exists."""
        if os.geteuid() != 0:
            raise HostFaultError("a neighbour in its own cgroup needs root")
        if self.io is not None and not Path(self.io).is_dir():
            raise HostFaultError(f"no folder {self.io!r}", key="io")
        if "target" in self.spec:
            _target(self.spec["target"], ctx)

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        group = ControlGroup.make(ctx.ledger, entry, role="neighbour", host=ctx.cgroups)
        if self.weight is not None:
            group.set(ctx.ledger, entry, "cpu_weight", self.weight)
        if self.io_weight is not None:
            group.set(ctx.ledger, entry, "io_weight", self.io_weight)
        cpus = self.cpus
        if cpus is None and "target" in self.spec:
            target = _target(self.spec["target"], ctx)
            if target.pid is not None:
                with contextlib.suppress(OSError):
                    cpus = os.sched_getaffinity(target.pid)
        argv, tool = stressor_argv(
            sys.executable, cpu=self.cpu, memory=self.memory, io=self.io, io_rate=self.io_rate
        )

        def in_child() -> None:
            group.join(os.getpid())
            if cpus:
                os.sched_setaffinity(0, cpus)

        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=in_child,
        )
        ctx.ledger.add(
            entry, {"op": "kill", "pid": process.pid, "started": process_started(process.pid)}
        )
        self._process = process
        self.via = f"{tool} stressor in cgroup {'v2' if group.v2 else 'v1'} {group}"
        parts = [f"cpu={self.cpu}"] if self.cpu else []
        parts += [f"memory={self.memory}"] if self.memory else []
        parts += [f"io={self.io}"] if self.io else []
        parts += [f"weight={self.weight or 100}"]
        parts += [f"cpus={','.join(map(str, sorted(cpus)))}"] if cpus else []
        self.detail = ", ".join(parts)

    def undo(self) -> list[str]:
        """Kill the stressor, remove its cgroup."""
        problems = super().undo()
        process = getattr(self, "_process", None)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)  # reaped: no zombie left behind
        return problems


@functools.cache
def netem_available() -> bool:
    """Whether this kernel has ``sch_netem`` (tried on ``lo`` of a throwaway namespace).

    Asked once per process: the check and the fault itself both need the answer, and
    the kernel does not change under a run.
    """
    name = f"redline-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return False
    try:
        done = subprocess.run(
            ["tc", "-n", name, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            capture_output=True,
        )
        return done.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


_NETEM_KEYS = ("delay", "jitter", "loss", "reorder")


def _percent(spec: Mapping[str, Any], key: str) -> float:
    text = str(spec[key]).strip().rstrip("%")
    try:
        value = float(text)
    except ValueError:
        raise HostFaultError(f'expected a share like "5%", got {spec[key]!r}', key=key) from None
    if not 0 <= value <= 100:
        raise HostFaultError(f"expected 0% to 100%, got {spec[key]!r}", key=key)
    return value


class NetworkFault(HostFault):
    """Below L7, on a network namespace the test made (the host's only with allow_host).

    ``{netns, dev, down: true}`` takes a link down; ``{partition: [ns_a, ns_b]}`` drops
    everything between two namespaces (blackhole routes to each other's addresses, no
    iptables needed); ``{netns, dev, rate: 1mbit}`` caps bandwidth (``tc tbf``);
    ``{netns, dev, delay, jitter, loss, reorder}`` is ``tc netem`` where the kernel has it,
    else the fault proxy's toxics on ``proxy`` (``via`` says which was used).
    """

    kind = "network"

    def parse(self) -> None:
        """Check the shape."""
        _keys(
            self.spec,
            ("netns", "dev", "down", "partition", "rate", "burst", *_NETEM_KEYS, "proxy"),
        )
        modes: list[str] = [m for m in ("down", "partition", "rate") if m in self.spec]
        if any(k in self.spec for k in _NETEM_KEYS):
            modes.append("netem")
        if len(modes) != 1:
            raise HostFaultError(
                "expected one of down: true, partition: [a, b], rate: 1mbit, or delay/loss/reorder"
            )
        self.mode = modes[0]
        if self.mode == "partition":
            hosts = self.spec["partition"]
            if not isinstance(hosts, list) or len(hosts) != 2:
                raise HostFaultError("expected two network namespaces: [a, b]", key="partition")
        elif "dev" not in self.spec:
            raise HostFaultError("is required (the interface)", key="dev")
        self.delay_ms: float = _ms(self.spec, "delay") if "delay" in self.spec else 0.0
        self.jitter_ms: float = _ms(self.spec, "jitter") if "jitter" in self.spec else 0.0
        self.loss: float = _percent(self.spec, "loss") if "loss" in self.spec else 0.0
        self.reorder: float = _percent(self.spec, "reorder") if "reorder" in self.spec else 0.0

    def _namespaces(self) -> list[str | None]:
        if self.mode == "partition":
            return [str(n) for n in self.spec["partition"]]
        return [str(self.spec["netns"]) if "netns" in self.spec else None]

    def check(self, ctx: HostContext) -> None:
        """Namespaces exist; the host's interfaces only with allow_host; netem or a proxy."""
        if os.geteuid() != 0:
            raise HostFaultError("network faults need root (ip and tc: CAP_NET_ADMIN)")
        have = set(_netns_list())
        for ns in self._namespaces():
            if ns is None:
                if not ctx.allow_host:
                    raise HostFaultError(
                        "the host's own interfaces are left alone: give netns (or "
                        "--allow-host-faults)",
                        key="netns",
                    )
            elif ns not in have:
                raise HostFaultError(f"no network namespace {ns!r} (ip netns list)", key="netns")
        if self.mode == "netem" and not netem_available():
            if "proxy" not in self.spec:
                raise HostFaultError(
                    "this kernel has no sch_netem: give proxy: NAME to fall back to the fault "
                    "proxy's toxics",
                    key="proxy",
                )
            if ctx.proxies is None:
                raise HostFaultError("no fault proxies to fall back to", key="proxy")

    def _ip(self, ns: str | None, *args: str) -> list[str]:
        return ["ip", *(["-n", ns] if ns else []), *args]

    def _tc(self, ns: str | None, *args: str) -> list[str]:
        return ["tc", *(["-n", ns] if ns else []), *args]

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        ns = None if self.mode == "partition" else self._namespaces()[0]
        dev = str(self.spec.get("dev", ""))
        if self.mode == "down":
            ctx.ledger.add(entry, {"op": "run", "argv": self._ip(ns, "link", "set", dev, "up")})
            _run(self._ip(ns, "link", "set", dev, "down"))
            self.via, self.detail = "ip link", f"{dev} down in {ns or 'the host'}"
        elif self.mode == "partition":
            a, b = (str(n) for n in self.spec["partition"])
            for here, there in ((a, b), (b, a)):
                for address in _addresses(there):
                    route = ["route", "add", "blackhole", address]
                    ctx.ledger.add(
                        entry,
                        {
                            "op": "run",
                            "argv": self._ip(here, "route", "del", "blackhole", address),
                            "may_fail": True,
                        },
                    )
                    _run(self._ip(here, *route))
            self.via, self.detail = "blackhole routes", f"{a} and {b} cut off from each other"
        elif self.mode == "rate":
            rate = str(self.spec["rate"])
            burst = str(self.spec.get("burst", "32kbit"))
            ctx.ledger.add(
                entry,
                {
                    "op": "run",
                    "argv": self._tc(ns, "qdisc", "del", "dev", dev, "root"),
                    "may_fail": True,
                },
            )
            _run(
                self._tc(
                    ns,
                    "qdisc",
                    "add",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    rate,
                    "burst",
                    burst,
                    "latency",
                    "400ms",
                )
            )
            self.via, self.detail = "tc tbf", f"{dev} capped at {rate}"
        elif netem_available():
            args = []
            if "delay" in self.spec:
                args += ["delay", f"{self.delay_ms}ms", f"{self.jitter_ms}ms"]
            if self.loss:
                args += ["loss", f"{self.loss}%"]
            if self.reorder:
                args += ["reorder", f"{self.reorder}%"]
            ctx.ledger.add(
                entry,
                {
                    "op": "run",
                    "argv": self._tc(ns, "qdisc", "del", "dev", dev, "root"),
                    "may_fail": True,
                },
            )
            _run(self._tc(ns, "qdisc", "add", "dev", dev, "root", "netem", *args))
            self.via, self.detail = "tc netem", " ".join(args)
        else:
            self._fallback(ctx)

    def _fallback(self, ctx: HostContext) -> None:
        """Delay and loss as toxics on the fault proxy (this kernel has no netem)."""
        proxy = str(self.spec["proxy"])
        self._toxics: list[str] = []
        parts = []
        if "delay" in self.spec:
            name = f"redline-{self.name}-latency"
            ctx.proxies.add_toxic(
                proxy,
                {
                    "name": name,
                    "type": "latency",
                    "stream": "downstream",
                    "attributes": {
                        "latency": round(self.delay_ms),
                        "jitter": round(self.jitter_ms),
                    },
                },
            )
            self._toxics.append(name)
            parts.append(f"latency {self.delay_ms:g}ms ± {self.jitter_ms:g}ms")
        if self.loss:
            # no packet loss at L4: that share of connections stalls, as heavy loss would
            name = f"redline-{self.name}-loss"
            ctx.proxies.add_toxic(
                proxy,
                {
                    "name": name,
                    "type": "timeout",
                    "stream": "downstream",
                    "toxicity": self.loss / 100,
                    "attributes": {"timeout": 0},
                },
            )
            self._toxics.append(name)
            parts.append(f"{self.loss:g}% of connections stalled")
        if self.reorder:
            parts.append("reorder not available at L4: left out")
        self.via = "fault proxy (no sch_netem in this kernel)"
        self.detail = ", ".join(parts)

    def undo(self) -> list[str]:
        """Undo the tc/ip changes, or remove the fallback's toxics."""
        toxics = getattr(self, "_toxics", [])
        problems = []
        if toxics and self._ctx is not None:
            for name in toxics:
                try:
                    self._ctx.proxies.remove_toxic(str(self.spec["proxy"]), name)
                except (FaultError, OSError) as exc:
                    problems.append(f"{self.name}: {exc}")
            self._toxics = []
        return problems + super().undo()


def _ms(spec: Mapping[str, Any], key: str) -> float:
    try:
        return parse_duration(spec[key]) * 1000
    except ValueError as exc:
        raise HostFaultError(str(exc), key=key) from None


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise FaultError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def _netns_list() -> list[str]:
    done = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return [str(item["name"]) for item in json.loads(done.stdout)]


def _addresses(ns: str) -> list[str]:
    done = subprocess.run(["ip", "-n", ns, "-j", "addr", "show"], capture_output=True, text=True)
    if done.returncode != 0:
        raise FaultError(f"network namespace {ns}: {done.stderr.strip()}")
    out = []
    for link in json.loads(done.stdout or "[]"):
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                prefix = "32" if info.get("family") == "inet" else "128"
                out.append(f"{info['local']}/{prefix}")
    return out


class DiskFault(HostFault):
    """A full or slow disk under ``path``.

    ``{path, fill: true, free: SIZE}`` fills the file system; ``{path, target, wbps, rbps,
    wiops, riops, fsync_ms}`` throttles the target's I/O to its device.
    A file system shared with ``/`` is left alone unless allow_host. ``fsync_ms`` is a write
    IOPS cap (an fsync waits for at least one write: 1000/fsync_ms a second), since this
    kernel may have no dm-delay to delay writes directly.
    """

    kind = "disk"

    def parse(self) -> None:
        """Check the shape."""
        _keys(
            self.spec,
            ("path", "fill", "free", "target", "rbps", "wbps", "riops", "wiops", "fsync_ms"),
        )
        if "path" not in self.spec:
            raise HostFaultError("is required (a folder on the disk)", key="path")
        self.fill = bool(self.spec.get("fill", False))
        self.free = _size(self.spec, "free") if "free" in self.spec else 0
        limits: dict[str, Any] = {}
        for key in ("rbps", "wbps", "riops", "wiops"):
            if key in self.spec:
                limits[key] = _size(self.spec, key)
        if "fsync_ms" in self.spec:
            limits["wiops"] = max(
                1, round(1000 / _number(self.spec, "fsync_ms", low=1, high=60000))
            )
        if self.fill == bool(limits):
            raise HostFaultError("expected either fill: true or a throttle (wbps, fsync_ms, ...)")
        if limits and "target" not in self.spec:
            raise HostFaultError("a throttle needs the target whose I/O it slows", key="target")
        self.limits = limits

    def check(self, ctx: HostContext) -> None:
        """The folder exists, is not on the root file system (unless allowed), has a device."""
        path = Path(str(self.spec["path"]))
        if not path.is_dir():
            raise HostFaultError(f"no folder {str(path)!r}", key="path")
        if not ctx.allow_host and os.stat(path).st_dev == os.stat("/").st_dev:
            raise HostFaultError(
                f"{path} is on the host's root file system: give a test file system (tmpfs, "
                "a loop mount) or --allow-host-faults",
                key="path",
            )
        if self.limits:
            try:
                device_of(path)
            except FaultError as exc:
                raise HostFaultError(str(exc), key="path") from None
            _target(self.spec["target"], ctx)

    def _apply(self, ctx: HostContext, entry: LedgerEntry) -> None:
        path = Path(str(self.spec["path"]))
        if self.fill:
            filler = path / f".redline-fill-{entry.id}"
            ctx.ledger.add(entry, {"op": "unlink", "path": str(filler)})
            self.detail = f"{_fill(filler, keep=self.free)} bytes written to {filler}"
            self.via = "a file filling the file system"
            return
        group = _group_of(_target(self.spec["target"], ctx), ctx, entry)
        device = device_of(path)
        group.set(ctx.ledger, entry, "io_max", {**self.limits, "device": device})
        self.via = f"cgroup {'v2 io.max' if group.v2 else 'v1 blkio.throttle'} on {device}"
        self.detail = ", ".join(f"{k}={v}" for k, v in self.limits.items())


def _fill(filler: Path, *, keep: int) -> int:
    """Fill the file system until ``keep`` bytes are free; how many bytes were written."""
    stats = os.statvfs(filler.parent)
    size = max(0, stats.f_bavail * stats.f_frsize - keep)
    with open(filler, "wb") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError:
            chunk = b"\0" * (1 << 20)
            written = 0
            with contextlib.suppress(OSError):  # ENOSPC: full, as wanted
                while written < size:
                    written += handle.write(chunk[: min(len(chunk), size - written)])
                    handle.flush()
    return filler.stat().st_size


class DnsFault(HostFault):
    """The target's lookups of a name fail or wait, on the run's DNS server (``faults.dns``).

    ``{name, servfail: true | nxdomain: true | drop: true | delay: 2s}``; ``name`` ``*``
    (the default) is every name.
    """

    kind = "dns"

    def parse(self) -> None:
        """One mode, and the name."""
        _keys(self.spec, ("name", *DNS_FAULTS))
        modes = [m for m in DNS_FAULTS if m in self.spec]
        if len(modes) != 1:
            raise HostFaultError(f"expected one of {', '.join(DNS_FAULTS)}")
        self.mode = modes[0]
        self.delay_s = 0.0
        if self.mode == "delay":
            try:
                self.delay_s = parse_duration(self.spec["delay"])
            except ValueError as exc:
                raise HostFaultError(str(exc), key="delay") from None
        self.host_name = str(self.spec.get("name", "*"))

    def check(self, ctx: HostContext) -> None:
        """A DNS server must run (the plan's ``faults.dns``)."""
        if ctx.dns is None:
            raise HostFaultError("no DNS server: give faults.dns {records: {...}} in the plan")
        if self.host_name != "*" and self.host_name.lower() not in ctx.dns.records:
            raise HostFaultError(f"the DNS server has no record for {self.host_name!r}", key="name")

    def apply(self, ctx: HostContext) -> None:
        """Switch the server's answers for the name (nothing on the host changes)."""
        assert ctx.dns is not None
        self._ctx = ctx
        ctx.dns.set_fault(self.host_name, self.mode, delay_s=self.delay_s)
        self.via = f"redline's DNS server on {ctx.dns.address}"
        self.detail = f"{self.mode} {self.delay_s:g}s" if self.mode == "delay" else self.mode

    def undo(self) -> list[str]:
        """Answer normally again."""
        if self._ctx is not None and self._ctx.dns is not None:
            self._ctx.dns.clear_fault(self.host_name)
        self._ctx = None
        return []


_KINDS: dict[str, Callable[..., HostFault]] = {
    "process": ProcessFault,
    "cgroup": CgroupFault,
    "neighbour": NeighbourFault,
    "network": NetworkFault,
    "disk": DiskFault,
    "dns": DnsFault,
}


def host_fault(
    name: str, kind: str, spec: object, *, for_s: float, max_s: float | None = None
) -> HostFault:
    """A host fault of ``kind`` from its entry; undone by the watchdog ``max_s`` after applying.

    Raises:
        HostFaultError: unknown kind, or a bad value (``key`` says where).
    """
    if kind not in _KINDS:
        raise HostFaultError(f"unknown fault kind {kind!r}; expected one of {', '.join(_KINDS)}")
    if not isinstance(spec, Mapping):
        raise HostFaultError(f"expected a mapping like {{target: serve, ...}}, got {spec!r}")
    return _KINDS[kind](name, spec, max_s=max_s if max_s is not None else for_s)
