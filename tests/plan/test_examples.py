"""The plans shipped in examples/ stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.plan import load_plan

EXAMPLES = sorted(
    p for p in (Path(__file__).parents[2] / "examples").iterdir() if p.suffix in (".yaml", ".py")
)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_plan_is_valid(path: Path) -> None:
    plan = load_plan(path)
    assert plan.requests or plan.scenarios or plan.workloads or plan.websocket
    assert plan.duration > 0


def test_there_are_examples() -> None:
    assert EXAMPLES
