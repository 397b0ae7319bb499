"""`redline history`: a metric across stored runs, with the step found at the right run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redline.cli._main import main
from redline.store import RunMeta, open_store
from synthetic import synthetic_run


def store_history(location: Path, scales: list[float], *, branch: str = "main") -> list[str]:
    """Thirty-odd finished runs of plan "shop", one a minute, with latency scaled per run."""
    ids = []
    with open_store(location) as store:
        for index, scale in enumerate(scales):
            hour, minute = 10 + index // 60, index % 60
            run = synthetic_run(
                index,
                run_id=f"20261128T{hour:02d}{minute:02d}00Z-{branch[:2]}{index:04d}",
                started_at=f"2026-11-28T{hour:02d}:{minute:02d}:00.000Z",
                scale=scale,
                rate=400,
                intervals=5,
            )
            store.save(run, RunMeta(labels={"branch": branch}))
            ids.append(run.id)
    return ids


def history(location: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    assert main(["history", "shop", "--store", str(location), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_a_planted_step_is_found_at_the_right_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "runs.db"
    ids = store_history(location, [1.0] * 21 + [1.25] * 9)
    found = history(location, capsys)
    assert [r["id"] for r in found["runs"]] == ids  # oldest first
    (step,) = found["change_points"]
    assert step["run"] == ids[21]
    assert step["change"] == pytest.approx(0.25, abs=0.08)
    # The table says the same to a person.
    assert main(["history", "shop", "--store", str(location)]) == 0
    assert f"change at run {ids[21]}" in capsys.readouterr().out


def test_a_single_outlier_run_is_not_a_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = tmp_path / "runs.db"
    scales = [1.0] * 30
    scales[12] = 2.0
    store_history(location, scales)
    found = history(location, capsys, "--metric", "p50")
    assert found["change_points"] == []
    assert max(r["value"] for r in found["runs"]) == found["runs"][12]["value"]


def test_history_follows_one_branch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    location = tmp_path / "runs.db"
    store_history(location, [1.0] * 10, branch="main")
    feature = store_history(location, [1.5] * 6, branch="feature")
    found = history(location, capsys, "--label", "branch=feature")
    assert [r["id"] for r in found["runs"]] == feature
    assert main(["history", "nope", "--store", str(location)]) == 2
    assert "no finished runs of plan 'nope'" in capsys.readouterr().err
