"""Live control of a running test through its HTTP API: pause, resume, rate, VUs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import redline
from redline.core import RunOutcome
from redline.engine import RunControl
from redline.plan import Plan, load_plan, plan_from_dict
from redline.runner import ControlServer
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(behaviour=Behaviour(latency=0.002)).running() as running:
        yield running


def post(api: ControlServer | str, action: str, body: dict[str, Any] | None = None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    base = api if isinstance(api, str) else api.url
    request = urllib.request.Request(
        base + action, data=json.dumps(body or {}).encode(), method="POST"
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Background:
    """A run in a thread of its own, steered from the test's."""

    def __init__(self, plan: Plan) -> None:
        self.control = RunControl()
        self.outcome: RunOutcome | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(plan,))
        self.thread.start()

    def on_start(self, run: object) -> None:
        self.started.set()

    def _run(self, plan: Plan) -> None:
        self.outcome = redline.run(plan, control=self.control, observers=[self])

    def join(self) -> RunOutcome:
        self.thread.join(timeout=60)
        assert self.outcome is not None
        return self.outcome


def simple_plan(url: str, load: dict[str, Any], duration: str) -> Plan:
    return plan_from_dict(
        {"target": url, "requests": [{"path": "/"}], "load": load, "duration": duration}
    )


@contextlib.contextmanager
def steering(plan: Plan) -> Iterator[tuple[Background, ControlServer]]:
    """The plan running in the background, its control API up, once the load started."""
    run = Background(plan)
    with ControlServer(run.control, plan) as api:
        assert run.started.wait(30)
        yield run, api


def count_over(server: TestServer, seconds: float) -> int:
    before = server.requests_total
    time.sleep(seconds)
    return server.requests_total - before


def test_paused_sends_nothing_and_a_new_rate_takes_effect_within_an_interval(
    server: TestServer,
) -> None:
    plan = simple_plan(server.url, {"rate": 200}, "9s")
    with steering(plan) as (run, api):
        time.sleep(1.5)
        assert post(api, "pause")[0] == 200
        time.sleep(0.3)  # requests in flight finish
        paused = count_over(server, 1.5)
        assert post(api, "resume")[0] == 200
        time.sleep(1.0)
        status, answer = post(api, "rate", {"rate": 600})
        assert status == 200, answer
        assert post(api, "vus", {"vus": 3})[0] == 409  # an open-model run has no VUs
        outcome = run.join()
    assert paused == 0
    result = outcome.result
    events = [(e.action, e.value) for e in result.control]
    assert events == [("pause", None), ("resume", None), ("rate", 600.0)]
    at = {e.action: e.at_s for e in result.control}
    # the intervals wholly paused sent nothing; those wholly after the change, 600 each
    quiet = [i for i in result.intervals if at["pause"] + 0.3 <= i.start_s and
             i.start_s + i.duration_s <= at["resume"]]  # fmt: skip
    assert all(i.total().requests == 0 for i in quiet)
    after = [i for i in result.intervals if i.start_s >= at["rate"] + 0.2 and i.duration_s == 1]
    assert after
    assert all(i.generator.sent == pytest.approx(600, abs=6) for i in after)
    assert all(i.generator.target_rps == pytest.approx(600) for i in after)
    document = json.loads(result.to_json())
    assert [e["action"] for e in document["control"]] == ["pause", "resume", "rate"]


def test_the_users_of_a_closed_model_run_can_be_changed_and_paused(server: TestServer) -> None:
    plan = simple_plan(server.url, {"vus": 2, "think": {"min": "10ms", "max": "10ms"}}, "7s")
    with steering(plan) as (run, api):
        time.sleep(1.0)
        two = count_over(server, 1.0)
        assert post(api, "vus", {"vus": 6})[0] == 200
        time.sleep(0.5)
        six = count_over(server, 1.0)
        assert post(api, "rate", {"rate": 5})[0] == 409
        assert post(api, "pause")[0] == 200
        time.sleep(0.3)
        paused = count_over(server, 1.0)
        assert post(api, "resume")[0] == 200
        resumed = count_over(server, 1.0)
        outcome = run.join()
    assert six > 2 * two  # three times the users, about three times the requests
    assert paused == 0
    assert resumed > two
    assert [e.action for e in outcome.result.control] == ["vus", "pause", "resume"]


def test_off_loopback_the_api_needs_its_token(server: TestServer) -> None:
    plan = simple_plan(server.url, {"rate": 5}, "1s")
    control = RunControl()
    # all addresses (not loopback): a token is made, and nothing happens without it
    with ControlServer(control, plan, host="0.0.0.0", port=0) as api:
        assert api.token
        local = f"http://127.0.0.1:{api.port}/"
        assert post(local, "pause")[0] == 401
        assert not control.paused
        assert post(local, "pause", token="wrong")[0] == 401
        assert post(local, "pause", token=api.token)[0] == 200
        assert control.paused
        assert post(local, "rate", {"rate": -1}, token=api.token)[0] == 400
        assert post(local, "faster", token=api.token)[0] == 404


def test_redline_control_talks_to_a_running_test(server: TestServer) -> None:
    plan = simple_plan(server.url, {"rate": 50}, "4s")
    with steering(plan) as (run, api):
        done = subprocess.run(
            [sys.executable, "-m", "redline", "control", api.url, "rate", "100"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["actions"] == [{"action": "rate", "rate": 100.0}]
        refused = subprocess.run(
            [sys.executable, "-m", "redline", "control", api.url, "vus", "3"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "load model is open" in refused.stderr
        outcome = run.join()
    assert [e.action for e in outcome.result.control] == ["rate"]


SCENARIO_PLAN = """
from redline.scenario import scenario

target = "{url}"
load = {{"vus": 2, "think": {{"min": "20ms", "max": "20ms"}}}}
duration = "6s"


@scenario
async def browse(s):
    await s.get("/")
"""


def test_python_scenario_users_pause_and_change(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "plan.py"
    path.write_text(SCENARIO_PLAN.format(url=server.url))
    plan = load_plan(path)
    with steering(plan) as (run, api):
        time.sleep(1.0)
        two = count_over(server, 1.0)
        assert post(api, "pause")[0] == 200
        time.sleep(0.3)
        paused = count_over(server, 1.0)
        assert post(api, "resume")[0] == 200
        assert post(api, "vus", {"vus": 6})[0] == 200
        time.sleep(0.3)
        six = count_over(server, 1.0)
        outcome = run.join()
    assert two > 0
    assert paused == 0
    assert six > 2 * two
    assert outcome.result.stop_reason == "completed"
