"""What the runners do with a plan of several scenarios: halve each, refuse to search."""

from __future__ import annotations

import pytest

from redline.core import PlanError
from redline.plan import plan_from_dict
from redline.runner import find, sweep
from redline.runner._ab import halved

PLAN = {
    "target": "http://127.0.0.1:9",
    "slo": ["p99 < 1s"],
    "scenarios": {
        "browse": {"executor": "constant-arrival-rate", "rate": "40/s", "duration": "4s",
                   "requests": [{"name": "home", "path": "/"}]},
        "users": {"executor": "constant-vus", "vus": 6, "duration": "2s", "start_time": "1s",
                  "requests": [{"name": "u", "path": "/u"}]},
    },
}  # fmt: skip


def test_a_duet_halves_each_scenario_and_keeps_their_windows() -> None:
    plan = halved(plan_from_dict(PLAN))
    browse, users = plan.workloads
    assert browse.plan.load.rate_at(2) == 20
    assert [users.plan.load.vus_at(t) for t in (0.5, 1.5, 3.5)] == [0, 3, 0]
    assert plan.load.rate_at(2) == 20


@pytest.mark.parametrize("search", [find, sweep])
def test_searches_refuse_a_plan_of_scenarios(search: object) -> None:
    with pytest.raises(PlanError, match="this plan has scenarios") as caught:
        search(plan_from_dict(PLAN))  # type: ignore[operator]
    assert caught.value.path == "scenarios"


def test_a_python_shape_cannot_steer_scenarios(tmp_path: object) -> None:
    from pathlib import Path

    from redline.plan import load_plan

    file = Path(str(tmp_path)) / "plan.py"
    file.write_text(
        "from redline.scenario import scenario\n"
        "target = 'http://127.0.0.1:9'\n"
        "scenarios = {'a': {'executor': 'constant-vus', 'vus': 1, 'duration': '1s',"
        " 'exec': 'go'}}\n"
        "@scenario\nasync def go(s):\n    await s.get('/')\n"
        "def shape(elapsed):\n    return None\n"
    )
    with pytest.raises(PlanError, match="shape steers one load") as caught:
        load_plan(file)
    assert caught.value.path == "shape"
