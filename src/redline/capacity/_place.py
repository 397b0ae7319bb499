"""Placement: which nodes to buy, and which replicas go on which, for a fleet.

A bin packing with node types, zones and traffic, solved with OR-Tools' CP-SAT in two
steps, lexicographically:

1. **cost**: the cheapest set of nodes that holds every replica within each node's
   allocatable CPU and memory (after headroom), with replicas of a spread service on
   different nodes (pod anti-affinity) and balanced across zones (a topology spread with
   maxSkew 1: each zone holds the floor or the ceiling of replicas / zones);
2. **traffic**: at that cost (or up to ``cost_slack`` dearer), the assignment that keeps
   the most requests between services on one node. With topology-aware routing a
   caller's requests stay on its node when a replica of the callee is there, and each
   callee replica takes an equal share: the share of a link ``a -> b`` that can stay local
   is ``sum over nodes of min(a's share of replicas on the node, b's share)`` (the overlap
   of the two spreads), and the rest crosses nodes.

Around the traffic step a local search on the nodes bought (``_colocate``: move or swap
one replica at a time while that keeps more traffic local) gives the step a better start
and polishes its answer: on a large fleet the solver's traffic step finds little in the
seconds it has, and the search is what co-locates there.

Each step has a time limit and reports the solver's optimality gap. First-fit-decreasing
(the greedy every team starts with: largest replicas first, each on the first open node it
fits on, a new node of the most cost-efficient type otherwise) is computed beside it under
the same rules. The cheapest of the greedy run once with each candidate type preferred is
the solver's starting hint, so the solver's answer is never dearer than the greedy's.

The solver chooses among a pool of candidate nodes: the node types no other type beats on
every count (CPU, memory, price, zones), the ``max_types`` most cost-efficient for the
fleet's mix of CPU and memory (plus any a service needs), each in every zone it is offered,
as many of each as the greedy's cost could buy (and not many more than the fleet could
fill). The gap is the solver's, over that pool.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redline.core import PlanError, RedlineError

from ._colocate import colocate
from ._fleet import Fleet, FleetService, NodeType
from ._placed import (
    PlacedNode,
    cross_node_rps,
    local_share,
    placement_violations,
    service_zones,
    zone_bounds,
)

__all__ = [
    "FleetPlan",
    "PlacedNode",
    "Placement",
    "PlacementError",
    "cross_node_rps",
    "first_fit_decreasing",
    "place",
    "placement_from_dict",
    "placement_violations",
]

_PRICE_SCALE = 10_000  # price per hour in units of 1/10,000: integers for the solver
_TRAFFIC_SCALE = 1_000
_POLISH_SHARE = 0.1  # of the time limit, for each local search around the traffic step
_MOST_PER_ZONE = 40  # node types the fleet needs more of than this per zone rank last


class PlacementError(RedlineError):
    """No placement exists under the fleet's rules, or the solver is not installed."""


@dataclass
class Placement:
    """Nodes and their replicas, and how they were found.

    Attributes:
        method: ``cp-sat``, ``traffic-blind`` (CP-SAT's cost step alone) or
            ``first-fit-decreasing``.
        nodes: the nodes, in order of type and zone.
        status: ``optimal`` (proved), ``feasible`` (the time limit came first) or
            ``heuristic``.
        gap: the cost step's relative optimality gap (``(cost - bound) / cost``; 0 when
            proved optimal; ``None`` for the greedy).
        traffic_gap: the same for the traffic step (``None`` without traffic).
        cost_bound: the solver's lower bound on the cost per hour.
        solve_s: wall-clock seconds spent.
    """

    method: str
    nodes: list[PlacedNode]
    status: str = "heuristic"
    gap: float | None = None
    traffic_gap: float | None = None
    cost_bound: float | None = None
    solve_s: float = 0.0

    @property
    def node_count(self) -> int:
        """Nodes to buy."""
        return len(self.nodes)

    @property
    def cost_per_hour(self) -> float:
        """What the nodes cost an hour."""
        return round(sum(n.type.price_per_hour for n in self.nodes), 6)

    def summary(self, fleet: Fleet) -> dict[str, Any]:
        """The figures (``node_count``, ``cost_per_hour``, ``cross_node_rps``...)."""
        cross = cross_node_rps(fleet, self.nodes)
        total = fleet.total_rps
        used = [n.used(fleet) for n in self.nodes]
        cpu_used = sum(cpu for cpu, _ in used)
        memory_used = sum(memory for _, memory in used)
        cpu = sum(n.type.cpu_milli for n in self.nodes)
        memory = sum(n.type.memory for n in self.nodes)
        return {
            "method": self.method,
            "status": self.status,
            "node_count": self.node_count,
            "cost_per_hour": self.cost_per_hour,
            "cross_node_rps": round(cross, 3),
            "cross_node_share": round(cross / total, 6) if total else 0.0,
            "cpu_utilisation": round(cpu_used / cpu, 6) if cpu else 0.0,
            "memory_utilisation": round(memory_used / memory, 6) if memory else 0.0,
            "gap": None if self.gap is None else round(self.gap, 6),
            "traffic_gap": None if self.traffic_gap is None else round(self.traffic_gap, 6),
            "cost_bound": self.cost_bound,
            "solve_s": round(self.solve_s, 3),
        }

    def nodes_dict(self, fleet: Fleet) -> list[dict[str, Any]]:
        """Each node as plain data, with its utilisation."""
        out = []
        for node in self.nodes:
            cpu, memory = node.used(fleet)
            size = node.type.memory
            out.append({
                "name": node.name,
                "type": node.type.name,
                "zone": node.zone,
                "price_per_hour": node.type.price_per_hour,
                "services": [name for name, n in sorted(node.pods.items()) for _ in range(n)],
                "cpu": node.type.cpu_milli / 1000,
                "memory": node.type.memory,
                "cpu_requested": cpu / 1000,
                "memory_requested": memory,
                "cpu_utilisation": round(cpu / node.type.cpu_milli, 6),
                "memory_utilisation": round(memory / size, 6) if size else 0.0,
            })  # fmt: skip
        return out


@dataclass
class FleetPlan:
    """The solver's placement, the traffic-blind one at its cost, and the greedy's."""

    fleet: Fleet
    placement: Placement
    traffic_blind: Placement
    baseline: Placement
    candidates: list[str]

    def to_dict(self) -> dict[str, Any]:
        """place.json.

        The contract's keys first (``node_count``, ``nodes``, ``cost_per_hour``,
        ``cross_node_rps``, ``gap``, ``baseline``), then the rest.
        """
        fleet = self.fleet
        main = self.placement.summary(fleet)
        out: dict[str, Any] = {
            "node_count": main["node_count"],
            "nodes": self.placement.nodes_dict(fleet),
            "cost_per_hour": main["cost_per_hour"],
            "cross_node_rps": main["cross_node_rps"],
            "gap": main["gap"],
            "baseline": {**self.baseline.summary(fleet),
                         "nodes": self.baseline.nodes_dict(fleet)},
        }  # fmt: skip
        out.update({k: v for k, v in main.items() if k not in out})
        out["total_rps"] = fleet.total_rps
        out["traffic_blind"] = self.traffic_blind.summary(fleet)
        out["node_types"] = _buy_list(self.placement.nodes)
        out["candidates"] = self.candidates
        out["headroom"] = fleet.headroom
        out["services"] = [
            {"name": s.name, "cpu": s.cpu_milli / 1000, "memory": s.memory,
             "replicas": s.replicas, "priority": s.priority, "spread": s.spread}
            for s in fleet.services
        ]  # fmt: skip
        out["links"] = _link_report(fleet, self.placement.nodes)
        return out


def _buy_list(nodes: Iterable[PlacedNode]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for node in nodes:
        counts[node.type.name, node.zone] += 1
    return [{"type": t, "zone": z, "count": n} for (t, z), n in sorted(counts.items())]


def _link_report(fleet: Fleet, nodes: Sequence[PlacedNode]) -> list[dict[str, Any]]:
    out = []
    for link in sorted(fleet.traffic, key=lambda x: -x.rps):
        local = local_share(fleet, nodes, link.source, link.target)
        out.append({
            "from": link.source, "to": link.target, "rps": link.rps,
            "cross_node_rps": round(link.rps * (1 - local), 3),
        })  # fmt: skip
    return out


def _efficiency(fleet: Fleet, node_type: NodeType) -> float:
    """Price per fleet-shaped unit: lower is better."""
    cpu = sum(s.cpu_milli * s.replicas for s in fleet.services) or 1
    memory = sum(s.memory * s.replicas for s in fleet.services) or 1
    alloc_cpu, alloc_memory = fleet.allocatable(node_type)
    units = min(alloc_cpu / cpu, alloc_memory / memory)
    return node_type.price_per_hour / units if units > 0 else math.inf


def _dominated(node_type: NodeType, other: NodeType) -> bool:
    covers = (
        other.cpu_milli >= node_type.cpu_milli
        and other.memory >= node_type.memory
        and other.price_per_hour <= node_type.price_per_hour
        and set(other.zones) >= set(node_type.zones)
        and (other.max_count is None or (node_type.max_count or math.inf) <= other.max_count)
    )
    strictly = (other.cpu_milli, other.memory, -other.price_per_hour, len(other.zones)) != (
        node_type.cpu_milli,
        node_type.memory,
        -node_type.price_per_hour,
        len(node_type.zones),
    )
    return covers and strictly


def _nodes_needed(fleet: Fleet, node_type: NodeType) -> float:
    """Nodes of one type the fleet's requests fill (a lower bound, per zone)."""
    alloc_cpu, alloc_memory = fleet.allocatable(node_type)
    fitting = [s for s in fleet.services if fleet.fits(s, node_type)]
    need = max(
        sum(s.cpu_milli * s.replicas for s in fitting) / max(alloc_cpu, 1),
        sum(s.memory * s.replicas for s in fitting) / max(alloc_memory, 1),
    )
    return need / len(node_type.zones)


def _ranked_types(fleet: Fleet) -> list[NodeType]:
    """Node types no other beats, cheapest per unit of the fleet's mix first.

    Types so small that the fleet would need more than ``_MOST_PER_ZONE`` of them in a zone
    go last.
    """
    kept = [t for t in fleet.node_types if not any(_dominated(t, o) for o in fleet.node_types)]
    return sorted(
        kept,
        key=lambda t: (
            _nodes_needed(fleet, t) > _MOST_PER_ZONE,
            _efficiency(fleet, t),
            t.price_per_hour,
            t.name,
        ),
    )


def _size(fleet: Fleet, service: FleetService, node_type: NodeType) -> float:
    alloc_cpu, alloc_memory = fleet.allocatable(node_type)
    return max(service.cpu_milli / max(alloc_cpu, 1), service.memory / max(alloc_memory, 1))


def _name_nodes(nodes: list[PlacedNode]) -> list[PlacedNode]:
    nodes.sort(key=lambda n: (n.type.name, n.zone, -sum(n.pods.values())))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for node in nodes:
        counts[node.type.name, node.zone] += 1
        node.name = f"{node.type.name}-{node.zone}-{counts[node.type.name, node.zone]}"
    return nodes


def first_fit_decreasing(fleet: Fleet, prefer: NodeType | None = None) -> Placement:
    """The greedy baseline under the same rules (see the module).

    New nodes are of the most cost-efficient type a replica fits on (``prefer``: that type
    first instead).

    Raises:
        PlacementError: the greedy cannot place a replica (a node type's ``max_count``).
    """
    started = time.perf_counter()
    ranked = _ranked_types(fleet)
    if prefer is not None:
        ranked = [prefer, *(t for t in ranked if t is not prefer)]
    best = ranked[0]
    pods = [(s, i) for s in fleet.services for i in range(s.replicas)]
    pods.sort(key=lambda p: (-_size(fleet, p[0], best), p[0].name, p[1]))
    nodes: list[PlacedNode] = []
    free: list[list[int]] = []
    bought: dict[str, int] = defaultdict(int)
    in_zone: dict[tuple[str, str], int] = defaultdict(int)
    zone_order = {z: i for i, z in enumerate(fleet.zones)}
    for service, _ in pods:
        zones = None
        if zone_bounds(fleet, service) is not None:
            allowed = service_zones(fleet, service)
            fewest = min(in_zone[service.name, z] for z in allowed)
            zones = [z for z in allowed if in_zone[service.name, z] == fewest]
        spot = None
        for index, node in enumerate(nodes):
            if zones is not None and node.zone not in zones:
                continue
            if service.one_per_node and service.name in node.pods:
                continue
            if free[index][0] >= service.cpu_milli and free[index][1] >= service.memory:
                spot = index
                break
        if spot is None:
            fitting = [
                t for t in ranked
                if fleet.fits(service, t)
                and (t.max_count is None or bought[t.name] < t.max_count)
                and (zones is None or set(zones) & set(t.zones))
            ]  # fmt: skip
            if not fitting:
                raise PlacementError(f"first-fit-decreasing cannot place {service.name}: "
                                     "every node type it fits on is bought up")  # fmt: skip
            node_type = fitting[0]
            options = [z for z in node_type.zones if zones is None or z in zones]
            zone = min(options, key=lambda z: (
                sum(1 for n in nodes if n.zone == z), zone_order.get(z, 0)))  # fmt: skip
            nodes.append(PlacedNode("", node_type, zone))
            free.append(list(fleet.allocatable(node_type)))
            bought[node_type.name] += 1
            spot = len(nodes) - 1
        node = nodes[spot]
        node.pods[service.name] = node.pods.get(service.name, 0) + 1
        free[spot][0] -= service.cpu_milli
        free[spot][1] -= service.memory
        in_zone[service.name, node.zone] += 1
    return Placement("first-fit-decreasing", _name_nodes(nodes),
                     solve_s=time.perf_counter() - started)  # fmt: skip


@dataclass
class _Bin:
    type: NodeType
    zone: str


def _pool(fleet: Fleet, greedy: Placement, max_types: int) -> list[_Bin]:
    ranked = _ranked_types(fleet)
    chosen = ranked[:max_types]
    for service in fleet.services:  # every service keeps its cheapest home
        if not any(fleet.fits(service, t) for t in chosen):
            chosen.append(min((t for t in ranked if fleet.fits(service, t)),
                              key=lambda t: t.price_per_hour))  # fmt: skip
    used = {n.type.name for n in greedy.nodes}
    chosen += [t for t in fleet.node_types if t.name in used and t not in chosen]
    greedy_count: dict[tuple[str, str], int] = defaultdict(int)
    for node in greedy.nodes:
        greedy_count[node.type.name, node.zone] += 1
    budget = greedy.cost_per_hour
    pods = sum(s.replicas for s in fleet.services)
    bins = []
    for node_type in chosen:
        fitting = [s for s in fleet.services if fleet.fits(s, node_type)]
        need = _nodes_needed(fleet, node_type)
        price = node_type.price_per_hour
        by_cost = math.floor(budget / price + 1e-9) if price > 0 else pods
        for zone in node_type.zones:
            spread = math.ceil(1.2 * need) + 1
            widest = max((s.replicas for s in fitting if s.one_per_node), default=1)
            count = min(by_cost, max(spread, -(-widest // len(node_type.zones))),
                        sum(s.replicas for s in fitting))  # fmt: skip
            if node_type.max_count is not None:
                count = min(count, node_type.max_count)
            count = max(count, greedy_count[node_type.name, zone])
            bins += [_Bin(node_type, zone) for _ in range(count)]
    return bins


def place(fleet: Fleet, *, time_limit_s: float = 10.0, max_types: int = 4,
          workers: int = 0, seed: int = 0, log: bool = False,
          cost_slack: float = 0.0) -> FleetPlan:  # fmt: skip
    """Place the fleet: the greedy, then CP-SAT's cost step, then its traffic step.

    ``time_limit_s`` is split: 60% for the cost step (all of it without traffic), up to
    10% for each local search around the traffic step, the rest for the traffic step.
    ``cost_slack``: how much dearer than the cheapest (0.05: 5%) the traffic step may go to
    keep more traffic on nodes. ``workers``: CP-SAT's search workers (0: one per core);
    ``log``: CP-SAT's search log on stderr.

    Raises:
        PlacementError: OR-Tools is not installed (``pip install redline[placement]``), or
            no placement exists under the fleet's rules.
    """
    try:
        from ortools.sat.python import cp_model
    except ImportError:  # pragma: no cover - the extra is part of the test set
        raise PlacementError(
            "capacity place needs OR-Tools: pip install 'redline[placement]'"
        ) from None
    started = time.perf_counter()
    greedy = first_fit_decreasing(fleet)
    greedy_valid = not placement_violations(fleet, greedy.nodes)
    # the hint: the cheapest of the greedy run with each candidate type preferred
    hint = greedy
    for node_type in _ranked_types(fleet)[1:max_types]:
        with contextlib.suppress(PlacementError):
            other = first_fit_decreasing(fleet, prefer=node_type)
            if other.cost_per_hour < hint.cost_per_hour and not placement_violations(
                fleet, other.nodes
            ):
                hint = other
    hint_valid = greedy_valid or hint is not greedy
    bins = _pool(fleet, hint, max_types)
    model = cp_model.CpModel()
    used = [model.new_bool_var(f"u{b}") for b in range(len(bins))]
    count: dict[tuple[int, int], Any] = {}
    ceiling: dict[tuple[int, int], int] = {}
    by_type_zone: dict[tuple[str, str], list[int]] = defaultdict(list)
    for b, spot in enumerate(bins):
        by_type_zone[spot.type.name, spot.zone].append(b)
    for s, service in enumerate(fleet.services):
        for b, spot in enumerate(bins):
            if not fleet.fits(service, spot.type):
                continue
            alloc_cpu, alloc_memory = fleet.allocatable(spot.type)
            most = 1 if service.one_per_node else min(
                service.replicas,
                alloc_cpu // service.cpu_milli if service.cpu_milli else service.replicas,
                alloc_memory // service.memory if service.memory else service.replicas,
            )  # fmt: skip
            var = model.new_int_var(0, most, f"n{s}_{b}")
            model.add(var <= most * used[b])
            count[s, b] = var
            ceiling[s, b] = most
    for s, service in enumerate(fleet.services):
        mine = [count[s, b] for b in range(len(bins)) if (s, b) in count]
        model.add(sum(mine) == service.replicas)
        bounds = zone_bounds(fleet, service)
        if bounds is not None:
            for zone in service_zones(fleet, service):
                here = [count[s, b] for b in range(len(bins))
                        if (s, b) in count and bins[b].zone == zone]  # fmt: skip
                model.add_linear_constraint(sum(here), bounds[0], bounds[1])
    for b, spot in enumerate(bins):
        alloc_cpu, alloc_memory = fleet.allocatable(spot.type)
        here = [(fleet.services[s], count[s, b]) for s in range(len(fleet.services))
                if (s, b) in count]  # fmt: skip
        model.add(sum(s.cpu_milli * v for s, v in here) <= alloc_cpu * used[b])
        model.add(sum(s.memory * v for s, v in here) <= alloc_memory * used[b])
        model.add(sum(v for _, v in here) >= used[b])  # a bought node holds something
    for members in by_type_zone.values():  # the nodes of one type in one zone are alike
        for first, second in itertools.pairwise(members):
            model.add(used[first] >= used[second])
    for node_type in fleet.node_types:
        if node_type.max_count is not None:
            mine = [used[b] for b, spot in enumerate(bins) if spot.type is node_type]
            if mine:
                model.add(sum(mine) <= node_type.max_count)
    # the nodes bought hold every request between them: implied, but with several node
    # types it hands the solver's relaxation its bound at once (with one, it only makes
    # presolve's symmetry breaking lose the hint)
    if len(by_type_zone) > 1:
        alloc = [fleet.allocatable(spot.type) for spot in bins]
        for r, total in enumerate(
            (
                sum(s.cpu_milli * s.replicas for s in fleet.services),
                sum(s.memory * s.replicas for s in fleet.services),
            )
        ):
            model.add(sum(a[r] * u for a, u in zip(alloc, used, strict=True)) >= total)  # fmt: skip
    prices = [round(spot.type.price_per_hour * _PRICE_SCALE) for spot in bins]
    cost = sum(p * u for p, u in zip(prices, used, strict=True))
    model.minimize(cost)
    if hint_valid:
        _hint(model, bins, fleet, hint, count, used)
    solver = cp_model.CpSolver()
    traffic = [link for link in fleet.traffic if link.rps > 0 and link.source != link.target]
    budget = time_limit_s * (0.6 if traffic else 1.0)
    solver.parameters.max_time_in_seconds = budget
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    solver.parameters.log_search_progress = log
    status = solver.status_name(solver.solve(model))
    found = status in ("OPTIMAL", "FEASIBLE")
    if status == "INFEASIBLE" or not (found or hint_valid):
        raise PlacementError(f"no placement found within {budget:.0f}s: "
                             f"{status.lower()}")  # fmt: skip
    bound = solver.best_objective_bound
    if found and not (hint_valid and solver.objective_value > _scaled(hint.cost_per_hour)):
        nodes, value = _read(solver, bins, fleet, count, used), solver.objective_value
    else:  # the solver found nothing better than its hint (or lost it in presolve)
        nodes, value = [_copy(n) for n in hint.nodes], _scaled(hint.cost_per_hour)
    gap = _gap(value, bound)
    blind = Placement(
        "traffic-blind", nodes,
        status="optimal" if gap <= 1e-9 else "feasible",
        gap=gap,
        cost_bound=round(bound / _PRICE_SCALE, 6),
        solve_s=time.perf_counter() - started,
    )  # fmt: skip
    final = Placement("cp-sat", [_copy(n) for n in blind.nodes], status=blind.status,
                      gap=blind.gap, cost_bound=blind.cost_bound)  # fmt: skip
    if traffic:
        # a local search on the nodes bought hints the traffic step, and polishes its answer
        polish = time_limit_s * _POLISH_SHARE
        final.nodes = _name_nodes(colocate(fleet, final.nodes, deadline_s=polish))
        left = time_limit_s - (time.perf_counter() - started) - polish
        final = _traffic_step(model, solver, fleet, bins, (count, ceiling), used, cost, final,
                              traffic, cost_slack, max(left, 1.0))  # fmt: skip
        polished = colocate(fleet, final.nodes, deadline_s=polish)
        if cross_node_rps(fleet, polished) < cross_node_rps(fleet, final.nodes) - 1e-9:
            final.nodes = _name_nodes(polished)
    final.solve_s = time.perf_counter() - started
    names = list(dict.fromkeys(b.type.name for b in bins))
    return FleetPlan(fleet, final, blind, greedy, names)


def _scaled(price: float) -> float:
    return float(round(price * _PRICE_SCALE))


def _gap(value: float, bound: float) -> float:
    if value <= 0:
        return 0.0
    return max(0.0, (value - bound) / value)


def _copy(node: PlacedNode) -> PlacedNode:
    return PlacedNode(node.name, node.type, node.zone, dict(node.pods))


def _hint(model: Any, bins: list[_Bin], fleet: Fleet, plan: Placement,
          count: dict[tuple[int, int], Any], used: list[Any]) -> None:  # fmt: skip
    """Map a placement's nodes onto the pool's bins and hint the solver with it."""
    model.clear_hints()
    free: dict[tuple[str, str], list[int]] = defaultdict(list)
    for b, spot in enumerate(bins):
        free[spot.type.name, spot.zone].append(b)
    chosen: dict[int, PlacedNode] = {}
    for node in plan.nodes:
        chosen[free[node.type.name, node.zone].pop(0)] = node
    for b in range(len(bins)):
        held = chosen.get(b)
        model.add_hint(used[b], int(held is not None))
        for s in range(len(fleet.services)):
            if (s, b) in count:
                hinted = 0 if held is None else held.pods.get(fleet.services[s].name, 0)
                model.add_hint(count[s, b], hinted)


def _read(solver: Any, bins: list[_Bin], fleet: Fleet, count: dict[tuple[int, int], Any],
          used: list[Any]) -> list[PlacedNode]:  # fmt: skip
    nodes = []
    for b, spot in enumerate(bins):
        if not solver.boolean_value(used[b]):
            continue
        pods = {}
        for s, service in enumerate(fleet.services):
            if (s, b) in count and (n := solver.value(count[s, b])) > 0:
                pods[service.name] = int(n)
        nodes.append(PlacedNode("", spot.type, spot.zone, pods))
    return _name_nodes(nodes)


def _traffic_step(model: Any, solver: Any, fleet: Fleet, bins: list[_Bin],
                  variables: tuple[dict[tuple[int, int], Any], dict[tuple[int, int], int]],
                  used: list[Any], cost: Any,
                  start: Placement, traffic: list[Any], cost_slack: float,
                  time_limit_s: float) -> Placement:  # fmt: skip
    """From ``start``, at its cost, keep the most traffic on nodes (see the module)."""
    count, ceiling = variables
    index = {s.name: i for i, s in enumerate(fleet.services)}
    model.add(cost <= round(_scaled(start.cost_per_hour) * (1.0 + cost_slack)))
    local_terms = []
    for e, link in enumerate(traffic):
        a, b_ = index[link.source], index[link.target]
        ra, rb = fleet.services[a].replicas, fleet.services[b_].replicas
        weight = round(_TRAFFIC_SCALE * link.rps / (ra * rb))
        if weight <= 0:
            continue
        for b in range(len(bins)):
            if (a, b) not in count or (b_, b) not in count:
                continue
            top = min(ceiling[a, b] * rb, ceiling[b_, b] * ra)
            local = model.new_int_var(0, top, f"l{e}_{b}")
            model.add(local <= count[a, b] * rb)
            model.add(local <= count[b_, b] * ra)
            local_terms.append(weight * local)
    if not local_terms:
        return Placement("cp-sat", [_copy(n) for n in start.nodes], status=start.status,
                         gap=start.gap, cost_bound=start.cost_bound)  # fmt: skip
    model.maximize(sum(local_terms))
    _hint(model, bins, fleet, start, count, used)
    solver.parameters.max_time_in_seconds = time_limit_s
    if solver.status_name(solver.solve(model)) not in ("OPTIMAL", "FEASIBLE"):
        return Placement("cp-sat", [_copy(n) for n in start.nodes], status=start.status,
                         gap=start.gap, cost_bound=start.cost_bound)  # fmt: skip
    nodes = _read(solver, bins, fleet, count, used)
    value, bound = solver.objective_value, solver.best_objective_bound
    traffic_gap = max(0.0, (bound - value) / bound) if bound > 0 else 0.0
    if cross_node_rps(fleet, nodes) > cross_node_rps(fleet, start.nodes):
        nodes = [_copy(n) for n in start.nodes]
    dearer = sum(n.type.price_per_hour for n in nodes) > start.cost_per_hour + 1e-9
    bound = (start.cost_bound or 0.0) * _PRICE_SCALE
    return Placement(
        "cp-sat", nodes, status="feasible" if dearer else start.status,
        gap=_gap(_scaled(sum(n.type.price_per_hour for n in nodes)), bound) if dearer
        else start.gap,
        traffic_gap=traffic_gap, cost_bound=start.cost_bound,
    )  # fmt: skip


def placement_from_dict(fleet: Fleet, data: object, *, source: str = "<place.json>") -> Placement:
    """The placement in a place.json (``nodes``), against the fleet it was made for.

    Raises:
        PlanError: not a place.json, or it names a node type or service the fleet lacks.
    """
    nodes_data = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes_data, list):
        raise PlanError("expected place.json with a list of nodes", source=source, path="nodes")
    types = {t.name: t for t in fleet.node_types}
    names = {s.name for s in fleet.services}
    nodes = []
    for i, item in enumerate(nodes_data):
        where = f"nodes[{i}]"
        if not isinstance(item, dict) or item.get("type") not in types:
            raise PlanError(f"expected a node of a type in the fleet file ({', '.join(types)})",
                            source=source, path=f"{where}.type")  # fmt: skip
        pods: dict[str, int] = defaultdict(int)
        for name in item.get("services", []):
            if name not in names:
                raise PlanError(f"no service named {name!r} in the fleet file", source=source,
                                path=f"{where}.services")  # fmt: skip
            pods[name] += 1
        zone = str(item.get("zone", types[item["type"]].zones[0]))
        nodes.append(PlacedNode(str(item.get("name", "")), types[item["type"]], zone, dict(pods)))
    return Placement("place.json", nodes)
