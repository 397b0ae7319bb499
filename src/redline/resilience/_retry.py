"""Retries that cannot turn an outage into a storm: a hard cap, a budget, local throttling.

- :class:`Retry`: full-jitter exponential backoff (a delay drawn from 0 to
  ``min(max_s, base_s * 2**attempt)``), at most ``attempts`` tries in all; it honours a
  ``Retry-After`` carried by the error (a ``retry_after`` attribute in seconds, or a
  ``response`` whose headers have one) and never retries a cancellation.
- :class:`RetryBudget`: retries limited to a share of requests plus a small floor, over a
  sliding window (Finagle's: 20% of requests + 10 a second, over 10 s, by default), shared
  by every caller of one downstream.
- :class:`AdaptiveThrottle`: client-side adaptive throttling from Google's SRE book:
  refuse locally with probability ``max(0, (requests - K * accepts) / (requests + 1))``
  over the last two minutes, so a client stops sending what the backend rejects anyway.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from ._decorate import decorate
from ._errors import ResilienceError
from ._events import Events

__all__ = [
    "AdaptiveThrottle",
    "Retry",
    "RetryBudget",
    "Throttled",
    "ThrottledError",
    "retry_after",
]

P = ParamSpec("P")
T = TypeVar("T")


class ThrottledError(ResilienceError):
    """The adaptive throttle refused the call locally (the backend is rejecting most)."""


Throttled = ThrottledError
"""The old name of :class:`ThrottledError`, kept as an alias."""


class _Buckets:
    """Per-second counters over a sliding window (subtract on evict)."""

    def __init__(self, seconds: int, fields: int, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.clock = clock
        self.buckets = [[0] * fields for _ in range(seconds)]
        self.totals = [0] * fields
        self.second = int(clock())

    def advance(self) -> list[int]:
        now = int(self.clock())
        steps = min(now - self.second, self.seconds)
        for step in range(1, steps + 1):
            bucket = self.buckets[(self.second + step) % self.seconds]
            for i, value in enumerate(bucket):
                self.totals[i] -= value
                bucket[i] = 0
        self.second = max(self.second, now)
        return self.totals

    def add(self, field: int, amount: int = 1) -> None:
        self.advance()
        self.buckets[self.second % self.seconds][field] += amount
        self.totals[field] += amount


class RetryBudget:
    """A budget of retries for one downstream: ``ratio`` of requests plus a floor.

    Every request deposits (:meth:`deposit`); a retry may go only if :meth:`try_withdraw`
    says so. Over any ``ttl_s`` window, retries never exceed
    ``ratio * requests + floor_per_s * ttl_s``.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        floor_per_s: float = 10.0,
        ttl_s: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure (Finagle's defaults)."""
        if not 0 <= ratio <= 1 or floor_per_s < 0 or ttl_s < 1:
            raise ValueError("ratio must be within 0..1, floor_per_s >= 0 and ttl_s >= 1")
        self.ratio = ratio
        self.floor = floor_per_s * ttl_s
        self._counts = _Buckets(ttl_s, 2, clock)  # requests, retries
        self._lock = threading.Lock()

    def deposit(self) -> None:
        """A request was made."""
        with self._lock:
            self._counts.add(0)

    def balance(self) -> float:
        """Retries that could be made now."""
        with self._lock:
            requests, retries = self._counts.advance()
            return self.floor + self.ratio * requests - retries

    def try_withdraw(self) -> bool:
        """Take one retry from the budget, if there is one."""
        with self._lock:
            requests, retries = self._counts.advance()
            if self.floor + self.ratio * requests - retries < 1:
                return False
            self._counts.add(1)
            return True


class AdaptiveThrottle:
    """Client-side adaptive throttling (Google SRE, chapter 21), K = ``k``, over ``window_s``."""

    def __init__(
        self,
        *,
        k: float = 2.0,
        window_s: int = 120,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """Configure; ``k`` closer to 1 throttles more eagerly."""
        self.k = k
        self._counts = _Buckets(window_s, 2, clock)  # requests, accepts
        self._lock = threading.Lock()
        self.rng = rng or random.Random()

    def probability(self) -> float:
        """The chance that the next request is refused locally."""
        with self._lock:
            requests, accepts = self._counts.advance()
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def allow(self) -> bool:
        """Roll whether this request may go; it counts as a request either way."""
        refuse = self.rng.random() < self.probability()
        with self._lock:
            self._counts.add(0)
        return not refuse

    def accepted(self) -> None:
        """The backend accepted a request (it answered, even with an error of its own)."""
        with self._lock:
            self._counts.add(1)


def retry_after(exc: BaseException) -> float | None:
    """The seconds an error asks to wait.

    Read from ``exc.retry_after_s`` (the kit's errors), ``exc.retry_after`` (other libraries'
    errors) or a Retry-After header on ``exc.response``.
    """
    value = getattr(exc, "retry_after_s", None)
    if value is None:
        value = getattr(exc, "retry_after", None)
    if value is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        if headers is not None:
            value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: not honoured


class Retry:
    """Retry a call with full-jitter backoff, within a budget (see the module)."""

    def __init__(
        self,
        *,
        name: str = "retry",
        attempts: int = 3,
        base_s: float = 0.1,
        max_s: float = 10.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        retry_if_result: Callable[[Any], bool] | None = None,
        budget: RetryBudget | None = None,
        throttle: AdaptiveThrottle | None = None,
        max_retry_after_s: float = 60.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sleep_sync: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure; ``attempts`` counts the first try (3: one try and two retries).

        Raises:
            ValueError: fewer than one attempt.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.attempts = attempts
        self.base_s = base_s
        self.max_s = max_s
        self.retry_on = retry_on
        self.retry_if_result = retry_if_result
        self.budget = budget
        self.throttle = throttle
        self.max_retry_after_s = max_retry_after_s
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.sleep_sync = sleep_sync
        self.retries = 0
        self.name = name
        self.events = Events("retry", name)
        self._listeners = self.events.listeners

    def _retry_delay(self, attempt: int, exc: BaseException | None) -> float | None:
        """The wait before retrying after ``attempt`` (0-based), or None: no retry."""
        if attempt + 1 >= self.attempts:
            if self._listeners:
                self.events.emit("attempt", "exhausted", value=attempt + 1)
            return None
        if self.budget is not None and not self.budget.try_withdraw():
            if self._listeners:
                self.events.emit("attempt", "budget_exhausted", value=attempt + 1)
            return None
        self.retries += 1
        delay = self.rng.uniform(0, min(self.max_s, self.base_s * 2**attempt))
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            delay = max(delay, min(asked, self.max_retry_after_s))
        if self._listeners:
            self.events.emit("attempt", "retry", value=attempt + 2, seconds=delay)
        return delay

    def _admit(self) -> float | None:
        """Count the request; returns when it started if someone listens."""
        if self.budget is not None:
            self.budget.deposit()
        if self.throttle is not None and not self.throttle.allow():
            if self._listeners:
                self.events.emit("rejection", "throttled")
            raise ThrottledError("refused locally: the backend has been rejecting most requests")
        return time.monotonic() if self._listeners else None

    def _ended(self, started: float | None, outcome: str) -> None:
        if started is not None:
            self.events.emit("call", outcome, seconds=time.monotonic() - started)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, retrying as configured.

        Raises:
            ThrottledError: the adaptive throttle refused; otherwise the last error.
        """
        started = self._admit()
        attempt = 0
        while True:
            try:
                result = await fn(*args, **kwargs)
            except self.retry_on as exc:
                delay = self._delay_after_error(started, attempt, exc)
                if delay is None:
                    raise
            except BaseException:
                self._ended(started, "failure")
                raise
            else:
                if self.throttle is None and self.retry_if_result is None:  # the common case
                    self._ended(started, "success")
                    return result
                delay = self._delay_after_result(started, attempt, result)
                if delay is None:
                    return result
            await self.sleep(delay)
            attempt += 1

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying as configured (blocking sleeps)."""
        started = self._admit()
        attempt = 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except self.retry_on as exc:
                delay = self._delay_after_error(started, attempt, exc)
                if delay is None:
                    raise
            except BaseException:
                self._ended(started, "failure")
                raise
            else:
                if self.throttle is None and self.retry_if_result is None:  # the common case
                    self._ended(started, "success")
                    return result
                delay = self._delay_after_result(started, attempt, result)
                if delay is None:
                    return result
            self.sleep_sync(delay)
            attempt += 1

    def delay_after(self, attempt: int, exc: BaseException) -> float | None:
        """The wait before another try after try ``attempt`` (1-based) failed, or None.

        None: no retry (``exc`` is not an error to retry, no attempt left, no budget).
        For work retried somewhere other than :meth:`call` (a queued job, later); the
        decision and its events are the same as inside :meth:`call`.
        """
        if not isinstance(exc, self.retry_on) or isinstance(exc, asyncio.CancelledError):
            return None
        return self._retry_delay(attempt - 1, exc)

    # The async and the sync call share every decision; only the call and the sleep differ.
    def _delay_after_error(
        self, started: float | None, attempt: int, exc: BaseException
    ) -> float | None:
        """The wait before retrying after ``exc``, or None: give up (and count it)."""
        delay = None
        if not isinstance(exc, asyncio.CancelledError):
            delay = self._retry_delay(attempt, exc)
        if delay is None:
            self._ended(started, "failure")
        return delay

    def _delay_after_result(self, started: float | None, attempt: int, result: Any) -> float | None:
        """The wait before retrying a result ``retry_if_result`` refuses, or None: done."""
        if self.throttle is not None:
            self.throttle.accepted()
        if self.retry_if_result is not None and self.retry_if_result(result):
            delay = self._retry_delay(attempt, None)
            if delay is not None:
                return delay
            self._ended(started, "failure")
            return None
        self._ended(started, "success")
        return None

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function."""
        return decorate(self.call, fn)
