"""Test types as presets: each draws its documented shape from one rate or user count."""

from __future__ import annotations

from typing import Any

import pytest

from redline.core import PlanError
from redline.plan import OpenLoad, Plan, plan_from_dict


def plan(**changes: Any) -> Plan:
    data: dict[str, Any] = {
        "name": "shop",
        "target": "http://127.0.0.1:8080",
        "requests": [{"name": "home", "path": "/"}],
        "load": {"rate": "100/s"},
    }
    data.update(changes)
    return plan_from_dict(data, source="plan.yaml")


def rates(p: Plan, *times: float) -> list[float]:
    assert isinstance(p.load, OpenLoad)
    return [round(p.load.rate_at(t), 3) for t in times]


def test_smoke_is_a_tiny_load_for_a_minute() -> None:
    p = plan(type="smoke")
    assert p.duration == 60
    assert rates(p, 0, 59) == [2, 2]


def test_load_ramps_up_holds_and_ramps_down() -> None:
    p = plan(type="load", duration="100s")
    assert rates(p, 0, 5, 10, 50, 89.9, 95, 100) == [0, 50, 100, 100, 100, 50, 0]


def test_stress_steps_beyond_the_peak() -> None:
    p = plan(type="stress", duration="400s")
    assert rates(p, 50, 150, 250, 350) == [50, 100, 150, 200]


def test_soak_holds_the_peak_for_hours_by_default() -> None:
    p = plan(type="soak")
    assert p.duration == 7200
    assert rates(p, 0, 7000) == [100, 100]
    assert p.shape == {"type": "soak", "peak": 100.0}


def test_spike_jumps_to_a_multiple_and_back() -> None:
    p = plan(type="spike", duration="100s", spike={"multiple": 10, "for": "5s"})
    assert rates(p, 10, 39.9, 40.1, 44.9, 45.1, 99) == [100, 100, 1000, 1000, 100, 100]
    assert p.shape == {"type": "spike", "peak": 100.0, "at_s": 40.0, "for_s": 5.0, "multiple": 10}
    assert p.to_dict()["shape"]["at_s"] == 40.0


def test_breakpoint_ramps_from_nothing_and_aborts_on_every_objective() -> None:
    p = plan(type="breakpoint", duration="60s", load={"rate": "600/s"}, slo=["p99 < 50ms"])
    assert rates(p, 0, 30, 60) == [0, 300, 600]
    assert all(o.abort for o in p.slos)


def test_closed_model_presets_shape_users() -> None:
    p = plan(type="load", duration="100s", load={"vus": 20})
    assert [p.load.vus_at(t) for t in (0, 10, 50, 100)] == [0, 20, 20, 0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "chaos"}, "type: expected one of smoke, load, stress, soak, spike, breakpoint"),
        (
            {"type": "load", "load": {"stages": [{"duration": "5s", "rate": "5/s"}]}},
            "give load.rate",
        ),
        ({"spike": {"multiple": 3}}, "spike settings need type: spike"),
        ({"type": "soak", "spike": {"multiple": 3}}, "apply to type: spike"),
        ({"type": "spike", "duration": "10s", "spike": {"for": "8s"}}, "does not fit"),
        ({"type": "spike", "spike": {"multiple": -2}}, "spike.multiple: expected a positive"),
    ],
)
def test_preset_mistakes_name_the_path(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan(**changes)
    assert message in str(caught.value)
    assert "plan.yaml" in str(caught.value)


FAULTS = {
    "proxies": [{"name": "svc", "listen": "127.0.0.1:9100", "upstream": "127.0.0.1:9000"}],
    "schedule": [
        {"at": "5s", "for": "3s", "proxy": "svc", "down": True},
        {"name": "slow", "at": "10s", "for": "2s", "proxy": "svc",
         "toxic": {"type": "latency", "attributes": {"latency": 300}}},
    ],
}  # fmt: skip


def test_faults_are_parsed_and_kept_in_the_runs_plan() -> None:
    p = plan(faults=FAULTS, duration="20s")
    assert [f.name for f in p.faults.schedule] == ["down-1", "slow"]
    data = p.to_dict()
    assert data["faults"][0] == {
        "name": "down-1", "type": "down", "proxy": "svc", "at_s": 5.0, "for_s": 3.0
    }  # fmt: skip
    assert data["faults"][1]["toxic"]["attributes"] == {"latency": 300}
    assert data["fault_proxies"][0]["upstream"] == "127.0.0.1:9000"


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"proxy": "db"}, "faults.schedule[0].proxy", 'no proxy named "db"'),
        ({"toxic": {"type": "latency"}}, "faults.schedule[0]", "either down: true or a toxic"),
        ({"for": "0s"}, "faults.schedule[0].for", "longer than 0s"),
        ({"at": "soon"}, "faults.schedule[0].at", "duration"),
    ],
)
def test_fault_mistakes_name_the_path(change: dict[str, Any], path: str, message: str) -> None:
    broken = {**FAULTS, "schedule": [{**FAULTS["schedule"][0], **change}]}  # type: ignore[dict-item]
    with pytest.raises(PlanError) as caught:
        plan(faults=broken, duration="20s")
    assert path in str(caught.value)
    assert message in str(caught.value)
