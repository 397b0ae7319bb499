"""Scaling seen during a load test: each change of the replica count, against its load.

For every change of the replica count followed during a run (``--replicas-from``):

- the **load step** it answers: the last change of the offered rate (10% or more from one
  interval to the next) before it;
- the **delay** from that step to the change (with a source of ready replicas: to the new
  capacity serving);
- the **SLO burn** during the transition (from the step to the change): each budgeted
  objective's bad share over its budget (1: spending the budget at the rate it allows);
- optionally, what a **replayed policy** would have done with the run's own demand (its
  achieved rate per interval): when its replica count first reached the same count after
  the same step, and the difference.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redline.analysis import burn_rate
from redline.core import Objective, RunResult

from ._demand import DemandTrace
from ._policies import Policy
from ._replay import FleetModel, replay

__all__ = ["ScalingEvent", "scaling_events"]

_STEP_CHANGE = 0.10


@dataclass(frozen=True)
class ScalingEvent:
    """One change of the replica count during a run (seconds from the load's start)."""

    at_s: float
    before: int
    after: int
    load_step_s: float | None
    delay_s: float | None
    burn: dict[str, float | None]
    replayed_at_s: float | None = None

    @property
    def replayed_difference_s(self) -> float | None:
        """How much later (positive) the real scaling came than the replayed policy's."""
        if self.replayed_at_s is None:
            return None
        return self.at_s - self.replayed_at_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "at_s": self.at_s,
            "before": self.before,
            "after": self.after,
            "load_step_s": self.load_step_s,
            "delay_s": self.delay_s,
            "burn": dict(self.burn),
            "replayed_at_s": self.replayed_at_s,
            "replayed_difference_s": self.replayed_difference_s,
        }


def _load_steps(result: RunResult) -> list[float]:
    steps = []
    previous: float | None = None
    for interval in result.intervals:
        rate = interval.generator.target_rps
        if rate is None:
            rate = interval.generator.sent / interval.duration_s if interval.duration_s else 0.0
        if previous is not None and abs(rate - previous) > _STEP_CHANGE * max(previous, 1e-9):
            steps.append(interval.start_s)
        previous = rate
    return steps


def scaling_events(
    result: RunResult,
    replicas: Sequence[tuple[float, int]],
    objectives: Sequence[Objective] = (),
    *,
    policy: Policy | None = None,
    model: FleetModel | None = None,
) -> list[ScalingEvent]:
    """The scaling events of ``result`` from its followed ``replicas`` ``(t_s, count)``.

    With a ``policy`` and its ``model``, each event is also set against the policy
    replayed over the run's achieved rate.
    """
    steps = _load_steps(result)
    predicted: list[tuple[float, int]] = []
    if policy is not None and model is not None and len(result.intervals) >= 2:
        times = [i.start_s for i in result.intervals]
        rates = [
            sum(e.requests for e in i.endpoints.values()) / i.duration_s if i.duration_s else 0.0
            for i in result.intervals
        ]
        trace = DemandTrace.of(times, rates, source=f"run {result.id}")
        first = replicas[0][1] if replicas else None
        simulated = replay(trace, policy, model if first is None else _with_start(model, first))
        predicted = [(float(t), int(r)) for t, r in zip(simulated.t, simulated.ready, strict=True)]
    events = []
    for (_, before), (at, after) in itertools.pairwise(replicas):
        if after == before:
            continue
        step = max((s for s in steps if s <= at), default=None)
        window = [
            i
            for i in result.intervals
            if step is not None and i.start_s + i.duration_s > step and i.start_s < at
        ]
        burn = {o.name: burn_rate(o, window) for o in objectives} if window else {}
        replayed = None
        if predicted and step is not None:
            up = after > before
            reached = [t for t, r in predicted if t >= step and (r >= after if up else r <= after)]
            replayed = reached[0] if reached else None
        events.append(
            ScalingEvent(
                at_s=at,
                before=before,
                after=after,
                load_step_s=step,
                delay_s=None if step is None else at - step,
                burn=burn,
                replayed_at_s=replayed,
            )
        )
    return events


def _with_start(model: FleetModel, replicas: int) -> FleetModel:
    return dataclasses.replace(model, initial_replicas=max(0, replicas))
