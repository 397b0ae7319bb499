"""Demand traces: CSV, access logs and Prometheus; bad rows named by their line."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from redline.capacity import demand_from_prometheus, load_access_log, load_demand
from redline.core import PlanError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_a_csv_trace_with_its_resolution_and_a_gap(tmp_path: Path) -> None:
    rows = ["time_s,rate"] + [f"{t},{100 + t}" for t in range(0, 100, 10)]
    rows += [f"{t},{5}" for t in range(200, 240, 10)]  # 100..200 s missing: a gap
    trace = load_demand(write(tmp_path, "\n".join(rows) + "\n"))
    assert trace.resolution_s == 10
    assert trace.gaps == ((100.0, 200.0),)
    assert trace.peak == 190
    at = trace.at(np.array([0.0, 15.0, 95.0, 150.0, 205.0, 239.0, 240.0]))
    assert at[:3].tolist() == [100.0, 110.0, 190.0]
    assert math.isnan(at[3])  # in the gap: unknown
    assert at[4:6].tolist() == [5.0, 5.0]
    assert math.isnan(at[6])  # past the end
    assert trace.duration_s == 240


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("time,rate\n0,1\n", "line 1", "time_s and rate"),
        ("time_s,rate\n0,1\n10,fast\n", "line 3", "rate: expected requests per second"),
        ("time_s,rate\n0,1\n10,-5\n", "line 3", "cannot be negative"),
        ("time_s,rate\n0,1\n20,1\n10,1\n", "line 4", "must be in time order"),
        ("time_s,rate\n0,1\n0,2\n", "line 3", "each time once"),
        ("time_s,rate\nsoon,1\n", "line 2", "time_s: expected a number"),
        ("time_s,rate\n0,1\n", "", "at least two samples"),
    ],
)
def test_bad_traces_are_refused_with_the_line(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlanError, match=message) as caught:
        load_demand(path)
    assert str(caught.value).startswith(f"{path}: {where}".rstrip())


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read the demand trace"):
        load_demand(tmp_path / "nope.csv")


def test_an_access_log_is_counted_per_step(tmp_path: Path) -> None:
    lines = []
    for second in range(30):
        for _ in range(3 if second < 10 else 1):
            stamp = f"05/Dec/2026:10:00:{second:02d} +0000"
            lines.append(f'127.0.0.1 - - [{stamp}] "GET / HTTP/1.1" 200 5 "-" "curl"')
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\nnot a log line\n")
    trace = load_access_log(path, step_s=10)
    assert trace.rates.tolist() == [3.0, 1.0, 1.0]
    assert trace.resolution_s == 10
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    with pytest.raises(PlanError, match="common log format"):
        load_access_log(empty)


def test_an_unreachable_prometheus_is_a_clear_error() -> None:
    with pytest.raises(PlanError, match="cannot reach Prometheus"):
        demand_from_prometheus("http://127.0.0.1:1", "sum(rate(x[1m]))", start=0, end=60, timeout=2)


@pytest.fixture
def prometheus_with_history(tmp_path: Path, promtool: str) -> Iterator[tuple[str, int]]:
    """A real Prometheus serving 30 minutes of a gauge backfilled from OpenMetrics."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is needed: install Debian's prometheus package (.ci/run does)")
    start = (int(time.time()) - 3 * 3600) // 60 * 60
    lines = ["# HELP shop_rate requests per second", "# TYPE shop_rate gauge"]
    lines += [f'shop_rate{{job="shop"}} {100 + i // 10} {start + i}' for i in range(0, 1800, 10)]
    lines.append("# EOF")
    source = tmp_path / "history.om"
    source.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("prometheus did not become ready")
        yield url, start
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_prometheus_range_query_is_the_trace(prometheus_with_history: tuple[str, int]) -> None:
    url, start = prometheus_with_history
    trace = demand_from_prometheus(url, 'shop_rate{job="shop"}', start=start, end=start + 1790)
    assert trace.resolution_s == 10
    assert trace.rates[0] == 100
    assert trace.rates[-1] == 100 + 179
    assert len(trace.rates) == 180
    with pytest.raises(PlanError, match=r"refused the query \(400\)"):
        demand_from_prometheus(url, "sum(rate(", start=start, end=start + 60)
    with pytest.raises(PlanError, match="no series"):
        demand_from_prometheus(url, "nothing_here", start=start, end=start + 60)
