"""How often a gate cries wolf, and how often it catches a real slow-down.

    python benchmarks/bench_compare.py [--trials 200] [--intervals 10] [--drift 0.03]

Runs are synthetic but shaped like real ones: ``--intervals`` one-second intervals of
300 lognormal latencies (median ~2 ms), and each run shifted as a whole by a random
factor (lognormal, sd ``--drift``), as a shared machine shifts whole runs. Three gates
judge the p99 of a candidate against a base:

- naive: fail when the p99 grew more than the 5% floor (pytest-benchmark's ``mean:5%``
  idea applied to p99);
- asv-style: Mann-Whitney on interval p99s below 0.05 and the ratio beyond the floor;
- redline: ``compare_runs`` (block bootstrap, Student's t, Benjamini-Hochberg, floor),
  with one run a side, and with three runs a side (what ``redline ab --rounds 3`` gives).

It prints the false-alarm rate on A/A pairs and the detection rate for planted
slow-downs, and the time one comparison takes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import table
from redline.analysis import REGRESSION, compare_runs
from redline.analysis._stats import mann_whitney
from redline.core import (
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
)


def make_run(rng: np.random.Generator, *, scale: float, intervals: int, drift: float) -> RunResult:
    shift = scale * float(np.exp(rng.normal(0, drift)))
    snapshots = []
    for index in range(intervals):
        latency = Histogram()
        latency.record_values((rng.lognormal(7.6, 0.5, 300) * shift).astype(np.int64) + 1)
        latency.compact()
        snapshots.append(
            IntervalSnapshot(
                index=index,
                start_s=float(index),
                duration_s=1.0,
                endpoints={"api": EndpointInterval(requests=300, latency=latency)},
                generator=GeneratorInterval(scheduled=300, sent=300),
            )
        )
    return RunResult(id="r", plan={"name": "bench"}, started_at="", intervals=tuple(snapshots))


def naive(base: RunResult, candidate: RunResult, floor: float) -> bool:
    return candidate.total().latency_ms["p99"] > base.total().latency_ms["p99"] * (1 + floor)


def asv_style(base: RunResult, candidate: RunResult, floor: float) -> bool:
    def p99s(run: RunResult) -> list[float]:
        return [i.total().latency.value_at_percentile(99) for i in run.measured]

    ratio = candidate.total().latency_ms["p99"] / base.total().latency_ms["p99"]
    return mann_whitney(p99s(base), p99s(candidate)) < 0.05 and ratio > 1 + floor


def redline_gate(base: list[RunResult], candidate: list[RunResult], floor: float) -> bool:
    comparison = compare_runs(
        base, candidate, floor=floor, resamples=500, critical={("total", "p99")}
    )
    return any(m.metric == "p99" and m.outcome == REGRESSION for m in comparison.metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--intervals", type=int, default=10)
    parser.add_argument("--drift", type=float, default=0.03)
    parser.add_argument("--floor", type=float, default=0.05)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    slowdowns = (0.0, 0.05, 0.10, 0.20)
    rows = []
    timings = []
    for slowdown in slowdowns:
        counts = {"naive": 0, "asv": 0, "redline 1 run": 0, "redline 3 runs": 0}
        for _ in range(args.trials):

            def side(scale: float, runs: int) -> list[RunResult]:
                return [
                    make_run(rng, scale=scale, intervals=args.intervals, drift=args.drift)
                    for _ in range(runs)
                ]

            base, candidate = side(1.0, 3), side(1.0 + slowdown, 3)
            counts["naive"] += naive(base[0], candidate[0], args.floor)
            counts["asv"] += asv_style(base[0], candidate[0], args.floor)
            start = time.perf_counter()
            counts["redline 1 run"] += redline_gate(base[:1], candidate[:1], args.floor)
            timings.append(time.perf_counter() - start)
            counts["redline 3 runs"] += redline_gate(base, candidate, args.floor)
        label = "A/A (false alarms)" if slowdown == 0 else f"p99 +{slowdown:.0%} (caught)"
        rows.append((label, *(f"{100 * c / args.trials:.1f}%" for c in counts.values())))
    print(
        f"{args.trials} trials per row; {args.intervals} intervals per run; run-to-run "
        f"drift sd {args.drift:.0%}; floor {args.floor:.0%}"
    )
    print(
        table(
            rows,
            (
                "p99 of the candidate",
                "naive 5%",
                "asv-style",
                "redline, 1 run a side",
                "redline, 3 runs a side",
            ),
        )
    )
    took = 1000 * float(np.median(timings))
    print(f"\none redline comparison (1 run a side, 500 resamples): {took:.0f} ms median")


if __name__ == "__main__":
    main()
