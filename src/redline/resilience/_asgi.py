"""ASGI middleware that applies server-side strategies before the app sees a request.

``AdaptiveLimitMiddleware(app, limiter)`` admits a request only under the adaptive limit
and answers the rest at once with 503 and ``Retry-After``: a service at its limit sheds
the excess in microseconds instead of queueing it until every request is late. The
partition of a request is read from a header (``X-Priority`` by default). A response of
503 or 504 from the app counts as a drop (the limit comes down).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._adaptive import AdaptiveLimiter

__all__ = ["AdaptiveLimitMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class AdaptiveLimitMiddleware:
    """Shed what is over the adaptive concurrency limit with 503 and Retry-After."""

    def __init__(
        self,
        app: App,
        limiter: AdaptiveLimiter,
        *,
        partition_header: str = "x-priority",
        retry_after_s: int = 1,
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self.limiter = limiter
        self.partition_header = partition_header.lower().encode("latin-1")
        self.retry_after = str(retry_after_s).encode()
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit, or answer 503 at once."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        partition = ""
        for name, value in scope.get("headers", ()):
            if name == self.partition_header:
                partition = value.decode("latin-1")
                break
        permit = self.limiter.try_acquire(partition)
        if permit is None:
            self.shed += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"retry-after", self.retry_after),
                        (b"content-type", b"text/plain"),
                        (b"content-length", b"11"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"overloaded\n"})
            return
        status = 500

        async def tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except BaseException:
            self.limiter.release(permit, ignore=True)
            raise
        self.limiter.release(permit, dropped=status in (503, 504))
