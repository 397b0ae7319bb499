"""One deadline for a whole pipeline, carried by a contextvar and an outgoing header.

    async with deadline(2.0):                 # the whole request has 2 s
        user = await fetch_user()             # each step sees what is left,
        await charge(user, timeout=remaining())   # not a fresh timeout of its own

A nested deadline can only shorten the one around it. ``DEADLINE_HEADER`` carries the
milliseconds left to a downstream (``headers()``), which starts its own deadline from it
(``deadline_from_headers``), so the whole chain gives up together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TypeVar

from ._errors import ResilienceError

__all__ = [
    "DEADLINE_HEADER",
    "DeadlineExceeded",
    "DeadlineExceededError",
    "deadline",
    "deadline_from_headers",
    "headers",
    "remaining",
    "within_deadline",
]

DEADLINE_HEADER = "X-Request-Deadline-Ms"
"""The header that carries the time left to a downstream service, in milliseconds."""
T = TypeVar("T")

_DEADLINE: ContextVar[float | None] = ContextVar("redline_deadline", default=None)


class DeadlineExceededError(ResilienceError, TimeoutError):
    """The pipeline's deadline passed."""


DeadlineExceeded = DeadlineExceededError
"""The old name of :class:`DeadlineExceededError`, kept as an alias."""


def remaining() -> float | None:
    """Seconds left before the current deadline (None without one; never below 0)."""
    at = _DEADLINE.get()
    return None if at is None else max(at - time.monotonic(), 0.0)


class deadline:  # noqa: N801 - used as a function: ``async with deadline(2.0):``
    """Give the block (and everything it awaits) ``seconds`` at most.

    One timer on the event loop cancels the task when the time is up (as
    ``asyncio.timeout`` does, with less bookkeeping: this runs on every call of a
    pipeline); the cancellation comes out as :class:`DeadlineExceededError`.

    Raises:
        DeadlineExceededError: the deadline (this one, or an outer, shorter one) passed.
    """

    __slots__ = ("_cancelling", "_expired", "_handle", "_task", "_token", "seconds")

    def __init__(self, seconds: float | None) -> None:
        """A deadline ``seconds`` from when the block is entered (None: the outer one)."""
        self.seconds = seconds
        self._token: Token[float | None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    async def __aenter__(self) -> None:
        outer = _DEADLINE.get()
        at = outer
        now = time.monotonic()
        if self.seconds is not None:
            at = now + self.seconds if outer is None else min(now + self.seconds, outer)
            self._token = _DEADLINE.set(at)
        if at is None:
            return
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs to run in an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        loop = asyncio.get_running_loop()
        # the deadline on the monotonic clock, as the loop's clock
        self._handle = loop.call_at(loop.time() + (at - now), self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._handle = None
        assert self._task is not None
        self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _DEADLINE.reset(self._token)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired:
            assert self._task is not None
            # ours to turn into DeadlineExceededError, unless someone else cancelled too
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise DeadlineExceededError(f"the deadline of {self.seconds}s passed") from exc


async def within_deadline(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` within the current deadline (as is, without one)."""
    left = remaining()
    if left is None:
        return await awaitable
    try:
        async with asyncio.timeout(left):
            return await awaitable
    except TimeoutError:
        raise DeadlineExceededError("the pipeline's deadline passed") from None


def headers() -> dict[str, str]:
    """The header that carries the time left to a downstream (empty without a deadline)."""
    left = remaining()
    return {} if left is None else {DEADLINE_HEADER: str(int(left * 1000))}


def deadline_from_headers(incoming: Mapping[str, str], *, default: float | None = None) -> deadline:
    """A deadline from an incoming request's header (``default`` seconds without one)."""
    lowered = {k.lower(): v for k, v in incoming.items()}
    value = lowered.get(DEADLINE_HEADER.lower())
    try:
        seconds = int(value) / 1000 if value is not None else default
    except ValueError:
        seconds = default
    return deadline(seconds)
