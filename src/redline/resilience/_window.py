"""Sliding windows of call outcomes with subtract-on-evict totals: O(1) per call.

A count window keeps the last ``size`` outcomes in a ring; a time window keeps one bucket
per second for ``size`` seconds. Either way the totals (calls, failures, slow calls) are
kept up to date by adding what comes in and subtracting what falls out, never by summing
the window again.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CountWindow", "TimeWindow", "Totals"]


class Totals:
    """Calls, failures and slow calls in a window."""

    __slots__ = ("calls", "failures", "slow")

    def __init__(self) -> None:
        """Empty."""
        self.calls = 0
        self.failures = 0
        self.slow = 0

    @property
    def failure_rate(self) -> float:
        """Failures over calls (0 with no calls)."""
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        """Slow calls over calls (0 with no calls)."""
        return self.slow / self.calls if self.calls else 0.0


class CountWindow:
    """The last ``size`` calls."""

    def __init__(self, size: int) -> None:
        """A window of ``size`` calls (at least 1)."""
        if size < 1:
            raise ValueError(f"a count window needs at least 1 call, got {size}")
        self.size = size
        self._ring: list[int] = [0] * size  # bit 1: failed, bit 2: slow, 4: occupied
        self._at = 0
        self.totals = Totals()

    def add(self, failed: bool, slow: bool) -> Totals:
        """Record one call; return the totals."""
        ring, at, totals = self._ring, self._at, self.totals
        old = ring[at]
        entry = 4 | failed | (slow << 1)
        ring[at] = entry
        self._at = at + 1 if at + 1 < self.size else 0
        if old != entry:  # the same outcome in and out changes no total
            if old & 4:
                totals.failures -= old & 1
                totals.slow -= (old >> 1) & 1
            else:
                totals.calls += 1
            totals.failures += failed
            totals.slow += slow
        return totals

    def clear(self) -> None:
        """Forget every call."""
        self._ring = [0] * self.size
        self._at = 0
        self.totals = Totals()


class TimeWindow:
    """The calls of the last ``size`` seconds, in one-second buckets."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        """A window of ``size`` seconds (at least 1) read off ``clock``."""
        if size < 1:
            raise ValueError(f"a time window needs at least 1 second, got {size}")
        self.size = size
        self.clock = clock
        self._buckets: list[list[int]] = [[0, 0, 0] for _ in range(size)]
        self._second = int(clock())
        self.totals = Totals()

    def _advance(self) -> None:
        now = int(self.clock())
        if now <= self._second:
            return
        steps = min(now - self._second, self.size)
        totals = self.totals
        for step in range(1, steps + 1):
            bucket = self._buckets[(self._second + step) % self.size]
            totals.calls -= bucket[0]
            totals.failures -= bucket[1]
            totals.slow -= bucket[2]
            bucket[0] = bucket[1] = bucket[2] = 0
        self._second = now

    def add(self, failed: bool, slow: bool) -> Totals:
        """Record one call now; return the totals of the window."""
        self._advance()
        bucket = self._buckets[self._second % self.size]
        bucket[0] += 1
        bucket[1] += int(failed)
        bucket[2] += int(slow)
        totals = self.totals
        totals.calls += 1
        totals.failures += int(failed)
        totals.slow += int(slow)
        return totals

    def current(self) -> Totals:
        """The totals as of now (old seconds evicted)."""
        self._advance()
        return self.totals

    def clear(self) -> None:
        """Forget every call."""
        self._buckets = [[0, 0, 0] for _ in range(self.size)]
        self._second = int(self.clock())
        self.totals = Totals()
