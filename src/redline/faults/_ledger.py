"""The record of what redline did to the host, kept so that it can always be undone.

Before a host fault changes anything, its undo steps are written to a file of its own in
the ledger's folder (write-ahead, atomically): each step is plain data that
:func:`undo_step` carries out without the objects that made it. The file goes when the
fault is undone. What a crash (even SIGKILL) leaves behind is undone by the watchdog
(``python -m redline.faults._watchdog``) when the fault's deadline passes or its owner
process is gone, or at once by ``redline faults clean``.

Steps:

==========  ============================================================================
``signal``  send ``signal`` to ``pid`` (if it is still the process that was started at
            ``started``), or to its group with ``group``
``write``   write ``value`` to ``file`` (a cgroup file's old value)
``move``    move ``pids`` back into the cgroup folders ``dirs`` (``cgroup.procs``)
``kill``    SIGKILL ``pid`` (and its group), a stressor redline started
``rmdir``   remove the folders ``dirs`` (cgroups redline made), killing what is left
``run``     run ``argv`` (``tc qdisc del ...``, ``ip link set ... up``)
``unlink``  remove ``path`` (a file that fills a disk)
``spawn``   start ``argv`` in ``cwd`` with ``env`` (a killed process, restarted)
==========  ============================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import FaultError

__all__ = ["Ledger", "LedgerEntry", "default_ledger_dir", "process_started", "undo_step"]

_SPAWNED: list[subprocess.Popen[bytes]] = []  # restarted processes live on: keep their handles

LEDGER_ENV = "REDLINE_FAULTS_DIR"
"""The environment variable naming the ledger's folder (default: ``/run/redline/faults``)."""


def default_ledger_dir() -> Path:
    """``$REDLINE_FAULTS_DIR``, else ``/run/redline/faults`` (root), else under ``~/.local``."""
    given = os.environ.get(LEDGER_ENV)
    if given:
        return Path(given)
    if os.geteuid() == 0:
        return Path("/run/redline/faults")
    return Path.home() / ".local" / "state" / "redline" / "faults"


def process_started(pid: int) -> float | None:
    """When ``pid`` started (clock ticks since boot, from ``/proc``), or ``None`` if gone.

    Kept with a PID so that a later undo never signals a new process that reuses it.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: count fields after it
    fields = stat[stat.rindex(")") + 2 :].split()
    return float(fields[19])


def _alive(pid: int, started: float | None) -> bool:
    now = process_started(pid)
    return now is not None and (started is None or now == started)


@dataclass
class LedgerEntry:
    """One applied fault: its undo steps (run in order), owner and deadline (wall clock)."""

    id: str
    name: str
    kind: str
    owner: int
    owner_started: float | None
    deadline: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "owner_started": self.owner_started,
            "deadline": self.deadline,
            "steps": self.steps,
        }

    @property
    def orphaned(self) -> bool:
        """Whether the process that applied it is gone (crashed, killed)."""
        return not _alive(self.owner, self.owner_started)

    @property
    def expired(self) -> bool:
        """Whether its deadline has passed."""
        return time.time() >= self.deadline


class Ledger:
    """The folder of applied faults (one JSON file each)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        """Use ``folder`` (default: :func:`default_ledger_dir`); made on first write."""
        self.folder = Path(folder) if folder is not None else default_ledger_dir()

    def open(self, name: str, kind: str, *, max_s: float) -> LedgerEntry:
        """A new entry for a fault about to be applied; undone by ``max_s`` at the latest.

        Raises:
            FaultError: the ledger's folder cannot be written.
        """
        owner = os.getpid()
        entry = LedgerEntry(
            id=f"{owner}-{secrets.token_hex(4)}",
            name=name,
            kind=kind,
            owner=owner,
            owner_started=process_started(owner),
            deadline=time.time() + max_s,
        )
        entry.path = self.folder / f"{entry.id}.json"
        self.save(entry)
        return entry

    def save(self, entry: LedgerEntry) -> None:
        """Write ``entry`` (atomically: a crash leaves the old or the new file, whole).

        Raises:
            FaultError: the folder cannot be written.
        """
        assert entry.path is not None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = entry.path.with_suffix(".part")
            partial.write_text(json.dumps(entry.to_dict()))
            os.replace(partial, entry.path)
        except OSError as exc:
            raise FaultError(f"cannot record the fault in {self.folder}: {exc}") from exc

    def add(self, entry: LedgerEntry, step: Mapping[str, Any]) -> None:
        """Record an undo step, before the change it undoes is made (write-ahead)."""
        entry.steps.append(dict(step))
        self.save(entry)

    def close(self, entry: LedgerEntry) -> None:
        """Forget an entry that was undone."""
        if entry.path is not None:
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()

    def claim(self, entry: LedgerEntry) -> bool:
        """Take ``entry`` for undoing (atomically): ``False`` when another undoer has it.

        The watchdog, ``redline faults clean`` and the run itself may reach for one entry
        at the same moment; the rename lets exactly one of them undo it.
        """
        if entry.path is None or entry.path.suffix == _CLAIMED:
            return True
        claimed = entry.path.with_suffix(_CLAIMED)
        try:
            os.rename(entry.path, claimed)
        except FileNotFoundError:
            return False
        entry.path = claimed
        return True

    def entries(self) -> Iterator[LedgerEntry]:
        """Every entry on file, and any claimed but left half-undone by a crash.

        A file that cannot be read is skipped.
        """
        if not self.folder.is_dir():
            return
        stale = time.time() - _STALE_CLAIM_S
        claimed = [p for p in self.folder.glob(f"*{_CLAIMED}") if _mtime(p) < stale]
        for path in sorted([*self.folder.glob("*.json"), *claimed]):
            try:
                data = json.loads(path.read_text())
                yield LedgerEntry(
                    id=str(data["id"]),
                    name=str(data["name"]),
                    kind=str(data["kind"]),
                    owner=int(data["owner"]),
                    owner_started=data.get("owner_started"),
                    deadline=float(data["deadline"]),
                    steps=list(data["steps"]),
                    path=path,
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue

    def undo(self, entry: LedgerEntry) -> list[str]:
        """Carry out ``entry``'s undo steps, last recorded first; drop it; the problems.

        Nothing is done if another undoer has claimed it (it is being, or was, undone).
        """
        if not self.claim(entry):
            return []
        problems = []
        for step in reversed(entry.steps):
            problem = undo_step(step)
            if problem is not None:
                problems.append(f"{entry.name}: {problem}")
        self.close(entry)
        return problems

    def clean(self, *, only: Sequence[str] = ()) -> tuple[list[LedgerEntry], list[str]]:
        """Undo every entry (or those whose ids are in ``only``): what was undone, problems."""
        done, problems = [], []
        for entry in self.entries():
            if only and entry.id not in only:
                continue
            problems += self.undo(entry)
            done.append(entry)
        return done, problems


_CLAIMED = ".undoing"
_STALE_CLAIM_S = 60.0  # a claim this old belongs to an undoer that died half-way


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def undo_step(step: Mapping[str, Any]) -> str | None:
    """Carry out one undo step; a problem as text (``None``: done or nothing to do)."""
    op = step.get("op")
    try:
        if op == "signal":
            pid = int(step["pid"])
            if _alive(pid, step.get("started")):
                signum = signal.Signals[str(step["signal"])]
                if step.get("group"):
                    os.killpg(pid, signum)
                else:
                    os.kill(pid, signum)
        elif op == "write":
            Path(step["file"]).write_text(str(step["value"]))
        elif op == "move":
            for pid in step["pids"]:
                for folder in step["dirs"]:
                    with contextlib.suppress(ProcessLookupError, OSError):
                        (Path(folder) / "cgroup.procs").write_text(str(pid))
        elif op == "kill":
            pid = int(step["pid"])
            if _alive(pid, step.get("started")):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        elif op == "rmdir":
            for folder in step["dirs"]:
                _remove_cgroup(Path(folder))
        elif op == "run":
            done = subprocess.run(
                [str(a) for a in step["argv"]], capture_output=True, text=True, timeout=10
            )
            if done.returncode != 0 and not step.get("may_fail"):
                return f"{' '.join(step['argv'])}: {done.stderr.strip() or done.returncode}"
        elif op == "unlink":
            with contextlib.suppress(FileNotFoundError):
                Path(step["path"]).unlink()
        elif op == "spawn":
            _SPAWNED[:] = [p for p in _SPAWNED if p.poll() is None]
            spawned = subprocess.Popen(
                [str(a) for a in step["argv"]],
                cwd=step.get("cwd") or None,
                env=dict(step["env"]) if step.get("env") is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            _SPAWNED.append(spawned)
        else:
            return f"unknown undo step {op!r}"
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        return f"{op}: {exc}"
    return None


def _remove_cgroup(folder: Path) -> None:
    """Kill what is left in a cgroup redline made and remove it (a moment to let them go)."""
    for _ in range(100):
        if not folder.exists():
            return
        with contextlib.suppress(OSError):
            for pid in (folder / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    raise OSError(f"cannot remove {folder}: processes are still in it")
