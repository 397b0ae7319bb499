"""Comparisons: bootstrap ratios, Benjamini-Hochberg, FCR intervals, verdicts per metric."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.analysis import (
    IMPROVEMENT,
    INCONCLUSIVE_CHANGE,
    NO_CHANGE,
    REGRESSION,
    compare_runs,
)
from redline.analysis._compare import critical_metrics
from redline.analysis._stats import benjamini_hochberg, mann_whitney
from redline.core import parse_objective
from synthetic import synthetic_run


def metric(comparison, scope: str, name: str):  # type: ignore[no-untyped-def]
    (found,) = [m for m in comparison.metrics if m.scope == scope and m.metric == name]
    return found


def test_a_twenty_percent_slowdown_is_a_regression_with_its_interval_and_mde() -> None:
    comparison = compare_runs([synthetic_run(1)], [synthetic_run(2, scale=1.2)])
    p99 = metric(comparison, "total", "p99")
    assert p99.outcome == REGRESSION
    assert p99.low is not None
    assert p99.high is not None
    assert p99.low < 1.2 < p99.high
    assert p99.low > 1  # the interval excludes "no change"
    assert p99.mde is not None
    # The MDE reaches past the interval's half width by 80% power's worth of noise.
    assert math.log(1 + p99.mde) > math.log(p99.high / p99.ratio) > 0
    assert p99.mde < 0.5
    assert f"{comparison.level:.1%} CI" in p99.reason
    assert 0.95 <= comparison.level < 1  # 95%, adjusted for the metrics compared
    assert p99.critical  # total p99 is critical without objectives
    assert comparison.regressions() == [
        m for m in comparison.metrics if m.outcome == REGRESSION and m.critical
    ]
    # The same change seen the other way round is an improvement.
    reverse = compare_runs([synthetic_run(2, scale=1.2)], [synthetic_run(1)])
    assert metric(reverse, "total", "p99").outcome == IMPROVEMENT


def test_identical_distributions_rarely_differ() -> None:
    flagged = 0
    for k in range(30):
        comparison = compare_runs(
            [synthetic_run(100 + 2 * k)], [synthetic_run(101 + 2 * k)], resamples=500
        )
        flagged += any(m.outcome in (REGRESSION, IMPROVEMENT) for m in comparison.metrics)
    assert flagged <= 2


def test_throughput_lower_is_worse_and_errors_are_compared_as_ratios() -> None:
    # Open model: 300 arrivals were due each second; the candidate answered 200.
    base = synthetic_run(3, rate=300, errors=0.0)
    worse = synthetic_run(4, rate=200, scheduled=300, errors=0.05)
    comparison = compare_runs([base], [worse])
    throughput = metric(comparison, "total", "throughput")
    assert throughput.outcome == REGRESSION
    assert (throughput.base, throughput.candidate) == (300.0, 200.0)
    assert metric(comparison, "total", "error_ratio").outcome == REGRESSION
    # Closed model: fewer requests per second is lower throughput, schedule or not.
    closed = compare_runs(
        [synthetic_run(3, rate=300, open_model=False)],
        [synthetic_run(4, rate=200, open_model=False)],
    )
    assert metric(closed, "total", "throughput").outcome == REGRESSION


def test_open_model_throughput_follows_the_schedule_not_the_target() -> None:
    # Different arrival counts that were all answered (Poisson schedules differ): no change.
    comparison = compare_runs([synthetic_run(5, rate=280)], [synthetic_run(6, rate=320)])
    throughput = metric(comparison, "total", "throughput")
    assert throughput.outcome == NO_CHANGE
    assert throughput.ratio == pytest.approx(1.0)
    # No errors on either side is no change, not a division by zero.
    clean = compare_runs([synthetic_run(5)], [synthetic_run(6)])
    errors = metric(clean, "total", "error_ratio")
    assert errors.outcome == NO_CHANGE
    assert errors.reason == "no errors on either side"
    # ...whatever the request counts (smoothing must not turn them into a change).
    fewer = compare_runs([synthetic_run(5, rate=280)], [synthetic_run(6, rate=320)])
    assert metric(fewer, "total", "error_ratio").outcome == NO_CHANGE


def test_too_few_requests_for_a_p99_is_inconclusive() -> None:
    comparison = compare_runs(
        [synthetic_run(7, rate=20, intervals=5)], [synthetic_run(8, rate=20, intervals=5)]
    )
    p99 = metric(comparison, "total", "p99")
    assert p99.outcome == INCONCLUSIVE_CHANGE
    assert "too few requests" in p99.reason
    assert "too few requests" not in metric(comparison, "total", "p50").reason


def test_several_runs_per_side_use_the_run_level_bootstrap() -> None:
    base = [synthetic_run(10 + k, intervals=5) for k in range(3)]
    candidate = [synthetic_run(20 + k, intervals=5, scale=1.3) for k in range(3)]
    comparison = compare_runs(base, candidate)
    assert metric(comparison, "total", "p99").outcome == REGRESSION
    assert comparison.base == tuple(r.id for r in base)
    assert not any("one run per side" in note for note in comparison.notes)


def test_objectives_make_their_metrics_critical() -> None:
    slo = [
        parse_objective("p90 < 10ms", scope="endpoint", scope_name="home").to_dict(),
        parse_objective("error_rate < 1%").to_dict(),
    ]
    comparison = compare_runs([synthetic_run(30)], [synthetic_run(31, slo=slo)])
    critical = {(m.scope, m.metric) for m in comparison.metrics if m.critical}
    # One endpoint is all the traffic: its metrics are compared (and bound) as the total.
    assert critical == {("total", "p95"), ("total", "error_ratio")}
    assert critical_metrics([parse_objective("rps >= 100")]) == {("total", "throughput")}


def test_same_seed_same_verdicts() -> None:
    base, candidate = [synthetic_run(40)], [synthetic_run(41, scale=1.04)]
    assert compare_runs(base, candidate).to_dict() == compare_runs(base, candidate).to_dict()


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="at least one run on each side"):
        compare_runs([], [synthetic_run(1)])
    with pytest.raises(ValueError, match="floor must be a fraction"):
        compare_runs([synthetic_run(1)], [synthetic_run(2)], floor=5)


def test_mann_whitney_matches_the_normal_approximation_by_hand() -> None:
    # U = 0 for completely separated samples of 3 and 3: z = (4.5 - 0.5) / sqrt(5.25).
    expected = math.erfc((4.5 - 0.5) / math.sqrt(5.25) / math.sqrt(2))
    assert mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(expected)
    assert mann_whitney([1, 1, 1], [1, 1, 1]) == 1.0
    assert mann_whitney([], [1.0]) == 1.0


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
)
def test_mann_whitney_is_symmetric_and_a_probability(x: list[float], y: list[float]) -> None:
    p = mann_whitney(x, y)
    assert 0 <= p <= 1
    assert p == pytest.approx(mann_whitney(y, x))


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_benjamini_hochberg_keeps_order_and_never_lowers_a_p_value(p: list[float]) -> None:
    adjusted = benjamini_hochberg(p)
    assert all(a >= b - 1e-12 for a, b in zip(adjusted, p, strict=True))
    assert all(0 <= a <= 1 for a in adjusted)
    ranked = sorted(range(len(p)), key=lambda i: p[i])
    assert all(adjusted[ranked[i]] <= adjusted[ranked[i + 1]] + 1e-12 for i in range(len(p) - 1))


def test_benjamini_hochberg_by_hand() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx(
        [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5]
    )


def test_long_runs_are_compared_in_merged_units() -> None:
    # 600 intervals a side are resampled as 120 units of 5: same verdicts, bounded cost.
    slow = compare_runs(
        [synthetic_run(50, intervals=600, rate=50)],
        [synthetic_run(51, intervals=600, rate=50, scale=1.2)],
        resamples=500,
    )
    assert metric(slow, "total", "p99").outcome == REGRESSION
    same = compare_runs(
        [synthetic_run(52, intervals=600, rate=50)],
        [synthetic_run(53, intervals=600, rate=50)],
        resamples=500,
    )
    assert not [m for m in same.metrics if m.outcome in (REGRESSION, IMPROVEMENT)]


def test_phases_are_shown_beside_the_verdicts_not_judged() -> None:
    base = [synthetic_run(1, phases=True)]
    slower = [synthetic_run(2, scale=1.2, phases=True)]
    comparison = compare_runs(base, slower)
    plain = compare_runs([synthetic_run(1)], [synthetic_run(2, scale=1.2)])
    assert [m.name for m in comparison.metrics] == [m.name for m in plain.metrics]
    assert plain.phases == ()  # nothing timed, nothing shown
    by_phase = {p.phase: p for p in comparison.phases}
    assert list(by_phase) == ["dns", "connect", "tls", "send", "wait", "receive"]
    wait = by_phase["wait"]
    assert wait.candidate_p99 / wait.base_p99 == pytest.approx(1.2, rel=0.1)
    assert wait.base_p50 == pytest.approx(0.9 * metric(comparison, "total", "p50").base, rel=0.02)
    assert by_phase["connect"].base_p99 == by_phase["connect"].candidate_p99 == 0
    data = comparison.to_dict()["phases"]
    assert data[4] == {
        "phase": "wait",
        "base": {"p50": wait.base_p50, "p99": wait.base_p99},
        "candidate": {"p50": wait.candidate_p50, "p99": wait.candidate_p99},
    }


@given(
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([0.7, 0.9, 0.97, 1.0, 1.03, 1.1, 1.4]),
    errors=st.sampled_from([0.0, 0.01, 0.05]),
    floor=st.sampled_from([0.02, 0.05, 0.2]),
)
@settings(max_examples=25, deadline=None)
def test_a_verdict_never_contradicts_its_interval(
    seed: int, scale: float, errors: float, floor: float
) -> None:
    comparison = compare_runs(
        [synthetic_run(seed)],
        [synthetic_run(seed + 1, scale=scale, errors=errors)],
        floor=floor,
        resamples=400,
    )
    for m in comparison.metrics:
        if m.low is None or m.high is None or m.ratio is None:
            assert m.outcome in (INCONCLUSIVE_CHANGE, NO_CHANGE)
            continue
        excludes = m.low > 1 or m.high < 1
        if m.outcome in (REGRESSION, IMPROVEMENT):
            assert excludes
            assert abs(m.ratio - 1) > floor
            higher = m.ratio > 1
            worse = higher if m.metric != "throughput" else not higher
            assert (m.outcome == REGRESSION) == worse
        elif m.outcome == NO_CHANGE:
            assert excludes or (1 - floor <= m.low and m.high <= 1 + floor)
        else:  # inconclusive: the interval holds 1 and reaches past the floor
            assert not excludes
            assert m.low < 1 - floor or m.high > 1 + floor
        # The minimum detectable effect is stated in the metric's bad direction.
        assert m.mde is not None
        assert (m.mde <= 0) if m.metric == "throughput" else (m.mde >= 0)
