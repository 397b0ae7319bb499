"""What each scheduled fault did to the objectives: time to detect, time to recover, budget.

For a fault from ``at`` to ``end`` (the plan's schedule, on the run's timeline):

- **time to detect**: from ``at`` to the end of the first interval starting at or after
  ``at`` in which an objective is breached (its value on that one interval outside its
  bound); None when none is.
- **time to recover**: from ``end`` to the start of the first run of ``consecutive``
  intervals in which every objective holds; None when the run ended first.
- **error budget consumed**: per objective with a budget (ratio objectives, and
  percentile objectives read as "this share of requests under the bound"), the bad events
  inside the window over the budget of the whole measured run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redline.core import IntervalSnapshot, Objective, RunResult

from ._evaluate import _scoped, evaluate_window, judged_histogram

__all__ = ["FaultImpact", "burn_rate", "fault_impacts"]


@dataclass(frozen=True)
class FaultImpact:
    """One fault's effect on the run's objectives."""

    name: str
    kind: str
    start_s: float
    end_s: float
    detected_after_s: float | None
    recovered_after_s: float | None
    budget_consumed: Mapping[str, float] = field(default_factory=dict)
    ran_to_end: bool = False

    @property
    def reason(self) -> str:
        """One sentence for people."""
        head = f"fault {self.name} ({self.kind}, {self.start_s:g}s-{self.end_s:g}s): "
        detected = (
            "no objective breached"
            if self.detected_after_s is None
            else f"detected after {self.detected_after_s:.0f} s"
        )
        if self.ran_to_end:
            recovered = "on until the end of the run"
        elif self.recovered_after_s is None:
            recovered = "not recovered by the end of the run"
        else:
            recovered = f"recovered {self.recovered_after_s:.0f} s after it ended"
        spent = ", ".join(f"{v:.0%} of {k}'s budget" for k, v in self.budget_consumed.items())
        return head + ", ".join(p for p in (detected, recovered, spent) if p)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "detected_after_s": self.detected_after_s,
            "recovered_after_s": self.recovered_after_s,
            "budget_consumed": dict(self.budget_consumed),
            "ran_to_end": self.ran_to_end,
            "reason": self.reason,
        }


def _breached(objectives: Sequence[Objective], interval: IntervalSnapshot) -> bool:
    for objective in objectives:
        verdict = evaluate_window(objective, [interval])
        if verdict.value is not None and not objective.holds(verdict.value):
            return True
    return False


def _bad_and_total(objective: Objective, intervals: Sequence[IntervalSnapshot]) -> tuple[int, int]:
    """Events outside the objective and all events, for objectives with a budget."""
    bad = total = 0
    for interval in intervals:
        data = _scoped(objective, interval)
        if data is None:
            continue
        total += data.requests
        if objective.metric == "error_rate":
            bad += data.errors
        elif objective.metric in ("percentile", "good_ratio"):
            histogram = judged_histogram(objective, data)
            good = histogram.count_at_or_below(int(objective.threshold * 1000))
            bad += data.requests - min(good, data.requests)
    return bad, total


def _budget_share(objective: Objective) -> float | None:
    if objective.metric == "error_rate":
        return objective.threshold
    if objective.metric == "good_ratio":
        return 1 - objective.target
    if objective.metric == "percentile":
        return 1 - objective.percentile / 100
    return None


def burn_rate(objective: Objective, intervals: Sequence[IntervalSnapshot]) -> float | None:
    """How fast a stretch of intervals spent the objective's error budget (1: on pace).

    ``bad / total / budget``; None for an objective without a budget, or no events.
    """
    share = _budget_share(objective)
    if share is None or share <= 0:
        return None
    bad, total = _bad_and_total(objective, intervals)
    return bad / total / share if total else None


def fault_impacts(
    result: RunResult, objectives: Sequence[Objective], *, consecutive: int = 3
) -> list[FaultImpact]:
    """The impact of every fault in the run's plan (``plan.faults``)."""
    out = []
    intervals = result.intervals
    measured = result.measured
    run_end = max((i.start_s + i.duration_s for i in intervals), default=0.0)
    for fault in result.plan.faults:
        start = fault.at_s
        end = start + fault.for_s
        detected = None
        for interval in intervals:
            if interval.start_s >= start - 1e-9 and _breached(objectives, interval):
                detected = interval.start_s + interval.duration_s - start
                break
        recovered = None
        after = [i for i in intervals if i.start_s >= end - 1e-9]
        for index in range(len(after) - consecutive + 1):
            window = after[index : index + consecutive]
            if not any(_breached(objectives, i) for i in window):
                recovered = window[0].start_s - end
                break
        inside = [i for i in measured if start - 1e-9 <= i.start_s < end]
        budget: dict[str, float] = {}
        for objective in objectives:
            share = _budget_share(objective)
            if share is None or share <= 0:
                continue
            bad, _ = _bad_and_total(objective, inside)
            _, run_total = _bad_and_total(objective, measured)
            if run_total:
                budget[objective.name] = bad / (share * run_total)
        out.append(
            FaultImpact(
                name=fault.name,
                kind=fault.type,
                start_s=start,
                end_s=end,
                detected_after_s=detected,
                recovered_after_s=recovered,
                budget_consumed=budget,
                ran_to_end=bool(intervals) and end >= run_end - 1e-9,
            )
        )
    return out
