"""The circuit breaker: its state machine (property-tested), its windows, its concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from redline.resilience import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    BreakerOpen,
    CircuitBreaker,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BreakerMachine(RuleBasedStateMachine):
    """Random calls, outcomes and time; the breaker must keep to its state machine."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.breaker = CircuitBreaker(name=
            "prop", window_size=10, minimum_calls=5, failure_rate=0.5, open_wait_s=10,
            backoff=2, max_open_wait_s=80, jitter=0.0, half_open_calls=3, clock=self.clock,
        )  # fmt: skip
        self.outcomes: list[bool] = []  # failures seen while closed, newest last
        self.trials: list[bool] = []
        self.openings = 0  # consecutive openings since it last closed: the backoff
        self.half_open_at = 0.0  # when the breaker, once open, lets trials through

    @rule(failed=st.booleans())
    def call(self, failed: bool) -> None:
        before = self.breaker.state
        refused: BreakerOpen | None = None
        try:
            state = self.breaker.acquire()
        except BreakerOpen as exc:
            refused = exc
        if refused is not None:
            assert before in (OPEN, HALF_OPEN, FORCED_OPEN)
            assert refused.retry_after_s > 0 or before != OPEN
            return
        assert state == before
        self.breaker.record(state, failed=failed, seconds=0.0)
        after = self.breaker.state
        if after == OPEN and state != OPEN:
            self.openings += 1
            wait = min(10.0 * 2 ** (self.openings - 1), 80.0)
            self.half_open_at = self.clock.now + wait
        elif after == CLOSED and state == HALF_OPEN:
            self.openings = 0
        if state == CLOSED:
            self.outcomes = ([*self.outcomes, failed])[-10:]
            window = self.outcomes
            tripped = len(window) >= 5 and sum(window) / len(window) >= 0.5
            assert (after == OPEN) == tripped, (window, after)
            if tripped:
                self.outcomes = []
        elif state == HALF_OPEN:
            self.trials.append(failed)
            if len(self.trials) == 3:
                assert after == (OPEN if sum(self.trials) / 3 >= 0.5 else CLOSED)
                self.trials = []
                self.outcomes = []
            else:
                assert after == HALF_OPEN

    @rule(seconds=st.floats(0, 100))
    def wait(self, seconds: float) -> None:
        before = self.breaker.state
        self.clock.now += seconds
        after = self.breaker.state
        if before != OPEN:
            assert after == before  # only an open breaker changes with time
            return
        # open for exactly its wait (10 s, doubled per consecutive opening, at most 80 s)
        if abs(self.clock.now - self.half_open_at) > 1e-6:
            expected = HALF_OPEN if self.clock.now > self.half_open_at else OPEN
            assert after == expected, (self.clock.now, self.half_open_at, self.openings)
        if after == HALF_OPEN:
            self.trials = []

    @precondition(lambda self: self.breaker.state == OPEN)
    @rule()
    def refused_while_open(self) -> None:
        with pytest.raises(BreakerOpen):
            self.breaker.acquire()

    @invariant()
    def transitions_are_allowed(self) -> None:
        allowed = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (HALF_OPEN, CLOSED)}
        assert set(self.breaker.transitions) <= allowed


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)


def test_each_consecutive_opening_waits_longer() -> None:
    clock = Clock()
    breaker = CircuitBreaker(minimum_calls=1, open_wait_s=10, backoff=2, jitter=0,
                             half_open_calls=1, clock=clock)  # fmt: skip
    waits = []
    for _ in range(4):
        breaker.record(breaker.acquire(), failed=True, seconds=0)
        assert breaker.state == OPEN
        with pytest.raises(BreakerOpen) as refused:
            breaker.acquire()
        waits.append(round(refused.value.retry_after_s))
        clock.now += refused.value.retry_after_s
        assert breaker.state == HALF_OPEN
    assert waits == [10, 20, 40, 80]
    breaker.record(breaker.acquire(), failed=False, seconds=0)
    assert breaker.state == CLOSED  # a successful trial closes, and resets the backoff


def test_slow_calls_open_it_too() -> None:
    breaker = CircuitBreaker(minimum_calls=4, slow_call_s=0.5, slow_call_rate=0.75)
    for seconds in (0.1, 0.6, 0.7, 0.8):
        breaker.record(breaker.acquire(), failed=False, seconds=seconds)
    assert breaker.state == OPEN


def test_a_time_window_forgets_old_calls() -> None:
    clock = Clock()
    breaker = CircuitBreaker(window="time", window_size=10, minimum_calls=4, clock=clock)
    for _ in range(3):
        breaker.record(breaker.acquire(), failed=True, seconds=0)
    clock.now += 11  # those three fall out of the window
    breaker.record(breaker.acquire(), failed=True, seconds=0)
    assert breaker.state == CLOSED
    for _ in range(3):
        breaker.record(breaker.acquire(), failed=True, seconds=0)
    assert breaker.state == OPEN


def test_ignored_errors_and_result_predicates() -> None:
    breaker = CircuitBreaker(minimum_calls=2, ignore=(KeyError,),
                             result_is_failure=lambda r: r == "bad")  # fmt: skip

    def lookup() -> str:
        raise KeyError("missing")

    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call_sync(lookup)
    assert breaker.state == CLOSED
    for _ in range(2):
        assert breaker.call_sync(lambda: "bad") == "bad"
    assert breaker.state == OPEN


def test_manual_states() -> None:
    breaker = CircuitBreaker(minimum_calls=1)
    breaker.force_open()
    with pytest.raises(BreakerOpen):
        breaker.call_sync(lambda: 1)
    breaker.disable()
    for _ in range(5):
        with pytest.raises(ZeroDivisionError):
            breaker.call_sync(lambda: 1 / 0)
    assert breaker.call_sync(lambda: 2) == 2
    breaker.metrics_only()
    with pytest.raises(ZeroDivisionError):
        breaker.call_sync(lambda: 1 / 0)
    assert breaker.call_sync(lambda: 3) == 3  # counted, never opened
    breaker.reset()
    assert breaker.state == CLOSED


def test_no_lock_is_held_across_the_call() -> None:
    breaker = CircuitBreaker()
    inside = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        release.wait(5)
        with lock:
            inside -= 1

    threads = [threading.Thread(target=breaker.call_sync, args=(slow,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while most < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert most == 8  # all eight were inside the protected call at once


def test_a_cancelled_call_is_not_a_failure_and_frees_its_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(minimum_calls=1, open_wait_s=1, jitter=0, half_open_calls=1,
                             clock=clock)  # fmt: skip
    breaker.record(breaker.acquire(), failed=True, seconds=0)
    clock.now += 2
    assert breaker.state == HALF_OPEN

    async def main() -> None:
        task = asyncio.ensure_future(breaker.call(asyncio.sleep, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert breaker.state == HALF_OPEN
    assert breaker.acquire() == HALF_OPEN  # the trial permit came back


def test_the_decorator_protects_an_async_function() -> None:
    breaker = CircuitBreaker(minimum_calls=2)

    @breaker
    async def fail() -> None:
        raise RuntimeError("down")

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await fail()
        with pytest.raises(BreakerOpen):
            await fail()

    asyncio.run(main())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="window must be"):
        CircuitBreaker(window="sliding")
    with pytest.raises(ValueError, match="failure_rate must be within"):
        CircuitBreaker(failure_rate=0)
