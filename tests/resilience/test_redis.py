"""Strategies shared through a real Redis: a fleet's rate limit and breaker state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from redline.resilience import BreakerOpen, CircuitBreaker, RateLimited
from redline.resilience.redis import RedisRateLimiter, SharedBreakerState


async def until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


def run(redis_url: str, scenario: Callable[[Redis, Redis], Awaitable[None]]) -> None:
    """Run ``scenario`` with two clients: two processes' connections to one Redis."""

    async def main() -> None:
        first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
        try:
            # bounded: a hang shows as a timeout here, not as the whole test's
            await asyncio.wait_for(scenario(first, second), 60)
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(main())


def test_a_fleet_shares_one_bucket_per_key(redis_url: str, redis_prefix: str) -> None:
    async def scenario(first: Redis, second: Redis) -> None:
        a = RedisRateLimiter(first, rate=0.5, burst=5, prefix=redis_prefix)
        b = RedisRateLimiter(second, rate=0.5, burst=5, prefix=redis_prefix)
        grants = [await a.try_acquire(key="alice") for _ in range(3)]
        grants += [await b.try_acquire(key="alice") for _ in range(2)]
        assert grants == [0.0] * 5  # the burst, across both processes
        wait = await b.try_acquire(key="alice")
        assert 0 < wait <= 2.0  # the next token, at 0.5 a second
        assert await a.try_acquire(key="bob") == 0.0  # another key, another bucket
        with pytest.raises(RateLimited) as refused:
            await a.acquire(key="alice")
        assert refused.value.retry_after > 0
        assert await first.ttl(f"{redis_prefix}rate_limiter:alice") > 0  # forgotten later

    run(redis_url, scenario)


def test_the_bucket_waits_within_max_wait(redis_url: str, redis_prefix: str) -> None:
    async def scenario(first: Redis, _: Redis) -> None:
        limiter = RedisRateLimiter(first, rate=20, burst=1, max_wait_s=1.0, prefix=redis_prefix)
        calls = [await limiter.call(asyncio.sleep, 0, result=i) for i in range(4)]
        assert calls == [0, 1, 2, 3]  # three of them waited about 50 ms for a token

    run(redis_url, scenario)


def test_one_breaker_opening_opens_the_fleet(redis_url: str, redis_prefix: str) -> None:
    async def fail() -> None:
        raise ConnectionError("payments is down")

    async def scenario(first: Redis, second: Redis) -> None:
        here = CircuitBreaker("payments", minimum_calls=2, open_wait_s=30, jitter=0)
        there = CircuitBreaker("payments", minimum_calls=2, open_wait_s=30, jitter=0)
        async with (
            SharedBreakerState(first, here, prefix=redis_prefix),
            SharedBreakerState(second, there, prefix=redis_prefix) as followed,
        ):
            for _ in range(2):
                with pytest.raises(ConnectionError):
                    await here.call(fail)
            assert here.state == "open"
            assert await until(lambda: there.state == "open")
            assert followed.adopted == 1
            with pytest.raises(BreakerOpen) as refused:
                await there.call(asyncio.sleep, 0)
            assert 20 < refused.value.retry_after <= 30.5  # the same opening, not a new one
            assert there.transitions[-1] == ("closed", "open")

            # a process that starts now finds the breaker open
            late = CircuitBreaker("payments")
            async with SharedBreakerState(first, late, prefix=redis_prefix):
                assert late.state == "open"

            here.reset()  # closing anywhere closes everywhere
            assert await until(lambda: there.state == "closed")
            there.force_open()  # a manual switch, fleet-wide
            assert await until(lambda: here.state == "forced_open")
        here.reset()  # no longer shared: the other stays as it was
        await asyncio.sleep(0.1)
        assert there.state == "forced_open"

    run(redis_url, scenario)


def test_another_name_is_another_breaker(redis_url: str, redis_prefix: str) -> None:
    async def scenario(first: Redis, second: Redis) -> None:
        payments, search = CircuitBreaker("payments"), CircuitBreaker("search")
        async with (
            SharedBreakerState(first, payments, prefix=redis_prefix),
            SharedBreakerState(second, search, prefix=redis_prefix) as other,
        ):
            payments.force_open()
            await asyncio.sleep(0.2)
            assert search.state == "closed"
            assert other.adopted == 0

    run(redis_url, scenario)


def test_a_follower_that_loses_its_connection_follows_again(
    redis_url: str, redis_prefix: str
) -> None:
    async def scenario(first: Redis, _: Redis) -> None:
        name = f"follower-{redis_prefix}"
        follower_client = Redis.from_url(redis_url, client_name=name)
        here, there = CircuitBreaker("search"), CircuitBreaker("search")
        try:
            async with (
                SharedBreakerState(first, here, prefix=redis_prefix),
                SharedBreakerState(follower_client, there, prefix=redis_prefix),
            ):
                clients = await first.client_list()
                ids = [c["id"] for c in clients if c.get("name") == name]
                assert ids, "the follower's connections are named"
                for client_id in ids:  # as a network cut or a Redis restart would
                    await first.client_kill_filter(_id=client_id)
                here.force_open()  # published while the follower is reconnecting
                assert await until(lambda: there.state == "forced_open", seconds=10)
        finally:
            await follower_client.aclose()

    run(redis_url, scenario)


def test_without_redis_the_rate_limit_fails_open_unless_told_otherwise() -> None:
    async def main() -> None:
        no_retries = RedisRetry(NoBackoff(), 0)  # the client's own retries only slow the test
        unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=no_retries)
        assert await RedisRateLimiter(unreachable, rate=1).try_acquire(key="k") == 0.0
        strict = RedisRateLimiter(unreachable, rate=1, fail_open=False)
        with pytest.raises(RedisConnectionError):
            await strict.try_acquire(key="k")
        await unreachable.aclose()

    asyncio.run(main())
