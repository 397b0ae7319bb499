"""A run's ``faults:``: start its proxies, apply its schedule, and say what each fault did."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from redline.analysis import fault_impacts
from redline.core import PlanError, RunResult
from redline.faults import (
    FaultProxy,
    FaultSchedule,
    ProxyError,
    RemoteProxies,
    ScheduledFault,
    ToxicError,
)
from redline.plan import Plan

from ._console import error

__all__ = ["report_faults", "scheduled_faults"]


@contextlib.contextmanager
def scheduled_faults(plan: Plan, console: Console) -> Iterator[FaultSchedule | None]:
    """The plan's proxies started and its schedule ready (start it when the load starts).

    Every fault still on is undone when the block ends, however it ends.

    Raises:
        PlanError: a toxic that is not valid, or a proxy that cannot start.
    """
    spec = plan.faults
    if not spec.schedule and not spec.proxies:
        yield None
        return
    faults = []
    for index, fault in enumerate(spec.schedule):
        try:
            faults.append(ScheduledFault.of(fault.to_dict()))
        except ToxicError as exc:
            raise PlanError(
                str(exc), source=plan.source, path=f"faults.schedule[{index}].toxic"
            ) from None
    with contextlib.ExitStack() as stack:
        target: FaultProxy | RemoteProxies
        if spec.api is not None:
            target = RemoteProxies(spec.api)
        else:
            target = stack.enter_context(FaultProxy(port=None).running())
            for index, proxy in enumerate(spec.proxies):
                try:
                    made = target.call(
                        target.create(proxy.name, proxy.listen, proxy.upstream, http=proxy.http)
                    )
                except ProxyError as exc:
                    raise PlanError(
                        str(exc), source=plan.source, path=f"faults.proxies[{index}]"
                    ) from None
                console.print(
                    f"fault proxy {made.name} on {made.listen} -> {made.upstream}",
                    highlight=False,
                )
        schedule = FaultSchedule(faults, target)
        try:
            yield schedule
        finally:
            schedule.stop()
            for problem in schedule.errors:
                error(f"fault schedule: {problem}")


def report_faults(console: Console, result: RunResult, plan: Plan) -> list[dict[str, Any]]:
    """Print what each fault did to the objectives; return it for the JSON document."""
    impacts = fault_impacts(result, plan.slos)
    for impact in impacts:
        console.print(impact.reason, highlight=False)
    return [impact.to_dict() for impact in impacts]
