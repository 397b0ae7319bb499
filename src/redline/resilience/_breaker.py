"""A circuit breaker that never holds a lock across the protected call.

States: ``closed`` (calls pass; outcomes are counted in a sliding window), ``open`` (calls
are refused with :class:`CircuitOpenError` until the open wait is over), ``half_open`` (a
bounded number of trial calls decide: close again, or open for longer). Manual states:
``forced_open`` (refuse everything), ``disabled`` (pass everything, count nothing) and
``metrics_only`` (pass everything, count, never open).

It opens when, over at least ``minimum_calls`` in the window, the failure rate reaches
``failure_rate`` or the share of calls slower than ``slow_call_s`` reaches
``slow_call_rate``. Each consecutive opening waits ``backoff`` times longer than the last
(up to ``max_open_wait_s``), with jitter, so a fleet of clients does not probe in step.

The lock guards a few counters for a microsecond before and after the call; the call
itself runs unlocked, so concurrent calls through one breaker run concurrently.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from ._decorate import decorate
from ._errors import ResilienceError
from ._events import Events
from ._window import CountWindow, TimeWindow, Totals

__all__ = [
    "CLOSED",
    "DISABLED",
    "FORCED_OPEN",
    "HALF_OPEN",
    "METRICS_ONLY",
    "OPEN",
    "BreakerOpen",
    "CircuitBreaker",
    "CircuitOpenError",
]

CLOSED = "closed"
"""Breaker state: calls pass, outcomes are counted."""
OPEN = "open"
"""Breaker state: calls fail fast until the wait in open state has passed."""
HALF_OPEN = "half_open"
"""Breaker state: a few trial calls decide between closed and open."""
FORCED_OPEN = "forced_open"
"""Manual state: every call fails fast until the state is changed by hand."""
DISABLED = "disabled"
"""Manual state: every call passes and nothing is counted."""
METRICS_ONLY = "metrics_only"
"""Manual state: every call passes; outcomes are counted but never open the breaker."""

P = ParamSpec("P")
T = TypeVar("T")


class CircuitOpenError(ResilienceError):
    """The breaker refused the call; ``retry_after_s`` is the seconds until it may try."""

    def __init__(self, name: str, state: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is {state}; retry after {retry_after:.1f}s")
        self.name = name
        self.state = state
        self.retry_after_s = retry_after

    @property
    def retry_after(self) -> float:
        """The old name of :attr:`retry_after_s`, kept as an alias."""
        return self.retry_after_s


BreakerOpen = CircuitOpenError
"""The old name of :class:`CircuitOpenError`, kept as an alias."""


class CircuitBreaker:
    """A circuit breaker for sync and async callables (see the module's description).

    Use ``await breaker.call(fn, ...)``, ``breaker.call_sync(fn, ...)``, or decorate an
    async function with ``@breaker``.
    """

    def __init__(
        self,
        *,
        name: str = "breaker",
        window: str = "count",
        window_size: int = 100,
        minimum_calls: int = 20,
        failure_rate: float = 0.5,
        slow_call_rate: float = 1.0,
        slow_call_s: float = float("inf"),
        open_wait_s: float = 30.0,
        max_open_wait_s: float = 300.0,
        backoff: float = 2.0,
        jitter: float = 0.1,
        half_open_calls: int = 5,
        ignore: tuple[type[BaseException], ...] = (),
        is_failure: Callable[[BaseException], bool] | None = None,
        result_is_failure: Callable[[Any], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """Configure; the breaker starts closed.

        Raises:
            ValueError: a setting out of its range.
        """
        if window not in ("count", "time"):
            raise ValueError(f'window must be "count" or "time", got {window!r}')
        for label, rate in (("failure_rate", failure_rate), ("slow_call_rate", slow_call_rate)):
            if not 0 < rate <= 1:
                raise ValueError(f"{label} must be within (0, 1], got {rate}")
        if minimum_calls < 1 or half_open_calls < 1:
            raise ValueError("minimum_calls and half_open_calls must be at least 1")
        self.name = name
        self.minimum_calls = minimum_calls
        self.failure_rate = failure_rate
        self.slow_call_rate = slow_call_rate
        self.slow_call_s = slow_call_s
        self._timed = slow_call_s != float("inf")
        self.open_wait_s = open_wait_s
        self.max_open_wait_s = max_open_wait_s
        self.backoff = backoff
        self.jitter = jitter
        self.half_open_calls = half_open_calls
        self.ignore = ignore
        self.is_failure = is_failure
        self.result_is_failure = result_is_failure
        self.clock = clock
        self.rng = rng or random.Random()
        self._window: CountWindow | TimeWindow = (
            CountWindow(window_size) if window == "count" else TimeWindow(window_size, clock)
        )
        self._add = self._window.add
        self._lock = threading.Lock()
        self._state = CLOSED
        self._open_until = 0.0
        self._openings = 0  # consecutive openings, for the backoff
        self._trial = Totals()  # half-open trial outcomes
        self._trials_admitted = 0
        self.transitions: list[tuple[str, str]] = []
        self._unsent: list[tuple[str, str, bool]] = []  # transitions not yet emitted
        self.rejected = 0
        self.events = Events("breaker", name)
        self._listeners = self.events.listeners

    # -- state -----------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The state now (an open breaker whose wait is over reads as half-open)."""
        with self._lock:
            self._maybe_half_open()
            state = self._state
        if self._unsent:
            self._emit_transitions()
        return state

    @property
    def open_until(self) -> float:
        """When an open breaker may try again, on its clock."""
        return self._open_until

    def _to(self, state: str, *, peer: bool = False) -> None:
        if state != self._state:
            self.transitions.append((self._state, state))
            self._unsent.append((self._state, state, peer))
            self._state = state

    def _emit_transitions(self) -> None:
        """Emit the transitions made under the lock, outside it (listeners may be slow)."""
        with self._lock:
            unsent, self._unsent = self._unsent, []
        for previous, state, peer in unsent:
            self.events.emit("state", state, previous=previous, peer=peer)

    def _maybe_half_open(self) -> None:
        if self._state == OPEN and self.clock() >= self._open_until:
            self._to(HALF_OPEN)
            self._trial = Totals()
            self._trials_admitted = 0

    def _open(self) -> None:
        wait = min(self.open_wait_s * self.backoff**self._openings, self.max_open_wait_s)
        wait *= 1 + self.rng.uniform(-self.jitter, self.jitter)
        self._openings += 1
        self._open_until = self.clock() + wait
        self._to(OPEN)

    def _close(self) -> None:
        self._openings = 0
        self._window.clear()
        self._to(CLOSED)

    def force_open(self) -> None:
        """Refuse every call until :meth:`reset`."""
        self.adopt(FORCED_OPEN)

    def disable(self) -> None:
        """Pass every call and count nothing until :meth:`reset`."""
        self.adopt(DISABLED)

    def metrics_only(self) -> None:
        """Pass every call, count outcomes, never open, until :meth:`reset`."""
        self.adopt(METRICS_ONLY)

    def reset(self) -> None:
        """Closed, with an empty window."""
        self.adopt(CLOSED)

    def adopt(self, state: str, *, open_for_s: float | None = None, peer: bool = False) -> None:
        """Take ``state`` (``open`` for ``open_for_s``); ``peer``: told by another process.

        Raises:
            ValueError: an unknown state, or ``open`` without ``open_for_s``.
        """
        if state not in (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED, METRICS_ONLY):
            raise ValueError(f"unknown breaker state {state!r}")
        if state == OPEN and open_for_s is None:
            raise ValueError("an open breaker needs open_for_s")
        with self._lock:
            if state == CLOSED:
                self._openings = 0
                self._window.clear()
            elif state == OPEN:
                assert open_for_s is not None
                self._open_until = self.clock() + max(open_for_s, 0.0)
            elif state == HALF_OPEN:
                self._trial = Totals()
                self._trials_admitted = 0
            self._to(state, peer=peer)
        self._emit_transitions()

    # -- calls -----------------------------------------------------------------------
    def acquire(self) -> str:
        """Ask to make a call: returns the state it is made in.

        Raises:
            CircuitOpenError: the call is refused.
        """
        with self._lock:
            self._maybe_half_open()
            state = self._state
            if state in (CLOSED, DISABLED, METRICS_ONLY):
                return state
            if state == HALF_OPEN and self._trials_admitted < self.half_open_calls:
                self._trials_admitted += 1
                admitted = True
            else:
                admitted = False
                self.rejected += 1
                retry_after = max(self._open_until - self.clock(), 0.0) if state == OPEN else 0.0
        if self._unsent:
            self._emit_transitions()
        if admitted:
            return state
        if self._listeners:
            self.events.emit("rejection", state, value=retry_after)
        raise CircuitOpenError(self.name, state, retry_after)

    def release(self, state: str) -> None:
        """Give back a permit without an outcome (cancelled, or an ignored error)."""
        with self._lock:
            if state == HALF_OPEN and self._state == HALF_OPEN:
                self._trials_admitted -= 1

    def record(self, state: str, *, failed: bool, seconds: float) -> None:
        """Count the outcome of a call made in ``state`` (from :meth:`acquire`)."""
        self._record(state, failed, seconds >= self.slow_call_s)

    def _record(self, state: str, failed: bool, slow: bool) -> None:
        self._count(state, failed, slow)
        if self._unsent:
            self._emit_transitions()

    def _count(self, state: str, failed: bool, slow: bool) -> None:
        with self._lock:
            current = self._state
            if current == CLOSED and state == CLOSED:  # the common case, first
                totals = self._add(failed, slow)
                # a success can trip it only by bringing the calls up to the minimum
                check = failed or slow or totals.calls == self.minimum_calls
                if check and self._tripped(totals, minimum=self.minimum_calls):
                    self._open()
                return
            if current == DISABLED or state == DISABLED:
                return
            if current == HALF_OPEN and state == HALF_OPEN:
                trial = self._trial
                trial.calls += 1
                trial.failures += int(failed)
                trial.slow += int(slow)
                if trial.calls >= self.half_open_calls:
                    if self._tripped(trial, minimum=1):
                        self._open()
                    else:
                        self._close()
                return
            if current != METRICS_ONLY:
                return  # a late outcome of a call made before the breaker opened
            self._add(failed, slow)  # metrics only: counted, never opened

    def _tripped(self, totals: Totals, *, minimum: int) -> bool:
        if totals.calls < minimum:
            return False
        return totals.failure_rate >= self.failure_rate or totals.slow_rate >= self.slow_call_rate

    def _failed(self, exc: BaseException) -> bool:
        return self.is_failure(exc) if self.is_failure is not None else True

    def _after_error(self, state: str, exc: BaseException, started: float | None) -> None:
        """Count an error ending a call made in ``state`` (started at ``started`` if timed)."""
        seconds = None if started is None else self.clock() - started
        if not isinstance(exc, Exception) or isinstance(exc, self.ignore):
            self.release(state)  # cancelled, or an ignored error: not an outcome
            outcome = "ignored"
        else:
            failed = self._failed(exc)
            self._record(state, failed, seconds is not None and seconds >= self.slow_call_s)
            outcome = "failure" if failed else "success"
        if self._listeners:
            self.events.emit("call", outcome, seconds=seconds)

    def _after_result(self, state: str, result: object, started: float | None) -> None:
        """Count a result ending a call made in ``state`` (started at ``started`` if timed)."""
        failed = self.result_is_failure is not None and self.result_is_failure(result)
        if started is None:
            self._record(state, failed, False)
            return
        seconds = self.clock() - started
        self._record(state, failed, seconds >= self.slow_call_s)
        if self._listeners:
            self.events.emit("call", "failure" if failed else "success", seconds=seconds)

    # The async and the sync call share every step but the call itself: admitting
    # (_enter), counting an error (_after_error), a result (_after_result) or the common
    # untimed success while closed (_succeeded_closed). What is left in each body is the
    # skeleton, with the closed path's checks inline: a method call there costs a tenth
    # of the success path (benchmarks/bench_resilience.py).
    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: refused; otherwise whatever ``fn`` raises.
        """
        state, started = self._state, None
        if state is not CLOSED or self._timed or self._listeners:
            state, started = self._enter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._after_error(state, exc, started)
            raise
        if started is None and state is CLOSED and self.result_is_failure is None:
            self._succeeded_closed()  # the common case, in one short step
        else:
            self._after_result(state, result, started)
        return result

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` through the breaker (threads welcome)."""
        state, started = self._state, None
        if state is not CLOSED or self._timed or self._listeners:
            state, started = self._enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._after_error(state, exc, started)
            raise
        if started is None and state is CLOSED and self.result_is_failure is None:
            self._succeeded_closed()
        else:
            self._after_result(state, result, started)
        return result

    def _enter(self) -> tuple[str, float | None]:
        """Admit a call (or raise): the state it runs in, and its start if it is timed."""
        state = self._state
        if state != CLOSED:  # closed admits without the lock; anything else asks
            state = self.acquire()
        # calls are timed only for a slow-call bound or a listener
        return state, (self.clock() if self._timed or self._listeners else None)

    def _succeeded_closed(self) -> None:
        """Count an untimed success of a call made closed (what most calls are)."""
        with self._lock:
            if self._state is CLOSED:
                totals = self._add(False, False)
                # a success can trip it only by bringing the calls up to the minimum
                if totals.calls == self.minimum_calls and self._tripped(totals, minimum=1):
                    self._open()
        if self._unsent:
            self._emit_transitions()

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function."""
        return decorate(self.call, fn)
