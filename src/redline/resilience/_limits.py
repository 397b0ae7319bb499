"""Limits on what a service takes on: a bulkhead (concurrency) and a rate limiter (tokens).

- :class:`Bulkhead`: at most ``max_concurrent`` calls at once; a call waits up to
  ``max_wait_s`` for a place (0: refused at once), then :class:`BulkheadFull`.
- :class:`RateLimiter`: a token bucket of ``rate`` tokens a second holding at most
  ``burst``; a call takes a token, waiting up to ``max_wait_s`` for one, then
  :class:`RateLimited` with the seconds until the next token (for a Retry-After).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

__all__ = ["Bulkhead", "BulkheadFull", "RateLimited", "RateLimiter"]

P = ParamSpec("P")
T = TypeVar("T")


class BulkheadFull(Exception):  # noqa: N818 - what happened to the call
    """Every place in the bulkhead was taken for longer than the call would wait."""


class RateLimited(Exception):  # noqa: N818 - what happened to the call
    """No token within the wait; ``retry_after`` is the seconds until the next one."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class Bulkhead:
    """At most ``max_concurrent`` calls in flight (async calls and threads counted apart)."""

    def __init__(self, max_concurrent: int, *, max_wait_s: float = 0.0) -> None:
        """Configure.

        Raises:
            ValueError: fewer than one place.
        """
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.max_wait_s = max_wait_s
        self._async: asyncio.Semaphore | None = None
        self._threads = threading.BoundedSemaphore(max_concurrent)
        self.in_flight = 0
        self.rejected = 0

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` in one of the places.

        Raises:
            BulkheadFull: no place within ``max_wait_s``.
        """
        if self._async is None:
            self._async = asyncio.Semaphore(self.max_concurrent)
        semaphore = self._async
        if semaphore.locked() and self.max_wait_s <= 0:
            self.rejected += 1
            raise BulkheadFull(f"all {self.max_concurrent} places taken")
        try:
            if semaphore.locked():
                await asyncio.wait_for(semaphore.acquire(), self.max_wait_s)
            else:
                await semaphore.acquire()  # a free place: no timer needed
        except TimeoutError:
            self.rejected += 1
            raise BulkheadFull(
                f"all {self.max_concurrent} places taken for {self.max_wait_s}s"
            ) from None
        self.in_flight += 1
        try:
            return await fn(*args, **kwargs)
        finally:
            self.in_flight -= 1
            semaphore.release()

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` in one of the places (blocking up to ``max_wait_s`` for one)."""
        acquired = (
            self._threads.acquire(timeout=self.max_wait_s)
            if self.max_wait_s > 0
            else self._threads.acquire(blocking=False)
        )
        if not acquired:
            self.rejected += 1
            raise BulkheadFull(f"all {self.max_concurrent} places taken")
        try:
            return fn(*args, **kwargs)
        finally:
            self._threads.release()


class RateLimiter:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        max_wait_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure; the bucket starts full.

        Raises:
            ValueError: a rate that is not positive, or a burst below one token.
        """
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        burst = rate if burst is None else burst
        if burst < 1:
            raise ValueError(f"burst must hold at least one token, got {burst}")
        self.rate = rate
        self.burst = burst
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> float:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def try_acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` if there are enough: returns 0, else the seconds to wait."""
        with self._lock:
            available = self._refill()
            if available >= tokens:
                self._tokens = available - tokens
                return 0.0
            return (tokens - available) / self.rate

    async def acquire(self, tokens: float = 1.0) -> None:
        """Take ``tokens``, waiting up to ``max_wait_s`` for them.

        Raises:
            RateLimited: not within the wait.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire(tokens)
            if wait == 0:
                return
            if waited + wait > self.max_wait_s:
                raise RateLimited(wait)
            await asyncio.sleep(wait)
            waited += wait

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` once a token is taken."""
        await self.acquire()
        return await fn(*args, **kwargs)
