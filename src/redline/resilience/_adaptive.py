"""Adaptive concurrency limits: find how much a service can take in flight, and keep to it.

The limit moves with the latency (and drops) each call reports, by one of the algorithms
of Netflix's concurrency-limits:

- ``aimd``: additive increase (+1 while the limit is in use), multiplicative decrease
  (x ``backoff``, 0.9) on a drop or a call slower than ``timeout_s``;
- ``vegas``: the queue the latency implies, ``limit x (1 - min_rtt / rtt)``, kept between
  ``alpha = 3 log10(limit)`` and ``beta = 6 log10(limit)``;
- ``gradient2``: the limit times the gradient of a long-term latency average over a short
  one (``tolerance`` 1.5, the gradient clamped to 0.5-1), plus a queue of
  ``sqrt(limit)``, smoothed (0.2).

Partitions (``partitions={"live": 0.8, "batch": 0.2}``) guarantee each priority its share
of the limit: a partition above its share is admitted only out of what the others do not
use.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ._errors import ResilienceError
from ._events import Events

__all__ = [
    "ALGORITHMS",
    "AdaptiveLimiter",
    "LimitExceeded",
    "LimitExceededError",
    "Permit",
]

ALGORITHMS = ("aimd", "vegas", "gradient2")
"""The adaptive concurrency limit algorithms."""
P = ParamSpec("P")
T = TypeVar("T")


class LimitExceededError(ResilienceError):
    """The concurrency limit (or the partition's share of it) is taken."""


LimitExceeded = LimitExceededError
"""The old name of :class:`LimitExceededError`, kept as an alias."""


@dataclass
class Permit:
    """One admitted call, to give back with :meth:`AdaptiveLimiter.release`."""

    partition: str
    started: float
    in_flight: int


class AdaptiveLimiter:
    """A concurrency limit that adapts to latency (see the module)."""

    def __init__(
        self,
        *,
        algorithm: str = "gradient2",
        initial: int = 20,
        minimum: int = 1,
        maximum: int = 1000,
        partitions: Mapping[str, float] | None = None,
        backoff: float = 0.9,
        timeout_s: float = 5.0,
        tolerance: float = 1.5,
        smoothing: float = 0.2,
        long_window: int = 600,
        clock: Callable[[], float] = time.monotonic,
        name: str = "adaptive_limiter",
    ) -> None:
        """Configure.

        Raises:
            ValueError: an unknown algorithm, bounds out of order, or partition shares
                that do not add up to at most 1.
        """
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("expected 1 <= minimum <= initial <= maximum")
        shares = dict(partitions or {})
        if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1 + 1e-9:
            raise ValueError("partition shares must be >= 0 and add up to at most 1")
        self.algorithm = algorithm
        self.limit = float(initial)
        self.minimum = minimum
        self.maximum = maximum
        self.shares = shares
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.long_window = long_window
        self.clock = clock
        self.in_flight = 0
        self._by_partition: dict[str, int] = dict.fromkeys(shares, 0)
        self._lock = threading.Lock()
        self._min_rtt = math.inf
        self._long_rtt = 0.0
        self._samples = 0
        self.rejected = 0
        self.name = name
        self.events = Events("adaptive_limiter", name)
        self._listeners = self.events.listeners

    @property
    def current(self) -> int:
        """The limit now, in whole calls."""
        return max(self.minimum, int(self.limit))

    def _admits(self, partition: str) -> bool:
        limit = self.current
        if self.in_flight >= limit:
            return False
        if not self.shares or partition not in self.shares:
            return True
        if self._by_partition[partition] < self.shares[partition] * limit:
            return True
        reserved = sum(
            max(0.0, share * limit - self._by_partition[name])
            for name, share in self.shares.items()
            if name != partition
        )
        return self.in_flight < limit - reserved

    def try_acquire(self, partition: str = "") -> Permit | None:
        """A permit if the limit admits one for ``partition``, else None."""
        with self._lock:
            if self._admits(partition):
                self.in_flight += 1
                if partition in self._by_partition:
                    self._by_partition[partition] += 1
                return Permit(partition, self.clock(), self.in_flight)
            self.rejected += 1
        if self._listeners:
            self.events.emit("rejection", "limit", value=self.current)
        return None

    def release(self, permit: Permit, *, dropped: bool = False, ignore: bool = False) -> None:
        """Give a permit back with its outcome: its latency moves the limit.

        ``dropped``: the call failed for want of capacity (a timeout, a 503): the limit
        must come down. ``ignore``: the call says nothing about capacity (a cancellation,
        a client error).
        """
        rtt = self.clock() - permit.started
        with self._lock:
            self.in_flight -= 1
            if permit.partition in self._by_partition:
                self._by_partition[permit.partition] -= 1
            before = self.current
            if not ignore:
                self._update(rtt, permit.in_flight, dropped)
            after = self.current
        if self._listeners:
            outcome = "ignored" if ignore else "failure" if dropped else "success"
            self.events.emit("call", outcome, seconds=rtt)
            if after != before:
                self.events.emit("limit", "changed", value=after)

    def _update(self, rtt: float, in_flight: int, dropped: bool) -> None:
        limit = self.limit
        if self.algorithm == "aimd":
            if dropped or rtt > self.timeout_s:
                limit *= self.backoff
            elif in_flight * 2 >= limit:
                limit += 1
        elif self.algorithm == "vegas":
            self._min_rtt = min(self._min_rtt, rtt) if rtt > 0 else self._min_rtt
            if dropped:
                limit -= math.log10(max(limit, 10))
            elif rtt > 0 and math.isfinite(self._min_rtt):
                queue = limit * (1 - self._min_rtt / rtt)
                step = math.log10(max(limit, 10))
                if queue < 3 * step:
                    limit += step
                elif queue > 6 * step:
                    limit -= step
        else:
            self._samples += 1
            weight = 1 / min(self._samples, self.long_window)
            self._long_rtt += (rtt - self._long_rtt) * weight
            if dropped:
                limit *= 0.5 + 0.5 * self.backoff
            elif rtt > 0:
                gradient = max(0.5, min(1.0, self.tolerance * self._long_rtt / rtt))
                target = limit * gradient + math.sqrt(limit)
                limit = limit * (1 - self.smoothing) + target * self.smoothing
        self.limit = min(float(self.maximum), max(float(self.minimum), limit))

    async def call(
        self,
        fn: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Await ``fn`` under the limit (partition ``""``).

        Raises:
            LimitExceededError: the limit is taken.
        """
        permit = self.try_acquire()
        if permit is None:
            raise LimitExceededError(f"concurrency limit {self.current} taken")
        try:
            result = await fn(*args, **kwargs)
        except TimeoutError:
            self.release(permit, dropped=True)
            raise
        except BaseException:
            self.release(permit, ignore=True)
            raise
        self.release(permit)
        return result
