"""A placement's nodes and the rules they keep: resources, spread, zones, traffic.

The share of a link ``a -> b`` that stays on one node is the overlap of the two services'
spreads over the nodes (``_place`` says why); the rest crosses nodes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._fleet import Fleet, FleetService, NodeType

__all__ = [
    "PlacedNode",
    "cross_node_rps",
    "local_share",
    "placement_violations",
    "service_zones",
    "zone_bounds",
]


@dataclass
class PlacedNode:
    """One node to buy and the replicas on it.

    Attributes:
        name: ``<type>-<zone>-<n>``.
        type: its node type.
        zone: its zone.
        pods: service name to the replicas of it on this node.
    """

    name: str
    type: NodeType
    zone: str
    pods: dict[str, int] = field(default_factory=dict)

    def used(self, fleet: Fleet) -> tuple[int, int]:
        """CPU (millicores) and memory (bytes) its replicas request."""
        cpu = memory = 0
        for name, count in self.pods.items():
            service = fleet.service(name)
            cpu += service.cpu_milli * count
            memory += service.memory * count
        return cpu, memory


def _shares(fleet: Fleet, nodes: Sequence[PlacedNode], link_end: str) -> list[float]:
    replicas = fleet.service(link_end).replicas
    return [node.pods.get(link_end, 0) / replicas for node in nodes]


def local_share(fleet: Fleet, nodes: Sequence[PlacedNode], source: str, target: str) -> float:
    """The share of ``source -> target``'s requests that stays on one node."""
    a, b = _shares(fleet, nodes, source), _shares(fleet, nodes, target)
    return sum(min(x, y) for x, y in zip(a, b, strict=True))


def cross_node_rps(fleet: Fleet, nodes: Sequence[PlacedNode]) -> float:
    """Requests per second between services that cross nodes (see the module)."""
    return sum(
        link.rps * (1.0 - local_share(fleet, nodes, link.source, link.target))
        for link in fleet.traffic
    )


def placement_violations(fleet: Fleet, nodes: Sequence[PlacedNode]) -> list[str]:
    """Every rule a placement breaks (empty: it is valid). For tests and for the greedy."""
    problems = []
    placed: dict[str, int] = defaultdict(int)
    per_zone: dict[tuple[str, str], int] = defaultdict(int)
    bought: dict[str, int] = defaultdict(int)
    for node in nodes:
        bought[node.type.name] += 1
        if node.zone not in node.type.zones:
            problems.append(f"{node.name}: {node.type.name} is not offered in zone {node.zone}")
        cpu, memory = node.used(fleet)
        alloc_cpu, alloc_memory = fleet.allocatable(node.type)
        if cpu > alloc_cpu or memory > alloc_memory:
            problems.append(f"{node.name}: requests {cpu}m / {memory} B exceed {alloc_cpu}m / "
                            f"{alloc_memory} B allocatable")  # fmt: skip
        for name, count in node.pods.items():
            placed[name] += count
            per_zone[name, node.zone] += count
            if count > 1 and fleet.service(name).one_per_node:
                problems.append(f"{node.name}: {count} replicas of {name} on one node")
    for node_type in fleet.node_types:
        if node_type.max_count is not None and bought[node_type.name] > node_type.max_count:
            problems.append(f"{bought[node_type.name]} nodes of {node_type.name}, at most "
                            f"{node_type.max_count} to buy")  # fmt: skip
    for service in fleet.services:
        if placed[service.name] != service.replicas:
            problems.append(f"{service.name}: {placed[service.name]} replicas placed, "
                            f"{service.replicas} wanted")  # fmt: skip
        bounds = zone_bounds(fleet, service)
        if bounds is not None:
            low, high = bounds
            for zone in service_zones(fleet, service):
                count = per_zone[service.name, zone]
                if not low <= count <= high:
                    problems.append(f"{service.name}: {count} replicas in zone {zone}, "
                                    f"{low} to {high} to spread evenly")  # fmt: skip
    return problems


def service_zones(fleet: Fleet, service: FleetService) -> list[str]:
    zones = {z for t in fleet.node_types if fleet.fits(service, t) for z in t.zones}
    return [z for z in fleet.zones if z in zones]


def zone_bounds(fleet: Fleet, service: FleetService) -> tuple[int, int] | None:
    if service.spread != "zone" or service.replicas < 2:
        return None
    zones = len(service_zones(fleet, service))
    return service.replicas // zones, -(-service.replicas // zones)
