"""Python plan files: what loads, and the errors (file and line) for what does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from redline.core import PlanError
from redline.plan import ClosedLoad, load_plan

HEADER = """
from redline.scenario import Session, scenario

target = "http://127.0.0.1:9"
load = {"vus": 2}
duration = "1s"
"""


def write(tmp_path: Path, body: str, name: str = "journeys.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def test_scenarios_weights_and_hooks_are_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        def setup(session):
            return 1

        @scenario(weight=3)
        async def browse(s: Session) -> None:
            await s.get("/")

        @scenario(name="buy it")
        async def buy(s: Session) -> None:
            async with s.group("pay"):
                pass
        """,
    )
    plan = load_plan(path)
    assert [(s.name, s.function, s.weight) for s in plan.scenarios] == [
        ("browse", "browse", 3),
        ("buy it", "buy", 1),
    ]
    assert plan.requests == ()
    assert plan.has_setup
    assert not plan.has_teardown
    assert isinstance(plan.load, ClosedLoad)
    assert plan.name == "journeys"
    assert plan.module == str(path.resolve())


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_import_failure_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "\nx = 1\nundefined_name + 1\n")
    line = line_of(path, "undefined_name + 1")
    with pytest.raises(
        PlanError, match=rf"journeys\.py: line {line}: cannot import the plan: NameError"
    ):
        load_plan(path)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "\ndef broken(:\n")
    line = line_of(path, "def broken(:")
    with pytest.raises(PlanError, match=rf"line {line}: cannot import the plan: SyntaxError"):
        load_plan(path)


def test_a_scenario_that_never_awaits_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        @scenario
        async def lazy(s: Session) -> None:
            s.check("nothing", True)
        """,
    )
    with pytest.raises(
        PlanError, match=rf"line {line_of(path, '@scenario')}: scenario 'lazy' never awaits"
    ):
        load_plan(path)


def test_a_plain_function_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        @scenario
        def sync(s):
            return None
        """,
    )
    with pytest.raises(PlanError, match=r"scenario 'sync' must be an async function"):
        load_plan(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("\nx = 1\n", "defines no scenario"),
        (
            '\nrequests = [{"path": "/"}]\n@scenario\nasync def a(s):\n    await s.get("/")\n',
            "requests: a plan with scenarios sends what they send",
        ),
        (
            "\n@scenario(weight=0)\nasync def a(s):\n    await s.get('/')\n",
            "weight must be a positive",
        ),
        (
            '\nload = {"vus": -1}\n@scenario\nasync def a(s):\n    await s.get("/")\n',
            r"load\.vus: expected",
        ),
    ],
)
def test_invalid_python_plans_are_explained(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        load_plan(write(tmp_path, body))
