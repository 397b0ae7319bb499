"""Scaling events of a run, against its load steps and a replayed policy."""

from __future__ import annotations

import numpy as np
import pytest

from redline.capacity import Behavior, FleetModel, Hpa, HpaPolicy, MetricSpec, scaling_events
from redline.core import (
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
    parse_objective,
)


def run_with_a_step(seconds: int = 180, step_at: int = 30) -> RunResult:
    intervals = []
    for index in range(seconds):
        rate = 100 if index < step_at else 400
        slow = step_at <= index < step_at + 40  # the transition: some answers too slow
        latency = Histogram()
        latency.record_values(np.array([5_000] * (rate - 8) + [900_000 if slow else 5_000] * 8))
        intervals.append(
            IntervalSnapshot(
                index=index,
                start_s=float(index),
                duration_s=1.0,
                endpoints={"home": EndpointInterval(requests=rate, status={200: rate},
                                                    latency=latency, latency_actual=latency)},
                generator=GeneratorInterval(scheduled=rate, sent=rate, target_rps=float(rate)),
            )
        )  # fmt: skip
    return RunResult(
        id="r", plan={"name": "p", "target": "t"}, started_at="", intervals=tuple(intervals)
    )


def test_events_are_read_against_the_step_the_burn_and_a_replayed_hpa() -> None:
    run = run_with_a_step()
    readings = [(float(t), 2) for t in range(0, 70)] + [(float(t), 6) for t in range(70, 180)]
    objectives = [parse_objective("p99 < 500ms"), parse_objective("error_rate < 1%")]
    hpa = Hpa(
        "shop", 1, 10, (MetricSpec("Pods", "requests_per_second", "AverageValue", 70_000),),
        Behavior(),
    )  # fmt: skip
    (event,) = scaling_events(
        run,
        readings,
        objectives,
        policy=HpaPolicy(hpa),
        model=FleetModel(100, saturation_rps=1000, startup_s=10),
    )
    assert (event.before, event.after) == (2, 6)
    assert event.load_step_s == 30
    assert event.delay_s == 40
    # 8 of 400 answers too slow each second: 2% bad against a 1% budget
    assert event.burn["p99 < 500ms"] == pytest.approx(2.0)
    assert event.burn["error_rate < 1%"] == 0
    # replayed: the HPA (15 s syncs, a 30 s metric window, 10 s start-up) has 6 ready
    # (400 / 70) within a minute of the step
    assert event.replayed_at_s is not None
    assert 30 < event.replayed_at_s <= 90
    assert event.replayed_difference_s == pytest.approx(70 - event.replayed_at_s)
    assert event.to_dict()["replayed_difference_s"] == event.replayed_difference_s


def test_no_change_no_event() -> None:
    run = run_with_a_step(60)
    assert scaling_events(run, [(0.0, 3), (30.0, 3), (59.0, 3)]) == []
