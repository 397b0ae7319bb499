"""Micro-batching: batches by size and by wait, bounded flushes, errors to their own callers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from redline.resilience import Batcher, BatcherFullError, BatchError, Loader


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(main(), 60))


class Doubler:
    """A batch function that doubles, fails the items it is told to, and keeps count."""

    def __init__(self, fail: Callable[[int], bool] = lambda _: False, pause: float = 0) -> None:
        self.fail = fail
        self.pause = pause
        self.batches: list[list[int]] = []
        self.running = 0
        self.most_running = 0

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.pause)
        finally:
            self.running -= 1
        return [ValueError(f"bad {i}") if self.fail(i) else i * 2 for i in items]


def test_ten_thousand_concurrent_submits_make_at_most_101_flushes() -> None:
    fn = Doubler(fail=lambda i: i % 97 == 0)

    async def main() -> list[Any]:
        batcher = Batcher(fn, max_size=100)
        return await asyncio.gather(
            *(batcher.submit(i) for i in range(10_000)), return_exceptions=True
        )

    results = run(main)
    assert len(fn.batches) <= 101
    assert all(len(batch) <= 100 for batch in fn.batches)
    assert sorted(i for batch in fn.batches for i in batch) == list(range(10_000))
    for i, result in enumerate(results):
        if i % 97 == 0:  # the item's own error, and only for its caller
            assert isinstance(result, ValueError)
            assert str(result) == f"bad {i}"
        else:
            assert result == i * 2


def test_a_lone_item_goes_after_max_wait() -> None:
    fn = Doubler()

    async def main() -> int:
        batcher = Batcher(fn, max_size=100, max_wait_s=0.01)
        return await batcher.submit(21)

    assert run(main) == 42
    assert fn.batches == [[21]]


def test_flushes_in_flight_never_exceed_max_concurrency() -> None:
    fn = Doubler(pause=0.01)

    async def main() -> Batcher[int, int]:
        batcher = Batcher(fn, max_size=10, max_concurrency=3)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(200)))
        assert results == [i * 2 for i in range(200)]
        return batcher

    batcher = run(main)
    assert fn.most_running == 3
    assert batcher.flushes == len(fn.batches) == 20


def test_an_error_of_the_batch_function_reaches_that_batch_only() -> None:
    calls = 0

    async def fn(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("downstream away")
        return items

    async def main() -> list[Any]:
        batcher = Batcher(fn, max_size=5, max_concurrency=1)
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)

    results = run(main)
    assert all(isinstance(r, ConnectionError) for r in results[:5])
    assert results[5:] == [5, 6, 7, 8, 9]


def test_a_batch_function_that_answers_the_wrong_number_fails_its_callers_clearly() -> None:
    async def fn(items: list[int]) -> list[int]:
        return items[:-1]

    async def main() -> None:
        batcher = Batcher(fn, max_size=3)
        with pytest.raises(BatchError, match="2 results for 3 items"):
            await asyncio.gather(*(batcher.submit(i) for i in range(3)))

    run(main)


def test_a_full_batcher_refuses_or_waits_as_told() -> None:
    fn = Doubler(pause=0.05)

    async def main() -> None:
        refusing = Batcher(fn, max_size=2, max_concurrency=1, max_pending=4, when_full="error")
        first = [asyncio.ensure_future(refusing.submit(i)) for i in range(2)]
        await asyncio.sleep(0)  # the first batch is in flight: it holds no room
        waiting = [asyncio.ensure_future(refusing.submit(i)) for i in range(2, 6)]
        await asyncio.sleep(0)
        assert refusing.queued == 4
        with pytest.raises(BatcherFullError, match="4 items waiting"):
            await refusing.submit(99)
        assert await asyncio.gather(*first, *waiting) == [0, 2, 4, 6, 8, 10]

        patient = Batcher(fn, max_size=2, max_concurrency=1, max_pending=2, when_full="wait")
        results = await asyncio.gather(*(patient.submit(i) for i in range(10)))
        assert results == [i * 2 for i in range(10)]
        assert patient.queued == 0

    run(main)


def test_a_caller_cancelled_while_waiting_is_left_out_of_the_batch() -> None:
    fn = Doubler()

    async def main() -> None:
        batcher = Batcher(fn, max_size=100, max_wait_s=0.02)
        gone = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == 4
        await batcher.close()

    run(main)
    assert fn.batches == [[2]]


def test_close_waits_for_every_batch() -> None:
    fn = Doubler(pause=0.01)

    async def main() -> list[asyncio.Future[int]]:
        batcher = Batcher(fn, max_size=50, max_wait_s=10, max_concurrency=1)
        futures = [asyncio.ensure_future(batcher.submit(i)) for i in range(120)]
        await asyncio.sleep(0)
        await batcher.close()  # the last 20 would otherwise wait 10 s
        assert all(f.done() for f in futures)
        return futures

    futures = run(main)
    assert [f.result() for f in futures] == [i * 2 for i in range(120)]


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.integers(-1000, 1000), max_size=300),
    max_size=st.integers(1, 50),
    max_concurrency=st.integers(1, 5),
)
def test_every_caller_gets_the_answer_to_its_own_item(
    items: list[int], max_size: int, max_concurrency: int
) -> None:
    fn = Doubler(fail=lambda i: i % 7 == 0)

    async def main() -> list[Any]:
        batcher = Batcher(fn, max_size=max_size, max_concurrency=max_concurrency, max_wait_s=0.001)
        return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)

    results = run(main)
    assert all(1 <= len(batch) <= max_size for batch in fn.batches)
    assert sorted(i for batch in fn.batches for i in batch) == sorted(items)
    for item, result in zip(items, results, strict=True):
        if item % 7 == 0:
            assert isinstance(result, ValueError)
            assert str(result) == f"bad {item}"
        else:
            assert result == item * 2


def test_the_loader_asks_for_each_key_once_per_turn() -> None:
    asked: list[list[str]] = []

    async def fetch(keys: list[str]) -> list[str | BaseException]:
        asked.append(keys)
        return [KeyError(key) if key == "missing" else key.upper() for key in keys]

    async def main() -> None:
        loader: Loader[str, str] = Loader(fetch)
        # fifty callers (an N+1 loop), ten distinct keys: one call, each key once
        keys = [f"k{i % 10}" for i in range(50)]
        assert await asyncio.gather(*(loader.load(k) for k in keys)) == [k.upper() for k in keys]
        assert len(asked) == 1
        assert sorted(asked[0]) == sorted(set(keys))
        # without the cache the next turn asks again; an error reaches each caller of it
        assert await loader.load("k1") == "K1"
        results = await asyncio.gather(
            loader.load("missing"), loader.load("missing"), return_exceptions=True
        )
        assert all(isinstance(r, KeyError) for r in results)
        assert asked[1:] == [["k1"], ["missing"]]

        cached: Loader[str, str] = Loader(fetch, cache=True)
        assert await cached.load_many(["a", "b"]) == ["A", "B"]
        assert await cached.load("a") == "A"
        assert asked[-1] == ["a", "b"]  # answered from the cache
        cached.clear("a")
        assert await cached.load("a") == "A"
        assert asked[-1] == ["a"]

    run(main)


def test_a_loader_over_mget_answers_as_get_does(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        client = Redis.from_url(redis_url)
        try:
            await client.mset({f"{redis_prefix}{i}": str(i * i) for i in range(100)})

            async def mget(keys: list[str]) -> list[bytes | None]:
                return list(await client.mget(keys))

            loader: Loader[str, bytes | None] = Loader(mget)
            keys = [f"{redis_prefix}{i % 120}" for i in range(300)]
            batched = await asyncio.gather(*(loader.load(k) for k in keys))
            single = [await client.get(k) for k in keys]
            assert batched == single
            assert loader.batcher.flushes == 2  # 120 distinct keys, 100 per batch
        finally:
            await client.aclose()

    run(main)
