"""Synthetic probes: a smoke plan on a schedule, its runs in Prometheus, its alerts."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from redline.cli._main import main
from redline.plan import plan_from_dict
from redline.rollout import ProbeMetrics
from redline.runner import run_probes
from redline.testing import Behaviour, TestServer
from synthetic import synthetic_run

from .test_judge_prometheus import free_port

Server = Callable[..., TestServer]


def samples(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def smoke(url: str, name: str = "smoke") -> dict[str, object]:
    return {
        "name": name,
        "target": url,
        "requests": [{"name": "home", "path": "/"}],
        "load": {"rate": "20/s"},
        "duration": "1s",
        "workers": 1,
        "slo": ["p99 < 2s"],
    }


@pytest.mark.timeout(120)
def test_probes_count_what_they_sent_and_say_when_the_target_fails_or_is_gone(
    redline_server: Server,
) -> None:
    healthy = redline_server(Behaviour(latency=0.002), seed=1)
    broken = redline_server(Behaviour(latency=0.002, error_rate=1.0), seed=2)
    metrics = ProbeMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    seen: list[tuple[int, str]] = []
    for url, name in ((healthy.url, "healthy"), (broken.url, "broken")):
        plan = plan_from_dict(smoke(url, name), source="test")
        made = run_probes(
            plan, every_s=0.1, metrics=metrics, count=2, on_probe=lambda n, k: seen.append((n, k))
        )
        assert made == 2
    gone = plan_from_dict(smoke(f"http://127.0.0.1:{free_port()}", "gone"), source="test")
    run_probes(gone, every_s=0.1, metrics=metrics, count=1)
    assert seen == [(1, "pass"), (2, "pass"), (1, "fail"), (2, "fail")]
    assert metrics.runs("gone") == {"pass": 0, "fail": 0, "error": 1}
    got = samples(generate_latest(registry).decode())
    assert got["redline_probe_runs_total{outcome=pass,probe=healthy}"] == 2
    assert got["redline_probe_requests_total{probe=healthy}"] == healthy.requests_total == 40
    assert got["redline_probe_errors_total{probe=healthy}"] == 0
    assert got["redline_probe_errors_total{probe=broken}"] == broken.requests_total == 40
    assert got["redline_probe_success{probe=healthy}"] == 1
    assert got["redline_probe_success{probe=broken}"] == 0
    assert got["redline_probe_latency_seconds_count{probe=healthy}"] == 40
    assert got["redline_probe_latency_seconds_bucket{le=+Inf,probe=healthy}"] == 40
    assert 0 < got["redline_probe_p99_seconds{probe=healthy}"] < 1
    assert got["redline_probe_requests_total{probe=gone}"] == 1  # one request, failed
    assert got["redline_probe_errors_total{probe=gone}"] == 1
    assert got["redline_probe_last_run_timestamp_seconds{probe=gone}"] > time.time() - 60


def test_the_record_is_fixed_size_however_long_the_probes_run() -> None:
    metrics = ProbeMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    run = synthetic_run(1, intervals=2, rate=50)
    for _ in range(10):
        metrics.record("soak", run, passed=True)
    after_ten = samples(generate_latest(registry).decode())
    for _ in range(2000):  # days of probes at one a minute, in memory terms
        metrics.record("soak", run, passed=True)
    after_many = samples(generate_latest(registry).decode())
    assert after_many.keys() == after_ten.keys()  # no series grows with the runs
    assert after_many["redline_probe_requests_total{probe=soak}"] == 2010 * 100
    assert after_many["redline_probe_runs_total{outcome=pass,probe=soak}"] == 2010


@pytest.mark.timeout(120)
def test_the_command_serves_metrics_while_it_runs_and_writes_alert_rules(
    redline_server: Server, tmp_path: Path, promtool: str
) -> None:
    server = redline_server(Behaviour(latency=0.002), seed=3)
    plan = tmp_path / "smoke.yaml"
    plan.write_text(yaml.safe_dump(smoke(server.url)))
    port = free_port()
    rules = tmp_path / "probe-rules.yaml"
    codes: list[int] = []
    argv = ["probe", str(plan), "--every", "1s", "--count", "3", "--no-store",
            "--listen", f"127.0.0.1:{port}", "--rules-out", str(rules)]  # fmt: skip
    thread = threading.Thread(target=lambda: codes.append(main(argv)))
    thread.start()
    scraped: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                scraped = samples(answer.read().decode())
        except OSError:
            pass
        if scraped.get("redline_probe_runs_total{outcome=pass,probe=smoke}", 0) >= 2:
            break
        time.sleep(0.2)
    thread.join(timeout=60)
    assert codes == [0]
    assert scraped["redline_probe_runs_total{outcome=pass,probe=smoke}"] >= 2
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The failing alert fires after two failed periods, the stale one when runs stop.
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1s",
        "tests": [
            {
                "interval": "1s",
                "input_series": [
                    {"series": 'redline_probe_success{probe="smoke"}', "values": "1 1 0x10"},
                    {
                        "series": 'redline_probe_last_run_timestamp_seconds{probe="smoke"}',
                        "values": "0+1x200",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1s", "alertname": "RedlineProbeFailing", "exp_alerts": []},
                    {
                        "eval_time": "8s",
                        "alertname": "RedlineProbeFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {"probe": "smoke", "severity": "page"},
                                "exp_annotations": {
                                    "summary": "probe smoke has failed for two periods running"
                                },
                            }
                        ],
                    },
                    {"eval_time": "100s", "alertname": "RedlineProbeStale", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "probe_test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", "probe_test.yaml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = yaml.safe_load(rules.read_text())
    alerts = [r["alert"] for g in document["groups"] for r in g["rules"] if "alert" in r]
    assert alerts == [
        "ProbeSmokeErrorBudgetBurnPage", "ProbeSmokeErrorBudgetBurnTicket",
        "RedlineProbeFailing", "RedlineProbeStale",
    ]  # fmt: skip
