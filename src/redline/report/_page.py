"""What the HTML report and the live dashboard show, as plain JSON-ready data.

The page's script draws everything from this one document, so the report (the document
written into the file) and the dashboard (the document sent every second) are the same
page. Long runs are merged into at most :data:`MAX_POINTS` time steps (exact merges of
consecutive intervals), which keeps an hour-long report well under a megabyte.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from redline.analysis import Comparison, fault_impacts
from redline.core import (
    EndpointInterval,
    EndpointSummary,
    Histogram,
    IntervalSnapshot,
    LoadSummary,
    MetricInterval,
    RunResult,
    TargetReport,
    TraceReport,
    Verdict,
    bucket_values,
    format_duration,
)

from ._target_page import target_data
from ._verdicts import budget_text, interval_text

__all__ = ["MAX_POINTS", "SPECTRUM", "TOTAL", "StepCache", "page_data", "step_size"]

MAX_POINTS = 600
"""The most time steps a chart gets; longer runs merge consecutive intervals."""

TOTAL = "all"
"""The name the page gives all traffic together (endpoint names are the plan's)."""

SPECTRUM = tuple(100.0 * (1.0 - 10.0 ** (-i / 20)) for i in range(101))
"""Percentiles of the spectrum: 0 to 99.999, evenly spaced in -log10(1 - p)."""

_LATENCY_LINES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def page_data(
    result: RunResult,
    verdicts: Sequence[Verdict] = (),
    *,
    meta: Mapping[str, Any] | None = None,
    baseline: RunResult | None = None,
    comparison: Comparison | None = None,
    live: Mapping[str, Any] | None = None,
    cache: StepCache | None = None,
    search: Mapping[str, Any] | None = None,
    target: TargetReport | None = None,
    baseline_target: TargetReport | None = None,
    traces: TraceReport | None = None,
) -> dict[str, Any]:
    """Everything the page draws of ``result`` (and of ``baseline``, overlaid).

    Args:
        result: a finished run, or a running one (its intervals so far).
        verdicts: the verdicts on the plan's objectives.
        meta: where the run came from (a stored run's ``meta``: labels, git commit, host).
        baseline: a run to overlay on the charts.
        comparison: the comparison of ``result`` with ``baseline``, as a table.
        live: for the dashboard: ``state``, ``elapsed_s``, ``total_s``, ``stage``.
        cache: steps merged for an earlier document of the same run, to reuse.
        search: a redline search (``Redline.to_dict()``) to draw as a latency-throughput
            curve above the run (the run is then one of its steps).
        target: what was seen of the target (saturation charts, USE table, flamegraph).
        baseline_target: the baseline's, for a differential flamegraph.
        traces: what the run's traces say (the attribution table, waterfalls).
    """
    cache = cache or StepCache()
    names = result.endpoint_names()
    steps = cache.steps(result)
    measured = _measured(steps, names)
    data: dict[str, Any] = {
        "run": _header(result, meta or {}),
        "generator": result.generator().to_dict(),
        "verdicts": [_verdict(v) for v in verdicts],
        "windows": _windows(result),
        "series": _series(steps, names, step_size(result)),
        "distribution": _distribution(measured),
        "endpoints": _endpoint_rows(measured, result.duration_s),
        "steps": _steps(result),
        "workloads": _workloads(result),
        "metrics": [
            {"name": name, **record.summary(seconds=result.duration_s)}
            for name, record in sorted(result.metrics().items())
        ],
        "metric_series": _metric_series(result),
        "checks": [
            {"name": name, "passed": passed, "failed": failed}
            for name, (passed, failed) in sorted(
                result.checks().items(), key=lambda item: (-item[1][1], item[0])
            )
        ],
        "exceptions": [
            {"scenario": scenario, "type": kind, "count": count}
            for scenario, kinds in result.exceptions().items()
            for kind, count in sorted(kinds.items(), key=lambda item: -item[1])
        ],
        "tracebacks": list(result.tracebacks),
        "notes": list(result.notes),
        "faults": _faults(result),
        "live": dict(live) if live is not None else None,
    }
    if baseline is not None:
        base_names = baseline.endpoint_names()
        base_steps = StepCache().steps(baseline)
        data["baseline"] = {
            "run": _header(baseline, {}),
            "series": _series(base_steps, base_names, step_size(baseline)),
            "distribution": _distribution(_measured(base_steps, base_names)),
        }
    if comparison is not None:
        data["comparison"] = _comparison(comparison)
    if search is not None:
        data["search"] = dict(search)
    if target is not None:
        data["target"] = target_data(target, result, baseline=baseline_target)
    if traces is not None:
        data["traces"] = {
            "attribution": traces.to_dict()["attribution"],
            "waterfalls": traces.to_dict()["waterfalls"],
            "counts": dict(traces.counts),
        }
    return data


def _header(result: RunResult, meta: Mapping[str, Any]) -> dict[str, Any]:
    plan = result.plan
    return {
        "id": result.id,
        "plan": plan.name,
        "target": plan.target,
        "load": _load_text(plan.load),
        "started_at": result.started_at,
        "duration_s": result.duration_s,
        "duration": format_duration(result.duration_s) if result.duration_s else "0s",
        "warmup_s": plan.warmup_s,
        "stop_reason": result.stop_reason,
        "complete": result.complete,
        "workers": result.workers,
        "open_model": result.open_model,
        "labels": dict(meta.get("labels") or {}),
        "git_commit": meta.get("git_commit"),
        "git_dirty": meta.get("git_dirty"),
        "host": meta.get("host") or "",
        "version": meta.get("version") or "",
    }


def _load_text(load: LoadSummary) -> str:
    """The load model in a line: ``open, poisson arrivals: 100/s for 3s, 200/s for 4s``."""
    model = load.model
    unit = "/s" if model == "open" else " users"
    parts = [
        f"{stage.target:,.4g}{unit} for {format_duration(stage.duration)}" for stage in load.stages
    ]
    fixed = load.rate if model == "open" else load.vus
    if not parts and fixed is not None:
        parts.append(f"{fixed:,.4g}{unit}")
    arrivals = f", {load.arrivals} arrivals" if load.arrivals else ""
    shape = ", ".join(parts)
    return f"{model}{arrivals}: {shape}" if shape else model


def _verdict(verdict: Verdict) -> dict[str, Any]:
    o = verdict.objective
    return {
        "name": o.name,
        "objective": o.text,
        "scope": o.where,
        "outcome": verdict.outcome,
        "value": verdict.value,
        "value_text": o.format(verdict.value),
        "bound_text": f"{o.op} {o.format(o.bound)}",
        "interval_text": interval_text(verdict),
        "budget_text": budget_text(verdict),
        "reason": verdict.reason,
    }


def _windows(result: RunResult) -> list[dict[str, Any]]:
    """Shaded spans of the time charts: the warm-up, a spike, and any fault windows."""
    out: list[dict[str, Any]] = []
    warm = [i for i in result.intervals if i.warmup]
    if warm:
        end = max(i.start_s + i.duration_s for i in warm)
        out.append({"kind": "warmup", "label": "warm-up", "start_s": 0.0, "end_s": end})
    shape = result.plan.shape
    if shape is not None and shape.type == "spike":
        start = shape.at_s or 0.0
        end = start + (shape.for_s or 0.0)
        label = f"spike x{shape.multiple if shape.multiple is not None else '?'}"
        out.append({"kind": "spike", "label": label, "start_s": start, "end_s": end})
    for fault in result.plan.faults:
        out.append(
            {
                "kind": "fault",
                "label": fault.name or fault.type or "fault",
                "start_s": fault.at_s,
                "end_s": fault.at_s + fault.for_s,
            }
        )
    return out


def step_size(result: RunResult) -> int:
    """How many intervals make one step, so that at most :data:`MAX_POINTS` remain.

    Warm-up and measured intervals never share a step, which costs one step at most.
    """
    count = len(result.intervals)
    warm = any(i.warmup for i in result.intervals)
    return max(1, math.ceil(count / (MAX_POINTS - 1 if warm else MAX_POINTS)))


@dataclass(frozen=True)
class _Step:
    """Consecutive intervals merged: one point of the time charts."""

    end_s: float
    seconds: float
    warmup: bool
    endpoints: dict[str, EndpointInterval]
    total: EndpointInterval
    sent: int
    target_rps: float | None
    latency: dict[str, dict[str, float | None]]


class StepCache:
    """Merged steps kept from one document to the next.

    The dashboard makes a document each second of a run; with a cache, each one merges
    only the intervals that arrived since the last, not the whole run again.
    """

    def __init__(self) -> None:
        """An empty cache."""
        self._steps: dict[tuple[int, int, int], _Step] = {}

    def steps(self, result: RunResult) -> list[_Step]:
        """The run's steps (warm-up and measured intervals never share one)."""
        names = result.endpoint_names()
        size = step_size(result)
        kept: dict[tuple[int, int, int], _Step] = {}
        out = []
        for part in (
            [i for i in result.intervals if i.warmup],
            [i for i in result.intervals if not i.warmup],
        ):
            for first in range(0, len(part), size):
                chunk = part[first : first + size]
                key = (chunk[0].index, chunk[-1].index, len(names))
                step = self._steps.get(key) or _step(chunk, names)
                kept[key] = step
                out.append(step)
        self._steps = kept
        return out


def _step(intervals: Sequence[IntervalSnapshot], names: Sequence[str]) -> _Step:
    endpoints = {
        name: _merged([i.endpoints[name] for i in intervals if name in i.endpoints])
        for name in names
    }
    rates = [i.generator.target_rps for i in intervals if i.generator.target_rps is not None]
    total = _merged(list(endpoints.values()))
    return _Step(
        end_s=intervals[-1].start_s + intervals[-1].duration_s,
        seconds=sum(i.duration_s for i in intervals),
        warmup=intervals[0].warmup,
        endpoints=endpoints,
        total=total,
        sent=sum(i.generator.sent for i in intervals),
        target_rps=sum(rates) / len(rates) if rates else None,
        latency={name: _latency(data) for name, data in [(TOTAL, total), *endpoints.items()]},
    )


def _merged(items: list[EndpointInterval]) -> EndpointInterval:
    """The sum of ``items`` (one item as it is: no copy)."""
    return items[0] if len(items) == 1 else EndpointInterval.merged(items)


def _ms(histogram: Histogram, percentiles: Sequence[float]) -> list[float | None]:
    if not histogram.total_count:
        return [None] * len(percentiles)
    return [v / 1000 for v in histogram.values_at_percentiles(list(percentiles))]


def _latency(data: EndpointInterval) -> dict[str, float | None]:
    if not data.requests and not data.latency.total_count:
        return dict.fromkeys(("p50", "p90", "p99", "max"))
    values = _ms(data.latency, [*(p for _, p in _LATENCY_LINES), 100.0])
    return {name: value for name, value in zip(("p50", "p90", "p99", "max"), values, strict=True)}


def _series(steps: Sequence[_Step], names: Sequence[str], merged: int) -> dict[str, Any]:
    """Per time step: latency lines per endpoint and in all, rates, errors by kind."""
    latency: dict[str, dict[str, list[float | None]]] = {
        name: {line: [] for line in ("p50", "p90", "p99", "max")} for name in [TOTAL, *names]
    }
    errors: dict[str, list[int]] = {}
    for index, step in enumerate(steps):
        for name, lines in step.latency.items():
            for line, value in lines.items():
                latency[name][line].append(value)
        kinds = {f"HTTP {code}": n for code, n in step.total.status.items() if code >= 400}
        kinds.update(step.total.error_classes)
        for kind, count in kinds.items():
            errors.setdefault(kind, [0] * len(steps))[index] += count
    target = [s.target_rps for s in steps]
    return {
        "t": [s.end_s for s in steps],
        "latency": latency,
        "requests": [s.total.requests for s in steps],
        "achieved": [s.total.requests / s.seconds if s.seconds else 0.0 for s in steps],
        "sent": [s.sent / s.seconds if s.seconds else 0.0 for s in steps],
        "target": target if any(v is not None for v in target) else None,
        "errors": dict(sorted(errors.items())),
        "merged": merged,
    }


_METRIC_LINES = {"gauge": ("value",), "trend": ("p50", "p99"), "counter": ("per s",),
                 "rate": ("rate",)}  # fmt: skip


def _metric_line(record: MetricInterval, line: str, seconds: float) -> float:
    if line == "value":
        return record.last
    if line in ("p50", "p99"):
        return record.value("percentile", seconds=seconds, percentile=float(line[1:]))
    if line == "rate":
        return record.value("rate", seconds=seconds)
    return record.total / seconds if seconds else 0.0


def _metric_series(result: RunResult) -> list[dict[str, Any]]:
    """Each custom metric over the run, interval by interval.

    A gauge's value (a queue's depth), a trend's p50 and p99 (job latency), a counter's
    rate; None where an interval recorded nothing.
    """
    names = sorted({name for i in result.intervals for name in i.metrics})
    out = []
    for name in names:
        kind = next(i.metrics[name].kind for i in result.intervals if name in i.metrics)
        lines: dict[str, list[float | None]] = {line: [] for line in _METRIC_LINES[kind]}
        for interval in result.intervals:
            record = interval.metrics.get(name)
            for line, values in lines.items():
                values.append(
                    None if record is None else _metric_line(record, line, interval.duration_s)
                )
        out.append({"name": name, "kind": kind,
                    "x": [i.start_s + i.duration_s for i in result.intervals],
                    "lines": lines})  # fmt: skip
    return out


def _measured(steps: Sequence[_Step], names: Sequence[str]) -> dict[str, EndpointInterval]:
    """All measured traffic and each endpoint's, merged over the run."""
    measured = [s for s in steps if not s.warmup]
    per_name = {name: _merged([s.endpoints[name] for s in measured]) for name in names}
    total = _merged([s.total for s in measured]) if measured else EndpointInterval()
    return {TOTAL: total, **per_name}


def _distribution(measured: Mapping[str, EndpointInterval]) -> dict[str, Any]:
    """The percentile spectrum and a log-binned histogram, in all and per endpoint."""
    return {
        "percentiles": list(SPECTRUM),
        "spectrum": {
            name: _ms(data.latency, SPECTRUM)
            for name, data in measured.items()
            if data.latency.total_count
        },
        "histogram": _bins(measured[TOTAL].latency),
    }


def _bins(histogram: Histogram, per_decade: int = 10) -> dict[str, list[float]]:
    """Counts in log-spaced bins (``per_decade`` a decade): edges in ms, one count per bin."""
    indices, counts = histogram.to_sparse()
    if not counts.size:
        return {"edges": [], "counts": []}
    values = np.maximum(bucket_values(indices).astype(np.float64) / 1000, 1e-3)
    low = math.floor(math.log10(values.min()) * per_decade)
    high = math.floor(math.log10(values.max()) * per_decade) + 1
    edges = 10.0 ** (np.arange(low, high + 1) / per_decade)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    binned = np.bincount(which, weights=counts, minlength=len(edges) - 1)
    return {
        "edges": [float(f"{e:.6g}") for e in edges],
        "counts": [int(c) for c in binned],
    }


def _endpoint_rows(
    measured: Mapping[str, EndpointInterval], seconds: float
) -> list[dict[str, Any]]:
    rows = []
    for name, data in measured.items():
        summary = EndpointSummary.of(data, seconds=seconds)
        latency = summary.latency_ms
        rows.append(
            {
                "name": name,
                "requests": summary.requests,
                "errors": summary.errors,
                "error_rate": summary.error_rate,
                "rps": summary.rps,
                **{key: latency.get(key) for key in ("p50", "p90", "p99", "p999", "max")},
                "phases": {
                    phase: {"p50": values["p50"], "p99": values["p99"]}
                    for phase, values in summary.phases_ms.items()
                },
            }
        )
    return rows


def _workloads(result: RunResult) -> list[dict[str, Any]]:
    """The plan's scenarios (k6's), each on its own, in the plan's order."""
    measured = result.workloads()
    rows = []
    for workload in result.plan.workloads:
        summary, iterations = measured[workload.name]
        rows.append(
            {
                "name": workload.name,
                "executor": workload.executor,
                "start_s": workload.start_time_s,
                "end_s": workload.start_time_s + workload.duration_s,
                "iterations": iterations,
                "requests": summary.requests,
                "errors": summary.errors,
                "p50": summary.latency_ms.get("p50") if summary.requests else None,
                "p99": summary.latency_ms.get("p99") if summary.requests else None,
            }
        )
    return rows


def _steps(result: RunResult) -> list[dict[str, Any]]:
    """Groups and scenarios, slowest (by p99) first."""
    rows = []
    for kind, steps in (("group", result.groups()), ("scenario", result.scenarios())):
        for name, step in steps.items():
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    "count": step.count,
                    "failures": step.failures,
                    "p50": step.latency_ms.get("p50"),
                    "p99": step.latency_ms.get("p99"),
                    "max": step.latency_ms.get("max"),
                }
            )
    return sorted(rows, key=lambda row: -(row["p99"] or 0.0))


def _comparison(comparison: Comparison) -> dict[str, Any]:
    return {
        "base": list(comparison.base),
        "candidate": list(comparison.candidate),
        "floor": comparison.floor,
        "level": comparison.level,
        "notes": list(comparison.notes),
        "metrics": [
            {
                "name": m.name,
                "metric": m.metric,
                "base": m.base,
                "candidate": m.candidate,
                "change": None if m.ratio is None else m.ratio - 1,
                "low": None if m.low is None else m.low - 1,
                "high": None if m.high is None else m.high - 1,
                "p_value": m.p_value,
                "outcome": m.outcome,
                "critical": m.critical,
                "reason": m.reason,
            }
            for m in comparison.metrics
        ],
        "phases": [p.to_dict() for p in comparison.phases],
    }


def _faults(result: RunResult) -> list[dict[str, Any]]:
    """Each scheduled fault: what it was, and what it did (detection, recovery, budget)."""
    faults = {f.name: f for f in result.plan.faults}
    out = []
    for impact in fault_impacts(result, result.plan.objectives):
        fault = faults.get(impact.name)
        settings = (fault.host or fault.toxic or {}) if fault is not None else {}
        out.append(
            {
                "name": impact.name,
                "kind": impact.kind,
                "start_s": impact.start_s,
                "end_s": impact.end_s,
                "settings": dict(settings),
                "detected_after_s": impact.detected_after_s,
                "recovered_after_s": impact.recovered_after_s,
                "budget": dict(impact.budget_consumed),
            }
        )
    return out
