"""``redline find``: mistakes are named before any load is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.cli._main import main

PLAN = """
name: shop
target: http://127.0.0.1:1
requests: [{{name: home, path: /}}]
load: {load}
duration: 5s
{slo}
"""


def plan(tmp_path: Path, *, load: str = "{rate: 10/s}", slo: str = "slo: [p99 < 1s]") -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(load=load, slo=slo))
    return str(path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"slo": ""}, "a redline needs objectives: add an slo: section"),
        ({"load": "{vus: 2}"}, "give the plan an open-model load (use --closed"),
    ],
)
def test_a_plan_the_search_cannot_use_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: dict[str, str], message: str
) -> None:
    assert main(["find", plan(tmp_path, **options), "--no-store"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "fast"], "--start"),
        (["--step", "soon"], "--step"),
        (["--levels", "1,two"], "--levels: expected user counts"),
        (["--closed", "--html", "x.html"], "--html draws the rate search's curve"),
        (["--out", "/nonexistent/dir/x.json"], "--out: directory"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["find", plan(tmp_path), "--no-store", *extra]) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_target_is_not_carried_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["find", plan(tmp_path), "--no-store"]) == 3
    assert "unreachable" in capsys.readouterr().err
    assert main(["find", plan(tmp_path, load="{vus: 1}"), "--closed", "--no-store"]) == 3
