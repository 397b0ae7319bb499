"""A run stored by redline before the runner and the typed results (round one) still
loads and renders: the JSON export and the SQLite store it was kept in are fixtures.

Made with the round-one code: ``redline run tests/fixtures/round-one/plan.yaml --store
runs.db --out old-run.json --label fixture=round-one`` against ``redline testserver
--latency 2ms``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from redline.cli._main import main
from redline.core import RunOutcome
from redline.report import html_report, junit_xml, render_summary, summary_markdown
from redline.store import open_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "round-one"


def old_document() -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / "old-run.json").read_text("utf-8"))
    return data


def test_the_old_json_loads_whole() -> None:
    document = old_document()
    assert "schema_version" not in document  # written before the key existed
    outcome = RunOutcome.from_dict(document)
    result = outcome.result
    assert result.id == document["id"]
    assert result.plan.name == "round-one-shop"
    assert result.plan.load.rate == 40.0
    assert [o.text for o in result.plan.objectives] == [
        "p99 < 500ms",
        "error_rate < 1%",
        "p95 < 1s",
    ]
    # the typed summary writes back exactly the plan the old code wrote: the same keys
    assert result.plan.to_dict() == document["plan"]
    assert outcome.meta.to_dict() == document["meta"]
    assert [v.to_dict() for v in outcome.verdicts] == document["verdicts"]
    assert outcome.meta.labels == {"fixture": "round-one"}
    assert [v.objective.text for v in outcome.verdicts] == [
        "p99 < 500ms",
        "error_rate < 1%",
        "p95 < 1s",
    ]
    # the numbers it kept are the numbers it reads: the summary agrees with the intervals
    summary = document["summary"]
    assert isinstance(summary, dict)
    assert result.total().requests == summary["total"]["requests"]
    assert set(result.endpoint_names()) == {"product", "search"}
    # and what it writes now reads back to the same run
    again = RunOutcome.from_dict(json.loads(json.dumps(outcome.to_dict())))
    assert again.result.total().requests == result.total().requests
    assert again.verdicts == outcome.verdicts


def test_the_old_run_renders_in_every_format() -> None:
    outcome = RunOutcome.from_dict(old_document())
    result, verdicts = outcome.result, outcome.verdicts
    html = html_report(result, verdicts, meta=outcome.meta.to_dict())
    assert "<html" in html[:200].lower()
    assert result.id in html
    assert "round-one-shop" in summary_markdown(result, verdicts)
    assert junit_xml(result, verdicts).count("<testcase") == 3
    console = Console(record=True, width=140)
    console.print(render_summary(result))
    text = console.export_text()
    assert "product" in text
    assert "search" in text


def test_the_old_store_opens_and_its_run_is_shown_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_file = tmp_path / "runs.db"
    shutil.copy(FIXTURES / "runs.db", store_file)
    expected = old_document()["id"]
    with open_store(store_file) as store:
        (info,) = store.runs()
        stored = store.load("latest")
    assert info.id == expected
    assert info.labels == {"fixture": "round-one"}
    assert stored.result.id == expected
    assert len(stored.verdicts) == 3
    assert main(["show", "latest", "--store", str(store_file)]) == 0
    assert expected in capsys.readouterr().out
    html = tmp_path / "report.html"
    assert main(["report", "latest", "--store", str(store_file), "--html", str(html)]) == 0
    assert expected in html.read_text(encoding="utf-8")
