"""Loading without stampedes, early and stale refreshes, invalidation (L1 only)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from redline.cache import JSON, Cache, LocalCache, serializer
from redline.cache.prometheus import CacheCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A loader that counts its calls, and can be made slow or failing."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.value: object = "v1"
        self.fail = False

    async def load(self) -> object:
        self.calls += 1
        value = self.value  # read at once; the answer takes ``delay`` to come back
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("the source is down")
        return value


def test_a_thousand_concurrent_misses_load_once() -> None:
    cache = Cache(LocalCache(100))
    source = Source(delay=0.05)

    async def main() -> list[object]:
        return await asyncio.gather(*(cache.get_or_load("k", source.load) for _ in range(1000)))

    assert asyncio.run(main()) == ["v1"] * 1000
    assert source.calls == 1
    assert cache.stats.coalesced == 999


def test_an_error_reaches_every_waiter_and_is_not_cached() -> None:
    cache = Cache(LocalCache(100))
    source = Source(delay=0.01)
    source.fail = True

    async def main() -> list[object]:
        return await asyncio.gather(*(cache.get_or_load("k", source.load) for _ in range(10)),
                                    return_exceptions=True)  # fmt: skip

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert source.calls == 1
    source.fail = False
    assert asyncio.run(cache.get_or_load("k", source.load)) == "v1"


def test_xfetch_refreshes_early_only_near_expiry() -> None:
    clock = Clock()
    draws = [0.5]
    cache = Cache(LocalCache(10), ttl_s=100, clock=clock, rng=lambda: draws[0])
    source = Source()

    async def main() -> None:
        await cache.get_or_load("k", source.load)
        stored = cache.l1.peek("k")
        stored.delta = 2.0  # the value took 2 s to compute
        clock.now += 50  # half-way: 2 * ln(2) = 1.4 s ahead is not expiry yet
        assert await cache.get_or_load("k", source.load) == "v1"
        assert source.calls == 1
        clock.now += 49  # 1 s before expiry: 1.4 s of lookahead reaches it
        source.value = "v2"
        assert await cache.get_or_load("k", source.load) == "v1"  # served now...
        await asyncio.sleep(0.01)
        assert source.calls == 2  # ...and recomputed in the background
        assert await cache.get_or_load("k", source.load) == "v2"

    asyncio.run(main())
    assert cache.stats.early_refreshes == 1


def test_stale_while_revalidate_and_stale_if_error() -> None:
    clock = Clock()
    cache = Cache(LocalCache(10), ttl_s=10, stale_ttl_s=5, stale_if_error_s=60, clock=clock)
    source = Source()

    async def main() -> None:
        await cache.get_or_load("k", source.load)
        clock.now += 12  # expired, within the stale window
        source.value = "v2"
        assert await cache.get_or_load("k", source.load) == "v1"
        await asyncio.sleep(0.01)
        assert await cache.get_or_load("k", source.load) == "v2"
        clock.now += 30  # past the stale window; the source fails: the old value holds
        source.fail = True
        assert await cache.get_or_load("k", source.load) == "v2"
        clock.now += 100  # past every window: the error comes through
        with pytest.raises(ConnectionError):
            await cache.get_or_load("k", source.load)

    asyncio.run(main())
    assert cache.stats.stale_served == 1
    assert cache.stats.stale_on_error == 1


def test_negative_results_are_cached_for_their_own_ttl() -> None:
    clock = Clock()
    cache = Cache(LocalCache(10), ttl_s=300, negative_ttl_s=5, clock=clock)
    source = Source()
    source.value = None

    async def main() -> None:
        assert await cache.get_or_load("missing", source.load) is None
        assert await cache.get_or_load("missing", source.load) is None
        assert source.calls == 1
        clock.now += 6
        await cache.get_or_load("missing", source.load)
        assert source.calls == 2

    asyncio.run(main())
    assert cache.stats.negative_hits == 1


def test_tags_versions_and_keys_invalidate() -> None:
    cache = Cache(LocalCache(100))
    source = Source()

    async def main() -> None:
        await cache.get_or_load("a", source.load, tags=["products"])
        await cache.get_or_load("b", source.load, tags=["products"])
        await cache.get_or_load("c", source.load)
        assert await cache.invalidate_tag("products") == 2
        assert await cache.get("a") is None
        assert await cache.get("c") == "v1"
        await cache.delete("c")
        assert await cache.get("c") is None
        await cache.set("d", "x")
        await cache.bump_version()
        assert await cache.get("d") is None

    asyncio.run(main())


def test_a_load_that_began_before_an_invalidation_does_not_store() -> None:
    """The read-modify race: a slow reader must not put back what a writer invalidated."""
    cache = Cache(LocalCache(100))
    source = Source(delay=0.05)

    async def main() -> object:
        reader = asyncio.ensure_future(cache.get_or_load("k", source.load))  # reads "v1"
        await asyncio.sleep(0.01)
        async with cache.writing("k"):
            source.value = "v2"  # the write to the source
        assert await reader == "v1"  # the reader gets what it read...
        return await cache.get_or_load("k", source.load)  # ...but did not cache it

    assert asyncio.run(main()) == "v2"
    assert cache.stats.stores_refused == 1


def test_the_decorator_caches_by_template_and_by_default_key() -> None:
    cache = Cache(LocalCache(100))
    calls: list[tuple[int, str]] = []

    @cache.cached(key="product:{product_id}")
    async def product(product_id: int, lang: str = "en") -> dict[str, object]:
        calls.append((product_id, lang))
        return {"id": product_id}

    @cache.cached()
    async def square(x: int) -> int:
        calls.append((x, "square"))
        return x * x

    async def main() -> None:
        assert await product(1) == {"id": 1}
        assert await product(1) == {"id": 1}
        assert await product(product_id=2) == {"id": 2}
        assert await square(3) == 9
        assert await square(3) == 9
        await cache.delete("product:1")
        await product(1)

    asyncio.run(main())
    assert calls == [(1, "en"), (2, "en"), (3, "square"), (1, "en")]
    snapshot = cache.statistics()
    assert snapshot.loads == 4
    assert snapshot.l1_entries == len(cache.l1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.loads = 0  # type: ignore[misc]
    assert cache.statistics() == snapshot  # nothing happened since


@pytest.mark.parametrize("name", ["json", "msgpack", "pickle"])
def test_serializers_round_trip(name: str) -> None:
    codec = serializer(name)
    value = {"id": 7, "tags": ["a", "b"], "price": 4.5, "stock": None}
    assert codec.loads(codec.dumps(value)) == value
    assert codec.name == name


def test_pickle_is_never_the_default() -> None:
    assert Cache().serializer is JSON
    with pytest.raises(ValueError, match="json, msgpack or pickle"):
        serializer("yaml")


def test_prometheus_reads_the_statistics_at_scrape_time(promtool: str) -> None:
    registry = CollectorRegistry()
    cache = Cache(LocalCache(10), namespace="products")
    CacheCollector(cache, registry=registry)
    source = Source()

    async def main() -> None:
        await cache.get_or_load("a", source.load)
        await cache.get_or_load("a", source.load)

    asyncio.run(main())
    sample = registry.get_sample_value
    assert sample("redline_cache_hits_total", {"namespace": "products", "level": "l1"}) == 1
    assert sample("redline_cache_misses_total", {"namespace": "products", "level": "l1"}) == 1
    assert sample("redline_cache_loads_total", {"namespace": "products", "outcome": "success"}) == 1
    assert sample("redline_cache_l1_entries", {"namespace": "products"}) == 1
    checked = subprocess.run([promtool, "check", "metrics"], input=generate_latest(registry),
                             capture_output=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_key_template_sees_default_arguments() -> None:
    cache = Cache(LocalCache(10))

    @cache.cached(key="page:{slug}:{lang}")
    async def page(slug: str, lang: str = "en") -> str:
        return f"{slug}/{lang}"

    async def main() -> None:
        assert await page("home") == "home/en"
        assert await page("home", lang="de") == "home/de"

    asyncio.run(main())
    assert sorted(k for k in ("page:home:en", "page:home:de") if k in cache.l1) == [
        "page:home:de",
        "page:home:en",
    ]


def test_a_write_through_wins_over_a_load_in_flight() -> None:
    cache = Cache(LocalCache(10))
    source = Source(delay=0.05)

    async def main() -> object:
        reader = asyncio.ensure_future(cache.get_or_load("k", source.load))  # reads "v1"
        await asyncio.sleep(0.01)
        await cache.set("k", "written")
        await reader
        return await cache.get("k")

    assert asyncio.run(main()) == "written"
