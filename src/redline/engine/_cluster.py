"""Load generation on a Dask cluster: one generator process beside each Dask worker.

The coordinator (this process) connects a Dask ``Client`` to the scheduler and submits
one long-lived task per Dask worker, pinned to it (``workers=``, ``pure=False``). The
task does not generate load itself: it starts redline's ordinary worker in a process of
its own (``_remote.py``), so the hot loop never holds the Dask worker's event loop or
GIL, and relays between that process's pipe and two Dask queues, one up to the
coordinator (intervals as pickled sparse histograms, ready, done, errors, heartbeats)
and one down to the generator (the start instant, stop).

The nine jobs k6's distributed design lists are done here or in the coordinator:
setup once (its result rides in every spec), a start barrier (the instant sent in each
host's own wall clock, offsets measured first), exact merging (the coordinator's), the
objectives and abort rules over the merged intervals, stop reaching every generator
through its queue within one interval, teardown once, done detection (each ``done``),
lost workers (silence for 1.5 intervals or leaving the cluster), late joiners refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import pickle
import platform
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

from redline.core import GeneratorHost, RunError
from redline.plan import Plan

from ._fleet import Message
from ._worker import WorkerSpec

__all__ = ["DaskCluster", "DaskFleet", "LazyCluster", "connect_cluster", "worker_facts"]

LOST_AFTER_S = 1.5
"""Silence after which a generator counts as lost: within two 1-second intervals."""
_BEAT_S = 0.25
_CLOCK_SAMPLES = 5
_CLOSE_TIMEOUT = 10.0
_RESOURCE = "redline"
"""The Dask worker resource that declares a host's capacity: ``--resources redline=2``."""


def _version() -> str:
    try:
        return importlib.metadata.version("redline")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a tree
        return "0.0.0"


def worker_facts() -> dict[str, str]:
    """What a Dask worker says about itself (run on each one before a run)."""
    return {
        "redline": _version(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
    }


def _scheduler_workers(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.workers)


@dataclass
class _Member:
    address: str
    name: str
    capacity: int


class DaskCluster:
    """A connection to a Dask scheduler (or a LocalCluster started for the command).

    Make one with :func:`connect_cluster`; each run asks it for a :meth:`fleet`.
    """

    def __init__(self, client: Any, address: str, *, local: Any = None, wait_s: float) -> None:
        """Wrap a connected ``distributed.Client``."""
        self.client = client
        self.address = address
        self.local = local
        self.wait_s = wait_s

    def close(self) -> None:
        """Disconnect (and stop the LocalCluster this connection started)."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close()

    def members(self) -> list[_Member]:
        """The scheduler's workers now, in a stable order.

        Raises:
            RunError: none joined within the wait.
        """
        try:
            self.client.wait_for_workers(1, timeout=self.wait_s)
        except (TimeoutError, OSError) as exc:
            raise RunError(
                f"the Dask scheduler at {self.address} has no workers "
                f"(waited {self.wait_s:g}s): start some with `dask worker {self.address}`"
            ) from exc
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        members = []
        for address, worker in sorted(info.items(), key=lambda kv: (str(kv[1]["name"]), kv[0])):
            capacity = worker.get("resources", {}).get(_RESOURCE, 1)
            if capacity != int(capacity) or capacity < 1:
                raise RunError(
                    f"Dask worker {address} declares resource {_RESOURCE}={capacity}: "
                    "expected a whole number of at least 1"
                )
            name = str(worker.get("name", address))
            members.append(_Member(address, name if name else address, int(capacity)))
        return members

    def check_versions(self, members: Sequence[_Member]) -> dict[str, dict[str, str]]:
        """Refuse workers whose redline (or Python) differs from this coordinator's.

        Raises:
            RunError: naming the worker and both versions.
        """
        ours = {"redline": _version(), "python": platform.python_version()}
        facts: dict[str, dict[str, str]] = self.client.run(
            worker_facts, workers=[m.address for m in members]
        )
        for member in members:
            theirs = facts.get(member.address)
            if theirs is None:
                raise RunError(f"Dask worker {member.address} did not answer")
            if theirs["redline"] != ours["redline"]:
                raise RunError(
                    f"Dask worker {member.name} ({member.address}) runs redline "
                    f"{theirs['redline']}, this coordinator redline {ours['redline']}: "
                    "install the same version on every host"
                )
            mine, other = ours["python"].rsplit(".", 1)[0], theirs["python"].rsplit(".", 1)[0]
            if mine != other:
                raise RunError(
                    f"Dask worker {member.name} ({member.address}) runs Python "
                    f"{theirs['python']}, this coordinator Python {ours['python']}: "
                    "the plan travels pickled and needs the same Python on every host"
                )
        return facts

    def clock_offset(self, address: str) -> tuple[float, float]:
        """``(offset_ns, error_ns)`` of a worker's wall clock against ours.

        Cristian's method: of a few round trips, the shortest; the worker's reading is
        taken to fall mid-way, so the error is at most half that round trip.
        """
        best = (0.0, float("inf"))
        for _ in range(_CLOCK_SAMPLES):
            sent = time.time_ns()
            theirs = self.client.run(time.time_ns, workers=[address])[address]
            back = time.time_ns()
            half = (back - sent) / 2
            if half < best[1]:
                best = (theirs - (sent + half), half)
        return best

    def fleet(self, plan: Plan, *, check_target: bool = True) -> DaskFleet:
        """A fleet of one generator per Dask worker, versions and clocks checked.

        Raises:
            RunError: no workers, a version that differs, a plan file that cannot travel.
        """
        members = self.members()
        self.check_versions(members)
        hosts = []
        offsets = []
        total = sum(m.capacity for m in members)
        for member in members:
            offset, error = self.clock_offset(member.address)
            offsets.append(int(offset))
            hosts.append(
                GeneratorHost(
                    name=member.name,
                    address=member.address,
                    share=member.capacity / total,
                    capacity=member.capacity,
                    clock_offset_ms=round(offset / 1e6, 3),
                    clock_error_ms=round(error / 1e6, 3),
                )
            )
        return DaskFleet(self, plan, tuple(hosts), offsets, check_target=check_target)


def _plan_source(plan: Plan) -> bytes | None:
    """A Python plan's file, to travel with the spec to hosts that lack it."""
    if plan.module is None:
        return None
    try:
        return Path(plan.module).read_bytes()
    except OSError as exc:
        raise RunError(f"cannot read the plan {plan.module!r} to send it: {exc}") from exc


class DaskFleet:
    """One generator per Dask worker, driven through Dask queues."""

    start_delay_s = 0.5
    """Time for the start instant to reach every host through the scheduler."""

    def __init__(
        self,
        cluster: DaskCluster,
        plan: Plan,
        hosts: tuple[GeneratorHost, ...],
        offsets: list[int],
        *,
        check_target: bool,
    ) -> None:
        """A fleet over ``hosts`` (nothing runs before :meth:`launch`)."""
        from distributed import Queue

        self.cluster = cluster
        self.client = cluster.client
        self.plan = plan
        self.hosts = hosts
        self.offsets = offsets
        self.check_target = check_target
        self.run = secrets.token_hex(6)
        self.up = Queue(f"redline-{self.run}", client=self.client)
        self.down = [
            Queue(f"redline-{self.run}-{i}", client=self.client) for i in range(len(hosts))
        ]
        self.futures: list[Any] = []
        self.heard: dict[int, float] = {}
        self.gone: set[int] = set()  # done or lost: nothing more counted from it
        self.lost: set[int] = set()
        self.notes: list[str] = []
        self.known = {h.address for h in hosts}
        self.refused: set[str] = set()
        self.next_roll_call = 0.0
        self.inbox: queue.Queue[tuple[int, Message]] = queue.Queue()
        self.listener = threading.Thread(
            target=self._listen, name="redline-cluster-inbox", daemon=True
        )
        self.listener.start()

    def weights(self, count: int) -> list[int]:
        """Each host's declared capacity."""
        assert count == len(self.hosts)
        return [h.capacity for h in self.hosts]

    def launch(self, specs: Sequence[WorkerSpec]) -> None:
        """Submit one relay task per host, pinned to it."""
        source = _plan_source(self.plan)
        for spec, host in zip(specs, self.hosts, strict=True):
            self.futures.append(
                self.client.submit(
                    generator_task,
                    spec,
                    self.run,
                    source,
                    self.check_target,
                    key=f"redline-generator-{self.run}-{spec.index}",
                    workers=[host.address],
                    allow_other_workers=False,
                    pure=False,
                    retries=0,
                )
            )

    def await_ready(self, timeout: float) -> None:
        """Wait for every generator's ``ready``.

        Raises:
            RunError: naming the host that failed, exited or stayed silent.
        """
        waiting = set(range(len(self.hosts)))
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(self._name(i) for i in sorted(waiting))
                raise RunError(f"cluster workers {names} did not start within {timeout:.0f}s")
            for index, message in self._read(min(left, 0.5)):
                kind = message[0]
                if kind == "ready":
                    waiting.discard(index)
                elif kind == "error":
                    raise RunError(
                        f"worker {self._name(index)} failed while starting:\n{message[1]}"
                    )
                elif kind == "lost":
                    raise RunError(
                        f"worker {self._name(index)} exited while starting: {message[1]}"
                    )
            for index in list(waiting):
                future = self.futures[index]
                if future.status == "error":
                    raise RunError(
                        f"worker {self._name(index)} failed while starting: {future.exception()}"
                    )
                if future.done() and index in waiting:
                    raise RunError(f"worker {self._name(index)} exited while starting")

    def start(self, delay_s: float) -> None:
        """Send each host the start instant in its own wall clock."""
        at = time.time_ns() + int(delay_s * 1e9)
        now = time.monotonic()
        for index, channel in enumerate(self.down):
            channel.put(("start", at + self.offsets[index]))
            self.heard[index] = now + delay_s

    def receive(self, timeout: float) -> list[tuple[int, Message]]:
        """Messages from the generators, and ``lost`` for a silent or departed one."""
        out = [m for m in self._read(timeout) if m[0] not in self.gone]
        now = time.monotonic()
        for index, message in out:
            if message[0] in ("done", "lost"):
                self.gone.add(index)
            if message[0] == "lost":
                self.lost.add(index)
        if now >= self.next_roll_call:
            self.next_roll_call = now + 1.0
            out.extend(self._lose(i, why) for i, why in self._roll_call())
        for index, last in self.heard.items():
            if index not in self.gone and now - last > LOST_AFTER_S:
                out.append(self._lose(index, f"no word for {now - last:.1f}s"))
        return out

    def _lose(self, index: int, why: str) -> tuple[int, Message]:
        self.gone.add(index)
        self.lost.add(index)
        return index, ("lost", why)

    def command(self, indexes: Iterable[int], action: str, value: float | None) -> None:
        """Put a live-control message on each generator's queue."""
        for index in indexes:
            with contextlib.suppress(Exception):
                self.down[index].put(("control", action, value))

    def stop(self, indexes: Iterable[int]) -> None:
        """Put ``stop`` on each generator's queue."""
        for index in indexes:
            with contextlib.suppress(Exception):  # a host cut off: it stops by itself
                self.down[index].put(("stop",))

    def close(self) -> None:
        """End the relays, wait for their tasks a while, cancel what is left."""
        from distributed import wait

        for channel in self.down:
            with contextlib.suppress(Exception):
                channel.put(("close",))
        with contextlib.suppress(Exception):  # a lost host's task will never finish
            wait([f for i, f in enumerate(self.futures) if i not in self.lost], _CLOSE_TIMEOUT)
        with contextlib.suppress(Exception):
            self.client.cancel([f for f in self.futures if not f.done()], force=True)
        self.futures.clear()
        with contextlib.suppress(Exception):
            self.up.put(pickle.dumps((-1, ("end",))))
        self.listener.join(timeout=_CLOSE_TIMEOUT)
        for channel in (self.up, *self.down):  # the scheduler drops a queue nobody holds
            with contextlib.suppress(Exception):
                channel.close()

    # -- helpers ----------------------------------------------------------------------------
    def _name(self, index: int) -> str:
        host = self.hosts[index]
        return (
            f"{index} ({host.name})"
            if host.name == host.address
            else f"{index} ({host.name}, {host.address})"
        )

    def _read(self, timeout: float) -> list[tuple[int, Message]]:
        """What the up queue brought, waiting up to ``timeout`` for the first message."""
        raw = []
        try:
            raw.append(self.inbox.get(timeout=timeout))
            while True:
                raw.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        now = time.monotonic()
        out = []
        for index, message in raw:
            self.heard[index] = max(self.heard.get(index, now), now)
            if message[0] != "beat":
                out.append((index, message))
        return out

    def _listen(self) -> None:
        """Move the up queue's messages to the inbox (a thread: Dask's get blocks).

        A get without a timeout: the scheduler logs every timed-out queue get as an error.
        :meth:`close` ends it with a message of its own.
        """
        while True:
            try:
                item = self.up.get()
            except Exception:  # noqa: BLE001  (the client closed: nothing more will come)
                return
            index, message = pickle.loads(item)
            if index < 0:
                return
            self.inbox.put((index, message))

    def _roll_call(self) -> list[tuple[int, str]]:
        """Hosts that left the cluster (to be lost); hosts that joined are refused."""
        try:
            present = set(self.client.run_on_scheduler(_scheduler_workers))
        except Exception:  # noqa: BLE001  (the scheduler busy or gone: heartbeats decide)
            return []
        for address in sorted(present - self.known - self.refused):
            self.refused.add(address)
            self.notes.append(
                f"Dask worker {address} joined during the run: refused for this test "
                "(segments are fixed at the start)"
            )
        return [
            (index, "it left the Dask cluster")
            for index, host in enumerate(self.hosts)
            if host.address not in present and index not in self.gone
        ]


@contextlib.contextmanager
def connect_cluster(address: str, *, wait_s: float = 10.0) -> Iterator[DaskCluster]:
    """Connect to a Dask scheduler, or start a ``LocalCluster`` for ``local:N``.

    Raises:
        RunError: the ``cluster`` extra is missing, the scheduler cannot be reached or
            the address is not understood, all before any load is sent.
    """
    try:
        import distributed
    except ImportError as exc:
        raise RunError(
            "--cluster needs Dask: pip install 'redline[cluster]' (on every host)"
        ) from exc
    local = None
    if address.startswith("local:") or address == "local":
        count_text = address.partition(":")[2] or str(os.cpu_count() or 1)
        try:
            count = int(count_text)
        except ValueError:
            count = 0
        if count < 1:
            raise RunError(f"--cluster {address}: expected local:N with N a whole number >= 1")
        # Worker processes: each Dask worker a process, one thread (the relay secedes).
        local = distributed.LocalCluster(
            n_workers=count,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        target = local.scheduler_address
    elif "://" in address:
        target = address
    else:
        raise RunError(
            f"--cluster {address!r}: expected a scheduler address like tcp://host:8786 or local:N"
        )
    try:
        client = distributed.Client(target, timeout=f"{wait_s}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        if local is not None:
            local.close()
        raise RunError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    cluster = DaskCluster(client, address, local=local, wait_s=wait_s)
    try:
        yield cluster
    finally:
        cluster.close()


class LazyCluster:
    """A cluster connected at its first run and kept for the rest (a command's ``--cluster``).

    The plan is read and checked first; a bad plan never waits for a scheduler, and no
    ``local:N`` workers start for a command that fails before it runs anything.
    """

    def __init__(self, address: str, *, wait_s: float = 10.0) -> None:
        """Remember where to connect."""
        self.address = address
        self.wait_s = wait_s
        self._stack = contextlib.ExitStack()
        self._cluster: DaskCluster | None = None
        self._lock = threading.Lock()  # ab --duet: two runs ask at once

    def fleet(self, plan: Plan, *, check_target: bool = True) -> DaskFleet:
        """Connect (the first time), then as :meth:`DaskCluster.fleet`.

        Raises:
            RunError: the scheduler cannot be reached, or as :meth:`DaskCluster.fleet`.
        """
        with self._lock:
            if self._cluster is None:
                self._cluster = self._stack.enter_context(
                    connect_cluster(self.address, wait_s=self.wait_s)
                )
            cluster = self._cluster
        return cluster.fleet(plan, check_target=check_target)

    def close(self) -> None:
        """Disconnect, if connected."""
        with self._lock:
            self._stack.close()
            self._cluster = None


# -- on the Dask worker ---------------------------------------------------------------------
def generator_task(
    spec: WorkerSpec, run: str, source: bytes | None, check_target: bool
) -> int | None:
    """The long-lived task on one Dask worker: start the generator process, relay.

    Returns the generator process's exit code.
    """
    from distributed import Queue, secede

    secede()  # a long task: leave the worker's thread pool free
    up = Queue(f"redline-{run}")
    down = Queue(f"redline-{run}-{spec.index}")
    index = spec.index

    def send(message: tuple[Any, ...]) -> None:
        up.put(pickle.dumps((index, message), protocol=pickle.HIGHEST_PROTOCOL))

    parent, child = Pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "redline.engine._remote", str(child.fileno())],
        pass_fds=[child.fileno()],
        stdin=subprocess.DEVNULL,
    )
    child.close()
    ended = threading.Event()
    send_lock = threading.Lock()

    def downlink() -> None:
        while True:
            try:
                message = down.get()  # no timeout: the scheduler logs each one that expires
            except Exception:  # noqa: BLE001  (the scheduler gone: the generator stops on EOF)
                break
            kind = message[0]
            with contextlib.suppress(OSError), send_lock:
                if kind == "start":  # the instant in this host's wall clock -> monotonic
                    parent.send(("start", time.monotonic_ns() + (message[1] - time.time_ns())))
                elif kind == "stop":
                    parent.send(("stop",))
                elif kind == "control":
                    parent.send(("control", message[1], message[2]))
                elif kind == "close":  # a generator still waiting for its start ends
                    parent.send(("close",))
            if kind == "close":
                break

    def heartbeat() -> None:
        while not ended.wait(_BEAT_S):
            with contextlib.suppress(Exception):
                send(("beat",))

    threads = [threading.Thread(target=f, daemon=True) for f in (downlink, heartbeat)]
    finished = False
    try:
        with send_lock:
            parent.send((spec, source, check_target))
        for thread in threads:
            thread.start()
        while True:
            try:
                message = parent.recv()
            except (EOFError, OSError):
                break
            send(message)
            if message[0] == "done":
                finished = True
                break
    finally:
        ended.set()
        with contextlib.suppress(Exception):
            down.put(("close",))  # ends the downlink's wait, whoever else is listening
        try:
            code = process.wait(timeout=_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        parent.close()
        if not finished:
            with contextlib.suppress(Exception):
                send(("lost", f"its generator process exited with code {code}"))
        for channel in (up, down):
            with contextlib.suppress(Exception):
                channel.close()
    return code


def materialized(spec: WorkerSpec, source: bytes | None) -> WorkerSpec:
    """``spec`` with a Python plan this host can import.

    The plan file is used where it is when it is there with the same content; otherwise
    the copy that travelled with the spec is written to a cache directory and used.
    """
    module = spec.plan.module
    if module is None or source is None:
        return spec
    path = Path(module)
    with contextlib.suppress(OSError):
        if path.read_bytes() == source:
            return spec
    digest = hashlib.sha256(source).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = home / "redline" / "plans" / digest
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    if not copy.exists():
        partial = copy.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(source)
        partial.replace(copy)
    import dataclasses

    return dataclasses.replace(spec, plan=dataclasses.replace(spec.plan, module=str(copy)))
