"""Searches that run a plan many times: the redline (open model) and a concurrency sweep.

``find`` steps the arrival rate up geometrically until an objective breaks (or
the target errors), bisects between the last good and first bad rates with shorter
steps, then repeats that pair to put an interval on the estimate. It stops, and says so,
when the generator cannot send what a step asks: a load generator's limit is never
reported as the target's. ``sweep`` runs 1, 2, 4, ... virtual users for the
Universal Scalability Law.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from redline.analysis import (
    LittleCheck,
    Redline,
    Step,
    SweepLevel,
    little_check,
    search_redline,
    tail_counts,
)
from redline.core import PlanError, RunOutcome, RunResult, Verdict
from redline.engine import RunControl, check_reachable
from redline.observe import ServedTarget
from redline.plan import ClosedLoad, OpenLoad, Plan
from redline.store import RunStore, collect_meta

from ._run import as_plan, async_form, run
from ._watching import serving

__all__ = ["Search", "find", "find_async", "sweep", "sweep_async"]

StepCallback = Callable[[Step, RunResult], None]


@dataclass(frozen=True)
class Search:
    """How a search's steps are run and kept: one value threaded through every step.

    Attributes:
        id: the search's id; stored steps carry the label ``find=<id>``.
        store: keep each step's run here (labels ``find`` and ``phase``).
        observers: watch every step's run.
        labels: more labels for the stored steps.
        workers: worker processes per step.
        control: stop the search from elsewhere (after, or within, the current step).
    """

    id: str
    store: RunStore | None = None
    observers: tuple[object, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    workers: int | None = None
    control: RunControl = dataclasses.field(default_factory=RunControl)

    @classmethod
    def of(
        cls,
        search_id: str | None,
        store: RunStore | None,
        observers: Iterable[object],
        labels: Mapping[str, str] | None,
        workers: int | None,
        control: RunControl | None,
    ) -> Search:
        """A search from the options of :func:`find` and :func:`sweep` (defaults filled)."""
        return cls(
            search_id or new_search_id(),
            store=store,
            observers=tuple(observers),
            labels=dict(labels or {}),
            workers=workers,
            control=control or RunControl(),
        )

    served: ServedTarget | None = None

    def measure(self, plan: Plan, phase: str) -> RunOutcome:
        """Run one step's plan and judge it on the search's objectives."""
        meta = collect_meta(labels={**self.labels, "find": self.id, "phase": phase})
        return run(
            plan,
            observers=self.observers,
            store=self.store,
            meta=meta,
            workers=self.workers,
            control=self.control.child(),  # a step's abort rule ends that step only
            served=self.served,
        )


def one_load(plan: Plan, what: str) -> Plan:
    """``plan``, which a search steps through loads of: it must have one load to step.

    Raises:
        PlanError: the plan has scenarios, each with its own load.
    """
    if plan.workloads:
        raise PlanError(
            f"{what} steps one load through levels; this plan has scenarios, each with its "
            "own: search with a plan of one load (its requests or flows)",
            source=plan.source,
            path="scenarios",
        )
    return plan


def new_search_id() -> str:
    """A short id that labels every step of one search."""
    return f"find-{secrets.token_hex(3)}"


SEARCH_WARMUP_S = 2.0
"""A search step's warm-up when the plan has none: a step starts on an idle target, and
its first seconds would understate the queue a rate builds (calibrated: docs/find.md)."""


def _step_plan(plan: Plan, load: OpenLoad | ClosedLoad, seconds: float) -> Plan:
    # a search measures the target as it is: the plan's proxies stay, its schedule of
    # faults belongs to run and experiment
    faults = dataclasses.replace(plan.faults, schedule=())
    warmup = min(plan.warmup, 5.0) if plan.warmup > 0 else SEARCH_WARMUP_S
    return dataclasses.replace(plan, load=load, duration=seconds, warmup=warmup, faults=faults)


def _measure(
    search: Search,
    plan: Plan,
    rate: float,
    seconds: float,
    phase: str,
    on_step: StepCallback | None,
) -> Step:
    arrivals = plan.load.arrivals if isinstance(plan.load, OpenLoad) else "constant"
    step_plan = _step_plan(plan, OpenLoad(rate=rate, arrivals=arrivals), seconds)
    outcome = search.measure(step_plan, phase)
    result = outcome.result
    step = _step_of(result, outcome.verdicts, rate, phase)
    verdict = outcome.target.verdict if outcome.target is not None else None
    if verdict is not None:
        step = dataclasses.replace(step, bottleneck=verdict.bottleneck, evidence=verdict.evidence)
    if on_step is not None:
        on_step(step, result)
    return step


def _step_of(result: RunResult, verdicts: Sequence[Verdict], rate: float, phase: str) -> Step:
    total = result.total()
    tails = {
        v.objective.text: tuple(tail_counts(result, v.objective))
        for v in verdicts
        if v.objective.metric == "percentile"
    }
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
        tails=tails,
    )


def find(
    plan: Plan | str | Path,
    *,
    start: float | None = None,
    factor: float = 1.5,
    step_s: float = 10.0,
    refine_s: float | None = None,
    max_rate: float = 1_000_000.0,
    tolerance: float = 0.05,
    max_refine: int = 5,
    repeats: int = 4,
    repeat_s: float | None = None,
    workers: int | None = None,
    on_step: StepCallback | None = None,
    store: RunStore | None = None,
    observers: Iterable[object] = (),
    labels: Mapping[str, str] | None = None,
    search_id: str | None = None,
    control: RunControl | None = None,
) -> Redline:
    """Search for the highest arrival rate at which every objective of ``plan`` holds.

    Args:
        plan: an open-model plan with objectives (its ``slo``), or its file; its rate (or
            the peak of its stages) is where the search starts unless ``start`` says
            otherwise.
        start: the first rate tried, req/s.
        factor: each step's rate is the last one's times this, until one breaks.
        step_s: measured seconds of each step (the plan's warm-up, at most 5 s, first).
        refine_s: measured seconds of the bisection steps (default: half of ``step_s``).
        max_rate: never offer more than this.
        tolerance: bisect until the bracket is narrower than this fraction.
        max_refine: at most this many bisection steps.
        repeats: run the final bracket (last good, first bad) this many times for the
            interval (the bracket's first two steps count; the estimate rests on the
            others).
        repeat_s: measured seconds of each repeat (default: three times ``step_s``).
        workers: worker processes per step.
        on_step: called with each step and its run as it ends (to print it, say).
        store: keep each step's run here, labelled ``find=<search id>`` and ``phase``.
        observers: watch each step's run (see :class:`redline.Observer`).
        labels: more labels for the stored steps.
        search_id: the search's id (default: a new one).
        control: stop the search (the current step stops early and the search ends).

    Raises:
        PlanError: the plan has no objectives or is not an open-model plan.
        RunError: the target is unreachable.
    """
    plan = one_load(as_plan(plan), "find")
    if not plan.slos:
        raise PlanError("a redline needs objectives: add an slo: section", source=plan.source)
    if not isinstance(plan.load, OpenLoad):
        raise PlanError(
            "redline find searches arrival rates: give the plan an open-model load "
            "(use --closed for a concurrency sweep)",
            source=plan.source,
        )
    search = Search.of(search_id, store, observers, labels, workers, control)
    with serving(plan) as served:  # a served target lives through every step
        check_reachable(plan)
        return _find(
            plan,
            dataclasses.replace(search, served=served),
            start=start or plan.load.peak_rate,
            factor=factor,
            step_s=step_s,
            refine_s=refine_s,
            max_rate=max_rate,
            tolerance=tolerance,
            max_refine=max_refine,
            repeats=repeats,
            repeat_s=repeat_s,
            on_step=on_step,
        )


def _find(
    plan: Plan,
    search: Search,
    *,
    start: float,
    factor: float,
    step_s: float,
    refine_s: float | None,
    max_rate: float,
    tolerance: float,
    max_refine: int,
    repeats: int,
    repeat_s: float | None,
    on_step: StepCallback | None,
) -> Redline:
    stop = search.control
    return search_redline(
        lambda rate, seconds, phase: _measure(search, plan, rate, seconds, phase, on_step),
        start=start,
        factor=factor,
        step_s=step_s,
        refine_s=refine_s,
        max_rate=max_rate,
        tolerance=tolerance,
        max_refine=max_refine,
        repeats=repeats,
        repeat_s=repeat_s,
        stopped=lambda: stop.stopped,
    )


def sweep(
    plan: Plan | str | Path,
    *,
    levels: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    step_s: float = 10.0,
    workers: int | None = None,
    on_level: Callable[[SweepLevel, RunResult], None] | None = None,
    store: RunStore | None = None,
    observers: Iterable[object] = (),
    labels: Mapping[str, str] | None = None,
    search_id: str | None = None,
    control: RunControl | None = None,
) -> list[SweepLevel]:
    """Run ``plan`` closed-model at each number of virtual users in ``levels``.

    Each level keeps the plan's requests (and think time, if closed); its throughput,
    latency and in-flight count feed :func:`redline.analysis.fit_usl` and a Little's law
    check that tells a client-side bottleneck from the target's. ``store``,
    ``observers``, ``labels``, ``search_id`` and ``control`` are as for :func:`find`
    (stored levels carry ``phase=level``).

    Raises:
        RunError: the target is unreachable.
    """
    plan = one_load(as_plan(plan), "sweep")
    search = Search.of(search_id, store, observers, labels, workers, control)
    with serving(plan) as served:
        check_reachable(plan)
        return _sweep(plan, dataclasses.replace(search, served=served), levels, step_s, on_level)


def _sweep(
    plan: Plan,
    search: Search,
    levels: Sequence[int],
    step_s: float,
    on_level: Callable[[SweepLevel, RunResult], None] | None,
) -> list[SweepLevel]:
    stop = search.control
    think = (0.0, 0.0)
    if isinstance(plan.load, ClosedLoad):
        think = (plan.load.think_min, plan.load.think_max)
    out = []
    for vus in levels:
        if stop.stopped:
            break
        load = ClosedLoad(vus=vus, think_min=think[0], think_max=think[1])
        result = search.measure(_step_plan(plan, load, step_s), "level").result
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


find_async = async_form(find)
sweep_async = async_form(sweep)
