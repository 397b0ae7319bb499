"""The L1: bounds, TTLs, LRU order, W-TinyLFU admission and its sketch."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.cache import FrequencySketch, LocalCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["tinylfu", "lru"]),
    st.integers(1, 40),
    st.lists(
        st.tuples(st.sampled_from(["get", "set", "delete"]), st.integers(0, 60)), max_size=300
    ),
)
def test_never_holds_more_than_its_capacity_and_reads_what_it_holds(
    policy: str, capacity: int, operations: list[tuple[str, int]]
) -> None:
    cache = LocalCache(capacity, policy=policy)
    model: dict[int, int] = {}
    for i, (operation, key) in enumerate(operations):
        if operation == "set":
            cache.set(key, i)
            model[key] = i
        elif operation == "delete":
            cache.delete(key)
            model.pop(key, None)
        else:
            value = cache.get(key)
            if key not in model:
                assert value is None  # never written, or deleted: never read back
            else:
                # the latest value written, or nothing when the policy evicted it
                assert value is None or value == model[key]
        assert len(cache) <= capacity
        assert cache.weight == len(cache)
    for key in list(model):
        if key in cache:
            assert cache.peek(key) == model[key]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 20),
    st.lists(
        st.tuples(st.sampled_from(["get", "set", "delete"]), st.integers(0, 30)), max_size=300
    ),
)
def test_lru_reads_exactly_what_an_lru_model_holds(
    capacity: int, operations: list[tuple[str, int]]
) -> None:
    cache = LocalCache(capacity, policy="lru")
    model: OrderedDict[int, int] = OrderedDict()
    for i, (operation, key) in enumerate(operations):
        if operation == "set":
            cache.set(key, i)
            model[key] = i
            model.move_to_end(key)
            if len(model) > capacity:
                model.popitem(last=False)
        elif operation == "delete":
            cache.delete(key)
            model.pop(key, None)
        else:
            assert cache.get(key) == model.get(key)
            if key in model:
                model.move_to_end(key)
        assert sorted(k for k in range(31) if k in cache) == sorted(model)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=200), st.integers(50, 400))
def test_a_cache_sized_in_bytes_keeps_within_its_bytes(values: list[bytes], max_bytes: int) -> None:
    cache = LocalCache(max_bytes=max_bytes)
    for i, value in enumerate(values):
        cache.set(i, value)
        assert cache.weight <= max_bytes
        assert cache.weight == sum(len(cache.peek(k)) for k in range(i + 1) if k in cache)


def test_entries_expire_by_their_own_ttl() -> None:
    clock = Clock()
    cache = LocalCache(10, ttl_s=10, clock=clock)
    cache.set("short", 1, ttl_s=1)
    cache.set("default", 2)
    clock.now = 5
    assert cache.get("short") is None
    assert cache.get("default") == 2
    clock.now = 11
    assert "default" not in cache
    assert cache.expirations == 1  # met by get; the other one is still to be met
    assert cache.expire() == 1
    assert len(cache) == 0


def test_lru_evicts_the_least_recently_used() -> None:
    cache = LocalCache(3, policy="lru")
    for key in "abc":
        cache.set(key, key)
    cache.get("a")
    cache.set("d", "d")
    assert sorted(k for k in "abcd" if k in cache) == ["a", "c", "d"]
    with pytest.raises(KeyError):
        cache["b"]


def test_a_scan_does_not_flush_the_popular_keys() -> None:
    """The case W-TinyLFU exists for: LRU loses its hot set to a one-off scan."""
    rng = random.Random(7)
    hot = [f"hot{i}" for i in range(80)]
    results = {}
    for policy in ("tinylfu", "lru"):
        cache = LocalCache(100, policy=policy, read_sample=1)
        for _ in range(3000):
            key = rng.choice(hot)
            if cache.get(key) is None:
                cache.set(key, 1)
        for i in range(1000):  # a scan of keys seen once
            if cache.get(f"scan{i}") is None:
                cache.set(f"scan{i}", 1)
        results[policy] = sum(key in cache for key in hot)
    assert results["lru"] == 0  # the scan pushed every hot key out
    assert results["tinylfu"] >= 75  # the scan was refused admission


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="policy"):
        LocalCache(10, policy="fifo")
    with pytest.raises(ValueError, match="capacity"):
        LocalCache(0)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=500))
def test_the_sketch_never_undercounts_below_its_cap(keys: list[int]) -> None:
    sketch = FrequencySketch(1000)  # sample size 10,000: no aging here
    counts: dict[int, int] = {}
    for key in keys:
        sketch.increment(hash(key))
        counts[key] = counts.get(key, 0) + 1
    for key, count in counts.items():
        assert sketch.frequency(hash(key)) >= min(count, 15)


def test_the_sketch_ages_by_halving() -> None:
    sketch = FrequencySketch(16)  # ages after 160 additions
    for _ in range(12):
        sketch.increment(hash("popular"))
    assert sketch.frequency(hash("popular")) == 12
    sketch.age()
    assert sketch.frequency(hash("popular")) == 6


def test_the_sketch_ages_by_itself_every_sample() -> None:
    class Counted(FrequencySketch):
        agings = 0

        def age(self) -> None:
            Counted.agings += 1
            super().age()

    sketch = Counted(16)  # a sample of 160 additions
    for i in range(1000):
        sketch.increment(hash(f"key{i}"))
    # the first aging after 160 additions, then every 80 (half the count is kept)
    assert Counted.agings >= 5
    assert sketch.additions < sketch.sample_size
