"""Adaptive concurrency limits: bounds kept, limits move the right way, partitions guaranteed."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.resilience import ALGORITHMS, AdaptiveLimiter, LimitExceeded


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    st.sampled_from(ALGORITHMS),
    st.lists(st.tuples(st.booleans(), st.floats(0.0001, 2), st.booleans()), max_size=200),
)
def test_in_flight_never_exceeds_the_limit_and_the_limit_stays_in_bounds(
    algorithm: str, steps: list[tuple[bool, float, bool]]
) -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(algorithm=algorithm, initial=5, minimum=2, maximum=50, clock=clock)
    held = []
    for start, rtt, dropped in steps:
        if start or not held:
            limit = limiter.current  # the limit the call meets
            before = limiter.in_flight
            permit = limiter.try_acquire()
            if permit is not None:
                held.append(permit)
                # admitted only below the limit: in flight never passes it by a call
                assert limiter.in_flight <= limit
            else:
                assert before >= limit  # refused only at (or above, after a cut) the limit
        else:
            clock.now += rtt
            limiter.release(held.pop(0), dropped=dropped)
        assert limiter.in_flight == len(held)
        assert 2 <= limiter.limit <= 50


def run(
    limiter: AdaptiveLimiter, clock: Clock, rtt: float, n: int, *, dropped: bool = False
) -> None:
    for _ in range(n):
        permits = [p for p in (limiter.try_acquire() for _ in range(limiter.current)) if p]
        clock.now += rtt
        for permit in permits:
            limiter.release(permit, dropped=dropped)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_limit_grows_when_latency_is_flat_and_falls_when_it_climbs(algorithm: str) -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(algorithm=algorithm, initial=20, maximum=500, clock=clock)
    run(limiter, clock, 0.010, 50)
    grown = limiter.limit
    assert grown > 20
    if algorithm == "aimd":
        run(limiter, clock, 0.010, 10, dropped=True)
    elif algorithm == "vegas":
        run(limiter, clock, 0.100, 30)  # ten times slower than the least seen: a queue
    else:
        # gradient2 reacts to a sudden climb (and, by design, accepts a lasting new normal)
        run(limiter, clock, 0.100, 1)
    assert limiter.limit < grown


def test_partitions_keep_their_share() -> None:
    limiter = AdaptiveLimiter(algorithm="aimd", initial=10, maximum=10,
                              partitions={"live": 0.7, "batch": 0.3})  # fmt: skip
    batch = [limiter.try_acquire("batch") for _ in range(10)]
    assert sum(p is not None for p in batch) == 3  # batch cannot take live's seven places
    live = [limiter.try_acquire("live") for _ in range(10)]
    assert sum(p is not None for p in live) == 7


def test_call_refuses_over_the_limit() -> None:
    limiter = AdaptiveLimiter(algorithm="aimd", initial=1, minimum=1, maximum=1)

    async def main() -> None:
        gate = asyncio.Event()
        first = asyncio.ensure_future(limiter.call(gate.wait))
        await asyncio.sleep(0)
        with pytest.raises(LimitExceeded):
            await limiter.call(gate.wait)
        gate.set()
        await first

    asyncio.run(main())
    assert limiter.rejected == 1
