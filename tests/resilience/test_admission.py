"""The admission middleware in front of a real app served by uvicorn, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from redline.resilience import (
    AdaptiveLimiter,
    AdmissionMiddleware,
    LoadShedder,
    RateLimiter,
    ShedderStatistics,
    header_key,
)
from redline.resilience.redis import RedisRateLimiter

Serve = Callable[[Any], str]  # the serve fixture (conftest.py)


def slow_app(seconds: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def statuses(url: str, count: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            return list(await asyncio.gather(*(client.get("/", headers=headers)
                                               for _ in range(count))))  # fmt: skip

    return asyncio.run(main())


def test_rate_limits_by_key_with_429_and_retry_after(serve: Serve) -> None:
    limiter = RateLimiter(0.5, burst=2)
    app = AdmissionMiddleware(slow_app(0), rate_limiter=limiter, key=header_key("x-api-key"))
    url = serve(app)
    alice = statuses(url, 3, {"x-api-key": "alice"})
    assert sorted(r.status_code for r in alice) == [200, 200, 429]
    [refused] = [r for r in alice if r.status_code == 429]
    assert refused.headers["retry-after"] == "2"  # a token every 2 s
    assert [r.status_code for r in statuses(url, 2, {"x-api-key": "bob"})] == [200, 200]
    assert app.rate_limited == 1


class Replica:
    """One replica of a service rate-limited through Redis, with its own client."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        client = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                client = Redis.from_url(self.redis_url)  # on the server's own loop
                limiter = RedisRateLimiter(client, rate=0.5, burst=2, prefix=self.prefix)
                self.app = AdmissionMiddleware(slow_app(0), rate_limiter=limiter)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if client is not None:
                    await client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def test_a_fleet_rate_limit_through_redis(serve: Serve, redis_url: str, redis_prefix: str) -> None:
    # two replicas of a service: one bucket per client between them
    first = serve(Replica(redis_url, redis_prefix), lifespan="on")
    second = serve(Replica(redis_url, redis_prefix), lifespan="on")
    codes = [r.status_code for r in statuses(first, 1) + statuses(second, 2)]
    assert sorted(codes) == [200, 200, 429]


def test_over_the_adaptive_limit_is_answered_503_at_once(serve: Serve) -> None:
    limiter = AdaptiveLimiter(algorithm="aimd", initial=2, minimum=2, maximum=2)
    app = AdmissionMiddleware(slow_app(0.3), limiter=limiter, retry_after_s=2)
    responses = statuses(serve(app), 5)
    assert sorted(r.status_code for r in responses) == [200, 200, 503, 503, 503]
    assert all(r.headers["retry-after"] == "2" for r in responses if r.status_code == 503)
    assert limiter.in_flight == 0  # every permit given back


def test_the_shedder_queues_briefly_then_sheds_low_priority_first(serve: Serve) -> None:
    shedder = LoadShedder(1, interval_s=2.0, max_queue=2)  # waits of up to 2 s are fine
    app = AdmissionMiddleware(slow_app(0.5), shedder=shedder, priorities={"live": 1})
    url = serve(app)

    async def until(check: Callable[[ShedderStatistics], bool]) -> None:
        # the order of arrival is what the shedder saw, not what a sleep hoped for; it
        # runs on the server's loop in another thread, so there is no event to await
        async with asyncio.timeout(10):
            while not check(shedder.statistics()):  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def main() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            first = asyncio.ensure_future(client.get("/"))  # takes the one place
            await until(lambda s: s.in_flight == 1)
            batch = [asyncio.ensure_future(client.get("/")) for _ in range(2)]
            await until(lambda s: s.queued == 2)  # the queue is full
            live = [asyncio.ensure_future(client.get("/", headers={"x-priority": "live"}))
                    for _ in range(2)]  # fmt: skip
            done = await asyncio.gather(first, *batch, *live)
        return [r.status_code for r in done[1:3]], [r.status_code for r in done[3:]]

    batch, live = asyncio.run(main())
    assert live == [200, 200]  # the full queue made room for them
    assert batch == [503, 503]  # by shedding the lower priority
    assert shedder.shed == 2


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_other_scopes_pass_straight_through(kind: str) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = AdmissionMiddleware(app, limiter=AdaptiveLimiter(initial=1, maximum=1))

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(_: Any) -> None:
        return None

    asyncio.run(middleware({"type": kind}, nothing, ignore))
    assert seen == [kind]
