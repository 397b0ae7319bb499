"""Strategies shared through a real Redis: a fleet's rate limit and breaker state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import AbstractBackoff, ConstantBackoff, ExponentialBackoff, NoBackoff
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
        taken = await b.take(key="alice")  # the KeyedLimiter form: the same answer, a float
        assert isinstance(taken, float)
        assert 0 < taken <= 2.0
        assert await a.try_acquire(key="bob") == 0.0  # another key, another bucket
        with pytest.raises(RateLimited) as refused:
            await a.acquire(key="alice")
        assert refused.value.retry_after_s > 0
        assert await first.ttl(f"{redis_prefix}rate_limiter:alice") > 0  # forgotten later

    run(redis_url, scenario)


def test_the_bucket_waits_within_max_wait(redis_url: str, redis_prefix: str) -> None:
    async def scenario(first: Redis, _: Redis) -> None:
        limiter = RedisRateLimiter(first, rate=20, burst=1, max_wait_s=1.0, prefix=redis_prefix)
        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = []
        for i in range(4):
            calls.append(await limiter.call(asyncio.sleep, 0, result=i))
        took = loop.time() - started
        assert calls == [0, 1, 2, 3]
        # the burst of one, then three tokens at 20 a second: three waits of about 50 ms;
        # at least 0.14 s (a token is never early), and bounded by max_wait per call
        assert took >= 0.14
        assert took < 3 * 1.0

    run(redis_url, scenario)


def test_one_breaker_opening_opens_the_fleet(redis_url: str, redis_prefix: str) -> None:
    async def fail() -> None:
        raise ConnectionError("payments is down")

    async def scenario(first: Redis, second: Redis) -> None:
        here = CircuitBreaker(name="payments", minimum_calls=2, open_wait_s=30, jitter=0)
        there = CircuitBreaker(name="payments", minimum_calls=2, open_wait_s=30, jitter=0)
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
            assert 20 < refused.value.retry_after_s <= 30.5  # the same opening, not a new one
            assert there.transitions[-1] == ("closed", "open")

            # a process that starts now finds the breaker open
            late = CircuitBreaker(name="payments")
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
        payments, search = CircuitBreaker(name="payments"), CircuitBreaker(name="search")
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
        here, there = CircuitBreaker(name="search"), CircuitBreaker(name="search")
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


def test_a_follower_resynchronises_when_redis_restarts_under_it() -> None:
    # a Redis of this test's own, restarted under a running follower whose client
    # reconnects by itself (redis-py retries): what was published during the gap is
    # lost to the subscription, and the follower must re-read the state
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is needed (.ci/run installs it)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return server
            time.sleep(0.02)
        server.kill()
        raise AssertionError("redis-server did not start")

    server = start()
    url = f"redis://127.0.0.1:{port}/0"

    def retrying(backoff: AbstractBackoff) -> Redis:
        return Redis.from_url(
            url,
            retry=RedisRetry(backoff, 100),
            retry_on_error=[RedisConnectionError, OSError],
        )

    async def main() -> None:
        nonlocal server
        # the leader is back at once; the follower only after a second, when the change
        # has been published to nobody
        leader = retrying(ExponentialBackoff(cap=0.1, base=0.01))
        follower = retrying(ConstantBackoff(1.0))
        here, there = CircuitBreaker(name="orders"), CircuitBreaker(name="orders")
        try:
            async with (
                SharedBreakerState(leader, here, prefix="restart:"),
                SharedBreakerState(follower, there, prefix="restart:"),
            ):
                server.terminate()
                server.wait(10)
                server = start()  # empty: the state is gone with the old one
                here.force_open()  # written and published while the follower reconnects
                assert await until(lambda: there.state == "forced_open", seconds=15)
        finally:
            await leader.aclose()
            await follower.aclose()

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        server.terminate()
        server.wait(10)


def test_a_silent_reconnect_of_redis_py_makes_the_follower_read_the_state_again(
    redis_url: str, redis_prefix: str
) -> None:
    # With retries on, redis-py reconnects a pub/sub connection and subscribes again by
    # itself: listen() never sees the cut, and a change published in the gap is lost. The
    # gap is made here: the state changes with no message, then the connection is cut.
    async def scenario(first: Redis, _: Redis) -> None:
        name = f"silent-{redis_prefix}"
        follower = Redis.from_url(
            redis_url,
            client_name=name,
            retry=RedisRetry(ExponentialBackoff(cap=0.1, base=0.01), 20),
            retry_on_error=[RedisConnectionError, OSError],
        )
        there = CircuitBreaker(name="ledger")
        try:
            async with SharedBreakerState(follower, there, prefix=redis_prefix) as followed:
                await asyncio.sleep(0.1)  # listening
                change = {"state": "forced_open", "origin": "elsewhere"}
                await first.set(f"{redis_prefix}ledger", json.dumps(change))  # no message
                await asyncio.sleep(0.1)
                assert there.state == "closed"  # nothing said it changed
                for client in await first.client_list():
                    if client.get("name") == name:
                        await first.client_kill_filter(_id=client["id"])
                assert await until(lambda: there.state == "forced_open", seconds=10)
                assert followed.adopted == 1
        finally:
            await follower.aclose()

    run(redis_url, scenario)
