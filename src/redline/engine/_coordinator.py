"""The coordinator: starts workers, merges their intervals, stops them, builds the result.

Whatever happens (the load ends, Ctrl-C, a worker crashes), every interval that reached
the coordinator ends up in the :class:`RunResult`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from redline.core import (
    BlockedError,
    ControlEvent,
    EndpointInterval,
    Exemplar,
    GeneratorHost,
    GeneratorInterval,
    IntervalSnapshot,
    MetricInterval,
    Observers,
    RunError,
    RunResult,
    StopReason,
)
from redline.http import permitted
from redline.plan import ClosedLoad, Plan

from ._control import RunControl
from ._fleet import Cluster, Fleet, LocalFleet, current_cluster
from ._hooks import run_hook
from ._segments import Segment, block_of, split_weighted
from ._session import MAX_TRACEBACKS
from ._worker import WorkerInterval, WorkerSpec

__all__ = ["check_reachable", "default_workers", "run_plan"]

_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


_RATE_PER_WORKER = 25_000


def default_workers(plan: Plan) -> int:
    """The plan's own choice, or one worker per core, but no more than the load needs.

    Open model: one worker per 25,000 req/s of peak rate (a worker waits out the time to
    its next arrival precisely, which costs CPU that a co-located target may need).
    Closed model: never more workers than virtual users. A plan's scenarios: as many as
    the most demanding of them needs.
    """
    if plan.workers:
        return plan.workers
    cores = os.cpu_count() or 1
    if plan.workloads:
        return max(default_workers(dataclasses.replace(w.plan, workers=None))
                   for w in plan.workloads)  # fmt: skip
    if isinstance(plan.load, ClosedLoad):
        return max(1, min(cores, plan.load.max_vus))
    return max(1, min(cores, math.ceil(plan.load.peak_rate / _RATE_PER_WORKER)))


def check_reachable(plan: Plan) -> None:
    """Open (and close) one TCP connection to the target, where the plan allows load.

    Raises:
        RunError: the target cannot be reached, or the plan's ``allow:``/``block:``
            lists refuse every address it resolves to; so there is nothing to measure.
    """
    _, host, port = plan.origin
    shown = plan.redactor().url(plan.target)  # never a password in a message
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RunError(f"target {shown} is unreachable: {exc.strerror or exc}") from exc
    if plan.addresses.active:
        try:
            infos = permitted(plan.addresses, host, list(infos))
        except BlockedError as exc:
            raise RunError(f"target {exc}") from None
    failure: OSError | None = None
    for family, kind, proto, _, address in infos:  # as create_connection: each in turn
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.settimeout(plan.connect_timeout)
                probe.connect(address)
            return
        except OSError as exc:
            failure = exc
    assert failure is not None  # getaddrinfo answers at least one address or raises
    raise RunError(f"target {shown} is unreachable: {failure.strerror or failure}") from failure


def run_plan(
    plan: Plan,
    *,
    workers: int | None = None,
    observers: Iterable[object] = (),
    control: RunControl | None = None,
    check_target: bool = True,
    cluster: Cluster | None = None,
) -> RunResult:
    """Run ``plan`` and return what it measured.

    This is the engine's own entry: no verdicts, no store. :func:`redline.run` builds on
    it (and is what most callers want).

    Args:
        plan: the validated plan.
        workers: worker processes (default: :func:`default_workers`); on a cluster, one
            worker per Dask worker whatever this says.
        observers: each told ``on_start(run)`` once the load starts (the run as it
            stands: id and start time, stop reason ``"running"``) and
            ``on_interval(interval)`` with each merged interval, in this thread (see
            :class:`redline.core.Observer`; ``on_finish`` is the caller's to send).
        control: stop (or abort) the run from another thread or an observer; the result
            keeps every interval measured and is marked incomplete.
        check_target: connect once before starting and fail fast when unreachable (on a
            cluster, each generator checks from its own host).
        cluster: the Dask cluster to generate the load on (default: the one set with
            :func:`using_cluster`, if any, else processes on this machine).

    Raises:
        RunError: the target was unreachable at start, or the workers did not start.
    """
    cluster = cluster if cluster is not None else current_cluster()
    fleet: Fleet
    if cluster is None:
        if check_target:
            check_reachable(plan)
        fleet = LocalFleet()
        count = workers or default_workers(plan)
        if isinstance(plan.load, ClosedLoad) and not plan.workloads:
            count = max(1, min(count, plan.load.max_vus))
    else:
        fleet = cluster.fleet(plan, check_target=check_target)
        count = len(fleet.hosts)
    try:
        shared = run_hook(plan, "setup") if plan.has_setup else None
    except BaseException:
        fleet.close()  # nothing launched yet; a cluster fleet has channels to free
        raise
    seed = plan.seed if plan.seed is not None else secrets.randbits(32)
    trace_run = secrets.token_hex(6)  # trace ids unique to this run, whatever the seed
    segments = split_weighted(fleet.weights(count))
    block = block_of(segments)
    specs = [
        WorkerSpec(
            plan=plan,
            index=index,
            segment=segment,
            block=block,
            workers=count,
            seed=seed + index,
            shared=shared,
            trace_prefix=f"{trace_run}{index:04x}",
        )
        for index, segment in enumerate(segments)
    ]
    control = control or RunControl()
    fan_out = observers if isinstance(observers, Observers) else Observers(observers)
    merger = _Merger(plan, segments, fleet.hosts, fan_out, control)
    try:
        fleet.launch(specs)
        fleet.await_ready(_READY_TIMEOUT)
        # the load starts a moment from now, at once in every worker; started_at is that
        # moment on the wall clock, so watchers of the target align their samples with it
        delay = fleet.start_delay_s
        merger.begin(datetime.now(UTC) + timedelta(seconds=delay))
        fleet.start(delay)
        fan_out.on_start(merger.result(running=True))
        _collect(fleet, merger, control)
    finally:
        fleet.close()
        merger.notes.extend(fleet.notes)
    if plan.has_teardown:
        try:
            run_hook(plan, "teardown", shared)
        except RunError as exc:
            merger.notes.append(str(exc))
    return merger.result()


def _collect(fleet: Fleet, merger: _Merger, control: RunControl) -> None:
    live = set(range(len(merger.segments)))
    stop_sent_at: float | None = None
    while live:
        if control.stopped and stop_sent_at is None:
            stop_sent_at = time.monotonic()
            merger.note_stop()
            fleet.stop(live)
        for action, value in control.take_commands():
            merger.command(fleet, live, action, value)
        if stop_sent_at is not None and time.monotonic() - stop_sent_at > _STOP_TIMEOUT:
            merger.fail(f"workers {sorted(live)} did not stop within {_STOP_TIMEOUT:.0f}s")
            break
        for index, message in fleet.receive(0.1):
            if index not in live:
                continue  # a lost worker heard from again: what it says is not counted
            kind = message[0]
            if kind == "interval":
                merger.add(message[1])
            elif kind == "done":
                merger.finish(index)
                live.discard(index)
            elif kind == "lost":
                live.discard(index)
                merger.lose(index, message[1])
            elif kind == "error":
                # Keep reading this worker: it flushes what it measured before it exits
                # (or its channel closes, handled above). The rest stop too: a partial
                # load would mislead.
                merger.fail(f"worker {merger.name(index)} failed:\n{message[1]}")
                control.stop()
    merger.drain()


class _Merger:
    """Merges worker intervals into run intervals, in order, as they complete."""

    def __init__(
        self,
        plan: Plan,
        segments: Sequence[Segment],
        hosts: tuple[GeneratorHost, ...],
        observers: Observers,
        control: RunControl,
    ) -> None:
        self.plan = plan
        self.control = control
        self.segments = segments
        self.workers = len(segments)
        self.hosts = list(hosts)
        self.lost: dict[int, int] = {}  # worker -> the first interval it did not report
        self.events: list[ControlEvent] = []
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
        self.started = time.monotonic()

    def begin(self, started_at: datetime) -> None:
        self.started = time.monotonic() + (started_at - datetime.now(UTC)).total_seconds()
        self.id = f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        self.started_at = started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add(self, item: WorkerInterval) -> None:
        self.pending.setdefault(item.index, {})[item.worker] = item
        self.last_seen[item.worker] = item.index
        self._emit_ready()

    def finish(self, worker: int) -> None:
        self.finished[worker] = self.last_seen.get(worker, -1)
        self._emit_ready()

    def name(self, worker: int) -> str:
        """How notes name a worker: its host on a cluster, its number here."""
        if self.hosts:
            return f"{worker} ({self.hosts[worker].name})"
        return str(worker)

    def command(self, fleet: Fleet, live: set[int], action: str, value: float | None) -> None:
        """Pass a live-control action to the workers still running, and record it.

        A rate becomes a factor on the plan's rate as it stands now, so a ramp keeps its
        shape around the new level.
        """
        at_s = round(time.monotonic() - self.started, 3)
        load = self.plan.load
        if action == "rate" and value is not None:
            if isinstance(load, ClosedLoad):
                return
            planned = load.rate_at(max(at_s, 0.0))
            fleet.command(live, "factor", value / planned if planned > 0 else 1.0)
        elif action == "vus":
            if not isinstance(load, ClosedLoad) and all(w.open_model for w in self.plan.workloads):
                return
            fleet.command(live, "vus", value)
        else:
            fleet.command(live, action, value)
        self.events.append(ControlEvent(at_s, action, value))

    def lose(self, worker: int, why: str) -> None:
        """A worker is gone without finishing: the intervals from its next one are short.

        Its share of the load is missing from them (each interval says how much). The
        plan's ``generator.on_worker_lost`` says whether the others go on or stop.
        """
        at = self.last_seen.get(worker, -1) + 1
        self.lost[worker] = at
        share = float(self.segments[worker].share)
        if self.hosts:
            host = self.hosts[worker]
            noticed = round(time.monotonic() - self.started, 3)
            self.hosts[worker] = dataclasses.replace(
                host, lost_at=at, lost_reason=why, lost_noticed_s=noticed
            )
        note = (
            f"worker {self.name(worker)} lost at interval {at} ({why}): its {share:.1%} share "
            f"of the load is missing from interval {at} on"
        )
        if self.plan.on_worker_lost == "continue" and len(self.lost) < self.workers:
            self.notes.append(note + "; the run went on without it")
        else:
            self.fail(note)
            self.control.stop()
        self.finish(worker)

    def note_stop(self) -> None:
        """Mark the run stopped as its control asked (not when a failure asked first)."""
        if self.stop_reason != "completed":
            return
        if self.control.end_reason is not None:  # a planned end, only earlier
            self.notes.append(self.control.end_reason)
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
        index = self.next_index
        missing = sum(
            (self.segments[w].share for w, at in self.lost.items() if index >= at), Fraction(0)
        )
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
            hosts={self.hosts[i.worker].name: i.generator for i in items} if self.hosts else {},
            missing=float(missing),
            metrics=MetricInterval.merged_by_name(item.metrics for item in items),
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
            hosts=tuple(self.hosts),
            control=tuple(self.events),
        )


def _merged_steps(parts: Iterable[dict[str, EndpointInterval]]) -> dict[str, EndpointInterval]:
    """Groups or scenario iterations of several workers, merged by name."""
    by_name: dict[str, list[EndpointInterval]] = {}
    for part in parts:
        for name, data in part.items():
            by_name.setdefault(name, []).append(data)
    return {name: EndpointInterval.merged(items) for name, items in by_name.items()}
