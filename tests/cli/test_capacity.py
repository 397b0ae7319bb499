"""``redline capacity replay`` and ``recommend`` from the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest
import yaml

from redline.cli._main import main
from redline.core import TargetReport, WatchedThing
from redline.store import RunMeta, open_store
from synthetic import synthetic_run

HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  minReplicas: 2
  maxReplicas: 30
  metrics:
    - type: Pods
      pods: {metric: {name: requests_per_second}, target: {type: AverageValue, averageValue: "60"}}
"""

PREDICTIVE = """apiVersion: redline.dev/v1
kind: PredictiveScaling
metadata: {name: ahead}
spec: {targetUtilization: 70, minReplicas: 2, maxReplicas: 30}
"""


def trace(tmp_path: Path) -> Path:
    t = np.arange(0, 4 * 3600, 10)
    rate = 300 + 700 * (t > 3600) * (t < 7200)
    rows = ["time_s,rate"] + [f"{a},{b}" for a, b in zip(t.tolist(), rate.tolist(), strict=True)]
    path = tmp_path / "day.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_replay_writes_ticks_scores_csv_and_a_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hpa.yaml").write_text(HPA)
    (tmp_path / "ahead.yaml").write_text(PREDICTIVE)
    out, csv, page = tmp_path / "replay.json", tmp_path / "ticks.csv", tmp_path / "r.html"
    code = main([
        "capacity", "replay", str(trace(tmp_path)),
        "--policy", str(tmp_path / "hpa.yaml"), "--policy", str(tmp_path / "ahead.yaml"),
        "--capacity", "100/s", "--startup", "60s", "--price", "0.1",
        "--out", str(out), "--csv", str(csv), "--html", str(page),
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "shop" in printed
    assert "ahead" in printed
    document = json.loads(out.read_text())
    assert set(document["ticks"][0]) == {"t", "demand", "desired", "replicas", "ready"}
    assert document["scores"] == document["policies"][0]["scores"]
    assert [p["name"] for p in document["policies"]] == ["shop", "ahead"]
    scores = document["scores"]
    assert scores["cost"] == pytest.approx(scores["replica_hours"] * 0.1)
    assert set(scores["elasticity"]) >= {"under_accuracy_pct", "instability_pct", "variant"}
    # the step up at 1 h needs 17 replicas at 60 per replica; the HPA gets there
    peak = max(t["replicas"] for t in document["ticks"] if 3600 < t["t"] < 7200)
    assert peak >= 17
    lines = csv.read_text().splitlines()
    assert lines[0] == "policy,t,demand,desired,replicas,ready,violated"
    assert len(lines) == 1 + 2 * len(document["ticks"])
    html = page.read_text()
    assert html.count("<svg") == 2
    assert "http://" not in html.split("<body>")[1]  # nothing fetched from anywhere


def test_recommend_prints_the_pick_and_writes_every_candidate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hpa.yaml").write_text(HPA)
    out = tmp_path / "recommend.json"
    code = main([
        "capacity", "recommend", str(trace(tmp_path)), "--capacity", "100/s",
        "--startup", "30s", "--max-violation-minutes", "10", "--min-replicas", "2",
        "--max-replicas", "30", "--baseline", str(tmp_path / "hpa.yaml"), "--out", str(out),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "recommended:" in printed
    document = json.loads(out.read_text())
    assert document["best"]["feasible"] is True
    assert len(document["candidates"]) == 4 * 3 * 2
    assert document["baseline"]["name"] == "baseline shop"


@pytest.mark.parametrize(
    ("trace_text", "policy_text", "expected"),
    [
        ("time_s,rate\n0,1\n10,-1\n", HPA, "line 3: rate: a rate cannot be negative"),
        ("time_s,rate\n0,1\n10,1\n", HPA.replace("maxReplicas: 30", "maxReplicas: 1"),
         "spec.minReplicas: minReplicas 2 is above maxReplicas 1"),
    ],
)  # fmt: skip
def test_bad_input_is_a_usage_error_naming_where(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trace_text: str,
    policy_text: str,
    expected: str,
) -> None:
    (tmp_path / "t.csv").write_text(trace_text)
    (tmp_path / "p.yaml").write_text(policy_text)
    code = main([
        "capacity", "replay", str(tmp_path / "t.csv"), "--policy", str(tmp_path / "p.yaml"),
        "--capacity", "100/s",
    ])  # fmt: skip
    assert code == 2
    assert expected in capsys.readouterr().err


FIND = {
    "rate": 340.0, "low": 330.0, "high": 352.0, "saturation": 400.0, "outcome": "found",
    "objective": "p99 < 100ms",
    "steps": [
        {"rate": 50, "achieved": 50, "p50_ms": 10.0, "p99_ms": 45.0, "verdicts": []},
        {"rate": 450, "achieved": 400, "p50_ms": 900.0, "p99_ms": 3000.0, "verdicts": []},
    ],
}  # fmt: skip


def test_size_rightsize_and_manifests_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found, size = tmp_path / "find.json", tmp_path / "size.json"
    found.write_text(json.dumps(FIND))
    code = main([
        "capacity", "size", "--find", str(found), "--peak", "3000/s", "--spare", "1",
        "--zones", "3", "--price", "0.1", "--out", str(size),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    plan = json.loads(size.read_text())
    assert (plan["replicas_for_slo"], plan["replicas"]) == (10, 17)
    assert plan["slo_p99_ms"] == 100  # the find result's objective
    assert "17 with 1 spare over 3 zone(s)" in printed

    store = tmp_path / "runs.db"
    with open_store(str(store)) as runs:
        run = synthetic_run(1, run_id="20261205T120000Z-aaaaaa")
        samples = tuple(
            {"cpu_cores": 0.2 + (i % 10) / 20, "rss_bytes": float(300 << 20)} for i in range(90)
        )
        target = TargetReport(
            watched=(WatchedThing("serve", "process", cores=2.0),), samples={"serve": samples}
        )
        runs.save(run, RunMeta(), target=target)
        runs.save(synthetic_run(2, run_id="20261205T130000Z-bbbbbb"), RunMeta())
    right = tmp_path / "right.json"
    code = main([
        "capacity", "rightsize", "20261205T120000Z", "--store", str(store),
        "--current-cpu", "1", "--current-memory", "1Gi", "--replicas", "17",
        "--price-vcpu-hour", "0.04", "--price-gib-hour", "0.005", "--out", str(right),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    resources = json.loads(right.read_text())
    p90 = float(np.percentile([s["cpu_cores"] for s in samples], 90)) * 1000
    assert resources["requests"]["cpu"] == f"{math.ceil(p90 * 1.15)}m"
    assert resources["requests"]["memory"] == f"{math.ceil(300 * 1.15)}Mi"
    assert resources["saving_per_month"] > 0
    code = main(["capacity", "rightsize", "20261205T130000Z", "--store", str(store)])
    assert code == 2
    assert "watched no target" in capsys.readouterr().err

    (tmp_path / "hpa.yaml").write_text(HPA)
    out = tmp_path / "k8s.yaml"
    code = main([
        "capacity", "manifests", "--name", "shop", "--image", "shop:1", "--size", str(size),
        "--rightsize", str(right), "--hpa", str(tmp_path / "hpa.yaml"), "--out", str(out),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    documents = list(yaml.safe_load_all(out.read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds == [
        "PriorityClass",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]
    for document in documents:
        kubernetes_validate.validate(document, "1.29", strict=True)
    assert documents[1]["spec"]["replicas"] == 17
    assert documents[2]["spec"]["minAvailable"] == 10
    container = documents[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == resources["requests"]
    assert documents[3]["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "60000m"
