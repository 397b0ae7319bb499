"""Placement: published bin-packing optima, the greedy's rules, co-location, the contract."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redline.capacity import (
    PlacedNode,
    cross_node_rps,
    first_fit_decreasing,
    fleet_from_dict,
    place,
    placement_violations,
    scheduling_manifests,
)
from redline.capacity._colocate import colocate
from redline.core import PlanError

FALKENAUER = Path(__file__).parent.parent / "fixtures" / "binpacking" / "falkenauer_u120.json"


def _bins_fleet(items: list[int], capacity: int):  # type: ignore[no-untyped-def]
    """A bin-packing instance as a fleet: an item is a replica, its size millicores."""
    sizes = Counter(items)
    return fleet_from_dict({
        "services": [{"name": f"s{v}", "cpu": f"{v}m", "memory": 0, "replicas": n,
                      "spread": "none"} for v, n in sizes.items()],
        "node_types": [{"name": "bin", "cpu": f"{capacity}m", "memory": "1Gi",
                        "price_per_hour": 1}],
    })  # fmt: skip


def _textbook_ffd(items: list[int], capacity: int) -> int:
    bins: list[int] = []
    for item in sorted(items, reverse=True):
        for i, load in enumerate(bins):
            if load + item <= capacity:
                bins[i] += item
                break
        else:
            bins.append(item)
    return len(bins)


INSTANCES = json.loads(FALKENAUER.read_text())["instances"]


@pytest.mark.parametrize("instance", INSTANCES, ids=[i["name"] for i in INSTANCES])
def test_falkenauer_optimal_or_within_the_reported_gap_and_never_worse_than_ffd(instance):
    fleet = _bins_fleet(instance["items"], instance["capacity"])
    plan = place(fleet, time_limit_s=2.0)
    nodes, optimum = plan.placement.node_count, instance["optimum"]
    assert placement_violations(fleet, plan.placement.nodes) == []
    # the greedy under redline's rules is the textbook first-fit-decreasing
    assert plan.baseline.node_count == _textbook_ffd(instance["items"], instance["capacity"])
    assert nodes <= plan.baseline.node_count
    assert nodes >= optimum  # nothing beats a published optimum
    assert plan.placement.cost_bound is not None
    assert plan.placement.cost_bound <= optimum + 1e-9
    gap = plan.placement.gap
    assert gap is not None
    if nodes > optimum:  # not optimal: the gap reported covers the distance
        assert (nodes - optimum) / nodes <= gap + 1e-9
        assert plan.placement.status == "feasible"
    else:
        assert gap == pytest.approx(0.0, abs=1e-9) or plan.placement.status == "feasible"


def _twenty_services(seed: int = 7) -> dict:
    """Five groups of four services that call each other heavily, and a few light links."""
    rnd = random.Random(seed)
    services, traffic = [], []
    for g in range(5):
        names = [f"g{g}s{i}" for i in range(4)]
        services += [{"name": n, "cpu": rnd.choice([0.5, 1, 1.5]),
                      "memory": f"{rnd.choice([512, 1024, 2048])}Mi",
                      "replicas": rnd.choice([1, 2, 3])} for n in names]  # fmt: skip
        traffic += [{"from": a, "to": b, "rps": rnd.randint(200, 1000)}
                    for a in names for b in names if a < b]  # fmt: skip
    for _ in range(10):
        a, b = rnd.sample([s["name"] for s in services], 2)
        traffic.append({"from": a, "to": b, "rps": rnd.randint(5, 50)})
    return {"services": services, "traffic": traffic, "headroom": 0.1,
            "node_types": [{"name": "std-8", "cpu": 8, "memory": "32Gi",
                            "price_per_hour": 0.38, "zones": ["a", "b", "c"]}]}  # fmt: skip


def test_co_location_cuts_cross_node_traffic_at_equal_node_count():
    fleet = fleet_from_dict(_twenty_services())
    assert len(fleet.services) == 20
    plan = place(fleet, time_limit_s=6.0)
    blind, placed = plan.traffic_blind, plan.placement
    assert placement_violations(fleet, placed.nodes) == []
    assert placed.node_count == blind.node_count  # one node type: equal cost, equal count
    cut = 1 - cross_node_rps(fleet, placed.nodes) / cross_node_rps(fleet, blind.nodes)
    assert cross_node_rps(fleet, placed.nodes) < cross_node_rps(fleet, blind.nodes)
    assert cross_node_rps(fleet, placed.nodes) < cross_node_rps(fleet, plan.baseline.nodes)
    print(f"co-location cut cross-node traffic by {cut:.0%} against traffic-blind placement")


def test_cross_node_traffic_is_the_overlap_of_the_two_spreads():
    fleet = fleet_from_dict({
        "services": [{"name": "a", "cpu": 1, "memory": "1Gi", "replicas": 2, "spread": "node"},
                     {"name": "b", "cpu": 1, "memory": "1Gi", "replicas": 1}],
        "node_types": [{"name": "n", "cpu": 4, "memory": "8Gi", "price_per_hour": 1}],
        "traffic": [{"from": "a", "to": "b", "rps": 100}],
    })  # fmt: skip
    plan = place(fleet, time_limit_s=2.0)
    # a's two replicas must sit on two nodes; b's one replica beside one of them: half local
    assert plan.placement.node_count == 2
    assert cross_node_rps(fleet, plan.placement.nodes) == pytest.approx(50.0)


@st.composite
def _fleets(draw):  # type: ignore[no-untyped-def]
    zones = draw(st.sampled_from([["a"], ["a", "b"], ["a", "b", "c"]]))
    services = [
        {"name": f"s{i}", "cpu": draw(st.sampled_from([0.25, 0.5, 1, 2])),
         "memory": f"{draw(st.sampled_from([256, 1024, 4096]))}Mi",
         "replicas": draw(st.integers(1, 4)),
         "spread": draw(st.sampled_from(["zone", "node", "none"]))}
        for i in range(draw(st.integers(1, 8)))
    ]  # fmt: skip
    names = [s["name"] for s in services]
    links = draw(st.integers(0, 6))
    traffic = [{"from": draw(st.sampled_from(names)), "to": draw(st.sampled_from(names)),
                "rps": draw(st.integers(0, 500))} for _ in range(links)]  # fmt: skip
    node_types = [
        {"name": "small", "cpu": 4, "memory": "8Gi", "price_per_hour": 0.2, "zones": zones},
        {"name": "big", "cpu": 16, "memory": "64Gi", "price_per_hour": 0.75, "zones": zones},
    ]
    return {"services": services, "node_types": node_types, "traffic": traffic,
            "headroom": draw(st.sampled_from([0.0, 0.1, 0.25]))}  # fmt: skip


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fleets())
def test_every_placement_keeps_the_rules_and_costs_no_more_than_the_greedy(data):
    fleet = fleet_from_dict(data)
    greedy = first_fit_decreasing(fleet)
    assert placement_violations(fleet, greedy.nodes) == []
    plan = place(fleet, time_limit_s=0.5, workers=1)
    assert placement_violations(fleet, plan.placement.nodes) == []
    assert plan.placement.cost_per_hour <= greedy.cost_per_hour + 1e-9
    assert cross_node_rps(fleet, plan.placement.nodes) <= (
        cross_node_rps(fleet, plan.traffic_blind.nodes) + 1e-6
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fleets())
def test_the_local_search_keeps_the_nodes_and_the_rules_and_never_adds_crossing(data):
    fleet = fleet_from_dict(data)
    greedy = first_fit_decreasing(fleet).nodes
    moved = colocate(fleet, greedy, deadline_s=5.0)
    assert placement_violations(fleet, moved) == []
    assert [(n.name, n.type.name, n.zone) for n in moved] == [
        (n.name, n.type.name, n.zone) for n in greedy
    ]  # the same nodes: the same cost
    assert all(n.pods for n in moved)
    assert cross_node_rps(fleet, moved) <= cross_node_rps(fleet, greedy) + 1e-6


def test_the_local_search_swaps_replicas_onto_their_callers_nodes():
    fleet = fleet_from_dict({
        "services": [{"name": n, "cpu": 1, "memory": "1Gi", "replicas": 2, "spread": "none"}
                     for n in ("a", "b", "c", "d")],
        "node_types": [{"name": "n", "cpu": 4, "memory": "8Gi", "price_per_hour": 1}],
        "traffic": [{"from": "a", "to": "b", "rps": 100}, {"from": "c", "to": "d", "rps": 10}],
        "headroom": 0,
    })  # fmt: skip
    kind = fleet.node_types[0]
    # full nodes, each caller's replicas apart from its callee's: no move fits, swaps do
    apart = [PlacedNode("n-1", kind, "a", {"a": 2, "c": 2}),
             PlacedNode("n-2", kind, "a", {"b": 2, "d": 2})]  # fmt: skip
    assert placement_violations(fleet, apart) == []
    assert cross_node_rps(fleet, apart) == pytest.approx(110.0)
    moved = colocate(fleet, apart, deadline_s=5.0)
    assert placement_violations(fleet, moved) == []
    # the optimum: each node holds as much of a as of b, and of c as of d (a first-found
    # swap once stopped at 10 req/s: a+b together, c and d still apart)
    assert cross_node_rps(fleet, moved) == pytest.approx(0.0)


def test_a_swap_keeps_the_zone_spread_of_a_service_without_links():
    fleet = fleet_from_dict({
        "services": [{"name": "p", "cpu": 1, "memory": "1Gi", "replicas": 1, "spread": "none"},
                     {"name": "q", "cpu": 1, "memory": "1Gi", "replicas": 1, "spread": "none"},
                     {"name": "x", "cpu": 1, "memory": "1Gi", "replicas": 2},
                     {"name": "z", "cpu": 1, "memory": "1Gi", "replicas": 2, "spread": "none"}],
        "node_types": [{"name": "n", "cpu": 2, "memory": "8Gi", "price_per_hour": 1,
                        "zones": ["a", "b"]}],
        "traffic": [{"from": "p", "to": "q", "rps": 100}],
        "headroom": 0,
    })  # fmt: skip
    kind = fleet.node_types[0]
    nodes = [PlacedNode("n-a-1", kind, "a", {"p": 1, "x": 1}),
             PlacedNode("n-b-1", kind, "b", {"q": 1, "z": 1}),
             PlacedNode("n-b-2", kind, "b", {"x": 1, "z": 1})]  # fmt: skip
    assert placement_violations(fleet, nodes) == []
    moved = colocate(fleet, nodes, deadline_s=5.0)
    # q onto p's node for x's place would leave x's two replicas in zone b (a search that
    # checked the spread only of services with links did that); p onto q's node does not
    assert placement_violations(fleet, moved) == []
    assert cross_node_rps(fleet, moved) == pytest.approx(0.0)


def test_place_json_has_the_contract_keys_and_the_scheduling_rules_validate():
    fleet = fleet_from_dict(_twenty_services(3))
    plan = place(fleet, time_limit_s=3.0)
    document = plan.to_dict()
    for key in ("node_count", "nodes", "cost_per_hour", "cross_node_rps", "gap", "baseline"):
        assert key in document
    assert document["node_count"] == len(document["nodes"])
    for node in document["nodes"]:
        assert {"type", "zone", "services"} <= set(node)
    assert sorted(n for node in document["nodes"] for n in node["services"]) == sorted(
        s.name for s in fleet.services for _ in range(s.replicas)
    )
    for key in ("node_count", "cost_per_hour", "cross_node_rps"):
        assert key in document["baseline"]
    documents = scheduling_manifests(fleet, plan.placement)
    for manifest in documents:
        kubernetes_validate.validate(manifest, "1.29", strict=True)
    spread = next(d for d in documents if d["kind"] == "Deployment"
                  and d["spec"]["replicas"] > 1)  # fmt: skip
    pod = spread["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["topologySpreadConstraints"][0]["maxSkew"] == 1
    placed_types = {n.type.name for n in plan.placement.nodes}
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert set(terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]) <= placed_types
    assert any("podAffinity" in d["spec"]["template"]["spec"]["affinity"]
               for d in documents if d["kind"] == "Deployment")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        (lambda d: d["services"][1].update(memory="lots"), "$.services[1].memory", "quantity"),
        (lambda d: d["services"][0].update(priority="urgent"), "$.services[0].priority",
         "unknown priority"),
        (lambda d: d["traffic"].append({"from": "g0s0", "to": "nowhere", "rps": 1}),
         "$.traffic[40].to", "no service named 'nowhere'"),
        (lambda d: d["services"][2].update(cpu=64), "$.services[2]", "fits on no node type"),
        (lambda d: d.update(node_types=[]), "$.node_types", "at least one node type"),
        (lambda d: d["services"][3].update(replicas=0), "$.services[3].replicas", "at least 1"),
    ],
)  # fmt: skip
def test_a_bad_fleet_file_names_the_file_and_the_path(tmp_path, change, path, expected):
    import yaml

    data = _twenty_services()
    change(data)
    file = tmp_path / "fleet.yaml"
    file.write_text(yaml.safe_dump(data))
    from redline.capacity import load_fleet

    with pytest.raises(PlanError) as raised:
        load_fleet(file)
    assert str(raised.value).startswith(f"{file}: {path}: ")
    assert expected in str(raised.value)


def test_services_take_replicas_and_requests_from_size_and_rightsize_outputs(tmp_path):
    import yaml

    from redline.capacity import ReplicaModel, Rightsize, load_fleet, size_fleet

    model = ReplicaModel(redline_rps=120.0, low_rps=110.0, high_rps=130.0,
                         saturation_rps=150.0, service_s=0.02, workers=4)  # fmt: skip
    size = size_fleet(model, 1000.0, slo_p99_ms=250.0, zones=3)
    right = Rightsize(cpu_request_milli=350, cpu_limit_milli=700,
                      memory_request_bytes=300 * 2**20, memory_limit_bytes=400 * 2**20,
                      samples=60, cpu_used_p50_milli=200, cpu_used_max_milli=330,
                      memory_max_bytes=280 * 2**20, oom_kills=0)  # fmt: skip
    (tmp_path / "size.json").write_text(json.dumps(size.to_dict()))
    (tmp_path / "rightsize.json").write_text(json.dumps(right.to_dict()))
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump({
        "services": [{"name": "shop", "size": "size.json", "rightsize": "rightsize.json"},
                     {"name": "pinned", "size": "size.json", "replicas": 2, "cpu": 1,
                      "memory": "1Gi"}],
        "node_types": [{"name": "n", "cpu": 8, "memory": "32Gi", "price_per_hour": 0.4,
                        "zones": ["a", "b", "c"]}],
    }))  # fmt: skip
    fleet = load_fleet(tmp_path / "fleet.yaml")
    shop, pinned = fleet.services
    assert shop.replicas == size.replicas
    assert shop.capacity_rps == pytest.approx(120.0)
    assert shop.slo == "p99 < 250ms"
    assert (shop.cpu_milli, shop.cpu_limit_milli) == (350, 700)
    assert (shop.memory, shop.memory_limit) == (300 * 2**20, 400 * 2**20)
    assert (pinned.replicas, pinned.cpu_milli) == (2, 1000)  # the file's own fields win


def test_traffic_comes_from_a_traced_runs_call_trees(tmp_path):
    import yaml

    from redline.capacity import load_fleet, traffic_from_run

    def span(span_id: str, parent: str | None, service: str) -> dict:
        return {"trace_id": "t", "span_id": span_id, "parent_id": parent, "service": service,
                "name": "x", "start_ns": 0, "end_ns": 1, "error": False}  # fmt: skip

    run = {
        "summary": {"endpoints": {"checkout": {"rps": 50.0}, "browse": {"rps": 200.0}}},
        "traces": {"waterfalls": {
            "checkout": {"spans": [span("1", None, "gateway"), span("2", "1", "orders"),
                                   span("3", "2", "orders"), span("4", "2", "payments"),
                                   span("5", "2", "payments"), span("6", "1", "postgres")]},
            "browse": {"spans": [span("a", None, "gateway"), span("b", "a", "catalog")]},
        }},
    }  # fmt: skip
    links = {(x.source, x.target): x.rps for x in traffic_from_run(run)}
    assert links == {("gateway", "orders"): 50.0, ("orders", "payments"): 100.0,
                     ("gateway", "postgres"): 50.0, ("gateway", "catalog"): 200.0}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(run))
    service = {"cpu": 0.5, "memory": "512Mi"}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump({
        "services": [{"name": n, **service} for n in ("gateway", "orders", "payments", "catalog")],
        "node_types": [{"name": "n", "cpu": 4, "memory": "16Gi", "price_per_hour": 0.2}],
        "traffic": [{"from": "gateway", "to": "catalog", "rps": 10}],
        "traffic_from": "run.json",
    }))  # fmt: skip
    fleet = load_fleet(tmp_path / "fleet.yaml")
    # postgres is not in the fleet; a link the file gives wins over the traced one
    assert {(x.source, x.target): x.rps for x in fleet.traffic} == {
        ("gateway", "catalog"): 10.0,
        ("gateway", "orders"): 50.0,
        ("orders", "payments"): 100.0,
    }
    with pytest.raises(ValueError, match="--trace"):
        traffic_from_run({"summary": {}})
    # a run that kept the mean calls per request (over its sampled requests) is read from
    # those, not from its slowest request's path; an endpoint without them from its tree
    run["traces"]["calls_per_request"] = {
        "checkout": {"gateway -> orders": 1.0, "orders -> payments": 0.5},
    }
    links = {(x.source, x.target): x.rps for x in traffic_from_run(run)}
    assert links == {("gateway", "orders"): 50.0, ("orders", "payments"): 25.0,
                     ("gateway", "catalog"): 200.0}  # fmt: skip


def test_a_service_that_scales_prefers_its_spread_and_one_that_does_not_requires_it():
    data = _twenty_services(5)
    data["services"][0].update(replicas=2, max_replicas=6)
    data["services"][1].update(replicas=2)
    data["services"][1].pop("max_replicas", None)
    fleet = fleet_from_dict(data)
    plan = place(fleet, time_limit_s=2.0)
    documents = {d["metadata"]["name"]: d for d in scheduling_manifests(fleet, plan.placement)}
    scaling = documents[fleet.services[0].name]["spec"]["template"]["spec"]
    fixed = documents[fleet.services[1].name]["spec"]["template"]["spec"]
    assert (
        "preferredDuringSchedulingIgnoredDuringExecution"
        in (scaling["affinity"]["podAntiAffinity"])
    )
    assert scaling["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" in (fixed["affinity"]["podAntiAffinity"])
    )
    assert fixed["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    for document in documents.values():
        kubernetes_validate.validate(document, "1.29", strict=True)


def test_cost_slack_lets_the_traffic_step_pay_a_bounded_premium():
    data = _twenty_services(11)
    data["node_types"].append({"name": "std-4", "cpu": 4, "memory": "16Gi",
                               "price_per_hour": 0.19, "zones": ["a", "b", "c"]})  # fmt: skip
    fleet = fleet_from_dict(data)
    plan = place(fleet, time_limit_s=4.0, cost_slack=0.2)
    placed, blind = plan.placement, plan.traffic_blind
    assert placement_violations(fleet, placed.nodes) == []
    assert placed.cost_per_hour <= blind.cost_per_hour * 1.2 + 1e-9
    assert cross_node_rps(fleet, placed.nodes) <= cross_node_rps(fleet, blind.nodes)
    assert placed.gap is not None
    assert placed.cost_bound is not None
    assert placed.cost_per_hour * (1 - placed.gap) == pytest.approx(placed.cost_bound, abs=1e-3)
