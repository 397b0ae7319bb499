"""Several scenarios per plan (k6's ``scenarios:``), each executor checked against the
test server's own counters: iterations exactly, start times within one interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import redline
from redline.core import RunResult
from redline.engine import RunControl, run_plan
from redline.plan import load_plan, plan_from_dict
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[TestServer]:
    routes = {"/slow": Behaviour(latency=1.5), "/paced": Behaviour(latency=0.02)}
    with TestServer(behaviour=Behaviour(latency=0.001), routes=routes).running() as running:
        yield running


def started_s(result: RunResult, server: TestServer, path: str) -> float:
    """When the server first saw ``path``, in seconds from the start of the load."""
    t0 = datetime.fromisoformat(result.started_at.replace("Z", "+00:00")).timestamp()
    return server.first_request_at[path] - t0


@pytest.mark.parametrize("workers", [1, 2])
def test_three_scenarios_each_executor_exactly(server: TestServer, workers: int) -> None:
    # the plan, with its times scaled down: checkout starts at 3 s, not 30 s
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "browse": {
                    "executor": "constant-arrival-rate", "rate": "40/s", "duration": "6s",
                    "requests": [{"name": "home", "path": "/"}],
                },
                "checkout": {
                    "executor": "constant-vus", "vus": 2, "start_time": "3s", "duration": "2s",
                    "think": "50ms",
                    "flows": [{"name": "buy", "steps": [
                        {"name": "cart", "path": "/cart"},
                        {"name": "pay", "method": "POST", "path": "/pay"},
                    ]}],
                },
                "setup": {
                    "executor": "per-vu-iterations", "vus": 3, "iterations": 4,
                    "start_time": "1s",
                    "requests": [{"name": "signup", "method": "POST", "path": "/signup"}],
                },
                "seed": {
                    "executor": "shared-iterations", "vus": 2, "iterations": 9,
                    "requests": [{"name": "seed", "path": "/seed"}],
                },
            },
        }
    )  # fmt: skip
    result = run_plan(plan, workers=workers)
    counts = server.requests_by_path
    assert result.stop_reason == "completed"
    assert counts["/"] == 240  # 40/s for 6 s: every arrival, none doubled across workers
    assert counts["/signup"] == 12  # 3 VUs x 4 iterations
    assert counts["/seed"] == 9  # shared by the VUs, exactly
    assert counts["/cart"] == counts["/pay"] > 0  # whole iterations: the stop was graceful
    assert 1.0 <= started_s(result, server, "/signup") < 2.0
    assert 3.0 <= started_s(result, server, "/cart") < 4.0
    assert started_s(result, server, "/") < 1.0
    # checkout ended at 5 s: in the last interval, at most an iteration per user that
    # was under way (timers fire a few ms late) finished
    last = result.intervals[-1]
    assert "home" in last.endpoints
    assert "cart" not in last.endpoints or last.endpoints["cart"].requests <= 2
    # reported separately (each scenario's requests and iterations) and together
    measured = result.workloads()
    assert measured["browse"][0].requests == 240
    assert measured["setup"] == (measured["setup"][0], 12)
    assert measured["seed"][1] == 9
    assert measured["checkout"][0].requests == counts["/cart"] + counts["/pay"]
    assert measured["checkout"][1] == counts["/cart"]
    assert result.total().requests == sum(counts.values())
    document = result.to_dict(intervals=False)
    assert document["summary"]["workloads"]["setup"]["iterations"] == 12
    executors = {w["name"]: w["executor"] for w in document["plan"]["workloads"]}
    assert executors["checkout"] == "constant-vus"


def test_ramping_scenarios_follow_their_stages(server: TestServer) -> None:
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "ramp": {
                    "executor": "ramping-arrival-rate", "start_rate": 0, "start_time": "1s",
                    "stages": [{"duration": "2s", "target": 40}, {"duration": "1s", "target": 40}],
                    "requests": [{"path": "/ramp"}],
                },
                "users": {
                    "executor": "ramping-vus", "start_vus": 0,
                    "stages": [{"duration": "1s", "target": 2}, {"duration": "1s", "target": 0}],
                    "requests": [{"path": "/paced"}],
                },
            },
        }
    )  # fmt: skip
    result = run_plan(plan, workers=1)
    # 0 -> 40/s over 2 s is 40 arrivals, then 40/s for 1 s: 80 in all
    assert server.requests_by_path["/ramp"] == 80
    assert 1.0 <= started_s(result, server, "/ramp") < 2.0
    by_second = [i.endpoints.get("GET /ramp") for i in result.intervals]
    assert by_second[0] is None or by_second[0].requests == 0  # its first arrival is at 1 s
    assert by_second[1] is not None
    assert by_second[3] is not None
    assert by_second[1].requests < by_second[3].requests  # ramping up
    users = [i.endpoints.get("GET /paced") for i in result.intervals]
    assert users[0] is not None
    assert users[0].requests > 0
    assert all(u is None for u in users[3:])  # ramped down to nothing at 2 s


def test_graceful_stop_lets_iterations_finish_or_cuts_them(server: TestServer) -> None:
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "patient": {
                    "executor": "constant-vus", "vus": 1, "duration": "1s",
                    "graceful_stop": "5s", "requests": [{"name": "patient", "path": "/slow/a"}],
                },
                "strict": {
                    "executor": "constant-vus", "vus": 1, "duration": "1s",
                    "graceful_stop": "0.1s", "requests": [{"name": "strict", "path": "/slow/b"}],
                },
            },
        }
    )  # fmt: skip
    result = run_plan(plan, workers=1)
    patient, strict = result.endpoint("patient"), result.endpoint("strict")
    assert patient.requests == server.requests_by_path["/slow/a"]
    assert patient.errors == 0  # its one request took 1.5 s and was waited for
    assert strict.error_classes == {"unfinished": 1}  # cut 0.1 s after its end
    assert result.stop_reason == "completed"


def test_externally_controlled_scenario_takes_live_vus(server: TestServer) -> None:
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "steered": {
                    "executor": "externally-controlled", "vus": 1, "max_vus": 4,
                    "duration": "4s", "requests": [{"name": "steered", "path": "/paced"}],
                },
                "background": {
                    "executor": "constant-arrival-rate", "rate": "10/s", "duration": "4s",
                    "requests": [{"name": "background", "path": "/"}],
                },
            },
        }
    )  # fmt: skip
    control = RunControl()
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=run_plan(plan, workers=1, control=control))
    )
    thread.start()
    time.sleep(2.0)
    control.set_vus(9)  # more than max_vus: the scenario's maximum, 4, holds
    thread.join(timeout=60)
    result: RunResult = outcome["result"]
    per_second = [i.endpoints["steered"].requests for i in result.intervals if
                  "steered" in i.endpoints]  # fmt: skip
    # 20 ms per request: ~50/s for one user, ~200/s for four
    assert per_second[-1] > 3 * per_second[0]
    assert per_second[-1] < 5 * per_second[0]
    assert server.requests_by_path["/"] == 40  # the arrival-rate scenario was not steered
    assert [e.action for e in result.control] == ["vus"]


def test_a_tagged_scenario_objective_is_judged_on_its_own(server: TestServer) -> None:
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "fast": {
                    "executor": "constant-arrival-rate", "rate": "50/s", "duration": "2s",
                    "requests": [{"path": "/"}],
                },
                "slowish": {
                    "executor": "constant-vus", "vus": 1, "duration": "2s",
                    "requests": [{"path": "/paced"}], "tags": {"team": "payments"},
                },
            },
            "slo": ["p99{scenario:slowish} < 10ms", "p50 < 50ms", "p90{team:payments} < 1s"],
        }
    )  # fmt: skip
    outcome = redline.run(plan)
    verdicts = {v.objective.text: v.outcome for v in outcome.verdicts}
    assert verdicts == {
        "p99{scenario:slowish} < 10ms": "fail",  # 20 ms each
        "p50 < 50ms": "pass",  # most requests are the other scenario's 1 ms ones
        "p90{team:payments} < 1s": "pass",
    }


def test_python_plan_scenarios_exec_functions(server: TestServer, tmp_path: Any) -> None:
    plan_file = tmp_path / "plan.py"
    plan_file.write_text(
        f"""
from redline.scenario import Session, scenario

target = {server.url!r}
scenarios = {{
    "buyers": {{"executor": "per-vu-iterations", "vus": 2, "iterations": 3, "exec": "buy"}},
    "readers": {{"executor": "constant-arrival-rate", "rate": 20, "duration": "2s",
                 "exec": "read"}},
}}

@scenario
async def buy(s: Session) -> None:
    await s.post("/buy", name="buy")

@scenario
async def read(s: Session) -> None:
    await s.get("/read", name="read")
"""
    )
    plan = load_plan(plan_file)
    result = run_plan(plan, workers=1)
    assert server.requests_by_path["/buy"] == 6
    assert server.requests_by_path["/read"] == 40
    assert result.scenarios()["buy"].count == 6
    assert result.workloads()["buyers"][1] == 6
