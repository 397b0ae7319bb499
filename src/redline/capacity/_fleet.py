"""The fleet file: services, node types and the traffic between services.

What a team writes before it has measurements (or what ``capacity size`` and
``capacity rightsize`` fill in)::

    services:
      - {name: orders, cpu: 0.5, memory: 512Mi, replicas: 3, priority: high}
    node_types:
      - {name: std-8, cpu: 8, memory: 32Gi, price_per_hour: 0.38, zones: [a, b, c]}
    traffic:
      - {from: gateway, to: orders, rps: 1200}

CPU is held in millicores and memory in bytes, both whole numbers, so that placement can
hand them to an integer solver unchanged. Every mistake names the file and the path inside
it (``fleet.yaml: services[2].memory: expected a Kubernetes quantity ...``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from redline.core import PlanError, parse_objective

from ._manifests import _Node, parse_quantity_milli, yaml_documents

__all__ = [
    "DEFAULT_PRIORITY_CLASSES",
    "Fleet",
    "FleetService",
    "Link",
    "NodeType",
    "fleet_from_dict",
    "load_fleet",
    "traffic_from_run",
]

DEFAULT_PRIORITY_CLASSES: dict[str, int] = {
    "critical": 1_000_000,
    "high": 100_000,
    "medium": 10_000,
    "low": 1_000,
    "batch": 100,
}
"""PriorityClass values for the priority names a fleet file may use without defining."""

SPREADS = ("zone", "node", "none")


@dataclass(frozen=True)
class FleetService:
    """One service of the fleet (one Deployment).

    Attributes:
        name: the service's name (unique in the fleet).
        cpu_milli: the CPU request of one replica, millicores.
        memory: the memory request of one replica, bytes.
        replicas: replicas to place (``capacity size``).
        priority: the PriorityClass name.
        cpu_limit_milli, memory_limit: limits (``None``: none set), for the QoS class.
        max_replicas: the most replicas at peak (an HPA's maxReplicas; default
            ``replicas``): what quotas must cover.
        spread: ``zone`` (one replica per node, replicas balanced across zones: pod
            anti-affinity and a topology spread with maxSkew 1), ``node`` (one per node)
            or ``none``.
        namespace: the namespace its quota is counted in.
        rps: requests per second at the demand trace's first sample (``contend --spike``).
        capacity_rps: requests per second one replica serves within its SLO.
        slo: the latency objective (``p99 < 200ms``) the modelled latency is held to.
        startup_s: seconds from a pod's binding to its serving.
        grace_s: terminationGracePeriodSeconds: how long a preempted pod keeps its node.
        preempt: whether its pods may preempt lower-priority ones (PreemptLowerPriority).
    """

    name: str
    cpu_milli: int
    memory: int
    replicas: int = 1
    priority: str = "medium"
    cpu_limit_milli: int | None = None
    memory_limit: int | None = None
    max_replicas: int | None = None
    spread: str = "zone"
    namespace: str = "default"
    rps: float | None = None
    capacity_rps: float | None = None
    slo: str | None = None
    startup_s: float = 20.0
    grace_s: float = 30.0
    preempt: bool = True

    @property
    def peak_replicas(self) -> int:
        """Replicas at peak (``max_replicas``, else ``replicas``)."""
        return max(self.replicas, self.max_replicas or 0)

    @property
    def one_per_node(self) -> bool:
        """Whether the placed replicas must be on different nodes."""
        return self.spread != "none" and self.replicas > 1

    @property
    def scales(self) -> bool:
        """Whether it may grow past ``replicas`` (an autoscaler's ``max_replicas``).

        Its spread is then a preference, so that the replicas it adds are not held to the
        nodes there are.
        """
        return self.peak_replicas > self.replicas


@dataclass(frozen=True)
class NodeType:
    """A kind of node one can buy.

    Attributes:
        name: its name (an instance type).
        cpu_milli: allocatable CPU, millicores.
        memory: allocatable memory, bytes.
        price_per_hour: what one node costs an hour.
        zones: where it is offered.
        max_count: the most one may buy (``None``: no limit).
    """

    name: str
    cpu_milli: int
    memory: int
    price_per_hour: float
    zones: tuple[str, ...] = ("a",)
    max_count: int | None = None


@dataclass(frozen=True)
class Link:
    """Requests per second from one service to another."""

    source: str
    target: str
    rps: float


@dataclass(frozen=True)
class Fleet:
    """Services, node types, traffic, and the rules that hold across them.

    Attributes:
        headroom: the share of each node's CPU and memory left free (0.2: pods fill at
            most 80%).
        priority_classes: PriorityClass name to value.
        quotas: namespace to the ResourceQuota ``hard`` a team has (checked by
            ``contend``), quantities as written.
    """

    services: tuple[FleetService, ...]
    node_types: tuple[NodeType, ...]
    traffic: tuple[Link, ...] = ()
    headroom: float = 0.0
    priority_classes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_CLASSES))
    quotas: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = "<fleet>"

    def service(self, name: str) -> FleetService:
        """The service called ``name``.

        Raises:
            KeyError: no such service.
        """
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, FleetService]:
        return {service.name: service for service in self.services}

    def priority(self, service: FleetService) -> int:
        """The PriorityClass value of a service."""
        return self.priority_classes[service.priority]

    @property
    def zones(self) -> tuple[str, ...]:
        """Every zone some node type is offered in, in order of first mention."""
        seen: dict[str, None] = {}
        for node_type in self.node_types:
            for zone in node_type.zones:
                seen.setdefault(zone, None)
        return tuple(seen)

    @property
    def total_rps(self) -> float:
        """All the traffic between services, requests per second."""
        return sum(link.rps for link in self.traffic)

    def fits(self, service: FleetService, node_type: NodeType) -> bool:
        """Whether one replica fits on an empty node of the type."""
        cpu, memory = self.allocatable(node_type)
        return service.cpu_milli <= cpu and service.memory <= memory

    def allocatable(self, node_type: NodeType) -> tuple[int, int]:
        """CPU (millicores) and memory (bytes) pods may fill on a node, after headroom."""
        share = 1.0 - self.headroom
        return (
            math.floor(node_type.cpu_milli * share + 1e-9),
            math.floor(node_type.memory * share + 1e-9),
        )


def _quantity(node: _Node, key: str, scale: int, *, optional: bool = False) -> int | None:
    if node.data.get(key) is None:
        if optional:
            return None
        raise node.fail(f"missing {key!r}")
    milli = node.quantity(key)
    if milli < 0:
        raise node.fail(f"expected a quantity of at least 0, got {node.data[key]!r}", key)
    return math.ceil(milli / scale)


def _text(node: _Node, key: str, default: str | None = None) -> str:
    value = node.data.get(key, default)
    if value is None:
        raise node.fail(f"missing {key!r}")
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise node.fail(f"expected a name, got {value!r}", key)
    return str(value)


def _read_json(node: _Node, key: str, base: Path | None) -> dict[str, Any]:
    """A JSON document a field names (a path relative to the fleet file)."""
    value = node.data.get(key)
    if not isinstance(value, str) or not value:
        raise node.fail(f"expected a path to a JSON file, got {value!r}", key)
    path = Path(value) if base is None or Path(value).is_absolute() else base / value
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise node.fail(f"cannot read {path}: {exc.strerror}", key) from None
    except ValueError:
        raise node.fail(f"{path} is not valid JSON", key) from None
    if not isinstance(document, dict):
        raise node.fail(f"{path}: expected a JSON object", key)
    return document


def _measured(node: _Node, base: Path | None) -> _Node:
    """The service's mapping with what its ``size`` and ``rightsize`` documents give.

    Fields written in the fleet file win.
    """
    filled: dict[str, Any] = {}
    if node.data.get("size") is not None:
        size = _read_json(node, "size", base)
        if not isinstance(size.get("replicas"), int) or not isinstance(size.get("replica"), dict):
            raise node.fail("expected capacity size --out JSON (replicas, replica)", "size")
        filled["replicas"] = size["replicas"]
        filled["capacity_rps"] = size["replica"].get("redline_rps")
        if size.get("slo_p99_ms"):
            filled["slo"] = f"p99 < {size['slo_p99_ms']:g}ms"
    if node.data.get("rightsize") is not None:
        right = _read_json(node, "rightsize", base)
        requests, limits = right.get("requests"), right.get("limits")
        if not isinstance(requests, dict) or not isinstance(limits, dict):
            raise node.fail("expected capacity rightsize --out JSON (requests, limits)",
                            "rightsize")  # fmt: skip
        filled.update(cpu=requests.get("cpu"), memory=requests.get("memory"),
                      cpu_limit=limits.get("cpu"), memory_limit=limits.get("memory"))  # fmt: skip
    if not filled:
        return node
    merged = {**{k: v for k, v in filled.items() if v is not None}, **node.data}
    return _Node(merged, node.source, node.path)


def _service(node: _Node, classes: dict[str, int], base: Path | None = None) -> FleetService:
    node = _measured(node, base)
    name = _text(node, "name")
    priority = node.data.get("priority", "medium")
    if isinstance(priority, bool) or not isinstance(priority, str | int):
        raise node.fail(f"expected a priority name or value, got {priority!r}", "priority")
    if isinstance(priority, int):
        classes.setdefault(str(priority), priority)
    elif priority not in classes:
        raise node.fail(
            f"unknown priority {priority!r}; expected one of {', '.join(classes)} "
            "(or define it under priority_classes)",
            "priority",
        )
    slo = node.data.get("slo")
    if slo is not None:
        objective = parse_objective(str(slo), source=node.source, path=f"{node.path}.slo")
        if objective.metric != "percentile" or objective.percentile is None:
            raise node.fail(f"expected a latency percentile objective, got {slo!r}", "slo")
    replicas = node.integer("replicas", 1, minimum=1)
    max_replicas = node.data.get("max_replicas")
    if max_replicas is not None:
        max_replicas = node.integer("max_replicas", minimum=replicas)
    preempt = node.data.get("preempt", True)
    if not isinstance(preempt, bool):
        raise node.fail(f"expected true or false, got {preempt!r}", "preempt")
    rps = node.number("rps") if node.data.get("rps") is not None else None
    capacity = node.number("capacity_rps") if node.data.get("capacity_rps") is not None else None
    if capacity is not None and capacity <= 0:
        raise node.fail("expected a rate above 0", "capacity_rps")
    return FleetService(
        name=name,
        cpu_milli=_quantity(node, "cpu", 1) or 0,
        memory=_quantity(node, "memory", 1000) or 0,
        replicas=replicas,
        priority=str(priority),
        cpu_limit_milli=_quantity(node, "cpu_limit", 1, optional=True),
        memory_limit=_quantity(node, "memory_limit", 1000, optional=True),
        max_replicas=max_replicas,
        spread=node.choice("spread", SPREADS, "zone"),
        namespace=_text(node, "namespace", "default"),
        rps=rps,
        capacity_rps=capacity,
        slo=None if slo is None else str(slo),
        startup_s=node.number("startup_s", 20.0),
        grace_s=node.number("grace_s", 30.0),
        preempt=preempt,
    )


def _node_type(node: _Node) -> NodeType:
    zones = node.data.get("zones", ["a"])
    if not isinstance(zones, list) or not zones or not all(isinstance(z, str) for z in zones):
        raise node.fail(f"expected a list of zone names, got {zones!r}", "zones")
    price = node.number("price_per_hour")
    max_count = node.data.get("max_count")
    return NodeType(
        name=_text(node, "name"),
        cpu_milli=_quantity(node, "cpu", 1) or 0,
        memory=_quantity(node, "memory", 1000) or 0,
        price_per_hour=price,
        zones=tuple(dict.fromkeys(zones)),
        max_count=None if max_count is None else node.integer("max_count", minimum=1),
    )


def traffic_from_run(document: Mapping[str, Any]) -> list[Link]:
    """Requests per second between services, from a traced run's result.

    A run with ``--trace`` keeps, per endpoint, the mean calls per request between
    services over its sampled traced requests (``traces.calls_per_request``): each, times
    the endpoint's measured rate, is traffic from one service to another. A run document
    from before that was kept has only each endpoint's slowest call tree (its waterfall),
    read the same way: one request's path. Calls inside one service are not traffic
    between nodes.

    Raises:
        ValueError: the document has no traces (the message says so).
    """
    traces = document.get("traces") or {}
    calls = traces.get("calls_per_request") or {}
    waterfalls = traces.get("waterfalls") or {}
    if not calls and not waterfalls:
        raise ValueError("no traced call trees: run the load test with --trace")
    endpoints = (document.get("summary") or {}).get("endpoints") or {}
    rates: dict[tuple[str, str], float] = {}
    for endpoint in dict.fromkeys([*calls, *waterfalls]):
        rate = float((endpoints.get(endpoint) or {}).get("rps") or 0.0)
        for (caller, callee), per_request in _calls(endpoint, calls, waterfalls).items():
            rates[caller, callee] = rates.get((caller, callee), 0.0) + rate * per_request
    return [Link(a, b, round(r, 3)) for (a, b), r in sorted(rates.items()) if r > 0]


def _calls(
    endpoint: str, calls: Mapping[str, Any], waterfalls: Mapping[str, Any]
) -> dict[tuple[str, str], float]:
    """An endpoint's calls per request between services: the mean, else its waterfall's."""
    if endpoint in calls:
        out = {}
        for edge, per_request in calls[endpoint].items():
            caller, _, callee = str(edge).partition(" -> ")
            out[caller, callee] = float(per_request)
        return out
    spans = {s["span_id"]: s for s in waterfalls[endpoint].get("spans", [])}
    counted: dict[tuple[str, str], float] = {}
    for span in spans.values():
        parent = spans.get(span.get("parent_id") or "")
        if parent is not None and parent["service"] != span["service"]:
            key = (parent["service"], span["service"])
            counted[key] = counted.get(key, 0.0) + 1.0
    return counted


def fleet_from_dict(data: object, *, source: str = "<fleet>", base: Path | None = None) -> Fleet:
    """A fleet from parsed YAML (see the module).

    ``base`` is where relative paths in it (``size``, ``rightsize``, ``traffic_from``)
    start (default: the working directory).

    Raises:
        PlanError: a missing or malformed field, named by its path.
    """
    root = _Node(data, source, "$")
    classes = dict(DEFAULT_PRIORITY_CLASSES)
    declared = root.optional("priority_classes")
    if declared is not None:
        for key, value in declared.data.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise declared.fail(f"expected a whole number, got {value!r}", str(key))
            classes[str(key)] = value
    services = [_service(n, classes, base) for n in root.items("services")]
    if not services:
        raise root.fail("expected at least one service", "services")
    names = [s.name for s in services]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise PlanError(f"a second service named {name!r}", source=source,
                            path=f"$.services[{i}].name")  # fmt: skip
    node_types = [_node_type(n) for n in root.items("node_types")]
    if not node_types:
        raise root.fail("expected at least one node type", "node_types")
    links = []
    for link in root.items("traffic"):
        ends = []
        for key in ("from", "to"):
            end = _text(link, key)
            if end not in names:
                raise link.fail(f"no service named {end!r} in services", key)
            ends.append(end)
        links.append(Link(ends[0], ends[1], link.number("rps")))
    if root.data.get("traffic_from") is not None:
        run = _read_json(root, "traffic_from", base)
        try:
            traced = traffic_from_run(run)
        except ValueError as exc:
            raise root.fail(str(exc), "traffic_from") from None
        given = {(link.source, link.target) for link in links}
        links += [
            link for link in traced
            if link.source in names and link.target in names
            and (link.source, link.target) not in given
        ]  # fmt: skip
    headroom = root.number("headroom", 0.0)
    if headroom >= 1:
        raise root.fail(f"expected a share below 1, got {headroom!r}", "headroom")
    quotas: dict[str, dict[str, str]] = {}
    namespaces = root.optional("namespaces")
    if namespaces is not None:
        for name in namespaces.data:
            hard = namespaces.node(str(name)).node("quota")
            for key, value in hard.data.items():
                try:
                    parse_quantity_milli(value)
                except ValueError as exc:
                    raise hard.fail(str(exc), str(key)) from None
            quotas[str(name)] = {str(k): str(v) for k, v in hard.data.items()}
    fleet = Fleet(
        services=tuple(services),
        node_types=tuple(node_types),
        traffic=tuple(links),
        headroom=headroom,
        priority_classes=classes,
        quotas=quotas,
        source=source,
    )
    _check_fits(fleet, root)
    return fleet


def _check_fits(fleet: Fleet, root: _Node) -> None:
    for i, service in enumerate(fleet.services):
        fits = [t for t in fleet.node_types if fleet.fits(service, t)]
        if not fits:
            raise root.fail(
                f"a replica ({service.cpu_milli}m CPU, {service.memory / 2**30:.2f}Gi) fits on "
                f"no node type after {fleet.headroom:.0%} headroom",
                f"services[{i}]",
            )
        if service.one_per_node and service.spread == "zone":
            zones = {z for t in fits for z in t.zones}
            if len(zones) < len(fleet.zones) and service.replicas >= len(fleet.zones):
                missing = sorted(set(fleet.zones) - zones)
                raise root.fail(
                    f"spread across zones needs a node type it fits on in zone(s) {missing}",
                    f"services[{i}].spread",
                )


def load_fleet(path: str | Path) -> Fleet:
    """Read a fleet file (YAML).

    Raises:
        PlanError: the file cannot be read, is not YAML, or a field is wrong.
    """
    source = str(path)
    documents = yaml_documents(path, "fleet file")
    if len(documents) > 1:
        raise PlanError("expected one YAML document, got several", source=source)
    data = documents[0] if documents else None
    return fleet_from_dict(data, source=source, base=Path(path).parent)
