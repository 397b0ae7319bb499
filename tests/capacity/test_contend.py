"""QoS classes, quotas and the spike: preemption takes from lower priorities only."""

from __future__ import annotations

import kubernetes_validate
import numpy as np
import pytest

from redline.capacity import (
    DemandTrace,
    FleetService,
    fleet_from_dict,
    limit_ranges,
    place,
    priority_classes,
    qos_class,
    quota_check,
    resource_quotas,
    simulate_spike,
)

FLEET = {
    "services": [
        {"name": "checkout", "cpu": 1, "memory": "1Gi", "cpu_limit": 1, "memory_limit": "1Gi",
         "replicas": 3, "max_replicas": 12, "priority": "high", "rps": 240,
         "capacity_rps": 100, "slo": "p99 < 200ms", "startup_s": 10},
        {"name": "search", "cpu": 0.5, "memory": "512Mi", "replicas": 2, "priority": "medium",
         "rps": 100, "capacity_rps": 100, "slo": "p99 < 300ms"},
        {"name": "batch", "cpu": 1, "memory": "2Gi", "replicas": 8, "priority": "low",
         "spread": "none", "grace_s": 20},
    ],
    "node_types": [{"name": "std-4", "cpu": 4, "memory": "16Gi", "price_per_hour": 0.19,
                    "zones": ["a", "b"]}],
}  # fmt: skip


def _spike() -> DemandTrace:
    """Steady, a ramp to three times over five minutes, held, and back."""
    times = np.arange(0, 900, 15.0)
    return DemandTrace(times, np.interp(times, [0, 120, 420, 600, 900], [1, 1, 3, 3, 1]), 15.0)


@pytest.fixture(scope="module")
def placed():  # type: ignore[no-untyped-def]
    fleet = fleet_from_dict(FLEET)
    return fleet, place(fleet, time_limit_s=2.0).placement


def test_the_spike_preempts_only_lower_priority_and_the_top_priority_keeps_its_slo(placed):
    fleet, placement = placed
    result = simulate_spike(fleet, placement.nodes, _spike())
    assert result.preemptions, "the spike needs more than the nodes hold: someone must yield"
    for eviction in result.preemptions:
        assert eviction["victim_priority"] < eviction["preemptor_priority"]
        assert eviction["victim"] == "batch"
    assert result.preempted_only_lower
    services = {s["name"]: s for s in result.services}
    assert services["checkout"]["kept_slo"] is True
    assert services["checkout"]["max_latency_ms"] < 200
    assert result.top_priority_kept_slo
    # the low-priority work waited: evicted, replaced, pending until there is room
    assert services["batch"]["preempted"] == len(result.preemptions)
    assert services["batch"]["max_wait_s"] > 0
    # a preemptor starts only when its victims' grace period is over
    assert services["checkout"]["max_wait_s"] >= fleet.service("batch").grace_s


def test_without_preemption_the_top_priority_misses_its_slo(placed):
    fleet, placement = placed
    result = simulate_spike(fleet, placement.nodes, _spike(), preemption=False)
    services = {s["name"]: s for s in result.services}
    assert result.preemptions == []
    assert services["checkout"]["kept_slo"] is False
    assert services["checkout"]["still_pending"] > 0 or services["checkout"]["pods_waited"] > 0


def test_a_class_that_may_not_preempt_waits_instead(placed):
    _fleet, placement = placed
    data = {**FLEET, "services": [dict(s) for s in FLEET["services"]]}
    data["services"][0]["preempt"] = False
    never = fleet_from_dict(data)
    result = simulate_spike(never, placement.nodes, _spike())
    assert result.preemptions == []
    assert priority_classes(never)[0]["preemptionPolicy"] == "Never"


def test_a_cluster_autoscaler_brings_the_evicted_work_back_after_the_node_startup(placed):
    fleet, placement = placed
    fixed = simulate_spike(fleet, placement.nodes, _spike())
    grown = simulate_spike(fleet, placement.nodes, _spike(), node_startup_s=90.0)
    assert fixed.nodes_added is None
    assert grown.nodes_added, "evicted batch pods pending: the autoscaler must add nodes"
    assert grown.preempted_only_lower
    assert grown.top_priority_kept_slo
    for node in grown.nodes_added:
        assert node["type"] == "std-4"
        assert node["zone"] in ("a", "b")
        # asked for at one of its scans, serving 90 s later
        assert node["asked_t"] % 10 == pytest.approx(0)
        assert node["asked_t"] > 0
        assert node["ready_t"] == pytest.approx(node["asked_t"] + 90.0)
    zones = [n["zone"] for n in grown.nodes_added]
    assert abs(zones.count("a") - zones.count("b")) <= 1 + abs(
        sum(1 for n in placement.nodes if n.zone == "a")
        - sum(1 for n in placement.nodes if n.zone == "b")
    )  # the zone with fewest of the type first
    batch = {s["name"]: s for s in grown.services}["batch"]
    kept = {s["name"]: s for s in fixed.services}["batch"]
    # each evicted pod waits for the scan and the node (and its preemptor's grace before
    # that), not until the spike is over
    assert batch["still_pending"] == 0 < kept["still_pending"]
    assert batch["max_wait_s"] <= 10 + 90 + 2  # a scan, the start-up, the ticks between
    assert batch["max_wait_s"] < kept["max_wait_s"]


def test_the_autoscaler_keeps_to_max_count_and_ignores_expendable_pods(placed):
    _fleet, placement = placed
    data = {**FLEET, "node_types": [dict(FLEET["node_types"][0])],
            "priority_classes": {"low": -100}}  # fmt: skip
    capped = {**data, "node_types": [{**data["node_types"][0],
                                      "max_count": placement.node_count + 1}]}  # fmt: skip
    result = simulate_spike(fleet_from_dict(capped), placement.nodes, _spike(),
                            node_startup_s=30.0)  # fmt: skip
    # the batch pods are below the cutoff (-10): their replacements ask for nothing
    assert result.nodes_added == []
    data["priority_classes"] = {"low": 1_000}
    capped["priority_classes"] = {"low": 1_000}
    result = simulate_spike(fleet_from_dict(capped), placement.nodes, _spike(),
                            node_startup_s=30.0)  # fmt: skip
    assert len(result.nodes_added or []) == 1  # max_count leaves room for one more
    with pytest.raises(ValueError, match="node_startup_s"):
        simulate_spike(fleet_from_dict(data), placement.nodes, _spike(), node_startup_s=-1)


@pytest.mark.parametrize(
    ("requests", "limits", "expected"),
    [
        ((1000, 2**30), (1000, 2**30), "Guaranteed"),
        ((500, 2**30), (1000, 2**30), "Burstable"),
        ((500, 2**30), (None, None), "Burstable"),
        ((500, 2**30), (500, None), "Burstable"),
        ((0, 0), (None, None), "BestEffort"),
    ],
)
def test_qos_class_follows_the_kubelets_rules(requests, limits, expected):
    service = FleetService("s", requests[0], requests[1], cpu_limit_milli=limits[0],
                           memory_limit=limits[1])  # fmt: skip
    assert qos_class(service) == expected


def test_quotas_hold_the_peak_and_a_quota_too_small_is_named(placed):
    fleet, placement = placed
    for manifest in resource_quotas(fleet) + limit_ranges(fleet) + priority_classes(fleet):
        kubernetes_validate.validate(manifest, "1.29", strict=True)
    hard = resource_quotas(fleet)[0]["spec"]["hard"]
    assert hard["requests.cpu"] == "21"  # 12 x 1 + 2 x 0.5 + 8 x 1 at peak
    assert hard["pods"] == "22"
    rows = quota_check(fleet, placement.nodes)
    assert all(r["covers"] for r in rows if r["namespace"] == "default")
    cluster = {r["resource"]: r for r in rows if r["namespace"] == "(cluster)"}
    assert cluster["requests.cpu"]["covers"] is False  # the spike cannot fit without preempting
    small = fleet_from_dict({**FLEET, "namespaces": {"default": {"quota": {"cpu": "16"}}}})
    rows = quota_check(small)
    assert [(r["resource"], r["covers"]) for r in rows] == [("requests.cpu", False)]
