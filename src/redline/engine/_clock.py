"""The worker's clock: one-second intervals, and what the generator did in each.

Counters are kept as ``[before, after]`` the current interval's boundary: the timer that
closes an interval can fire a little late, and nothing may be counted in the wrong
interval because of it. Drivers bump them on the hot path (``clock.sent[now >=
clock.boundary] += 1``); the worker closes each interval with :meth:`close`. An open
model counts what its schedule asked for (``scheduled``) and what it sent (``sent``); a
closed model is its own schedule and counts what it started (``started``): a worker that
runs both (a plan's scenarios) adds them up.
"""

from __future__ import annotations

import time

from redline.core import GeneratorInterval, Histogram

__all__ = ["IntervalClock"]


class IntervalClock:
    """Interval boundaries and the generator's counters of one worker."""

    __slots__ = (
        "boundary",
        "cpu_mark",
        "dropped",
        "index",
        "late",
        "max_lag_ns",
        "scheduled",
        "sent",
        "started",
        "t0",
        "total",
        "wall_mark",
    )

    def __init__(self, total: float) -> None:
        """A clock for a load of ``total`` seconds (warm-up included)."""
        self.total = total
        self.t0 = 0
        self.boundary = 0
        self.index = 0
        self.scheduled = [0, 0]
        self.sent = [0, 0]
        self.started = [0, 0]
        self.late = [0, 0]
        self.dropped = [0, 0]
        self.max_lag_ns = 0
        self.cpu_mark = 0.0
        self.wall_mark = 0

    def start(self, t0: int) -> None:
        """The load starts at ``t0`` (monotonic ns): the first interval ends a second on."""
        self.t0 = t0
        self.boundary = t0 + 1_000_000_000
        self.cpu_mark, self.wall_mark = time.process_time(), time.monotonic_ns()

    def left_s(self) -> float:
        """Seconds of the load still to come."""
        return self.total - (time.monotonic_ns() - self.t0) / 1e9

    @property
    def more(self) -> bool:
        """Whether another boundary falls inside the load.

        The last interval is closed by the end of the run, not by a tick.
        """
        return (self.boundary - self.t0) / 1e9 < self.total

    def close(
        self,
        *,
        final: bool,
        target_rps: float | None,
        connections: int,
        in_flight: int,
        lag: Histogram | None = None,
    ) -> tuple[float, float, GeneratorInterval]:
        """Close the current interval: its start and length in seconds, and the counts.

        The counters roll over: what was counted after the boundary starts the next one.
        """
        now = time.monotonic_ns()
        start_s = float(self.index)
        end_s = min(self.total, (now - self.t0) / 1e9) if final else start_s + 1.0
        cpu = time.process_time()
        wall = max(now - self.wall_mark, 1)
        started = sum(self.started) if final else self.started[0]
        sent = (sum(self.sent) if final else self.sent[0]) + started
        scheduled = (sum(self.scheduled) if final else self.scheduled[0]) + started
        generator = GeneratorInterval(
            scheduled=scheduled,
            sent=sent,
            late=sum(self.late) if final else self.late[0],
            dropped=sum(self.dropped) if final else self.dropped[0],
            max_lag_ms=self.max_lag_ns / 1e6,
            cpu_percent=100.0 * (cpu - self.cpu_mark) / (wall / 1e9),
            connections=connections,
            in_flight=in_flight,
            target_rps=target_rps,
            lag=lag,
        )
        for counter in (self.scheduled, self.sent, self.started, self.late, self.dropped):
            counter[0], counter[1] = counter[1], 0
        self.boundary += 1_000_000_000
        self.max_lag_ns = 0
        self.cpu_mark, self.wall_mark = cpu, now
        self.index += 1
        return start_s, max(end_s - start_s, 1e-9), generator
