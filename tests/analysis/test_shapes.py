"""A spike's recovery and a soak's drift, on runs with known shapes."""

from __future__ import annotations

import dataclasses

import numpy as np

from redline.analysis import drift, recovery
from redline.core import EndpointInterval, GeneratorInterval, Histogram, IntervalSnapshot, RunResult


def run_of(medians_us: list[float], *, shape: dict[str, object] | None = None) -> RunResult:
    """One-second intervals of 200 lognormal latencies with the given medians."""
    rng = np.random.default_rng(7)
    intervals = []
    for index, median in enumerate(medians_us):
        latency = Histogram()
        latency.record_values(rng.lognormal(np.log(median), 0.3, 200).astype(np.int64) + 1)
        intervals.append(
            IntervalSnapshot(
                index=index,
                start_s=float(index),
                duration_s=1.0,
                endpoints={"home": EndpointInterval(requests=200, latency=latency)},
                generator=GeneratorInterval(scheduled=200, sent=200),
            )
        )
    plan = {"name": "shaped", "shape": shape or {}}
    return RunResult(id="r", plan=plan, started_at="", intervals=tuple(intervals))


SPIKE = {"type": "spike", "at_s": 10.0, "for_s": 3.0, "multiple": 5.0}


def test_recovery_counts_from_the_end_of_the_spike() -> None:
    medians = [2000] * 10 + [40000] * 3 + [20000, 9000, 2100, 2000, 2050, 1990, 2000]
    found = recovery(run_of(medians, shape=SPIKE))
    assert found is not None
    assert found.spike_start_s == 10
    assert found.spike_end_s == 13
    assert found.recovered_after_s == 2.0  # intervals 13 and 14 are slow, 15 on are calm
    assert found.peak_p99_ms > 10 * found.baseline_p99_ms


def test_a_service_that_never_recovers_says_so() -> None:
    found = recovery(run_of([2000] * 10 + [40000] * 8, shape=SPIKE))
    assert found is not None
    assert found.recovered_after_s is None
    assert "not back" in found.reason


def test_runs_without_a_spike_have_no_recovery() -> None:
    assert recovery(run_of([2000] * 20)) is None


def test_a_planted_drift_is_found_and_a_flat_run_is_not() -> None:
    rising = drift(run_of([2000 + 100 * i for i in range(60)]))
    assert rising is not None
    assert rising.drifting
    assert rising.slope_ms_per_hour > 0
    assert rising.change > 0.5
    flat = drift(run_of([2000] * 60))
    assert flat is not None
    assert not flat.drifting
    assert "no drift" in flat.reason


def test_a_few_stalls_are_not_a_drift() -> None:
    medians = [2000.0] * 60
    for at in (7, 31, 52):
        medians[at] = 60000.0
    found = drift(run_of(medians))
    assert found is not None
    assert not found.drifting


def test_too_short_a_run_has_no_drift_verdict() -> None:
    assert drift(run_of([2000] * 5)) is None


def test_warmup_is_left_out_of_the_baseline() -> None:
    run = run_of([50000] * 3 + [2000] * 7 + [40000] * 3 + [2000] * 7, shape=SPIKE)
    warm = tuple(dataclasses.replace(i, warmup=i.index < 3) for i in run.intervals)
    found = recovery(dataclasses.replace(run, intervals=warm))
    assert found is not None
    assert found.baseline_p99_ms < 10
