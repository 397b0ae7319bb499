"""``capacity place`` and ``capacity contend`` end to end, the request-level check for real."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import yaml

from redline.cli._main import main

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "fleet"


def test_place_writes_place_json_manifests_and_the_page(tmp_path, capsys):
    out, hints, page = tmp_path / "place.json", tmp_path / "hints.yaml", tmp_path / "place.html"
    code = main(["capacity", "place", str(EXAMPLES / "fleet.yaml"), "--out", str(out),
                 "--manifests", str(hints), "--html", str(page), "--time-limit", "3"])  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    assert document["cost_per_hour"] <= document["baseline"]["cost_per_hour"]
    assert document["cross_node_rps"] <= document["traffic_blind"]["cross_node_rps"]
    printed = capsys.readouterr().out
    assert "first-fit-decreasing" in printed
    assert "documents valid" in printed
    for manifest in yaml.safe_load_all(hints.read_text()):
        kubernetes_validate.validate(manifest, "1.29", strict=True)
    html = page.read_text()
    assert html.count("<svg") == 1
    for node in document["nodes"]:
        assert node["name"] in html


def _contend_spike(tmp_path: Path, *options: str) -> tuple[int, Path, Path, Path]:
    """Place the example fleet, then run its spike through ``contend`` with ``options``.

    Returns the exit code, place.json, contend.json and the page.
    """
    placed = tmp_path / "place.json"
    assert main(["capacity", "place", str(EXAMPLES / "fleet.yaml"), "--out", str(placed),
                 "--time-limit", "2"]) == 0  # fmt: skip
    out, page = tmp_path / "contend.json", tmp_path / "contend.html"
    code = main(["capacity", "contend", str(EXAMPLES / "fleet.yaml"), "--placement",
                 str(placed), "--spike", str(EXAMPLES / "spike.csv"), *options,
                 "--out", str(out), "--html", str(page)])  # fmt: skip
    return code, placed, out, page


def test_contend_simulates_the_spike_and_measures_the_priorities(tmp_path, capsys):
    code, _, out, page = _contend_spike(tmp_path, "--measure", "--measure-seconds", "6")
    document = json.loads(out.read_text())
    spike = document["spike"]
    assert spike["preempted_only_lower"]
    assert spike["preemptions"]
    assert spike["top_priority_kept_slo"]
    assert not document["spike_without_preemption"]["top_priority_kept_slo"]
    measured = document["measured"]
    # measured on this machine: past capacity, the high-priority route keeps its p99 while
    # the low-priority one is shed
    assert measured["high_kept_slo"], measured
    assert measured["low"]["shed"] > 0
    assert measured["low"]["shed_share"] > 5 * measured["high"]["shed_share"]
    assert code == 0
    assert "measured on this machine" in page.read_text()
    assert "kept their SLO" in capsys.readouterr().out


def test_a_placement_that_does_not_match_the_fleet_is_refused(tmp_path, capsys):
    bad = tmp_path / "place.json"
    bad.write_text(json.dumps({"nodes": [{"type": "huge-64", "zone": "a", "services": []}]}))
    code = main(["capacity", "contend", str(EXAMPLES / "fleet.yaml"), "--placement", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}: nodes[0].type: expected a node of a type in the fleet file" in err
    assert "--node-startup" not in err  # a fleet's mistake is not blamed on an option


def test_contend_with_a_cluster_autoscaler_says_what_it_added(tmp_path, capsys):
    code, placed, out, page = _contend_spike(tmp_path, "--node-startup", "90s")
    assert code == 0
    document = json.loads(out.read_text())
    added = document["spike"]["nodes_added"]
    assert added, "the evicted reports pods wait for nodes: the autoscaler adds some"
    assert all(n["ready_t"] == n["asked_t"] + 90 for n in added)
    printed = capsys.readouterr().out
    assert f"the cluster autoscaler added {len(added)} node" in printed
    assert added[0]["name"] in page.read_text()
    assert main(["capacity", "contend", str(EXAMPLES / "fleet.yaml"), "--placement",
                 str(placed), "--spike", str(EXAMPLES / "spike.csv"),
                 "--node-startup", "soon"]) == 2  # fmt: skip
    assert "--node-startup:" in capsys.readouterr().err
