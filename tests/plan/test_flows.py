"""Declarative flows in YAML plans: ordered steps with think times."""

from __future__ import annotations

from typing import Any

import pytest

from redline.core import PlanError
from redline.plan import RequestSpec, ThinkStep, plan_from_dict

BASE: dict[str, Any] = {"target": "http://127.0.0.1:9", "load": {"rate": 1}, "duration": 1}


def test_flow_steps_parse_in_order() -> None:
    plan = plan_from_dict(
        {
            **BASE,
            "flows": [
                {
                    "name": "buy",
                    "weight": 2,
                    "steps": [
                        {"path": "/"},
                        {"think": "1s"},
                        {"name": "cart", "method": "POST", "path": "/cart", "json": {"sku": 1}},
                        {"think": {"min": "100ms", "max": "300ms"}},
                    ],
                }
            ],
        }
    )
    (flow,) = plan.scenarios
    assert (flow.name, flow.weight, flow.function) == ("buy", 2, "")
    kinds = [type(step) for step in flow.steps]
    assert kinds == [RequestSpec, ThinkStep, RequestSpec, ThinkStep]
    assert flow.steps[3] == ThinkStep(0.1, 0.3)
    assert plan.requests == ()


@pytest.mark.parametrize(
    ("flows", "message"),
    [
        (
            [{"steps": [{"think": "1s"}]}],
            r"flows\[0\]\.steps: expected steps with at least one request",
        ),
        ([{"steps": [{"think": "soon"}]}], r"flows\[0\]\.steps\[0\]\.think: expected a duration"),
        ([{"steps": [{"think": "1s", "path": "/"}]}], r"flows\[0\]\.steps\[0\]\.path: unknown key"),
        (
            [{"name": "a", "steps": [{"path": "/"}]}, {"name": "a", "steps": [{"path": "/"}]}],
            r"duplicate flow name",
        ),
    ],
)
def test_bad_flows_are_explained(flows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_from_dict({**BASE, "flows": flows})


def test_flows_and_requests_do_not_mix() -> None:
    with pytest.raises(PlanError, match="a plan with flows sends what they send"):
        plan_from_dict({**BASE, "flows": [{"steps": [{"path": "/"}]}], "requests": [{"path": "/"}]})
