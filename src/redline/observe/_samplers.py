"""Samplers: what one watched thing looks like at one moment.

Each sampler's :meth:`read` returns a :class:`Reading`: cumulative counters (CPU-seconds,
bytes, stalls) and gauges (resident memory, threads). Two readings make one interval's
figures (:func:`figures`): counters become amounts in the interval (CPU as cores used),
gauges keep their value at its end. A figure that could not be read is ``None``.

=====================  ==============================================================
figure                 meaning (per interval)
=====================  ==============================================================
``cpu_cores``          CPU used, in cores (user + system); ``cpu_user_cores``, ...
``cpu_pct``            ``cpu_cores`` as a share of the cores the thing may use
``throttled_periods``  CFS periods in which a quota throttled it; ``throttled_s``
``rss_bytes``          resident memory; ``pss_bytes`` its proportional share
``memory_bytes``       a cgroup's memory.current (v1: usage_in_bytes)
``oom_kills``          processes the OOM killer ended
``*_some_pct``         PSI: share of the interval some task stalled on cpu, memory, io
``io_read_bytes``      bytes read from storage; ``io_write_bytes``, ``io_*_ops``
``net_rx_bytes``       host network bytes received; ``net_tx_bytes``
``tcp_retransmits``    host TCP segments retransmitted
``listen_overflows``   host accept-queue overflows (``ListenOverflows``), ``listen_drops``
``sockets_<state>``    the process tree's TCP sockets by state (``established``, ...)
``threads``, ``fds``   the process tree's threads and open file descriptors
``ctx_voluntary``      context switches it asked for (waits); ``ctx_involuntary``
=====================  ==============================================================
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from redline.core import WatchedThing

from ._cgroup import Cgroup, pressure
from ._errors import WatchError

__all__ = [
    "CgroupSampler",
    "HostSampler",
    "ProcessSampler",
    "PrometheusSampler",
    "Reading",
    "Sampler",
    "figures",
]

_PSI = ("cpu", "memory", "io")


@dataclass
class Reading:
    """One moment of one thing: counters (cumulative) and gauges, at ``at`` (monotonic s)."""

    at: float
    counters: dict[str, float | None] = field(default_factory=dict)
    gauges: dict[str, float | None] = field(default_factory=dict)
    gone: bool = False


class Sampler(Protocol):
    """Reads one watched thing."""

    thing: WatchedThing

    def read(self) -> Reading:
        """The thing now (``gone`` once it no longer exists)."""
        ...


def figures(before: Reading, after: Reading, cores: float | None) -> dict[str, float | None]:
    """One interval's figures from the readings at its two ends."""
    seconds = max(after.at - before.at, 1e-9)
    out: dict[str, float | None] = {}
    for key, value in after.counters.items():
        start = before.counters.get(key)
        delta = None if value is None or start is None else max(value - start, 0.0)
        if key.startswith("cpu") and key.endswith("_s"):  # CPU-seconds: cores used
            out[key[: -len("_s")] + "_cores"] = None if delta is None else delta / seconds
        elif key.endswith("_stall_us"):
            name = key[: -len("_stall_us")] + "_pct"
            out[name] = None if delta is None else min(delta / (seconds * 1e6) * 100, 100.0)
        else:
            out[key] = delta
    if "cpu_cores" in out:
        used = out["cpu_cores"]
        out["cpu_pct"] = None if used is None or not cores else used / cores * 100
    out.update(after.gauges)
    if after.gone:
        out = dict.fromkeys(out)
    return out


def _psi(prefix: str, read: dict[str, dict[str, float]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for resource, totals in read.items():
        for kind in ("some", "full"):
            if kind in totals:
                out[f"{prefix}{resource}_{kind}_stall_us"] = totals[kind]
    return out


def _pss(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return float(line.split()[1]) * 1024
    return None


def _is_python(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error, OSError):
        return Path(process.exe()).name.startswith(("python", "pypy"))
    return False


class ProcessSampler:
    """A process and its children, through psutil (and /proc for PSS)."""

    def __init__(self, pid: int, *, name: str | None = None) -> None:
        """Watch ``pid`` and its children.

        Raises:
            WatchError: there is no such process, or it may not be read.
        """
        try:
            self.process = psutil.Process(pid)
            affinity = len(self.process.cpu_affinity() or ()) or os.cpu_count() or 1
            python = _is_python(self.process)
        except psutil.NoSuchProcess:
            raise WatchError(f"pid:{pid}: no such process") from None
        except psutil.AccessDenied:
            raise WatchError(
                f"pid:{pid}: not allowed to read it (run as its user or root)"
            ) from None
        self.pid = pid
        self.thing = WatchedThing(
            name=name or f"pid:{pid}", kind="process", cores=float(affinity), python=python
        )
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> last (user, system) seen
        self._ctx: dict[int, tuple[float, float]] = {}
        self._io: dict[int, tuple[float, float, float, float]] = {}

    def tree(self) -> list[psutil.Process]:
        """The process and its living descendants."""
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def read(self) -> Reading:
        """The tree's CPU, memory, I/O, threads, descriptors, switches and sockets now."""
        now = time.monotonic()
        tree = self.tree()
        try:
            gone = not tree or self.process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            gone = True
        if gone:
            return Reading(now, gone=True)
        rss = pss = threads = fds = 0.0
        pss_known = fds_known = True
        sockets: dict[str, float | None] = {}
        for process in tree:
            try:
                with process.oneshot():
                    cpu = process.cpu_times()
                    self._cpu[process.pid] = (cpu.user, cpu.system)
                    rss += process.memory_info().rss
                    threads += process.num_threads()
                    ctx = process.num_ctx_switches()
                    self._ctx[process.pid] = (ctx.voluntary, ctx.involuntary)
                    try:
                        fds += process.num_fds()
                    except psutil.AccessDenied:
                        fds_known = False
                    try:
                        io = process.io_counters()
                        self._io[process.pid] = (
                            io.read_bytes,
                            io.write_bytes,
                            io.read_count,
                            io.write_count,
                        )
                    except (psutil.AccessDenied, AttributeError):
                        pass
                    for connection in process.net_connections(kind="tcp"):
                        state = f"sockets_{connection.status.lower()}"
                        sockets[state] = (sockets.get(state) or 0.0) + 1
                share = _pss(process.pid)
                if share is None:
                    pss_known = False
                else:
                    pss += share
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # a child that left between the listing and the reading
            except psutil.AccessDenied:
                pss_known = fds_known = False
        user = sum(u for u, _ in self._cpu.values())
        system = sum(s for _, s in self._cpu.values())
        counters: dict[str, float | None] = {
            "cpu_s": user + system,
            "cpu_user_s": user,
            "cpu_system_s": system,
            "ctx_voluntary": sum(v for v, _ in self._ctx.values()),
            "ctx_involuntary": sum(i for _, i in self._ctx.values()),
        }
        if self._io:
            for index, key in enumerate(
                ("io_read_bytes", "io_write_bytes", "io_read_ops", "io_write_ops")
            ):
                counters[key] = sum(v[index] for v in self._io.values())
        gauges: dict[str, float | None] = {
            "rss_bytes": rss,
            "pss_bytes": pss if pss_known else None,
            "threads": threads,
            "fds": fds if fds_known else None,
            "processes": float(len(tree)),
            **{f"sockets_{s}": 0.0 for s in ("established", "time_wait", "close_wait")},
            **sockets,
        }
        return Reading(now, counters, gauges)


class CgroupSampler:
    """A control group: a container, a systemd unit, the sandbox of ``--serve-limit``."""

    def __init__(self, path: str | Path | Cgroup, *, name: str | None = None) -> None:
        """Watch the cgroup at ``path`` (or ``path`` itself, a :class:`Cgroup`).

        Raises:
            WatchError: ``path`` is not a cgroup.
        """
        self.cgroup = path if isinstance(path, Cgroup) else Cgroup(path)
        path = self.cgroup.path
        quota = self.cgroup.cpu_quota()
        self.thing = WatchedThing(
            name=name or f"cgroup:{path}",
            kind="cgroup",
            cores=quota if quota is not None else float(os.cpu_count() or 1),
            memory_limit_bytes=self.cgroup.memory_limit(),
        )

    def read(self) -> Reading:
        """The cgroup's CPU, throttling, memory, OOM kills and pressure now."""
        now = time.monotonic()
        if not self.cgroup.path.exists():
            return Reading(now, gone=True)
        user, system = self.cgroup.cpu_split_s()
        periods, throttled = self.cgroup.throttling()
        counters: dict[str, float | None] = {
            "cpu_s": self.cgroup.cpu_usage_s(),
            "cpu_user_s": user,
            "cpu_system_s": system,
            "throttled_periods": periods,
            "throttled_s": throttled,
            "oom_kills": self.cgroup.oom_kills(),
            **_psi("", {r: self.cgroup.pressure(r) for r in _PSI}),
        }
        gauges: dict[str, float | None] = {
            "memory_bytes": self.cgroup.memory_bytes(),
            "processes": float(len(self.cgroup.pids())),
        }
        return Reading(now, counters, gauges)


def _proc_table(path: str, section: str) -> dict[str, float]:
    """``/proc/net/snmp`` or ``netstat``: the ``section`` (``Tcp``, ``TcpExt``) as a mapping."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith(section + ":"):
            keys = header.split()[1:]
            return {k: float(v) for k, v in zip(keys, values.split()[1:], strict=False)}
    return {}


class HostSampler:
    """The machine: CPU, memory, network, storage, TCP trouble and pressure."""

    def __init__(self) -> None:
        """Watch this host."""
        self.thing = WatchedThing(name="host", kind="host", cores=float(psutil.cpu_count() or 1))

    def read(self) -> Reading:
        """The host now."""
        now = time.monotonic()
        cpu = psutil.cpu_times()
        net = psutil.net_io_counters()
        disk = psutil.disk_io_counters()
        tcp = _proc_table("/proc/net/snmp", "Tcp")
        ext = _proc_table("/proc/net/netstat", "TcpExt")
        counters: dict[str, float | None] = {
            "cpu_s": cpu.user + cpu.system + getattr(cpu, "irq", 0) + getattr(cpu, "softirq", 0),
            "cpu_user_s": cpu.user,
            "cpu_system_s": cpu.system,
            "net_rx_bytes": float(net.bytes_recv) if net else None,
            "net_tx_bytes": float(net.bytes_sent) if net else None,
            "io_read_bytes": float(disk.read_bytes) if disk else None,
            "io_write_bytes": float(disk.write_bytes) if disk else None,
            "tcp_retransmits": tcp.get("RetransSegs"),
            "listen_overflows": ext.get("ListenOverflows"),
            "listen_drops": ext.get("ListenDrops"),
            **_psi("", {r: pressure(Path("/proc/pressure") / r) for r in _PSI}),
        }
        gauges: dict[str, float | None] = {"memory_used_bytes": float(psutil.virtual_memory().used)}
        return Reading(now, counters, gauges)


class PrometheusSampler:
    """A Prometheus endpoint: its gauges become series, its counters amounts per interval.

    An endpoint that is down, slow (over ``timeout_s``) or answers with something that is
    not the text format gives a reading of nothing that moment, and a note; the run goes on.
    """

    def __init__(self, url: str, *, timeout_s: float = 0.5, max_series: int = 200) -> None:
        """Scrape ``url``."""
        self.url = url
        self.timeout_s = timeout_s
        self.max_series = max_series
        self.thing = WatchedThing(name=f"prometheus:{url}", kind="prometheus")
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def read(self) -> Reading:
        """Scrape once."""
        from prometheus_client.parser import text_string_to_metric_families

        now = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as answer:
                text = answer.read(8 * 1024 * 1024).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._problem(f"{self.thing.name}: scrape failed: {exc}")
            return Reading(now)
        counters: dict[str, float | None] = {}
        gauges: dict[str, float | None] = {}
        try:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if len(counters) + len(gauges) >= self.max_series:
                        break
                    if sample.name.endswith(("_created", "_bucket")):
                        continue  # a counter's birth time; a histogram's buckets
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    key = f"{sample.name}{{{labels}}}" if labels else sample.name
                    if family.type == "counter" or sample.name.endswith(("_count", "_sum")):
                        if family.type in ("counter", "histogram", "summary"):
                            counters[key] = float(sample.value)
                    elif family.type in ("gauge", "unknown"):
                        gauges[key] = float(sample.value)
        except ValueError as exc:
            self._problem(f"{self.thing.name}: not the Prometheus text format: {exc}")
            return Reading(now)
        return Reading(now, counters, gauges)
