"""Control groups as fault targets: limits written (old values kept), cgroups made and joined.

Both layouts. v2 (unified: one folder, ``cgroup.controllers`` at the root) and v1 (one
tree per controller, as on hosts in hybrid mode):

=================  ==============================  ======================================
knob               v2                              v1
=================  ==============================  ======================================
``cpu_max``        ``cpu.max`` "quota period"      ``cpu.cfs_quota_us``, ``cpu.cfs_period_us``
``memory_high``    ``memory.high``                 ``memory.limit_in_bytes`` (v1 has no
                                                   soft throttle: the hard limit squeezes)
``io_max``         ``io.max`` "MAJ:MIN rbps=..."   ``blkio.throttle.{read,write}_{bps,iops}_device``
``cpu_weight``     ``cpu.weight`` (1-10000)        ``cpu.shares`` (weight x 1024 / 100)
``memory_low``     ``memory.low``                  (none: refused)
``io_weight``      ``io.weight`` "default N"       ``blkio.weight`` (where the I/O scheduler has it)
=================  ==============================  ======================================

Every write is recorded in the ledger with the value it replaces, before it is made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import FaultError
from ._ledger import Ledger, LedgerEntry

__all__ = ["CGROUP_KNOBS", "CgroupHost", "ControlGroup", "device_of"]

CGROUP_KNOBS = ("cpu_max", "memory_high", "io_max", "cpu_weight", "memory_low", "io_weight")
"""What a ``cgroup:`` fault (or a neighbour's QoS) may set."""

_V1_FOR = {
    "cpu_max": "cpu",
    "cpu_weight": "cpu",
    "memory_high": "memory",
    "memory_low": "memory",
    "io_max": "blkio",
    "io_weight": "blkio",
}
_V1_MADE = ("cpu", "cpuacct", "memory", "blkio")
_PERIOD_US = 100_000
_IO_KEYS = {
    "rbps": "read_bps",
    "wbps": "write_bps",
    "riops": "read_iops",
    "wiops": "write_iops",
}


def device_of(path: str | Path) -> str:
    """``MAJ:MIN`` of the block device holding ``path`` (a device node or anything on it).

    Raises:
        FaultError: no such path, or no block device under it (tmpfs, overlay).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FaultError(f"{path}: {exc.strerror}") from None
    import stat

    dev = info.st_rdev if stat.S_ISBLK(info.st_mode) else info.st_dev
    major, minor = os.major(dev), os.minor(dev)
    if major == 0 or not Path(f"/sys/dev/block/{major}:{minor}").exists():
        raise FaultError(
            f"{path}: not on a block device ({major}:{minor}); I/O limits need one "
            "(a loop-mounted file system will do)"
        )
    return f"{major}:{minor}"


@dataclass(frozen=True)
class CgroupHost:
    """Where the host mounts its cgroups, and which layout it uses."""

    root: Path = Path("/sys/fs/cgroup")

    @property
    def v2(self) -> bool:
        """A unified hierarchy with the CPU controller at the root (not hybrid mode)."""
        controllers = _read(self.root / "cgroup.controllers")
        return controllers is not None and "cpu" in controllers.split()

    def tree(self, controller: str) -> Path:
        """The v1 tree of ``controller`` (``/sys/fs/cgroup/cpu``, or ``cpu,cpuacct``).

        Raises:
            FaultError: no such tree here.
        """
        if self.root.is_dir():
            for tree in self.root.iterdir():
                if controller in tree.name.split(","):
                    return tree
        raise FaultError(f"no cgroup v1 tree for the {controller} controller under {self.root}")

    def layout(self) -> str:
        """``v2`` or ``v1``."""
        return "v2" if self.v2 else "v1"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _own(controller: str) -> str:
    """The cgroup of this process in a v1 tree (``""``: the v2 one), from /proc/self/cgroup."""
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        _, names, where = line.split(":", 2)
        if controller in names.split(",") or (not controller and not names):
            return where
    return "/"


class ControlGroup:
    """One cgroup: a folder (v2) or one folder per controller (v1), to write knobs into."""

    def __init__(self, host: CgroupHost, folders: Mapping[str, Path]) -> None:
        """``folders``: ``{"": path}`` on v2, ``{controller: path}`` on v1."""
        self.host = host
        self.folders = dict(folders)

    @property
    def v2(self) -> bool:
        """Whether it is a v2 cgroup."""
        return "" in self.folders

    def __str__(self) -> str:
        return str(
            self.folders.get("") or self.folders.get("cpu") or next(iter(self.folders.values()))
        )

    @classmethod
    def at(cls, path: str | Path, *, host: CgroupHost | None = None) -> ControlGroup:
        """The cgroup a user names (``cgroup:/sys/fs/cgroup/...``, or relative to the trees).

        Raises:
            FaultError: it is not a cgroup here.
        """
        host = host or CgroupHost()
        given = Path(path)
        if host.v2:
            folder = given if given.is_absolute() else host.root / given
            if not (folder / "cgroup.procs").exists():
                raise FaultError(f"{path}: not a cgroup (no cgroup.procs)")
            return cls(host, {"": folder})
        relative = str(given)
        if given.is_absolute() and given.is_relative_to(host.root):
            # /sys/fs/cgroup/<tree>/<rest>: the same <rest> in every tree
            relative = "/".join(given.relative_to(host.root).parts[1:])
        folders = {}
        for controller in _V1_MADE:
            with contextlib.suppress(FaultError):
                folder = host.tree(controller) / relative.lstrip("/")
                if (folder / "cgroup.procs").exists():
                    folders[controller] = folder
        if not folders:
            raise FaultError(f"{path}: not a cgroup in any v1 tree under {host.root}")
        return cls(host, folders)

    @classmethod
    def make(
        cls, ledger: Ledger, entry: LedgerEntry, *, role: str, host: CgroupHost | None = None
    ) -> ControlGroup:
        """A new cgroup (removed by the entry's undo), a sibling of redline's own on v1.

        Raises:
            FaultError: cgroups cannot be made here (not root, no controllers).
        """
        host = host or CgroupHost()
        name = f"redline-{role}-{secrets.token_hex(3)}"
        folders: dict[str, Path] = {}
        try:
            if host.v2:
                parent = host.root / "redline.faults"
                if not parent.exists():
                    parent.mkdir()
                    enabled = set((_read(host.root / "cgroup.subtree_control") or "").split())
                    wanted = [c for c in ("cpu", "memory", "io") if c in enabled]
                    (parent / "cgroup.subtree_control").write_text(
                        " ".join(f"+{c}" for c in wanted)
                    )
                folders[""] = parent / name
            else:
                for controller in _V1_MADE:
                    with contextlib.suppress(FaultError):
                        tree = host.tree(controller)
                        folders[controller] = tree / _own(controller).lstrip("/") / name
            ledger.add(entry, {"op": "rmdir", "dirs": [str(f) for f in folders.values()]})
            for folder in folders.values():
                folder.mkdir()
        except OSError as exc:
            raise FaultError(f"cannot make a cgroup: {exc}") from exc
        return cls(host, folders)

    def join(self, pid: int) -> None:
        """Move ``pid`` (its whole thread group) in; children it starts later follow it."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(pid))

    def move_in(self, ledger: Ledger, entry: LedgerEntry, pids: list[int]) -> None:
        """Move running processes in, recording where each was, to move it back on undo.

        Raises:
            FaultError: a process cannot be moved.
        """
        for pid in pids:
            back = [str(self._folder_of(pid, c)) for c in self.folders]
            ledger.add(entry, {"op": "move", "pids": [pid], "dirs": back})
            try:
                self.join(pid)
            except OSError as exc:
                raise FaultError(f"cannot move process {pid} into {self}: {exc}") from exc

    def _folder_of(self, pid: int, controller: str) -> Path:
        for line in (_read(Path(f"/proc/{pid}/cgroup")) or "").splitlines():
            _, names, where = line.split(":", 2)
            if (controller == "" and names == "") or controller in names.split(","):
                base = self.host.root if controller == "" else self.host.tree(controller)
                return base / where.lstrip("/")
        raise FaultError(f"process {pid}: no {controller or 'v2'} cgroup in /proc/{pid}/cgroup")

    def set(self, ledger: Ledger, entry: LedgerEntry, knob: str, value: Any) -> str:
        """Write one knob (its old value recorded first); what was written, for people.

        Raises:
            FaultError: the knob has no file on this layout, or the write is refused.
        """
        writes = self._writes(knob, value)
        for file, new, old in writes:
            ledger.add(entry, {"op": "write", "file": str(file), "value": old})
            try:
                file.write_text(new)
            except OSError as exc:
                raise FaultError(f"cannot write {new!r} to {file}: {exc.strerror or exc}") from exc
        return ", ".join(f"{f.name}={n}" for f, n, _ in writes)

    def _file(self, knob: str, name: str) -> Path:
        folder = self.folders.get("") if self.v2 else self.folders.get(_V1_FOR[knob])
        if folder is None or not (folder / name).exists():
            raise FaultError(f"{knob}: {self} has no {name} (controller not enabled here?)")
        return folder / name

    def _writes(self, knob: str, value: Any) -> list[tuple[Path, str, str]]:
        """(file, new value, value to restore) for one knob."""
        if knob == "cpu_max":
            if self.v2:
                file = self._file(knob, "cpu.max")
                old = (_read(file) or "max 100000").strip()
                return [(file, f"{max(1000, round(float(value) * _PERIOD_US))} {_PERIOD_US}", old)]
            quota = self._file(knob, "cpu.cfs_quota_us")
            period = self._file(knob, "cpu.cfs_period_us")
            old_period = (_read(period) or str(_PERIOD_US)).strip()
            return [
                (quota, "-1", (_read(quota) or "-1").strip()),  # lift first: period may shrink
                (period, str(_PERIOD_US), old_period),
                (quota, str(max(1000, round(float(value) * _PERIOD_US))), "-1"),
            ]
        if knob == "memory_high":
            name = "memory.high" if self.v2 else "memory.limit_in_bytes"
            file = self._file(knob, name)
            return [(file, str(int(value)), (_read(file) or "max").strip())]
        if knob == "memory_low":
            if not self.v2:
                raise FaultError(
                    "memory_low: cgroup v1 has no memory.low (a v2 host is needed for it)"
                )
            file = self._file(knob, "memory.low")
            return [(file, str(int(value)), (_read(file) or "0").strip())]
        if knob == "cpu_weight":
            weight = int(value)
            if self.v2:
                file = self._file(knob, "cpu.weight")
                return [(file, str(weight), (_read(file) or "100").strip())]
            file = self._file(knob, "cpu.shares")
            return [
                (file, str(max(2, round(weight * 1024 / 100))), (_read(file) or "1024").strip())
            ]
        if knob == "io_weight":
            if self.v2:
                file = self._file(knob, "io.weight")
                old = (_read(file) or "default 100").splitlines()[0].strip()
                return [(file, f"default {int(value)}", old)]
            file = self._file(knob, "blkio.weight")
            return [(file, str(int(value)), (_read(file) or "500").strip())]
        if knob == "io_max":
            return self._io_writes(dict(value))
        raise FaultError(f"unknown cgroup knob {knob!r}; expected one of {', '.join(CGROUP_KNOBS)}")

    def _io_writes(self, spec: dict[str, Any]) -> list[tuple[Path, str, str]]:
        device = str(spec["device"])
        limits = {k: int(v) for k, v in spec.items() if k in _IO_KEYS}
        if self.v2:
            file = self._file("io_max", "io.max")
            new = device + "".join(f" {k}={v}" for k, v in limits.items())
            return [(file, new, f"{device} rbps=max wbps=max riops=max wiops=max")]
        out = []
        for key, amount in limits.items():
            file = self._file("io_max", f"blkio.throttle.{_IO_KEYS[key]}_device")
            out.append((file, f"{device} {amount}", f"{device} 0"))  # 0 removes the rule
        return out
