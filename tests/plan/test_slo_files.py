"""SLO sections, SLO files and OpenSLO documents, and the errors for what cannot be judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from redline.core import PlanError
from redline.plan import check_slos, load_plan, load_slos, plan_from_dict


def plan(slo: object, **extra: Any):  # type: ignore[no-untyped-def]
    data = {
        "target": "http://127.0.0.1:8080",
        "requests": [{"name": "home", "path": "/"}, {"name": "checkout", "path": "/buy"}],
        "load": {"rate": "10/s"},
        "duration": "1s",
        "slo": slo,
        **extra,
    }
    return plan_from_dict(data, source="plan.yaml")


def test_slo_section_with_scopes_abort_and_names() -> None:
    p = plan(
        [
            {"name": "checkout-latency", "endpoint": "checkout", "objective": "p99 < 250ms"},
            {"name": "availability", "objective": "error_rate < 0.1%"},
            {"objective": "rps >= 9", "abort": True, "abort_after": "30s"},
            "p(95)<100",
        ]
    )
    names = [o.name for o in p.slos]
    assert names == ["checkout-latency", "availability", "rps >= 9", "p(95)<100"]
    assert (p.slos[0].scope, p.slos[0].scope_name) == ("endpoint", "checkout")
    assert p.slos[2].abort
    assert p.slos[2].abort_after == 30.0
    assert p.to_dict()["slo"][1]["objective"] == "error_rate < 0.1%"


@pytest.mark.parametrize(
    ("slo", "where", "message"),
    [
        ([{"endpoint": "basket", "objective": "p99 < 1s"}], "slo[0]", "no endpoint 'basket'"),
        ([{"group": "g", "objective": "p99 < 1s"}], "slo[0]", "no groups"),
        (["checks >= 99%"], "slo[0]", "can never be judged"),
        ([{"scenario": "buy", "objective": "p99 < 1s"}], "slo[0]", "no scenario 'buy'"),
        ([{"objective": "p99 < 250"}], "slo[0].objective", "needs a unit"),
        ([{"objetive": "p99 < 1s"}], "slo[0].objetive", 'did you mean "objective"'),
        ([{"endpoint": "home", "scenario": "x", "objective": "p99 < 1s"}], "slo[0]", "not"),
        ([{"objective": "error_rate < 1%", "burn_rate": 0.5}], "slo[0].burn_rate", "above 1"),
        ("p99 < 1s", "slo", "expected a list"),
        ([{"scenario": "buy", "objective": "ttfb.p99 < 1s"}], "slo[0]", "not one HTTP exchange"),
        (["ttfb.p99 < 50"], "slo[0].objective", "needs a unit"),
    ],
)
def test_objectives_that_cannot_be_judged_are_rejected_before_load(
    slo: object, where: str, message: str
) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        plan(slo)
    assert str(caught.value).startswith(f"plan.yaml: {where}")


def test_slo_file_forms(tmp_path: Path) -> None:
    section = tmp_path / "slo.yaml"
    section.write_text("slo:\n  - objective: p99 < 250ms\n    endpoint: home\n")
    bare = tmp_path / "bare.yaml"
    bare.write_text("- error_rate < 1%\n- rps >= 5\n")
    assert [o.text for o in load_slos(section)] == ["p99 < 250ms"]
    assert [o.metric for o in load_slos(bare)] == ["error_rate", "rps"]
    p = plan(None)
    check_slos(p, load_slos(section))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("slo:\n  - objective: p99 < 250ms\n    endpoint: nope\n")
    with pytest.raises(PlanError, match=r"wrong\.yaml: slo\[0\]: no endpoint 'nope'"):
        check_slos(p, load_slos(wrong))
    broken = tmp_path / "broken.yaml"
    broken.write_text("slo: [p99 < 1s\n")
    with pytest.raises(PlanError, match=r"broken\.yaml: line \d+: not valid YAML"):
        load_slos(broken)


OPENSLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: shop
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: ok-requests}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource: {type: redline, spec: {metric: successful_requests, endpoint: checkout}}
        total: {metricSource: {type: redline, spec: {metric: requests, endpoint: checkout}}}
  objectives:
    - {displayName: three nines, target: 0.999}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: fast}
spec:
  service: shop
  indicator:
    metadata: {name: fast-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: redline, spec: {metric: requests_within, threshold: 250ms}}}
        total: {metricSource: {type: redline, spec: {metric: requests}}}
  objectives:
    - {target: 0.99}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: p99}
spec:
  service: shop
  indicator:
    metadata: {name: p99}
    spec:
      thresholdMetric: {metricSource: {type: redline, spec: {metric: p99}}}
  objectives:
    - {op: lte, value: 300}
"""


def test_openslo_documents_map_onto_objectives(tmp_path: Path) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(OPENSLO)
    availability, fast, p99 = load_slos(path)
    assert (availability.name, availability.metric) == ("three nines", "error_rate")
    assert availability.threshold == pytest.approx(0.001)
    assert (availability.scope, availability.scope_name) == ("endpoint", "checkout")
    assert (fast.metric, fast.target, fast.threshold) == ("good_ratio", 0.99, 250.0)
    assert (p99.name, p99.op, p99.threshold, p99.percentile) == ("p99", "<=", 300.0, 99.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("budgetingMethod: Occurrences", "budgetingMethod: Timeslices"), "only Occurrences"),
        (
            (
                "  indicator:\n    metadata: {name: ok-requests}",
                "  indicatorRef: ok\n  indicator:\n    metadata: {name: ok-requests}",
            ),
            "indicatorRef: is not supported",
        ),
        (
            (
                "type: redline, spec: {metric: successful",
                "type: prometheus, spec: {metric: successful",
            ),
            "metricSource.spec.metric: unknown key",
        ),
        (
            ("kind: SLO\nmetadata: {name: checkout", "kind: SLI\nmetadata: {name: checkout"),
            "only kind SLO",
        ),
    ],
)
def test_unsupported_openslo_fields_are_named(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(OPENSLO.replace(*change, 1))
    with pytest.raises(PlanError, match=message) as caught:
        load_slos(path)
    assert str(caught.value).startswith(f"{path}: document[0]")


def test_yaml_plan_file_carries_its_slo(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "target: http://127.0.0.1:1\nrequests: [{name: a, path: /}]\nload: {rate: 1/s}\n"
        "duration: 1s\nslo:\n  - objective: p99 < 1s\n    endpoint: a\n"
    )
    assert load_plan(path).slos[0].scope_name == "a"
