"""Searches that run a plan many times: the redline (open model) and a concurrency sweep.

``find_redline`` steps the arrival rate up geometrically until an objective breaks (or
the target errors), bisects between the last good and first bad rates with shorter
steps, then repeats that pair to put an interval on the estimate. It stops, and says so,
when the generator cannot send what a step asks: a load generator's limit is never
reported as the target's. ``sweep_concurrency`` runs 1, 2, 4, ... virtual users for the
Universal Scalability Law.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence

from redline.analysis import (
    LittleCheck,
    Redline,
    Step,
    SweepLevel,
    evaluate,
    little_check,
    redline_of,
)
from redline.core import PlanError, RunResult, Verdict
from redline.plan import ClosedLoad, OpenLoad, Plan

from ._coordinator import check_reachable, run_plan

__all__ = ["find_redline", "sweep_concurrency"]

StepCallback = Callable[[Step, RunResult], None]


def _step_plan(plan: Plan, load: OpenLoad | ClosedLoad, seconds: float) -> Plan:
    return dataclasses.replace(plan, load=load, duration=seconds, warmup=min(plan.warmup, 5.0))


def _measure(
    plan: Plan,
    rate: float,
    seconds: float,
    phase: str,
    *,
    workers: int | None,
    stop: threading.Event,
    on_step: StepCallback | None,
) -> Step:
    arrivals = plan.load.arrivals if isinstance(plan.load, OpenLoad) else "constant"
    step_plan = _step_plan(plan, OpenLoad(rate=rate, arrivals=arrivals), seconds)
    result = run_plan(step_plan, workers=workers, stop=stop, check_target=False)
    verdicts = evaluate(result, plan.slos)
    step = _step_of(result, verdicts, rate, phase)
    if on_step is not None:
        on_step(step, result)
    return step


def _step_of(result: RunResult, verdicts: Sequence[Verdict], rate: float, phase: str) -> Step:
    total = result.total()
    return Step(
        rate=rate,
        achieved=total.rps,
        p50_ms=total.latency_ms.get("p50", 0.0),
        p99_ms=total.latency_ms.get("p99", 0.0),
        error_rate=total.error_rate,
        verdicts=tuple(verdicts),
        limited=result.generator().limited,
        phase=phase,
        run_id=result.id,
    )


def find_redline(
    plan: Plan,
    *,
    start: float | None = None,
    factor: float = 1.5,
    step_s: float = 10.0,
    refine_s: float | None = None,
    max_rate: float = 1_000_000.0,
    tolerance: float = 0.05,
    max_refine: int = 5,
    repeats: int = 3,
    workers: int | None = None,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
) -> Redline:
    """Search for the highest arrival rate at which every objective of ``plan`` holds.

    Args:
        plan: an open-model plan with objectives (its ``slo``); its rate (or the peak of
            its stages) is where the search starts unless ``start`` says otherwise.
        start: the first rate tried, req/s.
        factor: each step's rate is the last one's times this, until one breaks.
        step_s: measured seconds of each step (the plan's warm-up, at most 5 s, first).
        refine_s: measured seconds of the bisection steps (default: half of ``step_s``).
        max_rate: never offer more than this.
        tolerance: bisect until the bracket is narrower than this fraction.
        max_refine: at most this many bisection steps.
        repeats: run the final bracket (last good, first bad) this many times for the
            interval (the bracket's first two steps count).
        workers: worker processes per step.
        on_step: called with each step and its run as it ends (to store or print it).
        stop: set it to end the search after the current step.

    Raises:
        PlanError: the plan has no objectives or is not an open-model plan.
        RunError: the target is unreachable.
    """
    if not plan.slos:
        raise PlanError("a redline needs objectives: add an slo: section", source=plan.source)
    if not isinstance(plan.load, OpenLoad):
        raise PlanError(
            "redline find searches arrival rates: give the plan an open-model load "
            "(use --closed for a concurrency sweep)",
            source=plan.source,
        )
    check_reachable(plan)
    load = plan.load
    first = start or load.rate or max(s.target for s in load.stages)
    stop = stop or threading.Event()
    steps: list[Step] = []

    def measure(rate: float, seconds: float, phase: str) -> Step:
        step = _measure(plan, rate, seconds, phase, workers=workers, stop=stop, on_step=on_step)
        steps.append(step)
        return step

    good: float | None = None
    bad: float | None = None
    rate = min(first, max_rate)
    while not stop.is_set():  # step up (or down, while the first rates break)
        step = measure(rate, step_s, "step")
        if step.limited:
            return redline_of(steps, limited_at=rate)
        if step.holds:
            good = rate
            if bad is not None or rate >= max_rate:
                break
            rate = min(rate * factor, max_rate)
        else:
            bad = rate
            if good is not None:
                break
            rate /= factor
            if rate < 0.5:
                break
    if good is None or bad is None or stop.is_set():
        return redline_of(steps)
    refine = refine_s or step_s / 2
    for _ in range(max_refine):  # bisect (geometrically) with shorter steps
        if bad / good - 1 <= tolerance or stop.is_set():
            break
        middle = math.sqrt(good * bad)
        step = measure(middle, refine, "refine")
        if step.limited:
            return redline_of(steps, limited_at=middle)
        if step.holds:
            good = middle
        else:
            bad = middle
    for _ in range(max(0, repeats - 1)):  # repeat the final bracket for the interval
        if stop.is_set():
            break
        for rate in (good, bad):
            if measure(rate, step_s, "repeat").limited:
                return redline_of(steps, limited_at=rate)
    return redline_of(steps, good=good, bad=bad)


def sweep_concurrency(
    plan: Plan,
    *,
    levels: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    step_s: float = 10.0,
    workers: int | None = None,
    on_level: Callable[[SweepLevel, RunResult], None] | None = None,
    stop: threading.Event | None = None,
) -> list[SweepLevel]:
    """Run ``plan`` closed-model at each number of virtual users in ``levels``.

    Each level keeps the plan's requests (and think time, if closed); its throughput,
    latency and in-flight count feed :func:`redline.analysis.fit_usl` and a Little's law
    check that tells a client-side bottleneck from the target's.

    Raises:
        RunError: the target is unreachable.
    """
    check_reachable(plan)
    stop = stop or threading.Event()
    think = (0.0, 0.0)
    if isinstance(plan.load, ClosedLoad):
        think = (plan.load.think_min, plan.load.think_max)
    out = []
    for vus in levels:
        if stop.is_set():
            break
        load = ClosedLoad(vus=vus, think_min=think[0], think_max=think[1])
        step_plan = _step_plan(plan, load, step_s)
        result = run_plan(step_plan, workers=workers, stop=stop, check_target=False)
        level = _level_of(result, vus, think_s=sum(think) / 2)
        out.append(level)
        if on_level is not None:
            on_level(level, result)
    return out


def _level_of(result: RunResult, vus: int, *, think_s: float) -> SweepLevel:
    total = result.total()
    measured = result.measured
    in_flight = sum(i.generator.in_flight for i in measured) / len(measured) if measured else 0.0
    check: LittleCheck = little_check(
        users=vus,
        throughput=total.rps,
        mean_latency_s=total.latency_ms.get("mean", 0.0) / 1000,
        think_s=think_s,
    )
    return SweepLevel(
        users=vus,
        throughput=total.rps,
        p50_ms=total.latency_ms.get("p50", 0.0),
        p99_ms=total.latency_ms.get("p99", 0.0),
        error_rate=total.error_rate,
        in_flight=in_flight,
        little=check,
        run_id=result.id,
    )
