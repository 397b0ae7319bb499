"""Bulkheads, rate limiters and pipelines: bounds respected, order kept."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.resilience import (
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    DeadlineExceeded,
    Fallback,
    Pipeline,
    RateLimited,
    RateLimiter,
    Retry,
    Timeout,
    deadline,
    remaining,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.lists(st.floats(0, 0.003), min_size=1, max_size=30))
def test_a_bulkhead_never_lets_more_in_than_its_places(limit: int, sleeps: list[float]) -> None:
    bulkhead = Bulkhead(limit, max_wait_s=5)
    inside = most = 0

    async def work(seconds: float) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(seconds)
        inside -= 1

    async def main() -> None:
        await asyncio.gather(*(bulkhead.call(work, s) for s in sleeps))

    asyncio.run(main())
    assert most <= limit
    assert most == min(limit, len(sleeps)) or max(sleeps) == 0


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(st.floats(0, 0.004), st.one_of(st.none(), st.floats(0, 0.004))),
        min_size=1,
        max_size=25,
    ),
    st.floats(0.0005, 0.003),
)
def test_waits_that_time_out_or_are_cancelled_never_leak_a_place(
    limit: int, calls: list[tuple[float, float | None]], max_wait: float
) -> None:
    """Each call sleeps, and may be cancelled after a while: every place comes back."""
    bulkhead = Bulkhead(limit, max_wait_s=max_wait)
    inside = most = 0

    async def work(seconds: float) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        try:
            await asyncio.sleep(seconds)
        finally:
            inside -= 1

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(bulkhead.call(work, s)) for s, _ in calls]
        for task, (_, cancel_after) in zip(tasks, calls, strict=True):
            if cancel_after is not None:
                asyncio.get_running_loop().call_later(cancel_after, task.cancel)
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert most <= limit
    assert all(r is None or isinstance(r, BulkheadFull | asyncio.CancelledError) for r in results)
    assert bulkhead.in_flight == 0
    # every place is free again, and no more: of ``limit + 1`` calls, ``limit`` get in
    assert asyncio.run(places_free(bulkhead)) == limit


async def places_free(bulkhead: Bulkhead) -> int:
    gate = asyncio.Event()
    tasks = [
        asyncio.ensure_future(bulkhead.call(gate.wait)) for _ in range(bulkhead.max_concurrent + 1)
    ]
    await asyncio.sleep(0)
    admitted = bulkhead.in_flight
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)  # the extra one may be refused
    return admitted


def test_a_full_bulkhead_refuses_at_once_without_a_wait() -> None:
    bulkhead = Bulkhead(2)

    async def main() -> list[object]:
        gate = asyncio.Event()
        return await asyncio.gather(
            *(bulkhead.call(gate.wait) for _ in range(2)),
            bulkhead.call(gate.wait),
            _release(gate),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert isinstance(results[2], BulkheadFull)
    assert bulkhead.rejected == 1


async def _release(gate: asyncio.Event) -> None:
    await asyncio.sleep(0.01)
    gate.set()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(st.floats(0.5, 100), st.integers(1, 20),
       st.lists(st.floats(0, 2), min_size=1, max_size=100))  # fmt: skip
def test_a_rate_limiter_never_grants_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, waits: list[float]
) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst=burst, clock=clock)
    granted = 0
    tokens = float(burst)  # a reference token bucket, kept beside it
    for wait in waits:
        clock.now += wait
        tokens = min(float(burst), tokens + rate * wait)
        got = limiter.try_acquire() == 0
        if abs(tokens - 1.0) > 1e-6:  # away from the edge, it decides as the bucket does
            assert got == (tokens >= 1.0), (tokens, got)
        if got:
            granted += 1
            tokens -= 1.0
        assert granted <= burst + rate * clock.now + 1e-9


def test_rate_limited_says_when_to_retry() -> None:
    limiter = RateLimiter(2, burst=1, clock=Clock())
    assert limiter.try_acquire() == 0

    async def main() -> None:
        await limiter.acquire()

    with pytest.raises(RateLimited) as refused:
        asyncio.run(main())
    assert refused.value.retry_after_s == pytest.approx(0.5)
    assert refused.value.retry_after == refused.value.retry_after_s  # the old name still reads


def test_a_pipeline_runs_the_first_added_outermost() -> None:
    order: list[str] = []

    class Mark:
        def __init__(self, name: str) -> None:
            self.name = name

        async def call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
            order.append(f"{self.name} in")
            try:
                return await fn(*args, **kwargs)
            finally:
                order.append(f"{self.name} out")

    async def work(x: int) -> int:
        order.append("work")
        return x * 2

    pipeline = Pipeline().add(Mark("a")).add(Mark("b"))
    assert asyncio.run(pipeline.call(work, 21)) == 42
    assert order == ["a in", "b in", "work", "b out", "a out"]


def test_a_full_stack_retries_inside_the_deadline_and_falls_back() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        assert remaining() is not None  # the deadline reaches the innermost call
        raise ConnectionError("down")

    async def cached(error: BaseException) -> str:
        return f"cached after {type(error).__name__}"

    pipeline = (
        Pipeline()
        .add(Fallback(cached))
        .add(Timeout(5.0))
        .add(CircuitBreaker(minimum_calls=10))
        .add(Bulkhead(4))
        .add(Retry(attempts=3, base_s=0.001))
    )
    assert asyncio.run(pipeline.call(flaky)) == "cached after ConnectionError"
    assert attempts == 3


def test_the_deadline_stops_a_slow_pipeline() -> None:
    async def slow() -> None:
        await asyncio.sleep(5)

    pipeline = Pipeline().add(Timeout(0.05)).add(Retry(attempts=3))
    with pytest.raises(DeadlineExceeded):
        asyncio.run(pipeline.call(slow))


def test_one_timer_gives_each_call_its_own_deadline() -> None:
    timeout = Timeout(0.2)

    async def nap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async def later(delay: float, seconds: float) -> float:
        await asyncio.sleep(delay)
        return await timeout.call(nap, seconds)

    async def main() -> list[object]:
        return await asyncio.gather(
            timeout.call(nap, 0.1),  # ends well before its deadline
            later(0.15, 0.1),  # starts later: its deadline is later too
            later(0.15, 0.6),  # runs past its own
            timeout.call(nap, 0.6),
            return_exceptions=True,
        )

    for _ in range(2):  # a second event loop works as well as the first
        first, second, third, fourth = asyncio.run(main())
        assert (first, second) == (0.1, 0.1)
        assert isinstance(third, DeadlineExceeded)
        assert isinstance(fourth, DeadlineExceeded)


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    timeout = Timeout(5.0)

    async def main() -> None:
        task = asyncio.ensure_future(timeout.call(asyncio.sleep, 1))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_an_outer_sooner_deadline_wins() -> None:
    timeout = Timeout(5.0)

    async def main() -> float | None:
        with pytest.raises(DeadlineExceeded):
            async with deadline(0.05):  # the outer deadline's timer ends the call
                await timeout.call(asyncio.sleep, 1)
        return remaining()

    assert asyncio.run(main()) is None  # and it is gone after the block


def test_a_timeout_shared_by_two_event_loops_at_once() -> None:
    timeout = Timeout(0.2)
    results: list[object] = []

    async def main() -> None:
        quick = await timeout.call(asyncio.sleep, 0.05, result="quick")
        try:
            await timeout.call(asyncio.sleep, 1.0)
        except DeadlineExceeded as exc:
            results.append((quick, type(exc)))

    threads = [threading.Thread(target=asyncio.run, args=(main(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [("quick", DeadlineExceeded)] * 2


def test_a_rate_limiter_answers_take_as_every_keyed_limiter_does() -> None:
    limiter = RateLimiter(2, burst=1, clock=Clock())

    async def main() -> list[float]:
        return [await limiter.take(key="a"), await limiter.take(key="a"), await limiter.take()]

    first, second, other_key = asyncio.run(main())
    assert first == 0.0
    assert second == pytest.approx(0.5)  # one token at 2 a second
    assert other_key == 0.0
    assert all(isinstance(v, float) for v in (first, second, other_key))
