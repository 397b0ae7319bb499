"""Comparing a candidate with a baseline: ratios with confidence, and a verdict per metric.

The method (documented in docs/compare.md):

- Metrics, for all traffic and for each endpoint both sides have: p50, p95, p99 (ms),
  the error ratio and the throughput (req/s). Each is computed from merged interval
  data (percentiles from merged histograms), never by averaging interval values.
- Each side's metric is bootstrapped in a way that keeps time structure: each resample
  draws blocks of consecutive intervals (block length about n^(1/3)) within a run, and,
  when a side has several runs, first draws whole runs with replacement. The sides are
  resampled independently, ``resamples`` times. A run of more than 120 intervals is
  first merged into 120 units of consecutive intervals, which bounds the cost.
- One inference per metric: the bootstrap gives each side's variance of the log metric
  (scaled by u/(u-1) for its u units: intervals, or runs when there are several); their
  sum is the variance of the log ratio, with Welch-Satterthwaite degrees of freedom. The
  p-value of "no change" is Student's t on the log ratio, corrected across all compared
  metrics (Benjamini-Hochberg). With R of m metrics selected, every interval is
  ``log ratio ± t * se`` at level ``1 - max(R, 1) * alpha / m`` (the false coverage rate
  adjusted interval of Benjamini and Yekutieli): the test inverted. A verdict is read
  from its interval alone, so it never contradicts the interval it is shown with.
- A metric is a *regression* or an *improvement* when its interval excludes 1 and the
  estimated change is beyond the practical floor (default 5%); *no change* when the
  interval excludes 1 but the change is within the floor, or when the whole interval
  lies within the floor; *inconclusive* otherwise (the interval holds both no change
  and a floor-sized change, or too few samples for the percentile).
- The minimum detectable effect is the change in the metric's bad direction that the
  comparison would find with 80% power at its level:
  ``exp(±(t + t_0.8) * se) - 1`` (a rise for latency and errors, a drop for throughput).
- The error ratio is compared as ``(errors + 1) / (requests + 1)`` on each side, so
  that errors appearing where there were none is a change, not a division by zero; no
  errors on either side is no change. The values shown are the plain
  ``errors / requests``.
- Open-model throughput is judged as answered / scheduled arrivals (the schedule, not
  the target, sets requests per second); closed-model throughput as requests per second.
- With a single endpoint, only the total is compared (it is the same traffic).
- Request phases (DNS, connect, TLS, send, wait, receive) are shown beside the verdicts,
  all traffic merged, p50 and p99 of either side: where a change in latency went. They
  are not judged (that would spend significance on twelve more metrics).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redline.core import PHASES, Histogram, Objective, RunResult, bucket_values

from ._resample import PERCENTILES, TOTAL, Arrays, Side, statistic
from ._stats import (
    benjamini_hochberg,
    mann_whitney,
    student_t_cdf,
    student_t_quantile,
    welch_df,
)

__all__ = [
    "IMPROVEMENT",
    "INCONCLUSIVE_CHANGE",
    "METRICS",
    "NO_CHANGE",
    "REGRESSION",
    "Comparison",
    "Measured",
    "MetricComparison",
    "PhaseChange",
    "benjamini_hochberg",
    "compare_runs",
    "critical_metrics",
    "decide",
    "mann_whitney",
    "measure_sides",
]

IMPROVEMENT = "improvement"
"""A comparison's classification: the candidate is better beyond noise and the floor."""
REGRESSION = "regression"
"""A comparison's classification: the candidate is worse beyond noise and the floor."""
NO_CHANGE = "no change"
"""A comparison's classification: any difference is within the floor."""
INCONCLUSIVE_CHANGE = "inconclusive"
"""A comparison's classification: the data cannot tell (an interval straddles the floor)."""
METRICS = ("p50", "p95", "p99", "error_ratio", "throughput")
"""What is compared, per scope. Higher is worse for all but throughput."""
_Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of one scope, candidate against base.

    Attributes:
        scope: ``"total"`` or an endpoint name.
        metric: one of :data:`METRICS`.
        base, candidate: the metric on each side (ms, a fraction, or req/s).
        ratio: candidate / base; ``low``, ``high`` its bootstrap interval at the
            comparison's ``level``: the verdict is read from this interval.
        p_value: the bootstrap's two-sided p-value, Benjamini-Hochberg adjusted.
        mde: the smallest change in the metric's bad direction this comparison would
            detect with 80% power (positive: a rise; negative for throughput: a drop).
        outcome: improvement, regression, no change or inconclusive.
        reason: one sentence saying why.
        critical: whether a regression here fails a gate.
    """

    scope: str
    metric: str
    base: float | None
    candidate: float | None
    ratio: float | None
    low: float | None
    high: float | None
    p_value: float | None
    mde: float | None
    outcome: str
    reason: str
    critical: bool = False

    @property
    def name(self) -> str:
        """``metric`` or ``scope metric`` for an endpoint."""
        return self.metric if self.scope == TOTAL else f"{self.scope} {self.metric}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "scope": self.scope,
            "metric": self.metric,
            "base": self.base,
            "candidate": self.candidate,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "mde": self.mde,
            "outcome": self.outcome,
            "reason": self.reason,
            "critical": self.critical,
        }


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """One request phase of all traffic on either side: p50 and p99 in ms."""

    phase: str
    base_p50: float
    base_p99: float
    candidate_p50: float
    candidate_p99: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "phase": self.phase,
            "base": {"p50": self.base_p50, "p99": self.base_p99},
            "candidate": {"p50": self.candidate_p50, "p99": self.candidate_p99},
        }


@dataclass(frozen=True)
class Comparison:
    """A candidate compared with a baseline, metric by metric (and its phases, shown)."""

    base: tuple[str, ...]
    candidate: tuple[str, ...]
    floor: float
    alpha: float
    metrics: tuple[MetricComparison, ...]
    notes: tuple[str, ...] = field(default=())
    phases: tuple[PhaseChange, ...] = field(default=())
    level: float = 0.95

    def regressions(self, *, critical_only: bool = True) -> list[MetricComparison]:
        """The metrics found worse beyond the floor (only critical ones by default)."""
        return [
            m for m in self.metrics if m.outcome == REGRESSION and (m.critical or not critical_only)
        ]

    def inconclusive(self, *, critical_only: bool = True) -> list[MetricComparison]:
        """The metrics the comparison could not decide (only critical ones by default)."""
        return [
            m
            for m in self.metrics
            if m.outcome == INCONCLUSIVE_CHANGE and (m.critical or not critical_only)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``redline compare --json``)."""
        return {
            "base": list(self.base),
            "candidate": list(self.candidate),
            "floor": self.floor,
            "alpha": self.alpha,
            "level": self.level,
            "notes": list(self.notes),
            "metrics": [m.to_dict() for m in self.metrics],
            "phases": [p.to_dict() for p in self.phases],
        }


def critical_metrics(objectives: Iterable[Objective]) -> set[tuple[str, str]]:
    """``(scope, metric)`` pairs bound by objectives: critical in a comparison.

    A percentile objective binds the nearest compared percentile at or above it, an
    error-rate objective the error ratio, a throughput one the throughput; group,
    scenario, check and phase objectives bind nothing here (comparisons are per
    endpoint, of whole requests).
    """
    out: set[tuple[str, str]] = set()
    for objective in objectives:
        if objective.scope not in ("total", "endpoint") or objective.phase:
            continue  # phases are shown beside the comparison, not judged in it
        scope = objective.scope_name if objective.scope == "endpoint" else TOTAL
        if objective.metric == "percentile":
            above = [m for m, p in PERCENTILES.items() if p >= objective.percentile]
            out.add((scope, above[0] if above else "p99"))
        elif objective.metric in ("error_rate", "good_ratio"):
            out.add((scope, "error_ratio"))
            if objective.metric == "good_ratio":
                out.add((scope, "p99"))
        elif objective.metric == "rps":
            out.add((scope, "throughput"))
        elif objective.metric in ("mean", "max", "min"):
            out.add((scope, "p50" if objective.metric != "max" else "p99"))
    return out


def compare_runs(
    base: Sequence[RunResult],
    candidate: Sequence[RunResult],
    *,
    floor: float = 0.05,
    alpha: float = 0.05,
    resamples: int = 2000,
    critical: Iterable[tuple[str, str]] | None = None,
    seed: int | None = 0,
) -> Comparison:
    """Compare ``candidate`` runs with ``base`` runs (one or more on each side).

    Args:
        base: the baseline run(s).
        candidate: the run(s) to judge.
        floor: the smallest relative change that matters (0.05: 5%).
        alpha: the significance level, after correction for multiple metrics.
        resamples: bootstrap resamples per side.
        critical: ``(scope, metric)`` pairs whose regression fails a gate; by default
            those bound by the candidate's objectives, else total p99 and error ratio.
        seed: the bootstrap's random seed (a fixed default: the same runs always get
            the same verdicts).

    Raises:
        ValueError: a side has no runs, or the two sides share no measured traffic.
    """
    if not base or not candidate:
        raise ValueError("compare needs at least one run on each side")
    if not 0 < floor < 1:
        raise ValueError(f"floor must be a fraction between 0 and 1, got {floor}")
    rng = np.random.default_rng(seed)
    shared = [name for name in _endpoints(candidate) if name in set(_endpoints(base))]
    everything = set(_endpoints(base)) | set(_endpoints(candidate))
    # One endpoint and nothing else is the total again: comparing it twice would only
    # spend significance on the multiple-comparison correction.
    scopes = [TOTAL] + (shared if len(everything) > 1 else [])
    if critical is None:
        bound = critical_metrics(o for run in candidate for o in _objectives(run))
        critical = bound or {(TOTAL, "p99"), (TOTAL, "error_ratio")}
    critical = set(critical)
    if len(scopes) == 1:  # an endpoint's metric is the total's when it is all the traffic
        critical = {(TOTAL, metric) for _, metric in critical}
    pairs = {scope: (Side.of(base, scope), Side.of(candidate, scope)) for scope in scopes}
    raw, notes = measure_sides(pairs, resamples=resamples, rng=rng)
    if not raw:
        raise ValueError("the two sides share no measured traffic to compare")
    level, metrics = decide(raw, floor=floor, alpha=alpha, critical=critical)
    if len(base) == 1 and len(candidate) == 1:
        notes.append(
            "one run per side: the intervals cover the noise within each run, not between "
            "runs; compare several runs per side (redline ab --rounds) for that"
        )
    return Comparison(
        base=tuple(r.id for r in base),
        candidate=tuple(r.id for r in candidate),
        floor=floor,
        alpha=alpha,
        metrics=metrics,
        notes=tuple(notes),
        phases=phase_changes(base, candidate),
        level=level,
    )


def phase_changes(
    base: Sequence[RunResult], candidate: Sequence[RunResult]
) -> tuple[PhaseChange, ...]:
    """Every phase both sides timed, all traffic merged over their measured intervals."""
    sides = [_phases(runs) for runs in (base, candidate)]
    out = []
    for name in PHASES:
        if name not in sides[0] or name not in sides[1]:
            continue
        (b50, b99), (c50, c99) = (
            (h.value_at_percentile(50) / 1000, h.value_at_percentile(99) / 1000)
            for h in (sides[0][name], sides[1][name])
        )
        out.append(PhaseChange(name, b50, b99, c50, c99))
    return tuple(out)


def _phases(runs: Sequence[RunResult]) -> dict[str, Histogram]:
    parts: dict[str, list[Histogram]] = {}
    for run in runs:
        for interval in run.measured:
            for data in interval.endpoints.values():
                for name, histogram in data.phases.items():
                    parts.setdefault(name, []).append(histogram)
    merged = {name: Histogram.merged(items) for name, items in parts.items()}
    return {name: h for name, h in merged.items() if h.total_count}


def _objectives(run: RunResult) -> list[Objective]:
    return list(run.plan.objectives)


def _endpoints(runs: Sequence[RunResult]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.endpoint_names()))
    return list(names)


# -- data of one side -------------------------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """One metric of one scope on both sides: values and bootstrap log ratios."""

    scope: str
    metric: str
    base: float
    candidate: float
    ratio: float
    se: float
    df: float
    enough: bool
    errorless: bool
    needed: int

    def p_value(self) -> float:
        """Two-sided p-value of "no change": Student's t of the log ratio."""
        if not self.enough or self.errorless or not math.isfinite(self.ratio) or self.ratio <= 0:
            return 1.0
        if self.se <= 0:
            return 1.0 if self.ratio == 1 else 0.0
        t = abs(math.log(self.ratio)) / self.se
        return min(1.0, 2 * student_t_cdf(-t, self.df))


def _needed(metric: str) -> int:
    """Requests a side needs for the metric to be estimable (the rule of evaluate())."""
    if metric not in PERCENTILES:
        return 1  # a ratio of sums: any traffic estimates it
    q = PERCENTILES[metric] / 100
    return math.ceil((_Z95**2) * q / (1 - q) + 1 / (1 - q))


def measure_sides(
    pairs: dict[str, tuple[Side, Side]],
    *,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
    metrics: Sequence[str] = METRICS,
) -> tuple[list[Measured], list[str]]:
    """Every metric of every scope, base and candidate side, with its bootstrap.

    Returns the measured metrics and notes on scopes left out (a side had no intervals).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    raw: list[Measured] = []
    notes: list[str] = []
    for scope, sides in pairs.items():
        if not sides[0].intervals or not sides[1].intervals:
            notes.append(f"{scope}: no measured intervals on one side")
            continue
        raw.extend(_measure(scope, sides, resamples, rng, metrics))
    return raw, notes


def _measure(
    scope: str,
    sides: tuple[Side, Side],
    resamples: int,
    rng: np.random.Generator,
    metrics: Sequence[str],
) -> list[Measured]:
    weights = [side.weights(resamples, rng) for side in sides]
    union = np.unique(
        np.concatenate(
            [i.latency.to_sparse()[0] for side in sides for i in side.intervals]
            or [np.zeros(0, dtype=np.int64)]
        )
    )
    arrays = [Arrays.of(side, union) for side in sides]
    values = bucket_values(union).astype(np.float64) / 1000
    requests = min(float(a.requests.sum()) for a in arrays)
    # In the open model the schedule sets the throughput: judge how much of the
    # scheduled load was answered, so that Poisson arrivals are not mistaken for a change.
    per_schedule = all(a.open_model and a.scheduled.sum() > 0 for a in arrays)
    out = []
    for metric in metrics:
        options = {"per_schedule": per_schedule and metric == "throughput"}
        point = [
            float(statistic(metric, a, values, np.ones((1, a.requests.size)), **options)[0])
            for a in arrays
        ]
        if metric == "error_ratio":
            shown = [
                float(a.errors.sum() / a.requests.sum()) if a.requests.sum() else 0.0
                for a in arrays
            ]
        elif metric == "throughput":
            shown = [
                float(a.requests.sum() / a.seconds.sum()) if a.seconds.sum() else 0.0
                for a in arrays
            ]
        else:
            shown = point
        # Each side's bootstrap variance of the log statistic, scaled by u / (u - 1) for
        # its u resampling units (the bootstrap's small-sample shortfall); the two add up,
        # with Welch-Satterthwaite degrees of freedom for the t reference.
        variances, units = [], []
        for a, w, side in zip(arrays, weights, sides, strict=True):
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log(statistic(metric, a, values, w, **options))
            logs = logs[np.isfinite(logs)]
            u = side.units
            variances.append(float(np.var(logs)) * u / (u - 1) if logs.size > 1 and u > 1 else 0.0)
            units.append(u)
        out.append(
            Measured(
                scope=scope,
                metric=metric,
                base=shown[0],
                candidate=shown[1],
                ratio=point[1] / point[0] if point[0] > 0 else math.nan,
                se=math.sqrt(sum(variances)),
                df=welch_df(variances, units),
                enough=requests >= _needed(metric)
                and requests > 0
                and (metric != "cpu_per_request" or all(np.isfinite(a.cpu).all() for a in arrays)),
                errorless=metric == "error_ratio" and all(a.errors.sum() == 0 for a in arrays),
                needed=_needed(metric),
            )
        )
    return out


# -- verdicts ---------------------------------------------------------------------------
def decide(
    raw: Sequence[Measured],
    *,
    floor: float,
    alpha: float,
    critical: Iterable[tuple[str, str]] = (),
) -> tuple[float, tuple[MetricComparison, ...]]:
    """The verdicts of measured metrics, read from one interval each.

    Returns the confidence level of the intervals (95% adjusted for the number of
    metrics, as Benjamini and Yekutieli's false coverage rate asks) and each verdict.
    """
    critical = set(critical)
    adjusted = benjamini_hochberg([r.p_value() for r in raw])
    # With R of m metrics selected (adjusted p < alpha), intervals at 1 - R * alpha / m
    # keep the false coverage rate of the selected ones at alpha; a metric is selected
    # exactly when its interval at that level excludes "no change".
    selected = sum(p < alpha for p in adjusted)
    level = 1 - max(selected, 1) * alpha / max(len(raw), 1)
    verdicts = tuple(
        _judge(r, p, floor=floor, level=level, critical=(r.scope, r.metric) in critical)
        for r, p in zip(raw, adjusted, strict=True)
    )
    return level, verdicts


def _judge(
    raw: Measured, p: float, *, floor: float, level: float, critical: bool
) -> MetricComparison:
    def result(outcome: str, reason: str, **values: float | None) -> MetricComparison:
        return MetricComparison(
            scope=raw.scope,
            metric=raw.metric,
            base=raw.base,
            candidate=raw.candidate,
            ratio=values.get("ratio"),
            low=values.get("low"),
            high=values.get("high"),
            p_value=p,
            mde=values.get("mde"),
            outcome=outcome,
            reason=reason,
            critical=critical,
        )

    if not raw.enough:
        return result(
            INCONCLUSIVE_CHANGE,
            f"too few requests on one side to estimate a {raw.metric} "
            f"(needs about {raw.needed:,} each)",
        )
    if raw.errorless:
        return result(NO_CHANGE, "no errors on either side", ratio=1.0)
    if not math.isfinite(raw.ratio) or raw.ratio <= 0:
        return result(INCONCLUSIVE_CHANGE, f"no {raw.metric} measured on one side")
    ratio = raw.ratio
    critical_t = student_t_quantile(1 - (1 - level) / 2, raw.df)
    low, high = (math.exp(math.log(ratio) + sign * critical_t * raw.se) for sign in (-1, 1))
    higher_is_worse = raw.metric != "throughput"
    # The smallest change in the bad direction that these intervals would catch 80% of
    # the time: (t of the interval + t of 80% power) standard errors of the log ratio.
    reach = (critical_t + student_t_quantile(0.8, raw.df)) * raw.se
    mde = math.exp(reach if higher_is_worse else -reach) - 1
    values = {"ratio": ratio, "low": low, "high": high, "mde": mde}
    change = ratio - 1
    ci = f"{level:.1%} CI {_pct(low - 1)} to {_pct(high - 1)}"
    if low > 1 or high < 1:  # the interval excludes "no change"
        if abs(change) > floor:
            worse = (change > 0) == higher_is_worse
            return result(
                REGRESSION if worse else IMPROVEMENT,
                f"{_pct(change)} ({ci}, p={p:.3f}), beyond the {floor:.0%} floor",
                **values,
            )
        return result(
            NO_CHANGE, f"{_pct(change)} ({ci}) is real but within the {floor:.0%} floor", **values
        )
    if 1 - floor <= low and high <= 1 + floor:
        return result(NO_CHANGE, f"{_pct(change)}; the {ci} is within ±{floor:.0%}", **values)
    return result(
        INCONCLUSIVE_CHANGE,
        f"{_pct(change)} ({ci}, p={p:.3f}): the interval holds both no change and more than "
        f"the {floor:.0%} floor; too noisy to see a change smaller than {_pct(mde)}",
        **values,
    )


def _pct(value: float) -> str:
    return f"{value:+.1%}"
