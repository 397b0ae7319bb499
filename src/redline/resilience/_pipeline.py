"""Strategies composed: the first added is the outermost.

    pipeline = (
        Pipeline()
        .add(Timeout(2.0))           # one deadline for all that follows
        .add(CircuitBreaker("payments"))
        .add(Bulkhead(20))
        .add(Retry(attempts=3, budget=RetryBudget()))
    )
    receipt = await pipeline.call(charge, order)

Anything with ``async def call(fn, *args, **kwargs)`` is a strategy.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from ._deadline import deadline
from ._decorate import decorate
from ._events import Events

__all__ = ["Fallback", "Pipeline", "Strategy", "Timeout"]

P = ParamSpec("P")
T = TypeVar("T")


class Strategy(Protocol):
    """What a pipeline composes."""

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` under this strategy."""


class Timeout:
    """The pipeline's deadline: everything inside has ``seconds`` (a nested one only shortens)."""

    def __init__(self, seconds: float, *, name: str = "timeout") -> None:
        """Configure."""
        self.seconds = seconds
        self.name = name
        self.events = Events("timeout", name)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` within the deadline.

        Raises:
            DeadlineExceeded: the time ran out.
        """
        try:
            async with deadline(self.seconds):
                return await fn(*args, **kwargs)
        except TimeoutError:
            self.events.emit("call", "timeout", seconds=self.seconds)
            raise


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

    def __init__(self, name: str = "pipeline") -> None:
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
