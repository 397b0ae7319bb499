"""Hedged requests and the CoDel load shedder."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from redline.resilience import Hedge, LoadShedder, RetryBudget, Shed


class Backend:
    """The first call is slow; later ones are quick."""

    def __init__(self, slow_s: float = 2.0) -> None:
        self.calls = 0
        self.cancelled = 0
        self.slow_s = slow_s

    async def get(self) -> int:
        self.calls += 1
        number = self.calls
        try:
            await asyncio.sleep(self.slow_s if number == 1 else 0.01)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return number


def test_a_slow_first_attempt_is_hedged_and_the_loser_cancelled() -> None:
    backend = Backend()
    hedge = Hedge(delay_s=0.05)
    assert asyncio.run(hedge.call(backend.get)) == 2  # the hedge won
    assert hedge.hedged == 1
    assert hedge.won_by_hedge == 1
    assert backend.cancelled == 1  # the slow first attempt was cancelled


def test_no_hedge_without_budget() -> None:
    budget = RetryBudget(ratio=0.0, floor_per_s=0.0, ttl_s=10)
    backend = Backend(slow_s=0.2)
    hedge = Hedge(delay_s=0.05, budget=budget)
    assert asyncio.run(hedge.call(backend.get)) == 1  # waited for the slow one
    assert hedge.hedged == 0
    assert backend.calls == 1


def test_a_percentile_delay_comes_from_recent_latencies() -> None:
    hedge = Hedge(percentile=90, minimum_samples=10)

    async def quick() -> str:
        await asyncio.sleep(0.001)
        return "ok"

    async def main() -> None:
        assert hedge.delay() is None  # no history: no hedging yet
        for _ in range(20):
            await hedge.call(quick)

    asyncio.run(main())
    delay = hedge.delay()
    assert delay is not None
    assert 0.001 <= delay < 0.5
    assert hedge.hedged == 0


def test_every_attempt_failing_raises_the_error() -> None:
    async def broken() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        asyncio.run(Hedge(delay_s=0.01).call(broken))


async def hold(gate: asyncio.Event, served: list[str], name: str) -> str:
    served.append(name)
    await gate.wait()
    return name


def test_the_queue_sheds_after_its_interval_and_serves_priority_first() -> None:
    shedder = LoadShedder(1, target_s=0.005, interval_s=0.3)
    served: list[str] = []

    async def main() -> list[object]:
        gate = asyncio.Event()
        busy = asyncio.ensure_future(shedder.call(hold, gate, served, "busy"))
        await asyncio.sleep(0)
        low = asyncio.ensure_future(shedder.call_at(0, hold, gate, served, "low"))
        high = asyncio.ensure_future(shedder.call_at(5, hold, gate, served, "high"))
        await asyncio.sleep(0.05)
        gate.set()  # busy ends: high is next though it came second
        return await asyncio.gather(busy, low, high, return_exceptions=True)

    results = asyncio.run(main())
    assert results == ["busy", "low", "high"]
    assert served == ["busy", "high", "low"]

    async def starved() -> None:
        gate = asyncio.Event()
        holder = asyncio.ensure_future(shedder.call(hold, gate, [], "holder"))
        await asyncio.sleep(0)
        with pytest.raises(Shed, match="waited 300 ms"):
            await shedder.call(hold, gate, [], "late")
        gate.set()
        await holder

    asyncio.run(starved())
    assert shedder.shed == 1


def test_a_standing_queue_turns_on_adaptive_lifo_and_short_allowances() -> None:
    ticks = itertools.count(step=0.06)  # each reading of the clock is 60 ms later
    shedder = LoadShedder(1, target_s=0.005, interval_s=0.1, clock=lambda: next(ticks))
    served: list[str] = []

    async def main() -> None:
        gate = asyncio.Event()
        tasks = [asyncio.ensure_future(shedder.call(hold, gate, served, "first"))]
        await asyncio.sleep(0)
        for name in ("a", "b", "c", "d"):
            tasks.append(asyncio.ensure_future(shedder.call(hold, gate, served, name)))
            await asyncio.sleep(0)
        gate.set()  # every waiter has waited far past the target, and keeps waiting
        await asyncio.gather(*tasks)

    asyncio.run(main())
    # a's long wait starts CoDel's interval, b's (an interval later) declares the overload;
    # from then on the newest waiter goes first
    assert served == ["first", "a", "b", "d", "c"]
    assert not shedder.overloaded  # the queue drained


def test_a_full_queue_sheds_the_lowest_priority() -> None:
    shedder = LoadShedder(1, max_queue=1, interval_s=1.0)

    async def main() -> list[object]:
        gate = asyncio.Event()
        holder = asyncio.ensure_future(shedder.call(hold, gate, [], "holder"))
        await asyncio.sleep(0)
        low = asyncio.ensure_future(shedder.call_at(0, hold, gate, [], "low"))
        await asyncio.sleep(0)
        high = asyncio.ensure_future(shedder.call_at(1, hold, gate, [], "high"))
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(holder, low, high, return_exceptions=True)

    holder, low, high = asyncio.run(main())
    assert holder == "holder"
    assert isinstance(low, Shed)
    assert high == "high"
