"""The scenario drivers: iterations of a plan's scenarios as tasks over a session runtime.

Open model: each arrival starts one iteration of the next scenario (weighted) with a new
session; the iteration's latency is measured from the arrival's intended start. Closed
model: each virtual user is a task that keeps its session and loops iterations, with the
plan's think time between them. Exceptions in a scenario are counted per scenario and
type (the first few tracebacks kept) and never stop the run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redline.http import ConnectionPool
from redline.plan import (
    ClosedLoad,
    Extraction,
    Plan,
    RenderContext,
    RequestSpec,
    ThinkStep,
    import_plan_module,
    text_of,
)

from ._arrivals import ArrivalPump, abandon_busy
from ._clock import IntervalClock
from ._recorder import Recorder
from ._requests import host_header, weighted_cycle
from ._session import OriginPools, Response, Session, SessionRuntime
from ._tracing import Tracer

__all__ = ["ScenarioIterations", "ScenarioUsers", "run_steps"]

Scenario = Callable[[Session], Awaitable[None]]


async def run_steps(
    session: Session, *, steps: tuple[RequestSpec | ThinkStep, ...], ctx: RenderContext
) -> None:
    """A flow of a YAML plan: its requests in order, with its think times.

    A step's ``check`` counts named checks of its response; its ``extract`` keeps values
    of it as the iteration's variables, which later steps render as ``${vars.name}``
    (a value not found fails the check ``extract NAME``, and a step that needs it fails
    with :class:`MissingVariableError`).
    """
    variables: dict[str, str] = {}
    for step in steps:
        if isinstance(step, ThinkStep):
            await session.think(step.minimum, step.maximum)
            continue
        ctx.variables = variables  # rendering is synchronous: no other session interleaves
        try:
            path = step.origin + step.path.render(ctx)
            headers = {name: value.render(ctx) for name, value in step.headers}
            body: str | bytes | None = None
            if step.multipart:
                body = step.render_multipart(ctx)
            elif step.body is not None:
                body = step.body.render(ctx)
        finally:
            ctx.variables = {}
        response = await session.request(
            step.method, path, name=step.name, headers=headers, body=body,
            redirects=step.redirects,
        )  # fmt: skip
        for check in step.checks:
            if check.kind == "status":
                session.check(check.name, response.status in check.expected)
            else:
                session.check(check.name, str(check.expected) in response.text)
        for extraction in step.extract:
            value = extracted(response, extraction)
            if session.check(f"extract {extraction.name}", value is not None):
                variables[extraction.name] = str(value)


class _OneOf:
    """An iteration that is one request of several, in weighted turn.

    A scenario's ``requests:``, run by virtual users that count their iterations.
    """

    def __init__(self, steps: tuple[RequestSpec | ThinkStep, ...], *, ctx: RenderContext,
                 position: int) -> None:  # fmt: skip
        self.steps = [(step,) for step in steps]
        self.order = weighted_cycle([s.weight for s in steps if isinstance(s, RequestSpec)])
        self.position = position
        self.ctx = ctx

    async def __call__(self, session: Session) -> None:
        index = self.order[self.position % len(self.order)]
        self.position += 1
        await run_steps(session, steps=self.steps[index], ctx=self.ctx)


def extracted(response: Response, how: Extraction) -> str | None:
    """The value ``how`` reads off ``response``, or None when it is not there."""
    if how.kind == "header":
        return response.headers.get(how.expression.lower())
    if how.kind == "regex":
        match = re.search(how.expression, response.text)
        if match is None:
            return None
        return match.group(1) if match.re.groups else match.group(0)
    try:
        value: Any = response.json()
    except ValueError:
        return None
    for step in how.json_steps() or ():
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return text_of(value)


class _Scenarios:
    """What both scenario drivers share: the scenarios, their order, the runtime."""

    def __init__(
        self,
        *,
        plan: Plan,
        recorder: Recorder,
        clock: IntervalClock,
        ctx: RenderContext,
        pool_options: dict[str, Any],
        shared: Any,
        position: int,
        drained: asyncio.Event,
        tracer: Tracer | None = None,
    ) -> None:
        module = import_plan_module(plan.module) if plan.module else None
        self.functions: list[Scenario] = [
            getattr(module, s.function)
            if s.function
            else _OneOf(s.steps, ctx=ctx, position=position)
            if s.pick_one
            else functools.partial(run_steps, steps=s.steps, ctx=ctx)
            for s in plan.scenarios
        ]
        self.names = [s.name for s in plan.scenarios]
        self.recorder = recorder
        self.keys = [recorder.index(("scenario", s.name)) for s in plan.scenarios]
        self.order = weighted_cycle([s.weight for s in plan.scenarios])
        self.position = position
        self.clock = clock
        self.sent = clock.sent
        self.drained = drained
        # sessions share one pool; the runtime listens to it
        self.runtime = SessionRuntime(
            pool_options,
            host_header=host_header(plan),
            recorder=recorder,
            data=plan.data,
            ctx=ctx,
            shared=shared,
            tracer=tracer,
            redirects=plan.redirects,
            verify_tls=plan.verify_tls,
            grpc_schema=plan.grpc_schema,
        )
        self.pool: ConnectionPool = OriginPools(self.runtime)  # type: ignore[assignment]
        self.queue: deque[tuple[int, int, bytes, bool]] = deque()  # never used: tasks wait
        self.in_flight = 0
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def _next_scenario(self) -> int:
        index = self.order[self.position % len(self.order)]
        self.position += 1
        return index

    async def _iteration(self, session: Session, index: int, intended: int) -> None:
        key = self.keys[index]
        session.started_ns = intended
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

    def _check_drained(self) -> None:
        if self.stopping and not self.in_flight:
            self.drained.set()

    # -- the driver's side for the worker -------------------------------------------------
    def stop(self) -> None:
        """Start nothing new; iterations under way may finish."""
        self.stopping = True

    @property
    def pending(self) -> bool:
        """Whether iterations are under way."""
        return bool(self.in_flight)

    def abandon_unfinished(self) -> None:
        """Count the requests of cancelled iterations still in flight."""
        self.in_flight -= abandon_busy(self.pool, self.recorder)

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and tracebacks of the interval."""
        return self.runtime.take_counters()

    def take_exemplars(self) -> list[tuple[str, int, float, int | None, str]]:
        """The traced requests kept in the interval (a traced plan's)."""
        tracer = self.runtime.tracer
        return tracer.take() if tracer is not None else []


class ScenarioIterations(_Scenarios):
    """Open model: an iteration per arrival, each with a new session."""

    def __init__(self, *, pump: dict[str, Any], **parts: Any) -> None:
        """Iterations on arrivals; ``pump`` are :class:`ArrivalPump` arguments."""
        super().__init__(**parts)
        self.arrivals = ArrivalPump(self, clock=self.clock, **pump)
        self.tasks: set[asyncio.Task[None]] = set()
        self.open_model = True

    def target_rps(self, at_s: float) -> float | None:
        """The worker's share of the intended rate."""
        return self.arrivals.target_rps(at_s)

    def control(self, action: str, value: float | None) -> None:
        """Live control of the arrivals (see :meth:`ArrivalPump.control`)."""
        self.arrivals.control(action, value)

    def prepare(self) -> None:
        """Before the load: open a few connections."""
        self.arrivals.prepare()

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load starts: the arrivals do."""
        self.loop = loop
        self.arrivals.begin(loop)

    def sweep(self) -> None:
        """Every 0.1 s: read timeouts."""
        self.pool.sweep_timeouts()

    def start(self, intended: int, now: int) -> None:
        """Start one iteration of the next scenario."""
        assert self.loop is not None
        self.in_flight += 1
        self.sent[now >= self.clock.boundary] += 1
        session = Session(self.runtime)
        task = self.loop.create_task(self._iteration(session, self._next_scenario(), intended))
        self.tasks.add(task)
        task.add_done_callback(self._iteration_done)

    def _iteration_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.in_flight -= 1
        self._check_drained()

    async def cancel_unfinished(self) -> None:
        """Cancel iterations still running after the grace period."""
        running = list(self.tasks)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


class ScenarioUsers(_Scenarios):
    """Closed model: virtual users, each a task with its own session."""

    def __init__(
        self,
        *,
        load: ClosedLoad,
        scale: Any,
        rng: random.Random,
        finished: asyncio.Event,
        iterations: int | None = None,
        shared_iterations: int | None = None,
        **parts: Any,
    ) -> None:
        """Users of ``load`` (this worker's share, by ``scale``).

        With ``iterations`` each user runs that many and is done (k6's per-VU
        iterations); with ``shared_iterations`` the users run this worker's share of them
        between them (k6's shared iterations). ``finished`` is set once all are done.
        """
        super().__init__(**parts)
        self.load = load
        self.scale = scale
        self.random = rng
        self.finished = finished
        self.iterations = iterations
        self.remaining = shared_iterations
        self.counted = iterations is not None or shared_iterations is not None
        self.completed: set[int] = set()  # users that ran all their iterations
        self.vus: dict[int, asyncio.Task[None]] = {}
        self.vus_target = 0
        self.vus_override: int | None = None
        self.running = asyncio.Event()  # cleared while paused (live control)
        self.running.set()
        self.open_model = False
        self.sent = self.clock.started  # a closed model is its own schedule

    def target_rps(self, at_s: float) -> float | None:
        """A closed model has no intended rate."""
        return None

    def control(self, action: str, value: float | None) -> None:
        """Live control: ``pause``, ``resume`` or ``vus`` (the whole test's users).

        Paused, each user finishes its iteration and waits; with ``vus`` this worker
        takes its share of the new number from now on.
        """
        if action == "pause":
            self.running.clear()
        elif action == "resume":
            self.running.set()
        elif action == "vus" and value is not None and value >= 0:
            self.vus_override = int(value)
            if self.loop is not None:  # before the load starts, begin() adjusts
                self._adjust()

    def prepare(self) -> None:
        """Users start with the load."""

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load starts: the users do, and the load ends on time."""
        self.loop = loop
        self._adjust()
        loop.call_later(self.clock.left_s(), self.finished.set)
        self._check_counted()

    def sweep(self) -> None:
        """Every 0.1 s: read timeouts, and as many users as the load asks for now."""
        self.pool.sweep_timeouts()
        if not self.stopping:
            self._adjust()

    def _adjust(self) -> None:
        assert self.loop is not None
        elapsed = (time.monotonic_ns() - self.clock.t0) / 1e9
        wanted = self.vus_override if self.vus_override is not None else self.load.vus_at(elapsed)
        self.vus_target = self.scale(wanted)
        if self.remaining is not None and self.remaining <= 0:
            return  # the shared iterations are all taken
        for number in range(self.vus_target):
            if number not in self.vus and number not in self.completed:
                task = self.loop.create_task(self._virtual_user(number))
                self.vus[number] = task
                task.add_done_callback(functools.partial(self._user_done, number))

    async def _virtual_user(self, number: int) -> None:
        session = Session(self.runtime)
        rng = self.random
        think_min, think_max = self.load.think_min, self.load.think_max
        done = 0
        while not self.stopping and number < self.vus_target:
            if not self.running.is_set():
                await self.running.wait()
                continue  # the users may have changed, or the run stopped, meanwhile
            if self.counted:
                if done == self.iterations or self.remaining == 0:
                    self.completed.add(number)
                    return
                if self.remaining is not None:
                    self.remaining -= 1
                done += 1
            now = time.monotonic_ns()
            self.in_flight += 1
            self.sent[now >= self.clock.boundary] += 1
            try:
                await self._iteration(session, self._next_scenario(), now)
            finally:
                self.in_flight -= 1
            if think_max > 0 and not self.stopping:
                await asyncio.sleep(rng.uniform(think_min, think_max))

    def stop(self) -> None:
        """Start nothing new; paused users wake to end."""
        super().stop()
        self.running.set()

    def _user_done(self, number: int, _task: asyncio.Task[None]) -> None:
        self.vus.pop(number, None)
        self._check_drained()
        self._check_counted()

    def _check_counted(self) -> None:
        """Counted iterations: the load is finished once every user has run its share."""
        if not self.counted or self.in_flight:
            return
        if self.remaining == 0 or (
            self.iterations is not None and len(self.completed) >= self.scale(self.load.max_vus)
        ):
            self.finished.set()

    async def cancel_unfinished(self) -> None:
        """Cancel users still running after the grace period."""
        running = list(self.vus.values())
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
