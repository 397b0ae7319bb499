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

Strategy ``queue`` keeps taking orders while payments is slow or down: a checkout whose
payment fails fast (the breaker open, the deadline passed, payments erroring) is put on
an ``Offload`` queue with the order's id as its idempotency key and answered ``202``
(``{"status": "pending", "job_id": ...}``); a worker in the shop pays it later, retrying
with backoff within a retry budget, and payments charges an order once whatever the
number of tries (it honours the key). ``GET /jobs/stats`` tells the queue's figures
(jobs queued, done, pending, their latency from enqueue to paid, the deepest backlog),
and ``/metrics`` carries the queue's gauges. The
queue is in the shop's memory (the demo needs nothing installed); a service would give
``Offload`` a ``RedisStreamQueue`` or a ``RabbitQueue``.

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
    Event,
    Job,
    MemoryQueue,
    Offload,
    OffloadWorker,
    Retry,
    RetryBudget,
    deadline,
    headers,
)
from redline.resilience.prometheus import PrometheusMetrics

from ._client import JsonClient, UpstreamError

__all__ = ["STRATEGIES", "Payments", "Shop", "shop_app"]

STRATEGIES = ("cache", "breaker", "deadline", "limiter", "queue")
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
        self.offload = Offload(MemoryQueue("payments"), key_ttl_s=3600)
        self.offload.events.subscribe(self._job_event)
        self.worker: OffloadWorker | None = None
        self.job_latency_s: list[float] = []
        self.queued = 0
        self.deepest = 0

    def _job_event(self, event: Event) -> None:
        if event.type == "job" and event.seconds is not None:
            self.job_latency_s.append(event.seconds)
        elif event.type == "queue" and event.outcome == "depth" and event.value is not None:
            self.deepest = max(self.deepest, int(event.value))

    async def _pay_later(self, job: Job) -> None:
        """The queue's worker: pay with the order's key (payments charges it once)."""
        await self.payments.post("/pay", job.payload, {**headers(), "Idempotency-Key": job.key})

    async def enqueue_payment(self, order: dict[str, Any]) -> str:
        """Queue the order's payment (once per order id); its job id."""
        if self.worker is None:
            self.worker = self.offload.worker(
                self._pay_later, concurrency=8, visibility_timeout_s=10.0, poll_s=0.05,
                stats_interval_s=0.25,
                # the breaker keeps retries off a payments that is down (they fail at
                # once, and wait out its open time); the budget caps their rate
                retry=Retry(attempts=100, base_s=0.2, max_s=2.0,
                            budget=RetryBudget(ratio=1.0, floor_per_s=100)),
            )  # fmt: skip
            await self.worker.start()
        self.queued += 1
        key = str(order.get("order") or "")
        return await self.offload.enqueue(order, key=key or None)

    async def job_stats(self) -> dict[str, Any]:
        """The queue's figures for ``GET /jobs/stats``."""
        stats = await self.offload.stats()
        self.deepest = max(self.deepest, stats.depth)
        done = sorted(self.job_latency_s)

        def at(share: float) -> float | None:
            return (
                round(done[min(len(done) - 1, int(share * len(done)))] * 1000, 1) if done else None
            )

        return {"queued": self.queued, "completed": len(done), "pending": stats.depth,
                "dead_letters": stats.dead_letters, "deepest": self.deepest,
                "p50_ms": at(0.5), "p99_ms": at(0.99),
                "max_ms": round(done[-1] * 1000, 1) if done else None}  # fmt: skip

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
        key = {"Idempotency-Key": str(order["order"])} if order.get("order") else {}

        async def call() -> Any:
            return await self.payments.post("/pay", order, {**headers(), **trace_headers(), **key})

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
            except _PAYMENT_FAILED as exc:
                if "queue" in self.strategies and isinstance(order, dict):
                    job_id = await self.enqueue_payment(order)  # taken now, paid later
                    await _respond(send, 202, {"status": "pending", "job_id": job_id})
                elif isinstance(exc, CircuitOpenError):
                    await _respond(send, 503, {"error": "payments unavailable: try again later"})
                elif isinstance(exc, DeadlineExceededError | TimeoutError):
                    await _respond(send, 504, {"error": "payments too slow"})
                else:
                    await _respond(send, 502, {"error": f"payments failed: {exc}"})
            else:
                await _respond(send, 200, {"receipt": receipt})
        elif path == "/jobs/stats" and method == "GET":
            await _respond(send, 200, await self.job_stats())
        else:
            await _respond(send, 404, {"error": "not found"})


_PAYMENT_FAILED = (
    CircuitOpenError, DeadlineExceededError, TimeoutError, UpstreamError, OSError,
    asyncio.IncompleteReadError, ValueError,
)  # fmt: skip


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
    if "queue" in shop.strategies:  # the queue's depth, lag and job latency
        PrometheusMetrics(metrics.registry).watch(shop.offload)
    return metrics


class Payments:
    """The payments service: ``POST /pay`` answers after 5 ms.

    A payment with an ``Idempotency-Key`` already paid answers the first receipt again
    and charges nothing (as payment providers do).
    """

    def __init__(self, latency_s: float = 0.005) -> None:
        """Answer after ``latency_s``."""
        self.latency_s = latency_s
        self.paid = 0
        self.receipts: dict[str, dict[str, Any]] = {}

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
            key = dict(scope.get("headers") or []).get(b"idempotency-key", b"").decode()
            receipt = self.receipts.get(key) if key else None
            if receipt is None:
                self.paid += 1
                receipt = {"status": "paid", "order": order, "n": self.paid}
                if key:
                    self.receipts[key] = receipt
            await _respond(send, 200, receipt)
        elif scope["path"] == "/health":
            await _respond(send, 200, {"status": "ok", "paid": self.paid})
        else:
            await _respond(send, 404, {"error": "not found"})
