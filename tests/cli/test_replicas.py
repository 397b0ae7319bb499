"""Following the target's replica count during a run: a command, or a real Prometheus."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from redline.cli._main import main
from redline.runner import read_replicas
from redline.testing import Behaviour, TestServer

HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: Pods
      pods: {metric: {name: requests_per_second}, target: {type: AverageValue, averageValue: "60"}}
"""


def test_a_scaling_event_is_read_against_the_load_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replicas = tmp_path / "replicas"
    replicas.write_text("1\n")
    with TestServer(Behaviour(latency=0.001)).running() as server:
        plan = tmp_path / "plan.yaml"
        plan.write_text(
            f"""
target: {server.url}
requests: [{{name: home, path: /}}]
load:
  stages:
    - {{duration: 2s, rate: 50/s}}
    - {{duration: 0s, rate: 200/s}}
    - {{duration: 4s, rate: 200/s}}
slo: [error_rate < 1%, p99 < 500ms]
"""
        )
        stop = threading.Event()

        def scale_after_the_step() -> None:  # the "autoscaler": more replicas once busy
            while not stop.is_set():
                if server.requests_total > 160:
                    time.sleep(1.0)
                    replicas.write_text("4\n")
                    return
                time.sleep(0.05)

        scaler = threading.Thread(target=scale_after_the_step, daemon=True)
        scaler.start()
        (tmp_path / "hpa.yaml").write_text(HPA)
        out = tmp_path / "run.json"
        try:
            code = main([
                "run", str(plan), "--no-store", "--quiet", "--out", str(out),
                "--replicas-from", f"command:cat {replicas}",
                "--replicas-policy", str(tmp_path / "hpa.yaml"), "--capacity", "100/s",
                "--startup", "1s",
            ])  # fmt: skip
        finally:
            stop.set()
            scaler.join(timeout=5)
    printed = capsys.readouterr().out
    assert code == 0, printed
    scaling = json.loads(out.read_text())["scaling"]
    assert scaling["failures"] == 0
    assert len(scaling["readings"]) >= 5
    (event,) = scaling["events"]
    assert (event["before"], event["after"]) == (1, 4)
    assert event["load_step_s"] == pytest.approx(2.0, abs=1.0)
    assert 0 < event["delay_s"] < 4
    assert event["burn"]["error_rate < 1%"] == 0  # no error during the transition
    # the HPA, replayed on the run's demand, reconciles every 15 s: not within 6 s
    assert event["replayed_at_s"] is None
    assert "scaling at" in printed
    assert "the replayed policy had not got there" in " ".join(printed.split())


def test_a_bad_source_is_refused_before_the_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--url", "http://127.0.0.1:1", "--rate", "1/s", "--duration", "1s",
                 "--no-store", "--replicas-from", "kubectl:shop"])  # fmt: skip
    assert code == 2
    assert "--replicas-from: expected command:CMD or prometheus:URL" in capsys.readouterr().err
    wrong = "command:echo many"
    code = main(["run", "--url", "http://127.0.0.1:1", "--rate", "1/s", "--duration", "1s",
                 "--no-store", "--replicas-from", wrong])  # fmt: skip
    assert code == 2
    assert "not a replica count" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_prometheus_source_reads_a_real_prometheus(tmp_path: Path, promtool: str) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is needed: install Debian's prometheus package (.ci/run does)")
    registry = CollectorRegistry()
    ready = Gauge("fake_ready_replicas", "replicas ready", registry=registry)
    ready.set(3)
    exporter_port = _free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: fake\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"prometheus:http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        seen = None
        while time.monotonic() < deadline and seen != 3:
            try:
                seen = read_replicas(url, "fake_ready_replicas", timeout=2)
            except (OSError, ValueError):
                time.sleep(0.5)
        assert seen == 3
        ready.set(5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and seen != 5:
            time.sleep(0.5)
            seen = read_replicas(url, "fake_ready_replicas", timeout=2)
        assert seen == 5
        with pytest.raises(ValueError, match="returned no series"):
            read_replicas(url, "nothing_like_this", timeout=2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
