"""Two routes of one service under contention, with admission priorities in front.

``/checkout`` (sent with ``x-priority: high``) and ``/browse`` (``x-priority: low``) share
``capacity`` workers; each request holds one for ``work_ms``. The kit's
``AdmissionMiddleware`` with a ``LoadShedder`` admits at most ``capacity`` at a time and
queues the rest, high priority first; when the queue stands (CoDel), the lowest-priority
waiters are shed with 503. ``capacity contend --measure`` drives it above its capacity to
show, measured, what the fleet simulation models: the high-priority route keeps its
latency while the low-priority one is shed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from redline.resilience import AdmissionMiddleware, LoadShedder

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["PRIORITIES", "priority_app"]

PRIORITIES = {"high": 10, "low": 0}
"""The partitions' priorities (the ``x-priority`` header's values)."""


def priority_app(*, capacity: int = 8, work_ms: float = 20.0) -> AdmissionMiddleware:
    """The service (see the module): about ``capacity / work_ms`` requests a millisecond."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        status, body = (200, b"ok\n")
        if scope["path"] not in ("/checkout", "/browse"):
            status, body = 404, b"not found\n"
        else:
            await asyncio.sleep(work_ms / 1000)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    shedder = LoadShedder(capacity, target_s=0.005, interval_s=0.1, max_queue=4 * capacity)
    return AdmissionMiddleware(app, shedder=shedder, priorities=PRIORITIES, retry_after_s=1.0)
