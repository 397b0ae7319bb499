"""The Grafana dashboard: valid queries over the metrics `redline run --prometheus` serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from redline.cli._main import main
from redline.observe import MetricsServer, RunMetrics
from synthetic import synthetic_run


def test_every_panel_query_is_valid_promql_over_served_metrics(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    assert main(["grafana-dashboard", "--out", str(out)]) == 0
    dashboard = json.loads(out.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(dashboard["panels"]) == 5
    # Every metric a query names is one the exporter serves.
    metrics = RunMetrics("shop")
    for interval in synthetic_run(1, intervals=2).intervals:
        metrics.on_interval(interval)
    with (
        MetricsServer(metrics, port=0) as server,
        urllib.request.urlopen(server.url, timeout=5) as response,  # loopback only
    ):
        served = set(re.findall(r"^(redline_\w+)", response.read().decode(), re.M))
    named = {n for e in exprs for n in re.findall(r"\b(redline_\w+)\{", e)}
    assert named
    assert named <= served
    # promtool parses each query (Grafana's variables given values first).
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is needed: install Debian's prometheus package (.ci/run does)")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query{n}",
                        "expr": e.replace("$__rate_interval", "1m").replace("$plan", "shop"),
                    }
                    for n, e in enumerate(exprs)
                ],
            }
        ]
    }
    checked = tmp_path / "queries.yaml"
    checked.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(checked)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
