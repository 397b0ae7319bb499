"""One load-generating worker process, built from parts.

A worker is a shell (this module: the pipe to the coordinator, the event loop, the
interval clock and reports) around one *driver*: the open model's arrivals or the closed
model's virtual users, sending plain HTTP requests or running scenarios. The driver is
the seam a remote worker reuses; the shell knows nothing of load models. It reports one
:class:`WorkerInterval` per second over the pipe and stops by itself at the end of the
load, or earlier when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import math
import os
import random
import signal
import ssl
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from redline.core import EndpointInterval, GeneratorInterval, MetricInterval, take_metrics
from redline.http import ConnectionPool
from redline.plan import ClosedLoad, OpenLoad, Plan, RenderContext, Workload

from ._clock import IntervalClock
from ._http_drivers import HttpRequests, HttpUsers
from ._lingering import settle_lingering
from ._recorder import Recorder
from ._requests import RequestMix
from ._scenario_drivers import ScenarioIterations, ScenarioUsers
from ._segments import Segment
from ._tracing import TracedHttpRequests, TracedHttpUsers, Tracer
from ._workload_drivers import WorkloadDrivers, WorkloadPart

__all__ = ["Driver", "WorkerInterval", "WorkerSpec", "make_driver", "watch_pipe", "worker_main"]

_DRAIN_GRACE = 5.0  # seconds to wait for in-flight responses at the end
_STOP_GRACE = 1.0  # the same when stopped early (Ctrl-C)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (picklable)."""

    plan: Plan
    index: int
    segment: Segment
    block: int
    workers: int
    seed: int
    shared: Any = None
    """What the plan's ``setup()`` returned, for scenarios."""
    trace_prefix: str = ""
    """The first 16 hex digits of this worker's trace ids (a traced plan's)."""


@dataclass(frozen=True)
class WorkerInterval:
    """One worker's measurements for one interval."""

    worker: int
    index: int
    start_s: float
    duration_s: float
    endpoints: dict[str, EndpointInterval]
    generator: GeneratorInterval
    groups: dict[str, EndpointInterval] = field(default_factory=dict)
    scenarios: dict[str, EndpointInterval] = field(default_factory=dict)
    checks: dict[str, tuple[int, int]] = field(default_factory=dict)
    exceptions: dict[str, dict[str, int]] = field(default_factory=dict)
    tracebacks: list[str] = field(default_factory=list)
    exemplars: list[tuple[str, str, float, int | None, str]] = field(default_factory=list)
    """Traced requests kept: trace id, endpoint, latency ms, status, why (a traced plan)."""
    metrics: dict[str, MetricInterval] = field(default_factory=dict)
    """Python scenarios' custom metrics (Counter, Gauge, Rate, Trend) of the interval."""


class Driver(Protocol):
    """What drives the load inside a worker: one per load model and kind of work.

    The shell calls :meth:`prepare` before the start time, :meth:`begin` at it,
    :meth:`sweep` every 0.1 s, :meth:`stop` at the end, then waits for nothing to be
    :attr:`pending` (a grace period at most) before :meth:`cancel_unfinished` and
    :meth:`abandon_unfinished`.
    """

    pool: ConnectionPool
    open_model: bool
    stopping: bool

    @property
    def in_flight(self) -> int:
        """Requests or iterations under way."""

    def target_rps(self, at_s: float) -> float | None:
        """The intended rate of this worker at ``at_s`` (None for a closed model)."""

    def prepare(self) -> None:
        """Get ready before the load starts (open a few connections, say)."""

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load starts now."""

    def sweep(self) -> None:
        """Housekeeping every 0.1 s: read timeouts, users to add or retire."""

    def stop(self) -> None:
        """Start nothing new."""

    @property
    def pending(self) -> bool:
        """Whether work is under way."""

    async def cancel_unfinished(self) -> None:
        """Cancel work still running after the grace period."""

    def abandon_unfinished(self) -> None:
        """Record what was still queued or in flight after the grace period."""

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and tracebacks of the interval."""

    def take_exemplars(self) -> list[tuple[str, int, float, int | None, str]]:
        """The traced requests kept in the interval (none unless the plan traces)."""


def pool_options(plan: Plan) -> dict[str, Any]:
    """:class:`ConnectionPool` arguments (but the listener) for ``plan``'s target."""
    scheme, host, port = plan.origin
    tls = None
    if scheme in ("https", "wss"):
        tls = ssl.create_default_context()
        if not plan.verify_tls:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    return {
        "host": host,
        "port": port,
        "tls": tls,
        "max_connections": plan.max_connections,
        "protocol": plan.protocol,
        "decode": bool(plan.compression and plan.compression.accept),
        "max_streams": plan.max_streams,
        "connect_timeout": plan.connect_timeout,
        "read_timeout": plan.read_timeout,
        "max_response_size": plan.max_response_size,
        "policy": plan.addresses,
    }


def make_driver(
    spec: WorkerSpec,
    *,
    mix: RequestMix,
    recorder: Recorder,
    clock: IntervalClock,
    ctx: RenderContext,
    finished: asyncio.Event,
    drained: asyncio.Event,
) -> Driver:
    """The driver for ``spec``'s plan: arrivals or users, requests or scenarios.

    A plan with ``scenarios:`` gets one of those per scenario, run side by side.
    """
    plan = spec.plan
    if plan.workloads:
        return _workload_drivers(
            spec, recorder=recorder, clock=clock, ctx=ctx, finished=finished, drained=drained
        )
    return _driver(
        spec, mix=mix, recorder=recorder, clock=clock, ctx=ctx, finished=finished,
        drained=drained, tracer=_tracer(spec, mix) if plan.trace.enabled else None,
    )  # fmt: skip


def _workload_drivers(
    spec: WorkerSpec,
    *,
    recorder: Recorder,
    clock: IntervalClock,
    ctx: RenderContext,
    finished: asyncio.Event,
    drained: asyncio.Event,
) -> WorkloadDrivers:
    """A driver per scenario of the plan, their endpoints numbered one after another."""
    plan = spec.plan
    mixes = []
    for workload in plan.workloads:
        mix = RequestMix(workload.plan, ctx, base=len(recorder.keys))
        for name in mix.names:
            recorder.index(name)
        mixes.append(mix)
    # one tracer: trace ids are numbered per worker, and must not repeat
    tracer = (
        Tracer(plan.trace, prefix=spec.trace_prefix, endpoints=len(recorder.keys))
        if plan.trace.enabled
        else None
    )
    parts = []
    for index, (workload, mix) in enumerate(zip(plan.workloads, mixes, strict=True)):
        own = WorkloadPart(workload, None, asyncio.Event(), asyncio.Event())
        part_spec = dataclasses.replace(spec, plan=workload.plan, seed=spec.seed + 7919 * index)
        own.driver = _driver(
            part_spec, mix=mix, recorder=recorder, clock=clock, ctx=ctx,
            finished=own.finished, drained=own.drained, tracer=tracer,
            counted=_counted(workload, spec.segment),
        )  # fmt: skip
        parts.append(own)
    return WorkloadDrivers(parts, clock=clock, finished=finished, drained=drained, tracer=tracer)


def _counted(workload: Workload, segment: Segment) -> dict[str, int | None]:
    """A worker's iterations of an iteration executor (``ScenarioUsers`` arguments).

    Shared iterations are split in proportion to the virtual users each worker has, so
    a worker without users gets none, and the shares add up to exactly the total.
    """
    if workload.iterations is None:
        return {}
    if workload.executor == "per-vu-iterations":
        return {"iterations": workload.iterations}
    vus, total = workload.vus, workload.iterations
    before = math.floor(vus * segment.start)
    upto = math.floor(vus * segment.end)
    return {"shared_iterations": total * upto // vus - total * before // vus}


def _driver(
    spec: WorkerSpec,
    *,
    mix: RequestMix,
    recorder: Recorder,
    clock: IntervalClock,
    ctx: RenderContext,
    finished: asyncio.Event,
    drained: asyncio.Event,
    tracer: Tracer | None,
    counted: dict[str, int | None] | None = None,
) -> Driver:
    """The driver of one load: arrivals or users, requests or scenarios."""
    plan = spec.plan
    load = plan.load
    rng = random.Random(spec.seed)
    if plan.websocket is not None:
        from ._websocket import WsUsers  # only WebSocket plans need websockets loaded

        assert isinstance(load, ClosedLoad)  # the plan's check
        return WsUsers(
            plan=plan, load=load, scale=spec.segment.scale, rng=rng, finished=finished,
            recorder=recorder, clock=clock, ctx=ctx, drained=drained,
            tls=pool_options(plan)["tls"],
        )  # fmt: skip
    if isinstance(load, OpenLoad):
        pump = {
            "plan": plan,
            "segment": spec.segment,
            "block": spec.block,
            "seed": plan.seed if plan.seed is not None else spec.seed,
            "finished": finished,
        }
        if plan.scenarios:
            return ScenarioIterations(
                pump=pump, plan=plan, recorder=recorder, clock=clock, ctx=ctx,
                pool_options=pool_options(plan), shared=spec.shared, position=spec.index,
                drained=drained, tracer=tracer,
            )  # fmt: skip
        parts: dict[str, Any] = {
            "pump": pump, "mix": mix, "recorder": recorder, "clock": clock,
            "pool_options": pool_options(plan), "late_ns": int(plan.late_threshold * 1e9),
            "drained": drained,
        }  # fmt: skip
        if tracer is not None:
            return TracedHttpRequests(tracer=tracer, **parts)
        return HttpRequests(**parts)
    assert isinstance(load, ClosedLoad)
    if plan.scenarios:
        return ScenarioUsers(
            load=load, scale=spec.segment.scale, rng=rng, finished=finished, plan=plan,
            recorder=recorder, clock=clock, ctx=ctx, pool_options=pool_options(plan),
            shared=spec.shared, position=spec.index, drained=drained, tracer=tracer,
            **(counted or {}),
        )  # fmt: skip
    users: dict[str, Any] = {
        "load": load, "scale": spec.segment.scale, "rng": rng, "finished": finished, "mix": mix,
        "recorder": recorder, "clock": clock, "pool_options": pool_options(plan),
        "late_ns": int(plan.late_threshold * 1e9), "drained": drained,
    }  # fmt: skip
    if tracer is not None:
        return TracedHttpUsers(tracer=tracer, **users)
    return HttpUsers(**users)


def _tracer(spec: WorkerSpec, mix: RequestMix) -> Tracer:
    return Tracer(spec.plan.trace, prefix=spec.trace_prefix, endpoints=len(mix.names))


def watch_pipe(
    loop: asyncio.AbstractEventLoop, pipe: Connection, callback: Callable[[], None]
) -> None:
    """Call ``callback`` whenever ``pipe`` is readable, keeping the pipe in blocking mode.

    uvloop (libuv) switches a watched descriptor to non-blocking. An interval message
    larger than the socket buffer would then fail half-written whenever the coordinator
    reads slowly, and the coordinator would find a corrupt stream. Sends must block.
    """
    loop.add_reader(pipe.fileno(), callback)
    os.set_blocking(pipe.fileno(), True)


def worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    """Process entry point: run the worker, reporting over ``pipe``."""
    # The coordinator owns Ctrl-C and SIGTERM; it tells workers to stop over the pipe,
    # so that each one can flush what it measured.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _raise_open_files()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        runner = asyncio.run
    try:
        runner(Worker(spec, pipe).run())
    except Exception:  # report any crash to the coordinator instead of dying silently
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
        raise


def _raise_open_files() -> None:
    """Lift the soft limit of open files to the hard one: each connection is a file."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Worker:
    """The shell of one worker process: the pipe, the loop, the clock, the reports."""

    def __init__(self, spec: WorkerSpec, pipe: Connection) -> None:
        """Build the worker's parts for ``spec`` (nothing runs before :meth:`run`)."""
        plan = spec.plan
        self.plan = plan
        self.spec = spec
        self.pipe = pipe
        self.clock = IntervalClock(plan.warmup + plan.duration)
        self.ctx = RenderContext(seed=spec.seed, stride=spec.workers, offset=spec.index)
        self.mix = RequestMix(plan, self.ctx)
        self.recorder = Recorder(self.mix.names)
        self.recorder.split_status = plan.splits_status
        # Events bind to the running loop on first use, so they can be made here.
        self.drained = asyncio.Event()
        self.finished = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.driver = make_driver(
            spec,
            mix=self.mix,
            recorder=self.recorder,
            clock=self.clock,
            ctx=self.ctx,
            finished=self.finished,
            drained=self.drained,
        )
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Wait for the start, drive the load, report each interval, end cleanly."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        loop.set_exception_handler(self._on_loop_error)
        # The hot path allocates short-lived tuples only, but a full collection would walk
        # every object numpy and friends brought in, pausing sends for milliseconds: move
        # everything that exists now out of the collector's sight.
        self._warm_up()
        gc.collect()
        gc.freeze()
        self.pipe.send(("ready", self.spec.index))
        # Block (briefly, before any load) for the start time chosen by the coordinator.
        message = await loop.run_in_executor(None, self.pipe.recv)
        if message[0] != "start":
            return
        t0 = message[1]
        watch_pipe(loop, self.pipe, self._on_pipe)
        driver = self.driver
        driver.prepare()
        await self._sleep_until(t0)
        self.clock.start(t0)
        self._schedule_tick()
        loop.call_soon(self._sweep)
        driver.begin(loop)
        finished = loop.create_task(self.finished.wait())
        stopped = loop.create_task(self.stop_requested.wait())
        # The open model ends when its last arrival has been sent (timers are too coarse
        # to end it on time without losing the last one); a generous deadline backs it up.
        await asyncio.wait(
            {finished, stopped},
            timeout=self.clock.left_s() + getattr(driver, "grace_s", 0.0) + 1.0,
            return_when=asyncio.FIRST_COMPLETED,
        )
        finished.cancel()
        stopped.cancel()
        early = self.stop_requested.is_set()
        driver.stop()
        grace = _STOP_GRACE if early else getattr(driver, "grace_s", _DRAIN_GRACE)
        deadline = time.monotonic() + grace
        if driver.pending:
            self.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), grace)
        if not early:  # jobs the iterations set off, within the same grace
            await settle_lingering(deadline)
        await driver.cancel_unfinished()
        driver.abandon_unfinished()
        self._report(final=True)
        loop.remove_reader(self.pipe.fileno())
        self.closed = True
        await driver.pool.aclose()
        self.pipe.send(("done", self.spec.index))

    def _warm_up(self) -> None:
        """Run the recorder's numpy paths once before the load: their first call is slow."""
        warm = Recorder(self.mix.names)
        for i in range(64):
            warm.record(0, 1000 + i, 1000, 200, 10, i)
        warm.record_error(0, "warm", 64)
        warm.take(32)
        warm.take()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A bug in a callback must not leave a half-working generator producing numbers
        # nobody should trust: report it and stop; the coordinator keeps what was measured.
        exc = context.get("exception")
        text = "".join(traceback.format_exception(exc)) if exc else str(context.get("message"))
        with contextlib.suppress(OSError):
            self.pipe.send(("error", text))
        self.stop_requested.set()

    async def _sleep_until(self, t_ns: int) -> None:
        delay = (t_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)

    def _on_pipe(self) -> None:
        try:
            while self.pipe.poll():
                message = self.pipe.recv()
                if message[0] == "stop":
                    self.stop_requested.set()
                elif message[0] == "control":
                    control = getattr(self.driver, "control", None)
                    if control is not None:
                        control(message[1], message[2])
        except (EOFError, OSError):
            # The coordinator is gone: stop rather than load a target nobody watches.
            assert self.loop is not None
            self.loop.remove_reader(self.pipe.fileno())
            self.stop_requested.set()

    # -- reporting -------------------------------------------------------------------------
    def _interval_tick(self) -> None:
        if self.driver.stopping:
            return
        assert self.loop is not None
        now = time.monotonic_ns()
        boundary = self.clock.boundary
        if now < boundary:
            # The loop's clock is cached at millisecond resolution, so a timer can fire a
            # little early; an interval is closed only once its boundary has passed.
            self.loop.call_later((boundary - now) / 1e9, self._interval_tick)
            return
        self._report(final=False)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Close the current interval at its boundary, unless it is the run's last."""
        if self.clock.more:
            assert self.loop is not None
            delay = max(0.0, (self.clock.boundary - time.monotonic_ns()) / 1e9)
            self.loop.call_later(delay, self._interval_tick)
        # The last, possibly partial, interval is reported when the run ends.

    def _report(self, *, final: bool) -> None:
        driver = self.driver
        clock = self.clock
        measured = self.recorder.take(None if final else clock.boundary)
        start_s, duration_s, generator = clock.close(
            final=final,
            target_rps=driver.target_rps(clock.index + 0.5),
            connections=driver.pool.size,
            in_flight=driver.in_flight,
            lag=self.recorder.lag,
        )
        steps: dict[str, dict[str, EndpointInterval]] = {"group": {}, "scenario": {}}
        endpoints: dict[str, EndpointInterval] = {}
        for key, data in measured.items():
            if isinstance(key, tuple):
                steps[key[0]][key[1]] = data
            else:
                endpoints[str(key)] = data
        checks, exceptions, tracebacks = driver.take_counters()
        keys = self.recorder.keys
        exemplars = [
            (trace, str(keys[endpoint]), ms, status, why)
            for trace, endpoint, ms, status, why in driver.take_exemplars()
        ]
        self.pipe.send(
            (
                "interval",
                WorkerInterval(
                    worker=self.spec.index,
                    index=int(start_s),
                    start_s=start_s,
                    duration_s=duration_s,
                    endpoints=endpoints,
                    generator=generator,
                    groups=steps["group"],
                    scenarios=steps["scenario"],
                    checks=checks,
                    exceptions=exceptions,
                    tracebacks=tracebacks,
                    exemplars=exemplars,
                    metrics=take_metrics() if self.plan.metrics else {},
                ),
            )
        )

    def _sweep(self) -> None:
        # Read timeouts still apply while draining at the end; only a closed pool stops it.
        if self.closed:
            return
        self.driver.sweep()
        self.recorder.fold(self.clock.boundary)
        assert self.loop is not None
        self.loop.call_later(0.1, self._sweep)
