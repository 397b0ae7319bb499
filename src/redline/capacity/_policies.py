"""Autoscaling policies a replay can score, and how each decides.

- :class:`HpaPolicy`: a Kubernetes ``autoscaling/v2`` HorizontalPodAutoscaler, computed
  exactly as its controller does (see ``_hpa``), on the metrics a replay models.
- :class:`KedaPolicy`: a KEDA ScaledObject: its trigger's value per replica as an
  external ``AverageValue`` target of the HPA KEDA creates, activation (scaling from and
  to zero, after ``cooldownPeriod``) at the polling interval.
- :class:`StepPolicy`: step scaling as AWS Auto Scaling has it: bands of a metric
  (CPU utilisation, or load per replica as a share of its capacity), each adding or
  removing replicas, with a cooldown.
- :class:`PredictivePolicy`: scaling ahead: a seasonal forecast from the trace's own
  history (the demand one season ago, a little ahead, scaled by how today compares),
  taken ``lead_s`` (the start-up time) early, never below what the demand asks now.

Each decides at its own period from a :class:`View` of the fleet and its metrics.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypeVar

from ._hpa import (
    Hpa,
    HpaController,
    MetricSpec,
    MetricsUnavailableError,
    Pod,
    external_replicas,
    plain_metric_replicas,
    resource_replicas,
)

__all__ = [
    "HpaPolicy",
    "KedaPolicy",
    "Policy",
    "PredictivePolicy",
    "Step",
    "StepPolicy",
    "View",
]


@dataclass(slots=True)
class View:
    """What an autoscaler can see at a decision (metrics as of their last scrape).

    Attributes:
        now: seconds from the trace's start.
        replicas: the replica count asked for (pods running or starting).
        ready: pods serving.
        fresh: ready pods with a full metric window since they turned ready.
        pod_rps: requests per second served per ready pod (NaN: no metric, a gap).
        pod_cpu_milli: CPU per ready pod, millicores (NaN: no metric).
        cpu_request_milli: each pod's CPU request.
        demand_rps: the offered rate over the metric window (NaN: no metric).
        queue: requests waiting (the backlog, for queue-depth scaling).
    """

    now: float = 0.0
    replicas: int = 0
    ready: int = 0
    fresh: int = 0
    pod_rps: float = math.nan
    pod_cpu_milli: float = math.nan
    cpu_request_milli: int = 1000
    demand_rps: float = math.nan
    queue: float = 0.0


class Policy(Protocol):
    """An autoscaler: every ``period_s`` it is shown the fleet and answers a replica count."""

    name: str
    period_s: float

    def decide(self, view: View) -> int:
        """The replica count wanted now."""
        ...

    def fresh_copy(self) -> Policy:
        """The same policy with no memory (each replay starts from nothing)."""
        ...


_P = TypeVar("_P")


def _without_memory(policy: _P) -> _P:
    """The same policy's settings (its fields without a leading underscore), no memory."""
    settings = {
        f.name: getattr(policy, f.name)
        for f in dataclasses.fields(policy)  # type: ignore[arg-type]
        if f.init and not f.name.startswith("_")
    }
    return type(policy)(**settings)


# -- HPA ----------------------------------------------------------------------------------
def _pods(view: View, per_pod_milli: float, *, cpu: bool) -> list[Pod]:
    """The pods as the metrics API shows them to the replica calculator."""
    value = int(per_pod_milli)
    out = [Pod(value, view.cpu_request_milli)] * view.fresh
    stale = view.ready - view.fresh
    if cpu:  # ready, but no sample since: unready for cpu (the initialisation period)
        out += [Pod(value, view.cpu_request_milli, warming=True)] * stale
    else:  # no sample yet: missing
        out += [Pod(None, view.cpu_request_milli)] * stale
    out += [Pod(None, view.cpu_request_milli, phase="Pending", ready=False)] * (
        view.replicas - view.ready
    )
    return out


def propose(hpa: Hpa, view: View) -> int | None:
    """What the HPA's metrics ask for (the largest; None when it must not scale)."""
    proposals: list[int] = []
    invalid = 0
    for metric in hpa.metrics:
        try:
            proposals.append(_one(metric, view, hpa.tolerance))
        except MetricsUnavailableError:
            invalid += 1
    best = max(proposals, default=-1)
    if invalid >= len(hpa.metrics) or (invalid and best < view.replicas):
        return None  # all invalid, or some invalid and the rest would scale down
    return best


def _one(metric: MetricSpec, view: View, tolerance: float) -> int:
    if math.isnan(view.pod_rps):
        raise MetricsUnavailableError("no metric (a gap in the trace)")
    current = view.replicas
    if metric.type == "Resource":
        cpu = view.pod_cpu_milli * 1.0
        if metric.target_type == "Utilization":
            return resource_replicas(
                _pods(view, cpu, cpu=True), metric.target, current, tolerance=tolerance
            )
        return plain_metric_replicas(
            _pods(view, cpu, cpu=True), metric.target, current, tolerance=tolerance
        )
    if metric.type == "Pods":
        return plain_metric_replicas(
            _pods(view, view.pod_rps * 1000, cpu=False), metric.target, current, tolerance=tolerance
        )
    total = view.queue if "queue" in metric.name.lower() else view.demand_rps
    total_milli = int(total * 1000)
    if metric.target_type == "AverageValue":
        if current == 0:
            return math.ceil(total_milli / metric.target)
        return external_replicas(
            total_milli,
            current=current,
            ready_pods=view.ready,
            average_milli=metric.target,
            tolerance=tolerance,
        )
    return external_replicas(
        total_milli,
        current=current,
        ready_pods=view.ready,
        value_milli=metric.target,
        tolerance=tolerance,
    )


@dataclass
class HpaPolicy:
    """A HorizontalPodAutoscaler, reconciled every ``period_s`` (the controller's sync)."""

    hpa: Hpa
    period_s: float = 15.0
    name: str = ""
    controller: HpaController | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Name it after the HPA; start with an empty controller memory."""
        self.name = self.name or self.hpa.name
        self.controller = HpaController(self.hpa)

    def decide(self, view: View) -> int:
        """One reconciliation."""
        assert self.controller is not None
        return self.controller.reconcile(view.replicas, propose(self.hpa, view), view.now)

    def fresh_copy(self) -> HpaPolicy:
        """No memory of recommendations or scale events."""
        return HpaPolicy(self.hpa, self.period_s, self.name)


# -- KEDA ---------------------------------------------------------------------------------
@dataclass
class KedaPolicy:
    """A KEDA ScaledObject with one trigger.

    Attributes:
        metric: ``queue`` (the backlog, as RabbitMQ's QueueLength) or ``rate`` (arrivals
            per second, as MessageRate or a Prometheus rate).
        target: the metric's value per replica (the trigger's ``value``/``threshold``).
        activation: above it the workload is active (``activationValue``).
        polling_s: ``pollingInterval``; cooldown_s: ``cooldownPeriod``.
        min_replicas, max_replicas: ``minReplicaCount`` (0: scale to zero),
            ``maxReplicaCount``.
        hpa: the HPA KEDA creates (its behavior from ``advanced``).
    """

    metric: Literal["queue", "rate"]
    target: float
    activation: float = 0.0
    polling_s: float = 30.0
    cooldown_s: float = 300.0
    min_replicas: int = 0
    max_replicas: int = 100
    name: str = "keda"
    hpa: Hpa | None = None
    period_s: float = 15.0
    _hpa: HpaPolicy | None = field(default=None, repr=False)
    _last_active: float = field(default=-math.inf, repr=False)
    _last_poll: float = field(default=-math.inf, repr=False)
    _value: float = field(default=math.nan, repr=False)

    def __post_init__(self) -> None:
        """The HPA KEDA would create: an External AverageValue target."""
        if self.hpa is None:
            self.hpa = Hpa(
                self.name,
                max(1, self.min_replicas),
                self.max_replicas,
                (
                    MetricSpec(
                        "External",
                        "queue" if self.metric == "queue" else "rate",
                        "AverageValue",
                        int(self.target * 1000),
                    ),
                ),
            )
        self._hpa = HpaPolicy(self.hpa, self.period_s, self.name)

    def decide(self, view: View) -> int:
        """KEDA's activation at its polling interval, the HPA's arithmetic when active."""
        assert self._hpa is not None
        if view.now - self._last_poll >= self.polling_s:
            self._last_poll = view.now
            self._value = view.queue if self.metric == "queue" else view.demand_rps
        value = self._value
        if math.isnan(value):
            return view.replicas
        active = value > self.activation
        if active:
            self._last_active = view.now
        if view.replicas == 0:
            return 1 if active else 0
        if (
            not active
            and self.min_replicas == 0
            and view.now - self._last_active >= self.cooldown_s
        ):
            return 0
        # the HPA reads the value KEDA polled last
        return self._hpa.decide(replace(view, queue=value, demand_rps=value))

    def fresh_copy(self) -> KedaPolicy:
        """No memory."""
        return _without_memory(self)


# -- step scaling -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Step:
    """One band of a step policy.

    When the metric is at least ``lower`` (and below ``upper``), change the replicas by
    ``change``: a count, or with ``percent`` a percentage of the current count.
    """

    change: float
    lower: float = -math.inf
    upper: float = math.inf
    percent: bool = False


@dataclass
class StepPolicy:
    """Step scaling, as AWS Auto Scaling has it.

    The metric (a percentage: ``cpu`` of the request, or ``load`` of the capacity per
    replica) averaged over ``evaluation_s`` picks a band; its change is made, then
    ``cooldown_s`` of rest.
    """

    steps: tuple[Step, ...]
    capacity_rps: float
    metric: Literal["cpu", "load"] = "cpu"
    cooldown_s: float = 60.0
    evaluation_s: float = 60.0
    min_replicas: int = 1
    max_replicas: int = 100
    name: str = "step"
    period_s: float = 15.0
    _samples: deque[tuple[float, float]] = field(default_factory=deque, repr=False)
    _last_change: float = field(default=-math.inf, repr=False)

    def decide(self, view: View) -> int:
        """The band the averaged metric falls in, unless cooling down."""
        current = view.replicas
        if math.isnan(view.pod_rps):
            return current
        if self.metric == "cpu":
            value = 100 * view.pod_cpu_milli / view.cpu_request_milli
        else:
            value = 100 * view.pod_rps / self.capacity_rps
        samples = self._samples
        samples.append((view.now, value))
        while samples and samples[0][0] <= view.now - self.evaluation_s:
            samples.popleft()
        average = sum(v for _, v in samples) / len(samples)
        bounded = min(max(current, self.min_replicas), self.max_replicas)
        if bounded != current or view.now - self._last_change < self.cooldown_s:
            return bounded
        for step in self.steps:
            if step.lower <= average < step.upper:
                change = current * step.change / 100 if step.percent else step.change
                moved = current + (math.ceil(change) if change > 0 else math.floor(change))
                wanted = min(max(moved, self.min_replicas), self.max_replicas)
                if wanted != current:
                    self._last_change = view.now
                return wanted
        return current

    def fresh_copy(self) -> StepPolicy:
        """No memory."""
        return _without_memory(self)


# -- predictive ---------------------------------------------------------------------------
@dataclass
class PredictivePolicy:
    """Scale ahead of a demand that repeats.

    At each decision: the forecast for ``now + lead_s`` is the highest demand seen within
    ``spread_s`` of that moment one ``season_s`` ago, times the ratio of the last hour's
    demand to the same hour a season ago (kept within 0.5..2). The replicas wanted are
    that forecast, or the demand now if higher, over ``target_rps`` per replica; scale-in
    waits ``scale_down_window_s`` (the highest wish of that window is kept). Before a
    season of history exists, it scales on the demand now, as a reactive policy would.
    """

    target_rps: float
    season_s: float = 86400.0
    lead_s: float = 60.0
    spread_s: float = 300.0
    scale_down_window_s: float = 300.0
    min_replicas: int = 1
    max_replicas: int = 100
    name: str = "predictive"
    period_s: float = 15.0
    _history: list[tuple[float, float]] = field(default_factory=list, repr=False)
    _wishes: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def forecast(self, at: float) -> float | None:
        """The demand expected at ``at`` (None: no history a season before it)."""
        history = self._history
        then = at - self.season_s
        if not history or history[0][0] > then - self.spread_s:
            return None
        lo = _bisect(history, then - self.spread_s)
        hi = _bisect(history, then + self.spread_s)
        window = [rate for _, rate in history[lo:hi]]
        if not window:
            return None
        base = max(window)
        now = at - self.lead_s
        recent = [r for _, r in history[_bisect(history, now - 3600) :]]
        past = [
            r
            for _, r in history[
                _bisect(history, now - 3600 - self.season_s) : _bisect(history, now - self.season_s)
            ]
        ]
        if recent and past and sum(past) > 0:
            base *= min(2.0, max(0.5, (sum(recent) / len(recent)) / (sum(past) / len(past))))
        return base

    def decide(self, view: View) -> int:
        """max(forecast ahead, demand now) over the per-replica target, stabilised."""
        if math.isnan(view.demand_rps):
            return view.replicas
        self._history.append((view.now, view.demand_rps))
        expected = self.forecast(view.now + self.lead_s)
        demand = max(view.demand_rps, expected or 0.0)
        wish = max(self.min_replicas, min(self.max_replicas, math.ceil(demand / self.target_rps)))
        wishes = self._wishes
        wishes.append((view.now, wish))
        while wishes and wishes[0][0] <= view.now - self.scale_down_window_s:
            wishes.popleft()
        highest = max(w for _, w in wishes)
        return wish if wish >= view.replicas else min(view.replicas, highest)

    def fresh_copy(self) -> PredictivePolicy:
        """No history."""
        return _without_memory(self)


def _bisect(history: list[tuple[float, float]], at: float) -> int:
    lo, hi = 0, len(history)
    while lo < hi:
        mid = (lo + hi) // 2
        if history[mid][0] < at:
            lo = mid + 1
        else:
            hi = mid
    return lo
