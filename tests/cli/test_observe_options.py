"""The watching options on the command line: run, show, find's steps, and bad values."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from redline.cli._main import main
from redline.core import SCHEMA_VERSION

PLANTED = Path(__file__).resolve().parents[1] / "observe" / "planted.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_run_serves_watches_and_keeps_the_target_in_the_document_and_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    out = tmp_path / "run.json"
    store = tmp_path / "runs.db"
    code = main([
        "run", "--url", f"http://127.0.0.1:{port}/flat", "--rate", "20/s", "--duration", "3s",
        "--serve", f"{sys.executable} {PLANTED} {port}", "--observe", "host", "--profile",
        "--quiet", "--out", str(out), "--store", str(store),
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "bottleneck: none" in printed
    document = json.loads(out.read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    target = document["target"]
    assert [t["name"] for t in target["watched"]] == ["serve", "host"]
    assert target["served"]["stdout_tail"] == [f"serving on {port}"]
    assert len(target["samples"]["serve"]) == len(document["intervals"])
    assert target["verdict"]["bottleneck"] == "none"
    assert target["profile"]["window_s"][0] < 0.5  # no warm-up: profiled from the start
    assert "note" not in target["profile"]  # a note is written only when there is one
    assert main(["show", document["id"], "--store", str(store)]) == 0
    assert "bottleneck: none" in capsys.readouterr().out


def test_a_pid_that_is_not_there_is_named_before_any_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    code = main([
        "run", "--url", "http://127.0.0.1:9/", "--rate", "5/s", "--duration", "1s",
        "--observe", f"pid:{gone.pid}", "--no-store", "--quiet",
    ])  # fmt: skip
    assert code == 3
    assert f"pid:{gone.pid}: no such process" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--observe", "pod:3"], "--observe: expected one of pid:1234"),
        (["--serve-limit", "cpu=0.5"], "--serve-limit: needs --serve"),
        (["--serve", "x", "--serve-limit", "gpu=1"], "unknown resource 'gpu'"),
        (["--profile"], "--profile: --profile needs something to watch"),
    ],
)
def test_bad_watching_options_are_usage_errors(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "run", "--url", "http://127.0.0.1:9/", "--rate", "5/s", "--duration", "1s",
        "--no-store", "--quiet", *options,
    ])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err


def test_compare_prints_what_a_request_cost_the_target_in_either_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from redline.core import RunMeta, TargetCost, TargetReport
    from redline.store import open_store
    from synthetic import synthetic_run

    where = str(tmp_path / "runs.db")
    with open_store(where) as store:
        for number, cpu_s in ((1, 0.002), (2, 0.0025)):
            run = dataclasses.replace(synthetic_run(number, intervals=6), id=f"run-{number}")
            cost = TargetCost(cpu_s_per_request=cpu_s, memory_gib_s_per_request=None)
            store.save(run, RunMeta(), target=TargetReport(cost=cost))
    main(["compare", "run-1", "run-2", "--store", where])
    printed = capsys.readouterr().out
    assert "cost per request, CPU: 2 -> 2.5 CPU-ms (+25.0%)" in printed
    assert "cost per request, memory" not in printed  # unknown in both: not printed


def test_traces_import_joins_a_files_spans_to_the_latest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from redline.core import Exemplar, RunMeta, TraceReport
    from redline.store import open_store
    from synthetic import synthetic_run

    run = dataclasses.replace(synthetic_run(3, intervals=6), id="run-traced")
    endpoint = next(iter(run.intervals[0].endpoints))
    slow = run.endpoint(endpoint).latency_ms["max"]
    trace = "ab" * 16
    kept = TraceReport(exemplars=(Exemplar(trace, endpoint, slow, 200, 2, "slowest"),))
    where = str(tmp_path / "runs.db")
    with open_store(where) as store:
        store.save(run, RunMeta(), traces=kept)
    spans = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": trace, "spanId": "01" * 8, "name": "GET /", "startTimeUnixNano": "0",
             "endTimeUnixNano": "4000000"},
            {"traceId": trace, "spanId": "02" * 8, "parentSpanId": "01" * 8, "name": "db",
             "startTimeUnixNano": "1000000", "endTimeUnixNano": "4000000"},
        ]}],
    }]}  # fmt: skip
    file = tmp_path / "spans.json"
    file.write_text(json.dumps(spans))
    assert main(["traces", "import", str(file), "--store", where]) == 0
    assert f"p99 of {endpoint}: 75% api db, 25% api GET /" in capsys.readouterr().out
    with open_store(where) as store:
        again = store.load("run-traced").traces
    assert again is not None
    assert again.counts["joined"] == 1
