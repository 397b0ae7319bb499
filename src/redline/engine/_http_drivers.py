"""The HTTP drivers: a request per arrival (open model), or virtual users (closed).

Each is the :class:`~redline.http.PoolListener` of its own connection pool. The hot path
is one callback per response: record it, and send the next request from there.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from typing import Any

from redline.http import ClientConnection, connection_pool
from redline.plan import ClosedLoad

from ._arrivals import ArrivalPump, abandon_busy
from ._clock import IntervalClock
from ._recorder import Recorder
from ._requests import RequestMix

__all__ = ["HttpRequests", "HttpUsers"]

_CONNECT_RETRY = 0.01


class _Http:
    """What both HTTP drivers share: the pool, the mix, the recorder, the queue."""

    def __init__(
        self,
        *,
        mix: RequestMix,
        recorder: Recorder,
        clock: IntervalClock,
        pool_options: dict[str, Any],
        late_ns: int,
        drained: asyncio.Event,
    ) -> None:
        self.mix = mix
        self.recorder = recorder
        self.record = recorder.record
        self.bytes_out = recorder.bytes_out
        self.clock = clock
        self.sent = clock.sent
        self.late_ns = late_ns
        self.drained = drained
        self.queue: deque[tuple[int, int, bytes, bool]] = deque()
        self.in_flight = 0
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        # each subclass is the listener of its own pool
        self.pool = connection_pool(self, **pool_options)  # type: ignore[arg-type]

    def _send(
        self, conn: ClientConnection, endpoint: int, intended: int, data: bytes, now: int
    ) -> None:
        self.in_flight += 1
        self.sent[now >= self.clock.boundary] += 1
        self.bytes_out[endpoint] += len(data)
        conn.send(data, endpoint, intended, now)

    def _check_drained(self) -> None:
        if self.stopping and not self.in_flight and not self.queue:
            self.drained.set()

    # -- the driver's side for the worker -------------------------------------------------
    def stop(self) -> None:
        """Send nothing new; requests already due are still served."""
        self.stopping = True

    @property
    def pending(self) -> bool:
        """Whether requests are queued or in flight."""
        return bool(self.in_flight or self.queue)

    def sweep(self) -> None:
        """Every 0.1 s: fail requests past their read timeout."""
        self.pool.sweep_timeouts()

    async def cancel_unfinished(self) -> None:
        """Nothing runs on its own here (scenario drivers have tasks)."""

    def abandon_unfinished(self) -> None:
        """Count requests still queued or in flight after the grace period."""
        for endpoint, _, _, _ in self.queue:
            self.recorder.record_error(endpoint, "unfinished", time.monotonic_ns())
        self.queue.clear()
        self.in_flight -= abandon_busy(self.pool, self.recorder)

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and tracebacks: none for plain requests."""
        return {}, {}, []

    def take_exemplars(self) -> list[tuple[str, int, float, int | None, str]]:
        """No traced requests: the traced drivers keep them."""
        return []


class HttpRequests(_Http):
    """Open model: each arrival sends the next request of the mix."""

    def __init__(self, *, pump: dict[str, Any], **parts: Any) -> None:
        """Send through a fresh pool; ``pump`` are :class:`ArrivalPump` arguments."""
        super().__init__(**parts)
        self.arrivals = ArrivalPump(self, clock=self.clock, **pump)
        self._pump = self.arrivals.pump
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

    def start(self, intended: int, now: int) -> None:
        """Send the request of one arrival, or queue it for a connection."""
        endpoint, data = self.mix.next()
        if data is None:
            self.recorder.record_error(endpoint, "data_exhausted", now)
            return
        queue = self.queue
        pool = self.pool
        if pool.idle and not queue:
            self._send(pool.idle.pop(), endpoint, intended, data, now)
        else:
            capped = pool.size >= pool.max_connections
            queue.append((endpoint, intended, data, capped))
            if pool.connecting < len(queue):
                pool.grow()

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
                self.clock.late[intended >= self.clock.boundary] += 1
            self._send(conn, endpoint, intended, data, now)
        else:
            self.pool.idle.append(conn)

    # -- PoolListener ----------------------------------------------------------------------
    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        """The open model's hot path: one call per response."""
        now = time.monotonic_ns()
        self.record(conn.tag, now - conn.intended_ns, now - conn.sent_ns, status, nbytes, now, conn)
        self.in_flight -= 1
        self._free(conn)
        self._pump()
        if self.stopping:
            self._check_drained()

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        """Count the failure; the connection is gone, the next queued request waits on."""
        self.recorder.record_error(conn.tag, error_class, time.monotonic_ns())
        self.in_flight -= 1
        self._free(conn)
        self._check_drained()

    def connection_ready(self, conn: ClientConnection) -> None:
        """A new connection takes the oldest queued request."""
        self._free(conn)

    def connect_failed(self, error_class: str) -> None:
        """The oldest queued request fails with the connection it waited for."""
        if self.queue:
            endpoint = self.queue.popleft()[0]
            self.recorder.record_error(endpoint, error_class, time.monotonic_ns())
        if self.queue and self.pool.connecting < len(self.queue):
            self.pool.grow()
        self._check_drained()


class HttpUsers(_Http):
    """Closed model: virtual users, each a connection that sends, waits, thinks, repeats."""

    def __init__(
        self,
        *,
        load: ClosedLoad,
        scale: Any,
        rng: random.Random,
        finished: asyncio.Event,
        **parts: Any,
    ) -> None:
        """Users of ``load`` (this worker's share, by ``scale``)."""
        super().__init__(**parts)
        self.load = load
        self.scale = scale
        self.random = rng
        self.finished = finished
        self.think_min = load.think_min
        self.think_max = load.think_max
        self.fixed_request = self.mix.fixed
        self.vus_target = 0
        self.vus_override: int | None = None
        """The live control's number of virtual users (the whole test's), if set."""
        self.paused = False
        self.parked: list[ClientConnection] = []
        self.data_exhausted = False
        # True while a finished virtual user may go straight on (see _adjust).
        self.fast_loop = self.think_max == 0
        self.open_model = False
        self.sent = self.clock.started  # a closed model is its own schedule

    def target_rps(self, at_s: float) -> float | None:
        """A closed model has no intended rate."""
        return None

    def prepare(self) -> None:
        """Users connect when the load starts."""

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load starts: the users do, and the load ends on time."""
        self.loop = loop
        self._adjust()
        loop.call_later(self.clock.left_s(), self.finished.set)

    def sweep(self) -> None:
        """Every 0.1 s: read timeouts, and as many users as the load asks for now."""
        self.pool.sweep_timeouts()
        if not self.stopping:
            self._adjust()

    def control(self, action: str, value: float | None) -> None:
        """Live control: ``pause``, ``resume`` or ``vus`` (the whole test's users).

        Paused, each user finishes its request and waits; with ``vus`` this worker takes
        its share of the new number from now on.
        """
        if action == "pause":
            self.paused = True
            self.fast_loop = False
        elif action == "resume":
            self.paused = False
            parked, self.parked = self.parked, []
            for conn in parked:
                self._continue(conn, time.monotonic_ns())
            if self.loop is not None:  # before the load starts, begin() adjusts
                self._adjust()
        elif action == "vus" and value is not None and value >= 0:
            self.vus_override = int(value)
            if self.loop is not None:
                self._adjust()

    def _adjust(self) -> None:
        elapsed = (time.monotonic_ns() - self.clock.t0) / 1e9
        wanted = self.vus_override if self.vus_override is not None else self.load.vus_at(elapsed)
        self.vus_target = self.scale(wanted)
        while not self.data_exhausted and self.pool.size < self.vus_target and self.pool.grow():
            pass
        # Ramping down retires users as they finish, which the fast path does not check.
        self.fast_loop = (
            self.think_max == 0 and self.pool.size <= self.vus_target and not self.paused
        )

    def _continue(self, conn: ClientConnection, now: int) -> None:
        if self.stopping or self.data_exhausted:
            return
        if self.paused and conn.reusable:
            self.parked.append(conn)
            return
        if not conn.reusable:
            self._adjust()
            return
        if self.pool.size > self.vus_target:
            conn.fail("retired")  # not busy, so nothing is recorded
            return
        if self.think_max > 0:
            think = self.random.uniform(self.think_min, self.think_max)
            assert self.loop is not None
            self.loop.call_later(think, self._send_next, conn)
        else:
            endpoint, data = self.mix.next()
            if data is None:
                self._exhausted(conn, endpoint, now)
                return
            self._send(conn, endpoint, now, data, now)

    def _send_next(self, conn: ClientConnection) -> None:
        if self.stopping:
            return
        if self.paused and conn.reusable:
            self.parked.append(conn)
            return
        if not conn.reusable:
            self._adjust()
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

    # -- PoolListener ----------------------------------------------------------------------
    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        """The closed model's hot path.

        In the common case (keep-alive, no think time, not ramping down) the same virtual
        user sends its next request right here.
        """
        now = time.monotonic_ns()
        self.record(conn.tag, now - conn.intended_ns, now - conn.sent_ns, status, nbytes, now, conn)
        if self.fast_loop and conn.reusable and not self.stopping:
            fixed = self.fixed_request
            endpoint, data = fixed if fixed is not None else self.mix.next()
            if data is None:
                self.in_flight -= 1
                self._exhausted(conn, endpoint, now)
                return
            self.sent[now >= self.clock.boundary] += 1
            self.bytes_out[endpoint] += len(data)
            conn.send(data, endpoint, now, now)
            return
        self.in_flight -= 1
        self._continue(conn, now)
        if self.stopping:
            self._check_drained()

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        """Count the failure; the user reconnects."""
        self.recorder.record_error(conn.tag, error_class, time.monotonic_ns())
        self.in_flight -= 1
        self._adjust()
        self._check_drained()

    def connection_ready(self, conn: ClientConnection) -> None:
        """A new user starts."""
        self._continue(conn, time.monotonic_ns())

    def connect_failed(self, error_class: str) -> None:
        """A user could not connect: count it against the next request, retry soon."""
        assert self.loop is not None
        if not self.stopping:
            endpoint, _ = self.mix.next()
            self.recorder.record_error(endpoint, error_class, time.monotonic_ns())
            self.loop.call_later(_CONNECT_RETRY, self._adjust)
