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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redline.core import FAIL, Objective, Verdict

__all__ = [
    "FOUND",
    "Redline",
    "Step",
    "crossing",
    "kneedle",
    "redline_of",
    "search_redline",
    "step_holds",
]

FOUND, LIMITED, NEVER_HELD, HELD_AT_MAX = "found", "generator limited", "never held", "held at max"
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
_SATURATED = 0.95  # achieved below this share of the offered rate: the target is saturated
REPEAT_FACTOR = 3
"""The repeats of a search's final bracket run this many times a step's length."""
BLOCK_S = 5
"""Seconds of a repeat resampled together by the redline's bootstrap."""
_RESAMPLES = 2000
_SEED = 20261205  # the bootstrap's: the same steps always give the same interval


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
        tails: per latency objective (its text), per measured interval: the responses
            beyond its bound and all of them, for the redline's estimate.
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
    tails: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

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
            **(
                {"tails": {k: [list(c) for c in v] for k, v in self.tails.items()}}
                if self.tails
                else {}
            ),
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
    calibrated = _tail_estimate(steps, last_good, first_bad, objective)
    if calibrated is not None:
        rate, low, high = calibrated
    else:
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


def _tail_crossing(
    good: float, at_good: tuple[int, int], bad: float, at_bad: tuple[int, int], share: float
) -> float:
    """The rate at which the share of responses beyond the bound reaches ``share``.

    ``log`` of the share (with half a count added, so none beyond is no infinity) is
    taken as linear in the rate through the two points, and extended beyond them up to
    1.5 times either way: the bracket is chosen by single noisy steps and need not hold
    the crossing.
    """
    return _log_crossing(
        good,
        math.log((at_good[0] + 0.5) / (at_good[1] + 1)),
        bad,
        math.log((at_bad[0] + 0.5) / (at_bad[1] + 1)),
        share,
    )


def _log_crossing(good: float, a: float, bad: float, b: float, share: float) -> float:
    """Where ``log(share)`` falls on the line through ``(good, a)`` and ``(bad, b)``."""
    if a == b or bad == good:
        return (good + bad) / 2
    rate = good + (math.log(share) - a) / (b - a) * (bad - good)
    return min(max(rate, good / 1.5), bad * 1.5)


def _tail_estimate(
    steps: Sequence[Step], good: float, bad: float, objective: Objective | None
) -> tuple[float, float, float] | None:
    """The redline of a percentile objective from the repeats of the final bracket.

    Only the repeats count: the steps that chose the bracket passed or failed by chance
    as much as by the service (their share beyond the bound leans to the side they fell
    on). The share of responses beyond the bound, pooled over each end's repeats, is
    taken as log-linear in the rate: where it reaches ``1 - percentile`` is the estimate.
    Its 95% interval is a block bootstrap: each repeat's seconds in blocks of
    :data:`BLOCK_S` (a queue's seconds are not independent; its blocks nearly are),
    resampled at either end, the crossing found each time. Calibrated against a
    simulated M/M/c queue (tests/analysis/test_find_calibration.py). None without a
    repeat at each end: the older estimate then stands.
    """
    if objective is None or objective.metric != "percentile":
        return None
    key = objective.text
    blocks = []
    for rate in (good, bad):
        mine = [
            s.tails[key] for s in steps if s.rate == rate and s.phase == "repeat" and key in s.tails
        ]
        sums = [
            (sum(c[0] for c in part), sum(c[1] for c in part))
            for intervals in mine
            for part in (intervals[i : i + BLOCK_S] for i in range(0, len(intervals), BLOCK_S))
            if part
        ]
        if not sums:
            return None
        blocks.append(np.asarray(sums, dtype=np.float64))
    share = 1 - objective.percentile / 100
    rate = _tail_crossing(good, _pooled(blocks[0]), bad, _pooled(blocks[1]), share)
    rng = np.random.default_rng(_SEED)
    resampled = []
    for counts in blocks:
        picks = rng.integers(0, len(counts), size=(_RESAMPLES, len(counts)))
        over, total = counts[picks, 0].sum(axis=1), counts[picks, 1].sum(axis=1)
        resampled.append(np.log((over + 0.5) / (total + 1)))
    a, b = resampled
    target = math.log(share)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = good + (target - a) / (b - a) * (bad - good)
    crossing = np.where(b == a, (good + bad) / 2, crossing)
    crossing = np.clip(crossing, good / 1.5, bad * 1.5)
    tail = _expanded_tail(min(len(blocks[0]), len(blocks[1])))
    low, high = np.percentile(crossing, [100 * tail, 100 * (1 - tail)])
    return rate, float(min(low, rate)), float(max(high, rate))


def _expanded_tail(n: int) -> float:
    """The expanded percentile bootstrap's tail for ``n`` blocks (Hesterberg, 2015).

    The plain percentile interval is too narrow for few blocks; this one reaches
    ``sqrt(n / (n - 1)) * t(0.975, n - 1)`` standard errors instead of 1.96.
    """
    if n < 2:
        return 0.0
    df = n - 1
    if df in _T975:
        t = _T975[df]
    else:  # Cornish-Fisher: close enough past nine degrees of freedom
        z = 1.959964
        t = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    reach = math.sqrt(n / df) * t
    return 0.5 * (1 - math.erf(reach / math.sqrt(2)))


def _pooled(blocks: np.ndarray) -> tuple[int, int]:
    return int(blocks[:, 0].sum()), int(blocks[:, 1].sum())


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


def search_redline(
    measure: Callable[[float, float, str], Step],
    *,
    start: float,
    factor: float = 1.5,
    step_s: float = 10.0,
    refine_s: float | None = None,
    max_rate: float = 1_000_000.0,
    tolerance: float = 0.05,
    max_refine: int = 5,
    repeats: int = 4,
    repeat_s: float | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> Redline:
    """The search of ``redline find``, on any way of measuring a step.

    ``measure(rate, seconds, phase)`` runs (or simulates) one constant-rate step and
    judges it. The search steps the rate up by ``factor`` until a step breaks (down,
    while the first ones break), bisects the bracket geometrically with ``refine_s``
    steps until it is narrower than ``tolerance`` (at most ``max_refine`` times), then
    measures the final bracket ``repeats - 1`` more times, ``repeat_s`` each (default
    three times ``step_s``: a short step's p99 near the redline is biased low, and the
    interval rests on these repeats alone), for the estimate and its interval. A step the
    generator could not send ends it (see :func:`redline_of`).
    """
    steps: list[Step] = []

    def step_at(rate: float, seconds: float, phase: str) -> Step:
        step = measure(rate, seconds, phase)
        steps.append(step)
        return step

    good: float | None = None
    bad: float | None = None
    rate = min(start, max_rate)
    while not stopped():  # step up (or down, while the first rates break)
        step = step_at(rate, step_s, "step")
        if step.limited:
            return redline_of(steps, limited_at=rate)
        if step.holds:
            good = rate
            if bad is not None or rate >= max_rate:
                break
            rate = min(rate * factor, max_rate)
        else:
            bad = rate
            if good is not None:
                break
            rate /= factor
            if rate < 0.5:
                break
    if good is None or bad is None or stopped():
        return redline_of(steps)
    refine = refine_s or step_s / 2
    for _ in range(max_refine):  # bisect (geometrically) with shorter steps
        if bad / good - 1 <= tolerance or stopped():
            break
        middle = math.sqrt(good * bad)
        step = step_at(middle, refine, "refine")
        if step.limited:
            return redline_of(steps, limited_at=middle)
        if step.holds:
            good = middle
        else:
            bad = middle
    for _ in range(max(0, repeats - 1)):  # repeat the final bracket for the interval
        if stopped():
            break
        for rate in (good, bad):
            if step_at(rate, repeat_s or REPEAT_FACTOR * step_s, "repeat").limited:
                return redline_of(steps, limited_at=rate)
    return redline_of(steps, good=good, bad=bad)
