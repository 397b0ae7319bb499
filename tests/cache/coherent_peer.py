"""A second process for the coherence tests: holds a key in its L1 and reports changes.

    python coherent_peer.py REDIS_URL NAMESPACE CLIENT_NAME

Prints ``ready`` once "k" is in its L1, then one line when the L1 loses it:
``invalidated <wall time>`` (an invalidation message) or ``cleared <wall time>`` (the
L1 cleared because the invalidation channel was lost). Ends after 20 s at most.
"""

from __future__ import annotations

import asyncio
import sys
import time

from redis.asyncio import Redis

from redline.cache import Cache, LocalCache
from redline.cache.redis import RedisLayer


async def main(url: str, namespace: str, client_name: str) -> None:
    client = Redis.from_url(url, client_name=client_name)
    cache = Cache(LocalCache(100), RedisLayer(client), namespace=namespace, ttl_s=300)
    await cache.start()

    async def load() -> str:
        return "v1"

    await cache.get_or_load("k", load)
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if cache.l1.peek("k") is None:
            what = "cleared" if cache.stats.l1_cleared else "invalidated"
            print(what, time.time(), flush=True)
            break
        await asyncio.sleep(0.0005)
    await cache.close()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
