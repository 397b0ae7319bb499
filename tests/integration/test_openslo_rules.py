"""OpenSLO files whose indicators are Prometheus queries, in `redline slo rules`.

The first case is Sloth's own OpenSLO integration case (its
test/integration/prometheus/testdata/in-openslo.yaml: SLO 99.9% over 30 days, good and
total events as PromQL with Sloth's ``{{.window}}`` placeholder) written as OpenSLO v1.
redline's rules reproduce its meaning: the same error-ratio expression over the same
windows (5m, 30m, 1h, 2h, 6h, 1d, 3d and the 30d period), the same burn rates, and
promtool agrees, recording values and firing alerts included.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline.cli._main import main

GOOD = (
    'sum(rate(http_request_duration_seconds_count{job="myservice",code!~"(5..|429)"}[{{.window}}]))'
)
TOTAL = 'sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))'


def openslo(ratio: str, target: float = 0.999) -> str:
    return f"""\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: slo1
  displayName: Integration test SLO1
spec:
  service: svc01
  description: this is SLO1.
  budgetingMethod: Occurrences
  indicator:
    metadata: {{name: slo1-sli}}
    spec:
      ratioMetric:
{ratio}
  objectives:
    - displayName: slo1
      target: {target}
"""


def source(key: str, query: str) -> str:
    return (
        f"        {key}:\n          metricSource:\n            type: Prometheus\n"
        f"            spec:\n              query: '{query}'\n"
    )


SLOTH_CASE = openslo("        counter: true\n" + source("good", GOOD) + source("total", TOTAL))


def rules_of(tmp_path: Path, text: str) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "openslo.yaml"
    path.write_text(text)
    out = tmp_path / "rules.yaml"
    assert main(["slo", "rules", str(path), "--window", "30d", "--out", str(out)]) == 0
    return out, yaml.safe_load(out.read_text())


def plain(expr: str) -> str:
    return re.sub(r"[\s()]", "", expr)


def promtool_run(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sloths_openslo_case_gives_the_same_ratios_windows_and_burn_rates(
    tmp_path: Path, promtool: str
) -> None:
    out, document = rules_of(tmp_path, SLOTH_CASE)
    assert "SUCCESS" in promtool_run(promtool, "check", "rules", str(out), cwd=tmp_path)
    (group,) = document["groups"]
    records = {r["record"]: r["expr"] for r in group["rules"] if "record" in r}
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert sorted(records) == sorted(
        [f"redline:slo_error_ratio:slo1:rate{w}" for w in windows]
        + ["redline:slo_error_budget_remaining:slo1"]
    )
    for window in windows:
        # Sloth's recording rule for the window: 1 - (good / total), the window filled in.
        sloth = f"1 - ((({GOOD})) / (({TOTAL})))".replace("{{.window}}", window)
        assert plain(records[f"redline:slo_error_ratio:slo1:rate{window}"]) == plain(sloth)
    alerts = {r["alert"]: r for r in group["rules"] if "alert" in r}
    page = alerts["Slo1ErrorBudgetBurnPage"]["expr"]
    ticket = alerts["Slo1ErrorBudgetBurnTicket"]["expr"]
    # Sloth's default thresholds for 99.9%: 14.4 and 6 (page), 3 and 1 (ticket) x 0.001.
    for rate, long, short, expr in (
        (14.4, "1h", "5m", page), (6, "6h", "30m", page),
        (3, "1d", "2h", ticket), (1, "3d", "6h", ticket),
    ):  # fmt: skip
        threshold = f"{rate * 0.001:.12g}"
        assert f"rate{long} >= {threshold}" in expr
        assert f"rate{short} >= {threshold}" in expr


def test_promtool_records_the_error_ratio_and_pages_at_a_14_4x_burn(
    tmp_path: Path, promtool: str
) -> None:
    out, document = rules_of(tmp_path, SLOTH_CASE)
    page = next(r for r in document["groups"][0]["rules"] if r.get("alert", "").endswith("Page"))

    def series(errors: int, ok: int = 10_000 - 144) -> list[dict[str, str]]:
        name = "http_request_duration_seconds_count"
        return [
            {"series": f'{name}{{job="myservice",code="200"}}', "values": f"0+{ok}x120"},
            {"series": f'{name}{{job="myservice",code="500"}}', "values": f"0+{errors}x120"},
            # 429s are not good events either (Sloth's query excludes them from good)
            {"series": f'{name}{{job="myservice",code="429"}}', "values": "0+0x120"},
        ]

    labels = {"slo": "slo1"}
    tests = {
        "rule_files": [out.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series(144),
                "promql_expr_test": [
                    {  # 144 of 10,000 a minute: 1.44% (rounded: floats are not exact)
                        "expr": "round(redline:slo_error_ratio:slo1:rate5m * 10000)",
                        "eval_time": "30m",
                        "exp_samples": [{"labels": _labels(labels), "value": 144}],
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "70m",
                        "alertname": "Slo1ErrorBudgetBurnPage",
                        "exp_alerts": [
                            {"exp_labels": page["labels"], "exp_annotations": page["annotations"]}
                        ],
                    }
                ],
            },
            {
                "interval": "1m",
                "input_series": series(50, 10_000 - 50),
                "alert_rule_test": [
                    {"eval_time": "70m", "alertname": "Slo1ErrorBudgetBurnPage", "exp_alerts": []}
                ],
            },
        ],
    }
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    assert "SUCCESS" in promtool_run(promtool, "test", "rules", test_file.name, cwd=tmp_path)


def _labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{{{inner}}}"


def test_bad_over_total_raw_ratios_and_bare_counters(tmp_path: Path, promtool: str) -> None:
    bad = 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))'
    total = "sum(rate(http_requests_total[{{.window}}]))"
    _, document = rules_of(tmp_path, openslo(source("bad", bad) + source("total", total)))
    ratio = document["groups"][0]["rules"][0]["expr"]
    assert plain(ratio) == plain(f"({bad}) / ({total})".replace("{{.window}}", "5m"))
    raw = "1 - avg_over_time(probe_success[{{.window}}])"
    text = openslo("        rawType: failure\n" + source("raw", raw))
    out, document = rules_of(tmp_path, text)
    assert plain(document["groups"][0]["rules"][0]["expr"]) == plain(
        raw.replace("{{.window}}", "5m")
    )
    # A bare counter selector (counter: true) is taken as its rate over each window.
    counters = source("good", 'http_requests_total{code="200"}') + source(
        "total", "http_requests_total"
    )
    out, document = rules_of(tmp_path, openslo(counters))
    good, total = 'http_requests_total{code="200"}', "http_requests_total"
    assert plain(document["groups"][0]["rules"][0]["expr"]) == plain(
        f"1 - ((sum(rate({good}[5m]))) / (sum(rate({total}[5m]))))"
    )
    assert "SUCCESS" in promtool_run(promtool, "check", "rules", str(out), cwd=tmp_path)


@pytest.mark.parametrize(
    ("ratio", "message"),
    [
        (
            source("good", "sum(rate(x[5m])) / 2") + source("total", TOTAL),
            "ratioMetric.good.metricSource.spec.query: expected Sloth's {{.window}}",
        ),
        (source("total", TOTAL), "needs good or bad"),
        (
            source("good", GOOD).replace("Prometheus", "Datadog") + source("total", TOTAL),
            "every source of one ratio must be Prometheus",
        ),
    ],
)
def test_bad_query_indicators_are_named_by_their_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ratio: str, message: str
) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(openslo(ratio))
    assert main(["slo", "rules", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_a_run_is_not_judged_against_a_query_indicator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(SLOTH_CASE)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "target: http://127.0.0.1:1\nrequests: [{name: home, path: /}]\n"
        "load: {rate: 1/s}\nduration: 1s\n"
    )
    assert main(["run", str(plan), "--slo", str(path), "--no-store"]) == 2
    assert "read from Prometheus queries" in capsys.readouterr().err
