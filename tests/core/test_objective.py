"""Objectives parsed from text: every accepted spelling, and clear errors for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import PlanError, Verdict, parse_objective


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "percentile", "target"),
    [
        ("p99 < 250ms", "percentile", "<", 250.0, 99.0, 0.0),
        ("p(99)<250", "percentile", "<", 250.0, 99.0, 0.0),  # k6: milliseconds
        ("p99.9 <= 1.5s", "percentile", "<=", 1500.0, 99.9, 0.0),
        ("med < 20ms", "percentile", "<", 20.0, 50.0, 0.0),
        ("avg<100", "mean", "<", 100.0, 0.0, 0.0),
        ("mean < 80ms", "mean", "<", 80.0, 0.0, 0.0),
        ("max < 2s", "max", "<", 2000.0, 0.0, 0.0),
        ("error_rate < 0.1%", "error_rate", "<", 0.001, 0.0, 0.0),
        ("error_rate <= 0.02", "error_rate", "<=", 0.02, 0.0, 0.0),
        ("rps >= 900", "rps", ">=", 900.0, 0.0, 0.0),
        ("rps > 900/s", "rps", ">", 900.0, 0.0, 0.0),
        ("rps <= 5000", "rps", "<=", 5000.0, 0.0, 0.0),
        ("checks >= 99%", "check_rate", ">=", 0.99, 0.0, 0.0),
        ("99% of requests under 250ms", "good_ratio", ">=", 250.0, 0.0, 0.99),
        ("99.9% < 1s", "good_ratio", ">=", 1000.0, 0.0, 0.999),
    ],
)
def test_spellings(
    text: str, metric: str, op: str, threshold: float, percentile: float, target: float
) -> None:
    o = parse_objective(text)
    assert (o.metric, o.op, o.percentile) == (metric, op, percentile)
    assert o.threshold == pytest.approx(threshold)
    assert o.target == pytest.approx(target)
    assert o.name == " ".join(text.split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99 < 250", "a latency needs a unit"),
        ("p101 < 1s", "at most 100"),
        ("p0 < 1s", "above 0"),
        ("p99 > 1ms", "at most a value"),
        ("rps < 0", "can never hold; give a ceiling above 0"),
        ("latency < 1s", "unknown metric"),
        ("error_rate < 150%", "between 0% and 100%"),
        ("error_rate < 2", "at most 1"),
        ("error_rate < 0", "can never hold"),
        ("checks > 100%", "can never hold"),
        ("p99 == 1s", "not =="),
        ("p99 < soon", "a duration"),
        ("fast please", "expected"),
        ("", "expected an objective"),
        ("http_req_firstbyte.p99 < 50ms", "unknown request phase 'http_req_firstbyte'"),
        ("ttfb.error_rate < 1%", "a request phase takes a latency metric"),
        ("ttfb.rps > 5", "a request phase takes a latency metric"),
    ],
)
def test_bad_objectives_name_the_file_and_entry(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        parse_objective(text, source="plan.yaml", path="slo[3]")
    assert str(caught.value).startswith("plan.yaml: slo[3].objective: ")


@given(
    percentile=st.floats(min_value=0.1, max_value=99.99, allow_nan=False).map(
        lambda p: round(p, 2)
    ),
    bound=st.integers(min_value=1, max_value=10**6),
)
def test_percentile_objectives_keep_their_numbers(percentile: float, bound: int) -> None:
    o = parse_objective(f"p{percentile:g} <= {bound}us")
    assert o.percentile == pytest.approx(percentile)
    assert o.threshold == pytest.approx(bound / 1000)
    assert o.holds(bound / 1000)
    assert not o.holds(bound / 1000 * 1.01)


@pytest.mark.parametrize(
    ("text", "phase", "metric", "threshold"),
    [
        ("ttfb.p99 < 50ms", "wait", "percentile", 50.0),
        ("wait.p(95)<200", "wait", "percentile", 200.0),  # k6 spelling: ms
        ("http_req_waiting.p95 < 0.2s", "wait", "percentile", 200.0),
        ("connect.max < 100ms", "connect", "max", 100.0),
        ("tls_handshaking.mean < 5ms", "tls", "mean", 5.0),
        ("DNS.p50 < 1ms", "dns", "percentile", 1.0),
    ],
)
def test_a_latency_objective_may_name_a_phase(
    text: str, phase: str, metric: str, threshold: float
) -> None:
    o = parse_objective(text)
    assert (o.phase, o.metric) == (phase, metric)
    assert o.threshold == pytest.approx(threshold)
    assert parse_objective("p99 < 50ms").phase == ""
    data = o.to_dict()
    assert data["phase"] == phase
    assert "phase" not in parse_objective("p99 < 50ms").to_dict()


def test_verdict_round_trips_through_plain_data() -> None:
    o = parse_objective("error_rate < 1%", name="availability", scope="endpoint", scope_name="a")
    v = Verdict(o, "fail", 0.02, "too many", samples=100, low=0.01, high=0.03, margin=-1.0,
                budget_spent=2.0, burn_rates={"run": 2.0}, window=(10.0, 20.0))  # fmt: skip
    again = Verdict.from_dict(v.to_dict())
    assert again.to_dict() == v.to_dict()
    assert (again.objective.name, again.objective.scope_name) == ("availability", "a")
    assert again.window == (10.0, 20.0)
    assert not again.passed


@pytest.mark.parametrize(
    ("text", "name", "metric", "op", "threshold", "percentile"),
    [
        ("job_latency.p99 < 5s", "job_latency", "percentile", "<", 5000.0, 99.0),
        ("job_latency.p(95) <= 250ms", "job_latency", "percentile", "<=", 250.0, 95.0),
        ("queue_depth.max < 1000", "queue_depth", "max", "<", 1000.0, 0.0),
        ("jobs_timed_out.count < 1", "jobs_timed_out", "count", "<", 1.0, 0.0),
        ("in_stock.rate >= 95%", "in_stock", "rate", ">=", 0.95, 0.0),
    ],
)
def test_a_custom_metric_named_in_the_objective_itself(
    text: str, name: str, metric: str, op: str, threshold: float, percentile: float
) -> None:
    objective = parse_objective(text)
    assert (objective.scope, objective.scope_name) == ("metric", name)
    assert (objective.metric, objective.op, objective.percentile) == (metric, op, percentile)
    assert objective.threshold == pytest.approx(threshold)
    # the same as the long form
    long = parse_objective(text.split(".", 1)[1], scope="metric", scope_name=name)
    assert (long.metric, long.op, long.threshold) == (metric, op, objective.threshold)


def test_a_dotted_percentile_is_still_a_latency_objective() -> None:
    objective = parse_objective("p99.9 < 250ms")
    assert (objective.scope, objective.metric, objective.percentile) == (
        "total",
        "percentile",
        99.9,
    )
