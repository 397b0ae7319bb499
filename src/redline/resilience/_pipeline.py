"""Strategies composed: the first added is the outermost.

    pipeline = (
        Pipeline()
        .add(Timeout(2.0))           # one deadline for all that follows
        .add(CircuitBreaker(name="payments"))
        .add(Bulkhead(20))
        .add(Retry(attempts=3, budget=RetryBudget()))
    )
    receipt = await pipeline.call(charge, order)

Anything with ``async def call(fn, *args, **kwargs)`` is a strategy.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from ._deadline import _DEADLINE, DeadlineExceededError, deadline
from ._decorate import decorate
from ._events import Events

__all__ = ["Fallback", "Pipeline", "Strategy", "Timeout"]

P = ParamSpec("P")
T = TypeVar("T")


class Strategy(Protocol):
    """What a pipeline composes."""

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` under this strategy."""


class _Pending:
    """One call under a :class:`Timeout`: when it must end, and its task."""

    __slots__ = ("at", "cancelling", "done", "expired", "task")

    def __init__(self, at: float, task: asyncio.Task[Any]) -> None:
        self.at = at
        self.task = task
        self.cancelling = task.cancelling()
        self.done = False
        self.expired = False


class Timeout:
    """The pipeline's deadline: everything inside has ``seconds`` (a nested one only shortens).

    Every call gets the same time, so deadlines come due in the order calls start: one
    timer per Timeout (on the soonest deadline) serves all calls in flight, instead of one
    timer set and cancelled per call. A call still running at its deadline is cancelled,
    and the cancellation comes out as :class:`DeadlineExceededError`. (Used from a second event
    loop at the same time, a call falls back to a timer of its own.)
    """

    def __init__(self, seconds: float, *, name: str = "timeout") -> None:
        """Configure."""
        self.seconds = seconds
        self.name = name
        self.events = Events("timeout", name)
        self._pending: deque[_Pending] = deque()  # in order of deadline
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` within the deadline.

        Raises:
            DeadlineExceededError: the time ran out.
        """
        now = time.monotonic()
        at = now + self.seconds
        outer = _DEADLINE.get()
        if outer is not None and outer <= at:
            return await fn(*args, **kwargs)  # the outer deadline is sooner, and enforced
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None and not self._loop.is_closed():
                return await self._alone(fn, *args, **kwargs)
            self._loop, self._timer = loop, None
            self._pending.clear()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Timeout needs to run in an asyncio task")
        pending = _Pending(at, task)
        self._pending.append(pending)
        if self._timer is None:
            self._timer = loop.call_at(loop.time() + self.seconds, self._expire)
        token = _DEADLINE.set(at)
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError as exc:
            if pending.expired and task.uncancel() <= pending.cancelling:
                self.events.emit("call", "timeout", seconds=self.seconds)
                raise DeadlineExceededError(f"the deadline of {self.seconds}s passed") from exc
            raise
        finally:
            pending.done = True
            _DEADLINE.reset(token)
            queue = self._pending
            while queue and queue[0].done:
                queue.popleft()

    async def _alone(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            async with deadline(self.seconds):
                return await fn(*args, **kwargs)
        except DeadlineExceededError:
            self.events.emit("call", "timeout", seconds=self.seconds)
            raise

    def _expire(self) -> None:
        """Cancel every call past its deadline; set the timer for the next one."""
        self._timer = None
        now = time.monotonic()
        queue = self._pending
        while queue:
            head = queue[0]
            if not head.done and head.at > now:
                break
            queue.popleft()
            if not head.done:
                head.expired = True
                head.task.cancel()
        if queue and self._loop is not None:
            loop = self._loop
            self._timer = loop.call_at(loop.time() + (queue[0].at - now), self._expire)


class Fallback:
    """On an error in ``on``, answer with ``fallback(error)`` instead (never on cancellation)."""

    def __init__(
        self,
        fallback: Callable[[BaseException], Awaitable[Any]],
        *,
        on: tuple[type[BaseException], ...] = (Exception,),
        name: str = "fallback",
    ) -> None:
        """Configure."""
        self.fallback = fallback
        self.on = on
        self.used = 0
        self.name = name
        self.events = Events("fallback", name)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn``, or the fallback when it fails."""
        try:
            return await fn(*args, **kwargs)
        except self.on as exc:
            self.used += 1
            self.events.emit("call", "fallback")
            result: T = await self.fallback(exc)
            return result


class Pipeline:
    """Strategies in order, outermost first."""

    def __init__(self, *, name: str = "pipeline") -> None:
        """An empty pipeline (a call passes straight through)."""
        self.strategies: list[Strategy] = []
        # strategy k's call is given strategy k+1's as its function, and so on: the chain
        # travels as leading arguments, with no wrapper built per call
        self._calls: tuple[Callable[..., Awaitable[Any]], ...] = ()
        self.name = name
        self.events = Events("pipeline", name)
        self._listeners = self.events.listeners

    def add(self, strategy: Strategy) -> Pipeline:
        """Add ``strategy`` inside the ones added before; returns the pipeline."""
        self.strategies.append(strategy)
        self._calls = (*self._calls, strategy.call)
        return self

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through every strategy."""
        calls = self._calls
        if not self._listeners:
            if not calls:
                return await fn(*args, **kwargs)
            result: T = await calls[0](*calls[1:], fn, *args, **kwargs)
            return result
        started = time.monotonic()
        try:
            result = (
                await calls[0](*calls[1:], fn, *args, **kwargs)
                if calls
                else await fn(*args, **kwargs)
            )
        except BaseException:
            self.events.emit("call", "failure", seconds=time.monotonic() - started)
            raise
        self.events.emit("call", "success", seconds=time.monotonic() - started)
        return result

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function."""
        return decorate(self.call, fn)
