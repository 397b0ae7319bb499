"""A plan's ``scenarios:`` (k6's): validation, windows on the run's clock, their sum."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import PlanError
from redline.engine._segments import split_weighted
from redline.engine._worker import _counted
from redline.plan import ClosedLoad, OpenLoad, Stage, plan_from_dict
from redline.plan._workloads import _windowed, combined_load

TARGET = "http://127.0.0.1:8080"


def plan_with(scenarios: dict[str, Any], **top: Any) -> Any:
    return plan_from_dict({"target": TARGET, "scenarios": scenarios, **top}, source="p.yaml")


def test_the_issue_plan_reads_as_k6_would() -> None:
    plan = plan_with(
        {
            "browse": {"executor": "constant-arrival-rate", "rate": "50/s", "duration": "10s",
                       "requests": [{"name": "home", "path": "/"}]},
            "accounts": {"executor": "per-vu-iterations", "vus": 5, "iterations": 10,
                         "start_time": "2s",
                         "requests": [{"name": "signup", "method": "POST", "path": "/signup"}]},
        }
    )  # fmt: skip
    browse, accounts = plan.workloads
    assert (browse.executor, browse.start_time, browse.end) == ("constant-arrival-rate", 0, 10)
    assert (accounts.iterations, accounts.vus, accounts.start_time) == (10, 5, 2.0)
    assert accounts.end == 602.0  # k6's default max_duration: 10 minutes
    assert accounts.plan.scenarios[0].pick_one  # an iteration is one request
    assert plan.load.rate_at(5) == 50
    assert plan.load.rate_at(10) == 0
    assert dict(browse.plan.requests[0].tags) == {"scenario": "browse"}
    assert plan.requests == ()
    assert plan.duration == 602.0


@pytest.mark.parametrize(
    ("scenarios", "top", "path", "message"),
    [
        ({"a": {"executor": "constant-arrivals", "rate": 1, "duration": "1s",
                "requests": [{"path": "/"}]}}, {}, "scenarios.a.executor", "expected one of"),
        ({"a": {"executor": "constant-vus", "rate": 1, "duration": "1s",
                "requests": [{"path": "/"}]}}, {}, "scenarios.a.rate", "unknown key"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s"}}, {}, "scenarios.a",
         "expected one of requests, flows or exec"),
        ({"a": {"executor": "constant-vus", "vus": 1, "requests": [{"path": "/"}]}}, {},
         "scenarios.a.duration", "is required"),
        ({"a": {"executor": "ramping-vus", "requests": [{"path": "/"}]}}, {},
         "scenarios.a.stages", "expected stages"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"path": "/"}]}}, {"requests": [{"path": "/"}]}, "requests",
         "gives each scenario its own requests"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"path": "/"}]}}, {"load": {"vus": 1}}, "load",
         "gives each scenario its own load"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"name": "x", "path": "/"}]},
          "b": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"name": "x", "path": "/b"}]}}, {}, "scenarios.b",
         "is sent by scenario 'a' too"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s", "exec": "f"}}, {},
         "scenarios.a.exec", "exec is for Python plans"),
        ({"a": {"executor": "externally-controlled", "vus": 5, "max_vus": 2, "duration": "1s",
                "requests": [{"path": "/"}]}}, {}, "scenarios.a.max_vus",
         "must be at least vus"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"path": "/"}], "tags": {"scenario": "x"}}}, {},
         "scenarios.a.tags.scenario", "system tag"),
        ({"a b": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                  "requests": [{"path": "/"}]}}, {}, "scenarios", "scenario name"),
        ({"a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                "requests": [{"path": "/${env.REDLINE_NOT_SET_ANYWHERE}"}]}}, {},
         "scenarios.a.requests[0].path", "REDLINE_NOT_SET_ANYWHERE"),
    ],
)  # fmt: skip
def test_bad_scenarios_name_the_path(
    scenarios: dict[str, Any], top: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(PlanError) as caught:
        plan_with(scenarios, **top)
    assert caught.value.path == path
    assert message in str(caught.value)
    assert "p.yaml" in str(caught.value)


def test_a_scenario_env_fills_its_own_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGION", "eu")
    plan = plan_with(
        {
            "a": {"executor": "constant-vus", "vus": 1, "duration": "1s", "env": {"REGION": "us"},
                  "requests": [{"name": "a", "path": "/${env.REGION}"}]},
            "b": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                  "requests": [{"name": "b", "path": "/${env.REGION}"}]},
        }
    )  # fmt: skip
    a, b = (w.plan.requests[0].path.value for w in plan.workloads)
    assert (a, b) == ("/us", "/eu")
    assert plan.to_dict()["workloads"][0]["env"] == ["REGION"]  # names only, never values


def test_k6_time_unit_and_rate_strings_agree() -> None:
    plan = plan_with(
        {
            "a": {"executor": "constant-arrival-rate", "rate": 30, "time_unit": "1m",
                  "duration": "1s", "requests": [{"name": "a", "path": "/"}]},
            "b": {"executor": "constant-arrival-rate", "rate": "30/m", "duration": "1s",
                  "requests": [{"name": "b", "path": "/b"}]},
        }
    )  # fmt: skip
    rates = [w.plan.load.rate_at(0.5) for w in plan.workloads]
    assert rates == [0.5, 0.5]


def test_a_scenario_objective_selects_its_endpoints() -> None:
    plan = plan_with(
        {
            "a": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                  "requests": [{"name": "a1", "path": "/"}, {"name": "a2", "path": "/2"}]},
            "b": {"executor": "constant-vus", "vus": 1, "duration": "1s",
                  "requests": [{"name": "b", "path": "/b"}]},
        },
        slo=["p99{scenario:a} < 100ms"],
    )  # fmt: skip
    assert plan.slos[0].endpoints == ("a1", "a2")


loads = st.one_of(
    st.builds(lambda r: OpenLoad(rate=r), st.floats(0.5, 500)),
    st.builds(
        lambda start, stages: OpenLoad(start_rate=start, stages=tuple(stages)),
        st.floats(0, 100),
        st.lists(st.builds(Stage, st.floats(0.1, 20), st.floats(0, 500)), min_size=1, max_size=4),
    ),
)


@given(load=loads, start=st.floats(0, 30), length=st.floats(0.5, 60), at=st.floats(0, 100))
def test_a_window_is_the_load_shifted_and_cut(
    load: OpenLoad, start: float, length: float, at: float
) -> None:
    windowed = _windowed(load, start=start, length=length)
    inside = start <= at < start + length
    expected = load.rate_at(at - start) if inside else 0.0
    assert windowed.rate_at(at) == pytest.approx(expected, rel=1e-6, abs=1e-6)


@given(
    windows=st.lists(
        st.tuples(loads, st.floats(0, 30), st.floats(0.5, 60)), min_size=1, max_size=4
    ),
    at=st.floats(0, 100),
)
def test_the_plan_load_is_the_sum_of_its_scenarios(
    windows: list[tuple[OpenLoad, float, float]], at: float
) -> None:
    parts = [_windowed(load, start=s, length=n) for load, s, n in windows]
    total = combined_load(parts)
    assert total.rate_at(at) == pytest.approx(sum(p.rate_at(at) for p in parts), rel=1e-6, abs=1e-6)


def test_closed_scenarios_sum_to_users() -> None:
    parts = [
        _windowed(ClosedLoad(vus=3), start=0, length=10),
        _windowed(ClosedLoad(vus=2), start=5, length=10),
    ]
    total = combined_load(parts)
    assert isinstance(total, ClosedLoad)
    assert [total.vus_at(t) for t in (1, 6, 12, 16)] == [3, 5, 2, 0]
    assert total.max_vus == 5


@given(
    weights=st.lists(st.integers(1, 5), min_size=1, max_size=8),
    vus=st.integers(1, 20),
    iterations=st.integers(1, 500),
)
def test_shared_iterations_split_exactly_among_workers_with_users(
    weights: list[int], vus: int, iterations: int
) -> None:
    plan = plan_with(
        {"s": {"executor": "shared-iterations", "vus": vus, "iterations": iterations,
               "requests": [{"path": "/"}]}}
    )  # fmt: skip
    workload = plan.workloads[0]
    segments = split_weighted(weights)
    shares = [_counted(workload, segment)["shared_iterations"] for segment in segments]
    assert sum(s or 0 for s in shares) == iterations
    for segment, share in zip(segments, shares, strict=True):
        if segment.scale(vus) == 0:
            assert share == 0  # no users here: no iterations either
    assert Fraction(0) <= Fraction(min(s or 0 for s in shares))
