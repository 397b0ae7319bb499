"""``redline judge --prometheus``: a real Prometheus scraping three versions of a service.

Three ASGI apps wrapped in redline's RuntimeMetrics (the metrics a Python service
exports) run on loopback; a throwaway Prometheus scrapes them every second, labelling
them ``version="stable"``, ``"canary"`` (twice as slow) and ``"twin"`` (the same as
stable). redline sends each the same load, then judges from range queries alone.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from redline.cli._main import main
from redline.engine import run_plan
from redline.observe.asgi import RuntimeMetrics
from redline.plan import plan_from_dict
from redline.rollout import HookServer, Judgement, PrometheusCohorts, judge


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service(median_s: float, seed: int, errors: float = 0.0) -> Any:
    rng = random.Random(seed)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(median_s * rng.lognormvariate(0, 0.3))
        status = 500 if rng.random() < errors else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return RuntimeMetrics(app, lag_interval_s=1.0)


OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: availability}
spec:
  service: shop
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: good-requests}
    spec:
      ratioMetric:
        good:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(rate(http_requests_total{code!~"5.."}[{{.window}}]))'}
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(rate(http_requests_total[{{.window}}]))'}
  objectives:
    - {displayName: availability, target: 0.99}
"""


def launch_prometheus(config: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway Prometheus with ``config`` on a free loopback port, once it is ready."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is needed: install Debian's prometheus package (.ci/run does)")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise
            time.sleep(0.2)


@pytest.fixture
def prometheus_of(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """``prometheus_of({version: url})``: a Prometheus scraping each URL every second."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, str]) -> str:
        jobs = "".join(
            f"  - job_name: {version}\n    scrape_interval: 1s\n    static_configs:\n"
            f"      - targets: ['{url.removeprefix('http://')}']\n"
            f"        labels: {{version: {version}}}\n"
            for version, url in targets.items()
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}")
        process, url = launch_prometheus(config, tmp_path / "data")
        processes.append(process)
        return url

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.timeout(300)
def test_a_slow_canary_fails_a_twin_passes_and_a_cohort_with_no_traffic_fails(
    serve: Callable[..., str],
    prometheus_of: Callable[[dict[str, str]], str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    apps = {
        "stable": service(0.008, 1),
        "canary": service(0.016, 2),
        "twin": service(0.008, 3),
        "flaky": service(0.008, 4, errors=0.1),
    }
    try:
        urls = {version: serve(app) for version, app in apps.items()}
        prometheus = prometheus_of(urls)
        time.sleep(2)  # a first scrape of each, so every counter starts from a sample

        def load(url: str) -> None:
            plan = {
                "name": "cohort",
                "target": url,
                "requests": [{"name": "home", "path": "/"}],
                "load": {"rate": "60/s"},
                "duration": "24s",
                "workers": 1,
                "generator": {"late_tolerance": 0.9},
            }
            run_plan(plan_from_dict(plan, source="test"))

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(load, urls.values()))
        time.sleep(3)  # the last scrapes
    finally:
        for app in apps.values():
            app.close()
    window = ["--prometheus", prometheus, "--since", "27s", "--step", "3s", "--json"]
    judged = {}
    for canary in ("canary", "twin", "ghost"):
        code = main(["judge", "--baseline", "stable", "--canary", canary, *window])
        judged[canary] = (code, json.loads(capsys.readouterr().out))
    code, slow = judged["canary"]
    assert code == 1
    p50 = next(m for m in slow["metrics"] if m["metric"] == "p50")
    assert p50["classification"] == "high"
    assert 1.4 < p50["ratio"] < 2.8  # twice the median, seen through the buckets
    assert slow["requests"]["canary"] == pytest.approx(60 * 24, rel=0.15)
    code, twin = judged["twin"]
    assert code == 0, twin
    assert twin["verdict"] == "pass"
    code, ghost = judged["ghost"]
    assert code == 1
    assert ghost["requests"]["canary"] == 0
    assert ghost["score"] == 0

    # Judged by an OpenSLO indicator (the service's own good/total queries, scoped to each
    # cohort): only the errors count, so the slow canary passes and the flaky one fails.
    slo = tmp_path / "openslo.yaml"
    slo.write_text(OPENSLO)
    by_slo = {}
    for canary in ("canary", "flaky", "ghost"):
        code = main(["judge", "--baseline", "stable", "--canary", canary, "--slo", str(slo),
                     *window])  # fmt: skip
        by_slo[canary] = (code, json.loads(capsys.readouterr().out))
    assert by_slo["canary"][0] == 0, by_slo["canary"][1]
    code, flaky = by_slo["flaky"]
    assert code == 1
    (errors,) = flaky["metrics"]
    assert errors["metric"] == "error_ratio"
    assert errors["classification"] == "high"
    assert errors["canary"] == pytest.approx(0.1, abs=0.04)
    assert by_slo["ghost"][1]["requests"]["canary"] == 0

    # The hooks answer from the same Prometheus: Argo's web provider and Flagger's rollback.
    def from_prometheus(baseline: str, canary: str) -> Judgement:
        source = PrometheusCohorts(prometheus, baseline=baseline, canary=canary, step_s=3)
        end = time.time()
        return judge(*source.cohorts(end - 30, end))

    with HookServer(from_prometheus) as hooks:
        for canary, passed in (("canary", False), ("twin", True), ("ghost", False)):
            address = f"{hooks.url}judge?baseline=stable&canary={canary}"
            with urllib.request.urlopen(address, timeout=30) as answer:
                assert json.loads(answer.read())["passed"] is passed, canary
        payload = {"name": "canary", "namespace": "test", "phase": "Progressing",
                   "metadata": {"baseline": "stable"}}  # fmt: skip
        request = urllib.request.Request(
            f"{hooks.url}flagger/rollback", data=json.dumps(payload).encode()
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200  # roll back
