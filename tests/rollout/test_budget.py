"""The error-budget gate, read from a real Prometheus, and how a rollout obeys it.

The Prometheus here evaluates recording rules with the names ``redline slo rules``
writes, held at known values (a budget 30% left burning at 10x; another 90% left at
0.5x), so the projection's arithmetic can be checked through the real query path.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest

from redline.core import ThreadedHTTP
from redline.rollout import (
    HELD,
    PROMOTED,
    ROLLED_BACK,
    BudgetGate,
    HookServer,
    RolloutPlan,
    WebhookSplitter,
    judge,
    progressive_rollout,
)

from .test_judge import cohort, recorded  # noqa: F401 - the fixture, shared
from .test_judge_prometheus import launch_prometheus

RULES = """\
groups:
  - name: budgets
    interval: 1s
    rules:
      - {record: "redline:slo_error_budget_remaining:checkout", expr: "vector(0.30)"}
      - {record: "redline:slo_error_ratio:checkout:rate1h", expr: "vector(0.01)"}
      - {record: "redline:slo_error_budget_remaining:healthy", expr: "vector(0.9)"}
      - {record: "redline:slo_error_ratio:healthy:rate1h", expr: "vector(0.0005)"}
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "rules.yml").write_text(RULES)
    config = folder / "prometheus.yml"
    config.write_text("global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
    process, url = launch_prometheus(config, folder / "data")
    try:
        deadline = time.monotonic() + 30
        query = f"{url}/api/v1/query?query=redline:slo_error_ratio:healthy:rate1h"
        while True:  # the rules evaluated once
            with urllib.request.urlopen(query, timeout=1) as answer:
                if json.loads(answer.read())["data"]["result"]:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not evaluate its rules")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_projection_reads_remaining_budget_and_burn(prometheus: str) -> None:
    gate = BudgetGate(prometheus, "checkout", objective=0.999, floor=0.25)
    # 30% left, burning at 0.01 / 0.001 = 10x: a day spends 10/30 of the budget.
    day = gate.read(86400)
    assert day.remaining == pytest.approx(0.30)
    assert day.burn_rate == pytest.approx(10.0)
    assert day.projected == pytest.approx(0.30 - 10 / 30)
    assert not day.allowed
    assert "falls below the floor of 25%" in day.why()
    hour = gate.read(3600)
    assert hour.projected == pytest.approx(0.30 - 10 / 720)
    assert hour.allowed
    assert BudgetGate(prometheus, "healthy", objective=0.999).check(86400 * 7)[0]
    closed, why = BudgetGate(prometheus, "nobody", objective=0.999).check()
    assert not closed
    assert "no series redline:slo_error_budget_remaining:nobody" in why
    closed, why = BudgetGate("http://127.0.0.1:1", "checkout", objective=0.999).check()
    assert not closed
    assert "cannot be read" in why


class Weights:
    """A webhook splitter's far side: it records every split it is asked for."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        weights = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                weights.asked.append(float(body["canary"]))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadedHTTP(Handler, host="127.0.0.1", port=0, name="weights")


@pytest.fixture
def weights() -> Iterator[Weights]:
    found = Weights()
    with found.server:
        yield found


def test_a_closed_gate_holds_the_rollout_and_changes_nothing(
    prometheus: str,
    weights: Weights,
    recorded: tuple[np.ndarray, np.ndarray],  # noqa: F811
) -> None:
    rng = np.random.default_rng(41)
    sides = (cohort(recorded, rng), cohort(recorded, rng))
    # Two judged steps of 4 h 10 min: at 10x, 30% - 10 x 8.3 h / 30 d = 18% < 25%.
    plan = RolloutPlan(weights=(10, 50, 100), interval_s=4 * 3600, bake_s=600)
    gate = BudgetGate(prometheus, "checkout", objective=0.999, floor=0.25)
    result = progressive_rollout(
        plan,
        WebhookSplitter(weights.server.url),
        lambda _: judge(*sides),
        sleep=lambda _: None,
        gate=gate.check,
    )
    assert result.outcome == HELD
    assert weights.asked == []  # the splitter was never asked
    assert result.decisions[-1]["decision"] == "hold"
    assert "falls below the floor" in result.decisions[-1]["why"]
    # A healthy budget lets the same rollout through to 100%.
    healthy = BudgetGate(prometheus, "healthy", objective=0.999, floor=0.25)
    result = progressive_rollout(
        plan,
        WebhookSplitter(weights.server.url),
        lambda _: judge(*sides),
        sleep=lambda _: None,
        gate=healthy.check,
    )
    assert result.outcome == PROMOTED
    assert weights.asked == [10, 50, 100]


def test_a_gate_that_closes_mid_way_rolls_back(
    weights: Weights,
    recorded: tuple[np.ndarray, np.ndarray],  # noqa: F811
) -> None:
    # A sequence test: the gate opens for the first step and closes before the second
    # (as a burn that rises while the canary runs would close it).
    answers = iter([(True, "open"), (False, "the budget fell to 10%")])
    rng = np.random.default_rng(42)
    sides = (cohort(recorded, rng), cohort(recorded, rng))
    result = progressive_rollout(
        RolloutPlan(weights=(10, 50, 100), interval_s=60),
        WebhookSplitter(weights.server.url),
        lambda _: judge(*sides),
        sleep=lambda _: None,
        gate=lambda _: next(answers),
    )
    assert result.outcome == ROLLED_BACK
    assert weights.asked == [10, 0]
    assert [d["decision"] for d in result.decisions] == ["advance", "rollback"]
    assert "the budget fell to 10%" in result.decisions[-1]["why"]


def test_flaggers_confirm_rollout_follows_the_budget(prometheus: str) -> None:
    def never(baseline: str, canary: str) -> Any:
        raise AssertionError("the gate judges nothing")

    for slo, status in (("checkout", 403), ("healthy", 200)):
        gate = BudgetGate(prometheus, slo, objective=0.999, floor=0.5)
        with HookServer(never, gate=lambda g=gate: g.check(86400)) as hooks:
            request = urllib.request.Request(
                f"{hooks.url}flagger/confirm-rollout",
                data=json.dumps({"name": "podinfo", "namespace": "test"}).encode(),
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    got, body = answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                got, body = exc.code, json.loads(exc.read())
        assert got == status, body
        assert "error budget" in body["reason"]
