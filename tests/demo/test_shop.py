"""The demo's shop and payments, served by uvicorn on loopback, strategies on and off."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from redline.demo import STRATEGIES, Payments, Shop, generate, shop_app

Serve = Callable[..., str]  # the serve fixture (tests/conftest.py)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    generate(path, products=300, reviews_each=5)
    return path


def get(url: str, path: str, count: int = 1, method: str = "GET", body: Any = None
        ) -> list[httpx.Response]:  # fmt: skip
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return list(await asyncio.gather(*(client.request(method, path, json=body)
                                               for _ in range(count))))  # fmt: skip

    return asyncio.run(main())


def test_the_data_is_generated_as_asked(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM products").fetchone() == (300,)
        assert connection.execute("SELECT count(*) FROM reviews").fetchone() == (1500,)


def test_products_search_and_health(serve: Serve, db: Path) -> None:
    payments = serve(Payments(), "on")
    url = serve(Shop(db, payments), "on")
    [product] = get(url, "/products/7")
    assert product.status_code == 200
    assert product.json()["id"] == 7
    assert len(product.json()["reviews"]) == 5
    assert get(url, "/products/99999")[0].status_code == 404
    assert get(url, "/products/x")[0].status_code == 400
    [found] = get(url, "/search?q=walnut")
    assert len(found.json()["results"]) == 10
    assert all("walnut" in name for name in found.json()["results"][:3])
    assert get(url, "/health")[0].json() == {"status": "ok"}


def test_the_cache_turns_n_plus_one_into_one_load(serve: Serve, db: Path) -> None:
    shop = Shop(db, serve(Payments(), "on"), strategies=["cache"])
    queries: list[str] = []
    original = shop._query

    async def counted(sql: str, *params: object) -> list[tuple[Any, ...]]:
        queries.append(sql)
        return await original(sql, *params)

    shop._query = counted  # type: ignore[method-assign]
    url = serve(shop, "on")
    responses = get(url, "/products/3", count=20)
    assert {r.status_code for r in responses} == {200}
    assert len(queries) == 2 + 5  # one load, for twenty requests: product, ids, 5 reviews
    assert shop.cache.stats.loads == 1


def test_checkout_pays_through_payments(serve: Serve, db: Path) -> None:
    payments = Payments()
    url = serve(Shop(db, serve(payments, "on"), strategies=["breaker", "deadline"]), "on")
    [paid] = get(url, "/checkout", method="POST", body={"product": 7, "qty": 2})
    assert paid.status_code == 200
    assert paid.json()["receipt"]["order"] == {"product": 7, "qty": 2}
    assert payments.paid == 1


def test_a_slow_payments_ties_up_an_unprotected_shop_but_not_a_protected_one(
    serve: Serve, db: Path
) -> None:
    """The cascade: checkouts hold every worker while payments crawls; health waits."""
    slow = Payments(latency_s=1.5)
    payments = serve(slow, "on")

    def health_during_checkouts(strategies: list[str]) -> tuple[set[int], float]:
        url = serve(Shop(db, payments, strategies=strategies, workers=4), "on")

        async def main() -> tuple[set[int], float]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                checkouts = [asyncio.ensure_future(client.post("/checkout", json={}))
                             for _ in range(4)]  # fmt: skip
                await asyncio.sleep(0.2)
                loop = asyncio.get_running_loop()
                started = loop.time()
                await client.get("/health")
                waited = loop.time() - started
                done = await asyncio.gather(*checkouts)
            return {r.status_code for r in done}, waited

        return asyncio.run(main())

    statuses, waited_unprotected = health_during_checkouts([])
    assert statuses == {200}  # slowly, but paid
    protected_statuses, waited_protected = health_during_checkouts(["deadline", "breaker"])
    assert protected_statuses == {504}  # given up after the deadline
    # unprotected, health queued behind four checkouts holding every worker until payments
    # answered (1.5 s after they began); protected, the workers came back at the deadline
    assert waited_unprotected >= 1.0
    assert waited_protected < 1.0


def test_the_limiter_refuses_what_is_over_its_limit(serve: Serve, db: Path) -> None:
    shop = Shop(db, serve(Payments(), "on"), strategies=["limiter"], workers=64)
    url = serve(shop_app(shop), "on")

    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            # N+1 reads wait on the database: many are in flight at once
            responses = await asyncio.gather(*(client.get(f"/products/{i % 50 + 1}")
                                               for i in range(300)))  # fmt: skip
        return [r.status_code for r in responses]

    statuses = asyncio.run(main())
    assert set(statuses) <= {200, 503}
    assert 503 in statuses  # more in flight than the limit: refused at once
    assert statuses.count(200) >= 12  # the limit's minimum is always admitted


def test_unknown_strategies_are_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="unknown strategies"):
        Shop(db, "http://127.0.0.1:1", strategies=["cache", "magic"])
    assert set(STRATEGIES) == {"cache", "breaker", "deadline", "limiter", "queue"}


class FlakyPayments(Payments):
    """Payments that answer 503 while ``down``."""

    def __init__(self, latency_s: float = 0.005) -> None:
        super().__init__(latency_s)
        self.down = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/pay" and self.down:
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-length", b"4")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b"down"})
            return
        await super().__call__(scope, receive, send)


def test_the_queue_keeps_taking_orders_while_payments_is_down(serve: Serve, db: Path) -> None:
    payments = FlakyPayments()
    shop = Shop(db, serve(payments, "on"), strategies=["breaker", "deadline", "queue"])
    url = serve(shop, "on")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post("/checkout", json={"order": f"o{n}"}) for n in range(20))
            )
            assert {a.status_code for a in answers} == {202}  # taken, to be paid later
            assert all(a.json()["status"] == "pending" for a in answers)
            stats = (await client.get("/jobs/stats")).json()
            assert stats["queued"] == 20
            assert stats["completed"] == 0
            assert payments.paid == 0
            payments.down = False  # payments is back: the backlog drains
            for _ in range(300):
                stats = (await client.get("/jobs/stats")).json()
                if stats["pending"] == 0:
                    break
                await asyncio.sleep(0.05)
            assert stats["completed"] == 20
            assert stats["pending"] == 0
            assert stats["dead_letters"] == 0
            assert stats["deepest"] >= 1
            assert stats["p99_ms"] >= stats["p50_ms"] > 0
            # the same order again is not a second job, and nothing was charged twice
            again = await client.post("/checkout", json={"order": "o3"})
            if again.status_code == 202:  # the breaker still open: the same job, by its key
                assert again.json()["job_id"] == answers[3].json()["job_id"]
            else:  # paid at once: payments answers the first receipt again
                assert again.status_code == 200
                assert again.json()["receipt"]["order"] == {"order": "o3"}
        assert payments.paid == 20

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_payment_given_up_on_and_queued_is_charged_once(serve: Serve, db: Path) -> None:
    # payments is slower than the deadline: the shop gives up and queues the order, but
    # payments still charges the first try; the queued try carries the same key
    slow = Payments(latency_s=0.5)
    shop = Shop(db, serve(slow, "on"), strategies=["deadline", "queue"])
    url = serve(shop, "on")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post("/checkout", json={"order": f"s{n}"}) for n in range(5))
            )
            assert {a.status_code for a in answers} == {202}
            for _ in range(200):
                if (await client.get("/jobs/stats")).json()["completed"] == 5:
                    break
                await asyncio.sleep(0.05)
        assert slow.paid == 5
        assert len(slow.receipts) == 5

    asyncio.run(asyncio.wait_for(main(), 60))
