"""ASGI middleware that applies server-side strategies before the app sees a request.

``AdmissionMiddleware(app, rate_limiter=..., limiter=..., shedder=...)`` admits a request
in three steps, each optional, and answers the rest at once so that a service at its
limit refuses the excess in microseconds instead of queueing it until every request is
late:

1. **rate limit by key** (a :class:`RateLimiter`, or a ``RedisRateLimiter`` for a fleet):
   a key over its rate gets 429 with ``Retry-After``; the key is the client's address by
   default, or any function of the ASGI scope (``header_key("x-api-key")``);
2. **adaptive concurrency limit** (an :class:`AdaptiveLimiter`): over the limit, 503 with
   ``Retry-After``; the partition is the priority header's value (``X-Priority``); a 503
   or 504 from the app counts as a drop (the limit comes down);
3. **load shedding** (a :class:`LoadShedder`): what waits too long in its queue gets 503;
   the priority header's value gives the priority (a number, or a name in
   ``priorities``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from ._adaptive import AdaptiveLimiter
from ._shedder import LoadShedder, ShedError

__all__ = ["AdmissionMiddleware", "KeyedLimiter", "client_key", "header_key"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeyedLimiter(Protocol):
    """A rate limiter by key: ``RateLimiter`` (in this process) or ``RedisRateLimiter``."""

    async def take(self, tokens: float = 1.0, key: str = "") -> float:
        """Take ``tokens`` from ``key``'s bucket: 0 when admitted, else the seconds to wait."""


def client_key(scope: Scope) -> str:
    """The client's address (the default key for rate limits)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def header_key(name: str) -> Callable[[Scope], str]:
    """A key read from a request header (an API key, a tenant): ``""`` without one."""
    wanted = name.lower().encode("latin-1")

    def key(scope: Scope) -> str:
        for header, value in scope.get("headers", ()):
            if header == wanted:
                return str(value.decode("latin-1"))
        return ""

    return key


async def _refuse(send: Send, status: int, retry_after: float, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"retry-after", str(max(1, math.ceil(retry_after))).encode()),
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    """Rate limit by key, adaptive limit and load shedding in front of an ASGI app."""

    def __init__(
        self,
        app: App,
        *,
        rate_limiter: KeyedLimiter | None = None,
        key: Callable[[Scope], str] = client_key,
        limiter: AdaptiveLimiter | None = None,
        shedder: LoadShedder | None = None,
        priority_header: str = "x-priority",
        priorities: Mapping[str, int] | None = None,
        retry_after_s: float = 1.0,
    ) -> None:
        """Wrap ``app``; each strategy left out is a step skipped."""
        self.app = app
        self.rate_limiter = rate_limiter
        self.key = key
        self.limiter = limiter
        self.shedder = shedder
        self.priority_header = priority_header.lower().encode("latin-1")
        self.priorities = dict(priorities or {})
        self.retry_after_s = retry_after_s
        self.rate_limited = 0
        self.shed = 0

    def _partition(self, scope: Scope) -> str:
        for name, value in scope.get("headers", ()):
            if name == self.priority_header:
                return str(value.decode("latin-1"))
        return ""

    def _priority(self, partition: str) -> int:
        if partition in self.priorities:
            return self.priorities[partition]
        try:
            return int(partition)
        except ValueError:
            return 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit, or answer 429 or 503 at once."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if self.rate_limiter is not None:
            wait = await self.rate_limiter.take(1.0, self.key(scope))
            if wait > 0:
                self.rate_limited += 1
                await _refuse(send, 429, wait, b"too many requests\n")
                return
        partition = self._partition(scope)
        if self.shedder is None:
            await self._limited(partition, scope, receive, send)
            return
        try:
            await self.shedder.call_at(
                self._priority(partition), self._limited, partition, scope, receive, send
            )
        except ShedError:  # raised only before the app was called: nothing was sent yet
            self.shed += 1
            await _refuse(send, 503, self.retry_after_s, b"overloaded\n")

    async def _limited(self, partition: str, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter
        if limiter is None:
            await self.app(scope, receive, send)
            return
        permit = limiter.try_acquire(partition)
        if permit is None:
            self.shed += 1
            await _refuse(send, 503, self.retry_after_s, b"overloaded\n")
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
            limiter.release(permit, ignore=True)
            raise
        limiter.release(permit, dropped=status in (503, 504))
