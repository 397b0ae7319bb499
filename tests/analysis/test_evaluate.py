"""Verdicts on synthetic runs: confidence, budgets, windows, abort rules."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.analysis import AbortMonitor, evaluate
from redline.analysis._evaluate import wilson
from redline.core import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
    parse_objective,
)


def data(requests: int, *, errors: int = 0, latency_us: int | list[int] = 1000) -> EndpointInterval:
    hist = Histogram()
    values = [latency_us] * requests if isinstance(latency_us, int) else latency_us
    hist.record_values(np.array(values, dtype=np.int64))
    return EndpointInterval(
        requests=requests,
        errors=errors,
        status={200: requests - errors, 500: errors} if errors else {200: requests},
        latency=hist,
        latency_actual=hist,
    )


def run_of(
    parts: list[EndpointInterval], *, checks: list[tuple[int, int]] | None = None
) -> RunResult:
    intervals = tuple(
        IntervalSnapshot(
            index=i,
            start_s=float(i),
            duration_s=1.0,
            endpoints={"api": part},
            generator=GeneratorInterval(scheduled=part.requests, sent=part.requests),
            checks={"ok": checks[i]} if checks else {},
        )
        for i, part in enumerate(parts)
    )
    return RunResult(
        id="t", plan={"name": "t"}, started_at="2026-01-01T00:00:00Z", intervals=intervals
    )


def verdict(run: RunResult, text: str, **options: object):  # type: ignore[no-untyped-def]
    return evaluate(run, [parse_objective(text, **options)])[0]  # type: ignore[arg-type]


def test_a_p99_from_40_requests_is_inconclusive_not_a_pass() -> None:
    run = run_of([data(40, latency_us=1000)])
    v = verdict(run, "p99 < 250ms")
    assert v.outcome == INCONCLUSIVE
    assert "too few" in v.reason
    assert v.samples == 40


def test_percentiles_pass_and_fail_with_enough_samples() -> None:
    fast = run_of([data(2000, latency_us=[1000 + i for i in range(2000)])] * 5)
    assert verdict(fast, "p99 < 250ms").outcome == PASS
    slow = run_of([data(2000, latency_us=300_000)] * 5)
    v = verdict(slow, "p99 < 250ms")
    assert v.outcome == FAIL
    assert v.value is not None
    assert v.value > 250
    assert v.margin is not None
    assert v.margin < 0


def test_a_value_within_its_confidence_interval_of_the_threshold_is_inconclusive() -> None:
    # 1,000 requests, 1.1% errors: the Wilson interval (0.6%..2.0%) straddles 1%.
    run = run_of([data(1000, errors=11)])
    assert verdict(run, "error_rate < 1%").outcome == INCONCLUSIVE
    many = run_of([data(10_000, errors=200)] * 3)
    v = verdict(many, "error_rate < 1%")
    assert v.outcome == FAIL
    assert v.value == 0.02
    assert v.budget_spent == 2.0


def test_errors_in_the_last_tenth_fail_a_windowed_objective_the_average_would_pass() -> None:
    # 100 s at 1,000 req/s: no errors for 90 s, then 5% for 10 s; 0.5% over the run.
    parts = [data(1000) for _ in range(90)] + [data(1000, errors=50) for _ in range(10)]
    v = verdict(run_of(parts), "error_rate < 1%")
    assert v.value == 0.005  # the whole run's average passes...
    assert v.outcome == FAIL  # ...but the late burn fails it
    assert v.window == (90.0, 100.0)
    assert v.burn_rates["long"] == 5.0
    assert v.burn_rates["short"] == 5.0
    assert v.budget_spent == 0.5


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(min_value=0.0, max_value=0.004), seconds=st.integers(20, 120))
def test_steady_errors_below_the_objective_never_fail_it(rate: float, seconds: int) -> None:
    errors = round(1000 * rate)
    v = verdict(run_of([data(1000, errors=errors) for _ in range(seconds)]), "error_rate < 1%")
    assert v.outcome == PASS
    assert v.budget_spent is not None
    assert v.budget_spent < 0.5


def test_sre_form_counts_slow_and_failed_requests_as_bad() -> None:
    # 1,000 requests per interval: 950 fast, 40 slow, 10 errors (fast): 95% good.
    latencies = [1000] * 960 + [400_000] * 40
    run = run_of([data(1000, errors=10, latency_us=latencies)] * 20)
    v = verdict(run, "99% of requests under 250ms")
    assert v.value == 0.95
    assert v.outcome == FAIL
    assert verdict(run, "90% of requests under 250ms").outcome == PASS


def test_check_rate_and_scopes() -> None:
    run = run_of([data(100)] * 10, checks=[(990, 10)] * 10)
    assert verdict(run, "checks >= 95%").outcome == PASS
    assert verdict(run, "checks >= 99.9%").outcome == FAIL
    missing = verdict(run, "p99 < 1s", scope="endpoint", scope_name="other")
    assert missing.outcome == INCONCLUSIVE
    assert "other" in missing.reason


def test_rps_mean_and_max() -> None:
    run = run_of([data(900, latency_us=2000)] * 4)
    assert verdict(run, "rps >= 850").outcome == PASS
    assert verdict(run, "rps >= 950").outcome == FAIL
    assert verdict(run, "mean < 3ms").outcome == PASS
    assert verdict(run, "max < 1ms").outcome == FAIL


@given(k=st.integers(0, 500), extra=st.integers(0, 500))
def test_wilson_interval_contains_the_proportion(k: int, extra: int) -> None:
    n = k + extra
    low, high = wilson(k, n)
    if n:
        assert low <= k / n <= high
    assert 0 <= low <= high <= 1


def test_abort_rule_fires_within_abort_after_plus_one_window() -> None:
    rule = parse_objective("error_rate < 1%", abort=True, abort_after=5.0)
    monitor = AbortMonitor([rule], window_s=3)
    parts = [data(1000) for _ in range(10)] + [data(1000, errors=200) for _ in range(30)]
    stopped_at = None
    for i, part in enumerate(parts):
        snapshot = run_of([part]).intervals[0]
        snapshot = dataclasses.replace(snapshot, index=i, start_s=float(i))
        if monitor(snapshot) is not None:
            stopped_at = i + 1
            break
    assert stopped_at is not None
    assert 10 < stopped_at <= 10 + 3  # the breach began at 10 s; one window later at most
    assert monitor.breach is not None
    assert monitor.breach[0] == rule
    # The abort verdict overrides a whole run that, averaged, might have passed.
    run = run_of(parts[:stopped_at])
    v = evaluate(run, [rule], aborted=monitor.breach)[0]
    assert v.outcome == FAIL
    assert v.reason.startswith("stopped the run at")


def test_abort_rule_waits_for_abort_after() -> None:
    rule = parse_objective("error_rate < 1%", abort=True, abort_after=8.0)
    monitor = AbortMonitor([rule], window_s=2)
    fired = [monitor(run_of([data(1000, errors=500)]).intervals[0]) for _ in range(8)]
    assert fired[:7] == [None] * 7
    assert fired[7] is not None
