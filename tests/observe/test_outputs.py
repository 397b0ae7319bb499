"""Streaming outputs: CSV, JSON lines and InfluxDB line protocol, per interval."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import redline
from redline.core import IntervalSnapshot
from redline.observe import StreamOutput, output_for
from redline.observe._outputs import _Run, line_protocol
from redline.plan import plan_from_dict
from redline.testing import TestServer
from synthetic import synthetic_run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def feed(output: StreamOutput, seed: int = 1, intervals: int = 4) -> None:
    run = synthetic_run(seed, intervals=intervals, rate=200, errors=0.05)
    output.on_start(run)
    for interval in run.intervals:
        output.on_interval(interval)
    output.on_finish(None)
    output.close()


def test_csv_has_a_row_per_endpoint_and_interval_that_adds_up(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    output = output_for(f"csv={path}")
    run = synthetic_run(2, intervals=5, rate=200, errors=0.05)
    output.on_start(run)
    for interval in run.intervals:
        output.on_interval(interval)
    output.close()
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert output.written == 5
    assert output.dropped == 0
    totals = [r for r in rows if r["endpoint"] == "all"]
    assert [int(r["interval"]) for r in totals] == [0, 1, 2, 3, 4]
    assert sum(int(r["requests"]) for r in totals) == sum(i.total().requests for i in run.intervals)
    for row, interval in zip(totals, run.intervals, strict=True):
        p99 = interval.total().latency.values_at_percentiles([99])[0] / 1000
        assert float(row["p99_ms"]) == pytest.approx(p99)
        assert int(row["errors"]) == interval.total().errors
        assert row["run"] == run.id
        assert row["time"].startswith("2026-11-28T00:00:0")


def test_jsonl_lines_read_back_as_the_intervals(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    output = output_for(f"jsonl={path}")
    run = synthetic_run(3, intervals=3, rate=100)
    output.on_start(run)
    for interval in run.intervals:
        output.on_interval(interval)
    output.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    back = [IntervalSnapshot.from_dict(line) for line in lines]
    for before, after in zip(run.intervals, back, strict=True):
        assert after.total().latency.encode() == before.total().latency.encode()


def test_line_protocol_escapes_tags_and_types_fields() -> None:
    run = synthetic_run(4, intervals=1, rate=50, plan="my shop,eu")
    meta = _Run(run)
    text = line_protocol(meta, run.intervals[0])
    first = text.splitlines()[0]
    assert first.startswith("redline_interval,plan=my\\ shop\\,eu,run=")
    _, fields, stamp = first.rsplit(" ", 2)
    assert "requests=50i" in fields
    assert "warmup=" in fields
    assert int(stamp) == int(meta.started.timestamp() * 1e9)


def test_a_writer_that_falls_behind_drops_and_counts_never_blocks() -> None:
    gate = threading.Event()
    written: list[int] = []

    def slow(run: object, interval: IntervalSnapshot) -> None:
        gate.wait(10)
        written.append(interval.index)

    output = StreamOutput("slow", slow, capacity=2)
    run = synthetic_run(5, intervals=10, rate=10)
    output.on_start(run)
    for interval in run.intervals:
        output.on_interval(interval)  # returns at once: the writer is stuck
    assert output.dropped >= 7
    gate.set()
    output.close()
    assert output.written + output.dropped == 10
    assert written == sorted(written)
    assert "dropped" in output.summary()


def test_a_failing_write_is_counted_not_raised() -> None:
    output = output_for("influxdb=http://127.0.0.1:9/write?db=nowhere")
    feed(output)
    assert output.failed == 4
    assert output.written == 0
    assert "failed" in output.summary()


@pytest.mark.parametrize("spec", ["csv", "csv=", "parquet=run.parquet", "=run.csv"])
def test_bad_output_specs_name_the_kinds(spec: str) -> None:
    with pytest.raises(ValueError, match="expected KIND=TARGET with KIND one of csv, jsonl"):
        output_for(spec)


INFLUXD_CONF = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
"""


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[str]:
    """A throwaway InfluxDB 1.x (Debian's influxd) on free ports; its URL."""
    binary = shutil.which("influxd")
    if binary is None:
        pytest.fail("influxd is needed: install Debian's influxdb package (.ci/run does)")
    port, rpc = free_port(), free_port()
    conf = tmp_path / "influxdb.conf"
    conf.write_text(INFLUXD_CONF.format(dir=tmp_path, port=port, rpc=rpc))
    process = subprocess.Popen(
        [binary, "-config", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        influx_query(url, "CREATE DATABASE redline")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def influx_query(url: str, query: str) -> dict[str, object]:
    data = urllib.parse.urlencode({"q": query, "db": "redline"}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_a_live_run_lands_in_a_real_influxdb(influxdb: str) -> None:
    with (
        output_for(f"influxdb={influxdb}/write?db=redline") as output,
        TestServer().running() as server,
    ):
        plan = plan_from_dict(
            {"target": server.url, "requests": [{"path": "/", "name": "home"}],
             "load": {"rate": 100}, "duration": "3s"}
        )  # fmt: skip
        outcome = redline.run(plan, observers=[output])
    assert output.failed == 0, output.last_error
    assert output.written == len(outcome.result.intervals)
    answer = influx_query(
        influxdb, "SELECT sum(requests) FROM redline_interval WHERE endpoint = 'all'"
    )
    series = answer["results"][0]["series"][0]  # type: ignore[index]
    assert series["values"][0][1] == outcome.result.total().requests == 300
    per_endpoint = influx_query(
        influxdb, "SELECT count(p99_ms) FROM redline_interval WHERE endpoint = 'home'"
    )
    assert per_endpoint["results"][0]["series"][0]["values"][0][1] == 3  # type: ignore[index]


def test_the_command_line_streams_csv_and_jsonl_and_says_what_it_wrote(
    tmp_path: Path,
) -> None:
    rows, lines = tmp_path / "run.csv", tmp_path / "run.jsonl"
    with TestServer().running() as server:
        done = subprocess.run(
            [sys.executable, "-m", "redline", "run", "--url", server.url, "--rate", "50",
             "--duration", "2s", "--no-store", "--quiet", "--output", f"csv={rows}",
             "--output", f"jsonl={lines}", "--out", str(tmp_path / "run.json")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"output csv={rows}: 2 interval(s) written" in done.stdout
    document = json.loads((tmp_path / "run.json").read_text())
    totals = [r for r in csv.DictReader(rows.read_text().splitlines()) if r["endpoint"] == "all"]
    assert sum(int(r["requests"]) for r in totals) == document["summary"]["total"]["requests"]
    assert {r["run"] for r in totals} == {document["id"]}
    assert len(lines.read_text().splitlines()) == len(document["intervals"])
    bad = subprocess.run(
        [sys.executable, "-m", "redline", "run", "--url", "http://127.0.0.1:9/", "--rate",
         "5", "--duration", "1s", "--no-store", "--output", "parquet=x"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "expected KIND=TARGET" in bad.stderr
