"""The USE verdict, memory growth and cost, on target reports made by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.analysis import cost_of, judge_target, memory_growth
from redline.core import ProfileFunction, TargetProfile, TargetReport, WatchedThing
from synthetic import synthetic_run

MIB = 1024 * 1024


def report(
    series: dict[str, list[float | None]],
    *,
    thing: WatchedThing | None = None,
    more: tuple[tuple[WatchedThing, dict[str, list[float | None]]], ...] = (),
    profile: TargetProfile | None = None,
) -> TargetReport:
    thing = thing or WatchedThing("serve", "process", cores=2.0, python=True)
    watched = [(thing, series), *more]
    samples = {}
    for each, values in watched:
        length = max(len(v) for v in values.values())
        samples[each.name] = tuple(
            {"interval": float(i), **{k: v[i] for k, v in values.items()}} for i in range(length)
        )
    return TargetReport(watched=tuple(w for w, _ in watched), samples=samples, profile=profile)


RUN = synthetic_run(1, intervals=10, rate=300)


def test_a_single_python_process_at_one_core_is_cpu_bound_whatever_the_machine_has() -> None:
    top = (ProfileFunction("search", "/srv/app.py", 10, 61.0, 70.0),)
    judged = judge_target(
        RUN,
        report(
            {"cpu_cores": [0.97] * 10, "processes": [1.0] * 10, "rss_bytes": [50 * MIB] * 10},
            profile=TargetProfile(67.0, (0.0, 10.0), samples=600, top=top),
        ),
    )
    assert judged.verdict is not None
    assert judged.verdict.bottleneck == "cpu"
    assert "97% of its one core" in judged.verdict.evidence
    assert "search (61% self)" in judged.verdict.evidence


def test_the_same_cpu_in_two_worker_processes_is_half_their_cores_and_no_bottleneck() -> None:
    judged = judge_target(RUN, report({"cpu_cores": [0.97] * 10, "processes": [2.0] * 10}))
    assert judged.verdict is not None
    assert judged.verdict.bottleneck == "none"
    assert "48% of its 2 cores" in judged.verdict.evidence


def test_a_throttled_quota_is_named_before_the_processs_own_cpu() -> None:
    cgroup = WatchedThing("serve-cgroup", "cgroup", cores=0.5)
    judged = judge_target(
        RUN,
        report(
            {"cpu_cores": [0.5] * 10, "processes": [1.0] * 10},
            more=(
                (
                    cgroup,
                    {
                        "cpu_cores": [0.49] * 10,
                        "throttled_s": [0.3] * 10,
                        "throttled_periods": [9.0] * 10,
                    },
                ),
            ),
        ),
    )
    assert judged.verdict is not None
    assert judged.verdict.bottleneck == "cpu-quota"
    assert "throttled 3.0 s in 90 periods" in judged.verdict.evidence


def test_memory_pool_and_lock_verdicts() -> None:
    limited = WatchedThing("serve", "process", cores=2.0, memory_limit_bytes=100 * MIB)
    full = judge_target(
        RUN, report({"cpu_cores": [0.1] * 10, "rss_bytes": [95 * MIB] * 10}, thing=limited)
    )
    assert full.verdict is not None
    assert full.verdict.bottleneck == "memory"
    waiting = TargetProfile(
        67.0, (0.0, 10.0), samples=40, waits={"pool": 300, "sleep": 100},
        wait_sites={"pool": "checkout (/srv/db.py:12)"},
    )  # fmt: skip
    pool = judge_target(RUN, report({"cpu_cores": [0.05] * 10}, profile=waiting))
    assert pool.verdict is not None
    assert pool.verdict.bottleneck == "pool"
    assert "checkout (/srv/db.py:12)" in pool.verdict.evidence
    few = TargetProfile(67.0, (0.0, 10.0), samples=400, waits={"lock": 100})
    busy_enough = judge_target(RUN, report({"cpu_cores": [0.5] * 10}, profile=few))
    assert busy_enough.verdict is not None
    assert busy_enough.verdict.bottleneck == "none"  # it ran more than it waited


def test_missing_samples_are_left_out_not_read_as_zero() -> None:
    cpu: list[float | None] = [0.95, None, None, 0.95, 0.95, None, None, None, None, None]
    judged = judge_target(RUN, report({"cpu_cores": cpu, "processes": [1.0] * 10}))
    row = next(r for r in judged.use if r.resource == "cpu")
    assert row.utilisation_pct == pytest.approx(95.0)  # one Python process, one core


def test_cost_arithmetic() -> None:
    requests = RUN.total().requests
    seconds = RUN.duration_s
    series: dict[str, list[float | None]] = {"cpu_cores": [0.5] * 10, "rss_bytes": [1024.0**3] * 10}
    cost = cost_of(report(series), RUN, vcpu_hour=3600.0, gib_hour=36.0)
    assert cost is not None
    assert cost.cpu_s_per_request == pytest.approx(0.5 * seconds / requests)
    assert cost.memory_gib_s_per_request == pytest.approx(seconds / requests)
    price = 0.5 * seconds / 3600 * 3600.0 + seconds / 3600 * 36.0
    assert cost.per_million == pytest.approx(price / requests * 1e6)
    assert cost_of(report(series), RUN).per_million is None  # type: ignore[union-attr]


def soak(values: list[float]) -> tuple[TargetReport, object]:
    run = synthetic_run(2, intervals=len(values), rate=20)
    return report({"rss_bytes": list(values)}), run


@settings(max_examples=25, deadline=None)
@given(
    st.floats(min_value=50_000, max_value=2_000_000),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_steady_leak_is_found_and_its_slope_lies_in_the_interval(rate: float, seed: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 200_000, 120)
    values = [80 * MIB + rate * t + n for t, n in zip(range(120), noise, strict=True)]
    made, run = soak(values)
    growth = memory_growth(made, run)  # type: ignore[arg-type]
    assert growth is not None
    assert growth.low <= rate <= growth.high or abs(growth.slope_bytes_per_s - rate) < 0.05 * rate
    assert growth.growing == (rate * 120 >= max(MIB, 0.02 * (80 * MIB + rate * 60)))


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_flat_memory_is_not_called_growth(seed: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 2 * MIB, 120)
    made, run = soak([80 * MIB + n for n in noise])
    growth = memory_growth(made, run)  # type: ignore[arg-type]
    assert growth is not None
    assert not growth.growing


def test_a_short_run_has_no_memory_verdict() -> None:
    made, run = soak([80 * MIB] * 20)
    assert memory_growth(made, run) is None  # type: ignore[arg-type]
