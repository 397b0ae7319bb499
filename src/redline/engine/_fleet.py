"""Where a run's workers live, behind one face the coordinator drives.

A *fleet* launches one worker per segment, tells the coordinator when all are ready,
starts them at one instant, relays their messages and stops them. Two fleets exist:
:class:`LocalFleet` (worker processes on this machine, over pipes) and the Dask fleet
(``_cluster.py``: one generator process beside each Dask worker, over Dask queues).

The messages a fleet hands back, each tagged with its worker's index:
``("interval", WorkerInterval)``, ``("done",)``, ``("error", text)`` and
``("lost", why)`` (the worker is gone without finishing: its process exited, its host
stopped answering).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from redline.core import GeneratorHost, RunError
from redline.plan import Plan

from ._worker import WorkerSpec, worker_main

__all__ = ["Cluster", "Fleet", "LocalFleet", "Message", "current_cluster", "using_cluster"]

Message = tuple[Any, ...]

_STOP_TIMEOUT = 10.0


class Fleet(Protocol):
    """What the coordinator needs of the place its workers run."""

    hosts: tuple[GeneratorHost, ...]
    """One entry per worker on a cluster (its name, share, clock); empty on this machine."""
    notes: list[str]
    """What the run's notes should say of the fleet (a host that joined and was refused)."""
    start_delay_s: float
    """How far ahead the start instant is set, for it to reach every worker in time."""

    def weights(self, count: int) -> list[int]:
        """Each worker's relative capacity (its segment is that share of the load)."""

    def launch(self, specs: Sequence[WorkerSpec]) -> None:
        """Start one worker per spec; the load waits for :meth:`start`."""

    def await_ready(self, timeout: float) -> None:
        """Block until every worker is ready.

        Raises:
            RunError: a worker failed or exited while starting, or did not answer in time.
        """

    def start(self, delay_s: float) -> None:
        """Start the load ``delay_s`` from now, at the same instant in every worker."""

    def receive(self, timeout: float) -> list[tuple[int, Message]]:
        """Messages that arrived, waiting up to ``timeout`` seconds for the first."""

    def stop(self, indexes: Iterable[int]) -> None:
        """Ask these workers to stop and flush what they measured."""

    def command(self, indexes: Iterable[int], action: str, value: float | None) -> None:
        """Pass a live-control action (pause, resume, factor, vus) to these workers."""

    def close(self) -> None:
        """End every worker (killing what does not end in time) and free the channels."""


class Cluster(Protocol):
    """A place that makes a fleet for each run (a Dask cluster: ``_cluster.py``)."""

    def fleet(self, plan: Plan, *, check_target: bool = True) -> Fleet:
        """A fleet of one worker per host, checked and ready to launch ``plan``.

        Raises:
            RunError: no hosts, versions that differ, a host that cannot be used.
        """


_current: list[Cluster] = []


def current_cluster() -> Cluster | None:
    """The cluster runs go to when none is named (see :func:`using_cluster`)."""
    return _current[-1] if _current else None


@contextlib.contextmanager
def using_cluster(cluster: Cluster | None) -> Iterator[Cluster | None]:
    """Send every run started inside this block to ``cluster`` (None: this machine).

    Process-wide, not per thread: ``redline ab`` runs its two sides in threads, and both
    belong on the cluster the command was given.
    """
    if cluster is None:
        yield None
        return
    _current.append(cluster)
    try:
        yield cluster
    finally:
        _current.remove(cluster)


class LocalFleet:
    """Worker processes on this machine, each over its own pipe."""

    hosts: tuple[GeneratorHost, ...] = ()
    start_delay_s = 0.1

    def __init__(self) -> None:
        """An empty fleet; :meth:`launch` starts the processes."""
        self.notes: list[str] = []
        self.pipes: dict[int, Connection] = {}
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def weights(self, count: int) -> list[int]:
        """Equal shares: the processes share one machine."""
        return [1] * count

    def launch(self, specs: Sequence[WorkerSpec]) -> None:
        """Spawn one process per spec."""
        context = multiprocessing.get_context("spawn")
        for spec in specs:
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(spec, child),
                name=f"redline-worker-{spec.index}",
                daemon=True,
            )
            process.start()
            child.close()
            self.pipes[spec.index] = parent
            self.processes.append(process)

    def await_ready(self, timeout: float) -> None:
        """Wait for each process's ``ready``."""
        waiting = set(self.pipes)
        deadline = time.monotonic() + timeout
        while waiting:
            ready = wait(
                [self.pipes[i] for i in waiting], timeout=max(0.0, deadline - time.monotonic())
            )
            if not ready:
                raise RunError(f"workers {sorted(waiting)} did not start within {timeout:.0f}s")
            for item in ready:
                index = self._index(item)
                try:
                    message = self.pipes[index].recv()
                except EOFError:
                    raise RunError(f"worker {index} exited while starting") from None
                if message[0] == "error":
                    raise RunError(f"worker {index} failed while starting:\n{message[1]}")
                waiting.discard(index)

    def start(self, delay_s: float) -> None:
        """Send every process the same instant on this machine's monotonic clock."""
        start_ns = time.monotonic_ns() + int(delay_s * 1e9)
        for pipe in self.pipes.values():
            pipe.send(("start", start_ns))

    def receive(self, timeout: float) -> list[tuple[int, Message]]:
        """Read whatever the pipes hold; a closed pipe is a lost worker."""
        out: list[tuple[int, Message]] = []
        for ready in wait(list(self.pipes.values()), timeout=timeout):
            index = self._index(ready)
            try:
                message = self.pipes[index].recv()
            except (EOFError, OSError):
                out.append((index, ("lost", "exited without finishing")))
                self.pipes.pop(index).close()
                continue
            if message[0] == "done":
                self.pipes.pop(index).close()
                out.append((index, ("done",)))
            else:
                out.append((index, message))
        return out

    def command(self, indexes: Iterable[int], action: str, value: float | None) -> None:
        """Send a live-control message down each pipe still open."""
        for index in indexes:
            pipe = self.pipes.get(index)
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.send(("control", action, value))

    def stop(self, indexes: Iterable[int]) -> None:
        """Send ``stop`` down each pipe still open."""
        for index in indexes:
            pipe = self.pipes.get(index)
            if pipe is not None:
                with contextlib.suppress(OSError):  # gone already: EOF shows it
                    pipe.send(("stop",))

    def close(self) -> None:
        """Join every process, killing those that do not end in time."""
        for pipe in self.pipes.values():  # a worker still waiting for its start sees EOF
            pipe.close()
        self.pipes.clear()
        for worker in self.processes:
            worker.join(timeout=_STOP_TIMEOUT)
            if worker.is_alive():
                worker.kill()
                worker.join()

    def _index(self, pipe: object) -> int:
        return next(i for i, p in self.pipes.items() if p is pipe)
