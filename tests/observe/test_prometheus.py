"""Live Prometheus metrics of a run, scraped and parsed as Prometheus would."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from redline.core import GeneratorInterval
from redline.engine import run_plan
from redline.observe import BUCKETS, MetricsServer, RunMetrics
from redline.plan import plan_from_dict
from redline.testing import TestServer
from synthetic import synthetic_run

Server = Callable[..., TestServer]


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(server.url, timeout=5) as response:  # loopback only
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_buckets_are_those_of_a_native_histogram_of_schema_2() -> None:
    ratios = np.array(BUCKETS[1:]) / np.array(BUCKETS[:-1])
    assert np.allclose(ratios, 2**0.25)
    assert BUCKETS[0] == 2.0**-14
    assert BUCKETS[-1] == 2.0**6


def test_counters_and_buckets_add_up_to_the_run() -> None:
    run = synthetic_run(1, intervals=5, rate=200, errors=0.1)
    metrics = RunMetrics("shop", target="http://127.0.0.1:1")
    for interval in run.intervals:
        metrics.on_interval(interval)
    with MetricsServer(metrics, port=0) as server:
        samples = scrape(server)
    endpoint = (("endpoint", "home"), ("plan", "shop"))
    total = run.total()
    assert samples[("redline_requests_total", endpoint)] == total.requests
    assert samples[("redline_errors_total", endpoint)] == total.errors
    assert samples[("redline_request_duration_seconds_count", endpoint)] == total.requests
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "redline_request_duration_seconds_bucket"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == total.requests
    # A bucket holds what the run's histogram certainly holds at or below its bound.
    merged = run.intervals[0].total().latency.copy()
    for interval in run.intervals[1:]:
        merged.merge(interval.total().latency)
    le, count = next((le, c) for le, c in buckets if le >= 0.002)
    assert count == merged.count_at_or_below(int(le * 1e6))


def test_each_phase_is_a_histogram_labelled_by_phase() -> None:
    run = synthetic_run(1, intervals=3, rate=100, phases=True)
    metrics = RunMetrics("shop")
    for interval in run.intervals:
        metrics.on_interval(interval)
    with MetricsServer(metrics, port=0) as server:
        samples = scrape(server)
    counts = {
        dict(labels)["phase"]: value
        for (name, labels), value in samples.items()
        if name == "redline_request_phase_seconds_count"
    }
    assert counts == {name: 300 for name in ("dns", "connect", "tls", "send", "wait", "receive")}
    wait = dict(run.total().phases_ms["wait"])
    summed = samples[
        (
            "redline_request_phase_seconds_sum",
            (("endpoint", "home"), ("phase", "wait"), ("plan", "shop")),
        )
    ]
    assert summed / 300 == pytest.approx(wait["mean"] / 1000, rel=1e-6)
    plain = RunMetrics("shop")
    plain.on_interval(synthetic_run(1, intervals=1).intervals[0])
    with MetricsServer(plain, port=0) as server:
        assert not any(name.startswith("redline_request_phase") for name, _ in scrape(server))


def test_each_cluster_host_has_its_gauges_and_the_missing_share_is_served() -> None:
    run = synthetic_run(1, intervals=2, rate=100)
    metrics = RunMetrics("shop")
    first, last = run.intervals
    metrics.on_interval(
        dataclasses.replace(
            first,
            hosts={
                "h1": GeneratorInterval(sent=60, max_lag_ms=2.0, cpu_percent=30.0),
                "h2": GeneratorInterval(sent=40, max_lag_ms=250.0, cpu_percent=99.0),
            },
        )
    )
    metrics.on_interval(
        dataclasses.replace(
            last, hosts={"h1": GeneratorInterval(sent=70, max_lag_ms=1.0)}, missing=0.4
        )
    )
    with MetricsServer(metrics, port=0) as server:
        samples = scrape(server)

    def host(name: str, which: str) -> float:
        return samples[(name, (("host", which), ("plan", "shop")))]

    assert host("redline_host_achieved_rate", "h1") == 70.0  # the last interval's
    assert host("redline_host_achieved_rate", "h2") == 40.0  # lost: its last word stays
    assert host("redline_host_lag_seconds", "h2") == pytest.approx(0.25)
    assert host("redline_host_cpu_percent", "h2") == 99.0
    assert samples[("redline_host_missing_share", (("plan", "shop"),))] == pytest.approx(0.4)
    plain = RunMetrics("shop")
    plain.on_interval(first)
    with MetricsServer(plain, port=0) as server:
        assert not any(name.startswith("redline_host") for name, _ in scrape(server))


def test_a_live_run_is_scraped_while_it_runs_and_equals_its_total_at_the_end(
    redline_server: Server,
) -> None:
    target = redline_server()
    plan = plan_from_dict(
        {"name": "live", "target": target.url, "requests": [{"name": "home", "path": "/"}],
         "load": {"rate": "200/s"}, "duration": "3s", "workers": 1},
        source="test",
    )  # fmt: skip
    metrics = RunMetrics(plan.name, target=plan.target)
    seen: list[float] = []
    with MetricsServer(metrics, port=0) as server:
        done = threading.Event()

        def watch() -> None:
            deadline = time.monotonic() + 30
            while not done.is_set() and time.monotonic() < deadline:
                value = scrape(server).get(
                    ("redline_requests_total", (("endpoint", "home"), ("plan", "live")))
                )
                if value is not None:
                    seen.append(value)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        result = run_plan(plan, observers=[metrics])
        done.set()
        watcher.join()
        final = scrape(server)
    assert seen, "the counter was never scraped during the run"
    assert seen == sorted(seen)
    assert 0 < seen[0] < result.total().requests  # seen while the run was going
    key = ("redline_requests_total", (("endpoint", "home"), ("plan", "live")))
    assert final[key] == result.total().requests == target.requests_total
    assert final[("redline_target_rate", (("plan", "live"),))] == 200.0


def test_redline_run_serves_metrics_on_the_port_it_prints(
    redline_server: Server, tmp_path: Path
) -> None:
    target = redline_server()
    out = tmp_path / "result.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "redline", "run", "--url", target.url, "--rate", "100/s",
         "--duration", "4s", "--quiet", "--no-store", "--prometheus", "0", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", first)
        assert url, first
        counts = []
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url.group(1), timeout=2) as response:  # loopback
                    text = response.read().decode()
            except OSError:
                break  # the run ended and its server with it
            found = re.search(
                r'^redline_requests_total\{endpoint="GET /",plan="quick"\} (\S+)', text, re.M
            )
            if found:
                counts.append(float(found.group(1)))
            time.sleep(0.3)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert counts, "nothing was scraped during the run"
    assert counts == sorted(counts)
    total = json.loads(out.read_text())["summary"]["total"]["requests"]
    assert 0 < counts[-1] <= total


def test_a_traced_interval_adds_exemplars_served_as_openmetrics() -> None:
    import dataclasses

    from redline.core import Exemplar

    run = synthetic_run(5, intervals=2, rate=100)
    name = next(iter(run.intervals[0].endpoints))
    trace = "3f" * 16
    traced = dataclasses.replace(
        run.intervals[1], exemplars=(Exemplar(trace, name, 3.0, 200, 1, "slowest"),)
    )
    metrics = RunMetrics("shop")
    metrics.on_interval(run.intervals[0])
    metrics.on_interval(traced)
    with MetricsServer(metrics, port=0) as server:
        request = urllib.request.Request(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            text = answer.read().decode()
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            plain = answer.read().decode()
    lines = [line for line in text.splitlines() if f'trace_id="{trace}"' in line]
    assert len(lines) == 1  # the bucket the 3 ms request fell in, and only it
    bound = float(re.search(r'le="([^"]+)"', lines[0])[1])  # type: ignore[index]
    assert bound >= 0.003
    assert BUCKETS[BUCKETS.index(bound) - 1] < 0.003
    assert " # {" in lines[0]
    assert trace not in plain  # the classic text format has no exemplars
