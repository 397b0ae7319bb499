from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.engine._schedule import ArrivalSchedule
from redline.engine._segments import split
from redline.plan import OpenLoad, Stage


def drain(schedule: ArrivalSchedule) -> list[int]:
    out: list[int] = []
    while batch := schedule.next_batch():
        out.extend(batch)
    assert schedule.exhausted
    return out


@given(st.integers(1, 5), st.sampled_from(["constant", "poisson"]), st.integers(0, 2**31))
@settings(max_examples=30)
def test_workers_together_produce_exactly_the_global_schedule(
    workers: int, arrivals: str, seed: int
) -> None:
    load = OpenLoad(rate=3000.0, arrivals=arrivals)  # type: ignore[arg-type]
    whole = drain(ArrivalSchedule(load, total=2.0, segment=split(1)[0], seed=seed))
    parts = [drain(ArrivalSchedule(load, total=2.0, segment=s, seed=seed)) for s in split(workers)]
    assert sorted(t for p in parts for t in p) == whole
    for part in parts:
        assert part == sorted(part)


def test_constant_rate_gives_rate_times_duration_evenly_spaced() -> None:
    times = drain(ArrivalSchedule(OpenLoad(rate=500.0), total=3.0, segment=split(1)[0]))
    assert len(times) == 1500
    gaps = np.diff(times)
    assert gaps.min() >= 1_999_999
    assert gaps.max() <= 2_000_001


def test_poisson_arrivals_have_exponential_gaps() -> None:
    times = np.array(
        drain(
            ArrivalSchedule(
                OpenLoad(rate=2000.0, arrivals="poisson"), total=10.0, segment=split(1)[0], seed=1
            )
        )
    )
    assert len(times) == pytest.approx(20_000, rel=0.03)
    gaps = np.diff(times) / 1e9
    assert gaps.mean() == pytest.approx(1 / 2000, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(
        1.0, rel=0.05
    )  # coefficient of variation of Exp


def test_ramp_follows_the_integral_of_the_rate() -> None:
    load = OpenLoad(stages=(Stage(2.0, 1000.0), Stage(1.0, 1000.0), Stage(2.0, 0.0)))
    times = np.array(drain(ArrivalSchedule(load, total=5.0, segment=split(1)[0]))) / 1e9
    # 1000 in the ramp up (area of the triangle), 1000 holding, 1000 ramping down.
    assert len(times) == pytest.approx(3000, abs=2)
    assert np.sum(times < 1.0) == pytest.approx(250, abs=2)  # rate 0->500 over the first second
    assert np.sum((times >= 2.0) & (times < 3.0)) == pytest.approx(1000, abs=2)


def test_nothing_arrives_after_a_ramp_to_zero() -> None:
    load = OpenLoad(stages=(Stage(1.0, 100.0), Stage(1.0, 0.0)))
    times = drain(ArrivalSchedule(load, total=10.0, segment=split(1)[0]))
    assert max(times) < 2e9
    assert len(times) == pytest.approx(100, abs=2)
