"""Prometheus rules for SLOs, checked and unit-tested by promtool itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from redline.cli._main import main

SLO_FILE = """\
slo:
  - name: availability
    objective: error_rate < 0.1%
    prometheus:
      requests: http_requests_total
      labels: {job: shop}
  - name: checkout-latency
    objective: 99% of requests under 250ms
    prometheus:
      latency: http_request_duration_seconds
      labels: {job: shop, route: /checkout}
"""


def write_rules(tmp_path: Path, *options: str) -> Path:
    (tmp_path / "slo.yaml").write_text(SLO_FILE)
    rules = tmp_path / "rules.yaml"
    assert main(["slo", "rules", str(tmp_path / "slo.yaml"), "--out", str(rules), *options]) == 0
    return rules


def test_generated_rules_pass_promtool_check(tmp_path: Path, promtool: str) -> None:
    rules = write_rules(tmp_path)
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 22 rules found" in done.stdout
    document = yaml.safe_load(rules.read_text())
    alerts = [r for g in document["groups"] for r in g["rules"] if "alert" in r]
    assert [a["labels"]["severity"] for a in alerts] == ["page", "ticket"] * 2


def burn_series(errors_per_minute: int, requests_per_minute: int = 10_000) -> list[dict[str, str]]:
    good = requests_per_minute - errors_per_minute
    return [
        {"series": 'http_requests_total{job="shop",code="200"}', "values": f"0+{good}x120"},
        {
            "series": 'http_requests_total{job="shop",code="500"}',
            "values": f"0+{errors_per_minute}x120",
        },
    ]


def test_page_alert_fires_at_a_14_4x_burn_and_not_at_5x(tmp_path: Path, promtool: str) -> None:
    rules = write_rules(tmp_path)
    document = yaml.safe_load(rules.read_text())
    page = next(
        r
        for g in document["groups"]
        for r in g["rules"]
        if r.get("alert") == "AvailabilityErrorBudgetBurnPage"
    )
    fired = {"exp_labels": page["labels"], "exp_annotations": page["annotations"]}
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {  # 144 errors in 10,000 requests a minute: 1.44%, 14.4 x the 0.1% budget
                "interval": "1m",
                "input_series": burn_series(144),
                "alert_rule_test": [
                    {"eval_time": "70m", "alertname": page["alert"], "exp_alerts": [fired]}
                ],
            },
            {  # 5 x the budget: a ticket perhaps, never a page
                "interval": "1m",
                "input_series": burn_series(50),
                "alert_rule_test": [
                    {"eval_time": "70m", "alertname": page["alert"], "exp_alerts": []},
                    {"eval_time": "119m", "alertname": page["alert"], "exp_alerts": []},
                ],
            },
        ],
    }
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_for_other_windows_scale_the_windows(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, "--window", "7d")
    text = rules.read_text()
    assert "rate14m" in text  # 1 h scaled by 7/30
    assert "rate7d" in text
    assert ">= 0.0144" in text  # the burn rates stay those of the workbook


def test_a_burn_rate_that_can_never_fire_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slo = tmp_path / "loose.yaml"
    slo.write_text("slo:\n  - {name: loose, objective: error_rate < 10%}\n")
    assert main(["slo", "rules", str(slo)]) == 2
    err = capsys.readouterr().err
    assert "a 14.4x burn (page) can never fire" in err
    assert "1/(1 - objective) = 10" in err
    slo.write_text("slo:\n  - {name: x, objective: rps >= 100, prometheus: {color: red}}\n")
    assert main(["slo", "rules", str(slo)]) == 2
    assert "slo[0].prometheus.color: unknown key" in capsys.readouterr().err
