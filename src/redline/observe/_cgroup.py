"""Control groups, read and made: both layouts, v2 (unified) and v1 (one tree per controller).

psutil does not know cgroups, so their files are read here directly:

==================  ===========================================  =================================
figure              v2                                           v1
==================  ===========================================  =================================
CPU used            ``cpu.stat`` usage_usec, user_usec, ...      ``cpuacct.usage``, ``cpuacct.stat``
throttling          ``cpu.stat`` nr_throttled, throttled_usec    ``cpu.stat`` nr_throttled,
                                                                 throttled_time (ns)
CPU quota           ``cpu.max`` ("50000 100000")                 ``cpu.cfs_quota_us`` / period
memory              ``memory.current``, ``memory.max``           ``memory.usage_in_bytes``,
                                                                 ``memory.limit_in_bytes``
OOM kills           ``memory.events`` oom_kill                   ``memory.oom_control`` oom_kill
pressure            ``cpu.pressure``, ``memory.pressure``, ...   (none)
==================  ===========================================  =================================

A :class:`Cgroup` is addressed by one path (the one a user gives, ``cgroup:/sys/fs/...``);
on v1 the same relative path is looked up under every controller's tree. A
:class:`CgroupSandbox` is one redline makes for ``--serve-limit`` and always removes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from ._errors import WatchError

__all__ = ["Cgroup", "CgroupSandbox", "cgroup_root", "own_cgroup"]

ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio", "pids")
_UNLIMITED = 2**62  # v1 writes "no limit" as a huge page-aligned number


def cgroup_root() -> Path:
    """Where the cgroup file systems are mounted (``/sys/fs/cgroup``)."""
    return ROOT


def _is_v2(path: Path) -> bool:
    return (path / "cgroup.controllers").exists()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, PermissionError, ProcessLookupError, OSError):
        return None


def _keyed(text: str | None) -> dict[str, float]:
    """``key value`` lines as a mapping (cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, float] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = float(value)
    return out


def pressure(path: Path) -> dict[str, float]:
    """A PSI file (``cpu.pressure``, ``/proc/pressure/io``) as ``{"some": us, "full": us}``.

    The values are cumulative microseconds of stall, which turn into a share of an interval.
    """
    out: dict[str, float] = {}
    for line in (_read(path) or "").splitlines():
        kind, *fields = line.split()
        for item in fields:
            key, _, value = item.partition("=")
            if key == "total":
                out[kind] = float(value)
    return out


def own_cgroup(controller: str) -> str:
    """The cgroup of this process for ``controller`` (v1), or its v2 cgroup (``controller=""``)."""
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (not controller and controllers == ""):
            return path
    return "/"


class Cgroup:
    """One control group, read through whichever layout holds it."""

    def __init__(self, path: str | Path, *, v1_dirs: dict[str, Path] | None = None) -> None:
        """Address the cgroup at ``path`` (a directory under ``/sys/fs/cgroup``).

        On v1 the same relative path is looked up in every controller's tree, unless
        ``v1_dirs`` names each controller's directory (a process's cgroups may sit at
        different places in different trees).

        Raises:
            WatchError: ``path`` is not a cgroup.
        """
        self.path = Path(path)
        if not (self.path / "cgroup.procs").is_file():
            raise WatchError(
                f"cgroup:{path}: not a cgroup (expected a directory under {ROOT} "
                "holding cgroup.procs)"
            )
        self.v2 = _is_v2(self.path)
        self._dirs: dict[str, Path] = dict(v1_dirs or {})
        if not self.v2 and not self._dirs:
            self._find_v1_dirs()

    def _find_v1_dirs(self) -> None:
        # /sys/fs/cgroup/<tree>/<relative>: the same relative path in each controller's tree
        if not self.path.is_relative_to(ROOT) or len(self.path.relative_to(ROOT).parts) < 1:
            return
        relative = Path(*self.path.relative_to(ROOT).parts[1:])
        for tree in ROOT.iterdir():
            for controller in tree.name.split(","):
                if controller in _V1_CONTROLLERS and (tree / relative).is_dir():
                    self._dirs.setdefault(controller, tree / relative)

    def _v1(self, controller: str, name: str) -> str | None:
        where = self._dirs.get(controller)
        return _read(where / name) if where is not None else None

    @property
    def layout(self) -> str:
        """``v2`` or ``v1``."""
        return "v2" if self.v2 else "v1"

    def pids(self) -> list[int]:
        """The processes in it now."""
        return [int(p) for p in (_read(self.path / "cgroup.procs") or "").split()]

    def cpu_usage_s(self) -> float | None:
        """CPU-seconds used so far (user and system)."""
        if self.v2:
            stat = _keyed(_read(self.path / "cpu.stat"))
            return stat["usage_usec"] / 1e6 if "usage_usec" in stat else None
        usage = self._v1("cpuacct", "cpuacct.usage")
        return int(usage) / 1e9 if usage and usage.strip().isdigit() else None

    def cpu_split_s(self) -> tuple[float | None, float | None]:
        """CPU-seconds used so far in user and in system mode."""
        if self.v2:
            stat = _keyed(_read(self.path / "cpu.stat"))
            user, system = stat.get("user_usec"), stat.get("system_usec")
            return (
                user / 1e6 if user is not None else None,
                system / 1e6 if system is not None else None,
            )
        stat = _keyed(self._v1("cpuacct", "cpuacct.stat"))
        ticks = os.sysconf("SC_CLK_TCK")
        user, system = stat.get("user"), stat.get("system")
        return (
            user / ticks if user is not None else None,
            system / ticks if system is not None else None,
        )

    def throttling(self) -> tuple[float | None, float | None]:
        """Periods throttled so far, and the seconds they lasted."""
        if self.v2:
            stat = _keyed(_read(self.path / "cpu.stat"))
            usec = stat.get("throttled_usec")
            return stat.get("nr_throttled"), usec / 1e6 if usec is not None else None
        stat = _keyed(self._v1("cpu", "cpu.stat"))
        ns = stat.get("throttled_time")
        return stat.get("nr_throttled"), ns / 1e9 if ns is not None else None

    def cpu_quota(self) -> float | None:
        """The CPU quota in cores, or ``None`` without one."""
        if self.v2:
            fields = (_read(self.path / "cpu.max") or "").split()
            if len(fields) != 2 or fields[0] == "max":
                return None
            return int(fields[0]) / int(fields[1])
        quota_text = self._v1("cpu", "cpu.cfs_quota_us")
        period_text = self._v1("cpu", "cpu.cfs_period_us")
        if not quota_text or not period_text or int(quota_text) <= 0:
            return None
        return int(quota_text) / int(period_text)

    def memory_bytes(self) -> float | None:
        """Memory charged to it now."""
        text = (
            _read(self.path / "memory.current")
            if self.v2
            else self._v1("memory", "memory.usage_in_bytes")
        )
        return float(text) if text and text.strip().isdigit() else None

    def memory_limit(self) -> float | None:
        """Its memory limit in bytes, or ``None`` without one."""
        text = (
            _read(self.path / "memory.max")
            if self.v2
            else self._v1("memory", "memory.limit_in_bytes")
        )
        if not text or not text.strip().isdigit() or int(text) >= _UNLIMITED:
            return None
        return float(text)

    def oom_kills(self) -> float | None:
        """Processes the OOM killer ended in it so far."""
        if self.v2:
            return _keyed(_read(self.path / "memory.events")).get("oom_kill")
        return _keyed(self._v1("memory", "memory.oom_control")).get("oom_kill")

    def pressure(self, resource: str) -> dict[str, float]:
        """Its PSI stall totals for ``cpu``, ``memory`` or ``io`` (v2 only)."""
        return pressure(self.path / f"{resource}.pressure") if self.v2 else {}


class CgroupSandbox:
    """A cgroup redline makes for a process it serves, with a CPU quota and a memory limit.

    v2 when the host mounts one with the cpu and memory controllers (one directory), v1
    otherwise (a directory in the cpu, cpuacct and memory trees each, made inside this
    process's own cgroups). :meth:`remove` kills what is left in it and removes it.
    """

    def __init__(self, *, cpu: float | None, memory: int | None, period_us: int = 100_000) -> None:
        """Make the cgroup and set its limits.

        Raises:
            WatchError: cgroups cannot be made here (not root, no controllers).
        """
        self.name = f"redline-{os.getpid()}-{secrets.token_hex(3)}"
        self.dirs: list[Path] = []
        self.v1_dirs: dict[str, Path] = {}
        try:
            if _is_v2(ROOT) and {"cpu", "memory"} <= set(
                (_read(ROOT / "cgroup.subtree_control") or "").split()
            ):
                self._make_v2(cpu, memory, period_us)
            else:
                self._make_v1(cpu, memory, period_us)
        except OSError as exc:
            self.remove()
            raise WatchError(f"cannot make a cgroup for --serve-limit: {exc}") from exc

    def _make_v2(self, cpu: float | None, memory: int | None, period_us: int) -> None:
        where = ROOT / own_cgroup("").lstrip("/") / self.name
        where.mkdir()
        self.dirs.append(where)
        if cpu is not None:
            (where / "cpu.max").write_text(f"{round(cpu * period_us)} {period_us}")
        if memory is not None:
            (where / "memory.max").write_text(str(memory))
        self.path = where

    def _make_v1(self, cpu: float | None, memory: int | None, period_us: int) -> None:
        trees = {}
        for controller in ("cpu", "cpuacct", "memory"):
            tree = next((t for t in ROOT.iterdir() if controller in t.name.split(",")), None)
            if tree is None:
                raise OSError(f"no v1 tree for the {controller} controller under {ROOT}")
            trees[controller] = tree
        for controller, tree in trees.items():
            where = tree / own_cgroup(controller).lstrip("/") / self.name
            if where not in self.dirs:
                where.mkdir()
                self.dirs.append(where)
            self.v1_dirs[controller] = where
        cpu_dir = trees["cpu"] / own_cgroup("cpu").lstrip("/") / self.name
        if cpu is not None:
            (cpu_dir / "cpu.cfs_period_us").write_text(str(period_us))
            (cpu_dir / "cpu.cfs_quota_us").write_text(str(round(cpu * period_us)))
        mem_dir = trees["memory"] / own_cgroup("memory").lstrip("/") / self.name
        if memory is not None:
            (mem_dir / "memory.limit_in_bytes").write_text(str(memory))
        self.path = cpu_dir

    def join(self, pid: int) -> None:
        """Move ``pid`` into the cgroup (in every tree, on v1); its children follow it.

        Called in a child between fork and exec, so the target starts inside.
        """
        for where in self.dirs:
            (where / "cgroup.procs").write_text(str(pid))

    def reader(self) -> Cgroup:
        """The cgroup, for reading."""
        return Cgroup(self.path, v1_dirs=self.v1_dirs or None)

    def remove(self) -> None:
        """Kill anything left in the cgroup and remove it (every tree); never raises."""
        for where in reversed(self.dirs):
            for _ in range(50):
                pids = [int(p) for p in (_read(where / "cgroup.procs") or "").split()]
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, 9)
                try:
                    where.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # the killed processes are still leaving
        self.dirs.clear()
