"""Load shedding by queue delay: CoDel's control law with adaptive LIFO and priorities.

Calls beyond ``max_concurrent`` wait in a queue. CoDel watches how long they wait: when
the wait has stayed above ``target_s`` for a whole ``interval_s``, the queue is standing,
not bursting, and the shedder switches to overload mode until the queue drains: waiters
then get ``target_s`` (not ``interval_s``) before being shed, and the newest waiter is
served first (adaptive LIFO: the oldest have most likely been given up on by their
clients already). Higher ``priority`` waiters are always served first and shed last.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from ._errors import ResilienceError
from ._events import Events

__all__ = [
    "LoadShedder",
    "Shed",
    "ShedError",
    "ShedderStatistics",
]

P = ParamSpec("P")
T = TypeVar("T")


class ShedError(ResilienceError):
    """The call waited in the queue past its allowance (or the queue was full)."""


Shed = ShedError
"""The old name of :class:`ShedError`, kept as an alias."""


@dataclass(frozen=True)
class ShedderStatistics:
    """What a :class:`LoadShedder` holds and has done, at one moment."""

    in_flight: int
    queued: int
    shed: int
    overloaded: bool


@dataclass
class _Waiter:
    priority: int
    order: int
    enqueued: float
    ready: asyncio.Future[None] = field(repr=False)


class LoadShedder:
    """CoDel-controlled admission with adaptive LIFO and priorities (see the module)."""

    def __init__(
        self,
        max_concurrent: int,
        *,
        target_s: float = 0.005,
        interval_s: float = 0.1,
        max_queue: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        name: str = "load_shedder",
    ) -> None:
        """Configure.

        Raises:
            ValueError: fewer than one place.
        """
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.target_s = target_s
        self.interval_s = interval_s
        self.max_queue = max_queue
        self.clock = clock
        self.in_flight = 0
        self.overloaded = False
        self.shed = 0
        self._waiting: list[_Waiter] = []
        self._first_above: float | None = None
        self._order = itertools.count()
        self.name = name
        self.events = Events("load_shedder", name)

    def statistics(self) -> ShedderStatistics:
        """A frozen snapshot: calls in flight and queued, how many were shed, overload."""
        return ShedderStatistics(self.in_flight, len(self._waiting), self.shed, self.overloaded)

    def _overloaded(self, overloaded: bool) -> None:
        if overloaded != self.overloaded:
            self.overloaded = overloaded
            states = ("normal", "overloaded") if overloaded else ("overloaded", "normal")
            self.events.emit("state", states[1], previous=states[0])

    def _shed(self, reason: str) -> ShedError:
        self.shed += 1
        self.events.emit("rejection", "shed")
        return ShedError(reason)

    def _observe(self, sojourn: float) -> None:
        """CoDel: overloaded once the wait has stayed above target for an interval."""
        now = self.clock()
        if sojourn < self.target_s:
            self._first_above = None
            self._overloaded(False)
        elif self._first_above is None:
            self._first_above = now + self.interval_s
        elif now >= self._first_above:
            self._overloaded(True)

    def _next(self) -> _Waiter:
        top = max(w.priority for w in self._waiting)
        candidates = [w for w in self._waiting if w.priority == top]
        chosen = (
            max(candidates, key=lambda w: w.order)  # LIFO under overload
            if self.overloaded
            else min(candidates, key=lambda w: w.order)
        )
        self._waiting.remove(chosen)
        return chosen

    def _release(self) -> None:
        while self._waiting:
            waiter = self._next()
            if waiter.ready.done():  # it gave up meanwhile
                continue
            self._observe(self.clock() - waiter.enqueued)
            waiter.ready.set_result(None)
            return  # its place passes to it directly
        self.in_flight -= 1
        self._first_above = None
        self._overloaded(False)  # the queue drained

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` once admitted, at priority 0.

        Raises:
            ShedError: waited too long, or the queue was full.
        """
        return await self.call_at(0, fn, *args, **kwargs)

    async def call_at(
        self, priority: int, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn`` once admitted; a higher ``priority`` is served first and shed last.

        Raises:
            ShedError: waited too long, or the queue was full.
        """
        if self.in_flight < self.max_concurrent and not self._waiting:
            self.in_flight += 1
        else:
            await self._wait(priority)
        try:
            return await fn(*args, **kwargs)
        finally:
            self._release()

    async def _wait(self, priority: int) -> None:
        if len(self._waiting) >= self.max_queue:
            lowest = min(self._waiting, key=lambda w: (w.priority, -w.order))
            if lowest.priority >= priority:
                raise self._shed("the queue is full")
            self._waiting.remove(lowest)  # make room: shed a lower priority instead
            lowest.ready.set_exception(self._shed("shed for a higher priority"))
        waiter = _Waiter(priority, next(self._order), self.clock(),
                         asyncio.get_running_loop().create_future())  # fmt: skip
        self._waiting.append(waiter)
        allowance = self.target_s if self.overloaded else self.interval_s
        try:
            await asyncio.wait_for(asyncio.shield(waiter.ready), allowance)
        except TimeoutError:
            if waiter.ready.done() and waiter.ready.exception() is None:
                return  # admitted at the last moment
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            raise self._shed(f"waited {allowance * 1000:.0f} ms in the queue") from None
