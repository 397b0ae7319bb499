"""The redline of a service: the highest arrival rate at which every objective holds.

A search (``redline.engine.find_redline``) runs steps at several rates and hands them
here. The redline lies between the last rate that held and the first that did not; its
estimate is where the binding objective's value crosses its bound, interpolated between
the two on a log scale (latency grows roughly exponentially as a queue fills), once per
repeated pair of steps. Those estimates give the interval: Student's t over the repeats.

Alongside: the saturation point (the most throughput any step achieved once the offered
rate outran it) and the knee of the latency-throughput curve (Kneedle: Satopaa et al.,
2011, on the normalised curve of p99 against achieved rate; for a convex, increasing
curve the knee is the point farthest below the chord from the first to the last point).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redline.core import FAIL, Objective, Verdict

__all__ = ["FOUND", "Redline", "Step", "crossing", "kneedle", "redline_of", "step_holds"]

FOUND, LIMITED, NEVER_HELD, HELD_AT_MAX = "found", "generator limited", "never held", "held at max"
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
_SATURATED = 0.95  # achieved below this share of the offered rate: the target is saturated


@dataclass(frozen=True)
class Step:
    """One constant-rate run of a search.

    Attributes:
        rate: the offered arrival rate, req/s.
        achieved: responses (and failures) per second.
        p50_ms, p99_ms: latency from the intended start.
        error_rate: failed requests and responses >= 400 over all.
        verdicts: each objective judged on this step.
        limited: the generator could not send at the offered rate.
        phase: ``step`` (stepping up), ``refine`` (bisection) or ``repeat``.
        run_id: the run, when stored.
        bottleneck: what the watched target's verdict named at this step (``cpu``,
            ``lock``, ``none``, ...), when the target was watched.
        evidence: that verdict's line of evidence.
    """

    rate: float
    achieved: float
    p50_ms: float
    p99_ms: float
    error_rate: float
    verdicts: tuple[Verdict, ...]
    limited: bool = False
    phase: str = "step"
    run_id: str = ""
    bottleneck: str | None = None
    evidence: str = ""

    @property
    def holds(self) -> bool:
        """Whether every objective holds at this step (see :func:`step_holds`)."""
        return step_holds(self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "rate": self.rate,
            "achieved": self.achieved,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "error_rate": self.error_rate,
            "holds": self.holds,
            "limited": self.limited,
            "phase": self.phase,
            "run_id": self.run_id,
            "verdicts": [v.to_dict() for v in self.verdicts],
            **({"bottleneck": self.bottleneck} if self.bottleneck is not None else {}),
        }


def step_holds(verdicts: Sequence[Verdict]) -> bool:
    """True when no objective failed and every measured value is inside its bound.

    An inconclusive verdict whose value is inside the bound holds: a search step is short,
    and what it asks is which side of the bound the service is on.
    """
    for verdict in verdicts:
        if verdict.outcome == FAIL:
            return False
        if verdict.value is not None and not verdict.objective.holds(verdict.value):
            return False
    return True


@dataclass(frozen=True)
class Redline:
    """What a search found.

    Attributes:
        rate: the estimated redline, req/s (None when the search could not bound it).
        low, high: its 95% interval.
        last_good, first_bad: the highest rate that held and the lowest that did not.
        objective: the objective that binds at the redline (its text).
        saturation: the most throughput achieved by a step the target could not keep up
            with (None when no step saturated it).
        knee: the achieved rate at the knee of the latency-throughput curve.
        outcome: ``found``, ``generator limited``, ``never held`` or ``held at max``.
        reason: one sentence for people.
        steps: every step, in the order run.
    """

    rate: float | None
    low: float | None
    high: float | None
    last_good: float | None
    first_bad: float | None
    objective: str
    saturation: float | None
    knee: float | None
    outcome: str
    reason: str
    steps: tuple[Step, ...] = field(default=())

    def summary(self) -> str:
        """``redline: 4,200 req/s (95% CI 4,050-4,330) at p99 < 250ms; saturation ...``."""
        if self.rate is None:
            return f"redline: not found: {self.reason}"
        interval = ""
        if self.low is not None and self.high is not None:
            interval = f" (95% CI {self.low:,.0f}-{self.high:,.0f})"
        text = f"redline: {self.rate:,.0f} req/s{interval} at {self.objective}"
        if self.saturation is not None:
            text += f"; saturation at ~{self.saturation:,.0f} req/s"
        at = self.bottleneck_step
        if at is not None:
            text += f"; bottleneck: {at.bottleneck} ({at.evidence})"
        return text

    @property
    def bottleneck_step(self) -> Step | None:
        """The step that tells the bottleneck at the breakpoint, when the target was watched.

        The last one run at the first rate that broke (without a bracket: the last step).
        """
        watched = [s for s in self.steps if s.bottleneck is not None]
        if not watched:
            return None
        if self.first_bad is not None:
            at_bad = [s for s in watched if s.rate == self.first_bad]
            if at_bad:
                return at_bad[-1]
        return watched[-1]

    @property
    def first_saturated(self) -> Step | None:
        """The lowest-rate step at which a resource of the target saturated, if any."""
        saturated = [s for s in self.steps if s.bottleneck not in (None, "none")]
        return min(saturated, key=lambda s: s.rate) if saturated else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``redline find --json``)."""
        return {
            "rate": self.rate,
            "low": self.low,
            "high": self.high,
            "last_good": self.last_good,
            "first_bad": self.first_bad,
            "objective": self.objective,
            "saturation": self.saturation,
            "knee": self.knee,
            "outcome": self.outcome,
            "reason": self.reason,
            "summary": self.summary(),
            "steps": [s.to_dict() for s in self.steps],
            **self._bottlenecks(),
        }

    def _bottlenecks(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, step in (
            ("bottleneck", self.bottleneck_step),
            ("first_saturated", self.first_saturated),
        ):
            if step is not None:
                out[key] = {
                    "resource": step.bottleneck,
                    "rate": step.rate,
                    "evidence": step.evidence,
                }
        return out


def crossing(rate_a: float, value_a: float, rate_b: float, value_b: float, bound: float) -> float:
    """The rate at which a value, interpolated between two steps, reaches ``bound``.

    Interpolates ``log(value)`` linearly in the rate (linearly when a value is not
    positive); clamps to ``[rate_a, rate_b]`` when the two do not straddle the bound.
    """
    if rate_a == rate_b:
        return rate_a
    if value_a > 0 and value_b > 0 and bound > 0:
        va, vb, target = math.log(value_a), math.log(value_b), math.log(bound)
    else:
        va, vb, target = value_a, value_b, bound
    if va == vb:
        return rate_a if (target - va) * (vb - va) <= 0 else rate_b
    fraction = (target - va) / (vb - va)
    low, high = min(rate_a, rate_b), max(rate_a, rate_b)
    return min(max(rate_a + fraction * (rate_b - rate_a), low), high)


def kneedle(xs: Sequence[float], ys: Sequence[float]) -> int | None:
    """The index of the knee of a convex, increasing curve (Kneedle), or None.

    Needs three points or more, sorted by ``x``; returns None when the curve has no bend
    (no point lies below the chord from the first point to the last).
    """
    if len(xs) < 3:
        return None
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0 or y1 == y0:
        return None
    differences = [(x - x0) / (x1 - x0) - (y - y0) / (y1 - y0) for x, y in zip(xs, ys, strict=True)]
    best = max(range(len(xs)), key=lambda i: differences[i])
    return best if differences[best] > 0 else None


def _binding(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The verdict farthest outside (or least inside) its bound."""
    measured = [v for v in verdicts if v.value is not None and v.margin is not None]
    return min(measured, key=lambda v: v.margin or 0.0) if measured else None


def _value(step: Step, objective: Objective) -> float | None:
    for verdict in step.verdicts:
        if verdict.objective == objective:
            return verdict.value
    return None


def redline_of(
    steps: Sequence[Step],
    *,
    good: float | None = None,
    bad: float | None = None,
    limited_at: float | None = None,
) -> Redline:
    """Turn a search's steps into its :class:`Redline`.

    Args:
        steps: every step run, in order.
        good: the search's last good rate; by default the highest rate that held.
        bad: the search's first bad rate; by default the lowest rate above ``good`` that
            did not hold (a repeat that lands on the other side of the bound moves the
            estimate, not the bracket).
        limited_at: the rate at which the generator could not keep up, if it stopped there.
    """
    steps = tuple(steps)
    last_good = good
    if last_good is None:
        last_good = max((s.rate for s in steps if s.holds and not s.limited), default=None)
    first_bad = bad
    if first_bad is None:
        above = [
            s.rate
            for s in steps
            if not s.holds and not s.limited and (last_good is None or s.rate > last_good)
        ]
        first_bad = min(above, default=None)
    saturation = _saturation(steps)
    knee = _knee(steps)
    common: dict[str, Any] = {"last_good": last_good, "first_bad": first_bad, "steps": steps}
    common |= {"saturation": saturation, "knee": knee}
    if first_bad is None or last_good is None:
        if limited_at is not None:
            reason = (
                f"the generator could not send {limited_at:,.0f} req/s; every objective "
                f"held up to {last_good or 0:,.0f} req/s, so the redline is above what this "
                "machine can generate (add workers or load generators)"
            )
            outcome = LIMITED
        elif last_good is None:
            reason = "no rate tried held every objective (lower the start rate)"
            outcome = NEVER_HELD
        else:
            reason = f"every objective held up to the highest rate tried, {last_good:,.0f} req/s"
            outcome = HELD_AT_MAX
        return Redline(None, None, None, objective="", outcome=outcome, reason=reason, **common)
    at_bad = [s for s in steps if s.rate == first_bad and not s.holds] or [
        s for s in steps if s.rate == first_bad
    ]
    binding = _binding([v for s in at_bad for v in s.verdicts])
    objective = binding.objective if binding is not None else None
    estimates = _estimates(steps, last_good, first_bad, objective)
    rate = statistics.median(estimates) if estimates else (last_good + first_bad) / 2
    low, high = _interval(estimates, last_good, first_bad)
    text = objective.text if objective is not None else "every objective"
    reason = (
        f"every objective held at {last_good:,.0f} req/s; {text} broke at {first_bad:,.0f} req/s"
    )
    return Redline(rate, low, high, objective=text, outcome=FOUND, reason=reason, **common)


def _estimates(
    steps: Sequence[Step], good: float, bad: float, objective: Objective | None
) -> list[float]:
    """One crossing per pair of steps at the last good and first bad rates."""
    if objective is None:
        return []
    at_good = [v for s in steps if s.rate == good and (v := _value(s, objective)) is not None]
    at_bad = [v for s in steps if s.rate == bad and (v := _value(s, objective)) is not None]
    bound = objective.bound
    return [crossing(good, a, bad, b, bound) for a, b in zip(at_good, at_bad, strict=False)]


def _interval(estimates: Sequence[float], good: float, bad: float) -> tuple[float, float]:
    """Student's t interval of the estimates; the bracket itself with fewer than two."""
    if len(estimates) < 2:
        return good, bad
    mean = statistics.fmean(estimates)
    half = _T975.get(len(estimates) - 1, 1.96) * statistics.stdev(estimates)
    half /= math.sqrt(len(estimates))
    return max(mean - half, 0.0), mean + half


def _saturation(steps: Sequence[Step]) -> float | None:
    saturated = [s for s in steps if not s.limited and s.achieved < _SATURATED * s.rate]
    if not saturated:
        return None
    return max(s.achieved for s in steps if not s.limited)


def _knee(steps: Sequence[Step]) -> float | None:
    by_rate: dict[float, Step] = {}
    for step in steps:
        if not step.limited and step.phase != "repeat":
            by_rate.setdefault(step.rate, step)
    ordered = sorted(by_rate.values(), key=lambda s: s.rate)
    index = kneedle([s.achieved for s in ordered], [s.p99_ms for s in ordered])
    return ordered[index].achieved if index is not None else None
