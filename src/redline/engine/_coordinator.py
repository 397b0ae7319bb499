"""The coordinator: starts workers, merges their intervals, stops them, builds the result.

Whatever happens (the load ends, Ctrl-C, a worker crashes), every interval that reached
the coordinator ends up in the :class:`RunResult`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection, wait

from redline.core import (
    EndpointInterval,
    Exemplar,
    GeneratorInterval,
    IntervalSnapshot,
    Observers,
    RunError,
    RunResult,
    StopReason,
)
from redline.plan import ClosedLoad, Plan

from ._control import RunControl
from ._hooks import run_hook
from ._segments import block_of, split
from ._session import MAX_TRACEBACKS
from ._worker import WorkerInterval, WorkerSpec, worker_main

__all__ = ["check_reachable", "default_workers", "run_plan"]

_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


_RATE_PER_WORKER = 25_000


def default_workers(plan: Plan) -> int:
    """The plan's own choice, or one worker per core, but no more than the load needs.

    Open model: one worker per 25,000 req/s of peak rate (a worker waits out the time to
    its next arrival precisely, which costs CPU that a co-located target may need).
    Closed model: never more workers than virtual users.
    """
    if plan.workers:
        return plan.workers
    cores = os.cpu_count() or 1
    if isinstance(plan.load, ClosedLoad):
        return max(1, min(cores, plan.load.max_vus))
    return max(1, min(cores, math.ceil(plan.load.peak_rate / _RATE_PER_WORKER)))


def check_reachable(plan: Plan) -> None:
    """Open (and close) one TCP connection to the target.

    Raises:
        RunError: the target cannot be reached, so there is nothing to measure.
    """
    _, host, port = plan.origin
    try:
        with socket.create_connection((host, port), timeout=plan.connect_timeout):
            pass
    except OSError as exc:
        shown = plan.redactor().url(plan.target)  # never a password in a message
        raise RunError(f"target {shown} is unreachable: {exc.strerror or exc}") from exc


def run_plan(
    plan: Plan,
    *,
    workers: int | None = None,
    observers: Iterable[object] = (),
    control: RunControl | None = None,
    check_target: bool = True,
) -> RunResult:
    """Run ``plan`` and return what it measured.

    This is the engine's own entry: no verdicts, no store. :func:`redline.run` builds on
    it (and is what most callers want).

    Args:
        plan: the validated plan.
        workers: worker processes (default: :func:`default_workers`).
        observers: each told ``on_start(run)`` once the load starts (the run as it
            stands: id and start time, stop reason ``"running"``) and
            ``on_interval(interval)`` with each merged interval, in this thread (see
            :class:`redline.core.Observer`; ``on_finish`` is the caller's to send).
        control: stop (or abort) the run from another thread or an observer; the result
            keeps every interval measured and is marked incomplete.
        check_target: connect once before starting and fail fast when unreachable.

    Raises:
        RunError: the target was unreachable at start, or the workers did not start.
    """
    if check_target:
        check_reachable(plan)
    shared = run_hook(plan, "setup") if plan.has_setup else None
    count = workers or default_workers(plan)
    if isinstance(plan.load, ClosedLoad):
        count = max(1, min(count, plan.load.max_vus))
    seed = plan.seed if plan.seed is not None else secrets.randbits(32)
    trace_run = secrets.token_hex(6)  # trace ids unique to this run, whatever the seed
    context = multiprocessing.get_context("spawn")
    pipes: dict[int, Connection] = {}
    processes: list[multiprocessing.process.BaseProcess] = []
    segments = split(count)
    block = block_of(segments)
    for index, segment in enumerate(segments):
        parent, child = context.Pipe()
        spec = WorkerSpec(
            plan=plan,
            index=index,
            segment=segment,
            block=block,
            workers=count,
            seed=seed + index,
            shared=shared,
            trace_prefix=f"{trace_run}{index:04x}",
        )
        process = context.Process(
            target=worker_main, args=(spec, child), name=f"redline-worker-{index}", daemon=True
        )
        process.start()
        child.close()
        pipes[index] = parent
        processes.append(process)
    control = control or RunControl()
    fan_out = observers if isinstance(observers, Observers) else Observers(observers)
    merger = _Merger(plan, count, fan_out, control)
    try:
        _await_ready(pipes, processes, merger)
        # the load starts a moment from now, at once in every worker; started_at is that
        # moment on the wall clock, so watchers of the target align their samples with it
        start_ns = time.monotonic_ns() + 100_000_000
        merger.begin(datetime.now(UTC) + timedelta(seconds=(start_ns - time.monotonic_ns()) / 1e9))
        for pipe in pipes.values():
            pipe.send(("start", start_ns))
        fan_out.on_start(merger.result(running=True))
        _collect(pipes, merger, control)
    finally:
        for worker in processes:
            worker.join(timeout=_STOP_TIMEOUT)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for pipe in pipes.values():
            pipe.close()
    if plan.has_teardown:
        try:
            run_hook(plan, "teardown", shared)
        except RunError as exc:
            merger.notes.append(str(exc))
    return merger.result()


def _await_ready(
    pipes: dict[int, Connection],
    processes: list[multiprocessing.process.BaseProcess],
    merger: _Merger,
) -> None:
    waiting = set(pipes)
    deadline = time.monotonic() + _READY_TIMEOUT
    while waiting:
        ready = wait([pipes[i] for i in waiting], timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            raise RunError(f"workers {sorted(waiting)} did not start within {_READY_TIMEOUT:.0f}s")
        for item in ready:
            index = next(i for i, p in pipes.items() if p is item)
            try:
                message = pipes[index].recv()
            except EOFError:
                raise RunError(f"worker {index} exited while starting") from None
            if message[0] == "error":
                raise RunError(f"worker {index} failed while starting:\n{message[1]}")
            waiting.discard(index)


def _collect(pipes: dict[int, Connection], merger: _Merger, control: RunControl) -> None:
    live = dict(pipes)
    stop_sent_at: float | None = None
    while live:
        if control.stopped and stop_sent_at is None:
            stop_sent_at = time.monotonic()
            merger.note_stop()
            for pipe in live.values():
                # A worker that is already gone shows up as EOF below.
                with contextlib.suppress(OSError):
                    pipe.send(("stop",))
        if stop_sent_at is not None and time.monotonic() - stop_sent_at > _STOP_TIMEOUT:
            merger.fail(f"workers {sorted(live)} did not stop within {_STOP_TIMEOUT:.0f}s")
            break
        for ready in wait(list(live.values()), timeout=0.1):
            index = next(i for i, p in live.items() if p is ready)
            try:
                message = live[index].recv()
            except (EOFError, OSError):
                merger.fail(f"worker {index} exited without finishing")
                merger.finish(index)
                del live[index]
                continue
            kind = message[0]
            if kind == "interval":
                merger.add(message[1])
            elif kind == "done":
                merger.finish(index)
                del live[index]
            elif kind == "error":
                # Keep reading this worker: it flushes what it measured before it exits
                # (or its pipe closes, handled above). The rest stop too: a partial load
                # would mislead.
                merger.fail(f"worker {index} failed:\n{message[1]}")
                control.stop()
    merger.drain()


class _Merger:
    """Merges worker intervals into run intervals, in order, as they complete."""

    def __init__(self, plan: Plan, workers: int, observers: Observers, control: RunControl) -> None:
        self.plan = plan
        self.control = control
        self.workers = workers
        self.observers = observers
        self.pending: dict[int, dict[int, WorkerInterval]] = {}
        self.finished: dict[int, int] = {}  # worker -> last interval index reported
        self.last_seen: dict[int, int] = {}
        self.intervals: list[IntervalSnapshot] = []
        self.next_index = 0
        self.stop_reason: StopReason = "completed"
        self.notes: list[str] = []
        self.tracebacks: list[str] = []
        self.exemplars: list[Exemplar] = []
        self.id = ""
        self.started_at = ""

    def begin(self, started_at: datetime) -> None:
        self.id = f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        self.started_at = started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add(self, item: WorkerInterval) -> None:
        self.pending.setdefault(item.index, {})[item.worker] = item
        self.last_seen[item.worker] = item.index
        self._emit_ready()

    def finish(self, worker: int) -> None:
        self.finished[worker] = self.last_seen.get(worker, -1)
        self._emit_ready()

    def note_stop(self) -> None:
        """Mark the run stopped as its control asked (not when a failure asked first)."""
        if self.stop_reason != "completed":
            return
        if self.control.abort_reason is not None:
            self.stop_reason = "aborted"
            self.notes.append(f"aborted: {self.control.abort_reason}")
        else:
            self.stop_reason = "interrupted"

    def fail(self, note: str) -> None:
        self.notes.append(note)
        self.stop_reason = "worker_failed"

    def _expected(self, index: int) -> int:
        return sum(
            1 for w in range(self.workers) if w not in self.finished or self.finished[w] >= index
        )

    def _emit_ready(self) -> None:
        while self.next_index in self.pending and len(
            self.pending[self.next_index]
        ) >= self._expected(self.next_index):
            self._emit(self.pending.pop(self.next_index))

    def drain(self) -> None:
        for index in sorted(self.pending):
            self.next_index = index
            self._emit(self.pending.pop(index))

    def _emit(self, parts: dict[int, WorkerInterval]) -> None:
        items = list(parts.values())
        names: dict[str, None] = {}
        for item in items:
            names.update(dict.fromkeys(item.endpoints))
        endpoints = {
            name: EndpointInterval.merged(i.endpoints[name] for i in items if name in i.endpoints)
            for name in names
        }
        groups = _merged_steps(item.groups for item in items)
        scenarios = _merged_steps(item.scenarios for item in items)
        for data in (*endpoints.values(), *groups.values(), *scenarios.values()):
            data.latency.compact()
            data.latency_actual.compact()
        checks: dict[str, tuple[int, int]] = {}
        exceptions: dict[str, Counter[str]] = {}
        for item in items:
            for name, (passes, fails) in item.checks.items():
                before = checks.get(name, (0, 0))
                checks[name] = (before[0] + passes, before[1] + fails)
            for scenario, types in item.exceptions.items():
                exceptions.setdefault(scenario, Counter()).update(types)
            room = MAX_TRACEBACKS - len(self.tracebacks)
            self.tracebacks.extend(item.tracebacks[: max(room, 0)])
        exemplars = self._keep_exemplars(items)
        start = min(i.start_s for i in items)
        snapshot = IntervalSnapshot(
            index=self.next_index,
            start_s=start,
            duration_s=max(i.duration_s for i in items),
            endpoints=endpoints,
            generator=GeneratorInterval.merged(i.generator for i in items),
            warmup=start + 1e-9 < self.plan.warmup,
            groups=groups,
            scenarios=scenarios,
            checks=checks,
            exceptions={name: dict(types) for name, types in exceptions.items()},
            exemplars=exemplars,
        )
        self.intervals.append(snapshot)
        self.next_index += 1
        self.observers.on_interval(snapshot)
        if self.control.abort_reason is not None:  # an observer aborted on this interval
            self.note_stop()

    def _keep_exemplars(self, items: list[WorkerInterval]) -> tuple[Exemplar, ...]:
        """The interval's traced requests, over every worker.

        The slowest per endpoint (as many as one worker keeps), and every failed and
        sampled one the workers kept.
        """
        kept = [e for item in items for e in item.exemplars]
        if not kept:
            return ()
        slowest = self.plan.trace.slowest
        by_endpoint: dict[str, list[tuple[str, str, float, int | None, str]]] = {}
        for entry in kept:
            if entry[4] == "slowest":
                by_endpoint.setdefault(entry[1], []).append(entry)
        chosen = [e for e in kept if e[4] != "slowest"]
        for entries in by_endpoint.values():
            chosen.extend(sorted(entries, key=lambda e: -e[2])[:slowest])
        made = tuple(
            Exemplar(trace, endpoint, ms, status, self.next_index, why)  # type: ignore[arg-type]
            for trace, endpoint, ms, status, why in chosen
        )
        self.exemplars.extend(made)
        return made

    def result(self, *, running: bool = False) -> RunResult:
        """The run so far (``running``: just started) or as it ended, secrets redacted."""
        redactor = self.plan.redactor()
        return RunResult(
            id=self.id,
            plan=self.plan.summary(),
            started_at=self.started_at,
            intervals=() if running else tuple(self.intervals),
            workers=self.workers,
            complete=not running and self.stop_reason == "completed",
            stop_reason="running" if running else self.stop_reason,
            late_tolerance=self.plan.late_tolerance,
            open_model=not isinstance(self.plan.load, ClosedLoad),
            notes=redactor.lines(self.notes),
            tracebacks=redactor.lines(self.tracebacks),
            exemplars=tuple(self.exemplars),
        )


def _merged_steps(parts: Iterable[dict[str, EndpointInterval]]) -> dict[str, EndpointInterval]:
    """Groups or scenario iterations of several workers, merged by name."""
    by_name: dict[str, list[EndpointInterval]] = {}
    for part in parts:
        for name, data in part.items():
            by_name.setdefault(name, []).append(data)
    return {name: EndpointInterval.merged(items) for name, items in by_name.items()}
