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
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from contextvars import ContextVar
from typing import TypeVar

__all__ = [
    "DEADLINE_HEADER",
    "DeadlineExceeded",
    "deadline",
    "deadline_from_headers",
    "headers",
    "remaining",
    "within_deadline",
]

DEADLINE_HEADER = "X-Request-Deadline-Ms"
T = TypeVar("T")

_DEADLINE: ContextVar[float | None] = ContextVar("redline_deadline", default=None)


class DeadlineExceeded(TimeoutError):  # noqa: N818 - what happened, as asyncio's
    """The pipeline's deadline passed."""


def remaining() -> float | None:
    """Seconds left before the current deadline (None without one; never below 0)."""
    at = _DEADLINE.get()
    return None if at is None else max(at - time.monotonic(), 0.0)


@contextlib.contextmanager
def _set(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    at = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(at if outer is None else min(at, outer))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextlib.asynccontextmanager
async def deadline(seconds: float | None) -> AsyncIterator[None]:
    """Give the block (and everything it awaits) ``seconds`` at most.

    Raises:
        DeadlineExceeded: the deadline (this one, or an outer, shorter one) passed.
    """
    with _set(seconds):
        left = remaining()
        try:
            async with asyncio.timeout(left):
                yield
        except TimeoutError as exc:
            if isinstance(exc, DeadlineExceeded):
                raise
            raise DeadlineExceeded(f"deadline of {seconds}s passed") from None


async def within_deadline(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` within the current deadline (as is, without one)."""
    left = remaining()
    if left is None:
        return await awaitable
    try:
        async with asyncio.timeout(left):
            return await awaitable
    except TimeoutError:
        raise DeadlineExceeded("the pipeline's deadline passed") from None


def headers() -> dict[str, str]:
    """The header that carries the time left to a downstream (empty without a deadline)."""
    left = remaining()
    return {} if left is None else {DEADLINE_HEADER: str(int(left * 1000))}


def deadline_from_headers(
    incoming: Mapping[str, str], *, default: float | None = None
) -> contextlib.AbstractAsyncContextManager[None]:
    """A deadline from an incoming request's header (``default`` seconds without one)."""
    lowered = {k.lower(): v for k, v in incoming.items()}
    value = lowered.get(DEADLINE_HEADER.lower())
    try:
        seconds = int(value) / 1000 if value is not None else default
    except ValueError:
        seconds = default
    return deadline(seconds)
