"""The open model's timing: arrivals issued on schedule, whatever the target does.

An :class:`ArrivalPump` belongs to an open-model driver (HTTP requests or scenario
iterations): it waits out the time to each arrival precisely and hands every arrival that
is due to its owner's ``start(intended_ns, now_ns)``, or counts it dropped when the owner
already holds ``max_in_flight``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Protocol

from redline.http import ConnectionPool
from redline.plan import OpenLoad, Plan

from ._clock import IntervalClock
from ._recorder import Recorder
from ._schedule import ArrivalSchedule
from ._segments import Segment
from ._timer import PreciseTimer, precise_timer

__all__ = ["ArrivalPump", "Starter", "abandon_busy"]

_SPIN_NS = 1_500_000  # closer than this to the next arrival, poll instead of sleeping
_TICK_NS = 500_000  # with a timerfd, arrivals closer than this are sent on a periodic tick
_SLEEP_SLACK_NS = 80_000  # time.sleep may overshoot by the kernel's timer slack (50 us)


class Starter(Protocol):
    """What an open-model driver offers its pump."""

    in_flight: int
    queue: deque[tuple[int, int, bytes, bool]]
    pool: ConnectionPool
    stopping: bool

    def start(self, intended: int, now: int) -> None:
        """Begin the work of one arrival meant to start at ``intended``."""


class ArrivalPump:
    """Issues a worker's share of the plan's arrivals on time."""

    def __init__(
        self,
        owner: Starter,
        *,
        plan: Plan,
        clock: IntervalClock,
        segment: Segment,
        block: int,
        seed: int,
        finished: asyncio.Event,
    ) -> None:
        """Pump arrivals to ``owner``; set ``finished`` when the schedule is exhausted."""
        assert isinstance(plan.load, OpenLoad)
        self.owner = owner
        self.load = plan.load
        self.limit = plan.max_in_flight
        self.late_ns = int(plan.late_threshold * 1e9)
        self.clock = clock
        self.share = float(segment.share)
        self.finished = finished
        self.schedule = ArrivalSchedule(
            plan.load, total=clock.total, segment=segment, block=block, seed=seed
        )
        self.arrivals: list[int] = []
        self.position = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: PreciseTimer | None = None
        self.paused = False
        self.factor = 1.0
        """The live control's multiplier of the plan's rate (1: the plan as written)."""
        self._owed = 0.0  # the factor's fractional requests carried to the next arrival

    def target_rps(self, at_s: float) -> float:
        """The worker's share of the intended rate at ``at_s`` seconds into the load."""
        if self.paused:
            return 0.0
        return self.load.rate_at(at_s) * self.share * self.factor

    def control(self, action: str, value: float | None) -> None:
        """Live control: ``pause``, ``resume``, or ``factor`` (scale the plan's rate).

        Paused, arrivals that fall due are skipped: nothing is sent or scheduled. A factor
        keeps the plan's arrival times and starts ``factor`` requests at each on average
        (0, 1 or more: a fraction is carried to the next), so the rate changes at once.
        """
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
        elif action == "factor" and value is not None and value >= 0:
            self.factor = value

    def prepare(self) -> None:
        """Before the first arrival: open a few connections.

        So the start is not a burst of connection attempts that delays the first requests.
        """
        pool = self.owner.pool
        first_ms = math.ceil(self.load.peak_rate * self.share / 1000) + 1
        for _ in range(min(pool.max_connecting, first_ms)):
            pool.grow()

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load has started: take the first batch and start ticking."""
        self.loop = loop
        self.timer = precise_timer(loop, self.tick)
        self._refill()
        loop.call_soon(self.tick)

    def _refill(self) -> None:
        t0 = self.clock.t0
        self.arrivals = [t0 + offset for offset in self.schedule.next_batch()]
        self.position = 0

    def tick(self) -> None:
        """Issue what is due, then wait for the next arrival (precisely).

        With a timerfd (Linux) the wait is the loop's own; elsewhere the last stretch
        before an arrival is polled.
        """
        owner = self.owner
        timer = self.timer
        if owner.stopping:
            if timer is not None:
                timer.close()
            return
        self.pump()
        assert self.loop is not None
        if self.position >= len(self.arrivals):
            self.finished.set()  # schedule exhausted
            if timer is not None:
                timer.close()
            return
        if timer is not None:
            # The loop sleeps in epoll until the next arrival (or a response, whose
            # callback pumps what is due by then): no core spent polling. Arrivals
            # closer together than the tick share a periodic wake: at most one tick of
            # lateness, measured, for a timer set once instead of once per arrival.
            after = self.arrivals[self.position]
            if after - time.monotonic_ns() < _TICK_NS:
                timer.every(_TICK_NS)
            else:
                timer.arm(after)
            return
        delay = self.arrivals[self.position] - time.monotonic_ns()
        if delay > _SPIN_NS:
            self.loop.call_later((delay - 1_000_000) / 1e9, self.tick)
            return
        # Event-loop timers have millisecond resolution, and latency is measured from the
        # intended start, so the last stretch is waited out precisely: asleep when nothing
        # is in flight (no response can be timestamped late), polling the loop otherwise.
        if delay > _SLEEP_SLACK_NS and not owner.in_flight and not owner.pool.connecting:
            time.sleep((delay - _SLEEP_SLACK_NS) / 1e9)
        self.loop.call_soon(self.tick)

    def pump(self) -> None:
        """Issue every arrival that is due."""
        arrivals = self.arrivals
        pos = self.position
        owner = self.owner
        if pos >= len(arrivals) or owner.stopping:
            return
        now = time.monotonic_ns()
        if arrivals[pos] > now:
            return
        if self.paused or self.factor != 1.0:
            self._pump_controlled(now)
            return
        queue = owner.queue
        limit = self.limit
        start = owner.start
        clock = self.clock
        boundary = clock.boundary
        scheduled, late, dropped = clock.scheduled, clock.late, clock.dropped
        late_ns = self.late_ns
        while arrivals[pos] <= now:
            intended = arrivals[pos]
            pos += 1
            after = intended >= boundary
            scheduled[after] += 1
            lag = now - intended
            if lag > clock.max_lag_ns:
                clock.max_lag_ns = lag
            if lag > late_ns:
                late[after] += 1
            if owner.in_flight + len(queue) >= limit:
                dropped[after] += 1
            else:
                start(intended, now)
            if pos >= len(arrivals):
                self._refill()
                arrivals, pos = self.arrivals, 0
                if not arrivals:
                    break
        self.position = pos

    def _pump_controlled(self, now: int) -> None:
        """:meth:`pump` under live control: paused (skip), or the rate scaled."""
        owner, clock = self.owner, self.clock
        arrivals, pos = self.arrivals, self.position
        while pos < len(arrivals) and arrivals[pos] <= now:
            intended = arrivals[pos]
            pos += 1
            if not self.paused:
                self._owed += self.factor
                count = int(self._owed)
                self._owed -= count
                after = intended >= clock.boundary
                for _ in range(count):
                    clock.scheduled[after] += 1
                    lag = now - intended
                    clock.max_lag_ns = max(clock.max_lag_ns, lag)
                    if lag > self.late_ns:
                        clock.late[after] += 1
                    if owner.in_flight + len(owner.queue) >= self.limit:
                        clock.dropped[after] += 1
                    else:
                        owner.start(intended, now)
            if pos >= len(arrivals):
                self._refill()
                arrivals, pos = self.arrivals, 0
        self.position = pos


def abandon_busy(pool: ConnectionPool, recorder: Recorder) -> int:
    """Record every request still in flight on ``pool`` as unfinished; how many."""
    abandoned = 0
    for conn in list(pool.connections):
        if conn.busy:
            conn.busy = False
            abandoned += 1
            recorder.record_error(conn.tag, "unfinished", time.monotonic_ns())
    return abandoned
