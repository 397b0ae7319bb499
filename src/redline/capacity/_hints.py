"""A placement as Kubernetes scheduling rules: what makes the scheduler do what was planned.

For each service a Deployment whose pod template carries

- **node affinity** (required): the node types (``node.kubernetes.io/instance-type``) and
  zones (``topology.kubernetes.io/zone``) the plan put its replicas on;
- **pod anti-affinity** (required, ``kubernetes.io/hostname``) for a spread service: one
  replica per node; preferred (weight 100) for a service that scales past its replicas
  (``max_replicas``), which required anti-affinity would cap at the node count;
- a **topology spread constraint** across zones (maxSkew 1; DoNotSchedule, or
  ScheduleAnyway for a service that scales) for a service spread by zone;
- **pod affinity** (preferred, ``kubernetes.io/hostname``) towards the services it shares
  nodes with and talks to, weighted by the requests between them (1 to 100);
- its **PriorityClass**, one per priority the fleet uses.

The scheduler is not bound to reproduce the exact assignment (it does not solve the packing);
these rules hold it to the plan's shape: where, how spread, and who sits with whom.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml

from ._fleet import Fleet, FleetService
from ._k8s import Workload, manifests
from ._place import Placement

__all__ = ["documents_yaml", "priority_classes", "scheduling_manifests", "scheduling_yaml"]

_ZONE = "topology.kubernetes.io/zone"
_TYPE = "node.kubernetes.io/instance-type"
_HOST = "kubernetes.io/hostname"


def _quantity_cpu(milli: int) -> str:
    return f"{milli}m"


def _quantity_memory(size: int) -> str:
    if size % 2**20 == 0:
        return f"{size // 2**20}Mi"
    return str(size)


def priority_classes(fleet: Fleet) -> list[dict[str, Any]]:
    """One ``scheduling.k8s.io/v1`` PriorityClass per priority the fleet's services use."""
    out = []
    for name in dict.fromkeys(s.priority for s in fleet.services):
        never = all(not s.preempt for s in fleet.services if s.priority == name)
        out.append({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": _class_name(name)},
            "value": fleet.priority_classes[name],
            "globalDefault": False,
            "preemptionPolicy": "Never" if never else "PreemptLowerPriority",
            "description": f"redline fleet priority {name}",
        })  # fmt: skip
    return out


def _class_name(priority: str) -> str:
    return f"redline-{priority}".lower()


def _labels(service: FleetService) -> dict[str, str]:
    return {"app.kubernetes.io/name": service.name}


def _partners(fleet: Fleet, placement: Placement, service: FleetService) -> list[tuple[str, int]]:
    sharing: set[str] = set()
    for node in placement.nodes:
        if service.name in node.pods:
            sharing.update(n for n in node.pods if n != service.name)
    rps: dict[str, float] = defaultdict(float)
    for link in fleet.traffic:
        if link.source == service.name and link.target in sharing:
            rps[link.target] += link.rps
        elif link.target == service.name and link.source in sharing:
            rps[link.source] += link.rps
    if not rps:
        return []
    top = max(rps.values())
    return sorted(((name, max(1, round(100 * value / top))) for name, value in rps.items()),
                  key=lambda p: (-p[1], p[0]))  # fmt: skip


def _deployment(fleet: Fleet, placement: Placement, service: FleetService) -> dict[str, Any]:
    cpu_limit, memory_limit = service.cpu_limit_milli, service.memory_limit
    workload = Workload(
        name=service.name,
        image=f"{service.name}:latest",
        replicas=service.replicas,
        cpu_request=_quantity_cpu(service.cpu_milli),
        cpu_limit=None if cpu_limit is None else _quantity_cpu(cpu_limit),
        memory_request=_quantity_memory(service.memory),
        memory_limit=None if memory_limit is None else _quantity_memory(memory_limit),
    )  # fmt: skip
    deployment = next(d for d in manifests(workload) if d["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = service.namespace
    pod = deployment["spec"]["template"]["spec"]
    pod["priorityClassName"] = _class_name(service.priority)
    pod["terminationGracePeriodSeconds"] = round(service.grace_s)
    homes = [n for n in placement.nodes if service.name in n.pods]
    types = sorted({n.type.name for n in homes})
    zones = sorted({n.zone for n in homes})
    affinity: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": _TYPE, "operator": "In", "values": types},
                {"key": _ZONE, "operator": "In", "values": zones},
            ]}
        ]}}
    }  # fmt: skip
    selector = {"matchLabels": _labels(service)}
    if service.one_per_node and service.scales:  # required would cap it at the node count
        affinity["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": selector, "topologyKey": _HOST}}
        ]}  # fmt: skip
    elif service.one_per_node:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": _HOST}
        ]}  # fmt: skip
    partners = _partners(fleet, placement, service)
    if partners:
        affinity["podAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": weight, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "topologyKey": _HOST}}
            for name, weight in partners
        ]}  # fmt: skip
    pod["affinity"] = affinity
    if service.spread == "zone" and service.replicas > 1:
        pod["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": _ZONE,
            "whenUnsatisfiable": "ScheduleAnyway" if service.scales else "DoNotSchedule",
            "labelSelector": selector,
        }]  # fmt: skip
    return deployment


def scheduling_manifests(fleet: Fleet, placement: Placement) -> list[dict[str, Any]]:
    """The PriorityClasses, then a Deployment per service (see the module)."""
    return priority_classes(fleet) + [_deployment(fleet, placement, s) for s in fleet.services]


class _Plain(yaml.SafeDumper):
    """Writes a shared mapping out each time, never as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def documents_yaml(documents: list[dict[str, Any]]) -> str:
    """Manifests as one YAML stream (``---`` between them), shared parts written out."""
    return yaml.dump_all(documents, Dumper=_Plain, sort_keys=False)


def scheduling_yaml(fleet: Fleet, placement: Placement) -> str:
    """The same as one YAML stream."""
    return documents_yaml(scheduling_manifests(fleet, placement))
