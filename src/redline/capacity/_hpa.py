"""The Kubernetes HorizontalPodAutoscaler's arithmetic, exactly as its controller does it.

Reproduced from the controller's documented behaviour and its own test expectations
(``pkg/controller/podautoscaler``: the replica calculator and the horizontal controller):

- **Replica calculation** per metric: a resource utilisation (``cpu``: usage over the
  pods' requests, a whole percentage, truncated), a per-pod average (``Pods`` metrics,
  integer milli-units) or an external metric (a total ``Value``, or an ``AverageValue``
  per pod). Within the tolerance (0.1) of the target nothing changes. Pods being deleted
  or failed are ignored; pending pods, and for ``cpu`` pods never ready or still warming
  up, are *unready*: left out, and on a scale-up counted as using nothing. Pods without a
  metric are *missing*: on a scale-down counted at the target (100% of their request for
  ``cpu``), on a scale-up at zero. A change that those assumptions would reverse, or that
  goes against the direction of the usage, is not made.
- **Several metrics**: the largest proposal wins; when some metrics are unavailable the
  others may scale up but never down; when all are, nothing changes.
- **Normalisation** with ``behavior`` (``autoscaling/v2``): stabilisation windows (the
  proposal is held between the lowest of the scale-up window and the highest of the
  scale-down window), then the rate policies (``Pods`` or ``Percent`` per
  ``periodSeconds``, ``selectPolicy`` Max, Min or Disabled, counting the scale events
  of the period), then ``minReplicas`` and ``maxReplicas``. Without ``behavior`` the
  controller's older rules: a five-minute downscale stabilisation, and a scale-up limited
  to ``max(2 * current, 4)``.

Times are seconds on the caller's clock (the replay's simulated time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "TOLERANCE",
    "Behavior",
    "Hpa",
    "HpaController",
    "MetricSpec",
    "Pod",
    "ScalingPolicy",
    "ScalingRules",
    "external_replicas",
    "plain_metric_replicas",
    "resource_replicas",
]

TOLERANCE = 0.1
"""The controller's default tolerance (``--horizontal-pod-autoscaler-tolerance``)."""
_DOWNSCALE_WINDOW_S = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
_SCALE_UP_FACTOR = 2.0  # without behavior: at most double...
_SCALE_UP_MINIMUM = 4.0  # ...or four, whichever is more


class MetricsUnavailableError(Exception):
    """No usable metric for the pods (all unready, or none reported)."""


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod as the replica calculator sees it.

    Attributes:
        metric_milli: its metric in milli-units (for ``cpu``: millicores used); None
            when the metrics API has none for it.
        request_milli: its CPU request in millicores (``cpu`` utilisation only).
        phase: ``Running``, ``Pending``, ``Failed`` (or ``Succeeded``).
        ready: its Ready condition (a pod never ready yet is unready for ``cpu``).
        deleting: it has a deletion timestamp (ignored).
        warming: for ``cpu``: within its initialisation period without a fresh sample
            since it turned ready (unready).
    """

    metric_milli: int | None
    request_milli: int = 1000
    phase: str = "Running"
    ready: bool = True
    deleting: bool = False
    warming: bool = False


def _group(pods: Sequence[Pod], *, cpu: bool) -> tuple[int, list[int], list[int], list[int]]:
    """Ready count, and indices of unready, missing and usable pods (``groupPods``)."""
    ready = 0
    unready: list[int] = []
    missing: list[int] = []
    usable: list[int] = []
    for i, pod in enumerate(pods):
        if pod.deleting or pod.phase == "Failed":
            continue  # ignored
        if pod.phase == "Pending":
            unready.append(i)
            continue
        if pod.metric_milli is None:
            missing.append(i)
            continue
        if cpu and (not pod.ready or pod.warming):
            unready.append(i)
            continue
        ready += 1
        usable.append(i)
    return ready, unready, missing, usable


def _utilisation(values: dict[int, int], requests: dict[int, int], target: int) -> float:
    used = sum(values.values())
    requested = sum(requests[i] for i in values)
    if requested == 0:
        raise MetricsUnavailableError("no CPU request on the pods")
    current = (used * 100) // requested  # a whole percentage, truncated as in Go
    return current / target


def resource_replicas(
    pods: Sequence[Pod], target_utilization: int, current: int, *, tolerance: float = TOLERANCE
) -> int:
    """The replicas a ``Resource`` ``cpu`` target of ``target_utilization`` % asks for.

    Raises:
        MetricsUnavailableError: no pod has a usable metric.
    """
    ready, unready, missing, usable = _group(pods, cpu=True)
    if not usable:
        raise MetricsUnavailableError("no metrics for the ready pods")
    requests = {i: pod.request_milli for i, pod in enumerate(pods)}
    values = {i: int(pods[i].metric_milli or 0) for i in usable}
    ratio = _utilisation(values, requests, target_utilization)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * ready)
    if ratio < 1.0:  # scale-down: the missing use their request (or the target, if above)
        fallback = max(100, target_utilization)
        for i in missing:
            values[i] = requests[i] * fallback // 100
    elif ratio > 1.0:  # scale-up: the missing use nothing (at exactly 1.0: left out)
        for i in missing:
            values[i] = 0
    if up_with_unready:
        for i in unready:
            values[i] = 0
    new_ratio = _utilisation(values, requests, target_utilization)
    return _settle(ratio, new_ratio, len(values), current, tolerance)


def plain_metric_replicas(
    pods: Sequence[Pod], target_milli: int, current: int, *, tolerance: float = TOLERANCE
) -> int:
    """The replicas a ``Pods`` metric with an ``AverageValue`` target asks for.

    Raises:
        MetricsUnavailableError: no pod has a usable metric.
    """
    _, unready, missing, usable = _group(pods, cpu=False)
    if not usable:
        raise MetricsUnavailableError("no metrics for the pods (they may be unready)")
    values = {i: int(pods[i].metric_milli or 0) for i in usable}

    def ratio_of(found: dict[int, int]) -> float:
        average = sum(found.values()) // len(found)  # integer milli-units, as in Go
        return average / target_milli

    ratio = ratio_of(values)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * len(usable))
    for i in missing:
        values[i] = target_milli if ratio < 1.0 else 0
    if up_with_unready:
        for i in unready:
            values[i] = 0
    return _settle(ratio, ratio_of(values), len(values), current, tolerance)


def _settle(ratio: float, new_ratio: float, counted: int, current: int, tolerance: float) -> int:
    """The end of both calculations: no change that the assumptions would reverse."""
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposed = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


def external_replicas(
    total_milli: int,
    *,
    current: int,
    ready_pods: int,
    value_milli: int | None = None,
    average_milli: int | None = None,
    tolerance: float = TOLERANCE,
) -> int:
    """The replicas an ``External`` (or ``Object``) metric asks for.

    With a ``Value`` target the ratio multiplies the ready pods; with an
    ``AverageValue`` target the total is divided by the per-pod target (as KEDA's
    scalers are read).
    """
    if average_milli is not None:
        ratio = total_milli / (average_milli * current) if current else math.inf
        if abs(1.0 - ratio) > tolerance:
            return math.ceil(total_milli / average_milli)
        return current
    if value_milli is None:
        raise ValueError("an external metric needs a Value or an AverageValue target")
    ratio = total_milli / value_milli
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * ready_pods)


# -- specs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One rate limit: ``value`` pods (``Pods``) or percent (``Percent``) per ``period_s``."""

    type: Literal["Pods", "Percent"]
    value: int
    period_s: int


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``behavior.scaleUp`` or ``behavior.scaleDown``, defaults filled in."""

    stabilization_window_s: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    @property
    def longest_period_s(self) -> int:
        """The longest period of its policies (how long scale events are remembered)."""
        return max((p.period_s for p in self.policies), default=0)


DEFAULT_SCALE_UP = ScalingRules(
    0, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)), "Max"
)
"""``behavior.scaleUp`` when not given: no stabilisation, +4 pods or +100% per 15 s."""
DEFAULT_SCALE_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),), "Max")
"""``behavior.scaleDown`` when not given: a 300 s window, -100% per 15 s."""


@dataclass(frozen=True, slots=True)
class Behavior:
    """``spec.behavior``: the scale-up and scale-down rules."""

    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of ``spec.metrics``.

    Attributes:
        type: ``Resource``, ``Pods``, ``External`` or ``Object``.
        name: the resource (``cpu``) or metric name.
        target_type: ``Utilization``, ``AverageValue`` or ``Value``.
        target: percent for ``Utilization``, else milli-units.
    """

    type: Literal["Resource", "Pods", "External", "Object"]
    name: str
    target_type: Literal["Utilization", "AverageValue", "Value"]
    target: int


@dataclass(frozen=True, slots=True)
class Hpa:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler's spec, as the controller uses it."""

    name: str
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Behavior | None = None
    tolerance: float = TOLERANCE


# -- the controller's memory and normalisation --------------------------------------------
@dataclass(slots=True)
class _Event:
    change: int
    at: float
    outdated: bool = False


@dataclass(slots=True)
class HpaController:
    """What the controller keeps between reconciliations of one HPA.

    Its recommendations (for stabilisation) and its scale events (for the rate policies),
    and the normalisation steps that read them. Times are seconds.
    """

    hpa: Hpa
    recommendations: list[tuple[int, float]] = field(default_factory=list)
    up_events: list[_Event] = field(default_factory=list)
    down_events: list[_Event] = field(default_factory=list)

    def normalize(self, current: int, proposed: int, now: float) -> int:
        """The replica count after stabilisation, rate limits and bounds."""
        hpa = self.hpa
        if hpa.behavior is None:
            stable = self.stabilize_legacy(proposed, now)
            limit = int(max(_SCALE_UP_FACTOR * current, _SCALE_UP_MINIMUM))
            upper = min(hpa.max_replicas, limit)
            return max(hpa.min_replicas, min(stable, upper))
        stable = self.stabilize(current, proposed, now)
        return self.rate_limited(current, stable, now)

    def reconcile(self, current: int, proposed: int | None, now: float) -> int:
        """One reconciliation: ``proposed`` by the metrics (None: none available).

        Returns the new replica count, and remembers the scale event if it changed.
        """
        hpa = self.hpa
        if current > hpa.max_replicas:
            desired = hpa.max_replicas
        elif current < hpa.min_replicas:
            desired = hpa.min_replicas
        elif proposed is None:
            return current  # no valid metric: the controller does not scale
        else:
            desired = self.normalize(current, proposed, now)
        if desired != current:
            self.store_event(current, desired, now)
        return desired

    def stabilize_legacy(self, proposed: int, now: float) -> int:
        """``stabilizeRecommendation`` (no behavior): the highest of the last five minutes."""
        highest = proposed
        cutoff = now - _DOWNSCALE_WINDOW_S
        old = -1
        for i, (value, at) in enumerate(self.recommendations):
            if at < cutoff:
                old = i
            elif value > highest:
                highest = value
        self._remember(old, proposed, now)
        return highest

    def stabilize(self, current: int, proposed: int, now: float) -> int:
        """``stabilizeRecommendationWithBehaviors``: held between the windows' bounds."""
        behavior = self.hpa.behavior or Behavior()
        up_cutoff = now - behavior.scale_up.stabilization_window_s
        down_cutoff = now - behavior.scale_down.stabilization_window_s
        up = down = proposed
        old = -1
        for i, (value, at) in enumerate(self.recommendations):
            if at > up_cutoff:
                up = min(value, up)
            if at > down_cutoff:
                down = max(value, down)
            if at < up_cutoff and at < down_cutoff:
                old = i
        recommendation = max(current, up)
        recommendation = min(recommendation, down)
        self._remember(old, proposed, now)
        return recommendation

    def _remember(self, old: int, proposed: int, now: float) -> None:
        if old >= 0:
            self.recommendations[old] = (proposed, now)
        else:
            self.recommendations.append((proposed, now))

    def rate_limited(self, current: int, desired: int, now: float) -> int:
        """``convertDesiredReplicasWithBehaviorRate``: rate policies, then the bounds."""
        hpa = self.hpa
        behavior = hpa.behavior or Behavior()
        if desired > current:
            limit = max(self.scale_up_limit(current, behavior.scale_up, now), current)
            return min(desired, hpa.max_replicas, limit)
        if desired < current:
            limit = min(self.scale_down_limit(current, behavior.scale_down, now), current)
            return max(desired, hpa.min_replicas, limit)
        return desired

    def _changed(self, period_s: int, events: list[_Event], now: float) -> int:
        cutoff = now - period_s
        return sum(e.change for e in events if e.at > cutoff)

    def _period_start(self, current: int, period_s: int, now: float) -> int:
        """The replicas at the start of a policy's period: the events in it undone."""
        return (
            current
            - self._changed(period_s, self.up_events, now)
            + self._changed(period_s, self.down_events, now)
        )

    def scale_up_limit(self, current: int, rules: ScalingRules, now: float) -> int:
        """``calculateScaleUpLimitWithScalingRules``: the most replicas allowed now."""
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(current, policy.period_s, now)
            if policy.type == "Pods":
                proposals.append(start + policy.value)
            else:  # rounded up, or a small fleet could never grow
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        if not proposals:
            return current
        # the largest change is the highest limit, unless selectPolicy asks for the least
        return min(proposals) if rules.select_policy == "Min" else max(proposals)

    def scale_down_limit(self, current: int, rules: ScalingRules, now: float) -> int:
        """``calculateScaleDownLimitWithBehaviors``: the fewest replicas allowed now."""
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(current, policy.period_s, now)
            if policy.type == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))  # truncated, as in Go
        if not proposals:
            return current
        # the largest change is the lowest limit, unless selectPolicy asks for the least
        return max(proposals) if rules.select_policy == "Min" else min(proposals)

    def store_event(self, before: int, after: int, now: float) -> None:
        """``storeScaleEvent``: remember a change for the rate policies (with behavior)."""
        behavior = self.hpa.behavior
        if behavior is None:
            return
        up = after > before
        rules = behavior.scale_up if up else behavior.scale_down
        events = self.up_events if up else self.down_events
        cutoff = now - rules.longest_period_s
        for event in events:
            if event.at < cutoff:
                event.outdated = True
        change = after - before if up else before - after
        for i, event in enumerate(events):
            if event.outdated:
                events[i] = _Event(change, now)
                return
        events.append(_Event(change, now))
