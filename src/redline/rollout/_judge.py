"""Canary judgement: a baseline cohort against a canary cohort, metric by metric.

The inference is the comparison's own (``redline.analysis``: a time-keeping bootstrap,
Student's t on the log ratio, Benjamini-Hochberg, intervals adjusted to match), so a
judgement and ``redline compare`` on the same data never disagree. On top of it, as
Kayenta does, each metric is classified:

- ``high`` / ``low``: the canary is higher / lower, its interval excludes "no change"
  and the change is beyond the metric's floor;
- ``pass``: neither (no change, or a change the data cannot show);
- ``nodata``: a cohort has too few requests to estimate the metric.

A metric *fails* when it is ``nodata``, or ``high``/``low`` in its bad direction (higher
latency and errors, lower throughput; ``either`` fails both). The score is the weighted
share of metrics that did not fail, 0-100. The verdict is ``fail`` when a critical
metric failed, a cohort has fewer requests than the policy's minimum, or the score is
below ``marginal``; ``marginal`` below ``pass``; else ``pass``. No data is never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redline.analysis import Measured, MetricComparison, Side, decide, measure_sides
from redline.core import EndpointInterval

__all__ = [
    "FAIL",
    "HIGH",
    "LOW",
    "MARGINAL",
    "NODATA",
    "PASS",
    "JudgePolicy",
    "Judgement",
    "MetricJudgement",
    "MetricPolicy",
    "cohort_of",
    "judge",
]

PASS = "pass"
"""A metric's classification, and a judgement's verdict: nothing wrong found."""
HIGH = "high"
"""A metric's classification: the canary is higher beyond noise and the floor."""
LOW = "low"
"""A metric's classification: the canary is lower beyond noise and the floor."""
NODATA = "nodata"
"""A metric's classification: a cohort has too few requests to estimate it."""
MARGINAL = "marginal"
"""A judgement's verdict: the score is between the marginal and pass thresholds."""
FAIL = "fail"
"""A judgement's verdict: a critical metric failed, no data, or a low score."""

_DIRECTIONS = ("increase", "decrease", "either")


@dataclass(frozen=True)
class MetricPolicy:
    """How one metric is judged.

    Attributes:
        metric: ``p50``, ``p95``, ``p99``, ``error_ratio``, ``throughput``, or
            ``cpu_per_request`` (the target's CPU-seconds per request: its saturation,
            when both cohorts' runs watched it).
        bad: the direction that fails: ``increase``, ``decrease`` or ``either``
            (default: ``decrease`` for throughput, ``increase`` for the rest).
        weight: its share of the score.
        critical: one failure fails the judgement, whatever the score.
        floor: the smallest relative change that matters (0.1: 10%).
    """

    metric: str
    bad: str = ""
    weight: float = 1.0
    critical: bool = False
    floor: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {self.metric!r}")
        bad = self.bad or ("decrease" if self.metric == "throughput" else "increase")
        if bad not in _DIRECTIONS:
            raise ValueError(f"bad: expected one of {', '.join(_DIRECTIONS)}, got {bad!r}")
        object.__setattr__(self, "bad", bad)
        if not self.weight > 0:
            raise ValueError(f"weight: expected a positive number, got {self.weight}")
        if not 0 < self.floor < 1:
            raise ValueError(f"floor: expected a fraction between 0 and 1, got {self.floor}")


_METRICS = ("p50", "p95", "p99", "error_ratio", "throughput", "cpu_per_request")


@dataclass(frozen=True)
class JudgePolicy:
    """What a judgement measures and what it takes to pass.

    Attributes:
        metrics: the metrics judged (default: p50, p95, p99 critical, error ratio
            critical, weighted as Kayenta's default groups would be).
        min_requests: each cohort needs at least this many requests, or the judgement
            fails (the canary receiving no traffic is a failure, never a pass).
        pass_score, marginal_score: Kayenta's thresholds (0-100).
        alpha: the significance level, after correction over the metrics (0.02:
            Kayenta's 98% confidence).
    """

    metrics: tuple[MetricPolicy, ...] = (
        MetricPolicy("p50"),
        MetricPolicy("p95"),
        MetricPolicy("p99", critical=True),
        MetricPolicy("error_ratio", critical=True),
    )
    min_requests: int = 100
    pass_score: float = 95.0
    marginal_score: float = 75.0
    alpha: float = 0.02

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("metrics: expected at least one metric to judge")
        names = [m.metric for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metrics: each metric once, got {', '.join(names)}")
        if self.min_requests < 1:
            raise ValueError(f"min_requests: expected at least 1, got {self.min_requests}")
        if not 0 <= self.marginal_score <= self.pass_score <= 100:
            raise ValueError(
                "scores: expected 0 <= marginal <= pass <= 100, got "
                f"marginal {self.marginal_score}, pass {self.pass_score}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "policy") -> JudgePolicy:
        """A policy from its YAML/JSON form; errors name ``where`` and the key.

        Raises:
            ValueError: an unknown key or a bad value, named by its path.
        """
        known = {"metrics", "min_requests", "pass", "marginal", "alpha"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"{where}: unknown key {sorted(unknown)[0]!r} (expected {', '.join(sorted(known))})"
            )
        defaults = cls()
        metrics = defaults.metrics
        if "metrics" in data:
            items = data["metrics"]
            if not isinstance(items, list):
                raise ValueError(f"{where}.metrics: expected a list of metrics")
            metrics = tuple(
                _metric_policy(item, f"{where}.metrics[{i}]") for i, item in enumerate(items)
            )
        try:
            return cls(
                metrics=metrics,
                min_requests=int(data.get("min_requests", defaults.min_requests)),
                pass_score=float(data.get("pass", defaults.pass_score)),
                marginal_score=float(data.get("marginal", defaults.marginal_score)),
                alpha=float(data.get("alpha", defaults.alpha)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None


def _metric_policy(item: object, where: str) -> MetricPolicy:
    if isinstance(item, str):
        item = {"metric": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a metric name or a mapping with 'metric'")
    known = {"metric", "bad", "weight", "critical", "floor"}
    unknown = set(item) - known
    if unknown:
        raise ValueError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (expected {', '.join(sorted(known))})"
        )
    if "metric" not in item:
        raise ValueError(f"{where}: 'metric' is required")
    try:
        return MetricPolicy(
            metric=str(item["metric"]),
            bad=str(item.get("bad", "")),
            weight=float(item.get("weight", 1.0)),
            critical=bool(item.get("critical", False)),
            floor=float(item.get("floor", 0.05)),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class MetricJudgement:
    """One metric's classification, with the numbers it was read from."""

    metric: str
    classification: str
    failed: bool
    critical: bool
    weight: float
    bad: str
    baseline: float | None
    canary: float | None
    ratio: float | None
    low: float | None
    high: float | None
    mde: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "metric": self.metric,
            "classification": self.classification,
            "failed": self.failed,
            "critical": self.critical,
            "weight": self.weight,
            "bad": self.bad,
            "baseline": self.baseline,
            "canary": self.canary,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "mde": self.mde,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Judgement:
    """A canary judged against its baseline: a verdict, a score and each metric."""

    verdict: str
    score: float
    metrics: tuple[MetricJudgement, ...]
    level: float
    requests: Mapping[str, int]
    reasons: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """Whether the verdict is ``pass``."""
        return self.verdict == PASS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``redline judge --json``, the hooks' answers)."""
        return {
            "verdict": self.verdict,
            "score": self.score,
            "passed": self.passed,
            "level": self.level,
            "requests": dict(self.requests),
            "reasons": list(self.reasons),
            "metrics": [m.to_dict() for m in self.metrics],
        }


def judge(
    baseline: Side,
    canary: Side,
    policy: JudgePolicy | None = None,
    *,
    resamples: int = 2000,
    seed: int | None = 0,
) -> Judgement:
    """Judge ``canary`` against ``baseline`` (one scope: all of each cohort's traffic).

    Args:
        baseline: the baseline cohort's intervals (``Side.of(runs, "total")`` for stored
            runs, or built from a Prometheus range query).
        canary: the canary cohort's.
        policy: the metrics, weights and thresholds (default :class:`JudgePolicy`).
        resamples: bootstrap resamples per cohort.
        seed: the bootstrap's seed (fixed by default: the same data, the same verdict).
    """
    policy = policy or JudgePolicy()
    requests = {"baseline": _requests(baseline), "canary": _requests(canary)}
    reasons = [
        f"the {name} cohort has {count:,} requests, below the minimum of {policy.min_requests:,}"
        for name, count in requests.items()
        if count < policy.min_requests
    ]
    by_name = {m.metric: m for m in policy.metrics}
    measured: list[Measured] = []
    if not reasons:
        measured, _ = measure_sides(
            {"total": (baseline, canary)},
            resamples=resamples,
            rng=np.random.default_rng(seed),
            metrics=list(by_name),
        )
    # Each metric's floor applies to its own verdict: decide per floor group, with the
    # correction over all metrics (the level is shared, as the adjustment is).
    level = 1 - policy.alpha
    found: dict[str, MetricComparison] = {}
    for floor in sorted({m.floor for m in policy.metrics}):
        level, decided = decide(measured, floor=floor, alpha=policy.alpha)
        for one in decided:
            if by_name[one.metric].floor == floor:
                found[one.metric] = one
    metrics = []
    for item in policy.metrics:
        metrics.append(_classify(item, found.get(item.metric), requests))
    total = sum(m.weight for m in metrics)
    score = 100 * sum(m.weight for m in metrics if not m.failed) / total
    critical = [m for m in metrics if m.failed and m.critical]
    reasons += [f"critical metric {m.metric} failed: {m.reason}" for m in critical]
    if reasons or score < policy.marginal_score:
        verdict = FAIL
        if not reasons:
            reasons.append(
                f"score {score:.0f} is below the marginal threshold {policy.marginal_score:g}"
            )
    elif score < policy.pass_score:
        verdict = MARGINAL
        reasons.append(f"score {score:.0f} is below the pass threshold {policy.pass_score:g}")
    else:
        verdict = PASS
    return Judgement(
        verdict=verdict,
        score=0.0 if requests["canary"] < policy.min_requests else score,
        metrics=tuple(metrics),
        level=level,
        requests=requests,
        reasons=tuple(reasons),
    )


def _requests(side: Side) -> int:
    return sum(i.requests for i in side.intervals)


def _classify(
    item: MetricPolicy, found: MetricComparison | None, requests: Mapping[str, int]
) -> MetricJudgement:
    def result(classification: str, reason: str) -> MetricJudgement:
        failed = classification == NODATA or (
            classification in (HIGH, LOW)
            and (item.bad == "either" or (classification == HIGH) == (item.bad == "increase"))
        )
        return MetricJudgement(
            metric=item.metric,
            classification=classification,
            failed=failed,
            critical=item.critical,
            weight=item.weight,
            bad=item.bad,
            baseline=None if found is None else found.base,
            canary=None if found is None else found.candidate,
            ratio=None if found is None else found.ratio,
            low=None if found is None else found.low,
            high=None if found is None else found.high,
            mde=None if found is None else found.mde,
            reason=reason,
        )

    if found is None:
        low = min(requests.values())
        return result(NODATA, f"not measured: a cohort has {low:,} requests")
    if found.ratio is None or found.low is None or found.high is None:
        if found.reason == "no errors on either side":
            return result(PASS, found.reason)
        return result(NODATA, found.reason)
    beyond = abs(found.ratio - 1) > item.floor
    if found.low > 1 and beyond:
        return result(HIGH, found.reason)
    if found.high < 1 and beyond:
        return result(LOW, found.reason)
    return result(PASS, found.reason)


def cohort_of(intervals: Sequence[EndpointInterval], seconds: Sequence[float]) -> Side:
    """A cohort from endpoint intervals and their lengths (one run of consecutive steps)."""
    return Side(
        runs=(tuple(intervals),) if intervals else (),
        seconds=(tuple(seconds),) if intervals else (),
        scheduled=(tuple(0 for _ in intervals),) if intervals else (),
        open_model=False,
    )
