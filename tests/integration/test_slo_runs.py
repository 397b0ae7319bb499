"""Verdicts end to end: objectives judged on real runs against the test server."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from redline.cli._main import main
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]


def write_plan(path: Path, url: str, *, rate: str, duration: str, slo: str) -> Path:
    path.write_text(
        f"name: slo-test\ntarget: {url}\nrequests: [{{name: home, path: /}}]\n"
        f"load: {{rate: {rate}}}\nduration: {duration}\nworkers: 1\nseed: 3\n"
        # The test server shares this process's cores: a busy CI machine may send late.
        # These tests are about verdicts, so late sends must not turn them into exit 3.
        "generator: {late_tolerance: 0.9}\n"
        f"slo:\n{slo}"
    )
    return path


def test_two_percent_errors_fail_error_rate_below_one_percent_with_exit_1(
    redline_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = redline_server(Behaviour(error_rate=0.02), seed=7)
    plan = write_plan(
        tmp_path / "plan.yaml",
        server.url,
        rate="500/s",
        duration="4s",
        slo=(
            "  - {name: availability, objective: error_rate < 1%}\n"
            "  - {name: latency, objective: p99 < 1s, endpoint: home}\n"
            "  - {name: throughput, objective: rps >= 100}\n"
        ),
    )
    junit, summary = tmp_path / "slo.xml", tmp_path / "summary.md"
    code = main(["run", str(plan), "--quiet", "--junit", str(junit), "--summary-md", str(summary)])
    assert code == 1
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["availability"].find("failure") is not None
    assert cases["latency"].find("failure") is None
    assert cases["throughput"].find("failure") is None
    # The verdict's count agrees with the server's own.
    errors = server.responses_by_status[500]
    assert 0.01 < errors / server.responses_total < 0.04
    text = summary.read_text()
    assert "**1 of 3 objectives failed**" in text
    assert "**FAIL** | `error_rate < 1%`" in text
    out = capsys.readouterr().out
    assert "objectives" in out
    assert "FAIL" in out


def test_errors_in_the_last_tenth_fail_the_windowed_objective(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server(seed=1)
    planned = 400 * 10

    def errors_for_the_last_tenth() -> None:
        # Switch by the server's own count, not by a clock: the last tenth of the
        # requests get 30% errors however long the workers took to start.
        deadline = time.monotonic() + 60
        while server.requests_total < planned * 0.9 and time.monotonic() < deadline:
            time.sleep(0.005)
        server.set_behaviour(Behaviour(error_rate=0.3))

    switcher = threading.Thread(target=errors_for_the_last_tenth, daemon=True)
    plan = write_plan(
        tmp_path / "plan.yaml",
        server.url,
        rate="400/s",
        duration="10s",
        slo="  - {name: availability, objective: error_rate < 5%}\n",
    )
    out = tmp_path / "r.json"
    switcher.start()
    code = main(["run", str(plan), "--quiet", "--out", str(out)])
    switcher.join(timeout=60)
    result = json.loads(out.read_text())
    total = result["summary"]["total"]
    assert total["requests"] == planned
    assert 0.01 < total["errors"] / total["requests"] < 0.05  # the average passes...
    assert code == 1  # ...the late burn does not


def test_abort_rule_stops_a_breaching_run_early(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server(Behaviour(error_rate=0.5), seed=2)
    plan = write_plan(
        tmp_path / "plan.yaml",
        server.url,
        rate="200/s",
        duration="30s",
        slo="  - {objective: error_rate < 1%, abort: true, abort_after: 2s}\n",
    )
    out = tmp_path / "r.json"
    assert main(["run", str(plan), "--quiet", "--out", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["stop_reason"] == "aborted"
    assert any(note.startswith("aborted: error_rate < 1% breached") for note in result["notes"])
    measured = [i for i in result["intervals"] if not i["warmup"]]
    # abort_after (2 s) plus one window (30 s / 10 = 3 s), plus the interval in flight.
    assert len(measured) <= 2 + 3 + 1
