"""The cache with Redis as L2 (the real one): a fleet's stampede, coherence across processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from redline.cache import Cache, LocalCache
from redline.cache.redis import RedisLayer

PEER = Path(__file__).with_name("coherent_peer.py")


STAMPEDE = Path(__file__).with_name("stampede_peer.py")


def fleet_stampede(redis_url: str, namespace: str, lease: str) -> int:
    """Two processes, a thousand concurrent misses of one key each: the fleet's loads."""
    processes = [
        subprocess.Popen([sys.executable, str(STAMPEDE), redis_url, namespace, lease],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"

    for process in processes:  # both start their misses now
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert out.strip() == "[42]", err  # every miss got the value

    async def loads() -> int:
        client = Redis.from_url(redis_url)
        count = int(await client.get(f"{namespace}:loads") or 0)
        await client.aclose()
        return count

    return asyncio.run(loads())


def test_a_stampede_loads_once_per_process(redis_url: str, redis_prefix: str) -> None:
    assert fleet_stampede(redis_url, redis_prefix + "plain", "none") == 2


def test_with_a_lease_a_stampede_loads_once_per_fleet(redis_url: str, redis_prefix: str) -> None:
    assert fleet_stampede(redis_url, redis_prefix + "leased", "5") == 1


def test_l2_serves_another_process_and_invalidations_reach_its_l1(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
        writer = Cache(LocalCache(10), RedisLayer(first), namespace=redis_prefix)
        reader = Cache(LocalCache(10), RedisLayer(second), namespace=redis_prefix)
        await reader.start()
        await writer.set("product:7", [1, 2, 3], tags=["catalogue"])
        assert await reader.get("product:7") == [1, 2, 3]  # from L2
        assert await reader.get("product:7") == [1, 2, 3]  # from L1 now
        assert (reader.stats.l2_hits, reader.stats.l1_hits) == (1, 1)
        assert await writer.invalidate_tag("catalogue") == 1
        assert await until(lambda: "product:7" not in reader.l1)  # told, not expired
        assert await reader.get("product:7") is None  # and gone from L2
        await writer.set("a", 1)
        assert await reader.get("a") == 1
        await writer.bump_version()
        assert await until(lambda: reader.version == writer.version)
        assert await reader.get("a") is None
        await reader.close()
        await first.aclose()
        await second.aclose()

    asyncio.run(main())


async def until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.005)):
        if check():
            return True
        await asyncio.sleep(0.005)
    return check()


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
