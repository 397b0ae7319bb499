"""Custom metrics of Python scenarios, across workers, and objectives on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import redline
from redline.core import PlanError
from redline.plan import load_plan, plan_from_dict
from redline.testing import TestServer

pytestmark = pytest.mark.timeout(120)

PLAN = """
from redline.scenario import Counter, Gauge, Rate, Session, Trend, scenario

target = {url!r}
load = {{"rate": 60}}
duration = "3s"
workers = 2
orders = Counter("orders")
items = Trend("basket_items")
in_stock = Rate("in_stock")
depth = Gauge("queue_depth")
slo = {slo!r}
seen = 0

@scenario
async def buy(s: Session) -> None:
    global seen
    seen += 1
    r = await s.post("/orders", name="order")
    orders.add(1)
    items.add(seen % 4)
    in_stock.add(seen % 10 != 0)
    depth.set(7)
"""


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer().running() as running:
        yield running


def write(tmp_path: Path, url: str, slo: list[object]) -> Path:
    path = tmp_path / "metrics_plan.py"
    path.write_text(PLAN.format(url=url, slo=slo))
    return path


def test_metrics_merge_across_workers_and_are_judged(server: TestServer, tmp_path: Path) -> None:
    slo = [
        {"metric": "orders", "objective": "count >= 180"},
        {"metric": "in_stock", "objective": "rate >= 95%"},
        {"metric": "basket_items", "objective": "max < 4"},
        {"metric": "queue_depth", "objective": "value < 10"},
    ]
    outcome = redline.run(load_plan(write(tmp_path, server.url, slo)))
    result = outcome.result
    metrics = result.metrics()
    # every order the server saw was counted once, whichever worker sent it
    assert metrics["orders"].total == server.requests_by_path["/orders"] == 180
    assert metrics["basket_items"].count == 180
    assert metrics["in_stock"].count == 180
    assert [v.outcome for v in outcome.verdicts] == ["pass", "fail", "pass", "pass"]
    assert outcome.verdicts[1].value == pytest.approx(0.9, abs=0.02)  # one in ten out
    document = result.to_dict()
    assert document["summary"]["metrics"]["orders"] == {
        "kind": "counter", "count": 180.0, "rate": pytest.approx(60, rel=0.05),
    }  # fmt: skip
    again = type(result).from_dict(document)
    assert again.metrics()["basket_items"] == metrics["basket_items"]


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({"metric": "nothing", "objective": "count > 1"}, "no custom metric 'nothing'"),
        ({"metric": "orders", "objective": "p(95) < 1"}, "'orders' is a counter: judge it by"),
        ({"metric": "in_stock", "objective": "value < 1"}, "'in_stock' is a rate"),
    ],
)
def test_objectives_on_metrics_the_plan_lacks_are_refused(
    tmp_path: Path, slo: dict[str, str], message: str
) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        load_plan(write(tmp_path, "http://127.0.0.1:9", [slo]))
    assert caught.value.path == "slo[0]"


def test_a_yaml_plan_has_no_custom_metrics() -> None:
    with pytest.raises(PlanError, match="a Python plan makes them"):
        plan_from_dict(
            {"target": "http://127.0.0.1:9", "requests": [{"path": "/"}], "load": {"rate": 1},
             "duration": "1s", "slo": [{"metric": "orders", "objective": "count > 1"}]},
            source="plan.yaml",
        )  # fmt: skip
