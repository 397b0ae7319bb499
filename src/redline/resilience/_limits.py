"""Limits on what a service takes on: a bulkhead (concurrency) and a rate limiter (tokens).

- :class:`Bulkhead`: at most ``max_concurrent`` calls at once; a call waits up to
  ``max_wait_s`` for a place (0: refused at once), then :class:`BulkheadFullError`.
- :class:`RateLimiter`: a token bucket of ``rate`` tokens a second holding at most
  ``burst``; a call takes a token, waiting up to ``max_wait_s`` for one, then
  :class:`RateLimitedError` with the seconds until the next token (for a Retry-After).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from ._errors import ResilienceError
from ._events import Events

__all__ = [
    "Bulkhead",
    "BulkheadFull",
    "BulkheadFullError",
    "RateLimited",
    "RateLimitedError",
    "RateLimiter",
]

P = ParamSpec("P")
T = TypeVar("T")


class BulkheadFullError(ResilienceError):
    """Every place in the bulkhead was taken for longer than the call would wait."""


BulkheadFull = BulkheadFullError
"""The old name of :class:`BulkheadFullError`, kept as an alias."""


class RateLimitedError(ResilienceError):
    """No token within the wait; ``retry_after_s`` is the seconds until the next one."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.3f}s")
        self.retry_after_s = retry_after

    @property
    def retry_after(self) -> float:
        """The old name of :attr:`retry_after_s`, kept as an alias."""
        return self.retry_after_s


RateLimited = RateLimitedError
"""The old name of :class:`RateLimitedError`, kept as an alias."""


class Bulkhead:
    """At most ``max_concurrent`` calls in flight (async calls and threads counted apart)."""

    def __init__(
        self, max_concurrent: int, *, max_wait_s: float = 0.0, name: str = "bulkhead"
    ) -> None:
        """Configure.

        Raises:
            ValueError: fewer than one place.
        """
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.max_wait_s = max_wait_s
        self._free = max_concurrent  # places for async calls
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._threads = threading.BoundedSemaphore(max_concurrent)
        self.in_flight = 0
        self.rejected = 0
        self.name = name
        self.events = Events("bulkhead", name)

    def _full(self, message: str) -> BulkheadFullError:
        self.rejected += 1
        self.events.emit("rejection", "full")
        return BulkheadFullError(message)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` in one of the places.

        Raises:
            BulkheadFullError: no place within ``max_wait_s``.
        """
        if self._free > 0 and not self._waiters:
            self._free -= 1  # a free place: no future, no timer
        else:
            await self._wait()
        self.in_flight += 1
        try:
            return await fn(*args, **kwargs)
        finally:
            self.in_flight -= 1
            self._release()

    def _release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # the first still waiting takes the place over
                waiter.set_result(None)
                return
        self._free += 1

    async def _wait(self) -> None:
        if self.max_wait_s <= 0:
            raise self._full(f"all {self.max_concurrent} places taken")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the place came at the last moment
            raise self._full(
                f"all {self.max_concurrent} places taken for {self.max_wait_s}s"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # given a place while leaving: pass it on
            raise

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` in one of the places (blocking up to ``max_wait_s`` for one)."""
        acquired = (
            self._threads.acquire(timeout=self.max_wait_s)
            if self.max_wait_s > 0
            else self._threads.acquire(blocking=False)
        )
        if not acquired:
            raise self._full(f"all {self.max_concurrent} places taken")
        try:
            return fn(*args, **kwargs)
        finally:
            self._threads.release()


def bucket_size(rate: float, burst: float | None) -> float:
    """A token bucket's size (``rate`` by default), once both are checked.

    Raises:
        ValueError: a rate that is not positive, or a burst below one token.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    burst = rate if burst is None else burst
    if burst < 1:
        raise ValueError(f"burst must hold at least one token, got {burst}")
    return burst


async def take_tokens(
    try_acquire: Callable[[], float | Awaitable[float]], max_wait_s: float, events: Events
) -> None:
    """Take tokens with ``try_acquire`` (0, or the seconds to wait), waiting up to ``max_wait_s``.

    Raises:
        RateLimitedError: not within the wait.
    """
    waited = 0.0
    while True:
        wait = try_acquire()
        if not isinstance(wait, int | float):
            wait = await wait
        if wait == 0:
            return
        if waited + wait > max_wait_s:
            events.emit("rejection", "rate_limited", value=wait)
            raise RateLimitedError(wait)
        await asyncio.sleep(wait)
        waited += wait


class RateLimiter:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up, per key.

    Each ``key`` (a client, a tenant; ``""`` by default) has a bucket of its own; the
    ``max_keys`` most recently used are kept (a forgotten key starts again with a full
    bucket, as a new one does).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        max_wait_s: float = 0.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        name: str = "rate_limiter",
    ) -> None:
        """Configure; every bucket starts full.

        Raises:
            ValueError: a rate that is not positive, or a burst below one token.
        """
        burst = bucket_size(rate, burst)
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.rate = rate
        self.burst = burst
        self.max_wait_s = max_wait_s
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key: [tokens, at]
        self._lock = threading.Lock()
        self.name = name
        self.events = Events("rate_limiter", name)

    def try_acquire(self, tokens: float = 1.0, key: str = "") -> float:
        """Take ``tokens`` from ``key``'s bucket if it has enough: 0, else the seconds to wait."""
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [self.burst, now]
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            available = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if available >= tokens:
                bucket[0] = available - tokens
                return 0.0
            bucket[0] = available
            return (tokens - available) / self.rate

    async def take(self, tokens: float = 1.0, key: str = "") -> float:
        """:meth:`try_acquire` as the awaitable every :class:`KeyedLimiter` offers."""
        return self.try_acquire(tokens, key)

    async def acquire(self, tokens: float = 1.0, key: str = "") -> None:
        """Take ``tokens``, waiting up to ``max_wait_s`` for them.

        Raises:
            RateLimitedError: not within the wait.
        """
        await take_tokens(lambda: self.try_acquire(tokens, key), self.max_wait_s, self.events)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` once a token is taken."""
        await self.acquire()
        return await fn(*args, **kwargs)
