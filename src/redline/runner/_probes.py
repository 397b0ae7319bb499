"""Synthetic monitoring: a smoke plan run on a schedule, each run recorded for Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from redline.core import RunError
from redline.engine import RunControl
from redline.plan import Plan
from redline.rollout import ProbeMetrics
from redline.store import RunStore

from ._run import as_plan, run

__all__ = ["run_probes"]


def run_probes(
    plan: Plan | str | Path,
    *,
    every_s: float,
    metrics: ProbeMetrics,
    count: int | None = None,
    store: RunStore | None = None,
    control: RunControl | None = None,
    on_probe: Callable[[int, str], None] | None = None,
) -> int:
    """Run ``plan`` every ``every_s`` seconds (start to start) until ``count`` runs or a stop.

    Each run is added to ``metrics`` under the plan's name: ``pass`` (no objective
    failed, no request errored), ``fail``, or ``error`` (the target could not be
    reached: one request, failed). A run that overruns its period starts the next one at
    once; nothing but the metrics' fixed-size counters is kept between runs (and the
    store, when given, keeps every run).

    Args:
        plan: the smoke plan (a :class:`Plan` or a plan file).
        every_s: the period, start to start.
        metrics: where each run is recorded.
        count: stop after this many runs (default: until ``control`` stops it).
        store: keep every run here too.
        control: stop the probes from elsewhere (Ctrl-C in the CLI).
        on_probe: called after each run with its number and outcome.

    Returns:
        How many probe runs were made.

    Raises:
        ValueError: a period that is not positive, or a count below 1.
    """
    if every_s <= 0:
        raise ValueError(f"every: expected a positive period, got {every_s}")
    if count is not None and count < 1:
        raise ValueError(f"count: expected at least 1, got {count}")
    plan = as_plan(plan)
    control = control or RunControl()
    done = 0
    next_start = time.monotonic()
    while not control.stopped and (count is None or done < count):
        try:
            outcome = run(plan, store=store, control=control.child())
        except RunError:
            kind = metrics.record_error(plan.name)
        else:
            if control.stopped and outcome.result.stop_reason != "completed":
                break  # stopped mid-run: not a probe result
            passed = not any(v.outcome == "fail" for v in outcome.verdicts)
            kind = metrics.record(plan.name, outcome.result, passed=passed)
        done += 1
        if on_probe is not None:
            on_probe(done, kind)
        next_start += every_s
        if count is not None and done >= count:
            break
        while not control.stopped and time.monotonic() < next_start:
            time.sleep(min(0.1, max(0.0, next_start - time.monotonic())))
        next_start = max(next_start, time.monotonic())
    return done
