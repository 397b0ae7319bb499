"""The demo's shop and its payments service: small, real, with real bottlenecks.

The shop (an ASGI app) has a fixed pool of workers, as a service on a thread pool does:
each request holds one for as long as it runs.

- ``GET /products/{id}``: the product and its reviews, read the slow way: one query for
  the product, one for the review ids, then one per review (N+1), each a round trip to
  the database (1 ms, as over a network). Strategy ``cache`` serves it from
  ``redline.cache`` instead (single flight, early refresh).
- ``GET /search?q=``: ranks every product name against the query: CPU.
- ``POST /checkout``: calls ``payments`` over HTTP. Without protection a slow or failing
  payments service holds the shop's workers for as long as it takes, and every endpoint
  queues behind them: a cascading failure. Strategies ``deadline`` (one deadline of
  300 ms for the call) and ``breaker`` (a circuit breaker around it) make checkout fail
  fast instead, and keep the workers for everything else.
- ``GET /health``.

Strategy ``limiter`` puts ``AdmissionMiddleware`` with an ``AdaptiveLimiter`` in front:
what is over the limit is refused at once with 503 instead of queueing.

The strategies are switched on by name; the code paths are the same.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Gauge

from redline.cache import Cache, LocalCache
from redline.observe import trace_headers
from redline.observe.asgi import RuntimeMetrics
from redline.resilience import (
    AdaptiveLimiter,
    AdmissionMiddleware,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    deadline,
    headers,
)

from ._client import JsonClient, UpstreamError

__all__ = ["STRATEGIES", "Payments", "Shop", "shop_app"]

STRATEGIES = ("cache", "breaker", "deadline", "limiter")
"""The strategies the demo shop can switch on, by name."""
DB_ROUND_TRIP_S = 0.001
PAYMENT_DEADLINE_S = 0.3

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _respond(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(
    receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]] | None
) -> None:
    """Answer the server's start and stop; close what the app holds on stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


class Shop:
    """The shop's endpoints (see the module); ``strategies`` switch the protections on."""

    def __init__(
        self,
        db_path: Path,
        payments_url: str,
        *,
        strategies: Iterable[str] = (),
        workers: int = 16,
    ) -> None:
        """Serve from ``db_path`` (made by ``generate``), paying through ``payments_url``.

        Raises:
            ValueError: an unknown strategy.
        """
        self.strategies = frozenset(strategies)
        unknown = self.strategies - set(STRATEGIES)
        if unknown:
            raise ValueError(f"unknown strategies {sorted(unknown)}: expected {STRATEGIES}")
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.names = [
            (row[0].lower(), row[0])
            for row in self.db.execute("SELECT name FROM products ORDER BY id")
        ]
        self.payments = JsonClient(payments_url)
        self.workers = asyncio.Semaphore(workers)
        self.pool_size = workers
        self.busy = 0  # workers held now
        self.waiting = 0  # requests waiting for one
        self.cache = Cache(LocalCache(10_000), ttl_s=30, stale_ttl_s=30)
        self.breaker = CircuitBreaker(
            name="payments", minimum_calls=5, failure_rate=0.5, open_wait_s=1.0,
            max_open_wait_s=2.0, half_open_calls=2,
        )  # fmt: skip

    async def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        await asyncio.sleep(DB_ROUND_TRIP_S)  # the network round trip of a real database
        return self.db.execute(sql, params).fetchall()

    async def product(self, product_id: int) -> dict[str, Any] | None:
        """The product and its reviews, the N+1 way."""
        rows = await self._query("SELECT id, name, price FROM products WHERE id = ?", product_id)
        if not rows:
            return None
        ids = await self._query("SELECT id FROM reviews WHERE product_id = ?", product_id)
        reviews = []
        for (review_id,) in ids:  # one query per review: N+1
            [(stars, body)] = await self._query(
                "SELECT stars, body FROM reviews WHERE id = ?", review_id
            )
            reviews.append({"stars": stars, "body": body})
        pid, name, price = rows[0]
        return {"id": pid, "name": name, "price": price, "reviews": reviews}

    def search(self, query: str) -> list[str]:
        """The ten product names most like ``query``: every name ranked (CPU, a few ms)."""
        matcher = difflib.SequenceMatcher(b=query.lower(), autojunk=False)
        rough = []
        for lowered, name in self.names:
            matcher.set_seq1(lowered)
            rough.append((matcher.quick_ratio(), lowered, name))
        rough.sort(reverse=True)
        exact = []
        for _, lowered, name in rough[:50]:  # the best candidates, ranked exactly
            matcher.set_seq1(lowered)
            exact.append((matcher.ratio(), name))
        exact.sort(reverse=True)
        return [name for _, name in exact[:10]]

    async def pay(self, order: dict[str, Any]) -> Any:
        """Charge through payments, under the switched-on strategies."""

        async def call() -> Any:
            return await self.payments.post("/pay", order, {**headers(), **trace_headers()})

        async def within() -> Any:
            if "deadline" in self.strategies:
                async with deadline(PAYMENT_DEADLINE_S):
                    return await call()
            return await call()

        if "breaker" in self.strategies:
            return await self.breaker.call(within)
        return await within()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request, holding one of the workers."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.payments.aclose)
            return
        if scope["type"] != "http":
            return
        self.waiting += 1
        try:
            await self.workers.acquire()
        finally:
            self.waiting -= 1
        self.busy += 1
        try:
            await self._route(scope, receive, send)
        finally:
            self.busy -= 1
            self.workers.release()

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/health":
            await _respond(send, 200, {"status": "ok"})
        elif path.startswith("/products/") and method == "GET":
            try:
                product_id = int(path.rsplit("/", 1)[1])
            except ValueError:
                await _respond(send, 400, {"error": "a product id is a number"})
                return
            if "cache" in self.strategies:
                found = await self.cache.get_or_load(
                    f"product:{product_id}", lambda: self.product(product_id)
                )
            else:
                found = await self.product(product_id)
            await _respond(send, 200 if found else 404, found or {"error": "no such product"})
        elif path == "/search" and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode()).get("q", [""])[0]
            await _respond(send, 200, {"results": self.search(query)})
        elif path == "/checkout" and method == "POST":
            try:
                order = json.loads(await _body(receive) or b"{}")
                receipt = await self.pay(order)
            except CircuitOpenError:
                await _respond(send, 503, {"error": "payments unavailable: try again later"})
            except (DeadlineExceededError, TimeoutError):
                await _respond(send, 504, {"error": "payments too slow"})
            except (UpstreamError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                await _respond(send, 502, {"error": f"payments failed: {exc}"})
            else:
                await _respond(send, 200, {"receipt": receipt})
        else:
            await _respond(send, 404, {"error": "not found"})


def shop_app(
    shop: Shop, *, otlp: str | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The shop as served, behind its runtime metrics (``/metrics``).

    Requests, loop lag, GC and its worker pool are measured; with ``limiter``, the
    admission middleware stands in front of the shop too.
    """
    app: Callable[[Scope, Receive, Send], Awaitable[None]] = shop
    if "limiter" in shop.strategies:
        limiter = AdaptiveLimiter(algorithm="gradient2", initial=32, minimum=12, maximum=128)
        app = AdmissionMiddleware(shop, limiter=limiter, retry_after_s=1)
    metrics = RuntimeMetrics(app, otlp=otlp, service="shop")
    # a pool's in-use count beside its size: what a watching run reads as the pool's use
    pool = {
        "shop_workers_in_use": ("workers held by requests", lambda: shop.busy),
        "shop_workers_size": ("the worker pool's size", lambda: shop.pool_size),
        "shop_workers_waiting": ("requests waiting for a worker", lambda: shop.waiting),
    }
    for name, (text, read) in pool.items():
        Gauge(name, text, registry=metrics.registry).set_function(read)
    return metrics


class Payments:
    """The payments service: ``POST /pay`` answers after 5 ms."""

    def __init__(self, latency_s: float = 0.005) -> None:
        """Answer after ``latency_s``."""
        self.latency_s = latency_s
        self.paid = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pay, or 404."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, None)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/pay" and scope["method"] == "POST":
            order = json.loads(await _body(receive) or b"{}")
            await asyncio.sleep(self.latency_s)
            self.paid += 1
            await _respond(send, 200, {"status": "paid", "order": order, "n": self.paid})
        elif scope["path"] == "/health":
            await _respond(send, 200, {"status": "ok"})
        else:
            await _respond(send, 404, {"error": "not found"})
