"""A plan's scenarios (k6's) side by side in one worker: a driver per scenario.

Each scenario's load is already on the run's clock (nothing before its start time,
nothing after its end), so its driver is one the engine has anyway, started with the
others. What this adds is each scenario's end: at its end (or once its iterations are
done) it starts nothing new, its iterations under way get its graceful stop to finish,
and whatever is left is cut and counted. The worker is finished when every scenario is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redline.http import ConnectionPool
from redline.plan import Workload

from ._clock import IntervalClock

__all__ = ["WorkloadDrivers", "WorkloadPart"]


@dataclass
class WorkloadPart:
    """One scenario's driver and the events it signals with."""

    workload: Workload
    driver: Any
    finished: asyncio.Event
    drained: asyncio.Event
    ending: bool = False
    done: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class _Pools:
    """The scenarios' connection pools, as the worker sees a driver's one pool."""

    def __init__(self, parts: Sequence[WorkloadPart]) -> None:
        self.parts = parts

    @property
    def size(self) -> int:
        return sum(p.driver.pool.size for p in self.parts)

    async def aclose(self) -> None:
        for part in self.parts:
            await part.driver.pool.aclose()


class WorkloadDrivers:
    """The driver of a plan with ``scenarios:``: its scenarios' drivers, run together."""

    def __init__(
        self,
        parts: Sequence[WorkloadPart],
        *,
        clock: IntervalClock,
        finished: asyncio.Event,
        drained: asyncio.Event,
        tracer: Any = None,
    ) -> None:
        """Run ``parts``; set ``finished`` (and ``drained``) once every one has ended."""
        self.parts = list(parts)
        self.clock = clock
        self.finished = finished
        self.drained = drained
        self.tracer = tracer
        self.pool: ConnectionPool = _Pools(self.parts)  # type: ignore[assignment]
        self.open_model = any(p.workload.open_model for p in self.parts)
        self.stopping = False
        self.grace_s = max(p.workload.graceful_stop for p in self.parts)
        """How long the worker waits at the end for iterations under way."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Requests or iterations under way, over every scenario."""
        return sum(p.driver.in_flight for p in self.parts)

    def target_rps(self, at_s: float) -> float | None:
        """The worker's share of the intended rate of the arrival-rate scenarios."""
        rates = [p.driver.target_rps(at_s) for p in self.parts]
        known = [r for r in rates if r is not None]
        return sum(known) if known else (0.0 if self.open_model else None)

    def prepare(self) -> None:
        """Before the load: each scenario gets ready (an open one opens connections)."""
        for part in self.parts:
            part.driver.prepare()

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The run starts: every scenario's driver does (each waits for its start time)."""
        self.loop = loop
        for part in self.parts:
            part.driver.begin(loop)
            self._spawn(self._watch(part))

    def _spawn(self, coroutine: Any) -> None:
        assert self.loop is not None
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _watch(self, part: WorkloadPart) -> None:
        """End ``part`` at its end, or when its driver says it is finished before."""
        left = part.workload.end - (time.monotonic_ns() - self.clock.t0) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(part.finished.wait(), max(left, 0.0))
        await self._end(part)

    async def _end(self, part: WorkloadPart) -> None:
        """Start nothing new; wait out the graceful stop for what is under way; cut the rest."""
        if part.ending:
            await part.ended.wait()
            return
        part.ending = True
        driver = part.driver
        driver.stop()
        if driver.pending:
            part.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(part.drained.wait(), part.workload.graceful_stop)
        await driver.cancel_unfinished()
        driver.abandon_unfinished()
        part.done = True
        part.ended.set()
        if all(p.done for p in self.parts):
            self.finished.set()
            self.drained.set()

    def sweep(self) -> None:
        """Every 0.1 s: each running scenario's housekeeping."""
        for part in self.parts:
            if not part.done:
                part.driver.sweep()

    def stop(self) -> None:
        """Start nothing new in any scenario (the end of the run, or Ctrl-C).

        Each ends as at its own end; the worker cuts them short after its grace period.
        """
        self.stopping = True
        for part in self.parts:
            if not part.ending:
                self._spawn(self._end(part))

    @property
    def pending(self) -> bool:
        """Whether any scenario has work under way."""
        return any(not p.done and p.driver.pending for p in self.parts)

    async def cancel_unfinished(self) -> None:
        """Cut what is still under way in every scenario, and stop watching them."""
        for part in self.parts:
            if not part.done:
                await part.driver.cancel_unfinished()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def abandon_unfinished(self) -> None:
        """Count what was still queued or in flight in every scenario."""
        for part in self.parts:
            if not part.done:
                part.driver.abandon_unfinished()
                part.done = True

    def control(self, action: str, value: float | None) -> None:
        """Live control: pause and resume all; a rate to the arrival-rate scenarios.

        ``vus`` goes to the externally controlled scenarios (k6's rule), or, when there
        is none, to the one VU scenario if there is exactly one.
        """
        live = [p for p in self.parts if not p.ending]
        if action == "factor":
            chosen = [p for p in live if p.workload.open_model]
        elif action == "vus":
            chosen = [p for p in live if p.workload.executor == "externally-controlled"]
            if not chosen:
                closed = [p for p in live if not p.workload.open_model]
                chosen = closed if len(closed) == 1 else []
            if value is not None:
                most = max((p.workload.vus for p in chosen), default=0)
                value = min(value, most) if most else value
        else:
            chosen = live
        for part in chosen:
            control = getattr(part.driver, "control", None)
            if control is not None:
                control(action, value)

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and tracebacks of the interval, over every scenario."""
        checks: dict[str, tuple[int, int]] = {}
        exceptions: dict[str, dict[str, int]] = {}
        tracebacks: list[str] = []
        for part in self.parts:
            part_checks, part_exceptions, part_tracebacks = part.driver.take_counters()
            for name, (passes, fails) in part_checks.items():
                before = checks.get(name, (0, 0))
                checks[name] = (before[0] + passes, before[1] + fails)
            for scenario, types in part_exceptions.items():
                mine = exceptions.setdefault(scenario, {})
                for kind, count in types.items():
                    mine[kind] = mine.get(kind, 0) + count
            tracebacks.extend(part_tracebacks)
        return checks, exceptions, tracebacks

    def take_exemplars(self) -> list[tuple[str, int, float, int | None, str]]:
        """The traced requests kept in the interval (one tracer serves every scenario)."""
        return self.tracer.take() if self.tracer is not None else []
