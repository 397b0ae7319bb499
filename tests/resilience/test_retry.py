"""Retries: capped, jittered, Retry-After honoured, never a cancellation; budget and throttle."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.resilience import AdaptiveThrottle, RateLimitedError, Retry, RetryBudget, Throttled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or ConnectionError("refused")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"

    async def call(self) -> str:
        return self()


def retrying(**options: object) -> tuple[Retry, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retry = Retry(sleep=sleep, sleep_sync=slept.append, rng=random.Random(1), **options)  # type: ignore[arg-type]
    return retry, slept


def test_attempts_are_a_hard_cap_and_delays_are_full_jitter() -> None:
    retry, slept = retrying(attempts=4, base_s=0.1, max_s=0.25)
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        retry.call_sync(flaky)
    assert flaky.calls == 4
    assert len(slept) == 3
    for attempt, delay in enumerate(slept):
        assert 0 <= delay <= min(0.25, 0.1 * 2**attempt)


def test_success_after_failures_returns_the_result() -> None:
    retry, _ = retrying(attempts=3)
    flaky = Flaky(2)
    assert asyncio.run(retry.call(flaky.call)) == "ok"
    assert flaky.calls == 3


def test_retry_after_is_honoured() -> None:
    class BusyError(Exception):
        retry_after = 2.5

    retry, slept = retrying(attempts=2, base_s=0.01)
    assert retry.call_sync(Flaky(1, BusyError())) == "ok"
    assert slept == [2.5]


def test_the_kits_own_retry_after_is_honoured() -> None:
    retry, slept = retrying(attempts=2, base_s=0.01, retry_on=(RateLimitedError,))
    assert retry.call_sync(Flaky(1, RateLimitedError(1.5))) == "ok"
    assert slept == [1.5]


def test_errors_not_listed_and_cancellations_are_not_retried() -> None:
    retry, _ = retrying(attempts=5, retry_on=(ConnectionError,))
    flaky = Flaky(3, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        retry.call_sync(flaky)
    assert flaky.calls == 1

    cancelled = Flaky(3, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(retry.call(cancelled.call))
    assert cancelled.calls == 1


def test_a_result_can_ask_for_a_retry() -> None:
    answers = iter(["busy", "busy", "done"])
    retry, _ = retrying(attempts=5, retry_if_result=lambda r: r == "busy")
    assert retry.call_sync(lambda: next(answers)) == "done"


def test_an_empty_budget_stops_retries() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.0, floor_per_s=0.2, ttl_s=10, clock=clock)  # 2 retries
    retry, _ = retrying(attempts=10, budget=budget)
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        retry.call_sync(flaky)
    assert flaky.calls == 3  # the try and the two retries the budget had


@given(
    st.lists(
        st.tuples(st.sampled_from(["request", "retry"]), st.floats(0, 3)),
        min_size=1,
        max_size=200,
    )
)
def test_a_budget_is_never_exceeded_in_any_window(steps: list[tuple[str, float]]) -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, floor_per_s=1.0, ttl_s=10, clock=clock)
    history: list[tuple[float, str]] = []
    for kind, wait in steps:
        clock.now += wait
        if kind == "request":
            budget.deposit()
            history.append((clock.now, "request"))
        elif budget.try_withdraw():
            history.append((clock.now, "retry"))
    for at, kind in history:  # every window of ttl ending at a retry
        if kind != "retry":
            continue
        inside = [k for t, k in history if int(at) - 10 < int(t) <= int(at)]
        assert inside.count("retry") <= 10 * 1.0 + 0.2 * inside.count("request")


def test_throttle_refuses_as_the_sre_book_says() -> None:
    clock = Clock()
    throttle = AdaptiveThrottle(k=2, window_s=120, clock=clock, rng=random.Random(3))
    for _ in range(100):
        throttle.allow()  # 100 requests...
    for _ in range(10):
        throttle.accepted()  # ...of which the backend accepted 10
    assert throttle.probability() == pytest.approx((100 - 2 * 10) / 101)
    refused = sum(not throttle.allow() for _ in range(1000))
    assert 600 < refused < 1000
    clock.now += 121  # the window forgets
    assert throttle.probability() == 0.0


def test_a_throttled_call_is_refused_locally() -> None:
    throttle = AdaptiveThrottle(rng=random.Random(1))
    for _ in range(1000):
        throttle.allow()  # nothing ever accepted
    retry, _ = retrying(throttle=throttle)
    with pytest.raises(Throttled):
        retry.call_sync(lambda: "never sent")
