"""Every strategy's events, and the metrics they become (Prometheus and OpenTelemetry)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from redline.resilience import (
    AdaptiveLimiter,
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    Event,
    Fallback,
    Hedge,
    LoadShedder,
    Pipeline,
    RateLimited,
    RateLimiter,
    Retry,
    RetryBudget,
    Shed,
    Timeout,
    listen,
    unlisten,
)
from redline.resilience.otel import OpenTelemetryMetrics
from redline.resilience.prometheus import PrometheusMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise ConnectionError("down")


async def nap() -> str:
    await asyncio.sleep(0.01)
    return "ok"


@pytest.fixture
def seen() -> Iterator[list[Event]]:
    events: list[Event] = []
    listen(events.append)
    yield events
    unlisten(events.append)


def kinds(events: list[Event], strategy: str) -> list[tuple[str, str]]:
    return [(e.type, e.outcome) for e in events if e.strategy == strategy]


def test_a_breaker_emits_calls_rejections_and_transitions_outside_its_lock() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        name="payments", minimum_calls=2, open_wait_s=10, jitter=0, clock=clock
    )
    states_read: list[str] = []

    def listener(event: Event) -> None:
        if event.type == "state":
            states_read.append(breaker.state)  # would deadlock if emitted under the lock

    events: list[Event] = []
    breaker.events.subscribe(events.append)
    breaker.events.subscribe(listener)

    async def scenario() -> None:
        assert await breaker.call(ok) == "ok"
        with pytest.raises(ConnectionError):
            await breaker.call(boom)  # 1 of 2 failed: 50% trips it
        with pytest.raises(Exception, match="is open"):
            await breaker.call(ok)
        clock.now = 11
        await breaker.call(ok)  # a half-open trial

    asyncio.run(scenario())
    assert [(e.type, e.outcome) for e in events] == [
        ("call", "success"),
        ("state", "open"),
        ("call", "failure"),
        ("rejection", "open"),
        ("state", "half_open"),
        ("call", "success"),
    ]
    assert events[1].previous == "closed"
    assert all(e.seconds is not None for e in events if e.type == "call")  # timed when watched
    assert states_read == ["open", "half_open"]
    assert {(e.strategy, e.name) for e in events} == {("breaker", "payments")}


def test_retry_and_hedge_attempts(seen: list[Event]) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retry = Retry(attempts=3, sleep=sleep)
    with pytest.raises(ConnectionError):
        asyncio.run(retry.call(boom))
    assert kinds(seen, "retry") == [
        ("attempt", "retry"),
        ("attempt", "retry"),
        ("attempt", "exhausted"),
        ("call", "failure"),
    ]
    assert [e.seconds for e in seen if e.outcome == "retry"] == slept

    seen.clear()
    starved = Retry(attempts=3, budget=RetryBudget(ratio=0, floor_per_s=0), sleep=sleep)
    with pytest.raises(ConnectionError):
        asyncio.run(starved.call(boom))
    assert kinds(seen, "retry") == [("attempt", "budget_exhausted"), ("call", "failure")]

    calls = 0

    async def slow_first() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0 if calls == 1 else 0.001)
        return calls

    assert asyncio.run(Hedge(delay_s=0.02).call(slow_first)) == 2
    assert kinds(seen, "hedge") == [("attempt", "hedge"), ("attempt", "hedge_won")]


def test_limits_shedding_fallback_timeout_and_pipeline(seen: list[Event]) -> None:
    async def scenario() -> None:
        bulkhead = Bulkhead(1)
        first = asyncio.ensure_future(bulkhead.call(nap))
        await asyncio.sleep(0)
        with pytest.raises(BulkheadFull):
            await bulkhead.call(ok)
        await first

        limiter = RateLimiter(1, burst=1)
        await limiter.call(ok)
        with pytest.raises(RateLimited):
            await limiter.call(ok)

        shedder = LoadShedder(1, interval_s=1.0, max_queue=1)
        running = [asyncio.ensure_future(shedder.call(nap)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Shed):
            await shedder.call(ok)  # the queue (one place) is full
        await asyncio.gather(*running)

        async def cached(_: BaseException) -> str:
            return "cached"

        assert await Fallback(cached).call(boom) == "cached"
        with pytest.raises(TimeoutError):
            await Timeout(0.001).call(asyncio.sleep, 1)
        pipeline = Pipeline(name="checkout").add(Timeout(1.0)).add(CircuitBreaker())
        assert await pipeline.call(ok) == "ok"

    asyncio.run(scenario())
    assert ("rejection", "full") in kinds(seen, "bulkhead")
    assert ("rejection", "rate_limited") in kinds(seen, "rate_limiter")
    assert ("rejection", "shed") in kinds(seen, "load_shedder")
    assert kinds(seen, "fallback") == [("call", "fallback")]
    assert kinds(seen, "timeout") == [("call", "timeout")]
    [piped] = [e for e in seen if e.strategy == "pipeline"]
    assert (piped.name, piped.outcome) == ("checkout", "success")
    assert piped.seconds is not None
    assert piped.seconds >= 0


def test_an_adaptive_limit_reports_its_moves(seen: list[Event]) -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(algorithm="aimd", initial=2, maximum=10, clock=clock)
    held = [limiter.try_acquire(), limiter.try_acquire()]
    assert limiter.try_acquire() is None
    for permit in held:
        assert permit is not None
        limiter.release(permit)
    outcomes = kinds(seen, "adaptive_limiter")
    assert ("rejection", "limit") in outcomes
    limits = [e.value for e in seen if e.type == "limit"]
    assert limits
    assert limits[-1] == limiter.current > 2


def test_a_failing_listener_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker()

    def broken(event: Event) -> None:
        raise RuntimeError("metrics backend bug")

    breaker.events.subscribe(broken)
    with caplog.at_level(logging.ERROR):
        assert breaker.call_sync(lambda: 5) == 5
    assert "metrics backend bug" in caplog.text


def test_a_global_listener_sees_strategies_made_before_and_after() -> None:
    before = CircuitBreaker(name="before")
    events: list[Event] = []
    listen(events.append)
    try:
        after = CircuitBreaker(name="after")
        before.call_sync(lambda: 1)
        after.call_sync(lambda: 1)
    finally:
        unlisten(events.append)
    before.call_sync(lambda: 1)  # no longer heard
    assert [e.name for e in events] == ["before", "after"]


def prometheus_flow() -> tuple[CollectorRegistry, CircuitBreaker]:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    breaker = CircuitBreaker(name="payments", minimum_calls=2, open_wait_s=10)
    limiter = AdaptiveLimiter(initial=7, name="api")
    metrics.watch(breaker, limiter)
    for fn in (lambda: 1, lambda: 1):
        breaker.call_sync(fn)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call_sync(lambda: 1 / 0)
    with pytest.raises(Exception, match="is open"):
        breaker.call_sync(lambda: 1)
    return registry, breaker


def test_prometheus_metrics_follow_the_events() -> None:
    registry, _ = prometheus_flow()
    who = {"strategy": "breaker", "name": "payments"}

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {**who, **labels})

    assert value("redline_resilience_calls_total", outcome="success") == 2
    assert value("redline_resilience_calls_total", outcome="failure") == 2
    assert value("redline_resilience_call_duration_seconds_count") == 4
    assert value("redline_resilience_rejections_total", reason="open") == 1
    assert value("redline_resilience_state", state="open") == 1
    assert value("redline_resilience_state", state="closed") == 0
    transition = {"from_state": "closed", "to_state": "open"}
    assert value("redline_resilience_transitions_total", **transition) == 1
    limit = {"strategy": "adaptive_limiter", "name": "api"}
    assert registry.get_sample_value("redline_resilience_limit", limit) == 7


def test_the_exposition_passes_promtool(promtool: str) -> None:
    registry, _ = prometheus_flow()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(registry),
        capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_opentelemetry_metrics_follow_the_events() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = OpenTelemetryMetrics(provider.get_meter("test"))
    retry = Retry(attempts=2, sleep=lambda _: asyncio.sleep(0), name="db")
    metrics.watch(retry)
    with pytest.raises(ConnectionError):
        asyncio.run(retry.call(boom))
    asyncio.run(retry.call(ok))

    points: dict[tuple[str, tuple[tuple[str, str], ...]], object] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = tuple(sorted((k, str(v)) for k, v in point.attributes.items()))
                    points[metric.name, labels] = point
    who = (("name", "db"), ("strategy", "retry"))

    def labelled(**extra: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*who, *extra.items())))

    calls = points["redline.resilience.calls", labelled(outcome="failure")]
    assert getattr(calls, "value", None) == 1
    successes = points["redline.resilience.calls", labelled(outcome="success")]
    assert getattr(successes, "value", None) == 1
    attempts = points["redline.resilience.attempts", labelled(outcome="retry")]
    assert getattr(attempts, "value", None) == 1
    durations = points["redline.resilience.call_duration", labelled()]
    assert getattr(durations, "count", None) == 2
