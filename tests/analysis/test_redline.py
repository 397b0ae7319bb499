"""The redline from a search's steps: bracket, crossing, interval, knee, saturation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.analysis import Step, redline_of, step_holds
from redline.analysis._redline import crossing, kneedle
from redline.core import FAIL, INCONCLUSIVE, PASS, Verdict, parse_objective

P99 = parse_objective("p99 < 100ms")
ERRORS = parse_objective("error_rate < 1%")


def verdict(objective: object, value: float, outcome: str | None = None) -> Verdict:
    assert objective is P99 or objective is ERRORS
    holds = objective.holds(value)  # type: ignore[attr-defined]
    margin = (objective.bound - value) / objective.bound  # type: ignore[attr-defined]
    return Verdict(
        objective=objective,  # type: ignore[arg-type]
        outcome=outcome or (PASS if holds else FAIL),
        value=value,
        reason="",
        margin=margin,
    )


def step(rate: float, p99: float, *, achieved: float | None = None, phase: str = "step") -> Step:
    return Step(
        rate=rate,
        achieved=rate if achieved is None else achieved,
        p50_ms=p99 / 4,
        p99_ms=p99,
        error_rate=0.0,
        verdicts=(verdict(P99, p99), verdict(ERRORS, 0.001)),
        phase=phase,
    )


def test_an_inconclusive_verdict_inside_its_bound_holds_and_one_outside_does_not() -> None:
    assert step_holds([verdict(P99, 90.0, INCONCLUSIVE)])
    assert not step_holds([verdict(P99, 110.0, INCONCLUSIVE)])
    assert not step_holds([verdict(P99, 50.0, FAIL)])


def test_crossing_interpolates_log_latency_between_two_rates() -> None:
    # 50 ms at 100/s, 200 ms at 200/s: log-linear, 100 ms is reached at 150/s
    assert crossing(100, 50, 200, 200, 100) == pytest.approx(150)
    assert crossing(100, 0, 200, 0.02, 0.01) == pytest.approx(150)  # linear through zero
    assert crossing(100, 120, 200, 300, 100) == 100  # both outside: clamped to the bracket
    assert crossing(100, 20, 200, 30, 100) == 200


@given(
    st.floats(1, 1e5),
    st.floats(1.01, 3),
    st.floats(0.1, 1e3),
    st.floats(1.01, 100),
    st.floats(0, 1),
)
def test_the_crossing_lies_in_the_bracket_and_meets_the_bound(
    rate: float, spread: float, low: float, rise: float, where: float
) -> None:
    high = low * rise
    bound = math.exp(math.log(low) + where * (math.log(high) - math.log(low)))
    x = crossing(rate, low, rate * spread, high, bound)
    assert rate <= x <= rate * spread
    assert x == pytest.approx(rate + where * (rate * spread - rate), rel=1e-6)


def test_a_search_with_repeats_gives_an_estimate_inside_its_interval() -> None:
    steps = [
        step(100, 20), step(150, 40), step(225, 400),  # up: breaks at 225
        step(184, 80, phase="refine"), step(203, 150, phase="refine"),
        step(184, 85, phase="repeat"), step(203, 130, phase="repeat"),
        step(184, 75, phase="repeat"), step(203, 170, phase="repeat"),
    ]  # fmt: skip
    found = redline_of(steps, good=184, bad=203)
    assert found.outcome == "found"
    assert found.objective == "p99 < 100ms"
    assert found.rate is not None
    assert found.low is not None
    assert found.high is not None
    assert 184 <= found.rate <= 203
    assert found.low < found.rate < found.high
    assert found.summary().startswith(f"redline: {found.rate:,.0f} req/s (95% CI")
    assert "p99 < 100ms" in found.summary()


def test_a_repeat_that_lands_on_the_wrong_side_keeps_the_bracket() -> None:
    steps = [step(100, 50), step(150, 120), step(150, 95, phase="repeat")]
    found = redline_of(steps, good=100, bad=150)
    assert found.outcome == "found"
    assert found.last_good == 100
    assert found.first_bad == 150


def test_saturation_and_knee_come_from_the_curve() -> None:
    rates = [100, 200, 300, 400, 500, 600]
    achieved = [100, 200, 300, 390, 410, 405]
    p99 = [10, 11, 13, 40, 900, 2000]
    steps = [step(r, p, achieved=a) for r, p, a in zip(rates, p99, achieved, strict=True)]
    found = redline_of(steps)
    assert found.saturation == 410
    assert found.knee in (300, 390)
    assert "saturation at ~410 req/s" in found.summary()


def test_the_search_says_when_it_could_not_bound_the_redline() -> None:
    assert redline_of([step(100, 500)]).outcome == "never held"
    assert redline_of([step(100, 5), step(150, 6)]).outcome == "held at max"
    limited = redline_of([step(100, 5)], limited_at=150)
    assert limited.outcome == "generator limited"
    assert limited.rate is None
    assert "generator could not send 150 req/s" in limited.reason


def test_kneedle_finds_the_bend_of_a_hockey_stick() -> None:
    xs = [1, 2, 3, 4, 5, 6, 7, 8]
    ys = [1, 1.1, 1.2, 1.3, 1.5, 3, 8, 20]
    assert kneedle(xs, ys) in (4, 5)
    assert kneedle([1, 2, 3], [1, 2, 3]) is None  # a straight line has no knee
    assert kneedle([1, 2], [1, 5]) is None


def test_the_bottleneck_at_the_breakpoint_and_the_first_to_saturate_on_the_way_up() -> None:
    import dataclasses

    def watched(rate: float, p99: float, bottleneck: str, phase: str = "step") -> Step:
        return dataclasses.replace(
            step(rate, p99, phase=phase), bottleneck=bottleneck, evidence=f"{bottleneck} at {rate}"
        )

    steps = [
        watched(100, 20, "none"),
        watched(150, 30, "pool"),
        watched(225, 300, "cpu"),
        watched(180, 60, "pool", "refine"),
        watched(200, 200, "cpu", "refine"),
        watched(225, 320, "cpu", "repeat"),
    ]
    found = redline_of(steps, good=180, bad=200)
    assert found.bottleneck_step is steps[4]  # the step at the first rate that broke
    assert found.first_saturated is steps[1]  # the lowest rate at which anything saturated
    data = found.to_dict()
    assert data["bottleneck"] == {"resource": "cpu", "rate": 200, "evidence": "cpu at 200"}
    assert data["first_saturated"]["resource"] == "pool"
    assert "bottleneck: cpu (cpu at 200)" in found.summary()
    unwatched = redline_of([step(100, 20), step(150, 300)], good=100, bad=150)
    assert unwatched.bottleneck_step is None
    assert "bottleneck" not in unwatched.to_dict()
