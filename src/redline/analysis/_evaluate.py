"""Judging a run against its objectives: values, confidence, error budgets, burn rates.

The rules (documented in docs/slo.md):

- Only measured intervals count (warm-up is left out).
- Percentiles carry a 95% confidence interval from order statistics: the ranks
  ``n*q +- 1.96*sqrt(n*q*(1-q))`` of the merged histogram. An objective passes when
  the whole interval is on its side of the threshold, fails when the whole interval is
  on the other side, and is inconclusive otherwise; in particular a percentile whose
  upper rank lies beyond the last sample (a p99 from 40 requests) can never pass.
- Ratios (error rate, check pass rate, the SRE form) use the Wilson score interval
  the same way; a threshold of exactly 0 (``error_rate <= 0``) is judged on the count.
- Ratio objectives also spend an error budget: ``bad / (budget * events)`` over the
  run. Windows scaled to the run (long: a tenth of it, short: a sixth of the long one)
  slide over the intervals; the objective fails when some long window's bad ratio is,
  with 95% confidence, above ``burn_rate`` times the budget while the short window
  ending with it burns above that rate too (the SRE workbook's multiwindow rule). So a
  breach late in a long run is not diluted by the good part before it.
- Mean, min, max and rps are judged on their values; with no samples, inconclusive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from redline.core import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    EndpointInterval,
    Histogram,
    IntervalSnapshot,
    MetricInterval,
    Objective,
    Outcome,
    RunResult,
    Verdict,
)

__all__ = [
    "evaluate",
    "evaluate_window",
    "judged_histogram",
    "tail_counts",
    "wilson",
    "window_lengths",
]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class _Counts:
    """Good and all events of a ratio objective in one stretch of a run."""

    bad: int
    events: int


def window_lengths(intervals: int) -> tuple[int, int]:
    """Long and short burn-rate windows, in intervals, for a run of ``intervals``."""
    long = max(1, round(intervals / 10))
    return long, max(1, round(long / 6))


def evaluate(
    run: RunResult,
    objectives: Sequence[Objective],
    *,
    aborted: tuple[Objective, Verdict, float] | None = None,
) -> list[Verdict]:
    """Judge every objective on the run's measured intervals.

    Args:
        run: the run.
        objectives: what to judge.
        aborted: the breach that stopped the run (:attr:`AbortMonitor.breach`); that
            objective fails whatever the whole run's value.
    """
    measured = run.measured
    verdicts = [_judge(objective, measured, windows=True) for objective in objectives]
    if aborted is not None:
        rule, window, at = aborted
        for i, verdict in enumerate(verdicts):
            if verdict.objective == rule:
                verdicts[i] = replace(
                    verdict, outcome=FAIL, reason=f"stopped the run at {at:g} s: {window.reason}"
                )
    return verdicts


def evaluate_window(objective: Objective, intervals: Sequence[IntervalSnapshot]) -> Verdict:
    """Judge one objective on a stretch of intervals only (abort rules use this live)."""
    return _judge(objective, intervals, windows=False)


def _judge(
    objective: Objective, intervals: Sequence[IntervalSnapshot], *, windows: bool
) -> Verdict:
    if objective.is_ratio:
        return _judge_ratio(objective, intervals, windows=windows)
    if objective.scope == "metric":
        return _judge_metric(objective, intervals)
    parts = [_scoped(objective, i) for i in intervals]
    data = EndpointInterval.merged(p for p in parts if p is not None)
    if objective.metric == "rps":
        seconds = sum(i.duration_s for i in intervals)
        if seconds <= 0:
            return Verdict(objective, INCONCLUSIVE, None, "no measured time")
        value = data.requests / seconds
        ok = objective.holds(value)
        return Verdict(
            objective,
            PASS if ok else FAIL,
            value,
            f"{value:,.1f} req/s over {seconds:g} s, {_wanted(objective)}",
            samples=data.requests,
            margin=_margin(objective, value),
        )
    histogram = judged_histogram(objective, data)
    n = histogram.total_count
    if n == 0:
        what = f"no {objective.phase} phase timed" if objective.phase else "no responses"
        return Verdict(objective, INCONCLUSIVE, None, f"{what} from {objective.where}")
    if objective.metric == "percentile" and objective.percentile < 100:
        return _judge_percentile(objective, histogram)
    if objective.metric == "mean":
        value = histogram.mean / 1000
        half = Z95 * histogram.stddev / 1000 / math.sqrt(n)
        low, high = value - half, value + half
        return _by_interval(
            objective, value, low, high, n, f"{_phase(objective)}mean {value:.3f} ms"
        )
    value = (histogram.min if objective.metric == "min" else histogram.max) / 1000
    ok = objective.holds(value)
    label = _phase(objective) + ("min" if objective.metric == "min" else "max")
    return Verdict(
        objective,
        PASS if ok else FAIL,
        value,
        f"{label} {value:.3f} ms over {n:,} responses, {_wanted(objective)}",
        samples=n,
        margin=_margin(objective, value),
    )


def judged_histogram(objective: Objective, data: EndpointInterval) -> Histogram:
    """The latencies a latency objective is judged on: of a phase, or of whole requests."""
    if objective.phase:
        return data.phases.get(objective.phase) or Histogram()
    return data.latency


def tail_counts(run: RunResult, objective: Objective) -> list[tuple[int, int]]:
    """Per measured interval, in order: responses beyond a latency objective's bound, all."""
    bound = int(objective.threshold * 1000)
    pairs = []
    for interval in run.measured:
        data = _scoped(objective, interval)
        histogram = judged_histogram(objective, data) if data is not None else Histogram()
        total = histogram.total_count
        pairs.append((total - histogram.count_at_or_below(bound), total))
    return pairs


def _phase(objective: Objective) -> str:
    return f"{objective.phase} " if objective.phase else ""


def _judge_percentile(objective: Objective, histogram: Histogram) -> Verdict:
    n = histogram.total_count
    q = objective.percentile / 100
    value = histogram.value_at_percentile(objective.percentile) / 1000
    spread = Z95 * math.sqrt(n * q * (1 - q))
    low_rank = math.floor(n * q - spread)
    high_rank = math.ceil(n * q + spread)
    low = histogram.value_at_percentile(max(low_rank, 1) / n * 100) / 1000
    label = f"{_phase(objective)}p{objective.percentile:g} {value:.3f} ms"
    if high_rank > n:
        needed = math.ceil((Z95**2) * q / (1 - q) + 1 / (1 - q))
        if not objective.holds(low):
            return Verdict(
                objective,
                FAIL,
                value,
                f"{label}; even its 95% lower bound {low:.3f} ms breaks {_wanted(objective)}",
                samples=n,
                low=low,
                margin=_margin(objective, value),
            )
        return Verdict(
            objective,
            INCONCLUSIVE,
            value,
            f"{label} from {n:,} responses: too few to bound a p{objective.percentile:g} "
            f"(needs about {needed:,})",
            samples=n,
            low=low,
            margin=_margin(objective, value),
        )
    high = histogram.value_at_percentile(high_rank / n * 100) / 1000
    return _by_interval(objective, value, low, high, n, label)


def _by_interval(
    objective: Objective, value: float, low: float, high: float, n: int, label: str
) -> Verdict:
    worst, best = (high, low) if objective.op[0] == "<" else (low, high)
    ci = f"95% CI {objective.format(low)}-{objective.format(high)}"
    outcome: Outcome
    if objective.holds(worst):
        outcome, why = PASS, f"{label} ({ci}) meets {_wanted(objective)}"
    elif not objective.holds(best):
        outcome, why = FAIL, f"{label} ({ci}) breaks {_wanted(objective)}"
    else:
        outcome = INCONCLUSIVE
        why = f"{label}: its {ci} straddles {_wanted(objective)}; more samples would tell"
    return Verdict(
        objective,
        outcome,
        value,
        why,
        samples=n,
        low=low,
        high=high,
        margin=_margin(objective, value),
    )


# -- ratio objectives ----------------------------------------------------------------------
def _judge_ratio(
    objective: Objective, intervals: Sequence[IntervalSnapshot], *, windows: bool
) -> Verdict:
    series = [_counts(objective, i) for i in intervals]
    bad = sum(c.bad for c in series)
    events = sum(c.events for c in series)
    if events == 0:
        what = "check results" if objective.metric == "check_rate" else "requests"
        return Verdict(objective, INCONCLUSIVE, None, f"no {what} from {objective.where}")
    # The value is in the objective's own terms: a bad share for error_rate, good for others.
    good_terms = objective.metric != "error_rate"
    value = (events - bad) / events if good_terms else bad / events
    budget = objective.budget
    if budget == 0:  # "error_rate <= 0", "checks >= 100%": one bad event decides
        reason = f"{bad:,} bad of {events:,}, {_wanted(objective)}"
        return Verdict(objective, PASS if bad == 0 else FAIL, value, reason, samples=events)
    low_bad, high_bad = wilson(bad, events)
    low, high = (1 - high_bad, 1 - low_bad) if good_terms else (low_bad, high_bad)
    label = f"{objective.format(value)} of {events:,}"
    verdict = _by_interval(objective, value, low, high, events, label)
    spent = bad / (budget * events)
    burn = {"run": spent}
    outcome, reason, window = verdict.outcome, verdict.reason, None
    if windows and outcome != FAIL:
        breach = _window_breach(objective, intervals, series)
        if breach is None:
            burn.update(_worst_burns(series, budget))
        else:
            window, long_burn, short_burn = breach
            burn.update(long=long_burn, short=short_burn)
            outcome = FAIL
            reason = (
                f"{label} over the run, but {window[0]:g}-{window[1]:g} s burned the error "
                f"budget {long_burn:.1f}x as fast as allowed (limit {objective.burn_rate:g}x; "
                f"last part {short_burn:.1f}x)"
            )
    return replace(
        verdict,
        outcome=outcome,
        reason=reason,
        budget_spent=spent,
        burn_rates=burn,
        window=window,
    )


def _window_sums(series: Sequence[_Counts], length: int) -> list[tuple[int, int, int]]:
    """``(end, bad, events)`` of every window of ``length`` intervals.

    Prefix sums: a soak of hours costs one pass, not one per window.
    """
    bad = [0, *itertools.accumulate(c.bad for c in series)]
    events = [0, *itertools.accumulate(c.events for c in series)]
    return [
        (end, bad[end] - bad[end - length], events[end] - events[end - length])
        for end in range(length, len(series) + 1)
    ]


def _window_breach(
    objective: Objective, intervals: Sequence[IntervalSnapshot], series: Sequence[_Counts]
) -> tuple[tuple[float, float], float, float] | None:
    long, short = window_lengths(len(series))
    limit = objective.burn_rate * objective.budget
    tails = {end: (bad, events) for end, bad, events in _window_sums(series, short)}
    worst: tuple[tuple[float, float], float, float] | None = None
    for end, bad, events in _window_sums(series, long):
        if events == 0 or bad / events <= limit or wilson(bad, events)[0] <= limit:
            continue
        tail_bad, tail_events = tails[end]
        if tail_events == 0 or tail_bad / tail_events <= limit:
            continue
        long_burn = bad / events / objective.budget
        if worst is None or long_burn > worst[1]:
            start_s = intervals[end - long].start_s
            end_s = intervals[end - 1].start_s + intervals[end - 1].duration_s
            worst = ((start_s, end_s), long_burn, tail_bad / tail_events / objective.budget)
    return worst


def _worst_burns(series: Sequence[_Counts], budget: float) -> dict[str, float]:
    out = {}
    for key, length in zip(("long", "short"), window_lengths(len(series)), strict=True):
        rates = [bad / events / budget for _, bad, events in _window_sums(series, length) if events]
        if rates:
            out[key] = max(rates)
    return out


def _counts(objective: Objective, interval: IntervalSnapshot) -> _Counts:
    if objective.metric == "check_rate":
        checks = interval.checks
        if objective.scope == "check":
            passes, fails = checks.get(objective.scope_name, (0, 0))
        else:
            passes = sum(p for p, _ in checks.values())
            fails = sum(f for _, f in checks.values())
        return _Counts(bad=fails, events=passes + fails)
    # Counts add up across endpoints, so all traffic needs no merged histogram here.
    parts = _parts(objective, interval)
    requests = sum(p.requests for p in parts)
    errors = sum(p.errors for p in parts)
    if objective.metric == "error_rate":
        return _Counts(bad=errors, events=requests)
    # good_ratio: a request is good when it succeeded within the bound. Error responses
    # count as bad whatever their latency; since a slow error cannot be told apart from
    # a slow success, the bad count is capped by the requests.
    bound_us = int(objective.threshold * 1000)
    slow = sum(p.latency.total_count - p.latency.count_at_or_below(bound_us) for p in parts)
    return _Counts(bad=min(requests, errors + slow), events=requests)


def _parts(objective: Objective, interval: IntervalSnapshot) -> list[EndpointInterval]:
    if objective.scope == "total":
        return list(interval.endpoints.values())
    part = _scoped(objective, interval)
    return [part] if part is not None else []


def _scoped(objective: Objective, interval: IntervalSnapshot) -> EndpointInterval | None:
    if objective.scope == "total":
        return interval.total()
    if objective.scope == "tags":  # a sub-metric: the endpoints its tags select
        parts = [interval.endpoints[n] for n in objective.endpoints if n in interval.endpoints]
        status = dict(objective.tags).get("status")
        if status is not None:  # and of their responses, those of one status
            parts = [part.with_status(int(status)) for part in parts]
        return EndpointInterval.merged(parts) if parts else None
    table = {
        "endpoint": interval.endpoints,
        "group": interval.groups,
        "scenario": interval.scenarios,
    }.get(objective.scope, {})
    return table.get(objective.scope_name)


def _judge_metric(objective: Objective, intervals: Sequence[IntervalSnapshot]) -> Verdict:
    """A custom metric's statistic over the intervals, against its bound.

    No confidence interval: the metric's values are what the scenarios counted, not a
    sample of something larger.
    """
    name = objective.scope_name
    records = [i.metrics[name] for i in intervals if name in i.metrics]
    if not records and objective.metric == "count":  # nothing counted is a count: zero
        ok = objective.holds(0.0)
        return Verdict(
            objective, PASS if ok else FAIL, 0.0,
            f"{name} recorded nothing: count 0 {'meets' if ok else 'breaks'} "
            f"{objective.text.split('}', 1)[-1].strip()!r}",
            samples=0, margin=_margin(objective, 0.0),
        )  # fmt: skip
    if not records:
        return Verdict(objective, INCONCLUSIVE, None, f"metric {name!r} recorded nothing")
    data = MetricInterval.merged(records)
    seconds = sum(i.duration_s for i in intervals)
    value = data.value(objective.metric, seconds=seconds, percentile=objective.percentile)
    ok = objective.holds(value)
    shown = objective.text.split("}", 1)[-1].strip()
    return Verdict(
        objective,
        PASS if ok else FAIL,
        value,
        f"{name} {objective.format(value)} from {data.count:,} records "
        f"{'meets' if ok else 'breaks'} {shown!r}",
        samples=data.count,
        margin=_margin(objective, value),
    )


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion ``k / n``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At k = 0 or k = n the bound is exact; rounding must not move it off 0 or 1.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def _margin(objective: Objective, value: float) -> float | None:
    reference = objective.bound
    if reference == 0:
        return None
    if objective.op[0] == "<":
        return (reference - value) / reference
    return (value - reference) / reference


def _wanted(objective: Objective) -> str:
    if objective.metric == "good_ratio":
        return f"{objective.target * 100:g}% of requests within {objective.threshold:g} ms"
    return f"{objective.text!r}"
