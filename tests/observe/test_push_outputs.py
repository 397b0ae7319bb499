"""Pushed outputs: Prometheus remote write into a real Prometheus, OTLP metrics decoded
with the OpenTelemetry protocol's own classes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

import redline
from redline.core import RunOutcome
from redline.observe import output_for
from redline.observe._push import _bucket_counts
from redline.plan import plan_from_dict
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_with(output_spec: str) -> tuple[RunOutcome, Any]:
    with (
        output_for(output_spec) as output,
        TestServer(routes={"/slow": Behaviour(latency=0.03)}).running() as server,
    ):
        plan = plan_from_dict(
            {"target": server.url, "load": {"rate": 100}, "duration": "3s",
             "requests": [{"path": "/", "name": "home", "weight": 3},
                          {"path": "/slow", "name": "slow"}]}
        )  # fmt: skip
        outcome = redline.run(plan, observers=[output])
    assert output.failed == 0, output.last_error
    assert output.written == len(outcome.result.intervals)
    return outcome, output


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A throwaway Prometheus that accepts remote write; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is needed: install Debian's prometheus package (.ci/run does)")
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def instant(url: str, query: str) -> list[dict[str, Any]]:
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(address, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success"
    return body["data"]["result"]  # type: ignore[no-any-return]


def test_remote_write_lands_in_a_real_prometheus(prometheus: str) -> None:
    outcome, _ = run_with(f"prometheus={prometheus}/api/v1/write")
    result = outcome.result
    run = result.id
    totals = instant(prometheus, f'redline_requests_total{{run="{run}"}}')
    by_endpoint = {s["metric"]["endpoint"]: float(s["value"][1]) for s in totals}
    # the counters add up over the run: the last sample is the run's total
    assert by_endpoint == {
        "all": result.total().requests,
        "home": result.endpoint("home").requests,
        "slow": result.endpoint("slow").requests,
    }
    assert by_endpoint["all"] == 300
    p99 = instant(prometheus, f'redline_latency_ms{{run="{run}",endpoint="slow",quantile="0.99"}}')
    assert 29 <= float(p99[0]["value"][1]) < 100  # the slow route answers in 30 ms
    sent = instant(prometheus, f'redline_generator_sent_total{{run="{run}"}}')
    assert float(sent[0]["value"][1]) == result.generator().sent
    assert sent[0]["metric"]["plan"] == result.plan.name


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/x-protobuf"
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """A stand-in OTLP/HTTP endpoint that keeps what it is sent (decoded in the test)."""
    received: ClassVar[list[bytes]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/metrics", received
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_metrics_decode_to_the_runs_numbers(collector: tuple[str, list[bytes]]) -> None:
    url, received = collector
    outcome, _ = run_with(f"otlp={url}")
    result = outcome.result
    assert len(received) == len(result.intervals)
    last = metrics_service_pb2.ExportMetricsServiceRequest.FromString(received[-1])
    (resource,) = last.resource_metrics
    assert {a.key: a.value.string_value for a in resource.resource.attributes} == {
        "service.name": "redline"
    }
    metrics = {m.name: m for m in resource.scope_metrics[0].metrics}

    def points(metric: Any) -> dict[str, Any]:
        return {
            next(a.value.string_value for a in p.attributes if a.key == "endpoint"): p
            for p in metric.data_points
        }

    requests = metrics["redline.requests"]
    assert requests.sum.is_monotonic
    assert requests.sum.aggregation_temporality == 2  # cumulative
    assert points(requests.sum)["all"].as_double == result.total().requests == 300
    latency = points(metrics["redline.latency"].histogram)
    slow = latency["slow"]
    assert slow.count == result.endpoint("slow").requests
    assert sum(slow.bucket_counts) == slow.count
    assert len(slow.bucket_counts) == len(slow.explicit_bounds) + 1
    # every slow answer took 30 ms: all in the (25, 50] ms bucket
    index = list(slow.explicit_bounds).index(50)
    assert slow.bucket_counts[index] == slow.count
    assert slow.sum == pytest.approx(slow.count * 30.5, rel=0.1)
    assert slow.start_time_unix_nano < slow.time_unix_nano


def test_bucket_counts_from_cumulative_counts() -> None:
    assert _bucket_counts([1, 1, 4, 9], 10) == [1, 0, 3, 5, 1]


@pytest.mark.parametrize("kind", ["prometheus", "otlp"])
def test_pushed_outputs_take_a_url(kind: str) -> None:
    with pytest.raises(ValueError, match="takes a URL"):
        output_for(f"{kind}=metrics.bin")
