"""``capacity recommend``: a grid search over HPA parameters, under constraints.

Every candidate is replayed over the trace. Feasible ones (at most the allowed SLO
violation minutes) come first, the cheapest (fewest replica-hours) of them is found, and
the recommendation is the least risky candidate within ``tolerance`` of that cost: the
fewest violation minutes, then the least under-provisioning time, then the cheapest.
An infeasible candidate says why.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._demand import DemandTrace
from ._hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    Hpa,
    MetricSpec,
    ScalingPolicy,
    ScalingRules,
)
from ._k8s import hpa_manifest
from ._policies import HpaPolicy
from ._replay import FleetModel, ReplayScores, replay

__all__ = ["Candidate", "Recommendation", "recommend"]

TARGETS = (50, 60, 70, 80)
"""Target utilisation (% of the CPU request, or of the capacity per replica) tried."""
DOWN_WINDOWS = (60, 300, 600)
"""Scale-down stabilisation windows tried (seconds)."""
UP_RULES = (
    ("default", DEFAULT_SCALE_UP),
    ("+200%/15s", ScalingRules(0, (ScalingPolicy("Percent", 200, 15),))),
)
"""Scale-up rules tried."""


@dataclass(frozen=True)
class Candidate:
    """One point of the grid, replayed."""

    name: str
    params: dict[str, Any]
    hpa: Hpa
    scores: ReplayScores
    feasible: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "name": self.name,
            "params": dict(self.params),
            "feasible": self.feasible,
            "why": self.why,
            "scores": self.scores.to_dict(),
            "hpa": hpa_manifest(self.hpa, "TARGET"),
        }


@dataclass(frozen=True)
class Recommendation:
    """The grid's outcome: the pick, the cheapest feasible, and every candidate."""

    best: Candidate | None
    cheapest: Candidate | None
    baseline: Candidate | None
    candidates: tuple[Candidate, ...]
    max_violation_minutes: float
    tolerance: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``redline capacity recommend --out``)."""
        return {
            "max_violation_minutes": self.max_violation_minutes,
            "tolerance": self.tolerance,
            "best": self.best.to_dict() if self.best else None,
            "cheapest": self.cheapest.to_dict() if self.cheapest else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "notes": list(self.notes),
        }


def _metric(kind: str, target: int, capacity_rps: float) -> MetricSpec:
    if kind == "cpu":
        return MetricSpec("Resource", "cpu", "Utilization", target)
    milli = int(capacity_rps * target / 100 * 1000)
    return MetricSpec("Pods", "requests_per_second", "AverageValue", milli)


def recommend(
    trace: DemandTrace,
    model: FleetModel,
    *,
    max_violation_minutes: float,
    min_replicas: Sequence[int] = (1,),
    max_replicas: int = 100,
    metric: str = "requests",
    baseline: Hpa | None = None,
    tolerance: float = 0.05,
) -> Recommendation:
    """Search HPA parameters that keep violations within the bound.

    The grid: :data:`TARGETS` x :data:`DOWN_WINDOWS` x :data:`UP_RULES` x ``min_replicas``.
    """
    candidates: list[Candidate] = []
    for target, window, (up_name, up), minimum in itertools.product(
        TARGETS, DOWN_WINDOWS, UP_RULES, min_replicas
    ):
        down = ScalingRules(window, DEFAULT_SCALE_DOWN.policies)
        name = f"{metric} {target}%, scale-down window {window}s, scale-up {up_name}, min {minimum}"
        hpa = Hpa(
            name, minimum, max_replicas, (_metric(metric, target, model.capacity_rps),),
            Behavior(up, down),
        )  # fmt: skip
        params = {
            "metric": metric, "target_pct": target, "scale_down_window_s": window,
            "scale_up": up_name, "min_replicas": minimum, "max_replicas": max_replicas,
        }  # fmt: skip
        candidates.append(_judge(name, params, hpa, trace, model, max_violation_minutes))
    base = None
    if baseline is not None:
        base = _judge(
            f"baseline {baseline.name}", {"baseline": True}, baseline, trace, model,
            max_violation_minutes,
        )  # fmt: skip
    feasible = [c for c in candidates if c.feasible]
    notes = []
    if not feasible:
        closest = min(candidates, key=lambda c: c.scores.violation_minutes)
        notes.append(
            f"no candidate keeps violations within {max_violation_minutes:g} minutes; the "
            f"closest ({closest.name}) has {closest.scores.violation_minutes:.1f}: raise "
            "maxReplicas, shorten the start-up, or add a predictive policy"
        )
        return Recommendation(
            None, None, base, tuple(candidates), max_violation_minutes, tolerance, tuple(notes)
        )
    cheapest = min(feasible, key=lambda c: c.scores.replica_hours)
    bound = cheapest.scores.replica_hours * (1 + tolerance)
    near = [c for c in feasible if c.scores.replica_hours <= bound]
    best = min(
        near,
        key=lambda c: (
            c.scores.violation_minutes,
            c.scores.under_timeshare,
            c.scores.replica_hours,
        ),
    )
    if base is not None and math.isfinite(base.scores.replica_hours):
        saved = base.scores.replica_hours - best.scores.replica_hours
        notes.append(
            f"against the baseline: {base.scores.violation_minutes:.1f} -> "
            f"{best.scores.violation_minutes:.1f} violation minutes, "
            f"{base.scores.replica_hours:.1f} -> {best.scores.replica_hours:.1f} replica-hours "
            f"({-saved:+.1f})"
        )
    ordered = sorted(
        candidates,
        key=lambda c: (not c.feasible, c.scores.replica_hours, c.scores.violation_minutes),
    )
    return Recommendation(
        best, cheapest, base, tuple(ordered), max_violation_minutes, tolerance, tuple(notes)
    )


def _judge(
    name: str,
    params: dict[str, Any],
    hpa: Hpa,
    trace: DemandTrace,
    model: FleetModel,
    bound: float,
) -> Candidate:
    scores = replay(trace, HpaPolicy(hpa), model).scores
    feasible = scores.violation_minutes <= bound
    why = (
        f"{scores.violation_minutes:.1f} violation minutes within {bound:g}"
        if feasible
        else f"{scores.violation_minutes:.1f} violation minutes > {bound:g}"
    )
    return Candidate(name, params, hpa, scores, feasible, why)
