"""Micro-batching: many small calls become one, each caller still gets its own answer.

- :class:`Batcher`: ``await batcher.submit(item)``; items wait until ``max_size`` of them
  are pending or the oldest has waited ``max_wait_s``, then go to ``fn`` as one list.
  At most ``max_concurrency`` batches are in flight; the rest wait in order. ``fn``
  returns one result per item, in order, where a result that is an exception is raised
  to that item's caller only; an error raised by ``fn`` itself reaches every caller of
  that batch. With ``max_pending`` items not yet flushed, a new ``submit`` waits for room
  (``when_full="wait"``) or fails at once (``"error"``: :class:`BatcherFullError`).
- :class:`Loader`: DataLoader's ``load(key)``. Keys asked for in the same turn of the
  event loop go in one batch, each key once, and a key already on its way is not asked for
  again (the N+1 fix). ``cache=True`` keeps each answer for the loader's life.

A caller that is cancelled while its item waits is left out of the batch; one cancelled
after the flush started only stops waiting.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from ._errors import ResilienceError
from ._events import Events

__all__ = ["BatchError", "Batcher", "BatcherFull", "BatcherFullError", "Loader"]

I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)

_WHEN_FULL = ("wait", "error")


class BatcherFullError(ResilienceError):
    """``max_pending`` items are waiting for a flush and the batcher was told not to wait."""


BatcherFull = BatcherFullError
"""The short name of :class:`BatcherFullError`, as the kit's other refusals have."""


class BatchError(ResilienceError):
    """The batch function broke its contract (not one result per item)."""


class Batcher(Generic[I, R]):
    """Gather items into batches for ``fn`` (see the module)."""

    def __init__(
        self,
        fn: Callable[[list[I]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_size: int = 100,
        max_wait_s: float = 0.005,
        max_concurrency: int = 4,
        max_pending: int = 10_000,
        when_full: str = "wait",
        name: str = "batcher",
    ) -> None:
        """Configure.

        Raises:
            ValueError: a size, wait or concurrency out of range, or an unknown ``when_full``.
        """
        if max_size < 1 or max_concurrency < 1 or max_wait_s < 0 or max_pending < max_size:
            raise ValueError(
                "max_size and max_concurrency must be at least 1, max_wait_s at least 0 "
                f"and max_pending at least max_size (got {max_size}, {max_concurrency}, "
                f"{max_wait_s}, {max_pending})"
            )
        if when_full not in _WHEN_FULL:
            raise ValueError(f"when_full must be one of {_WHEN_FULL}, got {when_full!r}")
        self.fn = fn
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_concurrency = max_concurrency
        self.max_pending = max_pending
        self.when_full = when_full
        self.name = name
        self.events = Events("batcher", name)
        self.flushes = 0
        """Calls of ``fn`` so far."""
        self.items = 0
        """Items handed to ``fn`` so far."""
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._ready: deque[list[tuple[I, asyncio.Future[R]]]] = deque()
        self._queued = 0  # items pending or ready, not yet handed to fn
        self._running: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._room: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    @property
    def queued(self) -> int:
        """Items waiting for a flush."""
        return self._queued

    @property
    def in_flight(self) -> int:
        """Batches being processed by ``fn`` now."""
        return len(self._running)

    async def submit(self, item: I) -> R:
        """Hand ``item`` to the next batch and wait for its own result.

        Raises:
            BatcherFullError: full, with ``when_full="error"``; otherwise what ``fn`` gave
                for this item.
        """
        while self._queued >= self.max_pending:
            if self.when_full == "error":
                if self.events.listeners:
                    self.events.emit("rejection", "full")
                raise BatcherFullError(
                    f"batcher {self.name!r} has {self._queued} items waiting (max_pending)"
                )
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        return await self._enqueue(item)

    def _enqueue(self, item: I) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        self._queued += 1
        if len(self._pending) >= self.max_size:
            self._cut()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._cut)
        return future

    def _cut(self) -> None:
        """The pending items become a batch (those whose caller gave up are left out)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [entry for entry in self._pending if not entry[1].done()]
        self._queued -= len(self._pending) - len(batch)
        self._pending = []
        if batch:
            self._ready.append(batch)
        self._dispatch()
        self._wake()

    def _dispatch(self) -> None:
        while self._ready and len(self._running) < self.max_concurrency:
            batch = self._ready.popleft()
            self._queued -= len(batch)
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._running.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._dispatch()
        self._wake()

    def _wake(self) -> None:
        if self._room is not None and self._queued < self.max_pending:
            self._room.set()
        if self._idle is not None and not (self._running or self._ready or self._pending):
            self._idle.set()

    async def _flush(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        self.flushes += 1
        self.items += len(batch)
        started = time.monotonic()
        try:
            results = await self.fn([item for item, _ in batch])
            if len(results) != len(batch):
                raise BatchError(
                    f"batcher {self.name!r}: fn returned {len(results)} results "
                    f"for {len(batch)} items"
                )
        except BaseException as exc:  # every caller of this batch hears of it
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if self.events.listeners:
                self.events.emit("call", "failure", seconds=time.monotonic() - started)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self.events.listeners:
            self.events.emit(
                "call", "success", seconds=time.monotonic() - started, value=len(batch)
            )

    async def flush(self) -> None:
        """Send what is pending now, without waiting for ``max_size`` or ``max_wait_s``."""
        if self._pending:
            self._cut()

    async def close(self) -> None:
        """Flush what is pending and wait until every batch is done."""
        await self.flush()
        while self._running or self._ready:
            self._idle = asyncio.Event()
            await self._idle.wait()


class Loader(Generic[K, R]):
    """DataLoader: ``await loader.load(key)``, batched per turn of the loop (see the module)."""

    def __init__(
        self,
        fn: Callable[[list[K]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_size: int = 100,
        max_concurrency: int = 4,
        cache: bool = False,
        name: str = "loader",
    ) -> None:
        """``fn(keys)`` answers each of ``keys`` (distinct) in order."""
        self.batcher: Batcher[K, R] = Batcher(
            fn,
            max_size=max_size,
            max_wait_s=0.0,
            max_concurrency=max_concurrency,
            max_pending=max(10_000, max_size),
            name=name,
        )
        self.cache = cache
        self._futures: dict[K, asyncio.Future[R]] = {}

    async def load(self, key: K) -> R:
        """The answer for ``key`` (shared with every other caller asking for it meanwhile)."""
        future = self._futures.get(key)
        if future is None:
            future = self.batcher._enqueue(key)
            self._futures[key] = future
            future.add_done_callback(functools.partial(self._settled, key))
        return await asyncio.shield(future)

    async def load_many(self, keys: Iterable[K]) -> list[R]:
        """The answers for ``keys``, in order (the first error is raised)."""
        return list(await asyncio.gather(*(self.load(key) for key in keys)))

    def _settled(self, key: K, done: asyncio.Future[Any]) -> None:
        if not self.cache or done.cancelled() or done.exception() is not None:
            self._futures.pop(key, None)  # an error is asked again next time

    def clear(self, key: K | None = None) -> None:
        """Forget the cached answer for ``key`` (or every answer)."""
        if key is None:
            self._futures.clear()
        else:
            self._futures.pop(key, None)

    async def close(self) -> None:
        """Wait for the batches on their way."""
        await self.batcher.close()
