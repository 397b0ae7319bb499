"""redline.cache beside cachetools and cashews: the cost of a hit, the hit ratio, stampedes,
and how fast an invalidation reaches another process.

- **Hits** (time per hit, the fastest of ``--repeat`` rounds, on one core): a sync L1 hit
  (``LocalCache.get``) beside cachetools' ``TTLCache[k]``; ``await cache.get(k)`` beside
  cashews' in-memory ``await cache.get(k)``; a decorated function's hit beside cashews'
  ``@cache``.
- **Hit ratio** on generated traces, a cache of 1% of the key space: Zipf(0.9), Zipf(0.9)
  with scans of keys seen once, and Zipf(0.9) whose popular keys change halfway; W-TinyLFU
  beside LRU and the optimum (Belady's, computed offline from the future of the trace).
- **Stampede** (needs Redis, ``--redis``): a thousand concurrent misses of one key in
  each of two caches with a Redis connection each (as two processes would be; the tests
  run it with two real processes): how many loads, with and without the lease.
- **Coherence** (needs Redis): a value updated in one process; the time until another
  process's L1 has dropped it (median of ``--updates``).

    pip install -e '.[bench]'   # cachetools, cashews
    python benchmarks/bench_cache.py [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import cachetools
import numpy as np
from cashews import Cache as CashewsCache

from _common import LOAD_CORE, median, table
from redline.cache import Cache, LocalCache

# -- hits ------------------------------------------------------------------------------


def per_hit(call: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def per_hit_async(call: Callable[[], Awaitable[object]], n: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await call()
        return (time.perf_counter() - start) / n

    return asyncio.run(loop())


def hits(n: int, repeat: int) -> list[tuple[str, str, str, str]]:
    ours_l1 = LocalCache(10_000, ttl_s=300)
    ours_l1.set("k", 1)
    theirs_l1 = cachetools.TTLCache(maxsize=10_000, ttl_s=300)
    theirs_l1["k"] = 1
    ours = Cache(LocalCache(10_000))
    theirs = CashewsCache()
    theirs.setup("mem://")

    @ours.cached(ttl_s=300)
    async def ours_fn(x: int) -> int:
        return x

    @theirs(ttl_s="5m")
    async def theirs_fn(x: int) -> int:
        return x

    async def warm() -> None:
        await ours.set("k", 1)
        await theirs.set("k", 1, expire=300)
        await ours_fn(1)
        await theirs_fn(1)

    asyncio.run(warm())
    best: dict[str, float] = {}
    cases: dict[str, Callable[[], float]] = {
        "l1 ours": lambda: per_hit(lambda: ours_l1.get("k"), n),
        "l1 cachetools": lambda: per_hit(lambda: theirs_l1["k"], n),
        "get ours": lambda: per_hit_async(lambda: ours.get("k"), n),
        "get cashews": lambda: per_hit_async(lambda: theirs.get("k"), n // 4),
        "decorator ours": lambda: per_hit_async(lambda: ours_fn(1), n // 4),
        "decorator cashews": lambda: per_hit_async(lambda: theirs_fn(1), n // 20),
    }
    for _ in range(repeat):  # interleaved, the fastest round of each
        for name, case in cases.items():
            seconds = case()
            best[name] = min(best.get(name, seconds), seconds)

    def row(what: str, peer: str, mine: str, theirs_name: str) -> tuple[str, str, str, str]:
        ratio = best[mine] / best[theirs_name]
        return (what, f"{best[theirs_name] * 1e6:.2f} us ({peer})", f"{best[mine] * 1e6:.2f} us",
                f"{ratio:.2f}x")  # fmt: skip

    return [
        row("sync L1 hit", "cachetools TTLCache[k]", "l1 ours", "l1 cachetools"),
        row("await cache.get(k), L1 hit", "cashews mem://", "get ours", "get cashews"),
        row("decorated function, hit", "cashews @cache", "decorator ours", "decorator cashews"),
    ]


# -- hit ratios ------------------------------------------------------------------------


def zipf(rng: np.random.Generator, keys: int, size: int, offset: int = 0) -> list[int]:
    ranks = np.arange(1, keys + 1, dtype=float)
    weights = ranks**-0.9
    order = rng.permutation(keys) + offset  # popularity is not the key's number
    picks = rng.choice(keys, size=size, p=weights / weights.sum())
    return [int(k) for k in order[picks]]


def traces(keys: int, length: int, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    plain = zipf(rng, keys, length)
    popular = zipf(rng, keys, length)  # one popularity for the whole trace, scans between
    scanned: list[int] = []
    fresh = keys  # scan keys are new: seen once, never again
    chunk, scan = length // 20, keys // 20
    for start in range(0, length, chunk):
        scanned += popular[start : start + chunk]
        scanned += range(fresh, fresh + scan)
        fresh += scan
    shifted = zipf(rng, keys, length // 2) + zipf(rng, keys, length // 2, offset=keys)
    return {"zipf 0.9": plain, "zipf 0.9 + scans": scanned, "zipf 0.9, shifting": shifted}


def ratio_of(cache: LocalCache, trace: Sequence[int]) -> float:
    hits = 0
    get, put = cache.get, cache.set
    for key in trace:
        if get(key) is None:
            put(key, 1)
        else:
            hits += 1
    return hits / len(trace)


def belady(trace: Sequence[int], capacity: int) -> float:
    """The best any policy could do: evict the key used again furthest in the future."""
    never = len(trace)
    next_use = [never] * len(trace)
    seen: dict[int, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        next_use[i] = seen.get(trace[i], never)
        seen[trace[i]] = i
    held: dict[int, int] = {}  # key: its next use
    heap: list[tuple[int, int]] = []  # (-next use, key), stale entries skipped
    hits = 0
    for i, key in enumerate(trace):
        if key in held:
            hits += 1
        elif len(held) >= capacity:
            while True:
                far, victim = heapq.heappop(heap)
                if held.get(victim) == -far:
                    del held[victim]
                    break
        held[key] = next_use[i]
        heapq.heappush(heap, (-next_use[i], key))
    return hits / len(trace)


def hit_ratios(keys: int, length: int) -> list[tuple[str, ...]]:
    capacity = keys // 100
    rows = []
    for name, trace in traces(keys, length, seed=1).items():
        tiny = ratio_of(LocalCache(capacity), trace)
        tiny_all = ratio_of(LocalCache(capacity, read_sample=1), trace)
        lru = ratio_of(LocalCache(capacity, policy="lru"), trace)
        best = belady(trace, capacity)
        rows.append((name, f"{lru:.1%}", f"{tiny:.1%}", f"{tiny_all:.1%}", f"{best:.1%}",
                     f"{(tiny - lru) * 100:+.1f}"))  # fmt: skip
    return rows


# -- Redis: stampede and coherence -----------------------------------------------------


def stampede(url: str, lease_s: float | None) -> int:
    from redis.asyncio import Redis

    from redline.cache.redis import RedisLayer

    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.1)
        return 42

    async def main() -> None:
        namespace = f"bench-{secrets.token_hex(4)}"
        clients = [Redis.from_url(url) for _ in range(2)]
        caches = [Cache(LocalCache(100), RedisLayer(c), namespace=namespace, lease_s=lease_s)
                  for c in clients]  # fmt: skip
        await asyncio.gather(*(c.get_or_load("hot", load) for c in caches for _ in range(1000)))
        for client in clients:
            await client.aclose()

    asyncio.run(main())
    return loads


PEER = """
import asyncio, sys, time
from redis.asyncio import Redis
from redline.cache import Cache, LocalCache
from redline.cache.redis import RedisLayer

async def main(url, namespace, updates):
    client = Redis.from_url(url)
    cache = Cache(LocalCache(100), RedisLayer(client), namespace=namespace)
    await cache.start()
    async def load():
        return 0
    for _ in range(updates):
        await cache.get_or_load("k", load)
        print("ready", flush=True)
        while cache.l1.peek("k") is not None:
            await asyncio.sleep(0.0002)
        print(time.time(), flush=True)
    await cache.close()
    await client.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def coherence(url: str, updates: int) -> list[float]:
    from redis.asyncio import Redis

    from redline.cache.redis import RedisLayer

    namespace = f"bench-{secrets.token_hex(4)}"
    peer = subprocess.Popen([sys.executable, "-c", PEER, url, namespace, str(updates)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert peer.stdout is not None
    latencies = []

    async def main() -> None:
        client = Redis.from_url(url)
        cache = Cache(LocalCache(100), RedisLayer(client), namespace=namespace)
        for i in range(updates):
            assert peer.stdout is not None
            assert peer.stdout.readline().strip() == "ready"
            await asyncio.sleep(0.01)
            sent = time.time()
            await cache.set("k", i)
            latencies.append(float(peer.stdout.readline()) - sent)
        await client.aclose()

    asyncio.run(main())
    peer.wait(10)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1_000_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("taskset") and os.environ.get("REDLINE_BENCH_PINNED") != "1":
        os.environ["REDLINE_BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", LOAD_CORE, sys.executable, *sys.argv])

    print(f"cost of a hit (fastest of {args.repeat} rounds)")
    print(table(hits(args.hits, args.repeat), ["what", "peer", "redline", "ratio"]))

    print(f"\nhit ratio, cache of 1% of {args.keys:,} keys, {args.length:,} requests")
    print(table(hit_ratios(args.keys, args.length),
                ["trace", "LRU", "W-TinyLFU", "W-TinyLFU, every read", "optimum",
                 "points over LRU"]))  # fmt: skip

    try:
        plain, leased = stampede(args.redis, None), stampede(args.redis, 5.0)
    except OSError as exc:
        print(f"\nno Redis at {args.redis} ({exc}): stampede and coherence skipped")
        return
    print("\n1,000 concurrent misses of one key in each of two caches (a 100 ms load)")
    print(table([("single flight per process", plain), ("with the fleet lease", leased)],
                ["protection", "loads"]))  # fmt: skip
    latencies = coherence(args.redis, args.updates)
    middle, most = median(latencies) * 1000, max(latencies) * 1000
    print(f"\nan update in one process reaching another's L1 ({args.updates} updates): "
          f"median {middle:.1f} ms, max {most:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
