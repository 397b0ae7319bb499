"""One load-generating worker: an event loop, a connection pool, a schedule, a recorder.

A worker runs in its own process (see ``_coordinator``). It reports one
:class:`WorkerInterval` per second over a pipe and stops by itself at the end of the
load, or earlier when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import signal
import ssl
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from redline.core import EndpointInterval, GeneratorInterval
from redline.http import ClientConnection, ConnectionPool
from redline.plan import ClosedLoad, OpenLoad, Plan, RenderContext

from ._recorder import Recorder
from ._requests import RequestMix
from ._schedule import ArrivalSchedule
from ._segments import Segment

__all__ = ["WorkerInterval", "WorkerSpec", "watch_pipe", "worker_main"]

_SPIN_NS = 1_500_000  # closer than this to the next arrival, poll instead of sleeping
_SLEEP_SLACK_NS = 80_000  # time.sleep may overshoot by the kernel's timer slack (50 us)
_DRAIN_GRACE = 5.0  # seconds to wait for in-flight responses at the end
_STOP_GRACE = 1.0  # the same when stopped early (Ctrl-C)
_CONNECT_RETRY = 0.01


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


def pool_options(plan: Plan) -> dict[str, Any]:
    """:class:`ConnectionPool` arguments (but the listener) for ``plan``'s target."""
    scheme, host, port = plan.origin
    tls = None
    if scheme == "https":
        tls = ssl.create_default_context()
        if not plan.verify_tls:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    return {
        "host": host,
        "port": port,
        "tls": tls,
        "max_connections": plan.max_connections,
        "connect_timeout": plan.connect_timeout,
        "read_timeout": plan.read_timeout,
        "max_response_size": plan.max_response_size,
    }


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
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        runner = asyncio.run
    try:
        if spec.plan.scenarios:
            from ._scenario_worker import ScenarioWorker  # it builds on _Worker

            runner(ScenarioWorker(spec, pipe).run())
        else:
            runner(_Worker(spec, pipe).run())
    except Exception:  # report any crash to the coordinator instead of dying silently
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
        raise


class _Worker:
    """The engine inside one worker process (implements PoolListener)."""

    def __init__(self, spec: WorkerSpec, pipe: Connection) -> None:
        plan = spec.plan
        self.plan = plan
        self.spec = spec
        self.pipe = pipe
        self.total = plan.warmup + plan.duration
        self.is_open = isinstance(plan.load, OpenLoad)
        ctx = RenderContext(seed=spec.seed, stride=spec.workers, offset=spec.index)
        self.mix = RequestMix(plan, ctx)
        self.recorder = Recorder(self.mix.names)
        self.record = self.recorder.record
        self.bytes_out = self.recorder.bytes_out
        load = plan.load
        self.think_min = load.think_min if isinstance(load, ClosedLoad) else 0.0
        self.think_max = load.think_max if isinstance(load, ClosedLoad) else 0.0
        self.fixed_request = self.mix.fixed
        # True while a finished virtual user may go straight on (see _adjust_vus).
        self.fast_loop = not self.is_open and self.think_max == 0
        if not self.is_open:
            self.response_complete = self._closed_response_complete  # type: ignore[method-assign]
        self.random = random.Random(spec.seed)
        self.late_ns = int(plan.late_threshold * 1e9)
        self.stopping = False
        self.closed = False
        self.data_exhausted = False
        self.queue: deque[tuple[int, int, bytes, bool]] = deque()
        self.in_flight = 0
        # Per-interval generator counters, as [before, after] the interval's boundary: the
        # timer that closes an interval can fire a little late, and nothing may be counted
        # in the wrong interval because of it.
        self.scheduled = [0, 0]
        self.sent = [0, 0]
        self.late = [0, 0]
        self.dropped = [0, 0]
        self.boundary = 0
        self.max_lag_ns = 0
        self.t0 = 0
        self.interval_index = 0
        self.cpu_mark = 0.0
        self.wall_mark = 0
        self.arrivals: list[int] = []
        self.arrival_pos = 0
        self.schedule: ArrivalSchedule | None = None
        self.vus_target = 0
        # Events bind to the running loop on first use, so they can be made here.
        self.drained = asyncio.Event()
        self.finished = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ctx = ctx
        self.pool = self._make_pool()

    def _make_pool(self) -> ConnectionPool:
        """The pool this worker sends through, with the worker as its listener."""
        return ConnectionPool(self, **pool_options(self.plan))

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
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
        self.t0 = message[1]
        share = float(self.spec.segment.share)
        watch_pipe(loop, self.pipe, self._on_pipe)
        if self.is_open:
            assert isinstance(self.plan.load, OpenLoad)
            self.schedule = ArrivalSchedule(
                self.plan.load,
                total=self.total,
                segment=self.spec.segment,
                block=self.spec.block,
                seed=self.plan.seed if self.plan.seed is not None else self.spec.seed,
            )
            # Open a few connections before the first arrival, so the start is not a
            # burst of connection attempts that delays the first requests.
            peak = self.plan.load.peak_rate
            for _ in range(min(self.pool.max_connecting, math.ceil(peak * share / 1000) + 1)):
                self.pool.grow()
        await self._sleep_until(self.t0)
        self.boundary = self.t0 + 1_000_000_000
        self.cpu_mark, self.wall_mark = time.process_time(), time.monotonic_ns()
        self._schedule_tick()
        loop.call_soon(self._sweep)
        if self.is_open:
            self._refill()
            loop.call_soon(self._tick)
        else:
            self._adjust_vus()
            loop.call_later(self.total - (time.monotonic_ns() - self.t0) / 1e9, self.finished.set)
        finished = loop.create_task(self.finished.wait())
        stopped = loop.create_task(self.stop_requested.wait())
        # The open model ends when its last arrival has been sent (timers are too coarse
        # to end it on time without losing the last one); a generous deadline backs it up.
        deadline = self.total - (time.monotonic_ns() - self.t0) / 1e9 + 1.0
        await asyncio.wait(
            {finished, stopped}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED
        )
        finished.cancel()
        stopped.cancel()
        early = self.stop_requested.is_set()
        self.stopping = True
        if self.in_flight or self.queue:
            self.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), _STOP_GRACE if early else _DRAIN_GRACE)
        await self._cancel_unfinished()
        self._abandon_unfinished()
        self._report(final=True)
        loop.remove_reader(self.pipe.fileno())
        self.closed = True
        await self.pool.aclose()
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
                if self.pipe.recv()[0] == "stop":
                    self.stop_requested.set()
        except (EOFError, OSError):
            # The coordinator is gone: stop rather than load a target nobody watches.
            assert self.loop is not None
            self.loop.remove_reader(self.pipe.fileno())
            self.stop_requested.set()

    async def _cancel_unfinished(self) -> None:
        """Stop work still running after the grace period (scenario workers have some)."""

    def _abandon_unfinished(self) -> None:
        """Count requests still queued or in flight after the grace period."""
        for endpoint, _, _, _ in self.queue:
            self.recorder.record_error(endpoint, "unfinished", time.monotonic_ns())
        self.queue.clear()
        for conn in list(self.pool.connections):
            if conn.busy:
                conn.busy = False
                self.in_flight -= 1
                self.recorder.record_error(conn.tag, "unfinished", time.monotonic_ns())

    # -- reporting -------------------------------------------------------------------------
    def _interval_tick(self) -> None:
        if self.stopping:
            return
        assert self.loop is not None
        now = time.monotonic_ns()
        if now < self.boundary:
            # The loop's clock is cached at millisecond resolution, so a timer can fire a
            # little early; an interval is closed only once its boundary has passed.
            self.loop.call_later((self.boundary - now) / 1e9, self._interval_tick)
            return
        self._report(final=False)
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Close the current interval at its boundary, unless it is the run's last."""
        if (self.boundary - self.t0) / 1e9 < self.total:
            assert self.loop is not None
            delay = max(0.0, (self.boundary - time.monotonic_ns()) / 1e9)
            self.loop.call_later(delay, self._interval_tick)
        # The last, possibly partial, interval is reported when the run ends.

    def _report(self, *, final: bool) -> None:
        now = time.monotonic_ns()
        start_s = self.interval_index
        end_s = min(self.total, (now - self.t0) / 1e9) if final else start_s + 1.0
        cpu = time.process_time()
        wall = max(now - self.wall_mark, 1)
        share = float(self.spec.segment.share)
        target = None
        if self.is_open:
            assert isinstance(self.plan.load, OpenLoad)
            target = self.plan.load.rate_at(start_s + 0.5) * share
        sent = sum(self.sent) if final else self.sent[0]
        generator = GeneratorInterval(
            scheduled=(sum(self.scheduled) if final else self.scheduled[0])
            if self.is_open
            else sent,
            sent=sent,
            late=sum(self.late) if final else self.late[0],
            dropped=sum(self.dropped) if final else self.dropped[0],
            max_lag_ms=self.max_lag_ns / 1e6,
            cpu_percent=100.0 * (cpu - self.cpu_mark) / (wall / 1e9),
            connections=self.pool.size,
            in_flight=self.in_flight,
            target_rps=target,
        )
        measured = self.recorder.take(None if final else self.boundary)
        steps: dict[str, dict[str, EndpointInterval]] = {"group": {}, "scenario": {}}
        endpoints: dict[str, EndpointInterval] = {}
        for key, data in measured.items():
            if isinstance(key, tuple):
                steps[key[0]][key[1]] = data
            else:
                endpoints[str(key)] = data
        checks, exceptions, tracebacks = self._take_counters()
        self.pipe.send(
            (
                "interval",
                WorkerInterval(
                    worker=self.spec.index,
                    index=self.interval_index,
                    start_s=float(start_s),
                    duration_s=max(end_s - start_s, 1e-9),
                    endpoints=endpoints,
                    generator=generator,
                    groups=steps["group"],
                    scenarios=steps["scenario"],
                    checks=checks,
                    exceptions=exceptions,
                    tracebacks=tracebacks,
                ),
            )
        )
        for counter in (self.scheduled, self.sent, self.late, self.dropped):
            counter[0], counter[1] = counter[1], 0
        self.boundary += 1_000_000_000
        self.max_lag_ns = 0
        self.cpu_mark, self.wall_mark = cpu, now
        self.interval_index += 1

    def _take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and tracebacks of the interval (scenario workers have them)."""
        return {}, {}, []

    def _sweep(self) -> None:
        # Read timeouts still apply while draining at the end; only a closed pool stops it.
        if self.closed:
            return
        self.pool.sweep_timeouts()
        self.recorder.fold(self.boundary)
        if not self.is_open and not self.stopping:
            self._adjust_vus()
        assert self.loop is not None
        self.loop.call_later(0.1, self._sweep)

    # -- open model ------------------------------------------------------------------------
    def _refill(self) -> None:
        assert self.schedule is not None
        t0 = self.t0
        self.arrivals = [t0 + offset for offset in self.schedule.next_batch()]
        self.arrival_pos = 0

    def _tick(self) -> None:
        if self.stopping:
            return
        self._pump()
        assert self.loop is not None
        if self.arrival_pos >= len(self.arrivals):
            self.finished.set()  # schedule exhausted
            return
        delay = self.arrivals[self.arrival_pos] - time.monotonic_ns()
        if delay > _SPIN_NS:
            self.loop.call_later((delay - 1_000_000) / 1e9, self._tick)
            return
        # Event-loop timers have millisecond resolution, and latency is measured from the
        # intended start, so the last stretch is waited out precisely: asleep when nothing
        # is in flight (no response can be timestamped late), polling the loop otherwise.
        if delay > _SLEEP_SLACK_NS and not self.in_flight and not self.pool.connecting:
            time.sleep((delay - _SLEEP_SLACK_NS) / 1e9)
        self.loop.call_soon(self._tick)

    def _pump(self) -> None:
        """Issue every arrival that is due."""
        arrivals = self.arrivals
        pos = self.arrival_pos
        if pos >= len(arrivals) or self.stopping:
            return
        now = time.monotonic_ns()
        if arrivals[pos] > now:
            return
        queue = self.queue
        limit = self.plan.max_in_flight
        start = self._start
        boundary = self.boundary
        while arrivals[pos] <= now:
            intended = arrivals[pos]
            pos += 1
            after = intended >= boundary
            self.scheduled[after] += 1
            lag = now - intended
            if lag > self.max_lag_ns:
                self.max_lag_ns = lag
            if lag > self.late_ns:
                self.late[after] += 1
            if self.in_flight + len(queue) >= limit:
                self.dropped[after] += 1
            else:
                start(intended, now)
            if pos >= len(arrivals):
                self._refill()
                arrivals, pos = self.arrivals, 0
                if not arrivals:
                    break
        self.arrival_pos = pos

    def _start(self, intended: int, now: int) -> None:
        """Send the request of one arrival, or queue it for a connection."""
        endpoint, data = self.mix.next()
        if data is None:
            self.recorder.record_error(endpoint, "data_exhausted", now)
            return
        queue = self.queue
        if self.pool.idle and not queue:
            self._send(self.pool.idle.pop(), endpoint, intended, data, now)
        else:
            capped = self.pool.size >= self.pool.max_connections
            queue.append((endpoint, intended, data, capped))
            if self.pool.connecting < len(queue):
                self.pool.grow()

    def _send(
        self, conn: ClientConnection, endpoint: int, intended: int, data: bytes, now: int
    ) -> None:
        self.in_flight += 1
        self.sent[now >= self.boundary] += 1
        self.bytes_out[endpoint] += len(data)
        conn.send(data, endpoint, intended, now)

    def _free(self, conn: ClientConnection) -> None:
        """``conn`` is idle: give it the oldest queued request, or park it."""
        if self.stopping and not self.queue:
            return  # draining: requests already due are still served, nothing new
        if not conn.reusable:
            if self.queue and self.pool.connecting < len(self.queue):
                self.pool.grow()
            return
        if self.queue:
            endpoint, intended, data, capped = self.queue.popleft()
            now = time.monotonic_ns()
            if capped and now - intended > self.late_ns:
                # It waited for a connection because max_connections was reached.
                self.late[intended >= self.boundary] += 1
            self._send(conn, endpoint, intended, data, now)
        else:
            self.pool.idle.append(conn)

    # -- closed model ----------------------------------------------------------------------
    def _adjust_vus(self) -> None:
        assert isinstance(self.plan.load, ClosedLoad)
        elapsed = (time.monotonic_ns() - self.t0) / 1e9
        self.vus_target = self.spec.segment.scale(self.plan.load.vus_at(elapsed))
        while not self.data_exhausted and self.pool.size < self.vus_target and self.pool.grow():
            pass
        # Ramping down retires users as they finish, which the fast path does not check.
        self.fast_loop = self.think_max == 0 and self.pool.size <= self.vus_target

    def _vu_continue(self, conn: ClientConnection, now: int) -> None:
        if self.stopping or self.data_exhausted:
            return
        if not conn.reusable:
            self._adjust_vus()
            return
        if self.pool.size > self.vus_target:
            conn.fail("retired")  # not busy, so nothing is recorded
            return
        if self.think_max > 0:
            think = self.random.uniform(self.think_min, self.think_max)
            assert self.loop is not None
            self.loop.call_later(think, self._vu_send, conn)
        else:
            endpoint, data = self.mix.next()
            if data is None:
                self._exhausted(conn, endpoint, now)
                return
            self._send(conn, endpoint, now, data, now)

    def _vu_send(self, conn: ClientConnection) -> None:
        if self.stopping:
            return
        if not conn.reusable:
            self._adjust_vus()
            return
        endpoint, data = self.mix.next()
        now = time.monotonic_ns()
        if data is None:
            self._exhausted(conn, endpoint, now)
            return
        self._send(conn, endpoint, now, data, now)

    def _exhausted(self, conn: ClientConnection, endpoint: int, now: int) -> None:
        """A virtual user's unique data ran out: count it, and the user stops."""
        self.recorder.record_error(endpoint, "data_exhausted", now)
        self.fast_loop = False
        self.data_exhausted = True
        conn.fail("retired")

    def _check_drained(self) -> None:
        if self.stopping and not self.in_flight and not self.queue:
            self.drained.set()

    # -- PoolListener ----------------------------------------------------------------------
    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        # The open model's hot path: one call per response.
        now = time.monotonic_ns()
        self.record(conn.tag, now - conn.intended_ns, now - conn.sent_ns, status, nbytes, now)
        self.in_flight -= 1
        self._free(conn)
        self._pump()
        if self.stopping:
            self._check_drained()

    def _closed_response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        # The closed model's hot path. In the common case (keep-alive, no think time, not
        # ramping down) the same virtual user sends its next request right here.
        now = time.monotonic_ns()
        self.record(conn.tag, now - conn.intended_ns, now - conn.sent_ns, status, nbytes, now)
        if self.fast_loop and conn.reusable and not self.stopping:
            fixed = self.fixed_request
            endpoint, data = fixed if fixed is not None else self.mix.next()
            if data is None:
                self.in_flight -= 1
                self._exhausted(conn, endpoint, now)
                return
            self.sent[now >= self.boundary] += 1
            self.bytes_out[endpoint] += len(data)
            conn.send(data, endpoint, now, now)
            return
        self.in_flight -= 1
        self._vu_continue(conn, now)
        if self.stopping:
            self._check_drained()

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        self.recorder.record_error(conn.tag, error_class, time.monotonic_ns())
        self.in_flight -= 1
        if self.is_open:
            self._free(conn)
        else:
            self._adjust_vus()
        self._check_drained()

    def connection_ready(self, conn: ClientConnection) -> None:
        if self.is_open:
            self._free(conn)
        else:
            self._vu_continue(conn, time.monotonic_ns())

    def connect_failed(self, error_class: str) -> None:
        assert self.loop is not None
        if self.is_open:
            if self.queue:
                endpoint = self.queue.popleft()[0]
                self.recorder.record_error(endpoint, error_class, time.monotonic_ns())
            if self.queue and self.pool.connecting < len(self.queue):
                self.pool.grow()
            self._check_drained()
        elif not self.stopping:
            endpoint, _ = self.mix.next()
            self.recorder.record_error(endpoint, error_class, time.monotonic_ns())
            self.loop.call_later(_CONNECT_RETRY, self._adjust_vus)
