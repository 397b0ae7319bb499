"""Hedged requests: when the first attempt is slow, send a second and take whichever wins.

The second attempt goes after ``delay_s``, or after the ``percentile`` of recent
latencies (so only the slowest few per cent are hedged), and only if the retry budget
allows it: hedging is extra load, and must not double it when the service is slow for
everyone. The loser is cancelled. If an attempt fails while another is still running,
the other may still win; when all fail, the last error is raised.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from ._decorate import decorate
from ._events import Events
from ._retry import RetryBudget

__all__ = ["Hedge"]

P = ParamSpec("P")
T = TypeVar("T")


class Hedge:
    """A second attempt after a delay or a latency percentile (see the module)."""

    def __init__(
        self,
        *,
        delay_s: float | None = None,
        percentile: float | None = None,
        budget: RetryBudget | None = None,
        max_attempts: int = 2,
        history: int = 1000,
        minimum_samples: int = 20,
        name: str = "hedge",
    ) -> None:
        """Configure with ``delay_s`` or ``percentile`` (0-100).

        Raises:
            ValueError: neither or both given, or fewer than two attempts.
        """
        if (delay_s is None) == (percentile is None):
            raise ValueError("give delay_s or percentile (one of them)")
        if max_attempts < 2:
            raise ValueError("a hedge needs at least two attempts")
        self.delay_s = delay_s
        self.percentile = percentile
        self.budget = budget
        self.max_attempts = max_attempts
        self.minimum_samples = minimum_samples
        self._latencies: deque[float] = deque(maxlen=history)
        self.hedged = 0
        self.won_by_hedge = 0
        self.name = name
        self.events = Events("hedge", name)

    def delay(self) -> float | None:
        """How long to wait before hedging now (None: not enough history yet)."""
        if self.delay_s is not None:
            return self.delay_s
        if len(self._latencies) < self.minimum_samples:
            return None
        ordered = sorted(self._latencies)
        assert self.percentile is not None
        index = min(len(ordered) - 1, int(len(ordered) * self.percentile / 100))
        return ordered[index]

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn``, hedged.

        Raises:
            the last attempt's error when every attempt failed.
        """
        loop = asyncio.get_running_loop()
        if self.budget is not None:
            self.budget.deposit()
        started = loop.time()
        first: asyncio.Future[T] = asyncio.ensure_future(fn(*args, **kwargs))
        running = {first}
        launched = 1
        may_hedge = True
        error: BaseException | None = None
        try:
            while running:
                wait = self.delay() if may_hedge and launched < self.max_attempts else None
                done, _ = await asyncio.wait(
                    running, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # slow: hedge, if the budget allows
                    if self.budget is None or self.budget.try_withdraw():
                        self.hedged += 1
                        launched += 1
                        self.events.emit("attempt", "hedge", value=launched, seconds=wait)
                        running.add(asyncio.ensure_future(fn(*args, **kwargs)))
                    else:
                        may_hedge = False
                        self.events.emit("attempt", "budget_exhausted", value=launched + 1)
                    continue
                for task in done:
                    running.discard(task)
                    if task.cancelled():
                        error = asyncio.CancelledError()
                    elif task.exception() is not None:
                        error = task.exception()
                    else:
                        self._latencies.append(loop.time() - started)
                        if task is not first:
                            self.won_by_hedge += 1
                            self.events.emit("attempt", "hedge_won")
                        return task.result()
            assert error is not None
            raise error
        finally:
            for task in running:
                task.cancel()

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function."""
        return decorate(self.call, fn)
