"""One side of a comparison as arrays, and its bootstrap resampling.

A side is the measured intervals of one or more runs for one scope (all traffic or an
endpoint); a long run is first merged into at most :data:`MAX_UNITS` units of
consecutive intervals. Resampling keeps time structure: runs are drawn with replacement
(when there are several), then blocks of consecutive units within each drawn run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redline.core import EndpointInterval, IntervalSnapshot, RunResult

__all__ = ["MAX_UNITS", "PERCENTILES", "TOTAL", "Arrays", "FloatArray", "Side", "statistic"]

TOTAL = "total"
PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
# The most units a run is resampled in (an hour-long run: 120 units of 30 s).
MAX_UNITS = 120
FloatArray = npt.NDArray[np.float64]


def scoped(interval: IntervalSnapshot, scope: str) -> EndpointInterval:
    if scope == TOTAL:
        return interval.total()
    return interval.endpoints.get(scope) or EndpointInterval()


@dataclass(frozen=True)
class Side:
    """One side's measured intervals for one scope, run by run."""

    runs: tuple[tuple[EndpointInterval, ...], ...]
    seconds: tuple[tuple[float, ...], ...]
    scheduled: tuple[tuple[int, ...], ...]
    open_model: bool
    cpu: tuple[tuple[float, ...], ...] = ()
    """CPU-seconds the target used in each unit (parallel to ``runs``; NaN: not watched),
    when the runs watched their target; empty otherwise."""

    @classmethod
    def of(
        cls,
        runs: Sequence[RunResult],
        scope: str,
        *,
        cpu: Sequence[Mapping[int, float]] | None = None,
    ) -> Side:
        """One side from ``runs``; ``cpu``: per run, CPU-seconds by interval index."""
        parts, seconds, scheduled, used = [], [], [], []
        for number, run in enumerate(runs):
            items, lengths, due, spent = [], [], [], []
            measured = run.measured
            # A long run's consecutive intervals are merged into at most MAX_UNITS
            # units: the bootstrap keeps its time structure at a bounded cost.
            size = max(1, math.ceil(len(measured) / MAX_UNITS))
            for start in range(0, len(measured), size):
                chunk = measured[start : start + size]
                items.append(EndpointInterval.merged(scoped(i, scope) for i in chunk))
                lengths.append(sum(i.duration_s for i in chunk))
                due.append(sum(i.generator.scheduled for i in chunk))
                if cpu is not None:
                    known = cpu[number]
                    spent.append(sum(known.get(i.index, math.nan) for i in chunk))
            if items:
                parts.append(tuple(items))
                seconds.append(tuple(lengths))
                scheduled.append(tuple(due))
                used.append(tuple(spent))
        return cls(
            tuple(parts),
            tuple(seconds),
            tuple(scheduled),
            all(r.open_model for r in runs),
            tuple(used) if cpu is not None else (),
        )

    @property
    def watched(self) -> bool:
        """Whether every unit has the target's CPU-seconds."""
        values = [v for run in self.cpu for v in run]
        return bool(values) and all(math.isfinite(v) for v in values)

    @property
    def units(self) -> int:
        """Independent units the bootstrap draws: runs when there are several, else intervals.

        (Counting one run's blocks instead was tried: on simulated canaries it lowered
        false alarms little and cost much power; see docs/compare.md.)
        """
        return len(self.runs) if len(self.runs) > 1 else sum(len(run) for run in self.runs)

    @property
    def intervals(self) -> list[EndpointInterval]:
        """The units resampled: intervals, or runs of them merged in a long run."""
        return [i for run in self.runs for i in run]

    def weights(self, resamples: int, rng: np.random.Generator) -> FloatArray:
        """Bootstrap weights over all intervals, one row per resample.

        Runs are drawn with replacement (when there are several), then blocks of
        consecutive intervals within each drawn run.
        """
        sizes = [len(run) for run in self.runs]
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        weights = np.zeros((resamples, sum(sizes)))
        rows = np.arange(resamples)
        picks = (
            rng.integers(0, len(sizes), size=(resamples, len(sizes)))
            if len(sizes) > 1
            else np.zeros((resamples, 1), dtype=np.int64)
        )
        for slot in range(picks.shape[1]):
            for run, size in enumerate(sizes):
                chosen = rows[picks[:, slot] == run]
                if not chosen.size:
                    continue
                block = _block(size)
                count = math.ceil(size / block)
                starts = rng.integers(0, size - block + 1, size=(chosen.size, count))
                for step in range(block):
                    np.add.at(
                        weights,
                        (np.repeat(chosen, count), (offsets[run] + starts + step).ravel()),
                        1.0,
                    )
        return weights


@dataclass(frozen=True)
class Arrays:
    """One side's intervals as arrays.

    Bucket counts (over the union of both sides' buckets), requests, errors and seconds
    per interval.
    """

    matrix: FloatArray
    requests: FloatArray
    errors: FloatArray
    seconds: FloatArray
    scheduled: FloatArray
    open_model: bool
    cpu: FloatArray

    @classmethod
    def of(cls, side: Side, union: npt.NDArray[np.int64]) -> Arrays:
        intervals = side.intervals
        return cls(
            cpu=np.array([c for run in side.cpu for c in run], dtype=np.float64)
            if side.watched
            else np.full(len(intervals), np.nan),
            matrix=_matrix(intervals, union),
            requests=np.array([i.requests for i in intervals], dtype=np.float64),
            errors=np.array([i.errors for i in intervals], dtype=np.float64),
            seconds=np.array([s for run in side.seconds for s in run], dtype=np.float64),
            scheduled=np.array([s for run in side.scheduled for s in run], dtype=np.float64),
            open_model=side.open_model,
        )


def statistic(
    metric: str,
    data: Arrays,
    values: FloatArray,
    weights: FloatArray | None,
    *,
    per_schedule: bool = False,
) -> FloatArray:
    """``metric`` for each row of ``weights`` over the intervals.

    ``None`` gives the metric of each interval on its own. ``per_schedule`` measures
    throughput against the arrivals the schedule asked for (open model).
    """

    def weighted(column: FloatArray) -> FloatArray:
        return column if weights is None else weights @ column

    if metric in PERCENTILES:
        merged = data.matrix if weights is None else weights @ data.matrix
        return _percentile(merged, values, PERCENTILES[metric])
    if metric == "error_ratio":
        return (weighted(data.errors) + 1) / (weighted(data.requests) + 1)
    if metric == "cpu_per_request":  # the target's saturation, per unit of work
        with np.errstate(divide="ignore", invalid="ignore"):
            return weighted(data.cpu) / weighted(data.requests)
    if per_schedule:
        with np.errstate(divide="ignore", invalid="ignore"):
            return weighted(data.requests) / weighted(data.scheduled)
    return weighted(data.requests) / weighted(data.seconds)


def _matrix(intervals: Sequence[EndpointInterval], union: npt.NDArray[np.int64]) -> FloatArray:
    matrix = np.zeros((len(intervals), union.size))
    for row, interval in enumerate(intervals):
        indices, counts = interval.latency.to_sparse()
        matrix[row, np.searchsorted(union, indices)] = counts
    return matrix


def _percentile(merged: FloatArray, values: FloatArray, q: float) -> FloatArray:
    """The ``q`` percentile of each row of bucket counts, as Histogram reports it."""
    if not values.size:
        return np.zeros(merged.shape[0])
    cumulative = np.cumsum(merged, axis=1)
    total = cumulative[:, -1]
    wanted = np.maximum(np.floor(q * total / 100 + 0.5), 1)
    index = np.argmax(cumulative >= wanted[:, None], axis=1)
    return np.where(total > 0, values[index], np.nan)


def _block(size: int) -> int:
    """The block length for a run of ``size`` intervals: about size^(1/3)."""
    return max(1, round(math.pow(size, 1 / 3)))
