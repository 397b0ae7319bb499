"""One run, composed: the engine's load, the observers, verdicts, the store, the document.

``run`` is what ``redline run`` does below its command line, and what a Python caller uses:

    outcome = redline.run("examples/shop.yaml", observers=[MyObserver()], out="result.json")
    if not outcome.passed: ...
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from redline.analysis import drift, evaluate, fault_impacts, recovery
from redline.core import Observers, RunMeta, RunOutcome, RunResult
from redline.engine import RunControl, run_plan
from redline.observe import ServedTarget
from redline.plan import Plan, load_plan
from redline.report import write_text
from redline.store import RunRecorder, RunStore, collect_meta

from ._observers import AbortRules, FaultTimeline
from ._shape import ShapeFollower
from ._tracing import receiving, traced
from ._watching import judged, serving, watcher_for

__all__ = [
    "as_plan",
    "async_form",
    "run",
    "run_async",
    "shape_analysis",
    "write_document",
]

logger = logging.getLogger("redline")

T = TypeVar("T")
P = ParamSpec("P")


def as_plan(plan: Plan | str | Path) -> Plan:
    """``plan`` itself, or the plan file it names, loaded and validated.

    Raises:
        PlanError: the file is not a valid plan (the message names the file and path).
    """
    return plan if isinstance(plan, Plan) else load_plan(plan)


def run(
    plan: Plan | str | Path,
    *,
    observers: Iterable[object] = (),
    store: RunStore | None = None,
    out: str | Path | None = None,
    labels: Mapping[str, str] | None = None,
    meta: RunMeta | None = None,
    workers: int | None = None,
    control: RunControl | None = None,
    served: ServedTarget | None = None,
) -> RunOutcome:
    """Run a load test: load, observe, judge, keep.

    The plan's abort rules stop the run on a clear breach; its ``faults:`` are applied on
    schedule and always undone (also when the run fails or is interrupted) before the
    verdicts are read.

    Args:
        plan: a :class:`Plan`, or the path of a plan file.
        observers: watch the run (see :class:`redline.Observer`), in this order, after
            the store's recorder and before the abort rules.
        store: record the run into this store as it happens (a crash keeps what was
            measured and marks the run so).
        out: write the outcome's JSON document (docs/result-json.md) to this file.
        labels: labels of the stored run (``branch=main``); ignored with ``meta``.
        meta: the run's provenance (default: collected here: git commit, host, labels).
        workers: worker processes (default: as the load needs).
        control: stop the run early from elsewhere (a signal handler, another thread).
        served: a target already served for this run (``find`` serves once for all its
            steps); by default the plan's ``observe.serve`` is started here.

    Returns:
        the result, its verdicts, its provenance and what was read off its shape and faults.

    Raises:
        PlanError: the plan (or its faults) is not valid.
        RunError: the run could not be carried out (target unreachable, workers failed to
            start).
        WatchError: the target cannot be served or watched as the plan's ``observe:`` asks
            (a served command that exits at once, no such PID, not a cgroup).
        OSError: ``out`` could not be written (the run is stored all the same).
    """
    plan = as_plan(plan)
    if served is None and plan.observe.serve is not None:
        with serving(plan) as own:
            return run(
                plan,
                observers=observers,
                store=store,
                out=out,
                labels=labels,
                meta=meta,
                workers=workers,
                control=control,
                served=own,
            )
    control = control or RunControl()
    meta = meta or collect_meta(labels=labels)
    fan_out = Observers(observers)
    watcher = watcher_for(plan, served)
    if watcher is not None:
        fan_out.add(watcher, first=True)  # first: its samples are aligned by its own clock
    recorder = store.recorder(meta) if store is not None else None
    if recorder is not None:
        fan_out.add(recorder, first=True)
    abort = AbortRules(plan, control)
    if plan.has_shape:
        fan_out.add(ShapeFollower(plan, control))
    fan_out.add(abort)  # last: every other observer sees the breaching interval
    with FaultTimeline(plan, served=served) as timeline, receiving(plan) as receiver:
        fan_out.add(timeline)
        try:
            result = run_plan(plan, workers=workers, observers=fan_out, control=control)
        except BaseException as exc:
            fan_out.on_abandon("interrupted" if isinstance(exc, KeyboardInterrupt) else "crashed")
            raise
        timeline.undo()  # every fault undone before the verdicts are read
        traces = traced(plan, result, receiver)
    verdicts = evaluate(result, plan.slos, aborted=abort.breach)
    analysis: dict[str, Any] = shape_analysis(result)
    if plan.faults.schedule:
        analysis["faults"] = [i.to_dict() for i in fault_impacts(result, plan.slos)]
        analysis["fault_log"] = timeline.log
    target = judged(plan, result, watcher) if watcher is not None else None
    outcome = RunOutcome(result, meta, tuple(verdicts), analysis, target, traces)
    fan_out.on_finish(outcome)
    if recorder is not None:
        _say_stored(recorder, outcome.result)
    if out is not None:
        write_document(outcome.to_dict(), out)
    return outcome


def async_form(call: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """The async form of a blocking runner function that takes ``control=``.

    The call runs in a thread (the load itself runs in worker processes either way), so
    the event loop stays free; observers are called in that thread. Cancelling the
    awaiting task stops the run (or search) through its control, waits for it to keep
    what it measured, and raises :class:`asyncio.CancelledError`.
    """

    @functools.wraps(call)
    async def awaited(*args: P.args, **kwargs: P.kwargs) -> T:
        control = kwargs.get("control")
        if not isinstance(control, RunControl):
            control = RunControl()
            kwargs["control"] = control
        return await in_thread(lambda: call(*args, **kwargs), control)

    awaited.__doc__ = f"Await :func:`{call.__name__}` without blocking the event loop.\n\n" + (
        call.__doc__ or ""
    )
    awaited.__name__ = awaited.__qualname__ = f"{call.__name__}_async"
    return awaited


async def in_thread(call: Callable[[], T], control: RunControl) -> T:
    """Await ``call`` in a thread; on cancellation stop ``control``, wait, re-raise."""
    task = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        control.stop()
        # the thread finishes the requests in flight and keeps what it measured
        await asyncio.wait([task])
        raise


def shape_analysis(result: RunResult) -> dict[str, Any]:
    """What the run's test type (``--type``) reads off it: recovery, drift, a breakpoint."""
    kind = result.plan.shape.type if result.plan.shape is not None else None
    out: dict[str, Any] = {}
    if kind == "spike":
        found = recovery(result)
        if found is not None:
            out["recovery"] = found.to_dict()
    elif kind == "soak":
        trend = drift(result)
        if trend is not None:
            out["drift"] = trend.to_dict()
    elif kind == "breakpoint" and result.stop_reason == "aborted" and result.measured:
        last = result.measured[-1]
        rate = last.generator.target_rps
        if rate is not None:
            out["breakpoint"] = {"rate": rate, "at_s": last.start_s + last.duration_s}
    return out


def write_document(document: Mapping[str, Any], path: str | Path) -> None:
    """Write a JSON document atomically (indented, one trailing newline).

    Raises:
        OSError: the file cannot be written.
    """
    write_text(json.dumps(document, indent=1) + "\n", path)


run_async = async_form(run)


def _say_stored(recorder: RunRecorder, result: RunResult) -> None:
    where = recorder.store.where
    if not recorder.stored:
        logger.warning("the run was not stored whole in %s: %s", where, recorder.errors[-1])
        return
    logger.info("stored as %s in %s (redline show %s)", result.id, where, result.id)
    if recorder.errors:
        logger.warning(
            "%d write(s) to the store failed during the run and were made up at its end; "
            "the first: %s",
            len(recorder.errors),
            recorder.errors[0],
        )
