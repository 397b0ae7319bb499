"""Two targets, one plan: interleaved rounds (A B, B A, ...) or a duet at half load each."""

from __future__ import annotations

import dataclasses
import random
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from redline.core import RunMeta, RunOutcome, RunResult
from redline.engine import RunControl
from redline.plan import (
    ClosedLoad,
    ObservePlan,
    OpenLoad,
    Plan,
    RequestSpec,
    Stage,
    compile_template,
    load_plan,
)
from redline.store import RunStore, collect_meta

from ._run import async_form, run

__all__ = ["AbRuns", "ab", "ab_async", "halved", "interleaved_order"]

Side = Literal["A", "B"]


@dataclass(frozen=True)
class AbRuns:
    """What an A/B session ran: each side's runs in order, and how they were ordered.

    Attributes:
        session: the session's id (stored runs carry ``ab_session=<id>`` and ``ab=A|B``).
        order: the sides in the order they ran (``"AB"`` per round in a duet).
        a: the baseline's runs.
        b: the candidate's runs.
    """

    session: str
    order: tuple[str, ...]
    a: tuple[RunOutcome, ...]
    b: tuple[RunOutcome, ...]

    @property
    def stopped(self) -> RunOutcome | None:
        """The first run that did not complete (the session stopped there), if any."""
        return next((o for o in (*self.a, *self.b) if o.result.stop_reason != "completed"), None)

    def results(self, side: Side) -> list[RunResult]:
        """One side's results."""
        return [o.result for o in (self.a if side == "A" else self.b)]


def interleaved_order(rounds: int, rng: random.Random) -> list[Side]:
    """``rounds`` pairs of ``"A"`` and ``"B"``, each pair in a random order."""
    order: list[Side] = []
    for _ in range(rounds):
        pair: list[Side] = ["A", "B"]
        rng.shuffle(pair)
        order.extend(pair)
    return order


def with_headers(plan: Plan, headers: Mapping[str, str]) -> Plan:
    """``plan`` with ``headers`` on every request it declares (replacing same-named ones)."""
    names = {name.lower() for name in headers}
    extra = tuple((name, compile_template(value, {})) for name, value in headers.items())

    def request(spec: RequestSpec) -> RequestSpec:
        kept = tuple((n, v) for n, v in spec.headers if n.lower() not in names)
        return dataclasses.replace(spec, headers=kept + extra)

    return dataclasses.replace(plan, requests=tuple(request(r) for r in plan.requests))


def halved(plan: Plan) -> Plan:
    """``plan`` at half its load (for a duet: two plans share the machine).

    A plan's scenarios are each halved.
    """
    if plan.workloads:
        workloads = tuple(dataclasses.replace(w, plan=halved(w.plan)) for w in plan.workloads)
        return dataclasses.replace(halved(dataclasses.replace(plan, workloads=())),
                                   workloads=workloads)  # fmt: skip
    load = plan.load
    if isinstance(load, OpenLoad):
        load = dataclasses.replace(
            load,
            rate=load.rate / 2 if load.rate is not None else None,
            start_rate=load.start_rate / 2,
            stages=tuple(Stage(s.duration, s.target / 2) for s in load.stages),
        )
    elif isinstance(load, ClosedLoad):
        load = dataclasses.replace(
            load,
            vus=max(1, load.vus // 2) if load.vus is not None else None,
            start_vus=load.start_vus // 2,
            # a user at least where there were users; none where there were none
            stages=tuple(
                Stage(s.duration, max(1.0, s.target // 2) if s.target else 0.0) for s in load.stages
            ),
        )
    return dataclasses.replace(plan, load=load)


def ab(
    plan: str | Path,
    *,
    a: str,
    b: str,
    rounds: int = 3,
    duet: bool = False,
    seed: int | None = None,
    duration: str | None = None,
    store: RunStore | None = None,
    observers: Iterable[object] = (),
    labels: Mapping[str, str] | None = None,
    on_run: Callable[[int, Side, Plan], None] | None = None,
    control: RunControl | None = None,
    watch: Mapping[Side, ObservePlan] | None = None,
    headers: Mapping[Side, Mapping[str, str]] | None = None,
) -> AbRuns:
    """Run the plan file against two targets, so drift on the machine hits both alike.

    Interleaved (default): ``rounds`` pairs, each in a random order, one run at a time; the
    session stops at the first run that does not complete. Duet: both at once, each at
    half the load, ``rounds`` times.

    Args:
        plan: the plan file (loaded once per side, with the side's URL).
        a: the baseline's URL.
        b: the candidate's URL.
        rounds: rounds of A and B.
        duet: run A and B at the same time.
        seed: the seed of the round order (default: random).
        duration: each run's duration (overrides the plan's), e.g. ``"30s"``.
        store: keep the runs, labelled ``ab=A|B`` and ``ab_session``.
        observers: watch each run (interleaved runs only: a duet's two runs at once would
            interleave their calls).
        labels: more labels for the stored runs.
        on_run: called before each interleaved run with its number, side and plan.
        control: stop the session from elsewhere.
        watch: what to watch of each side's target (its ``observe:``; a side's served
            command is started for each of its runs, so every run starts it fresh).
        headers: headers every request of a side carries (a feature flag's cohort:
            ``{"A": {"X-Variant": "off"}, "B": {"X-Variant": "on"}}``, both at one URL).

    Raises:
        PlanError: the plan is not valid with either URL.
        RunError: a run could not be carried out.
        ValueError: ``rounds`` is below 1.
    """
    if rounds < 1:
        raise ValueError(f"rounds: expected at least 1, got {rounds}")
    plans: dict[Side, Plan] = {
        "A": load_plan(plan, overrides={"url": a, "duration": duration}),
        "B": load_plan(plan, overrides={"url": b, "duration": duration}),
    }
    for side, observe in (watch or {}).items():
        plans[side] = dataclasses.replace(plans[side], observe=observe)
    for side, extra in (headers or {}).items():
        plans[side] = with_headers(plans[side], extra)
    session = secrets.token_hex(3)
    control = control or RunControl()
    done: dict[Side, list[RunOutcome]] = {"A": [], "B": []}

    def meta(side: Side) -> RunMeta:
        return collect_meta(labels={**(labels or {}), "ab": side, "ab_session": session})

    order: list[Side]
    if duet:
        order = ["A", "B"] * rounds
        for _ in range(rounds):
            if control.stopped:
                break
            for side, outcome in _duet(plans, store, meta, control).items():
                done[side].append(outcome)
    else:
        order = interleaved_order(rounds, random.Random(seed))
        for number, side in enumerate(order, start=1):
            if control.stopped:
                break
            if on_run is not None:
                on_run(number, side, plans[side])
            outcome = run(
                plans[side],
                observers=observers,
                store=store,
                meta=meta(side),
                control=control.child(),
            )
            done[side].append(outcome)
            if outcome.result.stop_reason != "completed":
                break
    return AbRuns(session, tuple(order), tuple(done["A"]), tuple(done["B"]))


def _duet(
    plans: Mapping[Side, Plan],
    store: RunStore | None,
    meta: Callable[[Side], RunMeta],
    control: RunControl,
) -> dict[Side, RunOutcome]:
    """Both sides at once, each at half load, in two threads; a stop stops both."""
    results: dict[Side, RunOutcome] = {}
    failures: list[BaseException] = []
    both = control.child()

    def one(side: Side) -> None:
        try:
            results[side] = run(
                halved(plans[side]),
                store=store,
                meta=meta(side),
                control=both,
            )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
            failures.append(exc)
            both.stop()

    threads = [threading.Thread(target=one, args=(side,), name=f"ab-{side}") for side in plans]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        control.stop()  # both runs stop and keep what they measured; so does the session
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return {side: results[side] for side in ("A", "B") if side in results}


ab_async = async_form(ab)
