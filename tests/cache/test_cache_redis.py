"""The cache with Redis as L2 (the real one): a fleet's stampede, coherence across processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

from redline.cache import Cache, LocalCache
from redline.cache.redis import RedisLayer

PEER = Path(__file__).with_name("coherent_peer.py")


class Source:
    def __init__(self) -> None:
        self.calls = 0

    async def load(self) -> dict[str, object]:
        self.calls += 1
        await asyncio.sleep(0.1)  # slow enough for every miss to arrive meanwhile
        return {"price": 42}


def fleet_stampede(
    redis_url: str, namespace: str, lease_s: float | None
) -> tuple[int, list[object]]:
    """Two processes' caches (two clients each), a thousand misses each, one source."""
    source = Source()

    async def main() -> list[object]:
        clients = [Redis.from_url(redis_url) for _ in range(2)]
        caches = [Cache(LocalCache(100), RedisLayer(c), namespace=namespace, lease_s=lease_s)
                  for c in clients]  # fmt: skip
        try:
            return await asyncio.gather(*(cache.get_or_load("hot", source.load)
                                          for cache in caches for _ in range(1000)))  # fmt: skip
        finally:
            for client in clients:
                await client.aclose()

    values = asyncio.run(main())
    return source.calls, values


def test_a_stampede_loads_once_per_process(redis_url: str, redis_prefix: str) -> None:
    calls, values = fleet_stampede(redis_url, redis_prefix + "plain", lease_s=None)
    assert values == [{"price": 42}] * 2000
    assert calls == 2  # single flight in each process, no lease between them


def test_with_a_lease_a_stampede_loads_once_per_fleet(redis_url: str, redis_prefix: str) -> None:
    calls, values = fleet_stampede(redis_url, redis_prefix + "leased", lease_s=5.0)
    assert values == [{"price": 42}] * 2000
    assert calls == 1  # the other process waited for the leaseholder's value


def test_l2_serves_another_process_and_keeps_the_value_in_l1(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
        writer = Cache(LocalCache(10), RedisLayer(first), namespace=redis_prefix)
        reader = Cache(LocalCache(10), RedisLayer(second), namespace=redis_prefix)
        await writer.set("k", [1, 2, 3], tags=["t"])
        assert await reader.get("k") == [1, 2, 3]  # from L2
        assert await reader.get("k") == [1, 2, 3]  # from L1 now
        assert (reader.stats.l2_hits, reader.stats.l1_hits) == (1, 1)
        assert await writer.invalidate_tag("t") == 1
        reader.l1.clear()
        assert await reader.get("k") is None
        await first.aclose()
        await second.aclose()

    asyncio.run(main())


def peer(redis_url: str, namespace: str, name: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(PEER), redis_url, namespace, name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read()  # type: ignore[union-attr]
    return process


def test_an_update_in_one_process_invalidates_another_processs_l1(
    redis_url: str, redis_prefix: str
) -> None:
    other = peer(redis_url, redis_prefix, f"peer-{redis_prefix}")

    async def update() -> float:
        client = Redis.from_url(redis_url)
        cache = Cache(LocalCache(10), RedisLayer(client), namespace=redis_prefix)
        sent = time.time()
        await cache.set("k", "v2")
        await client.aclose()
        return sent

    sent = asyncio.run(update())
    out, err = other.communicate(timeout=30)
    what, at = out.split()
    assert what == "invalidated", err
    latency = float(at) - sent
    print(f"invalidation reached the other process in {latency * 1000:.1f} ms")
    assert latency < 1.0  # by message, not by the 300 s TTL (the benchmark measures it)


def test_a_process_that_loses_the_channel_clears_its_l1(redis_url: str, redis_prefix: str) -> None:
    name = f"peer-{redis_prefix}"
    other = peer(redis_url, redis_prefix, name)

    async def cut() -> None:
        client = Redis.from_url(redis_url)
        for entry in await client.client_list():
            if entry.get("name") == name:
                await client.client_kill_filter(_id=entry["id"])
        await client.aclose()

    asyncio.run(cut())
    out, err = other.communicate(timeout=30)
    assert out.split()[0] == "cleared", err
