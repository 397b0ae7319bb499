"""What the shaped test types report beyond verdicts: a spike's recovery, a soak's drift.

Recovery: the latency before the spike (p99 of the intervals in the 40% of the run before
it, warm-up aside) is the baseline; after the spike ends, the service has recovered at the
start of the first run of ``consecutive`` intervals whose p99 is within ``tolerance``
times the baseline (and whose error rate is no more than the baseline's plus one point).

Drift: the measured intervals are cut into buckets (at most 60, each one interval or
more), the p99 of each is taken, and the trend is the Theil-Sen slope (the median of
pairwise slopes: a few stalls do not make a trend); Mann-Kendall's test says whether the
trend is real. A soak drifts when the trend is significant (p < 0.01) and moves p99 by
more than 10% of its median over the run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redline.core import EndpointInterval, IntervalSnapshot, RunResult, ShapeSummary

__all__ = ["Drift", "Recovery", "drift", "recovery"]

_DRIFT_P = 0.01
_DRIFT_CHANGE = 0.10


@dataclass(frozen=True)
class Recovery:
    """How a spike went: the p99 before, the worst during, and the time to get back."""

    baseline_p99_ms: float
    peak_p99_ms: float
    spike_start_s: float
    spike_end_s: float
    recovered_after_s: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "baseline_p99_ms": self.baseline_p99_ms,
            "peak_p99_ms": self.peak_p99_ms,
            "spike_start_s": self.spike_start_s,
            "spike_end_s": self.spike_end_s,
            "recovered_after_s": self.recovered_after_s,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Drift:
    """A trend of p99 over a long run."""

    slope_ms_per_hour: float
    change: float
    p_value: float
    drifting: bool
    buckets: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "slope_ms_per_hour": self.slope_ms_per_hour,
            "change": self.change,
            "p_value": self.p_value,
            "drifting": self.drifting,
            "buckets": self.buckets,
            "reason": self.reason,
        }


def _total(intervals: Sequence[IntervalSnapshot]) -> EndpointInterval:
    return EndpointInterval.merged(e for i in intervals for e in i.endpoints.values())


def _p99_ms(data: EndpointInterval) -> float:
    return data.latency.value_at_percentile(99) / 1000 if data.latency.total_count else 0.0


def _error_rate(data: EndpointInterval) -> float:
    return data.errors / data.requests if data.requests else 0.0


def recovery(
    result: RunResult,
    shape: ShapeSummary | None = None,
    *,
    tolerance: float = 1.5,
    consecutive: int = 3,
) -> Recovery | None:
    """The recovery from the spike of a ``spike`` run (None for other runs).

    Args:
        result: the run.
        shape: its plan's test type (default: ``result.plan.shape``).
        tolerance: recovered when p99 is within this multiple of the baseline p99.
        consecutive: for this many intervals in a row.
    """
    shape = shape if shape is not None else result.plan.shape
    if shape is None or shape.type != "spike":
        return None
    start = shape.at_s or 0.0
    end = start + (shape.for_s or 0.0)
    before = [i for i in result.measured if i.start_s + i.duration_s <= start]
    during = [i for i in result.intervals if start <= i.start_s < end]
    after = [i for i in result.intervals if i.start_s >= end]
    base = _total(before)
    baseline = _p99_ms(base)
    peak = max((_p99_ms(_total([i])) for i in during + after[:consecutive]), default=0.0)
    if not before:
        return Recovery(baseline, peak, start, end, None, "no interval before the spike to compare")
    limit_ms = tolerance * baseline
    limit_errors = _error_rate(base) + 0.01
    run = 0
    for index, interval in enumerate(after):
        data = _total([interval])
        calm = _p99_ms(data) <= limit_ms and _error_rate(data) <= limit_errors
        run = run + 1 if calm else 0
        if run == consecutive:
            back = after[index - consecutive + 1].start_s - end
            reason = (
                f"p99 {baseline:.1f} ms before the spike, {peak:.1f} ms at worst; back within "
                f"{tolerance:g}x {back:.0f} s after it ended"
            )
            return Recovery(baseline, peak, start, end, back, reason)
    reason = (
        f"p99 {baseline:.1f} ms before the spike, {peak:.1f} ms at worst; not back within "
        f"{tolerance:g}x for {consecutive} intervals by the end of the run"
    )
    return Recovery(baseline, peak, start, end, None, reason)


def drift(result: RunResult, *, max_buckets: int = 60) -> Drift | None:
    """The trend of p99 over the run's measured intervals (None with fewer than 6 buckets).

    The intervals are cut into at most ``max_buckets`` buckets of one second or more.
    """
    measured = list(result.measured)
    count = min(max_buckets, len(measured))
    if count < 6:
        return None
    size = math.ceil(len(measured) / count)
    buckets = [measured[i : i + size] for i in range(0, len(measured), size)]
    times = [statistics.fmean(i.start_s + i.duration_s / 2 for i in b) for b in buckets]
    values = [_p99_ms(_total(b)) for b in buckets]
    slope = _theil_sen(times, values)
    p_value = _mann_kendall(values)
    span = times[-1] - times[0]
    level = statistics.median(values)
    change = slope * span / level if level > 0 else 0.0
    drifting = p_value < _DRIFT_P and abs(change) > _DRIFT_CHANGE
    direction = "rises" if slope > 0 else "falls"
    if drifting:
        reason = (
            f"p99 {direction} {abs(slope) * 3600:.1f} ms an hour ({change:+.0%} over the run, "
            f"Mann-Kendall p={p_value:.3g}): a drift (leak, growing queue or cache, GC)"
        )
    else:
        reason = (
            f"no drift: p99 trend {slope * 3600:+.1f} ms an hour ({change:+.0%} over the run, "
            f"p={p_value:.3g})"
        )
    return Drift(slope * 3600, change, p_value, drifting, len(buckets), reason)


def _theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    return statistics.median(slopes) if slopes else 0.0


def _mann_kendall(values: Sequence[float]) -> float:
    """The two-sided p-value of Mann-Kendall's trend test (normal approximation, ties)."""
    n = len(values)
    s = sum(
        (values[j] > values[i]) - (values[j] < values[i]) for i in range(n) for j in range(i + 1, n)
    )
    ties: dict[float, int] = {}
    for value in values:
        ties[value] = ties.get(value, 0) + 1
    tied = sum(t * (t - 1) * (2 * t + 5) for t in ties.values())
    variance = (n * (n - 1) * (2 * n + 5) - tied) / 18
    if variance <= 0:
        return 1.0
    z = (s - math.copysign(1, s)) / math.sqrt(variance) if s else 0.0
    return math.erfc(abs(z) / math.sqrt(2))
