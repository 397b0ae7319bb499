"""Co-location by local search: the same nodes, replicas moved so more traffic stays local.

CP-SAT's traffic step (see ``_place``) proves little on a large fleet in the seconds it
has: with hundreds of services its link model is large and its search ends where the cost
step left it. This pass works on the nodes already bought (so the cost cannot change) and
moves one replica at a time, or swaps two, whenever that keeps more requests on one node.
It keeps every rule the solver keeps: allocatable CPU and memory after headroom, one
replica per node for a spread service, and each zone's floor-to-ceiling share of a
service's replicas.

A link ``a -> b`` keeps ``rps * sum over nodes of min(a's share, b's share)`` local (the
module ``_place`` says why), so a move of service ``s`` between nodes ``i`` and ``j``
changes only the terms of ``s``'s links at ``i`` and ``j``: each move is judged in time
proportional to the number of links ``s`` has, and the search is a first-improvement hill
climb that stops at a local optimum or its deadline, whichever comes first.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence

from ._fleet import Fleet, FleetService
from ._placed import PlacedNode, zone_bounds

__all__ = ["colocate"]

_EPSILON = 1e-9


class _State:
    """The pods on each node and what each move would change."""

    def __init__(self, fleet: Fleet, nodes: Sequence[PlacedNode]) -> None:
        self.fleet = fleet
        self.nodes = [PlacedNode(n.name, n.type, n.zone, dict(n.pods)) for n in nodes]
        self.free: list[list[int]] = []
        for node in self.nodes:
            cpu, memory = node.used(fleet)
            alloc_cpu, alloc_memory = fleet.allocatable(node.type)
            self.free.append([alloc_cpu - cpu, alloc_memory - memory])
        self.links: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for link in fleet.traffic:
            if link.rps > 0 and link.source != link.target:
                self.links[link.source].append((link.target, link.rps))
                self.links[link.target].append((link.source, link.rps))
        self.zone_count: dict[tuple[str, str], int] = defaultdict(int)
        self.where: dict[str, set[int]] = defaultdict(set)  # the nodes holding a service
        for x, node in enumerate(self.nodes):
            for name, n in node.pods.items():
                self.zone_count[name, node.zone] += n
                self.where[name].add(x)
        # every service's: a swap moves one with no links of its own too
        self.bounds = {s.name: zone_bounds(fleet, s) for s in fleet.services}

    def share(self, name: str, node: int) -> float:
        return self.nodes[node].pods.get(name, 0) / self.fleet.service(name).replicas

    def local(self, names: set[str], places: tuple[int, ...]) -> float:
        """The local requests/s of every link of ``names`` at the nodes ``places``."""
        total = 0.0
        seen: set[tuple[str, str]] = set()
        for name in names:
            for other, rps in self.links.get(name, ()):
                key = (min(name, other), max(name, other))
                if key in seen:
                    continue
                seen.add(key)
                for x in places:
                    total += rps * min(self.share(name, x), self.share(other, x))
        return total

    def _shift(self, service: FleetService, source: int, target: int) -> None:
        for node, sign in ((source, -1), (target, 1)):
            pods = self.nodes[node].pods
            pods[service.name] = pods.get(service.name, 0) + sign
            if pods[service.name]:
                self.where[service.name].add(node)
            else:
                del pods[service.name]
                self.where[service.name].discard(node)
            self.free[node][0] -= sign * service.cpu_milli
            self.free[node][1] -= sign * service.memory
            self.zone_count[service.name, self.nodes[node].zone] += sign

    def _allowed(self, service: FleetService, source: int, target: int) -> bool:
        """After the move: one replica a node for a spread service, zones still balanced."""
        if service.one_per_node and self.nodes[target].pods.get(service.name, 0) > 1:
            return False
        bounds = self.bounds.get(service.name)
        if bounds is None:
            return True
        return all(
            bounds[0] <= self.zone_count[service.name, self.nodes[x].zone] <= bounds[1]
            for x in (source, target)
        )

    def _fits(self, places: tuple[int, ...]) -> bool:
        return all(self.free[x][0] >= 0 and self.free[x][1] >= 0 for x in places)

    def trial(self, moves: list[tuple[FleetService, int, int]]) -> float:
        """How many more requests/s ``moves`` keep local (``-inf``: they break a rule)."""
        names = {service.name for service, _, _ in moves}
        places = tuple(sorted({x for _, i, j in moves for x in (i, j)}))
        before = self.local(names, places)
        self.commit(moves)
        ok = (
            self._fits(places)
            and all(self.nodes[x].pods for x in places)  # no node left empty: the same nodes
            and all(self._allowed(s, i, j) for s, i, j in moves)
        )
        gain = self.local(names, places) - before if ok else -math.inf
        for service, source, target in reversed(moves):
            self._shift(service, target, source)
        return gain

    def commit(self, moves: list[tuple[FleetService, int, int]]) -> None:
        """Make ``moves``."""
        for service, source, target in moves:
            self._shift(service, source, target)


def colocate(fleet: Fleet, nodes: Sequence[PlacedNode], *, deadline_s: float) -> list[PlacedNode]:
    """The same nodes with replicas moved or swapped so that fewer requests cross nodes.

    Stops at a local optimum or after ``deadline_s`` seconds; the nodes come back in the
    same order with the same names, each rule of the placement kept.
    """
    stop = time.perf_counter() + deadline_s
    state = _State(fleet, nodes)
    order = sorted(
        (link for link in fleet.traffic if link.rps > 0 and link.source != link.target),
        key=lambda link: -link.rps,
    )
    improved = True
    while improved and time.perf_counter() < stop:
        improved = False
        for link in order:
            for want, other in ((link.target, link.source), (link.source, link.target)):
                if time.perf_counter() >= stop:
                    return state.nodes
                if _bring(state, state.fleet.service(want), state.fleet.service(other)):
                    improved = True
    return state.nodes


def _bring(state: _State, want: FleetService, partner: FleetService) -> bool:
    """Move or swap replicas of ``want`` onto nodes where ``partner`` has the larger share.

    For each such node the best of the moves and swaps that bring one replica there from
    a node where ``want`` has the larger share is made, if it gains anything.
    """
    gained = False
    for target in sorted(state.where[partner.name]):
        if state.share(want.name, target) + _EPSILON >= state.share(partner.name, target):
            continue
        best: tuple[float, list[tuple[FleetService, int, int]]] = (_EPSILON, [])
        for source in sorted(state.where[want.name]):
            if source == target or (
                state.share(want.name, source) <= state.share(partner.name, source) + _EPSILON
            ):
                continue
            options = [[(want, source, target)]] + [
                [(want, source, target), (state.fleet.service(name), target, source)]
                for name in sorted(state.nodes[target].pods)
                if name not in (want.name, partner.name)
            ]
            for moves in options:
                gain = state.trial(moves)
                if gain > best[0]:
                    best = (gain, moves)
        if best[1]:
            state.commit(best[1])
            gained = True
    return gained
