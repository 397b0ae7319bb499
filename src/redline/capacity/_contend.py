"""Contention: QoS classes, quotas, and what priority and preemption do under a spike.

- **QoS class** per service, as the kubelet derives it from requests and limits:
  Guaranteed (CPU and memory limits set and equal to the requests), BestEffort (neither
  requests nor limits), Burstable otherwise.
- **ResourceQuota** and **LimitRange** per namespace that hold the fleet at its peak
  (``max_replicas``), and a check of the quotas a team already has (the fleet file's
  ``namespaces``) and of the placed nodes against that peak.
- **A spike** (``simulate_spike``): a discrete-event simulation of the placed fleet through
  a demand trace. Services with ``rps`` and ``capacity_rps`` scale like an HPA (a sync every
  15 s, replicas for the demand at the target utilisation, a scale-down stabilisation
  window); new pods are scheduled on the placed nodes by their requests, and when none has
  room, a pod whose PriorityClass may preempt evicts the fewest lowest-priority pods of one
  node (the Kubernetes scheduler's choice: the node whose highest victim priority is
  lowest, then the fewest victims). Victims keep their node for their termination grace
  period; the preemptor starts when they are gone, then serves after its start-up time. A
  victim's Deployment makes a replacement at once, which waits, pending, until there is
  room. A spread service that does not scale keeps its required anti-affinity (one
  replica per node); one that does only prefers it. Latency is modelled per replica as an
  M/M/1 queue whose service rate makes the SLO's
  percentile exactly the objective at ``capacity_rps``: the modelled percentile is within
  the SLO while each ready replica takes at most its measured capacity.
- **A cluster autoscaler** in the spike (``node_startup_s``), off unless asked for: every
  ``scan_s`` (10 s, the Cluster Autoscaler's scan interval) the pods still pending that no
  node on its way has room for get new nodes, each of the cheapest type a pod fits
  (within its ``max_count``), in the zone with the fewest of that type, packed first-fit
  with the other pending pods; a node serves ``node_startup_s`` after it was asked for.
  Pods below priority -10 do not ask for nodes (the autoscaler's expendable-pods cutoff),
  and nodes are not taken away again within the spike.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from redline.core import parse_objective

from ._demand import DemandTrace
from ._fleet import Fleet, FleetService, NodeType
from ._manifests import parse_quantity_milli
from ._place import PlacedNode

__all__ = [
    "SpikeResult",
    "limit_ranges",
    "qos_class",
    "quota_check",
    "resource_quotas",
    "simulate_spike",
]


def qos_class(service: FleetService) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort`` (one container: the service's)."""
    requests = (service.cpu_milli, service.memory)
    limits = (service.cpu_limit_milli, service.memory_limit)
    if not any(requests) and not any(v is not None for v in limits):
        return "BestEffort"
    if all(v is not None for v in limits) and limits == requests:
        return "Guaranteed"
    return "Burstable"


def _namespaces(fleet: Fleet) -> dict[str, list[FleetService]]:
    out: dict[str, list[FleetService]] = defaultdict(list)
    for service in fleet.services:
        out[service.namespace].append(service)
    return out


def _peak_needs(services: list[FleetService]) -> dict[str, int]:
    """What a namespace's pods request at peak, in milli-units (``pods``: in pods)."""
    needs = {
        "requests.cpu": sum(s.cpu_milli * s.peak_replicas for s in services),
        "requests.memory": sum(s.memory * s.peak_replicas for s in services) * 1000,
        "pods": sum(s.peak_replicas for s in services) * 1000,
    }
    if all(s.cpu_limit_milli is not None for s in services):
        needs["limits.cpu"] = sum((s.cpu_limit_milli or 0) * s.peak_replicas for s in services)
    if all(s.memory_limit is not None for s in services):
        needs["limits.memory"] = (
            sum((s.memory_limit or 0) * s.peak_replicas for s in services) * 1000
        )
    return needs


def _cpu(milli: int) -> str:
    return f"{milli}m" if milli % 1000 else str(milli // 1000)


def _memory(size: int) -> str:
    return f"{-(-size // 2**20)}Mi"


def _format(key: str, milli: int) -> str:
    if key.endswith("cpu"):
        return _cpu(milli)
    if key.endswith("memory"):
        return _memory(milli // 1000)
    return str(milli // 1000)


def resource_quotas(fleet: Fleet) -> list[dict[str, Any]]:
    """A ``v1`` ResourceQuota per namespace that holds its services at peak."""
    out = []
    for namespace, services in _namespaces(fleet).items():
        hard = {k: _format(k, v) for k, v in _peak_needs(services).items()}
        out.append({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "redline-fleet", "namespace": namespace},
            "spec": {"hard": hard},
        })  # fmt: skip
    return out


def limit_ranges(fleet: Fleet) -> list[dict[str, Any]]:
    """A ``v1`` LimitRange per namespace.

    Its defaults, for a container that sets nothing, are the median of the namespace's
    services; its bounds are what its services span.
    """
    out = []
    for namespace, services in _namespaces(fleet).items():
        cpu = [s.cpu_milli for s in services]
        memory = [s.memory for s in services]
        cpu_top = [s.cpu_limit_milli or s.cpu_milli for s in services]
        memory_top = [s.memory_limit or s.memory for s in services]
        item: dict[str, Any] = {
            "type": "Container",
            "defaultRequest": {"cpu": _cpu(round(statistics.median(cpu))),
                               "memory": _memory(round(statistics.median(memory)))},
            "min": {"cpu": _cpu(min(cpu)), "memory": _memory(min(memory))},
            "max": {"cpu": _cpu(max(cpu_top)), "memory": _memory(max(memory_top))},
        }  # fmt: skip
        limits = [s for s in services if s.cpu_limit_milli is not None and s.memory_limit]
        if limits:
            item["default"] = {
                "cpu": _cpu(round(statistics.median(s.cpu_limit_milli or 0 for s in limits))),
                "memory": _memory(round(statistics.median(s.memory_limit or 0 for s in limits))),
            }
        out.append({
            "apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "redline-fleet", "namespace": namespace},
            "spec": {"limits": [item]},
        })  # fmt: skip
    return out


_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}


def quota_check(fleet: Fleet, nodes: list[PlacedNode] | None = None) -> list[dict[str, Any]]:
    """Whether each namespace's quota covers its peak, resource by resource.

    A namespace without a quota in the fleet file is checked against the generated one (it
    covers by construction: the row says ``generated``). With ``nodes``, a ``cluster`` row
    per resource says whether the placed nodes hold every namespace's peak requests (when
    not, the spike needs preemption).
    """
    rows = []
    for namespace, services in _namespaces(fleet).items():
        needs = _peak_needs(services)
        steady = _peak_needs([_steady(s) for s in services])
        given = fleet.quotas.get(namespace)
        hard = (
            {_ALIASES.get(k, k): parse_quantity_milli(v) for k, v in given.items()}
            if given is not None else needs
        )  # fmt: skip
        for key, need in needs.items():
            if key not in hard:
                continue
            rows.append({
                "namespace": namespace, "resource": key,
                "quota": _format(key, hard[key]), "steady": _format(key, steady[key]),
                "peak": _format(key, need), "covers": hard[key] >= need,
                "source": "fleet file" if given is not None else "generated",
            })  # fmt: skip
    if nodes is not None:
        total = _peak_needs(list(fleet.services))
        capacity = {
            "requests.cpu": sum(n.type.cpu_milli for n in nodes),
            "requests.memory": sum(n.type.memory for n in nodes) * 1000,
        }
        for key, have in capacity.items():
            rows.append({
                "namespace": "(cluster)", "resource": key, "quota": _format(key, have),
                "steady": _format(key, _peak_needs([_steady(s) for s in fleet.services])[key]),
                "peak": _format(key, total[key]), "covers": have >= total[key],
                "source": "placed nodes",
            })  # fmt: skip
    return rows


def _steady(service: FleetService) -> FleetService:
    return replace(service, max_replicas=None)


@dataclass
class _Pod:
    id: int
    service: FleetService
    priority: int
    created: float
    node: int | None = None
    bound: float | None = None
    start: float | None = None
    ready: float | None = None
    terminating: bool = False
    gone: bool = False


@dataclass
class SpikeResult:
    """What the spike did (see ``simulate_spike``).

    Attributes:
        duration_s: the simulated time.
        services: per service: priority, QoS, peak demand and replicas, modelled latency
            against its SLO, pods preempted, and how long its pending pods waited.
        preemptions: each eviction: when, which node, the victim and the preemptor, their
            priorities and the grace period.
        timeline: per tick, per service: demand, ready and pending replicas, modelled
            latency (ms).
        nodes_added: with a cluster autoscaler, each node it added: when asked for and
            ready, its name, type, zone and price (``None``: no autoscaler).
    """

    duration_s: float
    services: list[dict[str, Any]]
    preemptions: list[dict[str, Any]]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    nodes_added: list[dict[str, Any]] | None = None

    @property
    def preempted_only_lower(self) -> bool:
        """Every victim had a lower priority than the pod that evicted it."""
        return all(p["victim_priority"] < p["preemptor_priority"] for p in self.preemptions)

    @property
    def top_priority_kept_slo(self) -> bool:
        """Every service of the highest priority with an SLO kept it throughout."""
        judged = [s for s in self.services if s["slo"] is not None]
        if not judged:
            return True
        top = max(s["priority_value"] for s in judged)
        return all(s["kept_slo"] for s in judged if s["priority_value"] == top)

    def to_dict(self) -> dict[str, Any]:
        """contend.json's ``spike``."""
        return {
            "duration_s": self.duration_s,
            "preempted_only_lower": self.preempted_only_lower,
            "top_priority_kept_slo": self.top_priority_kept_slo,
            "services": self.services,
            "preemptions": self.preemptions,
            "nodes_added": self.nodes_added,
            "timeline": self.timeline,
        }


_EXPENDABLE_BELOW = -10  # the Cluster Autoscaler's --expendable-pods-priority-cutoff


class _Latency:
    """The SLO percentile of one replica as an M/M/1 queue (see the module)."""

    def __init__(self, service: FleetService) -> None:
        self.ok = service.slo is not None and service.capacity_rps is not None
        if not self.ok:
            return
        objective = parse_objective(service.slo)
        self.threshold_ms = objective.threshold
        self.log_tail = math.log(1.0 / (1.0 - (objective.percentile or 99.0) / 100.0))
        self.mu = (service.capacity_rps or 0) + self.log_tail / (self.threshold_ms / 1000)

    def ms(self, demand: float, ready: int) -> float:
        if ready <= 0:
            return math.inf if demand > 0 else 0.0
        rate = demand / ready
        if rate >= self.mu:
            return math.inf
        return 1000 * self.log_tail / (self.mu - rate)


@dataclass
class _Coming:
    """A node the autoscaler asked for: its type, zone and the room its pods left."""

    type: NodeType
    zone: str
    asked: float
    room: list[int]
    pods: set[int]


class _Sim:
    def __init__(
        self, fleet: Fleet, nodes: list[PlacedNode], *, sync_s: float,
        target_utilisation: float, scale_down_s: float, preemption: bool,
        node_startup_s: float | None = None,
    ) -> None:  # fmt: skip
        self.fleet = fleet
        self.nodes = list(nodes)  # the autoscaler's nodes join this copy
        self.node_startup_s = node_startup_s
        self.coming: list[_Coming] = []
        self.added: list[dict[str, Any]] = []
        self.sync_s = sync_s
        self.target = target_utilisation
        self.scale_down_s = scale_down_s
        self.preemption = preemption
        self.capacity = [(n.type.cpu_milli, n.type.memory) for n in nodes]
        self.pods: list[_Pod] = []
        self.by_service: dict[str, list[_Pod]] = defaultdict(list)
        self.on_node: list[list[_Pod]] = [[] for _ in nodes]  # bound and not yet gone
        self.used = [[0, 0] for _ in nodes]
        self.events: list[tuple[float, int, str, int]] = []
        self.order = itertools.count()
        self.preemptions: list[dict[str, Any]] = []
        self.recommendations: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for index, node in enumerate(nodes):
            for name, count in node.pods.items():
                for _ in range(count):
                    pod = self._new(fleet.service(name), 0.0)
                    self._place(pod, index)
                    pod.bound, pod.start, pod.ready = 0.0, 0.0, 0.0

    def _new(self, service: FleetService, now: float) -> _Pod:
        pod = _Pod(len(self.pods), service, self.fleet.priority(service), now)
        self.pods.append(pod)
        self.by_service[service.name].append(pod)
        return pod

    def _place(self, pod: _Pod, node: int) -> None:
        pod.node = node
        self.on_node[node].append(pod)
        self.used[node][0] += pod.service.cpu_milli
        self.used[node][1] += pod.service.memory

    def release(self, pod: _Pod) -> None:
        """The pod is gone: its node's resources are free again."""
        pod.gone = True
        if pod.node is not None and pod in self.on_node[pod.node]:
            self.on_node[pod.node].remove(pod)
            self.used[pod.node][0] -= pod.service.cpu_milli
            self.used[pod.node][1] -= pod.service.memory

    def at(self, time_s: float, kind: str, pod: int = -1) -> None:
        heapq.heappush(self.events, (time_s, next(self.order), kind, pod))

    def live(self, service: FleetService) -> list[_Pod]:
        return [p for p in self.by_service[service.name] if not p.terminating]

    def free(self, node: int) -> tuple[int, int]:
        cpu, memory = self.capacity[node]
        return cpu - self.used[node][0], memory - self.used[node][1]

    def scale(self, now: float, demand: dict[str, float]) -> None:
        for service in self.fleet.services:
            if service.name not in demand or service.capacity_rps is None:
                continue
            want = math.ceil(demand[service.name] / (service.capacity_rps * self.target) - 1e-9)
            top = service.peak_replicas  # without max_replicas it stays where it is
            want = min(max(want, service.replicas), top)
            history = self.recommendations[service.name]
            history.append((now, want))
            history[:] = [(t, w) for t, w in history if t > now - self.scale_down_s]
            desired = max(w for _, w in history)  # the scale-down stabilisation window
            live = self.live(service)
            for _ in range(desired - len(live)):
                self._new(service, now)
            if desired < len(live):
                doomed = sorted(live, key=lambda p: (p.node is not None, p.ready or 0.0))
                for pod in doomed[: len(live) - desired]:
                    self.terminate(pod, now)

    def terminate(self, pod: _Pod, now: float) -> None:
        pod.terminating = True
        if pod.node is None:
            pod.gone = True
        else:
            self.at(now + pod.service.grace_s, "gone", pod.id)

    def schedule(self, now: float) -> None:
        pending = [p for p in self.pods if p.node is None and not p.terminating]
        pending.sort(key=lambda p: (-p.priority, p.created, p.id))
        for pod in pending:
            need = (pod.service.cpu_milli, pod.service.memory)
            fits = [n for n in self.allowed(pod)
                    if all(f >= r for f, r in zip(self.free(n), need, strict=True))]  # fmt: skip
            if fits:
                node = max(fits, key=lambda n: (self.free(n)[0], -n))
                self.bind(pod, node, now, now)
            elif self.preemption and pod.service.preempt:
                self.preempt(pod, now)

    def allowed(self, pod: _Pod) -> list[int]:
        """The nodes its required anti-affinity leaves it.

        A spread service that does not scale keeps one replica per node; one that scales
        only prefers it (see the hints).
        """
        nodes = range(len(self.nodes))
        if not pod.service.one_per_node or pod.service.scales:
            return list(nodes)
        taken = {p.node for p in self.by_service[pod.service.name] if not p.gone}
        return [n for n in nodes if n not in taken]

    def autoscale(self, now: float) -> None:
        """Ask for nodes for the pending pods no node on its way has room for."""
        if self.node_startup_s is None:
            return
        waiting = {i for spot in self.coming for i in spot.pods}
        pending = [p for p in self.pods if p.node is None and not p.terminating
                   and not p.gone and p.id not in waiting
                   and p.priority >= _EXPENDABLE_BELOW]  # fmt: skip
        pending.sort(key=lambda p: (-p.priority, p.created, p.id))
        for pod in pending:
            need = (pod.service.cpu_milli, pod.service.memory)
            apart = pod.service.one_per_node and not pod.service.scales  # see allowed()
            spot = next((c for c in self.coming
                         if c.room[0] >= need[0] and c.room[1] >= need[1]
                         and not (apart and any(self.pods[i].service is pod.service
                                                for i in c.pods))), None)  # fmt: skip
            if spot is None:
                spot = self._ask(pod.service, now)
                if spot is None:
                    continue
            spot.room[0] -= need[0]
            spot.room[1] -= need[1]
            spot.pods.add(pod.id)

    def _ask(self, service: FleetService, now: float) -> _Coming | None:
        assert self.node_startup_s is not None
        have: dict[tuple[str, str], int] = defaultdict(int)
        for node in self.nodes:
            have[node.type.name, node.zone] += 1
        for spot in self.coming:
            have[spot.type.name, spot.zone] += 1
        kinds = [
            t for t in self.fleet.node_types
            if t.cpu_milli >= service.cpu_milli and t.memory >= service.memory
            and (t.max_count is None
                 or sum(have[t.name, z] for z in t.zones) < t.max_count)
        ]  # fmt: skip
        if not kinds:
            return None
        kind = min(kinds, key=lambda t: (t.price_per_hour, t.name))
        zone = min(kind.zones, key=lambda z: (have[kind.name, z], kind.zones.index(z)))
        spot = _Coming(kind, zone, now, [kind.cpu_milli, kind.memory], set())
        self.coming.append(spot)
        self.at(now + self.node_startup_s, "node", id(spot))
        return spot

    def node_ready(self, key: int, now: float) -> None:
        """A node the autoscaler asked for joins: empty, ready for the pending pods."""
        spot = next(c for c in self.coming if id(c) == key)
        self.coming.remove(spot)
        number = sum(1 for a in self.added if a["type"] == spot.type.name) + 1
        name = f"{spot.type.name}-{spot.zone}-added-{number}"
        self.nodes.append(PlacedNode(name, spot.type, spot.zone, {}))
        self.capacity.append((spot.type.cpu_milli, spot.type.memory))
        self.on_node.append([])
        self.used.append([0, 0])
        self.added.append({
            "name": name, "type": spot.type.name, "zone": spot.zone,
            "price_per_hour": spot.type.price_per_hour,
            "asked_t": round(spot.asked, 3), "ready_t": round(now, 3),
        })  # fmt: skip

    def bind(self, pod: _Pod, node: int, now: float, start: float) -> None:
        self._place(pod, node)
        pod.bound, pod.start = now, start
        self.at(start + pod.service.startup_s, "ready", pod.id)

    def preempt(self, pod: _Pod, now: float) -> None:
        need = (pod.service.cpu_milli, pod.service.memory)
        best: tuple[tuple[int, int, int], int, list[_Pod]] | None = None
        for node in self.allowed(pod):
            cpu, memory = self.free(node)
            candidates = sorted(
                (p for p in self.on_node[node] if not p.terminating
                 and p.priority < pod.priority),
                key=lambda p: (p.priority, -(p.bound or 0.0)),
            )  # fmt: skip
            victims = []
            for victim in candidates:
                if cpu >= need[0] and memory >= need[1]:
                    break
                victims.append(victim)
                cpu += victim.service.cpu_milli
                memory += victim.service.memory
            if cpu < need[0] or memory < need[1] or not victims:
                continue
            rank = (max(v.priority for v in victims), len(victims), node)
            if best is None or rank < best[0]:
                best = (rank, node, victims)
        if best is None:
            return
        _, node, victims = best
        for victim in victims:
            self.terminate(victim, now)
            self.preemptions.append({
                "t": round(now, 3), "node": self.nodes[node].name,
                "victim": victim.service.name, "victim_pod": victim.id,
                "victim_priority": victim.priority,
                "preemptor": pod.service.name, "preemptor_pod": pod.id,
                "preemptor_priority": pod.priority, "grace_s": victim.service.grace_s,
            })  # fmt: skip
            self._new(victim.service, now)  # its Deployment replaces it: pending
        self.bind(pod, node, now, now + max(v.service.grace_s for v in victims))


def simulate_spike(
    fleet: Fleet,
    nodes: list[PlacedNode],
    trace: DemandTrace,
    *,
    tick_s: float = 1.0,
    sync_s: float = 15.0,
    target_utilisation: float = 0.8,
    scale_down_s: float = 300.0,
    preemption: bool = True,
    node_startup_s: float | None = None,
    scan_s: float = 10.0,
) -> SpikeResult:
    """Run the placed fleet through the trace (see the module).

    Each service with ``rps`` sees ``rps x trace(t) / trace(0)`` requests per second.
    ``preemption=False`` runs the same spike with every PriorityClass set to Never preempt:
    the comparison that shows what preemption buys. ``node_startup_s``: a cluster
    autoscaler adds nodes for pending pods, each serving this long after it was asked for
    (``None``: the placed nodes are all there is); it looks every ``scan_s``.
    """
    if node_startup_s is not None and node_startup_s < 0:
        raise ValueError(f"node_startup_s must be at least 0, got {node_startup_s}")
    sim = _Sim(fleet, nodes, sync_s=sync_s, target_utilisation=target_utilisation,
               scale_down_s=scale_down_s, preemption=preemption,
               node_startup_s=node_startup_s)  # fmt: skip
    rates = np.nan_to_num(trace.rates, nan=float(trace.rates[0]))
    base = float(rates[0]) or 1.0
    duration = trace.duration_s
    latency = {s.name: _Latency(s) for s in fleet.services}
    scaled = [s for s in fleet.services if s.rps is not None]

    def demand_at(t: float) -> dict[str, float]:
        factor = float(trace.at(np.array([t]))[0])
        factor = base if math.isnan(factor) else factor
        return {s.name: (s.rps or 0.0) * factor / base for s in scaled}

    t = 0.0
    while t <= duration:
        sim.at(t, "sync")
        t += sync_s
    t = 0.0
    while t <= duration:
        sim.at(t, "tick")
        t += tick_s
    t = scan_s
    while node_startup_s is not None and t <= duration:
        sim.at(t, "scan")
        t += scan_s
    timeline: list[dict[str, Any]] = []
    violations: dict[str, float] = defaultdict(float)
    worst: dict[str, float] = defaultdict(float)
    peak_demand: dict[str, float] = defaultdict(float)
    peak_ready: dict[str, int] = defaultdict(int)
    while sim.events:
        now, _, kind, pod_id = heapq.heappop(sim.events)
        if now > duration:
            break
        if kind == "sync":
            sim.scale(now, demand_at(now))
        elif kind == "ready":
            pod = sim.pods[pod_id]
            if not pod.terminating:
                pod.ready = now
        elif kind == "gone":
            sim.release(sim.pods[pod_id])
        elif kind == "node":
            sim.node_ready(pod_id, now)
        elif kind == "scan":
            sim.schedule(now)  # what fits on the nodes there are asks for none
            sim.autoscale(now)
        elif kind == "tick":
            demand = demand_at(now)
            row: dict[str, Any] = {"t": round(now, 3)}
            for service in fleet.services:
                live = sim.live(service)
                ready = sum(1 for p in live if p.ready is not None and p.node is not None)
                pending = sum(1 for p in live if p.node is None)
                entry: dict[str, Any] = {"ready": ready, "pending": pending}
                peak_ready[service.name] = max(peak_ready[service.name], ready)
                if service.name in demand:
                    entry["demand"] = round(demand[service.name], 3)
                    peak_demand[service.name] = max(peak_demand[service.name], demand[service.name])
                model = latency[service.name]
                if model.ok and service.name in demand:
                    ms = model.ms(demand[service.name], ready)
                    entry["latency_ms"] = None if math.isinf(ms) else round(ms, 3)
                    worst[service.name] = max(worst[service.name], ms)
                    if ms > model.threshold_ms:
                        violations[service.name] += tick_s
                row[service.name] = entry
            timeline.append(row)
        sim.schedule(now)
    end = min(duration, max((e[0] for e in sim.events), default=duration))
    return SpikeResult(
        duration_s=duration,
        services=[_service_summary(fleet, s, sim, latency[s.name], worst, violations,
                                   peak_demand, peak_ready, end) for s in fleet.services],
        preemptions=sim.preemptions,
        timeline=timeline,
        nodes_added=None if node_startup_s is None else sim.added,
    )  # fmt: skip


def _service_summary(fleet: Fleet, service: FleetService, sim: _Sim, model: _Latency,
                     worst: dict[str, float], violations: dict[str, float],
                     peak_demand: dict[str, float], peak_ready: dict[str, int],
                     end: float) -> dict[str, Any]:  # fmt: skip
    mine = [p for p in sim.pods if p.service is service]
    waits = [(p.start if p.start is not None else end) - p.created for p in mine]
    waits = [w for w in waits if w > 0]
    preempted = sum(1 for p in sim.preemptions if p["victim"] == service.name)
    worst_ms = worst.get(service.name)
    return {
        "name": service.name,
        "priority": service.priority,
        "priority_value": fleet.priority(service),
        "qos": qos_class(service),
        "slo": service.slo if model.ok else None,
        "peak_demand_rps": round(peak_demand[service.name], 3) if service.rps else None,
        "peak_ready": peak_ready[service.name],
        "max_latency_ms": None if worst_ms is None or math.isinf(worst_ms) else round(worst_ms, 3),
        "slo_violation_s": round(violations[service.name], 3),
        "kept_slo": violations[service.name] == 0 if model.ok else None,
        "preempted": preempted,
        "pods_waited": len(waits),
        "pending_pod_s": round(sum(waits), 3),
        "max_wait_s": round(max(waits), 3) if waits else 0.0,
        "still_pending": sum(1 for p in mine if p.node is None and not p.terminating),
    }
