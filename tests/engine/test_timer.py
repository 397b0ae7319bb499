"""The precise timer (a Linux timerfd): wakes the loop at the armed moment, never before."""

from __future__ import annotations

import asyncio
import time

import pytest

from redline.engine._timer import precise_timer


def test_it_fires_at_or_after_the_armed_time_and_rearms() -> None:
    async def main() -> list[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        done = asyncio.Event()
        timer = precise_timer(loop, lambda: (fired.append(time.monotonic_ns()), done.set()))
        assert timer is not None  # Linux: the engine relies on it
        armed = []
        for delay_us in (300, 2_000, 50):
            done.clear()
            at = time.monotonic_ns() + delay_us * 1000
            armed.append(at)
            timer.arm(at)
            await asyncio.wait_for(done.wait(), 5)
        timer.close()
        timer.close()  # idempotent
        return list(zip(armed, fired, strict=True))

    for armed, fired in asyncio.run(main()):
        assert fired >= armed  # never early: an arrival is never sent before it is due


def test_a_later_arm_replaces_an_earlier_one() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        calls = []
        timer = precise_timer(loop, lambda: calls.append(time.monotonic_ns()))
        assert timer is not None
        now = time.monotonic_ns()
        timer.arm(now + 200_000_000)
        timer.arm(now + 1_000_000)  # the next arrival moved closer: one wake, then
        await asyncio.sleep(0.05)
        timer.close()
        return len(calls)

    assert asyncio.run(main()) == 1


def test_without_a_timerfd_the_caller_keeps_its_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDLINE_NO_TIMERFD", "1")

    async def main() -> object:
        return precise_timer(asyncio.get_running_loop(), lambda: None)

    assert asyncio.run(main()) is None


@pytest.mark.parametrize("timerfd", [True, False])
def test_the_open_model_sends_every_arrival_with_or_without_it(
    timerfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redline.engine import run_plan
    from redline.plan import plan_from_dict
    from redline.testing import TestServer

    if not timerfd:
        monkeypatch.setenv("REDLINE_NO_TIMERFD", "1")  # the workers inherit it
    with TestServer().running() as server:
        plan = plan_from_dict(
            {"target": server.url, "requests": [{"path": "/"}], "load": {"rate": 400},
             "duration": "1s"}
        )  # fmt: skip
        result = run_plan(plan, workers=1)
    assert server.requests_total == 400
    lag = result.generator().lag_ms
    assert lag is not None
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"]
    assert result.to_dict()["generator"]["lag_ms"] == lag
