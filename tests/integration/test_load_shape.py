"""A Python plan's shape(elapsed_s) steers its load live, as Locust's LoadTestShape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import redline
from redline.core import PlanError
from redline.plan import load_plan
from redline.testing import TestServer

PLAN = """
from redline.scenario import scenario

target = "{url}"
load = {{"{model}": {start}}}
duration = "20s"


def shape(elapsed_s):
{body}


@scenario
async def hit(s):
    await s.get("/")
"""


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer().running() as running:
        yield running


def write(tmp_path: Path, url: str, body: str, *, model: str = "rate", start: int = 50) -> Path:
    path = tmp_path / "plan.py"
    path.write_text(PLAN.format(url=url, model=model, start=start, body=body))
    return path


def test_the_shape_sets_the_rate_and_ends_the_run(server: TestServer, tmp_path: Path) -> None:
    body = (
        "    if elapsed_s < 2:\n        return 100\n"
        "    if elapsed_s < 4:\n        return 300\n"
        "    return None"
    )
    plan = load_plan(write(tmp_path, server.url, body))
    assert plan.has_shape
    result = redline.run(plan).result
    assert result.stop_reason == "completed"
    assert any("shape() ended the run at 4." in note for note in result.notes)
    assert 4 <= len(result.intervals) <= 5  # not the plan's 20 s
    iterations = [i.scenarios["hit"].requests for i in result.intervals]
    assert iterations[0] == pytest.approx(100, abs=3)  # shape(0) applied before the start
    assert iterations[3] == pytest.approx(300, abs=10)
    assert [(e.action, e.value) for e in result.control][:2] == [("rate", 100.0), ("rate", 300.0)]


def test_a_closed_model_shape_sets_the_users(server: TestServer, tmp_path: Path) -> None:
    body = "    return 2 if elapsed_s < 1.5 else (5 if elapsed_s < 3 else None)"
    plan = load_plan(write(tmp_path, server.url, body, model="vus", start=1))
    result = redline.run(plan).result
    assert result.stop_reason == "completed", result.notes
    assert [e.value for e in result.control if e.action == "vus"] == [2.0, 5.0]


def test_a_shape_that_fails_aborts_with_its_reason(server: TestServer, tmp_path: Path) -> None:
    body = "    return 100 if elapsed_s < 1 else 'lots'"
    result = redline.run(load_plan(write(tmp_path, server.url, body))).result
    assert result.stop_reason == "aborted"
    assert any("returned 'lots': expected a number >= 0 or None" in n for n in result.notes)


def test_a_shape_must_be_a_plain_function(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "plan.py"
    path.write_text(PLAN.format(url=server.url, model="rate", start=5, body="    pass")
                    .replace("def shape", "async def shape"))  # fmt: skip
    with pytest.raises(PlanError, match="shape must be a plain function"):
        load_plan(path)
