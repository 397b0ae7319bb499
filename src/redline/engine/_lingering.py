"""Work a scenario set off that outlives its iteration, and that the run should wait for.

A job a scenario enqueued finishes after the iteration that made it; the run's last
interval should still see it. :func:`at_drain` registers a coroutine function that the
worker awaits at the end of the load, after the iterations have drained and within what
is left of the same grace period, before it takes its last interval. Each worker process
keeps its own list (a scenario module is imported in each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["at_drain", "settle_lingering"]

_DRAINS: list[Callable[[], Awaitable[None]]] = []


def at_drain(settle: Callable[[], Awaitable[None]]) -> None:
    """Have this worker await ``settle()`` at the end of the load (once per function)."""
    if settle not in _DRAINS:
        _DRAINS.append(settle)


async def settle_lingering(deadline: float) -> None:
    """Await every registered ``settle()`` until ``deadline`` (``time.monotonic()``)."""
    drains, _DRAINS[:] = list(_DRAINS), []
    for settle in drains:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            try:
                await asyncio.wait_for(settle(), left)
            except Exception:
                logging.getLogger("redline").exception("lingering work failed to settle")
