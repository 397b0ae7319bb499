"""An httpx transport that applies the client-side strategies to every request.

    import httpx
    from redline.resilience import CircuitBreaker, Hedge, RetryBudget
    from redline.resilience.httpx import ResilientTransport

    budget = RetryBudget()                    # one per downstream
    transport = ResilientTransport(
        timeout_s=2.0,                        # a deadline for the request, retries included
        attempts=3, budget=budget,            # retries of idempotent requests, in the budget
        breaker=lambda host: CircuitBreaker(name=host),   # one breaker per host
        hedge=Hedge(percentile=95, budget=budget),   # idempotent requests only
    )
    async with httpx.AsyncClient(transport=transport) as client:
        ...

For each request, outermost first: the **deadline** (``timeout_s``, or the caller's own
``deadline()``, whichever ends first; each attempt carries what is left in
``X-Request-Deadline-Ms``; running out raises :class:`DeadlineTimeout`, an
``httpx.TimeoutException``); **retries** with full-jitter backoff within the retry budget,
of idempotent requests only, on a transport error or a 429, 502, 503 or 504, honouring
``Retry-After`` (when they run out, the last response is returned as it came); the
**hedge** (idempotent requests only); the **breaker** of the request's host (a 5xx or a
transport error is a failure; an open breaker raises ``CircuitOpenError`` without a request
being sent).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import httpx

from ._breaker import CircuitBreaker
from ._deadline import DEADLINE_HEADER, DeadlineExceededError, deadline, remaining
from ._hedge import Hedge
from ._retry import AdaptiveThrottle, Retry, RetryBudget

__all__ = ["IDEMPOTENT", "RETRY_STATUSES", "DeadlineTimeout", "ResilientTransport"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class DeadlineTimeout(httpx.TimeoutException):
    """The request's deadline passed (an httpx timeout, so httpx callers catch it as one)."""


class RetryableResponse(Exception):  # noqa: N818 - it carries a response, not a failure
    """An answer worth retrying (the retry reads its ``Retry-After`` from ``response``)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _ServerError(Exception):
    """A 5xx, raised through the breaker so that it counts as a failure."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class ResilientTransport(httpx.AsyncBaseTransport):
    """Deadline, retries within a budget, hedging and per-host breakers (see the module)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout_s: float | None = None,
        attempts: int = 1,
        budget: RetryBudget | None = None,
        throttle: AdaptiveThrottle | None = None,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        breaker: CircuitBreaker | Callable[[str], CircuitBreaker] | None = None,
        hedge: Hedge | None = None,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        idempotent: Collection[str] = IDEMPOTENT,
        name: str = "http",
    ) -> None:
        """Wrap ``transport`` (httpx's own by default)."""
        self.transport = transport or httpx.AsyncHTTPTransport()
        self.timeout_s = timeout_s
        self.retry = Retry(
            name=name, attempts=attempts, base_s=backoff_s, max_s=max_backoff_s, budget=budget,
            throttle=throttle, retry_on=(RetryableResponse, httpx.TransportError),
        )  # fmt: skip
        self.hedge = hedge
        self.retry_statuses = frozenset(retry_statuses)
        self.idempotent = frozenset(m.upper() for m in idempotent)
        self._breaker = breaker
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker_for(self, url: httpx.URL) -> CircuitBreaker | None:
        """The breaker of ``url``'s host (one breaker for all when one was given)."""
        if self._breaker is None or isinstance(self._breaker, CircuitBreaker):
            return self._breaker
        host = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
        breaker = self.breakers.get(host)
        if breaker is None:
            breaker = self.breakers[host] = self._breaker(host)
        return breaker

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` under the strategies.

        Raises:
            DeadlineTimeout: the deadline passed; ``CircuitOpenError``: the host's breaker
                refused; ``ThrottledError``: the adaptive throttle refused; otherwise httpx's
                transport errors, once retries are spent.
        """
        idempotent = request.method.upper() in self.idempotent
        try:
            async with deadline(self.timeout_s):
                if not idempotent:
                    return await self._attempt(request, idempotent=False)
                await request.aread()  # a body sent again on a retry or a hedge
                return await self.retry.call(self._hedged, request)
        except RetryableResponse as exc:  # retries spent: the last answer, as it came
            return exc.response
        except DeadlineExceededError as exc:
            raise DeadlineTimeout(str(exc), request=request) from exc

    async def _hedged(self, request: httpx.Request) -> httpx.Response:
        if self.hedge is None:
            return await self._attempt(request, idempotent=True)
        return await self.hedge.call(self._attempt, request, idempotent=True)

    async def _attempt(self, request: httpx.Request, *, idempotent: bool) -> httpx.Response:
        breaker = self.breaker_for(request.url)
        try:
            if breaker is None:
                response = await self._send(request)
            else:
                response = await breaker.call(self._send, request)
        except _ServerError as exc:
            response = exc.response
        if idempotent and response.status_code in self.retry_statuses:
            await response.aread()
            raise RetryableResponse(response)
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        left = remaining()
        if left is not None:  # what is left of the deadline, for the downstream's own
            request.headers[DEADLINE_HEADER] = str(int(left * 1000))
        response = await self.transport.handle_async_request(request)
        if response.status_code >= 500:
            await response.aread()
            raise _ServerError(response)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.transport.aclose()
