"""``redline report`` and the ``--dashboard`` options: files written, errors named."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from redline.analysis import evaluate
from redline.cli._main import main
from redline.core import parse_objective
from redline.store import RunMeta, StoredRun, open_store
from synthetic import synthetic_run

QUICK = ["run", "--url", "http://127.0.0.1:1/", "--rate", "1/s"]  # never reached: options fail


def page_data_of(path: Path) -> dict[str, Any]:
    html = path.read_text()
    found = re.search(r'id="redline-data">(.*?)</script>', html)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def stored(seed: int, run_id: str, started: str, **options: object) -> None:
    run = synthetic_run(seed, run_id=run_id, started_at=started, **options)
    verdicts = evaluate(run, [parse_objective("p99 < 10ms")])
    with open_store(None) as store:
        store.save(run, RunMeta(labels={"build": run_id}, git_commit="abc123"), verdicts)


def test_report_of_a_stored_run_with_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(1, "20261128T080000Z-aaaaaa", "2026-11-28T08:00:00.000Z", scale=1.3)
    stored(2, "20261128T090000Z-bbbbbb", "2026-11-28T09:00:00.000Z")
    html = tmp_path / "report.html"
    code = main(["report", "latest", "--baseline", "20261128T080000Z", "--html", str(html)])
    assert code == 0
    assert "report of run 20261128T090000Z-bbbbbb written to" in capsys.readouterr().out
    data = page_data_of(html)
    assert data["run"]["id"] == "20261128T090000Z-bbbbbb"
    assert data["run"]["git_commit"] == "abc123"
    assert data["run"]["labels"] == {"build": "20261128T090000Z-bbbbbb"}
    assert data["verdicts"][0]["name"] == "p99 < 10ms"
    assert data["baseline"]["run"]["id"] == "20261128T080000Z-aaaaaa"
    p50 = next(m for m in data["comparison"]["metrics"] if m["name"] == "p50")
    assert p50["outcome"] == "improvement"


def test_report_of_a_json_result_needs_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDLINE_STORE", str(tmp_path / "absent" / "runs.db"))
    run = synthetic_run(3, run_id="from-a-file")
    result = tmp_path / "run.json"
    result.write_text(json.dumps(StoredRun(run, RunMeta(), ()).to_dict()))
    html = tmp_path / "report.html"
    assert main(["report", str(result), "--html", str(html)]) == 0
    assert page_data_of(html)["run"]["id"] == "from-a-file"
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "nothing.json", "--html", "{tmp}/r.html"], "nothing.json: cannot read"),
        (["report", "latest", "--html", "{tmp}/no/such/dir/r.html"], "--html: directory"),
        (["report", "latest", "--html", "{tmp}/r.html"], "no run store"),
        (
            [*QUICK, "--dashboard", "nine"],
            "--dashboard: expected [HOST:]PORT like \"127.0.0.1:9464\", got 'nine'",
        ),
        (
            [*QUICK, "--dashboard", "0", "--linger", "soon"],
            "--linger:",
        ),
    ],
)
def test_report_and_dashboard_mistakes_exit_2_saying_what(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_a_taken_dashboard_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([*QUICK, "--dashboard", str(port)]) == 2
    assert "--dashboard:" in capsys.readouterr().err
