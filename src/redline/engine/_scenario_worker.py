"""The worker for Python scenarios: iterations as tasks on top of a session runtime.

Open model: each arrival starts one iteration of the next scenario (weighted) with a new
session; latency of the iteration is measured from the arrival's intended start.
Closed model: each virtual user is a task that keeps its session and loops iterations,
with the plan's think time between them. Exceptions in a scenario are counted per
scenario and type (the first few tracebacks kept) and never stop the run.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from redline.http import ConnectionPool
from redline.plan import (
    ClosedLoad,
    RenderContext,
    RequestSpec,
    ThinkStep,
    import_plan_module,
)

from ._requests import host_header, weighted_cycle
from ._session import Session, SessionRuntime
from ._worker import WorkerSpec, _Worker, pool_options

__all__ = ["ScenarioWorker"]

Scenario = Callable[[Session], Awaitable[None]]


async def run_steps(
    session: Session, *, steps: tuple[RequestSpec | ThinkStep, ...], ctx: RenderContext
) -> None:
    """A flow of a YAML plan: its requests in order, with its think times."""
    for step in steps:
        if isinstance(step, ThinkStep):
            await session.think(step.minimum, step.maximum)
            continue
        await session.request(
            step.method,
            step.path.render(ctx),
            name=step.name,
            headers={name: value.render(ctx) for name, value in step.headers},
            body=step.body.render(ctx) if step.body is not None else None,
        )


class ScenarioWorker(_Worker):
    """Runs a Python plan's scenarios in one worker process."""

    def __init__(self, spec: WorkerSpec, pipe: Connection) -> None:
        """Import the plan's module and set up the session runtime."""
        super().__init__(spec, pipe)
        plan = spec.plan
        module = import_plan_module(plan.module) if plan.module else None
        self.functions: list[Scenario] = [
            getattr(module, s.function)
            if s.function
            else functools.partial(run_steps, steps=s.steps, ctx=self.ctx)
            for s in plan.scenarios
        ]
        self.names = [s.name for s in plan.scenarios]
        self.keys = [self.recorder.index(("scenario", s.name)) for s in plan.scenarios]
        self.order = weighted_cycle([s.weight for s in plan.scenarios])
        self.position = spec.index
        self.tasks: set[asyncio.Task[None]] = set()
        self.vus: dict[int, asyncio.Task[None]] = {}

    def _make_pool(self) -> ConnectionPool:
        # Sessions share one pool; the runtime listens to it instead of the worker.
        self.runtime = SessionRuntime(
            pool_options(self.plan),
            host_header=host_header(self.plan),
            recorder=self.recorder,
            data=self.plan.data,
            ctx=self.ctx,
            shared=self.spec.shared,
        )
        return self.runtime.pool

    def _next_scenario(self) -> int:
        index = self.order[self.position % len(self.order)]
        self.position += 1
        return index

    async def _iteration(self, session: Session, index: int, intended: int) -> None:
        key = self.keys[index]
        started = time.monotonic_ns()
        try:
            await self.functions[index](session)
        except asyncio.CancelledError:
            self.recorder.record_error(key, "unfinished", time.monotonic_ns())
            raise
        except Exception as exc:  # noqa: BLE001  (a scenario's failure is measured, never fatal)
            self.recorder.record_error(key, type(exc).__name__, time.monotonic_ns())
            self.runtime.count_exception(self.names[index], exc)
        else:
            now = time.monotonic_ns()
            self.recorder.record(key, now - intended, now - started, 200, 0, now)

    # -- open model ------------------------------------------------------------------------
    def _start(self, intended: int, now: int) -> None:
        assert self.loop is not None
        self.in_flight += 1
        self.sent[now >= self.boundary] += 1
        session = Session(self.runtime)
        task = self.loop.create_task(self._iteration(session, self._next_scenario(), intended))
        self.tasks.add(task)
        task.add_done_callback(self._iteration_done)

    def _iteration_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.in_flight -= 1
        self._check_drained()

    # -- closed model ----------------------------------------------------------------------
    def _adjust_vus(self) -> None:
        load = self.plan.load
        assert isinstance(load, ClosedLoad)
        assert self.loop is not None
        elapsed = (time.monotonic_ns() - self.t0) / 1e9
        self.vus_target = self.spec.segment.scale(load.vus_at(elapsed))
        for number in range(self.vus_target):
            if number not in self.vus:
                task = self.loop.create_task(self._virtual_user(number))
                self.vus[number] = task
                task.add_done_callback(functools.partial(self._user_done, number))

    async def _virtual_user(self, number: int) -> None:
        session = Session(self.runtime)
        random = self.random
        think_min, think_max = self.think_min, self.think_max
        while not self.stopping and number < self.vus_target:
            now = time.monotonic_ns()
            self.in_flight += 1
            self.sent[now >= self.boundary] += 1
            try:
                await self._iteration(session, self._next_scenario(), now)
            finally:
                self.in_flight -= 1
            if think_max > 0 and not self.stopping:
                await asyncio.sleep(random.uniform(think_min, think_max))

    def _user_done(self, number: int, _task: asyncio.Task[None]) -> None:
        self.vus.pop(number, None)
        self._check_drained()

    # -- the end ---------------------------------------------------------------------------
    async def _cancel_unfinished(self) -> None:
        running = [*self.tasks, *self.vus.values()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        return self.runtime.take_counters()
