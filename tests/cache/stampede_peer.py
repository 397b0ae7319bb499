"""One process of a fleet for the stampede test: a thousand concurrent misses of one key.

    python stampede_peer.py REDIS_URL NAMESPACE LEASE_S|none

Prints ``ready``, waits for a line on its input, then misses "hot" a thousand
times at once; the loader counts itself in ``<namespace>:loads`` (so the test counts the
loads of the whole fleet) and takes 300 ms. Prints the distinct values it got.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis

from redline.cache import Cache, LocalCache
from redline.cache.redis import RedisLayer


async def main(url: str, namespace: str, lease: str) -> None:
    client = Redis.from_url(url, max_connections=50)
    cache = Cache(LocalCache(100), RedisLayer(client), namespace=namespace,
                  lease_s=None if lease == "none" else float(lease))  # fmt: skip

    async def load() -> int:
        await client.incr(f"{namespace}:loads")
        await asyncio.sleep(0.3)
        return 42

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go", sent to both processes at once
    values = await asyncio.gather(*(cache.get_or_load("hot", load) for _ in range(1000)))
    print(sorted(set(values)), flush=True)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
