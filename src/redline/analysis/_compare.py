"""Comparing a candidate with a baseline: ratios with confidence, and a verdict per metric.

The method (documented in docs/compare.md):

- Metrics, for all traffic and for each endpoint both sides have: p50, p95, p99 (ms),
  the error ratio and the throughput (req/s). Each is computed from merged interval
  data (percentiles from merged histograms), never by averaging interval values.
- The ratio candidate/base gets a 95% interval from a bootstrap that keeps time
  structure: each resample draws blocks of consecutive intervals (block length about
  n^(1/3)) within a run, and, when a side has several runs, first draws whole runs with
  replacement. Both sides are resampled independently, ``resamples`` times. A run of
  more than 120 intervals is first merged into 120 units of consecutive intervals,
  which bounds the cost.
- The bootstrap gives each metric a two-sided p-value (how often the resampled ratio
  falls on the other side of 1); a Mann-Whitney U test on per-interval values gives a
  second one. Each family is corrected across all compared metrics together
  (Benjamini-Hochberg).
- The minimum detectable effect is the change the comparison would have found with 80%
  power at the 5% level: ``exp((1.96 + 0.84) * sd(log ratio)) - 1``.
- A metric is a *regression* or an *improvement* when both tests reject "no change"
  after correction and the estimated change is beyond the practical floor (default 5%);
  *no change* when the interval lies within the floor, or when nothing significant was
  found and the MDE is within the floor (a floor-sized change would have been seen), or
  when the change is significant but smaller than the floor; *inconclusive* otherwise
  (too few samples for the percentile, too noisy to see a floor-sized change, or the
  two tests disagree).
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

from ._resample import PERCENTILES, TOTAL, Arrays, FloatArray, Side, statistic
from ._stats import benjamini_hochberg, bootstrap_p, mann_whitney, smallest_mann_whitney

__all__ = [
    "IMPROVEMENT",
    "INCONCLUSIVE_CHANGE",
    "METRICS",
    "NO_CHANGE",
    "REGRESSION",
    "Comparison",
    "MetricComparison",
    "PhaseChange",
    "benjamini_hochberg",
    "compare_runs",
    "critical_metrics",
    "mann_whitney",
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
_Z80 = 0.841621
# Mann-Whitney on this many intervals a side can reach p < 0.001 (complete separation).
_MIN_INTERVALS = 8


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of one scope, candidate against base.

    Attributes:
        scope: ``"total"`` or an endpoint name.
        metric: one of :data:`METRICS`.
        base, candidate: the metric on each side (ms, a fraction, or req/s).
        ratio: candidate / base; ``low``, ``high`` its 95% bootstrap interval.
        p_value: the bootstrap's two-sided p-value, Benjamini-Hochberg adjusted.
        mw_p_value: the Mann-Whitney p-value on interval values, adjusted the same way.
        mde: the smallest relative change this comparison could detect (80% power).
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
    mw_p_value: float | None
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
            "mw_p_value": self.mw_p_value,
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
    raw: list[_Raw] = []
    notes: list[str] = []
    for scope in scopes:
        sides = (Side.of(base, scope), Side.of(candidate, scope))
        if not sides[0].intervals or not sides[1].intervals:
            notes.append(f"{scope}: no measured intervals on one side")
            continue
        raw.extend(_measure(scope, sides, resamples, rng))
    if not raw:
        raise ValueError("the two sides share no measured traffic to compare")
    boot_adjusted = benjamini_hochberg([r.p_value for r in raw])
    mw_adjusted = benjamini_hochberg([r.mw_p_value for r in raw])
    metrics = tuple(
        _judge(
            r,
            p,
            mw,
            floor=floor,
            alpha=alpha,
            critical=(r.scope, r.metric) in critical,
            tested=len(raw),
        )
        for r, p, mw in zip(raw, boot_adjusted, mw_adjusted, strict=True)
    )
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
class _Raw:
    scope: str
    metric: str
    base: float
    candidate: float
    ratio: float
    log_ratios: FloatArray
    p_value: float
    mw_p_value: float
    mw_floor: float
    enough: bool
    errorless: bool
    needed: int


def _needed(metric: str) -> int:
    """Requests a side needs for the metric to be estimable (the rule of evaluate())."""
    if metric not in PERCENTILES:
        return 1
    q = PERCENTILES[metric] / 100
    return math.ceil((_Z95**2) * q / (1 - q) + 1 / (1 - q))


def _measure(
    scope: str, sides: tuple[Side, Side], resamples: int, rng: np.random.Generator
) -> list[_Raw]:
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
    for metric in METRICS:
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
        replicates = [
            statistic(metric, a, values, w, **options) for a, w in zip(arrays, weights, strict=True)
        ]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratios = np.log(replicates[1]) - np.log(replicates[0])
        log_ratios = log_ratios[np.isfinite(log_ratios)]
        per_interval = [statistic(metric, a, values, None, **options) for a in arrays]
        out.append(
            _Raw(
                scope=scope,
                metric=metric,
                base=shown[0],
                candidate=shown[1],
                ratio=point[1] / point[0] if point[0] > 0 else math.nan,
                log_ratios=log_ratios,
                p_value=bootstrap_p(log_ratios),
                mw_p_value=mann_whitney(per_interval[0], per_interval[1]),
                mw_floor=smallest_mann_whitney(per_interval[0].size, per_interval[1].size),
                enough=requests >= _needed(metric) and requests > 0,
                errorless=metric == "error_ratio" and all(a.errors.sum() == 0 for a in arrays),
                needed=_needed(metric),
            )
        )
    return out


# -- verdicts ---------------------------------------------------------------------------
def _judge(
    raw: _Raw, p: float, mw: float, *, floor: float, alpha: float, critical: bool, tested: int
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
            mw_p_value=mw,
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
    if not raw.log_ratios.size or not math.isfinite(raw.ratio):
        return result(INCONCLUSIVE_CHANGE, f"no {raw.metric} measured on one side")
    ratio = raw.ratio
    low, high = (float(math.exp(v)) for v in np.quantile(raw.log_ratios, [0.025, 0.975]))
    spread = float(np.std(raw.log_ratios))
    mde = math.exp((_Z95 + _Z80) * spread) - 1
    values = {"ratio": ratio, "low": low, "high": high, "mde": mde}
    change = ratio - 1
    worse = change < 0 if raw.metric == "throughput" else change > 0
    ci = f"{_pct(low - 1)} to {_pct(high - 1)}"
    significant = p < alpha
    if significant and abs(change) > floor:
        direction = REGRESSION if worse else IMPROVEMENT
        # After the correction over ``tested`` metrics, Mann-Whitney needs roughly
        # p < alpha / tested; with fewer intervals it cannot get there at all.
        if mw >= alpha and raw.mw_floor * tested >= alpha:
            return result(
                INCONCLUSIVE_CHANGE,
                f"the bootstrap sees {_pct(change)} (95% CI {ci}, p={p:.3f}), but there are "
                "too few intervals for Mann-Whitney to confirm any change (at best "
                f"p={raw.mw_floor:.3f}): run longer, at least {_MIN_INTERVALS} intervals per side",
                **values,
            )
        if mw >= alpha:
            return result(
                INCONCLUSIVE_CHANGE,
                f"the bootstrap sees {_pct(change)} (95% CI {ci}, p={p:.3f}), "
                f"Mann-Whitney on interval values does not (p={mw:.3f})",
                **values,
            )
        return result(
            direction,
            f"{_pct(change)} (95% CI {ci}), beyond the {floor:.0%} floor; "
            f"p={p:.3f}, Mann-Whitney p={mw:.3f}",
            **values,
        )
    if 1 - floor <= low and high <= 1 + floor:
        return result(
            NO_CHANGE, f"{_pct(change)}; the 95% CI {ci} is within ±{floor:.0%}", **values
        )
    if significant:
        return result(
            NO_CHANGE,
            f"{_pct(change)} (95% CI {ci}) is significant but within the {floor:.0%} floor",
            **values,
        )
    if mde <= floor:
        return result(
            NO_CHANGE,
            f"{_pct(change)} (95% CI {ci}), not significant (p={p:.3f}); a change of "
            f"{mde:.1%} or more would have been detected",
            **values,
        )
    return result(
        INCONCLUSIVE_CHANGE,
        f"{_pct(change)} (95% CI {ci}), not significant (p={p:.3f}); too noisy to see "
        f"less than {mde:.1%}: the {floor:.0%} floor could be missed",
        **values,
    )


def _pct(value: float) -> str:
    return f"{value:+.1%}"
